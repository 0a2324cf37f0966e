#!/usr/bin/env bash
# TLS on the data port with real clients (pymemcache and
# python-binary-memcached with tls_context, openssl s_client, raw ssl
# sockets): tests/clients/test_tls.py starts every server itself, with
# certificates it makes in a scratch directory (nothing committed).
#   scripts/tls-test.sh [STEP...]   # open min_version deadline multi_tenant require
# Build first: cargo build --release --bins.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/shoal
[ -x "$BIN" ] || { echo "FAIL: $BIN not built (cargo build --release --bins)" >&2; exit 1; }
command -v openssl >/dev/null || scripts/install-test-deps.sh
command -v openssl >/dev/null || { echo "FAIL: openssl (the command) is needed: apt-get install openssl" >&2; exit 1; }
scripts/client-venv.sh
PY=target/client-venv/bin/python
# The certificates are made with the cryptography package.
"$PY" -c 'import cryptography' 2>/dev/null || target/client-venv/bin/pip install -q 'cryptography>=42'
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
SHOAL_BIN=$(pwd)/$BIN WORK=$WORK timeout 600 "$PY" tests/clients/test_tls.py "$@"
