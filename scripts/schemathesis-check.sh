#!/usr/bin/env bash
# Checks the MemCachier API v2 routes against their OpenAPI description
# (GET /api/v2/openapi.json, src/admin/openapi.json) with schemathesis:
#   1. starts target/release/shoal --multi-tenant (temporary data dir, free
#      ports, 127.0.0.1 only) and creates a cache;
#   2. schemathesis with the cache's primary credential (HTTP Basic) and the
#      path id pinned to the cache, stateful phase: through the document's
#      links, PATCH, DELETE and promote of a credential it just created;
#   3. every phase on every operation with ids generated (non-numbers: 400,
#      other caches: 403);
#   4. examples, coverage and fuzzing with the id pinned again, so the
#      success answers of every operation are checked too.
# Checks: no 5xx, every status documented, every body matching its schema.
# The runs are bounded (examples per operation and seconds). Operations are
# destructive (flush, credentials): fine against this throwaway server.
# schemathesis lives in a private venv (target/schemathesis-venv), made on
# first use. Everything it starts is stopped on exit.
#   SCHEMATHESIS_MAX_EXAMPLES=50 SCHEMATHESIS_MAX_TIME=45 scripts/schemathesis-check.sh  # per run
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

SCHEMATHESIS_VERSION=4.32.5
VENV=target/schemathesis-venv
BIN=${SHOAL_BIN:-target/release/shoal}
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-50}
MAX_TIME=${SCHEMATHESIS_MAX_TIME:-45}
fail() { echo "schemathesis-check: FAIL: $*" >&2; exit 1; }

command -v python3 >/dev/null || fail "python3 not found"
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION\$"; then
  echo "schemathesis-check: installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || fail "python3 -m venv"
  "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION" || fail "pip install schemathesis"
fi
st="$VENV/bin/schemathesis"
# Build (a no-op when up to date) so the binary serves the current openapi.json.
[ -n "${SHOAL_BIN:-}" ] || cargo build --release -q --bin shoal || fail "cargo build"

tmp=$(mktemp -d)
pids=()
. scripts/lib/mt-shoal.sh
cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || continue
    # A clean stop takes well under a second; do not hang CI on a stuck one.
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "schemathesis-check: FAIL: shoal did not exit within 10 s of SIGTERM; killed" >&2
      kill -9 "$pid" 2>/dev/null || true
      [ "$rc" -ne 0 ] || rc=1
    fi
    wait "$pid" 2>/dev/null || true
  done
  if [ "$rc" -ne 0 ] && [ -f "$tmp/shoal.log" ]; then
    # Panics and errors first: the alert checks' DNS warnings (one per
    # generated webhook URL) would push them out of the tail.
    echo "--- panics and errors in shoal.log" >&2
    grep -n -i -m 20 -E "panicked|ERROR" "$tmp/shoal.log" >&2 || echo "(none)" >&2
    echo "--- last lines of shoal.log, alert DNS warnings left out" >&2
    grep -v "alert URL host" "$tmp/shoal.log" | tail -n 30 >&2
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. shoal and a cache
mt_start "$tmp" -t 2
admin=$MT_ADMIN
echo "shoal: admin $admin"
mt_create_cache "$tmp" s 8MB
cache_id=$CACHE_ID user=$CACHE_USER pass=$CACHE_PASS

spec="http://$admin/api/v2/openapi.json"
python3 - "$spec" <<'EOF' || fail "GET $spec"
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    assert r.status == 200, r.status
    assert r.headers.get_content_type() == "application/json", r.headers["Content-Type"]
    doc = json.load(r)
assert doc["openapi"].startswith("3."), doc["openapi"]
print("openapi.json: %d paths" % len(doc["paths"]))
EOF

# 2, 3 and 4. schemathesis
run_schemathesis() {
  local what=$1 config=()
  shift
  if [ "${1:-}" = --config-file ]; then config=("$1" "$2"); shift 2; fi
  echo "== schemathesis: $what =="
  (cd "$tmp" && "$ROOT/$st" "${config[@]}" run "$spec" "$@" \
    --auth "$user:$pass" \
    --checks not_a_server_error,status_code_conformance,response_schema_conformance \
    --max-examples "$MAX_EXAMPLES" --max-time "$MAX_TIME" \
    --request-timeout 10 --generation-database none --seed 1 \
    --no-color --warnings off) || fail "schemathesis ($what)"
}
# PATCH, DELETE and promote of a credential must never reach the one these
# runs log in with: a PATCH {} takes its api capability away and every later
# request is 403. Links inferred from, or values taken out of, responses
# are off, and the stateful phase still found that username (schemathesis
# 4.32, seed 1, once POST credentials took a body), so every username path
# parameter is pinned to a second credential made for the runs to change.
cat >"$tmp/base.toml" <<'EOF'
[phases.stateful.inference]
algorithms = []
[phases.examples.extra-data-sources]
responses = false
[phases.coverage.extra-data-sources]
responses = false
[phases.fuzzing.extra-data-sources]
responses = false
EOF
target=$(python3 - "http://$admin/api/v2/caches/$cache_id/credentials" "$user" "$pass" <<'EOF'
import base64, json, sys, urllib.request
url, user, pw = sys.argv[1:]
req = urllib.request.Request(url, method="POST", headers={
    "Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()})
with urllib.request.urlopen(req, timeout=5) as r:
    assert r.status == 201, r.status
    print(json.load(r)["sasl_username"])
EOF
) || fail "POST credentials (the runs' target)"
printf '[parameters]\n"path.username" = "%s"\n\n' "$target" | cat - "$tmp/base.toml" >"$tmp/any-id.toml"
printf '[parameters]\n"path.id" = "%s"\n"path.username" = "%s"\n\n' "$cache_id" "$target" |
  cat - "$tmp/base.toml" >"$tmp/pinned.toml"
# Stateful first: it needs free credential slots (100 per cache) for its
# POST credentials, which the other runs' POST credentials use up.
run_schemathesis "id pinned to cache $cache_id, stateful" --config-file "$tmp/pinned.toml" --phases stateful
run_schemathesis "generated ids" --config-file "$tmp/any-id.toml"
run_schemathesis "id pinned to cache $cache_id" --config-file "$tmp/pinned.toml" --phases examples,coverage,fuzzing

# The server is still up, and the credential the runs used still reaches info.
kill -0 "${pids[0]}" 2>/dev/null || fail "shoal exited during the run"
python3 - "http://$admin/api/v2/caches/$cache_id/info" "$user" "$pass" <<'EOF' || fail "GET info after the runs"
import base64, json, sys, urllib.request
url, user, pw = sys.argv[1:]
req = urllib.request.Request(url, headers={
    "Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()})
with urllib.request.urlopen(req, timeout=5) as r:
    assert r.status == 200 and json.load(r)["id"] == int(url.split("/")[-2])
EOF
echo "schemathesis-check: PASS"
