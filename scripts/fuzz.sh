#!/usr/bin/env bash
# Coverage-guided fuzzing of shoal's input paths (fuzz/, entry points in
# src/fuzz/): libFuzzer through libfuzzer-sys, with the stable toolchain's
# SanitizerCoverage passes (no nightly, no sanitizer: debug assertions and
# overflow checks are on instead). Targets: ascii, meta, binary, session
# (open mode, and multi-tenant mode through ASCII auth and SASL), admin_json.
#
#   scripts/fuzz.sh                 # every target for 20 s (the smoke run)
#   scripts/fuzz.sh 600             # every target for 10 minutes
#   scripts/fuzz.sh 600 session     # one target
#   scripts/fuzz.sh repro session FILE   # replay one input (a crash) under the fuzz build
#
# Each target starts from its committed seeds (fuzz/seeds/TARGET) and the
# corpus earlier runs grew here (fuzz/corpus/TARGET, not committed). A crash
# is saved under fuzz/artifacts/TARGET/, printed, and the script fails once
# every target has run. A crash, once fixed, goes into
# fuzz/regressions/TARGET/, which tests/fuzz_corpus.rs replays in every
# `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

ALL="ascii meta binary session admin_json"
MODE=run
if [ "${1:-}" = repro ]; then
  MODE=repro
  shift
  [ $# = 2 ] || { echo "usage: scripts/fuzz.sh repro TARGET FILE"; exit 2; }
fi
SECS=20
if [ $MODE = run ] && [ $# -gt 0 ]; then
  SECS=$1
  shift
fi
TARGETS=${*:-$ALL}

# libfuzzer-sys compiles libFuzzer's C++ sources.
if ! command -v c++ >/dev/null; then
  command -v apt-get >/dev/null || { echo "FAIL: no C++ compiler and no apt-get to install g++"; exit 1; }
  SUDO=(); [ "$(id -u)" = 0 ] || SUDO=(sudo)
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq g++ >/dev/null
fi

# cargo-fuzz's instrumentation, spelled out for a stable rustc. --target
# keeps these flags off build scripts and proc macros.
HOST=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares"
echo "== fuzz: building the targets (fuzz/, $HOST) =="
# Not --locked: fuzz/Cargo.lock pins the fuzz crate's own dependencies, and
# cargo adds what shoal's Cargo.toml gained since (shoal's versions are
# pinned by its own lock file) instead of failing on a dependency added in
# the main crate.
(cd fuzz && cargo build --release --target "$HOST" --bins -q)
BIN=$ROOT/fuzz/target/$HOST/release

if [ $MODE = repro ]; then
  exec "$BIN/$1" "$2"
fi

FAILED=""
for t in $TARGETS; do
  [ -x "$BIN/$t" ] || { echo "FAIL: no fuzz target $t (have: $ALL)"; exit 2; }
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  log=fuzz/artifacts/$t/last-run.log
  echo "== fuzz: $t for ${SECS}s =="
  rc=0
  # -timeout: an input that runs 10 s is a hang; -rss_limit_mb: a leak.
  "$BIN/$t" "fuzz/corpus/$t" "fuzz/seeds/$t" \
    -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 \
    >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
  if [ $rc = 0 ]; then
    echo "$t: ${runs:-?} runs, $cov, corpus $corpus inputs, no crash"
    continue
  fi
  FAILED="$FAILED $t"
  echo "FAIL: $t crashed (exit $rc); the end of its log ($log):"
  grep -v '^#[0-9]' "$log" | tail -40
  for crash in $(grep -o "fuzz/artifacts/$t/[a-z]*-[0-9a-f]*" "$log" | sort -u); do
    echo "-- input $crash ($(wc -c <"$crash") bytes):"
    od -A d -c "$crash" | head -40
    echo "-- replay: scripts/fuzz.sh repro $t $crash"
  done
done
if [ -n "$FAILED" ]; then
  echo "FAIL: fuzzing found crashes in:$FAILED"
  exit 1
fi
echo "== fuzz: no crash in $TARGETS (${SECS}s each) =="
