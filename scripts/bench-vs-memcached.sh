#!/usr/bin/env bash
# shoal vs memcached in the same run: memtier_benchmark, pipelined text (or
# binary), one server worker each, interleaved rounds. Reports throughput,
# p99 and server CPU per op (utime+stime from /proc) as ratios.
# usage: scripts/bench-vs-memcached.sh [text|binary] [seconds] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
PROTO=${1:-text}; SECS=${2:-10}; ROUNDS=${3:-2}
for t in memtier_benchmark memcached python3; do
  command -v $t >/dev/null || { echo "$t is not on PATH (memtier: build it from its upstream source; memcached: apt install memcached)"; exit 2; }
done
cargo build --release -q --bins
TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

measure() { # label pid port -> prints "label ops/s p99_ms cpu_us_per_op"
  local label=$1 pid=$2 port=$3 json; json=$(mktemp)
  local c0; c0=$(cpu_ticks "$pid")
  timeout $((SECS + 30)) memtier_benchmark -s 127.0.0.1 -p "$port" --protocol="memcache_$PROTO" \
    --ratio=1:10 --pipeline=16 --clients=50 --threads=1 --test-time="$SECS" --key-maximum=100000 \
    --data-size=32 --hide-histogram --json-out-file="$json" >/dev/null 2>&1
  local c1; c1=$(cpu_ticks "$pid")
  python3 - "$json" "$label" "$((c1 - c0))" "$TCK" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["ALL STATS"]["Totals"]
ops = t["Count"]; ticks = int(sys.argv[3]); tck = int(sys.argv[4])
p99 = t.get("Percentile Latencies", {}).get("p99.00", t.get("Latency", 0))
print(f"{sys.argv[2]} {t['Ops/sec']:.0f} {p99:.3f} {ticks / tck * 1e6 / max(ops, 1):.3f}")
PY
  rm -f "$json"
}

start_shoal() { local log; log=$(mktemp); target/release/shoal -p 0 -t 1 -m 1024 2>"$log" & SPID=$!
  for _ in $(seq 1 300); do SPORT=$(sed -n 's/^shoal listening on [^ ]*:\([0-9]*\) .*/\1/p' "$log"); [ -n "$SPORT" ] && break; sleep 0.1; done; }
start_memcached() { MPORT=$((20000 + RANDOM % 10000)); memcached -u nobody -p "$MPORT" -U 0 -t 1 -m 1024 -l 127.0.0.1 & MPID=$!; sleep 0.5; }

RES=$(mktemp)
for r in $(seq 1 "$ROUNDS"); do
  start_memcached; measure memcached "$MPID" "$MPORT" | tee -a "$RES"; kill $MPID; wait $MPID 2>/dev/null || true
  start_shoal; measure shoal "$SPID" "$SPORT" | tee -a "$RES"; kill $SPID; wait $SPID 2>/dev/null || true
done
python3 - "$RES" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def med(name, i): return st.median(float(r[i]) for r in rows if r[0] == name)
m, s = {}, {}
for i, k in [(1, "ops"), (2, "p99"), (3, "cpu")]:
    m[k], s[k] = med("memcached", i), med("shoal", i)
print(f"medians: memcached {m['ops']:.0f} ops/s p99 {m['p99']:.3f} ms cpu {m['cpu']:.3f} us/op | "
      f"shoal {s['ops']:.0f} ops/s p99 {s['p99']:.3f} ms cpu {s['cpu']:.3f} us/op")
print(f"ratios shoal/memcached: throughput {s['ops']/m['ops']:.2f}x  p99 {s['p99']/m['p99']:.2f}x  cpu/op {s['cpu']/m['cpu']:.2f}x")
PY
rm -f "$RES"
