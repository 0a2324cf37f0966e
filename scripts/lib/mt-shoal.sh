# Sourced by the scripts that test a multi-tenant shoal: start one and
# create a hosted cache. Both use the caller's BIN (the shoal binary), its
# pids array (everything the caller's cleanup stops) and its fail().

# mt_start DIR [shoal args...]: starts `BIN --multi-tenant --data-dir DIR/data`
# on free 127.0.0.1 ports, logging to DIR/shoal.log, and waits (up to 30 s)
# for it to listen. Sets MT_PID, MT_ADMIN (the admin address) and MT_DATA
# (the data-plane address).
mt_start() {
  local dir=$1; shift
  mkdir -p "$dir/data"
  "$BIN" --multi-tenant --data-dir "$dir/data" --admin-addr 127.0.0.1:0 \
    -l 127.0.0.1 -p 0 "$@" 2>"$dir/shoal.log" &
  MT_PID=$!
  pids+=("$MT_PID")
  for _ in $(seq 300); do
    grep -q '^shoal listening on ' "$dir/shoal.log" && break
    kill -0 "$MT_PID" 2>/dev/null || fail "shoal exited: $(tail -n 5 "$dir/shoal.log")"
    sleep 0.1
  done
  grep -q '^shoal listening on ' "$dir/shoal.log" || fail "shoal did not start within 30 s"
  MT_ADMIN=$(sed -n 's/^shoal admin listening on \([^ ]*\).*/\1/p' "$dir/shoal.log" | head -n1)
  MT_DATA=$(sed -n 's/^shoal listening on \([^ ]*\).*/\1/p' "$dir/shoal.log" | head -n1)
  [ -n "$MT_ADMIN" ] || fail "no 'shoal admin listening on' line"
  case "$MT_ADMIN" in 127.0.0.1:*) ;; *) fail "admin endpoint not on 127.0.0.1: $MT_ADMIN" ;; esac
}

# mt_create_cache DIR NAME MEMORY: `shoal cache create` against the server
# mt_start DIR started. Sets CACHE_ID, CACHE_USER and CACHE_PASS.
mt_create_cache() {
  local dir=$1 name=$2 memory=$3 out
  out=$("$BIN" cache create --name "$name" --memory "$memory" --admin "$MT_ADMIN" \
    --data-dir "$dir/data") || fail "cache create"
  CACHE_ID=$(sed -n 's/^Created cache \([0-9]*\).*/\1/p' <<<"$out")
  CACHE_USER=$(sed -n 's/^MEMCACHIER_USERNAME=//p' <<<"$out")
  CACHE_PASS=$(sed -n 's/^MEMCACHIER_PASSWORD=//p' <<<"$out")
  [ -n "$CACHE_ID" ] && [ -n "$CACHE_USER" ] && [ -n "$CACHE_PASS" ] ||
    fail "unexpected cache create output: $out"
}
