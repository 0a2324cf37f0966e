#!/usr/bin/env bash
# Runs every test shoal has: cargo tests (unit, property, end-to-end at 1 and
# 2 cores), memcached's own t/ suite against a freshly started `shoal -t 2`
# (open mode, then multi-tenant mode through ASCII auth) and real clients.
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

echo "== packaging: hadolint on the Dockerfile, systemd-analyze verify on the unit, both configs start =="
scripts/packaging-check.sh

echo "== cargo test =="
cargo test --release --workspace

[ "${SKIP_MEMCACHED_T:-0}" = 1 ] && { echo "SKIP_MEMCACHED_T=1: memcached t/ suite skipped"; exit 0; }

echo "== memcached t/ suite against shoal -t 2 =="
scripts/install-test-deps.sh
[ -x "$SHARED/memcached-t/run-memcached-t.sh" ] || { echo "FAIL: $SHARED/memcached-t not found (set SHOAL_SHARED)"; exit 1; }
"$SHARED/memcached-t/get-memcached-src.sh" >/dev/null

# ASCII files (issue 3) plus binary and meta (issue 4): one list to keep in sync.
TESTS="getset.t incrdecr.t cas.t noreply.t flush-all.t expirations.t touch.t getandtouch.t flags.t multiversioning.t bogus-commands.t quit.t issue_3.t issue_108.t issue_152.t issue_68.t issue_70.t malicious-commands.t issue_41.t chunked-items.t issue_104.t binary.t binary-get.t issue_192.t metaget.t"

# The ASCII files of that list: what runs through ASCII auth in multi-tenant mode.
ASCII_TESTS="getset.t incrdecr.t cas.t noreply.t flush-all.t expirations.t touch.t getandtouch.t flags.t multiversioning.t bogus-commands.t quit.t issue_3.t issue_108.t issue_152.t issue_68.t issue_70.t malicious-commands.t issue_41.t chunked-items.t issue_104.t binary-get.t metaget.t"

WORK=$(mktemp -d)
PIDS=""
trap 'for p in $PIDS; do kill $p 2>/dev/null || true; done; rm -rf "$WORK"' EXIT

# start_shoal LOG ARGS...: starts shoal in the background, waits for its
# "listening" line and sets ADDR (and ADMIN when it has an admin endpoint).
start_shoal() {
  local log=$1; shift
  target/release/shoal -p 0 "$@" 2>"$log" &
  local pid=$!
  PIDS="$PIDS $pid"
  ADDR=""
  for _ in $(seq 1 300); do
    ADDR=$(sed -n 's/^shoal listening on \([^ ]*\).*/\1/p' "$log" | head -1)
    [ -n "$ADDR" ] && break
    kill -0 $pid 2>/dev/null || { cat "$log"; echo "FAIL: shoal exited"; exit 1; }
    sleep 0.1
  done
  [ -n "$ADDR" ] || { cat "$log"; echo "FAIL: shoal did not start"; exit 1; }
  ADMIN=$(sed -n 's/^shoal admin listening on \([^ ]*\).*/\1/p' "$log" | head -1)
}

start_shoal "$WORK/open.log" -t 2
echo "shoal at $ADDR"
"$SHARED/memcached-t/run-memcached-t.sh" "$ADDR" --tests "$TESTS"
OPEN_ADDR=$ADDR
echo "== memcached t/ suite against shoal -t 1 (one core: requests are parsed in the core's scratch buffer) =="
start_shoal "$WORK/one.log" -t 1
"$SHARED/memcached-t/run-memcached-t.sh" "$ADDR" --tests "$TESTS"
echo "== real clients against shoal -t 1 =="
scripts/client-tests.sh "$ADDR"

echo "== memcached t/ suite through ASCII auth: shoal --multi-tenant -t 2 =="
start_shoal "$WORK/mt.log" -t 2 --multi-tenant --data-dir "$WORK/data" --admin-addr 127.0.0.1:0
CREATED=$(target/release/shoal cache create --name t-suite --memory 64MB --admin "$ADMIN" --data-dir "$WORK/data")
echo "$CREATED" | head -1
MC_USER=$(echo "$CREATED" | sed -n 's/^MEMCACHIER_USERNAME=//p')
MC_PASS=$(echo "$CREATED" | sed -n 's/^MEMCACHIER_PASSWORD=//p')
[ -n "$MC_USER" ] && [ -n "$MC_PASS" ] || { echo "FAIL: cache create printed no credentials"; exit 1; }
"$SHARED/memcached-t/run-memcached-t.sh" "$ADDR" --auth "$MC_USER:$MC_PASS" --tests "$ASCII_TESTS"
echo "== four of those files with memcached's -Y auth form =="
"$SHARED/memcached-t/run-memcached-t.sh" "$ADDR" --auth "$MC_USER:$MC_PASS" --ascii-auth memcached --tests "getset.t incrdecr.t cas.t noreply.t"
ADDR=$OPEN_ADDR

echo "== real clients: pymemcache (ascii), pylibmc (binary), python-binary-memcached (binary), libmemcached tools, php-memcached =="
scripts/client-tests.sh "$ADDR"

echo "== real clients against multi-tenant mode: SASL (pylibmc, python-binary-memcached), ASCII auth (pymemcache) =="
scripts/mt-client-tests.sh

echo "== TLS: pymemcache and python-binary-memcached over TLS, refusals, refresh_certs, certificate login =="
scripts/tls-test.sh

echo "== cluster: three nodes on a PostgreSQL control plane (pylibmc ketama, php-memcached, drain, kill -9, PostgreSQL restart, plan fill) =="
scripts/cluster-test.sh

echo "== Prometheus: promtool check metrics, and a real Prometheus server scraping /metrics =="
scripts/prometheus-check.sh

echo "== schemathesis against /api/v2/openapi.json =="
scripts/schemathesis-check.sh

echo "== web dashboard in a real browser: chromium + playwright-core =="
scripts/dashboard-e2e.sh

echo "== idle connections: at most 1 KiB of server memory each (15,000 against shoal -t 2) =="
scripts/idle-conns.sh 15000 2 1024

echo "== load smoke: mc-load (bounded: 5 s) against the same shoal =="
target/release/mc-load --server "$ADDR" --conns 8 --pipeline 16 --ratio 1:10 --seconds 5
echo "== fuzz smoke: every fuzz target for 20 s from its seeds (scripts/fuzz.sh) =="
scripts/fuzz.sh 20
echo "== all tests passed =="
