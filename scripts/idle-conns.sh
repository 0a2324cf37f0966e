#!/usr/bin/env bash
# Server memory per idle connection (issue 11): opens CONNS connections to a
# fresh `shoal -t THREADS` (each sends one request, then stays idle) and
# reports RSS growth per connection from /proc; fails above MAX bytes.
# memcached, when installed, is measured the same way for comparison.
# usage: scripts/idle-conns.sh [conns] [threads] [max-bytes]
#   defaults: 15000 2 1024
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-15000}; THREADS=${2:-2}; MAX=${3:-1024}
HARD=$(ulimit -Hn)
if [ "$HARD" != unlimited ] && [ "$HARD" -lt $((CONNS + 1200)) ]; then
  CONNS=$((HARD - 1200))
  echo "open-file hard limit is $HARD: measuring $CONNS connections"
fi
ulimit -n "$HARD"
cargo build --release -q --bin shoal
WORK=$(mktemp -d)
PIDS=""
trap 'for p in $PIDS; do kill $p 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
target/release/shoal -p 0 -t "$THREADS" -c $((CONNS + 1000)) 2>"$WORK/shoal.log" &
SPID=$!; PIDS="$PIDS $SPID"
PORT=""
for _ in $(seq 1 300); do
  PORT=$(sed -n 's/^shoal listening on [^ ]*:\([0-9]*\).*/\1/p' "$WORK/shoal.log")
  [ -n "$PORT" ] && break
  kill -0 $SPID 2>/dev/null || { cat "$WORK/shoal.log"; echo "FAIL: shoal exited"; exit 1; }
  sleep 0.1
done
[ -n "$PORT" ] || { echo "FAIL: shoal did not start"; exit 1; }
python3 scripts/idle-conns.py --pid $SPID --port "$PORT" --conns "$CONNS" --max-bytes "$MAX" --label "shoal -t $THREADS"
kill $SPID; wait $SPID 2>/dev/null || true
if command -v memcached >/dev/null; then
  MPORT=$((20000 + RANDOM % 10000))
  memcached -u nobody -l 127.0.0.1 -p "$MPORT" -U 0 -t "$THREADS" -c $((CONNS + 1000)) &
  MPID=$!; PIDS="$PIDS $MPID"
  python3 - "$MPORT" <<'PY'
import socket, sys, time
for _ in range(300):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close(); sys.exit(0)
    except OSError: time.sleep(0.05)
sys.exit("memcached did not start")
PY
  python3 scripts/idle-conns.py --pid $MPID --port "$MPORT" --conns "$CONNS" --label "memcached -t $THREADS"
else
  echo "memcached is not installed: no comparison"
fi
