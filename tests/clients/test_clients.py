"""Real memcached clients against a running shoal (issue 4): pymemcache
(ASCII), pylibmc (binary protocol) and python-binary-memcached (binary).

usage: python3 tests/clients/test_clients.py HOST:PORT
Each client does set/get/multi-get/cas/incr/decr/append/touch/delete/flush
round trips; any mismatch raises and the script exits non-zero.
"""
import struct
import sys
import time


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def pymemcache_roundtrips(host, port):
    from pymemcache.client.base import Client

    c = Client((host, port), connect_timeout=5, timeout=5)
    p = "pm:"
    check(c.flush_all(noreply=False), "flush_all")
    check(c.set(p + "a", b"1", noreply=False), "set")
    check(c.get(p + "a") == b"1", "get")
    c.set_many({p + "b": b"2", p + "c": b"3"}, noreply=False)
    got = c.get_many([p + "a", p + "b", p + "c", p + "missing"])
    check(got == {p + "a": b"1", p + "b": b"2", p + "c": b"3"}, f"get_many {got}")
    value, cas = c.gets(p + "a")
    check(value == b"1" and cas, "gets")
    check(c.cas(p + "a", b"10", cas, noreply=False) is True, "cas ok")
    check(c.cas(p + "a", b"11", cas, noreply=False) is False, "cas exists")
    check(c.incr(p + "a", 5) == 15, "incr")
    check(c.decr(p + "a", 20) == 0, "decr floors at 0")
    check(c.append(p + "b", b"x", noreply=False), "append")
    check(c.prepend(p + "b", b"y", noreply=False), "prepend")
    check(c.get(p + "b") == b"y2x", "append/prepend value")
    check(c.add(p + "b", b"z", noreply=False) is False, "add existing")
    check(c.replace(p + "nope", b"z", noreply=False) is False, "replace missing")
    check(c.touch(p + "c", 100, noreply=False), "touch")
    check(c.delete(p + "c", noreply=False), "delete")
    check(c.get(p + "c") is None, "deleted")
    stats = c.stats()
    check(int(stats[b"get_hits"]) > 0, "stats")
    check(c.flush_all(noreply=False), "flush")
    check(c.get(p + "a") is None, "flushed")
    c.close()


def pylibmc_roundtrips(host, port):
    import pylibmc

    c = pylibmc.Client([f"{host}:{port}"], binary=True, behaviors={"cas": True})
    p = "pl:"
    c.flush_all()
    check(c.set(p + "a", "1"), "set")
    check(c.get(p + "a") == "1", "get")
    c.set_multi({p + "b": "2", p + "c": "3"})
    got = c.get_multi([p + "a", p + "b", p + "c", p + "missing"])
    check(got == {p + "a": "1", p + "b": "2", p + "c": "3"}, f"get_multi {got}")
    value, cas = c.gets(p + "a")
    check(value == "1", "gets")
    check(c.cas(p + "a", "10", cas), "cas ok")
    check(not c.cas(p + "a", "11", cas), "cas exists")
    check(c.incr(p + "a", 5) == 15, "incr")
    check(c.decr(p + "a", 20) == 0, "decr floors at 0")
    check(c.append(p + "b", "x"), "append")
    check(c.prepend(p + "b", "y"), "prepend")
    check(c.get(p + "b") == "y2x", "append/prepend value")
    check(not c.add(p + "b", "z"), "add existing")
    # libmemcached's binary touch waits out its 5 s poll timeout after the
    # reply, against memcached 1.6.18 too; the result is still right.
    check(c.touch(p + "c", 100), "touch")
    check(c.delete(p + "c"), "delete")
    check(c.get(p + "c") is None, "deleted")
    big = "v" * 500_000
    check(c.set(p + "big", big), "big set")
    check(c.get(p + "big") == big, "big get")
    check(c.flush_all(), "flush")
    check(c.get(p + "a") is None, "flushed")


def bm_raw(client, opcode, key, extras=b"", value=b""):
    """One binary request over a bmemcached client's connection; returns its
    parsed response (magic, opcode, keylen, extlen, datatype, status, ...)."""
    server = next(iter(client.servers))
    k = key.encode()
    header = struct.pack("!BBHBBHLLQ", 0x80, opcode, len(k), len(extras), 0, 0,
                         len(extras) + len(k) + len(value), 0, 0)
    server._send(header + extras + k + value)
    return server._get_response()


def bmemcached_roundtrips(host, port):
    import bmemcached

    c = bmemcached.Client((f"{host}:{port}",))
    p = "bm:"
    c.flush_all()
    check(c.set(p + "a", "1"), "set")
    check(c.get(p + "a") == "1", "get")
    c.set_multi({p + "b": "2", p + "c": "3"})
    got = c.get_multi([p + "a", p + "b", p + "c", p + "missing"])
    check(got == {p + "a": "1", p + "b": "2", p + "c": "3"}, f"get_multi {got}")
    value, cas = c.gets(p + "a")
    check(value == "1" and cas, "gets")
    check(c.cas(p + "a", "10", cas), "cas ok")
    check(not c.cas(p + "a", "11", cas), "cas exists")
    check(c.incr(p + "a", 5) == 15, "incr")
    check(c.decr(p + "a", 20) == 0, "decr floors at 0")
    check(c.add(p + "new", "n"), "add new")
    check(not c.add(p + "new", "n"), "add existing")
    check(c.replace(p + "new", "m"), "replace")
    check(c.get(p + "new") == "m", "replaced")
    # python-binary-memcached 0.33 has no append()/touch(): send those two
    # frames through the client's own connection and response reader.
    check(bm_raw(c, 0x0E, p + "b", value=b"x")[5] == 0, "append")
    check(c.get(p + "b") == "2x", "appended value")
    check(bm_raw(c, 0x1C, p + "c", extras=struct.pack("!L", 100))[5] == 0, "touch")
    check(bm_raw(c, 0x1C, p + "gone", extras=struct.pack("!L", 100))[5] == 1, "touch miss")
    check(c.delete(p + "c"), "delete")
    check(c.get(p + "c") is None, "deleted")
    stats = c.stats()
    check(len(stats) == 1, "stats per server")
    check(c.flush_all(), "flush")
    check(c.get(p + "a") is None, "flushed")


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    port = int(port)
    for name, fn in [
        ("pymemcache (ascii)", pymemcache_roundtrips),
        ("pylibmc (binary)", pylibmc_roundtrips),
        ("python-binary-memcached (binary)", bmemcached_roundtrips),
    ]:
        t0 = time.time()
        fn(host, port)
        print(f"PASS {name} [{time.time() - t0:.2f}s]")


if __name__ == "__main__":
    main()
