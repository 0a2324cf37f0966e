#!/usr/bin/env bash
# Real clients against a running shoal: scripts/client-tests.sh HOST:PORT
# Installs pymemcache, pylibmc and python-binary-memcached into a private
# virtualenv (target/client-venv) the first time (scripts/client-venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/client-venv.sh
target/client-venv/bin/python tests/clients/test_clients.py "$1"
