#!/usr/bin/env bash
# libmemcached's command-line tools against a running shoal (issue 11):
#   tests/clients/test_libmemcached_tools.sh HOST:PORT
# Debian's libmemcached-tools names them memc* (memcstat, memccp, ...);
# upstream names them mem* (memstat, memcp, ...): either is taken.
# memstat checks the version string: libmemcached parses it as
# major.minor.micro and fails ("strtol() failed to parse major version") on
# one it cannot read. memcapable (libmemcached's protocol checker) flushes
# the server. memdump is left out: it needs `stats cachedump`, which shoal
# does not implement.
set -euo pipefail
ADDR=$1
S=--servers=$ADDR
MEMCACHED_VERSION=1.6.18
fail() { echo "FAIL libmemcached-tools: $*" >&2; exit 1; }
tool() {
  command -v "mem$1" || command -v "memc$1" ||
    fail "no mem$1/memc$1: run scripts/install-test-deps.sh (libmemcached-tools)"
}
# One assignment a line: set -e sees each lookup's status.
STAT=$(tool stat)
CP=$(tool cp)
CAT=$(tool cat)
EXIST=$(tool exist)
TOUCH=$(tool touch)
RM=$(tool rm)
FLUSH=$(tool flush)
PING=$(tool ping)
SLAP=$(tool slap)
CAPABLE=$(tool capable)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# memstat: every stat, the version among them, over text and binary.
for proto in "" --binary; do
  out=$("$STAT" $proto "$S" 2>&1) || fail "memstat $proto: $out"
  grep -q "^[[:space:]]*version: $MEMCACHED_VERSION\$" <<<"$out" ||
    fail "memstat $proto shows no 'version: $MEMCACHED_VERSION': $out"
  grep -q "^[[:space:]]*shoal_version: [0-9]" <<<"$out" ||
    fail "memstat $proto shows no shoal_version: $out"
  out=$("$STAT" $proto "$S" --server-version 2>&1) || fail "memstat --server-version: $out"
  grep -q "^$ADDR $MEMCACHED_VERSION\$" <<<"$out" || fail "memstat $proto --server-version: $out"
done

# memcp / memcat / memexist / memtouch / memrm round trip on one key.
key=shoal-tools-$$.txt
printf 'line one\nline two %s\n' "$$" >"$WORK/$key"
out=$("$CP" "$S" "$WORK/$key" 2>&1) || fail "memcp: $out"
"$CAT" "$S" "$key" >"$WORK/got" 2>&1 || fail "memcat: $(cat "$WORK/got")"
# memcat ends the value with a newline of its own.
printf '\n' >>"$WORK/$key"
cmp -s "$WORK/$key" "$WORK/got" || fail "memcat returned $(od -c "$WORK/got" | head -5)"
"$EXIST" "$S" "$key" || fail "memexist: $key missing"
"$TOUCH" "$S" --expire=300 "$key" || fail "memtouch $key"
"$RM" "$S" "$key" || fail "memrm $key"
! "$EXIST" "$S" "$key" 2>/dev/null || fail "memexist: $key still there after memrm"
! "$CAT" "$S" "$key" >/dev/null 2>&1 || fail "memcat: $key still there after memrm"

# memflush empties the cache.
"$CP" "$S" "$WORK/$key" >/dev/null 2>&1 || fail "memcp before flush"
"$FLUSH" "$S" || fail "memflush"
! "$CAT" "$S" "$key" >/dev/null 2>&1 || fail "memcat: $key still there after memflush"

# memping, a short memslap load on both protocols.
"$PING" "$S" || fail "memping"
for proto in "" --binary; do
  out=$(timeout 60 "$SLAP" $proto "$S" --concurrency=2 --execute-number=200 2>&1) ||
    fail "memslap $proto: $out"
  grep -q "Time total" <<<"$out" || fail "memslap $proto: $out"
done

# memcapable: libmemcached's ASCII and binary protocol checks (flushes).
host=${ADDR%:*} port=${ADDR##*:}
out=$(timeout 60 "$CAPABLE" -h "$host" -p "$port" 2>&1) || fail "memcapable: $out"
grep -q "All tests passed" <<<"$out" || fail "memcapable: $out"
echo "libmemcached-tools: memstat memcp memcat memexist memtouch memrm memflush memping memslap memcapable ok"
