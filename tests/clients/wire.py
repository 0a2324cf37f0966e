"""Socket helpers the client test scripts share: a failed check, and reading
exact byte counts, one reply line, or up to a terminator from a raw socket.
Every read stops at a closed connection with a CheckFailed (an
AssertionError) naming what was still wanted."""


class CheckFailed(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise CheckFailed(what)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise CheckFailed(f"connection closed after {buf!r} ({n} bytes wanted)")
        buf += chunk
    return buf


def recv_line(s, limit=65536):
    """One reply line including its \\r\\n (byte by byte: nothing after it is
    consumed)."""
    buf = b""
    while not buf.endswith(b"\r\n"):
        c = s.recv(1)
        if not c:
            raise CheckFailed(f"connection closed after {buf!r} (a line wanted)")
        buf += c
        check(len(buf) <= limit, f"reply line too long: {buf[:80]!r}")
    return buf


def recv_until(s, end, limit=1 << 20):
    buf = b""
    while not buf.endswith(end):
        c = s.recv(65536)
        if not c:
            raise CheckFailed(f"connection closed after {buf[-200:]!r} ({end!r} wanted)")
        buf += c
        check(len(buf) <= limit, f"reply too long: {buf[:200]!r}")
    return buf
