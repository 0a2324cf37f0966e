#!/usr/bin/env bash
# Installs what the memcached t/ suite needs on a Debian machine (idempotent):
# perl (core modules only) and xz-utils (unpacks memcached's source tarball).
set -euo pipefail
need=()
perl -MTest::More -MIO::Socket::INET -e1 2>/dev/null || need+=(perl)
command -v xz >/dev/null || need+=(xz-utils)
command -v python3 >/dev/null || need+=(python3)
python3 -c "import venv, ensurepip" 2>/dev/null || need+=(python3-venv)
[ ${#need[@]} -eq 0 ] && exit 0
command -v apt-get >/dev/null || { echo "missing: ${need[*]} (and no apt-get to install them)"; exit 1; }
SUDO=(); [ "$(id -u)" = 0 ] || SUDO=(sudo)
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
