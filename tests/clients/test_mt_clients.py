"""Real memcached clients against shoal in multi-tenant mode: pymemcache
(ASCII, MemCachier `set <user> <pass>` auth), pylibmc (binary, SASL PLAIN
through libmemcached) and python-binary-memcached (binary, SASL PLAIN), plus
raw sockets that check the exact bytes on the wire.

Run through scripts/mt-client-tests.sh, which starts
`shoal --multi-tenant --auth-timeout 1`, creates two caches and a read-only
and a no-flush credential with the CLI, and passes everything in the
environment:

  SHOAL_SERVER        HOST:PORT of the memcached listener
  SHOAL_BIN           the shoal binary (for `shoal cache set`, `credential ...`)
  SHOAL_ADMIN         HOST:PORT of the admin endpoint
  SHOAL_DATA_DIR      the server's data directory (operator.token)
  SHOAL_AUTH_TIMEOUT  the server's --auth-timeout in seconds
  MT_A_ID MT_A_USER MT_A_PASS      cache A and its primary credential
  MT_B_ID MT_B_USER MT_B_PASS      cache B and its primary credential
  MT_RO_USER MT_RO_PASS            cache A, added with --no-write
  MT_NF_USER MT_NF_PASS            cache A, added with --no-flush

Every check raises AssertionError on a mismatch; the script exits non-zero
at the first one. Every wait is bounded in time.
"""
import glob
import os
import socket
import struct
import subprocess
import sys
import time

from wire import recv_exact, recv_line

HOST = PORT = None
CFG = {}

AUTH_FAILURE_ASCII = b"CLIENT_ERROR authentication failure\r\n"
UNAUTHENTICATED_ASCII = b"CLIENT_ERROR unauthenticated\r\n"
FLUSH_REFUSED_ASCII = b"CLIENT_ERROR flush_all not allowed\r\n"

# Binary protocol.
REQ_MAGIC, RES_MAGIC = 0x80, 0x81
OP_GET, OP_SET, OP_DELETE, OP_INCR = 0x00, 0x01, 0x04, 0x05
OP_FLUSH, OP_NOOP = 0x08, 0x0A
OP_SASL_LIST_MECHS, OP_SASL_AUTH = 0x20, 0x21
ST_OK, ST_NOT_FOUND, ST_NOT_STORED, ST_AUTH_ERROR = 0x00, 0x01, 0x05, 0x20
HEADER = struct.Struct("!BBHBBHLLQ")

# How long the server may take to close a disabled cache's or a removed
# credential's live connections (spec: about 1 s).
CLOSE_WITHIN = 3.0


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def text(v):
    """A value read back as str, whichever way the client decoded it (a
    value written by another client with flags 0 may come back as bytes)."""
    return v.decode() if isinstance(v, bytes) else v


def expect_raises(fn, exc_types, what):
    """Calls fn() and returns the exception it raises, which must be one of
    exc_types; a normal return or any other exception fails the check."""
    try:
        result = fn()
    except exc_types as e:
        return e
    except Exception as e:  # noqa: BLE001 - reported precisely below
        raise AssertionError(f"{what}: expected {exc_types}, got {type(e).__name__}: {e!r}") from e
    raise AssertionError(f"{what}: expected {exc_types}, but it returned {result!r}")


# ---------------------------------------------------------------- the CLI


def cli(*args):
    """Runs `shoal <args> --admin ADDR --data-dir DIR`; returns stdout."""
    cmd = [CFG["bin"], *args, "--admin", CFG["admin"], "--data-dir", CFG["data_dir"]]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout


def output_value(out, key):
    for line in out.splitlines():
        if line.startswith(key + "="):
            return line[len(key) + 1:]
    raise AssertionError(f"no {key}= line in:\n{out}")


# How long a change made through the admin endpoint may take to reach every
# core after the CLI has returned. Each core applies it on its own (measured:
# 5-45 ms apart), so one connection seeing it proves nothing about the next.
APPLY_WITHIN = 1.0
# Consecutive connections that must all see the change: connections are
# spread over the cores, so a core still behind is missed with odds 2^-STREAK.
APPLY_STREAK = 30


def ascii_auth_reply(user, password):
    s = raw_connect()
    try:
        s.sendall(ascii_auth_bytes(user, password))
        return recv_line(s)
    finally:
        s.close()


def wait_auth(user, password, accepted, what):
    """Polls raw ASCII auths until APPLY_STREAK consecutive ones are
    accepted (`STORED`) or refused (`CLIENT_ERROR authentication failure`)
    as wanted, within APPLY_WITHIN s; any other reply fails at once."""
    t0 = time.monotonic()
    want = b"STORED\r\n" if accepted else AUTH_FAILURE_ASCII
    streak, last_other = 0, None
    while streak < APPLY_STREAK:
        got = ascii_auth_reply(user, password)
        check(got in (b"STORED\r\n", AUTH_FAILURE_ASCII), f"{what}: auth reply {got!r}")
        took = time.monotonic() - t0
        if got == want:
            streak += 1
        else:
            streak, last_other = 0, took
            check(took < APPLY_WITHIN, f"{what}: auth still answers {got!r} {APPLY_WITHIN}s after the CLI returned")
    if last_other is not None:
        print(f"  {what}: every core applied it within {last_other * 1000:.0f} ms of the CLI returning")


def disable_cache(cache_id):
    cli("cache", "set", "--id", str(cache_id), "--disable")


def enable_cache(cache_id):
    cli("cache", "set", "--id", str(cache_id), "--enable")


def add_credential(cache_id, *flags):
    out = cli("credential", "add", "--cache", str(cache_id), *flags)
    return output_value(out, "MEMCACHIER_USERNAME"), output_value(out, "MEMCACHIER_PASSWORD")


def remove_credential(cache_id, username):
    cli("credential", "remove", "--cache", str(cache_id), username)


# ---------------------------------------------------------------- raw sockets


def raw_connect():
    s = socket.create_connection((HOST, PORT), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def wait_closed(s, within, what):
    """Waits up to `within` seconds for the peer to close; returns (bytes
    received before the close, seconds it took)."""
    t0 = time.monotonic()
    deadline = t0 + within
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{what}: still open after {within}s (received {data!r})")
        s.settimeout(left)
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            return data, time.monotonic() - t0
        data += chunk


def ascii_auth_bytes(user, password):
    p = password.encode()
    return b"set %s 0 0 %d\r\n%s\r\n" % (user.encode(), len(p), p)


def ascii_login(user, password):
    s = raw_connect()
    s.sendall(ascii_auth_bytes(user, password))
    reply = recv_line(s)
    check(reply == b"STORED\r\n", f"ascii auth of {user}: {reply!r}")
    return s


def ascii_cmd(s, line, data=None):
    s.sendall(line + b"\r\n" + (data + b"\r\n" if data is not None else b""))
    return recv_line(s)


def bin_request(opcode, key=b"", extras=b"", value=b"", opaque=0, cas=0):
    return HEADER.pack(REQ_MAGIC, opcode, len(key), len(extras), 0, 0,
                       len(extras) + len(key) + len(value), opaque, cas) + extras + key + value


def bin_response(s):
    """(magic, opcode, keylen, extlen, datatype, status, bodylen, opaque, cas), body"""
    hdr = HEADER.unpack(recv_exact(s, 24))
    body = recv_exact(s, hdr[6]) if hdr[6] else b""
    return hdr, body


def bin_call(s, opcode, **kw):
    s.sendall(bin_request(opcode, **kw))
    hdr, body = bin_response(s)
    check(hdr[0] == RES_MAGIC and hdr[1] == opcode, f"binary response header {hdr}")
    return hdr, body


def sasl_plain(s, user, password):
    """Returns (status, body) of a SASL AUTH PLAIN."""
    hdr, body = bin_call(s, OP_SASL_AUTH, key=b"PLAIN",
                         value=b"\0" + user.encode() + b"\0" + password.encode())
    return hdr[5], body


def bin_login(user, password):
    s = raw_connect()
    status, body = sasl_plain(s, user, password)
    check((status, body) == (ST_OK, b"Authenticated"), f"binary auth of {user}: {status:#x} {body!r}")
    return s


def bin_set(s, key, value):
    return bin_call(s, OP_SET, key=key, extras=struct.pack("!LL", 0, 0), value=value)[0][5]


# ---------------------------------------------------------------- clients


def pymemcache_client(user=None, password=None):
    """A pymemcache client that sends the MemCachier auth `set` as the first
    command of every connection it opens (pymemcache has no auth of its own).
    A refused auth raises what pymemcache raises for that reply line
    (MemcacheClientError(b"authentication failure"))."""
    from pymemcache.client.base import Client, _readline
    from pymemcache.exceptions import MemcacheUnknownError

    class MemCachierClient(Client):
        def _connect(self):
            super()._connect()
            if user is None:
                return
            try:
                self.sock.sendall(ascii_auth_bytes(user, password))
                _, line = _readline(self.sock, b"")
            except Exception:
                self.close()
                raise
            if line != b"STORED":
                self.close()
                self._raise_errors(line, b"set")
                raise MemcacheUnknownError(line[:64])

    return MemCachierClient((HOST, PORT), connect_timeout=5, timeout=5)


def require_sasl_plain_plugin():
    """libmemcached's SASL goes through Cyrus libsasl2, which loads PLAIN
    from a plugin (Debian: libsasl2-modules). Without it every SASL attempt
    fails on the client side ("error 40 ... no mechanism available"): say
    so up front instead."""
    dirs = [d for d in os.environ.get("SASL_PATH", "").split(":") if d]
    patterns = [os.path.join(d, "libplain.so*") for d in dirs] or [
        "/usr/lib*/sasl2/libplain.so*", "/usr/lib/*/sasl2/libplain.so*", "/usr/local/lib*/sasl2/libplain.so*"]
    found = [f for pat in patterns for f in glob.glob(pat)]
    check(found, "no SASL PLAIN plugin (sasl2/libplain.so) on this machine, so pylibmc cannot "
                 "authenticate: install libsasl2-modules (Debian/Ubuntu; scripts/install-test-deps.sh "
                 "does) or cyrus-sasl-plain (Fedora/RHEL), or set SASL_PATH to its directory")


def pylibmc_client(user=None, password=None):
    import pylibmc

    if not pylibmc.support_sasl:
        raise AssertionError(
            "pylibmc was built against a libmemcached without SASL support, so it "
            "cannot authenticate to a multi-tenant server; install a SASL-enabled "
            "libmemcached (Debian: libmemcached-dev, which brings libsasl2-dev; "
            "scripts/install-test-deps.sh) and rebuild pylibmc from source: "
            "rm -rf target/client-venv && scripts/client-venv.sh")
    kw = {}
    if user is not None:
        kw = {"username": user, "password": password}
    return pylibmc.Client([f"{HOST}:{PORT}"], binary=True,
                          behaviors={"connect_timeout": 2000}, **kw)


def bmemcached_client(user=None, password=None):
    import bmemcached

    return bmemcached.Client((f"{HOST}:{PORT}",), user, password, socket_timeout=5)


def bm_server(c):
    return next(iter(c.servers))


# ---------------------------------------------------------------- wire bytes


def unknown_username():
    """Shaped like the server's usernames (same length, hex) but nobody's."""
    known = {CFG["a"][1], CFG["b"][1], CFG["ro"][0], CFG["nf"][0]}
    a = CFG["a"][1]
    for shift in range(1, 16):
        u = "".join("%X" % ((int(ch, 16) + shift) % 16) if ch in "0123456789abcdefABCDEF" else ch for ch in a)
        if u not in known:
            return u
    raise AssertionError("no unknown username")


def wire_section():
    a_user, a_pass = CFG["a"][1], CFG["a"][2]

    # ASCII: a command before auth.
    s = raw_connect()
    s.sendall(b"get foo\r\n")
    got = recv_line(s)
    check(got == UNAUTHENTICATED_ASCII, f"ascii pre-auth get: {got!r}")
    s.close()

    # ASCII: a wrong password for a real username, and an unknown username.
    for user, pw in [(a_user, a_pass + "x"), (a_user, "wrong"), (unknown_username(), a_pass),
                     (a_user, CFG["b"][2])]:
        s = raw_connect()
        s.sendall(ascii_auth_bytes(user, pw))
        got = recv_line(s)
        check(got == AUTH_FAILURE_ASCII, f"ascii bad auth {user}/{pw}: {got!r}")
        s.close()
    # A key not shaped like a username with a value without a space is
    # neither form (src/tenancy/ascii_auth.rs).
    s = raw_connect()
    s.sendall(ascii_auth_bytes("nosuchuser", a_pass))
    got = recv_line(s)
    check(got == b"CLIENT_ERROR bad authentication token format\r\n", f"ascii auth, malformed token: {got!r}")
    s.close()

    # ASCII: good auth, then ordinary commands on the same connection.
    s = ascii_login(a_user, a_pass)
    check(ascii_cmd(s, b"set wire:k 5 0 2", b"hi") == b"STORED\r\n", "ascii set after auth")
    s.sendall(b"get wire:k\r\n")
    got = recv_exact(s, len(b"VALUE wire:k 5 2\r\nhi\r\nEND\r\n"))
    check(got == b"VALUE wire:k 5 2\r\nhi\r\nEND\r\n", f"ascii get after auth: {got!r}")
    s.close()

    # Binary: a GET before auth is refused with 0x20 "Auth failure." (header
    # exact, opaque echoed) and the server closes the connection.
    s = raw_connect()
    s.sendall(bin_request(OP_GET, key=b"foo", opaque=0xDEADBEEF))
    raw = recv_exact(s, 24)
    hdr = HEADER.unpack(raw)
    check(hdr[0] == RES_MAGIC and hdr[1] == OP_GET, f"binary pre-auth magic/opcode: {raw.hex()}")
    check(hdr[2] == 0 and hdr[3] == 0 and hdr[4] == 0, f"binary pre-auth keylen/extlen/datatype: {raw.hex()}")
    check(raw[6:8] == b"\x00\x20", f"binary pre-auth status bytes: {raw[6:8].hex()}")
    check(hdr[6] == len(b"Auth failure."), f"binary pre-auth bodylen: {hdr[6]}")
    check(hdr[7] == 0xDEADBEEF, f"binary pre-auth opaque not echoed: {hdr[7]:#x}")
    body = recv_exact(s, hdr[6])
    check(body == b"Auth failure.", f"binary pre-auth body: {body!r}")
    rest, _ = wait_closed(s, 2.0, "binary connection after a pre-auth command")
    check(rest == b"", f"bytes after the binary auth failure: {rest!r}")
    s.close()

    # Binary: LIST_MECHS, a failed AUTH, then a good one on a new connection.
    s = raw_connect()
    hdr, body = bin_call(s, OP_SASL_LIST_MECHS)
    check(hdr[5] == ST_OK and body == b"PLAIN", f"LIST_MECHS: status {hdr[5]:#x} body {body!r}")
    status, body = sasl_plain(s, a_user, "wrong")
    check((status, body) == (ST_AUTH_ERROR, b"Auth failure."), f"SASL bad password: {status:#x} {body!r}")
    s.close()
    s = raw_connect()
    status, body = sasl_plain(s, unknown_username(), a_pass)
    check((status, body) == (ST_AUTH_ERROR, b"Auth failure."), f"SASL unknown user: {status:#x} {body!r}")
    s.close()
    s = bin_login(a_user, a_pass)
    hdr, body = bin_call(s, OP_GET, key=b"wire:k")  # written over ASCII above
    check(hdr[5] == ST_OK and body == struct.pack("!L", 5) + b"hi", f"binary get after SASL: {hdr} {body!r}")
    s.close()

    # Auth timeout: idle unauthenticated connections (ASCII and binary) are
    # closed after --auth-timeout; an authenticated one is not.
    timeout = float(CFG["auth_timeout"])
    idle_ascii, idle_bin = raw_connect(), raw_connect()
    hdr, body = bin_call(idle_bin, OP_SASL_LIST_MECHS)  # allowed before auth; still unauthenticated
    check(hdr[5] == ST_OK and body == b"PLAIN", f"LIST_MECHS before idling: {hdr} {body!r}")
    authed = ascii_login(a_user, a_pass)
    t0 = time.monotonic()
    for name, sock in [("ascii", idle_ascii), ("binary", idle_bin)]:
        left = t0 + timeout + 3.0 - time.monotonic()
        data, _ = wait_closed(sock, max(left, 0.1), f"idle unauthenticated {name} connection")
        took = time.monotonic() - t0
        check(took >= timeout * 0.5, f"idle {name} connection closed after only {took:.2f}s")
        if data:
            print(f"  note: server sent {data!r} before closing the idle {name} connection")
        print(f"  idle unauthenticated {name} connection closed after {took:.2f}s")
        sock.close()
    while time.monotonic() < t0 + timeout + 0.5:
        time.sleep(0.05)
    check(ascii_cmd(authed, b"set wire:k2 0 0 1", b"x") == b"STORED\r\n",
          "an authenticated connection outlives --auth-timeout")
    authed.close()

    # A half-sent auth command does not reset the timer forever: the
    # connection still goes (it never authenticated).
    s = raw_connect()
    s.sendall(b"set " + a_user.encode())
    wait_closed(s, timeout + 3.0, "connection with a partial auth line")
    s.close()


# ---------------------------------------------------------------- round trips


def pymemcache_roundtrips():
    _, a_user, a_pass = CFG["a"]
    _, b_user, b_pass = CFG["b"]
    a, b = pymemcache_client(a_user, a_pass), pymemcache_client(b_user, b_pass)
    p = "mt:pm:"
    check(a.set(p + "k", b"A", noreply=False) is True, "set on A")
    check(b.set(p + "k", b"B", noreply=False) is True, "set on B")
    check(a.get(p + "k") == b"A", "A reads its own value")
    check(b.get(p + "k") == b"B", "B reads its own value")
    check(a.set_many({p + "x": b"1", p + "y": b"2"}, noreply=False) == [], "set_many on A")
    got = a.get_many([p + "k", p + "x", p + "y", p + "missing"])
    check(got == {p + "k": b"A", p + "x": b"1", p + "y": b"2"}, f"get_many on A: {got}")
    check(b.get(p + "x") is None, "A's key invisible to B")
    check(b.get_many([p + "x", p + "y"]) == {}, "A's keys invisible to B (multi-get)")
    check(a.incr(p + "x", 5) == 6, "incr on A")
    check(a.decr(p + "x", 2) == 4, "decr on A")
    check(b.incr(p + "x", 1) is None, "incr on B misses A's key")
    check(a.delete(p + "y", noreply=False) is True, "delete on A")
    check(a.get(p + "y") is None, "deleted")
    check(b.delete(p + "k", noreply=False) is True, "delete on B")
    check(a.get(p + "k") == b"A", "B's delete left A's key")
    check(b.set(p + "k", b"B", noreply=False), "set on B again")
    check(a.flush_all(noreply=False) is True, "flush_all on A")
    check(a.get(p + "k") is None and a.get(p + "x") is None, "A flushed")
    check(b.get(p + "k") == b"B", "A's flush_all left B's keys")
    a.close()
    b.close()


def pylibmc_roundtrips():
    _, a_user, a_pass = CFG["a"]
    _, b_user, b_pass = CFG["b"]
    a, b = pylibmc_client(a_user, a_pass), pylibmc_client(b_user, b_pass)
    p = "mt:pl:"
    check(a.set(p + "k", "A"), "set on A")
    check(b.set(p + "k", "B"), "set on B")
    check(a.get(p + "k") == "A", "A reads its own value")
    check(b.get(p + "k") == "B", "B reads its own value")
    check(a.set_multi({p + "x": "1", p + "y": "2"}) == [], "set_multi on A")
    got = a.get_multi([p + "k", p + "x", p + "y", p + "missing"])
    check(got == {p + "k": "A", p + "x": "1", p + "y": "2"}, f"get_multi on A: {got}")
    check(b.get(p + "x") is None, "A's key invisible to B")
    check(b.get_multi([p + "x", p + "y"]) == {}, "A's keys invisible to B (multi-get)")
    check(a.incr(p + "x", 5) == 6, "incr on A")
    check(a.decr(p + "x", 2) == 4, "decr on A")
    check(a.delete(p + "y"), "delete on A")
    check(a.get(p + "y") is None, "deleted")
    big = "v" * 300_000
    check(a.set(p + "big", big), "big set on A")
    check(a.get(p + "big") == big, "big get on A")
    check(a.flush_all(), "flush_all on A")
    check(a.get(p + "k") is None and a.get(p + "big") is None, "A flushed")
    check(b.get(p + "k") == "B", "A's flush_all left B's keys")
    a.disconnect_all()
    b.disconnect_all()


def bmemcached_roundtrips():
    _, a_user, a_pass = CFG["a"]
    _, b_user, b_pass = CFG["b"]
    a, b = bmemcached_client(a_user, a_pass), bmemcached_client(b_user, b_pass)
    p = "mt:bm:"
    check(a.set(p + "k", "A"), "set on A")
    check(bm_server(a).authenticated, "bmemcached authenticated to A")
    check(b.set(p + "k", "B"), "set on B")
    check(a.get(p + "k") == "A", "A reads its own value")
    check(b.get(p + "k") == "B", "B reads its own value")
    a.set_multi({p + "x": "1", p + "y": "2"})
    got = a.get_multi([p + "k", p + "x", p + "y", p + "missing"])
    check(got == {p + "k": "A", p + "x": "1", p + "y": "2"}, f"get_multi on A: {got}")
    check(b.get(p + "x") is None, "A's key invisible to B")
    check(b.get_multi([p + "x", p + "y"]) == {}, "A's keys invisible to B (multi-get)")
    check(a.incr(p + "x", 5) == 6, "incr on A")
    check(a.decr(p + "x", 2) == 4, "decr on A")
    check(a.delete(p + "y"), "delete on A")
    check(a.get(p + "y") is None, "deleted")
    check(a.flush_all(), "flush_all on A")
    check(a.get(p + "k") is None and a.get(p + "x") is None, "A flushed")
    check(b.get(p + "k") == "B", "A's flush_all left B's keys")
    a.disconnect_all()
    b.disconnect_all()


# ---------------------------------------------------------------- refusals


def pymemcache_refused(user, password, reply, what):
    """A pymemcache get with these credentials raises MemcacheClientError
    carrying exactly `reply` (the CLIENT_ERROR text)."""
    from pymemcache.exceptions import MemcacheClientError

    c = pymemcache_client(user, password)
    e = expect_raises(lambda: c.get("mt:any"), MemcacheClientError, what)
    check(e.args == (reply,), f"{what}: pymemcache error {e.args!r}, wanted {reply!r}")
    c.close()


def pylibmc_refused(user, password, what):
    """A pylibmc set with these credentials fails with libmemcached's
    MEMCACHED_AUTH_FAILURE (error 41): for a refused SASL AUTH, and for a
    command the server answers with 0x20 (no credentials). A set, because
    libmemcached sends a single get as a quiet GETKQ + NOOP and reports the
    0x20 answer to that as a miss, then the next call as ServerDown."""
    import pylibmc

    c = pylibmc_client(user, password)
    e = expect_raises(lambda: c.set("mt:any", "v"), pylibmc.Error, what)
    check(type(e) is pylibmc.Error and str(e).startswith("error 41 from memcached_set"),
          f"{what}: pylibmc error {type(e).__name__}: {e} (wanted error 41, AUTHENTICATION FAILURE)")
    c.disconnect_all()
    return e


def bmemcached_refused(user, password, what):
    """python-binary-memcached sees status 0x20 (MemcachedException code 32)."""
    from bmemcached.exceptions import MemcachedException

    c = bmemcached_client(user, password)
    e = expect_raises(lambda: c.get("mt:any"), MemcachedException, what)
    check(e.code == ST_AUTH_ERROR, f"{what}: bmemcached code {e.code}, wanted {ST_AUTH_ERROR}")
    check("Auth failure." in e.message, f"{what}: bmemcached message {e.message!r}")
    check(not bm_server(c).authenticated, f"{what}: bmemcached thinks it authenticated")
    c.disconnect_all()


def refused_everywhere(user, password, what):
    pymemcache_refused(user, password, b"authentication failure", f"pymemcache {what}")
    pylibmc_refused(user, password, f"pylibmc {what}")
    bmemcached_refused(user, password, f"bmemcached {what}")


def wrong_password_section():
    _, a_user, a_pass = CFG["a"]
    refused_everywhere(a_user, a_pass + "nope", "wrong password")
    # The right password of another cache's user is wrong too.
    refused_everywhere(a_user, CFG["b"][2], "B's password for A's user")


def no_credentials_section():
    from bmemcached.exceptions import MemcachedException

    pymemcache_refused(None, None, b"unauthenticated", "pymemcache without credentials")

    pylibmc_refused(None, None, "pylibmc without credentials")

    # python-binary-memcached skips SASL without a username: its first
    # command gets 0x20 and the server then closes the connection.
    c = bmemcached_client()
    e = expect_raises(lambda: c.get("mt:any"), MemcachedException, "bmemcached without credentials")
    check(e.code == ST_AUTH_ERROR, f"bmemcached without credentials: code {e.code}")
    check(bm_server(c).noop() == 0xFFFFFFFF, "server closed the connection after the refused command")
    c.disconnect_all()


def disabled_cache_section():
    a_id, a_user, a_pass = CFG["a"]
    _, b_user, b_pass = CFG["b"]
    live_ascii = ascii_login(a_user, a_pass)
    live_bin = bin_login(a_user, a_pass)
    disable_cache(a_id)
    try:
        t0 = time.monotonic()
        for name, sock in [("ascii", live_ascii), ("binary", live_bin)]:
            wait_closed(sock, CLOSE_WITHIN, f"live {name} connection of a disabled cache")
            print(f"  live {name} connection of the disabled cache closed {time.monotonic() - t0:.2f}s "
                  "after the CLI returned")
            sock.close()
        wait_auth(a_user, a_pass, False, "disable")
        refused_everywhere(a_user, a_pass, "disabled cache")
        s = raw_connect()
        s.sendall(ascii_auth_bytes(a_user, a_pass))
        got = recv_line(s)
        check(got == AUTH_FAILURE_ASCII, f"ascii auth to a disabled cache: {got!r}")
        s.close()
        # The other cache is unaffected.
        b = pymemcache_client(b_user, b_pass)
        check(b.set("mt:dis", b"1", noreply=False) and b.get("mt:dis") == b"1", "B works while A is disabled")
        b.close()
    finally:
        enable_cache(a_id)
    wait_auth(a_user, a_pass, True, "enable")
    c = pymemcache_client(a_user, a_pass)
    check(c.set("mt:dis", b"2", noreply=False) and c.get("mt:dis") == b"2", "pymemcache on re-enabled A")
    c.close()
    c = pylibmc_client(a_user, a_pass)
    check(c.set("mt:dis", "3") and c.get("mt:dis") == "3", "pylibmc on re-enabled A")
    c.disconnect_all()
    c = bmemcached_client(a_user, a_pass)
    check(c.set("mt:dis", "4") and c.get("mt:dis") == "4", "bmemcached on re-enabled A")
    c.disconnect_all()


def poll_until_fails(op, errors, what, within=CLOSE_WITHIN):
    """Calls op() every 50 ms until it raises one of `errors` or returns
    something falsy; fails if neither happens within `within` s. Returns
    (the exception or falsy result, seconds)."""
    t0 = time.monotonic()
    while True:
        try:
            r = op()
        except errors as e:
            return e, time.monotonic() - t0
        if not r:
            return r, time.monotonic() - t0
        if time.monotonic() - t0 > within:
            raise AssertionError(f"{what}: still working {within}s after the credential was removed")
        time.sleep(0.05)


def revoked_credential_section():
    import pylibmc
    from bmemcached.exceptions import MemcachedException
    from pymemcache.exceptions import MemcacheUnexpectedCloseError

    a_id, a_user, a_pass = CFG["a"]
    user, pw = add_credential(a_id)
    check(user != a_user, "a second credential has its own username")
    wait_auth(user, pw, True, "credential add")

    primary = pymemcache_client(a_user, a_pass)
    check(primary.set("mt:rev", b"shared", noreply=False), "primary set")

    pm = pymemcache_client(user, pw)
    check(pm.get("mt:rev") == b"shared", "second credential sees the same cache (pymemcache)")
    pl = pylibmc_client(user, pw)
    check(text(pl.get("mt:rev")) == "shared", "second credential works (pylibmc)")
    bm = bmemcached_client(user, pw)
    check(bm.set("mt:rev-bm", "1") and bm.get("mt:rev") == "shared", "second credential works (bmemcached)")
    bm_conn = bm_server(bm).connection
    raw_a = ascii_login(user, pw)
    raw_b = bin_login(user, pw)

    remove_credential(a_id, user)
    t0 = time.monotonic()
    for name, sock in [("ascii", raw_a), ("binary", raw_b)]:
        wait_closed(sock, CLOSE_WITHIN, f"live raw {name} connection of a removed credential")
        print(f"  raw {name} connection of the removed credential closed {time.monotonic() - t0:.2f}s "
              "after the CLI returned")
        sock.close()
    wait_auth(user, pw, False, "credential remove")

    # pymemcache: the server's close shows as an unexpected close (or a reset
    # on send); its reconnect then fails the auth.
    e, took = poll_until_fails(lambda: pm.get("mt:rev") == b"shared",
                               (MemcacheUnexpectedCloseError, ConnectionError), "pymemcache live connection")
    check(isinstance(e, (MemcacheUnexpectedCloseError, ConnectionError)),
          f"pymemcache live connection after removal: {e!r}")
    print(f"  pymemcache live connection: {type(e).__name__} after {took:.2f}s")
    pm.close()

    # pylibmc: the operation on the closed connection raises.
    e, took = poll_until_fails(lambda: text(pl.get("mt:rev")) == "shared", pylibmc.Error, "pylibmc live connection")
    # libmemcached: "error 3 ... CONNECTION FAILURE, ::rec() returned zero, server has disconnected"
    # (a WriteError when the close is seen on the send).
    check(isinstance(e, (pylibmc.ConnectionError, pylibmc.WriteError)),
          f"pylibmc live connection after removal: {type(e).__name__}: {e!r}")
    print(f"  pylibmc live connection: {type(e).__name__}: {e} after {took:.2f}s")
    pl.disconnect_all()

    # python-binary-memcached: NOOP on the same socket sees the close
    # (status server_disconnected) rather than an answer.
    srv = bm_server(bm)

    def bm_alive():
        check(srv.connection is bm_conn, "bmemcached reconnected instead of using its live connection")
        return srv.noop() == ST_OK

    r, took = poll_until_fails(bm_alive, (), "bmemcached live connection")
    check(srv.connection is None, "bmemcached saw its connection closed")
    print(f"  bmemcached live connection closed after {took:.2f}s")
    bm.disconnect_all()

    # New connections with the removed credential fail everywhere.
    refused_everywhere(user, pw, "removed credential")
    e = expect_raises(lambda: bmemcached_client(user, pw).set("x", "1"), MemcachedException,
                      "bmemcached set with removed credential")
    check(e.code == ST_AUTH_ERROR, f"bmemcached set with removed credential: {e.code}")

    # The primary credential of the same cache is untouched.
    check(primary.get("mt:rev") == b"shared", "primary connection survives the removal")
    primary.close()


def read_only_section():
    import pylibmc
    from bmemcached.exceptions import MemcachedException

    _, a_user, a_pass = CFG["a"]
    ro_user, ro_pass = CFG["ro"]
    rw = pymemcache_client(a_user, a_pass)
    check(rw.set("mt:ro", b"7", noreply=False), "primary set")

    # pymemcache: storage commands answer NOT_STORED (pymemcache: False);
    # reads work and see the cache's data.
    c = pymemcache_client(ro_user, ro_pass)
    check(c.get("mt:ro") == b"7", "read-only credential reads the cache")
    check(c.set("mt:ro", b"8", noreply=False) is False, "read-only set -> NOT_STORED")
    check(c.add("mt:ro-new", b"8", noreply=False) is False, "read-only add -> NOT_STORED")
    check(c.replace("mt:ro", b"8", noreply=False) is False, "read-only replace -> NOT_STORED")
    check(c.append("mt:ro", b"8", noreply=False) is False, "read-only append -> NOT_STORED")
    check(c.delete("mt:ro", noreply=False) is False, "read-only delete refused")
    for cmd in [b"incr mt:ro 1", b"decr mt:ro 1", b"delete mt:ro", b"touch mt:ro 100"]:
        got = c._misc_cmd([cmd + b"\r\n"], cmd.split()[0], False)
        check(got == [b"NOT_STORED"], f"read-only `{cmd.decode()}`: {got!r}")
    check(c.get("mt:ro") == b"7", "nothing changed under the read-only credential")
    check(c.get("mt:ro-new") is None, "read-only add stored nothing")
    c.close()

    # The same over a raw ASCII connection, byte for byte.
    s = ascii_login(ro_user, ro_pass)
    for line, data in [(b"set mt:ro 0 0 1", b"9"), (b"add mt:ro2 0 0 1", b"9"), (b"cas mt:ro 0 0 1 1", b"9"),
                       (b"prepend mt:ro 0 0 1", b"9"), (b"incr mt:ro 1", None), (b"decr mt:ro 1", None),
                       (b"delete mt:ro", None), (b"touch mt:ro 10", None)]:
        got = ascii_cmd(s, line, data)
        check(got == b"NOT_STORED\r\n", f"read-only raw `{line.decode()}`: {got!r}")
    s.sendall(b"get mt:ro\r\n")
    got = recv_exact(s, len(b"VALUE mt:ro 0 1\r\n7\r\nEND\r\n"))
    check(got == b"VALUE mt:ro 0 1\r\n7\r\nEND\r\n", f"read-only raw get: {got!r}")
    s.close()

    # python-binary-memcached: status 0x05 is raised as MemcachedException(5).
    c = bmemcached_client(ro_user, ro_pass)
    check(text(c.get("mt:ro")) == "7", "bmemcached read-only get")
    for what, fn in [("set", lambda: c.set("mt:ro", "8")), ("add", lambda: c.add("mt:ro-new", "8")),
                     ("replace", lambda: c.replace("mt:ro", "8")), ("incr", lambda: c.incr("mt:ro", 1)),
                     ("delete", lambda: c.delete("mt:ro"))]:
        e = expect_raises(fn, MemcachedException, f"bmemcached read-only {what}")
        check(e.code == ST_NOT_STORED, f"bmemcached read-only {what}: code {e.code}")
    c.disconnect_all()

    # pylibmc: a set is not stored (libmemcached NOTSTORED).
    c = pylibmc_client(ro_user, ro_pass)
    check(text(c.get("mt:ro")) == "7", "pylibmc read-only get")
    check(c.set("mt:ro", "8") is False, "pylibmc read-only set -> NOT_STORED (False)")
    check(c.add("mt:ro-new", "8") is False, "pylibmc read-only add -> NOT_STORED (False)")
    check(text(c.get("mt:ro")) == "7", "pylibmc read-only set changed nothing")
    c.disconnect_all()

    # Raw binary: SET / DELETE / INCR answer 0x05.
    s = bin_login(ro_user, ro_pass)
    check(bin_set(s, b"mt:ro", b"9") == ST_NOT_STORED, "read-only binary SET status")
    check(bin_call(s, OP_DELETE, key=b"mt:ro")[0][5] == ST_NOT_STORED, "read-only binary DELETE status")
    incr_extras = struct.pack("!QQL", 1, 0, 0)
    check(bin_call(s, OP_INCR, key=b"mt:ro", extras=incr_extras)[0][5] == ST_NOT_STORED,
          "read-only binary INCR status")
    hdr, body = bin_call(s, OP_GET, key=b"mt:ro")
    check(hdr[5] == ST_OK and body[4:] == b"7", f"read-only binary GET: {hdr} {body!r}")
    s.close()
    rw.close()


def no_flush_section():
    from bmemcached.exceptions import MemcachedException
    from pymemcache.exceptions import MemcacheClientError

    _, a_user, a_pass = CFG["a"]
    nf_user, nf_pass = CFG["nf"]
    rw = pymemcache_client(a_user, a_pass)
    check(rw.set("mt:nf", b"kept", noreply=False), "primary set")

    # Raw ASCII: the exact refusal, and the connection stays usable.
    s = ascii_login(nf_user, nf_pass)
    got = ascii_cmd(s, b"flush_all")
    check(got == FLUSH_REFUSED_ASCII, f"no-flush raw flush_all: {got!r}")
    check(ascii_cmd(s, b"set mt:nf2 0 0 1", b"x") == b"STORED\r\n", "no-flush credential can write")
    s.sendall(b"get mt:nf\r\n")
    got = recv_exact(s, len(b"VALUE mt:nf 0 4\r\nkept\r\nEND\r\n"))
    check(got == b"VALUE mt:nf 0 4\r\nkept\r\nEND\r\n", f"after refused flush_all: {got!r}")
    s.close()

    # pymemcache raises the CLIENT_ERROR text.
    c = pymemcache_client(nf_user, nf_pass)
    e = expect_raises(lambda: c.flush_all(noreply=False), MemcacheClientError, "pymemcache no-flush flush_all")
    check(e.args == (b"flush_all not allowed",), f"pymemcache no-flush flush_all: {e.args!r}")
    check(c.get("mt:nf") == b"kept", "not flushed (pymemcache)")
    c.close()

    # python-binary-memcached: status 0x20, same connection still serves.
    c = bmemcached_client(nf_user, nf_pass)
    check(c.get("mt:nf") == "kept", "bmemcached no-flush get")
    conn = bm_server(c).connection
    e = expect_raises(lambda: c.flush_all(), MemcachedException, "bmemcached no-flush flush_all")
    check(e.code == ST_AUTH_ERROR, f"bmemcached no-flush flush_all: code {e.code}")
    check(c.get("mt:nf") == "kept", "not flushed (bmemcached)")
    check(bm_server(c).connection is conn, "connection stays open after a refused binary flush")
    c.disconnect_all()

    # Raw binary: 0x20, then NOOP on the same connection.
    s = bin_login(nf_user, nf_pass)
    hdr, body = bin_call(s, OP_FLUSH)
    check(hdr[5] == ST_AUTH_ERROR, f"no-flush binary FLUSH: status {hdr[5]:#x} body {body!r}")
    check(bin_call(s, OP_NOOP)[0][5] == ST_OK, "NOOP after a refused binary flush")
    s.close()
    check(rw.get("mt:nf") == b"kept", "primary still sees its key")
    rw.close()


# ---------------------------------------------------------------- main


def env(name):
    v = os.environ.get(name)
    if not v:
        sys.exit(f"test_mt_clients.py: {name} is not set (run scripts/mt-client-tests.sh)")
    return v


def main():
    global HOST, PORT
    host, port = env("SHOAL_SERVER").rsplit(":", 1)
    HOST, PORT = host, int(port)
    CFG.update(
        bin=env("SHOAL_BIN"),
        admin=env("SHOAL_ADMIN"),
        data_dir=env("SHOAL_DATA_DIR"),
        auth_timeout=env("SHOAL_AUTH_TIMEOUT"),
        a=(int(env("MT_A_ID")), env("MT_A_USER"), env("MT_A_PASS")),
        b=(int(env("MT_B_ID")), env("MT_B_USER"), env("MT_B_PASS")),
        ro=(env("MT_RO_USER"), env("MT_RO_PASS")),
        nf=(env("MT_NF_USER"), env("MT_NF_PASS")),
    )
    require_sasl_plain_plugin()
    import pylibmc

    check(pylibmc.support_sasl,
          "pylibmc has no SASL support (its libmemcached was built without it): install "
          "a SASL-enabled libmemcached (Debian: libmemcached-dev; scripts/install-test-deps.sh) "
          "and rebuild pylibmc: rm -rf target/client-venv && scripts/client-venv.sh")
    import _pylibmc

    check(not _pylibmc.libmemcached_version.startswith("1.0."),
          f"pylibmc uses libmemcached {_pylibmc.libmemcached_version} (the binary wheel's): its SASL "
          "reads LIST_MECHS into an unterminated stack buffer and fails at random; rebuild the venv "
          "against the system libmemcached: scripts/install-test-deps.sh, then rm -rf "
          "target/client-venv && scripts/client-venv.sh")
    for name, (user, pw) in [("A", CFG["a"][1:]), ("B", CFG["b"][1:]), ("read-only", CFG["ro"]),
                             ("no-flush", CFG["nf"])]:
        wait_auth(user, pw, True, f"credential {name} created by the script")
    only = set(sys.argv[1:])
    for name, fn in [
        ("wire bytes (raw sockets)", wire_section),
        ("round trips + isolation: pymemcache (ascii auth)", pymemcache_roundtrips),
        ("round trips + isolation: pylibmc (binary SASL)", pylibmc_roundtrips),
        ("round trips + isolation: python-binary-memcached (binary SASL)", bmemcached_roundtrips),
        ("wrong password", wrong_password_section),
        ("no credentials", no_credentials_section),
        ("read-only credential", read_only_section),
        ("no-flush credential", no_flush_section),
        ("disabled cache", disabled_cache_section),
        ("revoked credential", revoked_credential_section),
    ]:
        if only and fn.__name__ not in only:
            continue
        t0 = time.time()
        fn()
        print(f"PASS {name} [{time.time() - t0:.2f}s]", flush=True)


if __name__ == "__main__":
    main()
