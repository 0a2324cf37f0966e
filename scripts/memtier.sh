#!/usr/bin/env bash
# memtier_benchmark against shoal (and, for comparison, memcached when it is
# installed), the load issue 3 asks for:
#   --protocol=memcache_text --ratio=1:10 --pipeline=16 --clients=50, 20 s
# usage: scripts/memtier.sh [text|binary|binary-auth] [seconds] [shoal-threads...]
#   defaults: text 20 1 2   (one run per thread count)
#   binary-auth: shoal --multi-tenant with one 1 GB cache, memtier speaking
#   binary with --authenticate (SASL PLAIN), issue 5's bar.
# Exits non-zero when memtier reports any error or is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PROTO=${1:-text}; SECS=${2:-20}; shift $(( $# > 2 ? 2 : $# )) || true
THREADS=("$@"); [ ${#THREADS[@]} -gt 0 ] || THREADS=(1 2)
AUTH=0; [ "$PROTO" = binary-auth ] && { AUTH=1; PROTO=binary; }
command -v memtier_benchmark >/dev/null || {
  echo "memtier_benchmark is not on PATH: build it from its upstream source (RedisLabs/memtier_benchmark) and re-run"; exit 2; }
cargo build --release --bins -q

run_memtier() { # port label [extra memtier args...]
  local port=$1 label=$2; shift 2
  local out; out=$(mktemp)
  local rc=0
  # memtier can hang on a reply it cannot parse and exits 0 on refused
  # connections, so bound it with timeout and judge it by its JSON and stderr.
  timeout $((SECS + 30)) memtier_benchmark -s 127.0.0.1 -p "$port" --protocol="memcache_$PROTO" \
    --ratio=1:10 --pipeline=16 --clients=50 --threads=1 --test-time="$SECS" \
    --key-maximum=100000 --data-size=32 --hide-histogram --json-out-file="$out.json" "$@" \
    >"$out" 2>"$out.err" || rc=$?
  echo "$label: $(grep -E '^Totals' "$out" | tail -1)"
  local verdict
  verdict=$(python3 - "$out.json" <<'PY'
import json, sys
try:
    t = json.load(open(sys.argv[1]))["ALL STATS"]["Totals"]
except Exception as e:
    print(f"no JSON result ({e})"); sys.exit()
if t.get("Count", 0) <= 0 or t.get("Ops/sec", 0) <= 0: print("no operations completed")
elif t.get("Connection Errors", 0) != 0: print(f"{t['Connection Errors']} connection errors")
PY
)
  local errs; errs=$(tr '\r' '\n' <"$out.err" | grep -iE 'error|handle error response|response parsing failed|restart' || true)
  rm -f "$out" "$out.json" "$out.err"
  if [ "$rc" != 0 ] || [ -n "$verdict" ] || [ -n "$errs" ]; then
    echo "FAIL ($label): rc=$rc $verdict"; [ -n "$errs" ] && echo "$errs" | head -5
    return 1
  fi
  echo "$label: zero errors"
}

for t in "${THREADS[@]}"; do
  log=$(mktemp)
  data=$(mktemp -d)
  mt=(); [ $AUTH = 1 ] && mt=(--multi-tenant --data-dir "$data" --admin-addr 127.0.0.1:0)
  target/release/shoal -p 0 -t "$t" -m 1024 "${mt[@]}" 2>"$log" &
  pid=$!
  addr=""
  for _ in $(seq 1 300); do addr=$(sed -n 's/^shoal listening on \([^ ]*\).*/\1/p' "$log"); [ -n "$addr" ] && break; sleep 0.1; done
  [ -n "$addr" ] || { cat "$log"; kill $pid; exit 1; }
  extra=(); label="shoal -t $t"
  if [ $AUTH = 1 ]; then
    admin=$(sed -n 's/^shoal admin listening on \([^ ]*\).*/\1/p' "$log")
    created=$(target/release/shoal cache create --name memtier --memory 1GB --admin "$admin" --data-dir "$data")
    user=$(echo "$created" | sed -n 's/^MEMCACHIER_USERNAME=//p')
    pass=$(echo "$created" | sed -n 's/^MEMCACHIER_PASSWORD=//p')
    extra=(--authenticate="$user:$pass"); label="shoal --multi-tenant -t $t (SASL)"
  fi
  rc=0; run_memtier "${addr##*:}" "$label" "${extra[@]}" || rc=1
  kill $pid; wait $pid 2>/dev/null || true; rm -rf "$log" "$data"
  [ $rc = 0 ] || exit 1
done
if command -v memcached >/dev/null; then
  port=$((20000 + RANDOM % 10000))
  memcached -u nobody -p "$port" -U 0 -t 1 -m 1024 -l 127.0.0.1 & mpid=$!
  sleep 0.5
  run_memtier "$port" "memcached -t 1" || true
  kill $mpid
fi
