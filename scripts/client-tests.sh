#!/usr/bin/env bash
# Real clients against a running shoal: scripts/client-tests.sh HOST:PORT
# Installs pymemcache, pylibmc and python-binary-memcached into a private
# virtualenv (target/client-venv) the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/client-venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q pymemcache==4.0.0 pylibmc==1.6.3 python-binary-memcached==0.33.0
fi
"$VENV/bin/python" tests/clients/test_clients.py "$1"
