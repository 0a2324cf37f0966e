#!/usr/bin/env python3
"""Server memory per idle connection, measured from /proc.

Opens N connections to a running server; each sends one request and reads
its reply (so the server has set the connection up completely), then stays
open and idle. Reports the server's RSS growth per connection. Bounded: N
connections, one request each, a deadline for every step.

usage: idle-conns.py --pid PID --port PORT [--conns N] [--max-bytes B] [--label L]
Exits 1 when the bytes per connection exceed --max-bytes (when given).
"""
import argparse
import resource
import selectors
import socket
import sys
import time


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def settle(pid, seconds=1.0):
    """RSS once it stops moving (allocator trims, lazy frees)."""
    last = rss_bytes(pid)
    deadline = time.time() + seconds * 5
    while time.time() < deadline:
        time.sleep(seconds / 4)
        now = rss_bytes(pid)
        if now == last:
            return now
        last = now
    return last


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--conns", type=int, default=15000)
    ap.add_argument("--max-bytes", type=int, default=0)
    ap.add_argument("--label", default="server")
    ap.add_argument("--timeout", type=float, default=120.0)
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, a.conns + 1000)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < a.conns + 1000:
        sys.exit(f"open-file limit {hard} is too low for {a.conns} connections")

    # Warm the server first: per-core pools and tables fill up to their
    # bounds when many requests are in flight at once. Those are per-core
    # costs, not per-connection ones, so they are paid before the baseline.
    # Few enough warm connections (64, as many as the pools hold) that
    # little memory is freed for the measured connections to reuse; they
    # stay open.
    warm = [socket.create_connection((a.host, a.port), 5) for _ in range(64)]
    warm[0].sendall(b"set idle:warm 0 0 1\r\nx\r\n")
    warm[0].recv(64)
    for _ in range(3):
        for s in warm:
            s.sendall(b"get idle:warm idle:a idle:b idle:c\r\n")
        for s in warm:
            got = b""
            while not got.endswith(b"END\r\n"):
                got += s.recv(4096)
    before = settle(a.pid)

    deadline = time.time() + a.timeout
    socks = []
    sel = selectors.DefaultSelector()
    pending = 0
    req = b"get idle:warm\r\n"
    for i in range(a.conns):
        if time.time() > deadline:
            sys.exit(f"timed out opening connection {i}")
        s = socket.create_connection((a.host, a.port), 5)
        s.setblocking(False)
        s.sendall(req)
        socks.append(s)
        sel.register(s, selectors.EVENT_READ, bytearray())
        pending += 1
        # Keep the number of unanswered requests bounded.
        while pending > 500 or (i == a.conns - 1 and pending > 0):
            if time.time() > deadline:
                sys.exit("timed out waiting for replies")
            for key, _ in sel.select(timeout=1):
                buf = key.data
                chunk = key.fileobj.recv(4096)
                if not chunk:
                    sys.exit("server closed a connection")
                buf += chunk
                if buf.endswith(b"END\r\n"):
                    sel.unregister(key.fileobj)
                    pending -= 1
    after = settle(a.pid)
    per = (after - before) / a.conns
    print(f"{a.label}: {a.conns} idle connections: RSS {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB, "
          f"{per:.0f} bytes per idle connection")
    # The server must still answer on an idle connection.
    s = socks[len(socks) // 2]
    s.setblocking(True)
    s.settimeout(5)
    s.sendall(b"get idle:warm\r\n")
    got = b""
    while not got.endswith(b"END\r\n"):
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("server closed an idle connection")
        got += chunk
    for s in socks + warm:
        s.close()
    if a.max_bytes and per > a.max_bytes:
        print(f"FAIL: {per:.0f} bytes per idle connection > {a.max_bytes}")
        sys.exit(1)


if __name__ == "__main__":
    main()
