#!/usr/bin/env bash
# Installs what the memcached t/ suite needs on a Debian machine (idempotent):
# perl (core modules only) and xz-utils (unpacks memcached's source tarball);
# for the client tests python3-venv, and Cyrus SASL's PLAIN plugin, which
# pylibmc's libmemcached loads from the system to speak SASL; libmemcached's
# command-line tools (libmemcached-tools: memstat/memcstat, memcp, ...) and
# php-cli with php-memcached for scripts/client-tests.sh; and promtool and
# prometheus for scripts/prometheus-check.sh (Debian's `prometheus` package,
# whose service is neither needed nor started here); PostgreSQL's server
# binaries for scripts/cluster-test.sh (Debian's `postgresql`, which starts
# its own throwaway cluster from /usr/lib/postgresql/*/bin; the system
# cluster the package may create is never used and is stopped here); the
# openssl command for scripts/tls-test.sh (s_client).
set -euo pipefail
need=()
perl -MTest::More -MIO::Socket::INET -e1 2>/dev/null || need+=(perl)
command -v xz >/dev/null || need+=(xz-utils)
command -v python3 >/dev/null || need+=(python3)
python3 -c "import venv, ensurepip" 2>/dev/null || need+=(python3-venv)
compgen -G "/usr/lib/*/sasl2/libplain.so*" >/dev/null || compgen -G "/usr/lib/sasl2/libplain.so*" >/dev/null || need+=(libsasl2-modules)
# pylibmc is built from source against libmemcached (scripts/client-venv.sh).
[ -f /usr/include/libmemcached-1.0/memcached.h ] || need+=(libmemcached-dev)
command -v cc >/dev/null || need+=(gcc)
{ command -v memcstat || command -v memstat; } >/dev/null || need+=(libmemcached-tools)
command -v php >/dev/null || need+=(php-cli)
command -v openssl >/dev/null || need+=(openssl)
php -r 'exit(class_exists("Memcached") ? 0 : 1);' 2>/dev/null || need+=(php-memcached)
python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' 2>/dev/null \
  || need+=(python3-dev)
prom=0
{ command -v promtool >/dev/null && command -v prometheus >/dev/null; } || prom=1
pg=0
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || pg=1
[ ${#need[@]} -eq 0 ] && [ "$prom" = 0 ] && [ "$pg" = 0 ] && exit 0
command -v apt-get >/dev/null || {
  [ "$prom" = 1 ] && need+=(prometheus)
  [ "$pg" = 1 ] && need+=(postgresql)
  echo "missing: ${need[*]} (and no apt-get to install them)"; exit 1
}
SUDO=(); [ "$(id -u)" = 0 ] || SUDO=(sudo)
"${SUDO[@]}" apt-get update -qq
if [ ${#need[@]} -gt 0 ]; then
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
if [ "$prom" = 1 ]; then
  # Only the binaries are used. On a machine without systemd the package's
  # maintainer scripts may fail to set up its service: that is fine as long
  # as promtool and prometheus are there.
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \
    || echo "note: apt-get install prometheus reported an error (no systemd?); checking the binaries"
  command -v promtool >/dev/null && command -v prometheus >/dev/null \
    || { echo "promtool/prometheus still missing after installing the prometheus package"; exit 1; }
fi
if [ "$pg" = 1 ]; then
  # Only the binaries are used. The package's maintainer scripts create and
  # may start a system cluster (or fail to, without systemd): stop it and go
  # on as long as initdb and pg_ctl are there.
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql \
    || echo "note: apt-get install postgresql reported an error (no systemd?); checking the binaries"
  if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name _ status _; do
      if [ "$status" = online ]; then "${SUDO[@]}" pg_ctlcluster "$ver" "$name" stop || true; fi
    done
  fi
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null \
    || { echo "initdb/pg_ctl still missing after installing the postgresql package"; exit 1; }
fi
