"""TLS on the data port with real clients (issue 15), run by
scripts/tls-test.sh:

  SHOAL_BIN   the shoal binary
  WORK        a scratch directory (certificates, data dirs, logs)

Every server is started here (port 0, loopback) with certificates made here
(a test CA, the server's, an expired one, an untrusted one, clients'), none
committed. Checks raise AssertionError; every wait is bounded in time.
"""
import datetime
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from wire import check, recv_line, recv_until

BIN = os.environ["SHOAL_BIN"]
WORK = os.environ["WORK"]
SERVERS = []


# ------------------------------------------------------------ certificates

def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(cn, issuer=None, days=(-1, 2), ca=False, server=False):
    """(cert, key) signed by issuer=(cert, key), self-signed without one;
    valid from now+days[0] to now+days[1] days."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder()
         .subject_name(_name(cn))
         .issuer_name(issuer[0].subject if issuer else _name(cn))
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now + datetime.timedelta(days=days[0]))
         .not_valid_after(now + datetime.timedelta(days=days[1]))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
            critical=False)
    cert = b.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key


def write_pem(name, cert, key=None):
    """Writes NAME.pem (and NAME.key); returns their paths."""
    cpath = os.path.join(WORK, name + ".pem")
    with open(cpath, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    kpath = None
    if key is not None:
        kpath = os.path.join(WORK, name + ".key")
        with open(kpath, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return cpath, kpath


def fingerprint(cert):
    return cert.fingerprint(hashes.SHA256()).hex()


CA = make_cert("shoal test CA", ca=True)
CA_PEM, _ = write_pem("ca", *CA)
SRV = make_cert("localhost", issuer=CA, server=True)
SRV_PEM, SRV_KEY = write_pem("server", *SRV)
SRV2 = make_cert("localhost-renewed", issuer=CA, server=True)
SRV2_PEM, SRV2_KEY = write_pem("server2", *SRV2)
EXPIRED = make_cert("localhost", issuer=CA, days=(-10, -1), server=True)
EXPIRED_PEM, EXPIRED_KEY = write_pem("expired", *EXPIRED)
OTHER_CA = make_cert("somebody else's CA", ca=True)
UNTRUSTED = make_cert("localhost", issuer=OTHER_CA, server=True)
UNTRUSTED_PEM, UNTRUSTED_KEY = write_pem("untrusted", *UNTRUSTED)
# Client certificates: self-signed (pinned by fingerprint), and one the CA
# issued (checked against --tls-ca).
CLIENT = make_cert("app-dyno-1")
CLIENT_PEM, CLIENT_KEY = write_pem("client", *CLIENT)
STRANGER = make_cert("stranger")
STRANGER_PEM, STRANGER_KEY = write_pem("stranger", *STRANGER)


def client_ctx(ca=CA_PEM, cert=None, key=None, version=None):
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


# ------------------------------------------------------------ servers

class Server:
    def __init__(self, *args, multi_tenant=False, cores=1):
        self.log_path = os.path.join(WORK, f"shoal-{len(SERVERS)}.log")
        self.data = os.path.join(WORK, f"data-{len(SERVERS)}")
        cmd = [BIN, "-p", "0", "-l", "127.0.0.1", "-t", str(cores), *args]
        if multi_tenant:
            cmd += ["--multi-tenant", "--data-dir", self.data, "--admin-addr", "127.0.0.1:0"]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)
        SERVERS.append(self)
        self.addr = self.wait_for("shoal listening on")
        self.tls_addr = self.wait_for("shoal TLS listening on") if "--tls-port" in args else None
        self.admin = self.wait_for("shoal admin listening on") if multi_tenant else None

    def wait_for(self, prefix):
        deadline = time.time() + 30
        while time.time() < deadline:
            with open(self.log_path) as f:
                for line in f:
                    if line.startswith(prefix + " "):
                        host, port = line[len(prefix) + 1:].split()[0].rsplit(":", 1)
                        return host, int(port)
            check(self.proc.poll() is None, f"shoal exited: {open(self.log_path).read()}")
            time.sleep(0.05)
        raise AssertionError(f"no '{prefix}' line within 30 s")

    def cli(self, *args):
        cmd = [BIN, *args, "--admin", "%s:%d" % self.admin, "--data-dir", self.data]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        check(p.returncode == 0, f"shoal {' '.join(args)}: {p.stderr.strip()}")
        return p.stdout

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise AssertionError("shoal ignored SIGTERM for 10 s")
        self.log.close()


def admin(srv, method, path):
    """An operator request (the token from the data dir); the JSON reply."""
    import urllib.request
    token = open(os.path.join(srv.data, "operator.token")).read().strip()
    req = urllib.request.Request("http://%s:%d%s" % (*srv.admin, path), method=method,
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def value(out, key):
    for line in out.splitlines():
        if line.startswith(key + "="):
            return line[len(key) + 1:]
    raise AssertionError(f"no {key}= in {out!r}")


def tls_socket(addr, ctx, timeout=5):
    raw = socket.create_connection(addr, timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def ask(s, line, end=b"\r\n"):
    s.sendall(line)
    return recv_until(s, end)


def stats(s, group=b""):
    out = ask(s, b"stats " + group + b"\r\n" if group else b"stats\r\n", b"END\r\n")
    return dict(l.split(" ", 2)[1:] for l in out.decode().splitlines() if l.startswith("STAT "))


def refused(fn, what):
    """fn() must fail with a TLS or socket error (or the server's close)."""
    try:
        r = fn()
    except (ssl.SSLError, ConnectionError, OSError) as e:
        return e
    raise AssertionError(f"{what}: expected a refusal, got {r!r}")


# ------------------------------------------------------------ checks

def open_mode_clients(cores):
    """pymemcache (ASCII, pipelined get_many across cores), bmemcached
    (binary) and raw meta commands over -Z, at `cores` cores."""
    from pymemcache.client.base import Client
    import bmemcached
    srv = Server("-Z", "--tls-cert", SRV_PEM, "--tls-key", SRV_KEY, cores=cores)
    c = Client(srv.addr, tls_context=client_ctx(), connect_timeout=5, timeout=5)
    keys = {f"k{i}": f"v{i}" * (i % 50 + 1) for i in range(300)}
    c.set_many(keys)
    got = c.get_many(list(keys))
    check(got == {k: v.encode() for k, v in keys.items()}, f"pymemcache get_many over TLS at -t {cores}")
    big = b"x" * 500_000
    c.set("big", big)
    check(c.get("big") == big, "a 500 kB value over TLS")
    b = bmemcached.Client(["%s:%d" % srv.addr], tls_context=client_ctx(), socket_timeout=5)
    check(b.set("bin", "binary value"), "bmemcached set over TLS")
    check(b.get("bin") == "binary value", "bmemcached get over TLS")
    check(b.get("k7") is not None, "bmemcached reads pymemcache's key")
    s = tls_socket(srv.addr, client_ctx())
    check(ask(s, b"ms meta 2 T0\r\nhi\r\n") == b"HD\r\n", "meta set over TLS")
    check(ask(s, b"mg meta v\r\n") == b"VA 2\r\nhi\r\n", "meta get over TLS")
    # Pipelined: 200 gets in one write, answered in order.
    s.sendall(b"".join(b"get k%d\r\n" % i for i in range(200)))
    out = b""
    while out.count(b"END\r\n") < 200:
        chunk = s.recv(65536)
        check(chunk, "connection closed during a pipelined batch")
        out += chunk
    check(out.startswith(b"VALUE k0 0 2\r\nv0\r\nEND\r\n"), "pipelined replies in order")
    st = stats(s)
    check(int(st["ssl_new_sessions"]) >= 3, f"ssl_new_sessions {st.get('ssl_new_sessions')}")
    check("ssl_handshake_errors" in st and "time_since_server_cert_refresh" in st, "TLS stats listed")
    settings = stats(s, b"settings")
    check(settings["ssl_enabled"] == "yes" and settings["ssl_min_version"] == "tlsv1.2",
          f"stats settings {settings.get('ssl_enabled')} {settings.get('ssl_min_version')}")
    print(f"ok: open mode -Z -t {cores}: pymemcache, bmemcached, meta, pipelining, stats")
    return srv


def refusals(srv):
    """Clients refuse an untrusted or expired server certificate; a
    plain-text client on the TLS port is closed, not left hanging."""
    from pymemcache.client.base import Client
    before = int(stats(tls_socket(srv.addr, client_ctx()))["ssl_handshake_errors"])
    other = os.path.join(WORK, "other-ca.pem")
    write_pem("other-ca", *OTHER_CA)
    e = refused(lambda: Client(srv.addr, tls_context=client_ctx(ca=other), connect_timeout=5,
                               timeout=5).get("x"), "a client that does not trust the CA")
    check(isinstance(e, ssl.SSLCertVerificationError), f"untrusted: {e!r}")
    expired = Server("-Z", "--tls-cert", EXPIRED_PEM, "--tls-key", EXPIRED_KEY)
    e = refused(lambda: Client(expired.addr, tls_context=client_ctx(), connect_timeout=5,
                               timeout=5).get("x"), "an expired server certificate")
    check(isinstance(e, ssl.SSLCertVerificationError) and "expired" in str(e), f"expired: {e!r}")
    expired.stop()
    # Plain text on the TLS port: closed at once.
    t0 = time.time()
    p = socket.create_connection(srv.addr, timeout=5)
    p.sendall(b"version\r\n")
    try:
        got = p.recv(4096)
        got += p.recv(4096) if got else b""
    except ConnectionResetError:
        got = b""
    # A TLS alert (starts 0x15) at most, then the end of the stream.
    check(b"VERSION" not in got, f"plain-text client answered in clear: {got!r}")
    check(time.time() - t0 < 2, f"plain-text client waited {time.time() - t0:.1f} s")
    after = int(stats(tls_socket(srv.addr, client_ctx()))["ssl_handshake_errors"])
    check(after >= before + 2, f"ssl_handshake_errors {before} -> {after}")
    print(f"ok: untrusted and expired certificates refused; plain text closed in "
          f"{time.time() - t0:.2f} s; ssl_handshake_errors {before} -> {after}")


def resumption(srv):
    """A second connection resumes the first one's session (tickets)."""
    ctx = client_ctx()
    s = tls_socket(srv.addr, ctx)
    ask(s, b"version\r\n")  # the TLS 1.3 ticket arrives after the handshake
    session = s.session
    before = int(stats(s)["ssl_new_sessions"])
    raw = socket.create_connection(srv.addr, timeout=5)
    r = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
    check(ask(r, b"version\r\n").startswith(b"VERSION "), "resumed connection works")
    check(r.session_reused, "the session was not resumed")
    after = int(stats(r)["ssl_new_sessions"])
    check(after == before, f"a resumed session counted as new ({before} -> {after})")
    print("ok: session resumption (ssl_new_sessions unchanged)")


def refresh(srv):
    """refresh_certs and SIGHUP: new connections get the new certificate,
    open ones keep working."""
    import shutil
    old = tls_socket(srv.addr, client_ctx())
    ask(old, b"set r 0 0 1\r\n1\r\n")
    shutil.copy(SRV2_PEM, SRV_PEM)
    shutil.copy(SRV2_KEY, SRV_KEY)
    check(ask(old, b"refresh_certs\r\n") == b"OK\r\n", "refresh_certs answers OK")
    new = tls_socket(srv.addr, client_ctx())
    cn = dict(x[0] for x in new.getpeercert()["subject"])["commonName"]
    check(cn == "localhost-renewed", f"new connection sees {cn}")
    check(ask(old, b"get r\r\n", b"END\r\n") == b"VALUE r 0 1\r\n1\r\nEND\r\n", "old connection works")
    check(int(stats(new)["time_since_server_cert_refresh"]) <= 2, "time_since_server_cert_refresh reset")
    # A broken file: an error line, and the old certificate stays.
    with open(SRV_KEY, "w") as f:
        f.write("not a key\n")
    line = ask(old, b"refresh_certs\r\n")
    check(line.startswith(b"Error loading the key: "), f"refresh_certs with a bad key: {line!r}")
    check(dict(x[0] for x in tls_socket(srv.addr, client_ctx()).getpeercert()["subject"])["commonName"]
          == "localhost-renewed", "a failed refresh keeps the certificate")
    # SIGHUP with the first certificate back.
    write_pem("server", *SRV)
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while True:
        cn = dict(x[0] for x in tls_socket(srv.addr, client_ctx()).getpeercert()["subject"])["commonName"]
        if cn == "localhost" or time.time() > deadline:
            break
        time.sleep(0.05)
    check(cn == "localhost", f"after SIGHUP a new connection sees {cn}")
    check(ask(old, b"get r\r\n", b"END\r\n").startswith(b"VALUE r"), "old connection survives SIGHUP")
    print("ok: refresh_certs (OK, error line on a bad key), SIGHUP")


def min_version():
    srv = Server("-Z", "--tls-cert", SRV_PEM, "--tls-key", SRV_KEY, "--tls-min-version", "1.3")
    host, port = srv.addr
    for flag, want in (("-tls1_2", False), ("-tls1_3", True)):
        p = subprocess.run(["openssl", "s_client", flag, "-CAfile", CA_PEM, "-connect", f"{host}:{port}",
                            "-quiet", "-verify_return_error"], input=b"version\r\nquit\r\n",
                           capture_output=True, timeout=10)
        ok = b"VERSION " in p.stdout
        check(ok == want, f"openssl s_client {flag} against --tls-min-version 1.3: {p.stdout!r} "
                          f"{p.stderr[-300:]!r}")
    srv.stop()
    print("ok: TLS 1.2 refused with --tls-min-version 1.3, TLS 1.3 served")


def handshake_deadline():
    srv = Server("-Z", "--tls-cert", SRV_PEM, "--tls-key", SRV_KEY, "--tls-handshake-timeout", "0.5")
    s = socket.create_connection(srv.addr, timeout=5)
    t0 = time.time()
    check(s.recv(10) == b"", "a silent client is closed")
    took = time.time() - t0
    check(0.3 < took < 3, f"closed after {took:.2f} s (deadline 0.5 s)")
    srv.stop()
    print(f"ok: a client silent through the handshake closed after {took:.2f} s")


def multi_tenant(cores):
    """Plain and TLS ports side by side; ASCII auth (pymemcache) and SASL
    (bmemcached) over TLS; a client certificate bound to a credential logs
    in with no auth step; revoking it closes the session."""
    from pymemcache.client.base import Client, _readline
    import bmemcached
    srv = Server("--tls-port", "0", "--tls-cert", SRV_PEM, "--tls-key", SRV_KEY,
                 "--tls-ca", CA_PEM, "--tls-verify-mode", "request", multi_tenant=True, cores=cores)
    out = srv.cli("cache", "create", "--name", "tls", "--memory", "25MB")
    user, password = value(out, "MEMCACHIER_USERNAME"), value(out, "MEMCACHIER_PASSWORD")
    cache = out.split()[2]

    class Authed(Client):
        def _connect(self):
            super()._connect()
            token = f"{user} {password}".encode()
            self.sock.sendall(b"set auth 0 0 %d\r\n%s\r\n" % (len(token), token))
            _, line = _readline(self.sock, b"")
            check(line == b"STORED", f"ASCII auth over TLS: {line!r}")

    a = Authed(srv.tls_addr, tls_context=client_ctx(), connect_timeout=5, timeout=5)
    a.set_many({f"t{i}": str(i) for i in range(100)})
    check(len(a.get_many([f"t{i}" for i in range(100)])) == 100, "pymemcache + ASCII auth over TLS")
    b = bmemcached.Client(["%s:%d" % srv.tls_addr], user, password, tls_context=client_ctx(),
                          socket_timeout=5)
    check(b.get("t5") in ("5", b"5", 5), f"bmemcached + SASL over TLS reads {b.get('t5')!r}")
    # The plain port still speaks plain text.
    p = socket.create_connection(srv.addr, timeout=5)
    token = f"{user} {password}".encode()
    check(ask(p, b"set auth 0 0 %d\r\n%s\r\n" % (len(token), token)) == b"STORED\r\n",
          "ASCII auth on the plain port beside the TLS port")
    check(ask(p, b"version\r\n").startswith(b"VERSION "), "plain port beside the TLS port")

    # Client certificate: a self-signed one nobody carries is refused (it
    # does not chain to --tls-ca); bound, it logs in.
    refused(lambda: ask(tls_socket(srv.tls_addr, client_ctx(cert=CLIENT_PEM, key=CLIENT_KEY)), b"mn\r\n"),
            "an unbound self-signed certificate")
    srv.cli("cert", "add", "--cache", cache, user, fingerprint(CLIENT[0]))
    s = tls_socket(srv.tls_addr, client_ctx(cert=CLIENT_PEM, key=CLIENT_KEY))
    check(ask(s, b"mg t5 v\r\n") == b"VA 1\r\n5\r\n", "a bound certificate logs in with no auth step")
    check(ask(s, b"ms fromcert 2\r\nok\r\n") == b"HD\r\n", "meta set as the certificate's credential")
    check(a.get("fromcert") == b"ok", "the certificate's writes land in the credential's cache")
    c = Client(srv.tls_addr, tls_context=client_ctx(cert=CLIENT_PEM, key=CLIENT_KEY), connect_timeout=5,
               timeout=5)
    check(c.get("t7") == b"7", "pymemcache with a client certificate, no auth step")
    # A CA-issued certificate that no credential carries: verified, not logged in.
    issued = make_cert("issued", issuer=CA)
    ipem, ikey = write_pem("issued", *issued)
    s2 = tls_socket(srv.tls_addr, client_ctx(cert=ipem, key=ikey))
    check(ask(s2, b"mg t5 v\r\n") == b"CLIENT_ERROR unauthenticated\r\n", "CA-issued, unbound certificate")
    # Revocation: the session ends within 1 s.
    t0 = time.time()
    srv.cli("cert", "remove", "--cache", cache, user, fingerprint(CLIENT[0]))
    s.settimeout(3)
    try:
        closed = s.recv(100) == b""
    except (ConnectionError, ssl.SSLError):
        closed = True
    took = time.time() - t0
    check(closed and took < 1.0, f"revoked certificate's session closed={closed} after {took:.2f} s")
    refused(lambda: ask(tls_socket(srv.tls_addr, client_ctx(cert=CLIENT_PEM, key=CLIENT_KEY)), b"mn\r\n"),
            "a removed fingerprint")
    # A tenant does not reload the server's certificate; the operator does,
    # through the admin endpoint.
    check(ask(p, b"refresh_certs\r\n") == b"ERROR\r\n", "refresh_certs from a tenant")
    import shutil
    shutil.copy(SRV2_PEM, SRV_PEM)
    shutil.copy(SRV2_KEY, SRV_KEY)
    try:
        reply = admin(srv, "POST", "/admin/v1/tls/reload")
    finally:
        write_pem("server", *SRV)
    check(reply["enabled"] and reply["time_since_server_cert_refresh"] <= 1, f"reload route: {reply}")
    cn = dict(x[0] for x in tls_socket(srv.tls_addr, client_ctx()).getpeercert()["subject"])["commonName"]
    check(cn == "localhost-renewed", f"after the reload route a new connection sees {cn}")
    check(a.get("t5") == b"5", "a connection opened before the reload route keeps working")
    srv.stop()
    print(f"ok: multi-tenant -t {cores}: --tls-port beside plain, ASCII auth and SASL over TLS, "
          f"certificate login, revocation closed the session in {took * 1000:.0f} ms")


def require_mode():
    """--tls-verify-mode require: no certificate, or one nobody vouches for,
    is refused; a bound one logs in."""
    srv = Server("-Z", "--tls-cert", SRV_PEM, "--tls-key", SRV_KEY, "--tls-verify-mode", "require",
                 multi_tenant=True)
    out = srv.cli("cache", "create", "--name", "req", "--memory", "10MB")
    user, cache = value(out, "MEMCACHIER_USERNAME"), out.split()[2]
    srv.cli("cert", "add", "--cache", cache, user, fingerprint(CLIENT[0]))
    for what, ctx in (("no certificate", client_ctx()),
                      ("an unknown certificate", client_ctx(cert=STRANGER_PEM, key=STRANGER_KEY))):
        def attempt():
            s = tls_socket(srv.addr, ctx)
            return ask(s, b"mn\r\n")
        refused(attempt, f"require mode, {what}")
    s = tls_socket(srv.addr, client_ctx(cert=CLIENT_PEM, key=CLIENT_KEY))
    check(ask(s, b"mn\r\n") == b"MN\r\n", "require mode, a bound certificate")
    srv.stop()
    print("ok: require mode refuses no certificate and an unknown one, serves a bound one")


def main():
    only = sys.argv[1:]
    steps = [
        ("open", lambda: [refusals(s) or resumption(s) or refresh(s) or s.stop()
                          for s in [open_mode_clients(1)]] and open_mode_clients(2).stop()),
        ("min_version", min_version),
        ("deadline", handshake_deadline),
        ("multi_tenant", lambda: (multi_tenant(1), multi_tenant(2))),
        ("require", require_mode),
    ]
    try:
        for name, step in steps:
            if not only or name in only:
                step()
    finally:
        for s in SERVERS:
            if s.proc.poll() is None:
                s.proc.kill()
    print("== TLS tests passed ==")


if __name__ == "__main__":
    main()
