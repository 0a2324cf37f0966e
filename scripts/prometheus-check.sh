#!/usr/bin/env bash
# Checks the admin endpoint's GET /metrics with the real Prometheus tools:
#   1. starts target/release/shoal --multi-tenant (temporary data dir, free
#      ports), creates a cache and sends it some traffic;
#   2. `promtool check metrics` on the scraped text (format and lint);
#   3. a real `prometheus` server scraping /metrics every second: the target
#      must turn "up" and `memcached_current_items` must be queryable, the
#      cache's own series included.
# Needs promtool, prometheus and python3 (scripts/install-test-deps.sh
# installs them). Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${SHOAL_BIN:-target/release/shoal}
fail() { echo "prometheus-check: FAIL: $*" >&2; exit 1; }
for tool in promtool prometheus python3; do
  command -v "$tool" >/dev/null || fail "$tool not found (run scripts/install-test-deps.sh)"
done
[ -x "$BIN" ] || cargo build --release --bin shoal

tmp=$(mktemp -d)
pids=()
. scripts/lib/mt-shoal.sh
cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$rc" -ne 0 ]; then
    for log in "$tmp"/*.log; do
      [ -f "$log" ] || continue
      echo "--- last lines of $(basename "$log")" >&2
      tail -n 30 "$log" >&2
    done
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# An HTTP GET with python3 (no curl needed): prints the body, fails on non-2xx.
http_get() {
  python3 - "$1" <<'EOF'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    sys.stdout.write(r.read().decode())
EOF
}

# 1. shoal
mt_start "$tmp" -t 2
admin=$MT_ADMIN data=$MT_DATA
echo "shoal: data $data, admin $admin"
mt_create_cache "$tmp" promcheck 8MB
cache_id=$CACHE_ID user=$CACHE_USER pass=$CACHE_PASS

# Traffic: ASCII auth, 10 sets, 15 gets (10 hits, 5 misses), a delete.
python3 - "$data" "$user" "$pass" <<'EOF' || fail "traffic"
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
user, pw = sys.argv[2], sys.argv[3]
s = socket.create_connection((host, int(port)), timeout=5)
f = s.makefile("rb")
def call(req, lines=1):
    s.sendall(req)
    return [f.readline() for _ in range(lines)]
assert call(b"set %s 0 0 %d\r\n%s\r\n" % (user.encode(), len(pw), pw.encode())) == [b"STORED\r\n"], "auth"
for i in range(10):
    assert call(b"set k%d 0 0 5\r\nhello\r\n" % i) == [b"STORED\r\n"]
for i in range(15):
    reply = call(b"get k%d\r\n" % i)
    if reply[0].startswith(b"VALUE"):
        f.readline(); f.readline()
assert call(b"delete nope\r\n") == [b"NOT_FOUND\r\n"]
s.close()
EOF

# 2. promtool
# Scrape once the cores pushed their latency histograms (each second), so
# promtool sees histograms too.
for _ in $(seq 50); do
  http_get "http://$admin/metrics" >"$tmp/metrics.txt" || fail "GET /metrics"
  grep -q "^shoal_request_duration_seconds_bucket{cache=\"$cache_id\",class=\"get\"" "$tmp/metrics.txt" && break
  sleep 0.2
done
grep -q '^shoal_request_duration_seconds_bucket' "$tmp/metrics.txt" || fail "no latency histograms in /metrics after 10 s"
grep -q "^memcached_current_items{cache=\"$cache_id\"} 10$" "$tmp/metrics.txt" \
  || fail "no memcached_current_items{cache=\"$cache_id\"} 10 in /metrics"
if ! promtool check metrics <"$tmp/metrics.txt" >"$tmp/promtool.out" 2>&1; then
  cat "$tmp/promtool.out" >&2
  fail "promtool check metrics"
fi
[ -s "$tmp/promtool.out" ] && { cat "$tmp/promtool.out" >&2; fail "promtool reported problems"; }
echo "promtool check metrics: ok ($(grep -vc '^#' "$tmp/metrics.txt") samples)"

# 3. a real Prometheus server
prom_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: shoal
    metrics_path: /metrics
    static_configs:
      - targets: ["$admin"]
EOF
promtool check config "$tmp/prometheus.yml" >"$tmp/promtool-config.log" 2>&1 || fail "promtool check config"
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$tmp/prometheus.log" 2>&1 &
pids+=($!)
api="http://127.0.0.1:$prom_port/api/v1"

health=""
for _ in $(seq 60); do
  kill -0 "${pids[1]}" 2>/dev/null || fail "prometheus exited"
  health=$(http_get "$api/targets" 2>/dev/null | python3 -c '
import json, sys
t = json.load(sys.stdin)["data"]["activeTargets"]
print(" ".join("%s:%s" % (x["health"], x.get("lastError", "")) for x in t))' 2>/dev/null || true)
  [[ "$health" == up:* ]] && break
  sleep 0.5
done
[[ "$health" == up:* ]] || fail "target not up within 30 s (health: ${health:-none})"
echo "prometheus: target up"

query() {
  http_get "$api/query?query=$1" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["status"] == "success", r
for s in r["data"]["result"]:
    print(s["metric"].get("cache", "-"), s["value"][1])'
}
result=""
for _ in $(seq 30); do
  result=$(query memcached_current_items 2>/dev/null || true)
  [ -n "$result" ] && break
  sleep 0.5
done
[ -n "$result" ] || fail "query memcached_current_items: empty result"
echo "$result" | grep -qx -- "$cache_id 10" || fail "memcached_current_items{cache=\"$cache_id\"} != 10: $result"
echo "$result" | grep -qx -- "- 10" || fail "server-wide memcached_current_items != 10: $result"
# Latency histograms reach /metrics with the cores' next push (1 s).
hist=""
for _ in $(seq 30); do
  hist=$(query 'shoal_request_duration_seconds_count%7Bclass%3D%22get%22%7D' 2>/dev/null || true)
  [ -n "$hist" ] && break
  sleep 0.5
done
echo "$hist" | grep -qx -- "$cache_id 15" || fail "shoal_request_duration_seconds_count{class=\"get\"} for cache $cache_id != 15: ${hist:-none}"
echo "prometheus: memcached_current_items -> $(echo "$result" | tr '\n' ' ')"
echo "prometheus-check: PASS"
