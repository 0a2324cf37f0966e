#!/usr/bin/env bash
# Runs every test shoal has: cargo tests (unit, property, end-to-end at 1 and
# 2 cores) and memcached's own t/ suite against a freshly started `shoal -t 2`.
# Installs what it needs (perl modules, memcached's test tree) when missing.
#   scripts/test-all.sh            # everything
#   SKIP_MEMCACHED_T=1 scripts/test-all.sh   # cargo tests only
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SHARED=${SHOAL_SHARED:-$ROOT/../shared}

echo "== lint: rustfmt, clippy (warnings are errors) =="
cargo fmt --all --check
cargo clippy --release --workspace --all-targets -q -- -D warnings

echo "== cargo build (release) =="
cargo build --release --workspace --bins

echo "== cargo test =="
cargo test --release --workspace

[ "${SKIP_MEMCACHED_T:-0}" = 1 ] && { echo "SKIP_MEMCACHED_T=1: memcached t/ suite skipped"; exit 0; }

echo "== memcached t/ suite against shoal -t 2 =="
scripts/install-test-deps.sh
[ -x "$SHARED/memcached-t/run-memcached-t.sh" ] || { echo "FAIL: $SHARED/memcached-t not found (set SHOAL_SHARED)"; exit 1; }
"$SHARED/memcached-t/get-memcached-src.sh" >/dev/null

# ASCII files (issue 3) plus binary and meta (issue 4): one list to keep in sync.
TESTS="getset.t incrdecr.t cas.t noreply.t flush-all.t expirations.t touch.t getandtouch.t flags.t multiversioning.t bogus-commands.t quit.t issue_3.t issue_108.t issue_152.t issue_68.t issue_70.t malicious-commands.t issue_41.t chunked-items.t issue_104.t binary.t binary-get.t issue_192.t metaget.t"

LOG=$(mktemp)
target/release/shoal -p 0 -t 2 2>"$LOG" &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -f "$LOG"' EXIT
ADDR=""
for _ in $(seq 1 300); do
  ADDR=$(sed -n 's/^shoal listening on \([^ ]*\).*/\1/p' "$LOG" | head -1)
  [ -n "$ADDR" ] && break
  kill -0 $PID 2>/dev/null || { cat "$LOG"; echo "FAIL: shoal exited"; exit 1; }
  sleep 0.1
done
[ -n "$ADDR" ] || { cat "$LOG"; echo "FAIL: shoal did not start"; exit 1; }
echo "shoal at $ADDR"
"$SHARED/memcached-t/run-memcached-t.sh" "$ADDR" --tests "$TESTS"

echo "== real clients: pymemcache (ascii), pylibmc (binary), python-binary-memcached (binary) =="
scripts/client-tests.sh "$ADDR"

echo "== load smoke: mc-load (bounded: 5 s) against the same shoal =="
target/release/mc-load --server "$ADDR" --conns 8 --pipeline 16 --ratio 1:10 --seconds 5
echo "== all tests passed =="
