#!/usr/bin/env bash
# shoal vs memcached in the same run: memtier_benchmark (32 B values, 100k
# keys, ratio 1:10, 50 connections), one server worker each, interleaved
# rounds. Reports throughput, p99 and server CPU per op (utime+stime from
# /proc) for each server, and shoal/memcached ratios (medians over rounds).
#
# usage: scripts/bench-vs-memcached.sh [text|binary] [seconds] [rounds] [pipeline] [placement]
#   placement: split      server on CPU 0, memtier on CPU 1 (default)
#              colocated  server and memtier both on CPU 0
#              free       nothing pinned
#   defaults: text 10 2 16 free (the pipelined comparison of issue 3)
#   or: scripts/bench-vs-memcached.sh p1 [seconds] [rounds]
#       the one-request-at-a-time suite (issue 11): pipeline 1, text and
#       binary, split and colocated, 3 interleaved rounds of 10 s each.
#   or: scripts/bench-vs-memcached.sh tls [seconds] [rounds]
#       TLS (issue 15): shoal -Z against memcached -Z, memtier --tls, text,
#       pipeline 1 and 16, split, 3 interleaved rounds of 10 s each.
# TLS=1 runs any of the above over TLS (a throwaway certificate made here).
# Set SHOAL_THREADS / MEMCACHED_THREADS (default 1) to compare more workers;
# with more than one, memtier runs 2 threads x 25 connections.
# SHOAL_BIN picks another shoal binary (an A/B of two builds).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = p1 ]; then
  cargo build --release -q --bins
  for placement in split colocated; do
    for proto in text binary; do
      SHOAL_BIN_BUILT=1 "$0" "$proto" "${2:-10}" "${3:-3}" 1 "$placement"
    done
  done
  exit 0
fi
if [ "${1:-}" = tls ]; then
  cargo build --release -q --bins
  for pipeline in 1 16; do
    TLS=1 SHOAL_BIN_BUILT=1 "$0" text "${2:-10}" "${3:-3}" "$pipeline" split
  done
  exit 0
fi
PROTO=${1:-text}; SECS=${2:-10}; ROUNDS=${3:-2}; PIPELINE=${4:-16}; PLACEMENT=${5:-free}
ST=${SHOAL_THREADS:-1}; MT=${MEMCACHED_THREADS:-1}
for t in memtier_benchmark memcached python3; do
  command -v $t >/dev/null || { echo "$t is not on PATH (memtier: build it from its upstream source; memcached: apt install memcached)"; exit 2; }
done
case "$PLACEMENT" in
  split) SRV_PIN="taskset -c 0"; CLI_PIN="taskset -c 1" ;;
  colocated) SRV_PIN="taskset -c 0"; CLI_PIN="taskset -c 0" ;;
  free) SRV_PIN=""; CLI_PIN="" ;;
  *) echo "placement must be split, colocated or free"; exit 2 ;;
esac
MTHREADS=1; MCLIENTS=50
if [ "$ST" -gt 1 ] || [ "$MT" -gt 1 ]; then MTHREADS=2; MCLIENTS=25; fi
SHOAL_BIN=${SHOAL_BIN:-target/release/shoal}
[ -n "${SHOAL_BIN_BUILT:-}" ] || cargo build --release -q --bins
TCK=$(getconf CLK_TCK)
# TLS: one throwaway self-signed certificate for both servers; memtier
# skips verification (what is measured is the cipher, not the PKI).
SHOAL_TLS=(); MC_TLS=(); MEMTIER_TLS=(); TLS_DIR=""
if [ "${TLS:-0}" = 1 ]; then
  TLS_DIR=$(mktemp -d)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=localhost -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" 2>/dev/null
  SHOAL_TLS=(-Z --tls-cert "$TLS_DIR/cert.pem" --tls-key "$TLS_DIR/key.pem")
  MC_TLS=(-Z -o "ssl_chain_cert=$TLS_DIR/cert.pem,ssl_key=$TLS_DIR/key.pem")
  MEMTIER_TLS=(--tls --tls-skip-verify)
fi
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

measure() { # label pid port -> prints "label ops/s p99_ms cpu_us_per_op"
  local label=$1 pid=$2 port=$3 json; json=$(mktemp)
  local c0; c0=$(cpu_ticks "$pid")
  # shellcheck disable=SC2086
  timeout $((SECS + 30)) $CLI_PIN memtier_benchmark -s 127.0.0.1 -p "$port" --protocol="memcache_$PROTO" \
    --ratio=1:10 --pipeline="$PIPELINE" --clients="$MCLIENTS" --threads="$MTHREADS" --test-time="$SECS" \
    --key-maximum=100000 --data-size=32 --hide-histogram --json-out-file="$json" "${MEMTIER_TLS[@]}" >/dev/null 2>&1
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

# Both servers are started, then waited for by connecting, not by sleeping.
wait_port() { python3 - "$1" <<'PY'
import socket, sys, time
for _ in range(300):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close(); sys.exit(0)
    except OSError: time.sleep(0.05)
sys.exit("server did not start")
PY
}
start_shoal() { local log; log=$(mktemp)
  # shellcheck disable=SC2086
  $SRV_PIN "$SHOAL_BIN" -p 0 -t "$ST" -m 1024 "${SHOAL_TLS[@]}" 2>"$log" & SPID=$!
  SPORT=""
  for _ in $(seq 1 300); do SPORT=$(sed -n 's/^shoal listening on [^ ]*:\([0-9]*\).*/\1/p' "$log"); [ -n "$SPORT" ] && break; sleep 0.1; done
  [ -n "$SPORT" ] || { cat "$log"; echo "shoal did not start"; exit 1; }
  rm -f "$log"; }
start_memcached() { MPORT=$((20000 + RANDOM % 10000))
  # shellcheck disable=SC2086
  $SRV_PIN memcached -u nobody -p "$MPORT" -U 0 -t "$MT" -m 1024 -l 127.0.0.1 "${MC_TLS[@]}" & MPID=$!
  wait_port "$MPORT"; }

echo "# ${TLS_DIR:+TLS, }$PROTO, pipeline $PIPELINE, $MTHREADS memtier thread(s) x $MCLIENTS conns, placement $PLACEMENT, shoal -t $ST vs memcached -t $MT, ${SECS}s x $ROUNDS rounds"
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
[ -z "$TLS_DIR" ] || rm -rf "$TLS_DIR"
