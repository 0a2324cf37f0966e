#!/usr/bin/env bash
# Real clients against shoal in multi-tenant mode:
#   scripts/mt-client-tests.sh [SECTION...]
# Starts target/release/shoal --multi-tenant (fresh data dir, --auth-timeout 1)
# on loopback ports picked by the OS, creates two caches, a read-only and a
# no-flush credential with the `shoal cache` / `shoal credential` CLI, then
# runs tests/clients/test_mt_clients.py (pymemcache with MemCachier ASCII
# auth, pylibmc and python-binary-memcached with SASL PLAIN, raw sockets).
# SECTION names a function of that file to run alone (e.g. wire_section).
# MT_PY_WRAP, when set, is put before the python command (e.g. "strace -f -o F").
# Build first: cargo build --release --bins. Needs libmemcached-dev for
# pylibmc (scripts/install-test-deps.sh; see scripts/client-venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/shoal
AUTH_TIMEOUT=1
[ -x "$BIN" ] || { echo "FAIL: $BIN not built (cargo build --release --bins)" >&2; exit 1; }
scripts/client-venv.sh
PY=target/client-venv/bin/python

WORK=$(mktemp -d)
DATA=$WORK/data
LOG=$WORK/shoal.log
SERVER_PID=""
cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    # SIGTERM, 5 s to exit, then SIGKILL: never wait on a wedged server.
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "FAIL: shoal (pid $SERVER_PID) ignored SIGTERM for 5 s; killing it" >&2
      kill -9 "$SERVER_PID" 2>/dev/null || true
      [ "$rc" -ne 0 ] || rc=1
    fi
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -f "$LOG" ]; then
    echo "--- shoal log (last 40 lines) ---" >&2
    tail -n 40 "$LOG" >&2 || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

mkdir -p "$DATA"
"$BIN" --multi-tenant --data-dir "$DATA" --admin-addr 127.0.0.1:0 \
  -p 0 -l 127.0.0.1 -t 2 --auth-timeout "$AUTH_TIMEOUT" >"$LOG" 2>&1 &
SERVER_PID=$!

# wait_for PREFIX: the HOST:PORT after PREFIX on a line of the log (30 s at most).
wait_for() {
  local addr=""
  for _ in $(seq 1 300); do
    addr=$(sed -n "s/^$1 \([^ ]*\).*/\1/p" "$LOG" | head -1)
    [ -n "$addr" ] && { echo "$addr"; return 0; }
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "FAIL: shoal exited before printing '$1'" >&2; return 1; }
    sleep 0.1
  done
  echo "FAIL: shoal did not print '$1' within 30 s" >&2
  return 1
}
ADMIN=$(wait_for "shoal admin listening on")
SERVER=$(wait_for "shoal listening on")
echo "shoal --multi-tenant: memcached at $SERVER, admin at $ADMIN"

shoal_cli() { "$BIN" "$@" --admin "$ADMIN" --data-dir "$DATA"; }
# value KEY TEXT: the value of a KEY=value line.
value() {
  local v
  v=$(printf '%s\n' "$2" | sed -n "s/^$1=//p" | head -1)
  [ -n "$v" ] || { printf 'FAIL: no %s= line in:\n%s\n' "$1" "$2" >&2; return 1; }
  echo "$v"
}
# cache_id TEXT: N from "Created cache N (...)".
cache_id() {
  local id
  id=$(printf '%s\n' "$1" | sed -n 's/^Created cache \([0-9][0-9]*\) .*/\1/p' | head -1)
  [ -n "$id" ] || { printf 'FAIL: no cache id in:\n%s\n' "$1" >&2; return 1; }
  echo "$id"
}

OUT_A=$(shoal_cli cache create --name mt-clients-a --memory 25MB)
OUT_B=$(shoal_cli cache create --name mt-clients-b --memory 25MB)
MT_A_ID=$(cache_id "$OUT_A"); MT_B_ID=$(cache_id "$OUT_B")
MT_A_USER=$(value MEMCACHIER_USERNAME "$OUT_A"); MT_A_PASS=$(value MEMCACHIER_PASSWORD "$OUT_A")
MT_B_USER=$(value MEMCACHIER_USERNAME "$OUT_B"); MT_B_PASS=$(value MEMCACHIER_PASSWORD "$OUT_B")
SERVERS_A=$(value MEMCACHIER_SERVERS "$OUT_A")
[ "$SERVERS_A" = "$SERVER" ] || echo "note: MEMCACHIER_SERVERS=$SERVERS_A but the listener is $SERVER"
OUT_RO=$(shoal_cli credential add --cache "$MT_A_ID" --no-write)
MT_RO_USER=$(value MEMCACHIER_USERNAME "$OUT_RO"); MT_RO_PASS=$(value MEMCACHIER_PASSWORD "$OUT_RO")
OUT_NF=$(shoal_cli credential add --cache "$MT_A_ID" --no-flush)
MT_NF_USER=$(value MEMCACHIER_USERNAME "$OUT_NF"); MT_NF_PASS=$(value MEMCACHIER_PASSWORD "$OUT_NF")
echo "caches: A=$MT_A_ID ($MT_A_USER) B=$MT_B_ID ($MT_B_USER); read-only $MT_RO_USER, no-flush $MT_NF_USER"

export SHOAL_SERVER=$SERVER SHOAL_ADMIN=$ADMIN SHOAL_BIN=$BIN SHOAL_DATA_DIR=$DATA \
  SHOAL_AUTH_TIMEOUT=$AUTH_TIMEOUT MT_A_ID MT_A_USER MT_A_PASS MT_B_ID MT_B_USER MT_B_PASS \
  MT_RO_USER MT_RO_PASS MT_NF_USER MT_NF_PASS
${MT_PY_WRAP:-} "$PY" tests/clients/test_mt_clients.py "$@"
kill -0 "$SERVER_PID" 2>/dev/null || { echo "FAIL: shoal died during the tests" >&2; exit 1; }
echo "== multi-tenant client tests passed =="
