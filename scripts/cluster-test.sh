#!/usr/bin/env bash
# shoal cluster mode end to end:
#   scripts/cluster-test.sh [--selftest]
# Runs tests/clients/test_cluster.py with the client venv's python: it starts
# a throwaway PostgreSQL (Debian's packages, /usr/lib/postgresql/*/bin; as
# root through `runuser -u postgres`) on a free loopback port, three
# `shoal --multi-tenant --control-plane postgres://...` nodes on it, and
# checks credential propagation, ketama key spread (pylibmc, php-memcached),
# API v2 stats, the plan filling before evictions, credential removal,
# drain, kill -9 + failover + rejoin, and a PostgreSQL restart. Everything is
# stopped and removed at the end (SHOAL_KEEP_WORK=1 keeps the temp dir).
# --selftest checks the harness itself (PostgreSQL start/restart/stop, node
# start/restart/stop without cluster flags, the parsers).
# Builds nothing: cargo build --release --bins first. Needs PostgreSQL, php-
# memcached and libmemcached-dev (scripts/install-test-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/shoal
case "${1:-}" in
  ""|--selftest) ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) echo "usage: $0 [--selftest]" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "usage: $0 [--selftest]" >&2; exit 2; }
[ -x "$BIN" ] || { echo "FAIL: $BIN not built (cargo build --release --bins)" >&2; exit 1; }
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || {
  echo "FAIL: no PostgreSQL server (/usr/lib/postgresql/*/bin/initdb): run scripts/install-test-deps.sh" >&2; exit 1; }
scripts/client-venv.sh
SHOAL_BIN=$BIN exec target/client-venv/bin/python tests/clients/test_cluster.py "$@"
