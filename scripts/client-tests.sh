#!/usr/bin/env bash
# Real clients against a running shoal: scripts/client-tests.sh HOST:PORT
# - pymemcache, pylibmc and python-binary-memcached, from a private
#   virtualenv (target/client-venv) made the first time (scripts/client-venv.sh);
# - libmemcached's command-line tools (memstat, memcp, memcat, memrm,
#   memflush, memslap, memcapable, ...), which check the version string;
# - php-memcached: getVersion and getStats on text and binary.
# The system packages come from scripts/install-test-deps.sh. memcapable
# flushes the server.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/client-venv.sh
target/client-venv/bin/python tests/clients/test_clients.py "$1"
tests/clients/test_libmemcached_tools.sh "$1"
php tests/clients/test_php_memcached.php "$1"
