#!/usr/bin/env bash
# Installs what the memcached t/ suite needs on a Debian machine (idempotent).
set -euo pipefail
need=()
perl -MTest::More -e1 2>/dev/null || need+=(perl)
command -v apt-get >/dev/null || { [ ${#need[@]} -eq 0 ] && exit 0; echo "need: ${need[*]} (no apt-get)"; exit 1; }
for pkg in perl libio-socket-ip-perl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
