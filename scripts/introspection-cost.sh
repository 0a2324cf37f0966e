#!/usr/bin/env bash
# The request-path cost of introspection (recent log, popular-items sketches,
# watched prefixes): two multi-tenant shoal servers, one with introspection
# on (--introspection-sample N, default 8) and one off (0), one hosted cache
# each with a watched prefix on the "on" side, driven in interleaved rounds
# by memtier_benchmark (binary protocol, SASL, pipelined, 1:10 set:get).
# Reports each side's ops/s and server CPU per op, and on/off ratios.
# usage: scripts/introspection-cost.sh [seconds] [rounds] [sample]
#   defaults: 10 3 8. Targets 127.0.0.1 only; every run is bounded by time.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}; ROUNDS=${2:-3}; SAMPLE=${3:-8}
for t in memtier_benchmark python3 curl; do
  command -v $t >/dev/null || { echo "$t is not on PATH (memtier: build it from its upstream source, RedisLabs/memtier_benchmark)"; exit 2; }
done
cargo build --release -q --bins
BIN=target/release/shoal
fail() { echo "introspection-cost: FAIL: $*" >&2; exit 1; }
. scripts/lib/mt-shoal.sh
TCK=$(getconf CLK_TCK)
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

start() { # name sample -> sets port_<name>, pid_<name>, auth_<name>
  local name=$1 sample=$2
  mt_start "$tmp/$name" -t 1 --introspection-sample "$sample"
  mt_create_cache "$tmp/$name" bench 1GB
  if [ "$sample" != 0 ]; then
    # A watched prefix that matches memtier's keys (memtier-NNN): its exact
    # counters run on every request.
    curl -sf -u "$CACHE_USER:$CACHE_PASS" -H 'Content-Type: application/json' -d '{"name":"memtier-1"}' \
      "http://$MT_ADMIN/api/v2/caches/$CACHE_ID/introspection/prefixes" >/dev/null || fail "watch a prefix"
  fi
  eval "port_$name=${MT_DATA##*:} pid_$name=$MT_PID auth_$name=$CACHE_USER:$CACHE_PASS"
}

measure() { # name -> "ops cpu_us_per_op"
  local name=$1 port pid auth json
  port=$(eval echo "\$port_$name"); pid=$(eval echo "\$pid_$name"); auth=$(eval echo "\$auth_$name")
  json="$tmp/$name.json"
  local c0; c0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  timeout $((SECS + 30)) memtier_benchmark -s 127.0.0.1 -p "$port" --protocol=memcache_binary \
    --authenticate="$auth" --ratio=1:10 --pipeline=16 --clients=50 --threads=1 --test-time="$SECS" \
    --key-maximum=100000 --data-size=32 --hide-histogram --json-out-file="$json" >/dev/null 2>&1
  local c1; c1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  python3 - "$json" "$((c1 - c0))" "$TCK" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["ALL STATS"]["Totals"]
assert t.get("Connection Errors", 0) == 0, "connection errors"
ops = t["Count"]; cpu = int(sys.argv[2]) / int(sys.argv[3]) * 1e6 / max(ops, 1)
print(f"{t['Ops/sec']:.0f} {cpu:.3f}")
PY
}

start on "$SAMPLE"
start off 0
: >"$tmp/results"
for r in $(seq "$ROUNDS"); do
  for name in on off; do
    m=$(measure "$name")
    echo "round $r $name: $m ops/s cpu_us/op"
    echo "$name $m" >>"$tmp/results"
  done
done
python3 - "$tmp/results" "$SAMPLE" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = lambda name, i: statistics.median(float(r[i]) for r in rows if r[0] == name)
on_ops, off_ops = med("on", 1), med("off", 1)
on_cpu, off_cpu = med("on", 2), med("off", 2)
print(f"introspection on (sample 1/{sys.argv[2]}, one watched prefix) vs off, medians:")
print(f"  throughput on/off: {on_ops / off_ops:.3f}  ({on_ops:.0f} vs {off_ops:.0f} ops/s)")
print(f"  CPU per op on/off: {on_cpu / off_cpu:.3f}  ({on_cpu:.3f} vs {off_cpu:.3f} us)")
PY
