#!/usr/bin/env bash
# Creates the private virtualenv the real-client tests use (target/client-venv)
# with pymemcache, pylibmc and python-binary-memcached; called by
# scripts/client-tests.sh and scripts/mt-client-tests.sh.
#
# pylibmc is built from source against the system's libmemcached (Debian:
# libmemcached-dev, libmemcached-awesome 1.1; scripts/install-test-deps.sh
# installs it), not taken as the binary wheel: the wheel bundles libmemcached
# 1.0.16, whose SASL code reads the server's LIST_MECHS answer into an
# uninitialised stack buffer without terminating it, so whether SASL PLAIN
# works depends on leftover stack bytes (it fails as "error 40 FAILED TO SEND
# AUTHENTICATION TO SERVER" after unrelated Python work); 1.1 zeroes it.
# A venv holding the wheel's pylibmc is rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/client-venv
if [ -x "$VENV/bin/python" ] &&
   ! "$VENV/bin/python" -c 'import _pylibmc, sys; sys.exit(_pylibmc.libmemcached_version.startswith("1.0."))' 2>/dev/null; then
  echo "client-venv: pylibmc there is the binary wheel (libmemcached 1.0); rebuilding $VENV" >&2
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  [ -f /usr/include/libmemcached-1.0/memcached.h ] || {
    echo "client-venv: libmemcached headers missing: run scripts/install-test-deps.sh (libmemcached-dev)" >&2; exit 1; }
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --no-binary pylibmc \
    pymemcache==4.0.0 pylibmc==1.6.3 python-binary-memcached==0.33.0 || { rm -rf "$VENV"; exit 1; }
fi
