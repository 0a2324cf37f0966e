"""shoal cluster mode end to end: three nodes sharing a control plane in a
throwaway PostgreSQL, driven by real clients (pylibmc with ketama and SASL,
pymemcache with MemCachier ASCII auth, python-binary-memcached, php-memcached)
and raw sockets.

Run through scripts/cluster-test.sh (which checks the binary and builds the
client venv), or directly with the venv's python:

  target/client-venv/bin/python tests/clients/test_cluster.py
  target/client-venv/bin/python tests/clients/test_cluster.py --selftest

--selftest checks the harness itself without cluster mode: PostgreSQL
start / restart / stop (as root through runuser), one plain multi-tenant node
started, restarted on the same port and stopped, and the parsers.

Environment: SHOAL_BIN (default target/release/shoal), SHOAL_KEEP_WORK=1
keeps the temporary directory (PostgreSQL and the nodes' logs and data).

The checks run in order, each a function (they build on each other's
state, so they are not selectable); the script exits non-zero at the first
failure, printing the nodes' and PostgreSQL's log tails. Every wait is
bounded.
"""
import atexit
import base64
import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from wire import CheckFailed, check, recv_exact, recv_line, recv_until

BIN = os.environ.get("SHOAL_BIN", "target/release/shoal")
HEARTBEAT, NODE_TIMEOUT, DRAIN_GRACE = 0.5, 2, 1
# Stats history samples (the analytics of check k) every second.
STATS_INTERVAL = 1
NODE_MEMORY_MB = 256
PLAN = "30MB"
PLAN_BYTES = 30 * 1024 * 1024

# Bounds the brief sets.
PROPAGATE_WITHIN = 2.0    # a credential change reaches every live node
CLOSE_WITHIN = 2.0        # a removed credential's live sessions are closed
DRAIN_LIST_WITHIN = 3.0   # a drained node leaves every remaining node's list
DRAIN_EXIT_WITHIN = 10.0  # ... and its process exits
REJOIN_WITHIN = 3.0       # a restarted node is back in `config get cluster`
CLI_RETRY_WITHIN = 10.0   # the CLI works again after PostgreSQL restarts
API_STATS_WITHIN = 3.0    # API v2 stats of remote nodes catch up (no traffic meanwhile)
SPLIT_TOLERANCE = 0.10    # each node holds 1/3 +- 10 points of the keys
FILL_MIN_FRACTION = 0.95

BIN_HEADER = struct.Struct("!BBHBBHLLQ")
OP_SASL_AUTH = 0x21


def log(msg):
    print(msg, flush=True)


# ================================================================ PostgreSQL


def pg_bindir():
    """The highest PostgreSQL version's bin directory under /usr/lib/postgresql."""
    found = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        ver = os.path.basename(os.path.dirname(d))
        if os.path.exists(os.path.join(d, "initdb")) and re.fullmatch(r"\d+(\.\d+)?", ver):
            found.append((float(ver), d))
    check(found, "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb): run "
                 "scripts/install-test-deps.sh (Debian package `postgresql`)")
    return max(found)[1]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_is_free(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class Postgres:
    """A private PostgreSQL cluster in WORK/pg: initdb with trust auth,
    listening on 127.0.0.1:PORT (a free port, kept across restarts) and a
    socket directory of its own. PostgreSQL refuses to run as root, so as
    root every server command runs as `postgres` through runuser and the
    directory is chowned to it (WORK must be traversable: 0755 under /tmp)."""

    def __init__(self, work):
        self.bindir = pg_bindir()
        self.root = os.path.join(work, "pg")
        self.data = os.path.join(self.root, "data")
        self.sock = os.path.join(self.root, "sock")
        self.logfile = os.path.join(self.root, "postgres.log")
        self.port = None
        self.as_user = None
        os.makedirs(self.sock)
        os.chmod(self.root, 0o755)
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise CheckFailed("running as root but there is no `postgres` user to run PostgreSQL as "
                                  "(Debian's postgresql package creates it)")
            for p in (self.root, self.sock):
                os.chown(p, pw.pw_uid, pw.pw_gid)
            self.as_user = "postgres"
            runuser = shutil.which("runuser")
            self.prefix = [runuser, "-u", "postgres", "--"] if runuser else None
            if self.prefix is None:
                check(shutil.which("su"), "running as root with neither runuser nor su to drop to postgres")
        else:
            self.prefix = []

    def _cmd(self, args, timeout):
        args = [os.path.join(self.bindir, args[0]), *args[1:]]
        if self.prefix is None:  # root without runuser: su -c with a quoted command line
            import shlex
            args = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(shlex.quote(a) for a in args)]
        else:
            args = [*self.prefix, *args]
        # Its own process group: on a timeout or an interrupt (SIGTERM to the
        # harness) the whole group goes (runuser, initdb / pg_ctl and their
        # children), and a terminal's Ctrl-C reaches only the harness, which
        # then stops the server itself.
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except BaseException as e:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait(5)
            if isinstance(e, subprocess.TimeoutExpired):
                raise CheckFailed(f"{' '.join(args)} did not finish within {timeout}s")
            raise
        return subprocess.CompletedProcess(args, p.returncode, out, err)

    def init(self):
        p = self._cmd(["initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
                       "--no-instructions"], 120)
        if p.returncode != 0 and "--no-instructions" in p.stderr:  # older initdb
            p = self._cmd(["initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8"], 120)
        check(p.returncode == 0, f"initdb failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")

    def start(self):
        if self.port is None:
            self.port = free_port()
        check(port_is_free(self.port), f"PostgreSQL's port {self.port} is taken by something else")
        opts = (f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off")
        p = self._cmd(["pg_ctl", "-D", self.data, "-o", opts, "-l", self.logfile, "-w", "-t", "30", "start"], 60)
        check(p.returncode == 0, f"pg_ctl start failed ({p.returncode}): {p.stdout}{p.stderr}\n"
                                 f"--- postgres log ---\n{self.log_tail()}")
        # Bounded: a TCP query answers (what the nodes will use).
        deadline = time.monotonic() + 15
        while True:
            q = self.query("select 1")
            if q.returncode == 0 and q.stdout.strip() == "1":
                return
            check(time.monotonic() < deadline, f"PostgreSQL on 127.0.0.1:{self.port} does not answer "
                                               f"`select 1`: {q.stderr.strip()}")
            time.sleep(0.1)

    def query(self, sql):
        return self._cmd(["psql", "-X", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                          "-d", "postgres", "-Atc", sql], 15)

    def running(self):
        return os.path.exists(os.path.join(self.data, "postmaster.pid"))

    def stop(self, mode="fast"):
        if not os.path.isdir(self.data) or not self.running():
            return
        p = self._cmd(["pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "30", "stop"], 60)
        if p.returncode != 0:
            self._kill_postmaster()
            raise CheckFailed(f"pg_ctl stop -m {mode} failed ({p.returncode}): {p.stdout}{p.stderr}")

    def restart(self, pause=1.0):
        """pg_ctl stop -m fast; sleep; start again on the same port."""
        self.stop("fast")
        time.sleep(pause)
        self.start()

    def _kill_postmaster(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                pid = int(f.readline())
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass

    def cleanup(self):
        """Always stops the server (fast, then immediate, then SIGKILL)."""
        try:
            self.stop("fast")
        except Exception as e:  # noqa: BLE001 - cleanup goes on
            log(f"note: {e}; trying immediate shutdown")
            try:
                self.stop("immediate")
            except Exception:  # noqa: BLE001
                self._kill_postmaster()

    @property
    def url(self):
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def log_tail(self, n=30):
        return tail(self.logfile, n)


def tail(path, n):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError as e:
        return f"(no log: {e})"


# ================================================================ nodes

LISTEN_RE = re.compile(r"^shoal listening on (\S+) \((\d+) cores?\)", re.M)
ADMIN_RE = re.compile(r"^shoal admin listening on (\S+)", re.M)


def binary_supports_cluster():
    try:
        p = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CheckFailed(f"cannot run {BIN} --help: {e}")
    return "--control-plane" in p.stdout


class Node:
    """One shoal process: its own data dir and log (appended across
    restarts). `port` is 0 until the first start, then the data port it got,
    passed explicitly (-p PORT) on every restart."""

    def __init__(self, name, work, threads, pg_url=None):
        self.name = name
        self.threads = threads
        self.pg_url = pg_url
        self.data_dir = os.path.join(work, f"node-{name}")
        self.log_path = os.path.join(work, f"node-{name}.log")
        os.makedirs(self.data_dir, exist_ok=True)
        self.port = 0
        self.proc = None
        self.addr = None   # data plane host:port (the node's name in the cluster)
        self.admin = None  # admin host:port (changes on every restart)

    def argv(self):
        a = [BIN, "-p", str(self.port), "-l", "127.0.0.1", "-t", str(self.threads), "--multi-tenant",
             "--data-dir", self.data_dir, "--admin-addr", "127.0.0.1:0", "-m", str(NODE_MEMORY_MB)]
        if self.pg_url:
            a += ["--control-plane", self.pg_url, "--advertise", "127.0.0.1",
                  "--heartbeat-interval", str(HEARTBEAT), "--node-timeout", str(NODE_TIMEOUT),
                  "--drain-grace", str(DRAIN_GRACE), "--stats-interval", str(STATS_INTERVAL)]
        return a

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, within=30.0):
        """Starts the process and waits for both `listening` lines (printed
        after this start: the log is appended to). A restart on a fixed port
        is retried for 5 s while the port is still in use."""
        check(not self.alive(), f"node {self.name} is already running")
        deadline_port = time.monotonic() + 5
        while True:
            ok, why = self._start_once(within)
            if ok:
                return
            if self.port and "in use" in why.lower() and time.monotonic() < deadline_port:
                time.sleep(0.2)
                continue
            raise CheckFailed(f"node {self.name} did not start: {why}\n--- node {self.name} log ---\n"
                              f"{tail(self.log_path, 30)}")

    def _start_once(self, within):
        with open(self.log_path, "ab") as f:
            f.write(f"==== harness: starting {' '.join(self.argv())}\n".encode())
            offset = f.tell()
        logf = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            logf.close()
        t0 = time.monotonic()
        while True:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                new = f.read().decode("utf-8", "replace")
            m, a = LISTEN_RE.search(new), ADMIN_RE.search(new)
            if m and a:
                self.addr, self.admin = m.group(1), a.group(1)
                self.port = int(self.addr.rsplit(":", 1)[1])
                cores = int(m.group(2))
                check(cores == self.threads, f"node {self.name} runs {cores} cores, -t {self.threads} asked")
                self.started_at = time.monotonic()
                return True, ""
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                last = new.strip().splitlines()[-1:] or ["(no output)"]
                return False, f"exited with status {rc} before listening: {last[0]}"
            if time.monotonic() - t0 > within:
                self.kill()
                return False, f"no `shoal listening on` / `shoal admin listening on` lines within {within}s"
            time.sleep(0.05)

    def kill(self, sig=signal.SIGKILL):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        rc, self.proc = self.proc.returncode, None
        return rc

    def stop(self):
        """SIGTERM, 5 s to exit, then SIGKILL; returns whether it exited by itself."""
        if not self.alive():
            self.proc = None
            return True
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
            self.proc = None
            return True
        except subprocess.TimeoutExpired:
            self.kill()
            return False

    def wait_exit(self, within):
        """Seconds until the process exited by itself, and its status; fails after `within`."""
        t0 = time.monotonic()
        try:
            rc = self.proc.wait(within)
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"node {self.name} (pid {self.proc.pid}) still running {within}s later")
        self.proc = None
        return time.monotonic() - t0, rc

    def token(self):
        with open(os.path.join(self.data_dir, "operator.token")) as f:
            return f.read().strip()

    def hostport(self):
        h, p = self.addr.rsplit(":", 1)
        return h, int(p)

    def __repr__(self):
        return f"{self.name}({self.addr})"


# ================================================================ CLI and HTTP


def cli(node, *args, timeout=30):
    """`shoal ARGS --admin NODE.admin --data-dir NODE.data_dir`; returns stdout."""
    cmd = [BIN, *args, "--admin", node.admin, "--data-dir", node.data_dir]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"`shoal {' '.join(args)}` against node {node.name} hung for {timeout}s")
    if p.returncode != 0:
        raise CheckFailed(f"`shoal {' '.join(args)}` against node {node.name} failed ({p.returncode}): "
                          f"{p.stderr.strip() or p.stdout.strip()}")
    return p.stdout


def cli_json(node, *args, **kw):
    out = cli(node, *args, "--json", **kw)
    try:
        return json.loads(out)
    except ValueError:
        raise CheckFailed(f"`shoal {' '.join(args)} --json` printed no JSON:\n{out}")


def output_value(out, key):
    for line in out.splitlines():
        if line.startswith(key + "="):
            return line[len(key) + 1:]
    raise CheckFailed(f"no {key}= line in:\n{out}")


class Cred:
    def __init__(self, cache_id, user, password, servers=None):
        self.cache_id, self.user, self.password, self.servers = cache_id, user, password, servers

    def __repr__(self):
        return f"credential {self.user} (cache {self.cache_id})"


def create_cache(node, name):
    """`shoal cache create --json` -> Cred (servers: MEMCACHIER_SERVERS split)."""
    j = cli_json(node, "cache", "create", "--name", name, "--memory", PLAN)
    try:
        cid = j["cache"]["id"]
        cred = j["credential"]
        servers = (j.get("env") or {}).get("MEMCACHIER_SERVERS") or j["servers"]
        return Cred(int(cid), cred["username"], cred["password"], servers.split(","))
    except (KeyError, TypeError, AttributeError):
        raise CheckFailed(f"unexpected `shoal cache create --json` answer: {json.dumps(j)}")


def add_credential(node, cache_id):
    out = cli(node, "credential", "add", "--cache", str(cache_id))
    return Cred(cache_id, output_value(out, "MEMCACHIER_USERNAME"), output_value(out, "MEMCACHIER_PASSWORD"))


def http(method, url, headers=None, timeout=5):
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        raise CheckFailed(f"{method} {url}: {e}")


def basic(cred):
    return {"Authorization": "Basic " + base64.b64encode(f"{cred.user}:{cred.password}".encode()).decode()}


def api_stats(node, cred):
    """GET /api/v2/caches/{id}/stats on NODE: {host:port: {stat: int}}."""
    url = f"http://{node.admin}/api/v2/caches/{cred.cache_id}/stats"
    status, body = http("GET", url, basic(cred))
    check(status == 200, f"GET {url}: {status} {body[:300]!r}")
    try:
        j = json.loads(body)
    except ValueError:
        raise CheckFailed(f"GET {url}: not JSON: {body[:300]!r}")
    check(isinstance(j, dict) and j and all(isinstance(v, dict) for v in j.values()),
          f"GET {url}: expected one object per node keyed by host:port, got {body[:300]!r}")
    return j


def admin_nodes(node):
    """GET /admin/v1/nodes with the operator token: a list of node objects."""
    url = f"http://{node.admin}/admin/v1/nodes"
    status, body = http("GET", url, {"Authorization": f"Bearer {node.token()}"})
    check(status == 200, f"GET {url}: {status} {body[:300]!r}")
    j = json.loads(body)
    if isinstance(j, dict) and isinstance(j.get("nodes"), list):
        j = j["nodes"]
    check(isinstance(j, list) and all(isinstance(n, dict) for n in j),
          f"GET {url}: expected a JSON list of nodes, got {body[:300]!r}")
    return j


def node_states(nodes_json):
    """{name: state}; name is the advertised host:port (falls back to host + port)."""
    out = {}
    for n in nodes_json:
        name = n.get("name") or f"{n.get('host')}:{n.get('port')}"
        out[name] = n.get("state")
    return out


# ================================================================ raw sockets


def connect(node, timeout=5):
    s = socket.create_connection(node.hostport(), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def ascii_auth_bytes(cred):
    p = cred.password.encode()
    return b"set %s 0 0 %d\r\n%s\r\n" % (cred.user.encode(), len(p), p)


def ascii_auth_reply(node, cred):
    s = connect(node)
    try:
        s.sendall(ascii_auth_bytes(cred))
        return recv_line(s)
    finally:
        s.close()


def ascii_login(node, cred):
    s = connect(node)
    s.sendall(ascii_auth_bytes(cred))
    reply = recv_line(s)
    if reply != b"STORED\r\n":
        s.close()
        raise CheckFailed(f"ASCII auth of {cred} on node {node.name}: {reply!r}")
    return s


def sasl_login(node, cred):
    """A raw binary connection after SASL PLAIN; fails unless it is accepted."""
    s = connect(node)
    value = b"\0" + cred.user.encode() + b"\0" + cred.password.encode()
    s.sendall(BIN_HEADER.pack(0x80, OP_SASL_AUTH, 5, 0, 0, 0, 5 + len(value), 0, 0) + b"PLAIN" + value)
    hdr = BIN_HEADER.unpack(recv_exact(s, 24))
    body = recv_exact(s, hdr[6])
    if hdr[5] != 0:
        s.close()
        raise CheckFailed(f"SASL auth of {cred} on node {node.name}: status {hdr[5]:#x} {body!r}")
    return s


def ascii_cmd(s, line, data=None):
    s.sendall(line + b"\r\n" + (data + b"\r\n" if data is not None else b""))
    return recv_line(s)


def ascii_get(s, key):
    s.sendall(b"get " + key + b"\r\n")
    reply = recv_until(s, b"END\r\n")
    if reply == b"END\r\n":
        return None
    m = re.match(rb"VALUE \S+ \d+ (\d+)\r\n", reply)
    check(m, f"get {key!r}: {reply[:100]!r}")
    start = m.end()
    return reply[start:start + int(m.group(1))]


def parse_stats(raw):
    out = {}
    for line in raw.decode().split("\r\n"):
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            try:
                out[parts[1]] = int(parts[2])
            except ValueError:
                try:
                    out[parts[1]] = float(parts[2])
                except ValueError:
                    out[parts[1]] = parts[2]
    return out


def data_stats(node, cred):
    """`stats` through a fresh ASCII-authenticated connection to NODE (that
    connection sends nothing else)."""
    s = ascii_login(node, cred)
    try:
        s.sendall(b"stats\r\n")
        return parse_stats(recv_until(s, b"END\r\n"))
    finally:
        s.close()


def wait_closed(s, within, what):
    """Seconds until the peer closed the connection (recv returns b'' or an
    error); fails after `within`."""
    t0 = time.monotonic()
    while True:
        left = t0 + within - time.monotonic()
        check(left > 0, f"{what}: still open {within}s later")
        s.settimeout(left)
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            continue
        except OSError:
            chunk = b""
        if not chunk:
            return time.monotonic() - t0


# -------------------------------------------------- config get cluster


def parse_config_cluster(raw):
    """Parses `CONFIG cluster 0 <len>\\r\\n<version>\\n<host>|<ip>|<port> ...\\n\\r\\nEND\\r\\n`
    (the whole reply), checking that <len> is exactly the payload's length
    (version line and node line with its \\n). Returns (version, [(host, ip, port)])."""
    m = re.match(rb"CONFIG cluster (\d+) (\d+)\r\n", raw)
    check(m, f"config get cluster: bad header in {raw[:120]!r}")
    check(m.group(1) == b"0", f"config get cluster: flags {m.group(1)!r}, expected 0")
    n = int(m.group(2))
    payload, rest = raw[m.end():m.end() + n], raw[m.end() + n:]
    check(rest == b"\r\nEND\r\n",
          f"config get cluster: <len> {n} is not the payload's length: after {n} bytes comes {rest!r} "
          f"(whole reply {raw!r})")
    check(payload.endswith(b"\n"), f"config get cluster: payload does not end with \\n: {payload!r}")
    lines = payload[:-1].split(b"\n")
    check(len(lines) == 2, f"config get cluster: expected a version line and a node line, got {payload!r}")
    check(lines[0].isdigit(), f"config get cluster: version {lines[0]!r} is not a number")
    nodes = []
    for entry in lines[1].split(b" "):
        parts = entry.decode().split("|")
        check(len(parts) == 3 and parts[2].isdigit(), f"config get cluster: bad node entry {entry!r}")
        nodes.append((parts[0], parts[1], int(parts[2])))
    return int(lines[0]), nodes


CONFIG_NEEDS_AUTH = []  # set once it is known that `config get cluster` needs a login


def config_get_cluster(node, cred=None):
    """(version, ["host:port", ...]) from NODE. Tries without authenticating
    first; if the server refuses that, logs in with `cred` (once known, every
    later call logs in first)."""
    def ask(login):
        s = ascii_login(node, cred) if login else connect(node)
        try:
            s.sendall(b"config get cluster\r\n")
            first = recv_line(s)
            if not first.startswith(b"CONFIG "):
                return first, None
            return first, parse_config_cluster(first + recv_until(s, b"END\r\n"))
        finally:
            s.close()

    if not CONFIG_NEEDS_AUTH or cred is None:
        first, parsed = ask(False)
        if parsed is None and cred is not None and (first.startswith(b"CLIENT_ERROR") or first == b"ERROR\r\n"):
            log(f"  note: `config get cluster` before auth answers {first!r}; asking after ASCII auth")
            CONFIG_NEEDS_AUTH.append(True)
        elif parsed is None:
            raise CheckFailed(f"config get cluster on node {node.name}: {first!r}")
        else:
            return parsed[0], [f"{h}:{p}" for h, _, p in parsed[1]]
    first, parsed = ask(True)
    check(parsed is not None, f"config get cluster on node {node.name} (after auth): {first!r}")
    return parsed[0], [f"{h}:{p}" for h, _, p in parsed[1]]


def wait_cluster_list(nodes, want, within, cred, what, min_version=None):
    """Polls `config get cluster` on each of NODES until all list exactly the
    addresses `want` (and, with min_version, a version above it). Returns
    ({node: version}, seconds)."""
    t0 = time.monotonic()
    want = sorted(want)
    last = {}
    while True:
        done = {}
        for n in nodes:
            ver, lst = config_get_cluster(n, cred)
            last[n.name] = (ver, lst)
            if sorted(lst) == want and (min_version is None or ver > min_version):
                done[n.name] = ver
        took = time.monotonic() - t0
        if len(done) == len(nodes):
            return done, took
        check(took < within, f"{what}: after {within}s the nodes list {last} (wanted {want}"
                             + (f", version > {min_version})" if min_version is not None else ")"))
        time.sleep(0.05)


# ================================================================ clients


def pymemcache_client(node, cred, **kw):
    """pymemcache to one node, sending MemCachier ASCII auth as the first
    command of every connection it opens (as in test_mt_clients.py)."""
    from pymemcache.client.base import Client, _readline
    from pymemcache.exceptions import MemcacheUnknownError

    class MemCachierClient(Client):
        def _connect(self):
            super()._connect()
            try:
                self.sock.sendall(ascii_auth_bytes(cred))
                _, line = _readline(self.sock, b"")
            except Exception:
                self.close()
                raise
            if line != b"STORED":
                self.close()
                self._raise_errors(line, b"set")
                raise MemcacheUnknownError(line[:64])

    kw.setdefault("connect_timeout", 2)
    kw.setdefault("timeout", 5)
    return MemCachierClient(node.hostport(), **kw)


def pylibmc_client(servers, cred, **behaviors):
    import pylibmc

    b = {"connect_timeout": 1000}
    b.update(behaviors)
    return pylibmc.Client(list(servers), binary=True, username=cred.user, password=cred.password, behaviors=b)


def bmemcached_client(node, cred):
    import bmemcached

    return bmemcached.Client((node.addr,), cred.user, cred.password, socket_timeout=2)


def wait_works(fn, within, what):
    """Calls fn() until it returns truthy without raising; returns seconds
    (from the call). Fails after `within`."""
    t0 = time.monotonic()
    last = None
    while True:
        try:
            if fn():
                return time.monotonic() - t0
            last = "returned a falsy value"
        except Exception as e:  # noqa: BLE001 - retried, reported below
            last = f"{type(e).__name__}: {e}"
        check(time.monotonic() - t0 < within, f"{what}: not working {within}s later (last: {last})")
        time.sleep(0.02)


def cred_works_sasl(node, cred):
    c = bmemcached_client(node, cred)
    try:
        key = f"probe:sasl:{node.name}"
        return c.set(key, "1") and c.get(key) == "1"
    finally:
        c.disconnect_all()


def cred_works_ascii(node, cred):
    c = pymemcache_client(node, cred)
    try:
        key = f"probe:ascii:{node.name}"
        return c.set(key, b"1", noreply=False) is True and c.get(key) == b"1"
    finally:
        c.close()


def wait_cred_everywhere(nodes, cred, since, what, within=PROPAGATE_WITHIN):
    """`cred` authenticates on every node over SASL (python-binary-memcached)
    and MemCachier ASCII auth (pymemcache), within `within` s of `since`."""
    times = []
    for n in nodes:
        for proto, fn in [("SASL", cred_works_sasl), ("ASCII auth", cred_works_ascii)]:
            left = since + within - time.monotonic()
            wait_works(lambda: fn(n, cred), max(left, 0.0), f"{what}: {cred} over {proto} on node {n.name}")
            times.append((f"{n.name}/{proto}", time.monotonic() - since))
    return times


def wait_refused_everywhere(nodes, cred, since, what, within=PROPAGATE_WITHIN):
    for n in nodes:
        while True:
            got = ascii_auth_reply(n, cred)
            if got.startswith(b"CLIENT_ERROR"):
                break
            check(time.monotonic() - since < within,
                  f"{what}: {cred} still accepted on node {n.name} ({got!r}) {within}s later")
            time.sleep(0.02)


def fmt_times(times):
    return ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in times)


# ================================================================ the checks

S = {}  # state shared by the checks: pg, nodes, creds, ...


def live_nodes():
    return [n for n in S["nodes"].values() if n.alive()]


def split_check(deltas, total, what):
    """deltas: {node name: items} must sum to total, each 1/3 +- tolerance."""
    check(sum(deltas.values()) == total,
          f"{what}: the nodes' curr_items grew by {deltas} = {sum(deltas.values())}, not {total}")
    lo, hi = 1 / 3 - SPLIT_TOLERANCE, 1 / 3 + SPLIT_TOLERANCE
    for name, d in deltas.items():
        check(lo <= d / total <= hi, f"{what}: node {name} holds {d / total:.1%} of the keys "
                                     f"(wanted {lo:.1%}..{hi:.1%}; split {deltas})")
    return " / ".join(f"{k} {v / total:.1%}" for k, v in sorted(deltas.items()))


def curr_items_by_node(cred):
    return {n.name: data_stats(n, cred).get("curr_items", 0) for n in live_nodes()}


def wait_items_delta(before, total, what, within=3.0):
    """curr_items per node (data-port stats) minus `before`, polled until the
    sum reaches `total` (a core may apply a batch a moment later)."""
    t0 = time.monotonic()
    while True:
        now = curr_items_by_node(S["cache"])
        deltas = {k: now[k] - before.get(k, 0) for k in now}
        if sum(deltas.values()) >= total or time.monotonic() - t0 > within:
            return deltas
        time.sleep(0.1)


def a_start_cluster():
    """PostgreSQL and nodes A, B (-t 1) and C (-t 2) on it; every node lists all three."""
    check(binary_supports_cluster(),
          f"{BIN} has no --control-plane flag (an older build without cluster mode): "
          "cargo build --release --bins")
    pg = Postgres(S["work"])
    S["pg"] = pg
    pg.init()
    pg.start()
    log(f"  PostgreSQL ({pg.bindir}) on 127.0.0.1:{pg.port}")
    S["nodes"] = {}
    for name, threads in [("A", 1), ("B", 1), ("C", 2)]:
        n = Node(name, S["work"], threads, pg.url)
        S["nodes"][name] = n
        n.start()
        log(f"  node {name}: data {n.addr}, admin {n.admin}, -t {threads}")
    nodes = list(S["nodes"].values())
    addrs = sorted(n.addr for n in nodes)
    # The operator token comes from PostgreSQL into every data dir.
    t0 = time.monotonic()
    while not all(os.path.exists(os.path.join(n.data_dir, "operator.token")) for n in nodes):
        check(time.monotonic() - t0 < 5, "operator.token missing from a node's data dir 5 s after start: "
              + ", ".join(f"{n.name}: {os.path.exists(os.path.join(n.data_dir, 'operator.token'))}" for n in nodes))
        time.sleep(0.05)
    tokens = {n.name: n.token() for n in nodes}
    check(len(set(tokens.values())) == 1, f"the nodes' operator tokens differ (not shared via PostgreSQL): "
          + ", ".join(f"{k}: {v[:8]}..." for k, v in tokens.items()))
    # Membership: /admin/v1/nodes on each node shows the three up.
    t0 = time.monotonic()
    while True:
        states = {n.name: node_states(admin_nodes(n)) for n in nodes}
        if all(sorted(s) == addrs and set(s.values()) == {"up"} for s in states.values()):
            break
        check(time.monotonic() - t0 < 5, f"GET /admin/v1/nodes does not show the three nodes up within 5 s: "
                                         f"{states} (wanted {addrs} up)")
        time.sleep(0.1)
    took_admin = time.monotonic() - t0
    # `shoal node list` (text and --json) through the CLI.
    text = cli(nodes[0], "node", "list")
    for a in addrs:
        check(a in text, f"`shoal node list` does not mention {a}:\n{text}")
    j = cli_json(nodes[0], "node", "list")
    if isinstance(j, dict) and isinstance(j.get("nodes"), list):
        j = j["nodes"]
    check(isinstance(j, list) and sorted(node_states(j)) == addrs,
          f"`shoal node list --json` is not the three nodes: {json.dumps(j)[:400]}")
    S["t0_membership"] = took_admin
    return f"3 nodes up in /admin/v1/nodes after {took_admin * 1000:.0f} ms; shared operator token; `node list` ok"


def b_credential_propagates():
    """A cache created through A's CLI authenticates on B and C within 2 s (SASL and ASCII auth)."""
    a, b, c = (S["nodes"][k] for k in "ABC")
    cred = create_cache(a, "cluster-main")
    since = time.monotonic()
    S["cache"] = cred
    want = sorted(n.addr for n in (a, b, c))
    check(sorted(cred.servers) == want, f"MEMCACHIER_SERVERS={','.join(cred.servers)}, wanted every live node {want}")
    times = wait_cred_everywhere([b, c], cred, since, "new cache")
    check(cred_works_sasl(a, cred) and cred_works_ascii(a, cred), "the new credential works on node A")
    worst = max(t for _, t in times)
    return f"cache {cred.cache_id} ({cred.user}); slowest {worst * 1000:.0f} ms: {fmt_times(times)}"


def c_ketama_split():
    """pylibmc (ketama, SASL) and php-memcached (consistent, libketama-compatible, SASL): 10,000 keys each, 1/3 per node."""
    import pylibmc

    cred = S["cache"]
    n = 10_000
    before = curr_items_by_node(cred)
    mc = pylibmc_client(cred.servers, cred, ketama=True)
    keys = [f"split:pylibmc:{i}" for i in range(n)]
    failed = []
    for i in range(0, n, 500):
        chunk = {k: f"v{k}" for k in keys[i:i + 500]}
        try:
            failed += mc.set_multi(chunk)
        except pylibmc.Error as e:
            raise CheckFailed(f"pylibmc set_multi: {e}")
    check(not failed, f"pylibmc: {len(failed)} of {n} sets failed (first {failed[:3]})")
    missing = 0
    for i in range(0, n, 500):
        got = mc.get_multi(keys[i:i + 500])
        missing += sum(1 for k in keys[i:i + 500] if got.get(k) != f"v{k}")
    check(missing == 0, f"pylibmc: {missing} of {n} keys did not read back")
    mc.disconnect_all()
    deltas = wait_items_delta(before, n, "pylibmc")
    split = split_check(deltas, n, "pylibmc ketama")
    log(f"  pylibmc ketama: {n} keys written and read back; split {split}")

    php = php_ketama(cred, n)
    if php is None:
        return f"pylibmc {split}; php-memcached skipped"
    before = {k: before[k] + deltas[k] for k in before}
    deltas = wait_items_delta(before, n, "php-memcached")
    split2 = split_check(deltas, n, "php-memcached consistent")
    return f"pylibmc {split}; php-memcached {split2}"


PHP_KETAMA = r"""<?php
[$_, $servers, $user, $pass, $n] = $argv;
$m = new Memcached();
$m->setOption(Memcached::OPT_BINARY_PROTOCOL, true);
$m->setOption(Memcached::OPT_DISTRIBUTION, Memcached::DISTRIBUTION_CONSISTENT);
$m->setOption(Memcached::OPT_LIBKETAMA_COMPATIBLE, true);
$m->setOption(Memcached::OPT_CONNECT_TIMEOUT, 1000);
$m->setSaslAuthData($user, $pass);
foreach (explode(",", $servers) as $s) { [$h, $p] = explode(":", $s); $m->addServer($h, (int)$p); }
$failed = 0; $missing = 0;
for ($i = 0; $i < $n; $i += 500) {
    $batch = [];
    for ($j = $i; $j < min($n, $i + 500); $j++) { $batch["split:php:$j"] = "v$j"; }
    if (!$m->setMulti($batch)) { $failed += count($batch); fwrite(STDERR, "setMulti: " . $m->getResultMessage() . "\n"); }
    $got = $m->getMulti(array_keys($batch));
    foreach ($batch as $k => $v) { if (!is_array($got) || ($got[$k] ?? null) !== $v) { $missing++; } }
}
echo json_encode(["failed" => $failed, "missing" => $missing, "msg" => $m->getResultMessage()]), "\n";
"""


def php_ketama(cred, n):
    """php-memcached stores and reads back n keys; None (skipped, with the reason printed) when it cannot."""
    if not shutil.which("php"):
        log("  SKIP php-memcached: no php on this machine (scripts/install-test-deps.sh installs php-cli, php-memcached)")
        return None
    probe = subprocess.run(["php", "-r", 'echo class_exists("Memcached") ? (Memcached::HAVE_SASL ? "sasl" : "nosasl") : "none";'],
                           capture_output=True, text=True, timeout=30)
    if probe.stdout != "sasl":
        why = {"none": "no Memcached class (php-memcached not installed)",
               "nosasl": "php-memcached was built without SASL (Memcached::HAVE_SASL is false) and cannot do "
                         "MemCachier ASCII auth either"}.get(probe.stdout, f"probe said {probe.stdout!r} {probe.stderr!r}")
        log(f"  SKIP php-memcached: {why}")
        return None
    path = os.path.join(S["work"], "ketama.php")
    with open(path, "w") as f:
        f.write(PHP_KETAMA)
    p = subprocess.run(["php", "-d", "memcached.use_sasl=1", path, ",".join(cred.servers), cred.user, cred.password,
                        str(n)], capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, f"php-memcached script failed ({p.returncode}): {p.stdout}{p.stderr}")
    try:
        r = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise CheckFailed(f"php-memcached script printed no result: {p.stdout}{p.stderr}")
    check(r["failed"] == 0 and r["missing"] == 0,
          f"php-memcached: {r['failed']} sets failed, {r['missing']} of {n} keys did not read back "
          f"({r['msg']}; {p.stderr.strip()[:300]})")
    log(f"  php-memcached (consistent, libketama-compatible, binary + SASL): {n} keys written and read back")
    return r


COMPARED = ["curr_items", "bytes", "cmd_set", "total_items", "cmd_get", "get_hits", "get_misses", "evictions"]


def d_api_stats_match():
    """API stats on node C equal, per node, the `stats` read on each node's data port."""
    cred = S["cache"]
    nodes = live_nodes()
    c = S["nodes"]["C"]
    data = {n.addr: data_stats(n, cred) for n in nodes}
    for addr, st in data.items():
        missing = [k for k in COMPARED if k not in st]
        check(not missing, f"data-port stats of {addr} lack {missing}")
    t0 = time.monotonic()
    while True:
        api = api_stats(c, cred)
        check(sorted(api) == sorted(data), f"API stats keys {sorted(api)}, wanted the live nodes {sorted(data)}")
        diffs = []
        for addr in data:
            for k in COMPARED:
                if api[addr].get(k) != data[addr][k]:
                    diffs.append(f"{addr} {k}: api {api[addr].get(k)} data {data[addr][k]}")
        if not diffs:
            break
        check(time.monotonic() - t0 < API_STATS_WITHIN, f"API stats on node C differ from the nodes' own stats "
                                         f"{API_STATS_WITHIN}s later: " + "; ".join(diffs))
        time.sleep(0.1)
    notes = [f"{a} limit_maxbytes api {api[a].get('limit_maxbytes')} data {data[a].get('limit_maxbytes')}"
             for a in data if api[a].get("limit_maxbytes") != data[a].get("limit_maxbytes")]
    if notes:
        log("  note: " + "; ".join(notes))
    items = {a: data[a]["curr_items"] for a in data}
    return (f"{len(COMPARED)} counters equal on {len(data)} nodes after {(time.monotonic() - t0) * 1000:.0f} ms; "
            f"curr_items {items}")


def api_json(node, cred, path):
    """GET /api/v2/caches/{id}/PATH on NODE with the credential: the JSON."""
    url = f"http://{node.admin}/api/v2/caches/{cred.cache_id}/{path}"
    status, body = http("GET", url, basic(cred))
    check(status == 200, f"GET {url}: {status} {body[:300]!r}")
    try:
        return json.loads(body)
    except ValueError:
        raise CheckFailed(f"GET {url}: not JSON: {body[:300]!r}")


def k_analytics_span_the_cluster():
    """Node C's analytics cover every node: processed_stats sums them, per_server, latency and recent_logs
    give one entry per node's host:port."""
    cred = S["cache"]
    c = S["nodes"]["C"]
    nodes = live_nodes()
    want = {n.addr for n in nodes}
    # Some traffic on every node (ketama spreads 300 keys), so each node's
    # series has moved since its first sample; then none, and two samples on
    # every node, so the last points agree with the stats.
    mc = pylibmc_client(cred.servers, cred, ketama=True)
    mc.set_multi({f"k:{i}": b"x" * 100 for i in range(300)})
    mc.disconnect_all()
    time.sleep(STATS_INTERVAL * 2.5)
    per = api_json(c, cred, "insight/processed_stats/per_server?names=bytes,get_rate")
    tags = {s.get("tags", {}).get("server") for s in per}
    check(tags == want, f"processed_stats/per_server: servers {sorted(map(str, tags))}, wanted {sorted(want)}")
    last = {s["tags"]["server"]: s["values"][-1] for s in per if s.get("values")}
    if set(last) != want:
        raw = {}
        for n in nodes:
            st, body = http("GET", f"http://{n.admin}/admin/v1/local/caches/{cred.cache_id}/history",
                            {"Authorization": f"Bearer {n.token()}"})
            raw[n.addr] = [p["t"] for p in json.loads(body).get("points", [])] if st == 200 else st
        raise CheckFailed(f"processed_stats/per_server: no rows for {sorted(want - set(last))}; "
                          f"the nodes' sample times: {raw}; answer {json.dumps(per)[:600]}")
    total = api_json(c, cred, "insight/processed_stats?names=bytes,get_rate")
    check(len(total) == 1 and total[0].get("values"), f"processed_stats: no rows: {json.dumps(total)[:300]}")
    total_bytes = total[0]["values"][-1][1]
    per_bytes = sum(row[1] for row in last.values())
    stats_bytes = sum(s["bytes"] for s in api_stats(c, cred).values())
    check(total_bytes == per_bytes == stats_bytes,
          f"processed_stats bytes {total_bytes} != sum per server {per_bytes} / API stats {stats_bytes}")
    lat = api_json(c, cred, "insight/latency")
    lat_tags = {s.get("tags", {}).get("server") for s in lat}
    check(lat_tags == want, f"insight/latency: servers {sorted(map(str, lat_tags))}, wanted {sorted(want)}")
    logs = api_json(c, cred, "introspection/recent_logs")
    check(set(logs) == want, f"recent_logs: servers {sorted(logs)}, wanted {sorted(want)}")
    empty = [a for a, lines in logs.items() if not lines]
    check(not empty, f"recent_logs: no lines from {empty} (each node served the ketama clients)")
    return (f"processed_stats bytes {total_bytes} = per_server sum = API stats; per_server, latency and "
            f"recent_logs list {len(want)} servers ({sum(len(v) for v in logs.values())} log lines)")


def i_fill_to_plan():
    """A second 30MB cache filled with 10,000-byte values: at the first eviction the nodes hold >= 95% of 30 MiB."""
    import pylibmc

    c = S["nodes"]["C"]
    cred = create_cache(c, "cluster-fill")
    S["fill"] = cred
    since = time.monotonic()
    wait_cred_everywhere(live_nodes(), cred, since, "fill cache")
    mc = pylibmc_client(cred.servers, cred, ketama=True)
    value = os.urandom(10_000)
    writes = failed = 0
    limit = 20_000
    while True:
        batch = {f"fill:{writes + j}": value for j in range(200)}
        try:
            failed += len(mc.set_multi(batch))
        except pylibmc.Error as e:
            raise CheckFailed(f"fill: pylibmc set_multi after {writes} writes: {e}")
        writes += 200
        stats = api_stats(c, cred)
        ev = {a: s.get("evictions", 0) for a, s in stats.items()}
        if any(ev.values()):
            break
        check(writes < limit, f"fill: no evictions after {writes} writes of 10,000 bytes "
                              f"(bytes per node {({a: s.get('bytes') for a, s in stats.items()})})")
        # About 10 MB/s: a fast fill that still spans several heartbeats
        # (the nodes split the plan by what they report each heartbeat).
        time.sleep(0.15)
    total = sum(s.get("bytes", 0) for s in stats.values())
    frac = total / PLAN_BYTES
    per = {a: f"{s.get('bytes', 0) / 2**20:.1f} MiB ev {s.get('evictions')}" for a, s in stats.items()}
    check(failed <= writes * 0.01, f"fill: {failed} of {writes} sets failed")
    check(frac >= FILL_MIN_FRACTION, f"fill: at the first eviction (after {writes} writes) the nodes hold "
                                     f"{total} bytes = {frac:.1%} of the 30 MiB plan (wanted >= "
                                     f"{FILL_MIN_FRACTION:.0%}): {per}")
    # Keep writing past the first eviction: once the reports catch up the
    # shares add up to the plan, and the nodes together hold no more.
    for _ in range(10):
        batch = {f"fill:{writes + j}": value for j in range(200)}
        failed += len(mc.set_multi(batch))
        writes += 200
        time.sleep(0.15)
    time.sleep(HEARTBEAT * 4)
    mc.disconnect_all()
    settled = sum(s.get("bytes", 0) for s in api_stats(c, cred).values()) / PLAN_BYTES
    check(settled <= 1.02, f"fill: after the fill settled the nodes hold {settled:.1%} of the 30 MiB plan")
    return (f"first eviction after {writes} writes; nodes hold {frac:.1%} of 30 MiB ({per}); "
            f"settled at {settled:.1%}")


def e_revoke_closes_sessions():
    """A credential removed through B's CLI: its live sessions on every node close within 2 s."""
    a, b, c = (S["nodes"][k] for k in "ABC")
    cred = add_credential(a, S["cache"].cache_id)
    wait_cred_everywhere([a, b, c], cred, time.monotonic(), "second credential")
    sessions = []
    for n in (a, b, c):
        sessions.append((f"{n.name}/ascii", ascii_login(n, cred)))
        sessions.append((f"{n.name}/sasl", sasl_login(n, cred)))
    s0 = sessions[0][1]
    check(ascii_cmd(s0, b"set revoke:k 0 0 1", b"x") == b"STORED\r\n", "a live session works before removal")
    cli(b, "credential", "remove", "--cache", str(cred.cache_id), cred.user)
    since = time.monotonic()
    times = []
    for name, s in sessions:
        left = since + CLOSE_WITHIN - time.monotonic()
        wait_closed(s, max(left, 0.001), f"live {name} session of the removed credential")
        times.append((name, time.monotonic() - since))
        s.close()
    wait_refused_everywhere([a, b, c], cred, since, "removed credential")
    S["revoked"] = cred
    return f"all {len(sessions)} sessions closed; slowest {max(t for _, t in times) * 1000:.0f} ms: {fmt_times(times)}"


def f_drain():
    """`config get cluster` lists three nodes; A drained through B leaves every list within 3 s and exits within 10 s."""
    a, b, c = (S["nodes"][k] for k in "ABC")
    cred = S["cache"]
    before, _ = wait_cluster_list([a, b, c], [a.addr, b.addr, c.addr], 3.0, cred, "three nodes")
    versions = set(before.values())
    since = time.monotonic()  # the bounds count from the CLI call (it may wait for the drain)
    cli(b, "node", "drain", a.addr)
    cli_took = time.monotonic() - since
    vers, _ = wait_cluster_list([b, c], [b.addr, c.addr], max(DRAIN_LIST_WITHIN - cli_took, 0.001), cred,
                                "after draining A", min_version=max(before.values()))
    took = time.monotonic() - since
    _, rc = a.wait_exit(DRAIN_EXIT_WITHIN - (time.monotonic() - since))
    exit_at = time.monotonic() - since
    if rc != 0:
        log(f"  note: drained node A exited with status {rc}")
    states = node_states(admin_nodes(b))
    log(f"  /admin/v1/nodes on B after the drain: {states}")
    check(states.get(a.addr) in (None, "leaving", "down"), f"drained A is still '{states.get(a.addr)}' on B")
    return (f"versions {sorted(versions)} -> {sorted(set(vers.values()))}; CLI took {cli_took * 1000:.0f} ms; "
            f"A left the lists {took * 1000:.0f} ms after the CLI call; A exited (status {rc}) {exit_at:.2f}s after the drain")


def held_keys(node, cred, keys):
    """The keys of `keys` that NODE itself holds (pymemcache, 100 per get)."""
    pm = pymemcache_client(node, cred)
    try:
        return {k for i in range(0, len(keys), 100) for k in pm.get_many(keys[i:i + 100])}
    finally:
        pm.close()


def g_kill_and_rejoin():
    """kill -9 B: pylibmc (ketama, remove_failed) keeps working through C; B restarted on its port rejoins within 3 s."""
    import pylibmc

    b, c = S["nodes"]["B"], S["nodes"]["C"]
    cred = S["cache"]
    servers = [b.addr, c.addr]
    # libmemcached 1.1 (pylibmc 1.6): remove_failed / retry_timeout /
    # dead_timeout alone only park the dead server ("SERVER HAS FAILED AND IS
    # DISABLED UNTIL TIMED RETRY" on every key that hashes to it, ~half the
    # writes, for as long as it is down); auto_eject + failure_limit 1 take
    # it out of the ketama continuum so its keys re-hash to the live nodes
    # (measured against plain nodes: errors only in the first ms and one or
    # two at each retry).
    behaviors = dict(ketama=True, remove_failed=1, retry_timeout=1, dead_timeout=2, auto_eject=True,
                     failure_limit=1)
    mc = pylibmc_client(servers, cred, **behaviors)
    keys = [f"fail:pre:{i}" for i in range(1000)]
    check(mc.set_multi({k: k for k in keys}) == [], "failover: writes before the kill")
    on_c, on_b = held_keys(c, cred, keys), held_keys(b, cred, keys)
    check(on_c.isdisjoint(on_b) and len(on_c) + len(on_b) == len(keys),
          f"failover: keys on C {len(on_c)} + on B {len(on_b)} != {len(keys)}")
    check(0.2 * len(keys) <= len(on_c) <= 0.8 * len(keys), f"failover: only {len(on_c)} of 1000 keys on C")

    b.kill(signal.SIGKILL)
    killed = time.monotonic()

    def try_op(fn):
        try:
            return bool(fn())
        except pylibmc.Error:
            return False

    reads_ok = sum(try_op(lambda k=k: mc.get(k) == k) for k in sorted(on_c))
    check(reads_ok >= 0.95 * len(on_c), f"failover: only {reads_ok} of {len(on_c)} keys on live C read back")
    # Failover kicks in: 20 writes in a row succeed (bounded: 500 tries, 15 s).
    streak = tries = 0
    while streak < 20:
        tries += 1
        check(tries <= 500 and time.monotonic() - killed < 15,
              f"failover: no 20 successful writes in a row after {tries} tries / "
              f"{time.monotonic() - killed:.1f}s (remove_failed not taking B out?)")
        streak = streak + 1 if try_op(lambda: mc.set(f"fail:warm:{tries}", "x")) else 0
    failover_after = time.monotonic() - killed
    post = [f"fail:post:{i}" for i in range(1000)]
    wrote = [k for k in post if try_op(lambda k=k: mc.set(k, k))]
    check(len(wrote) >= 0.95 * len(post), f"failover: only {len(wrote)} of {len(post)} writes succeeded")
    read = sum(try_op(lambda k=k: mc.get(k) == k) for k in wrote)
    check(read >= 0.95 * len(wrote), f"failover: only {read} of {len(wrote)} written keys read back")
    log(f"  after kill -9 B: {reads_ok}/{len(on_c)} C keys read; failover after {tries} tries "
        f"({failover_after:.2f}s); {len(wrote)}/1000 writes, {read} read back")

    # B leaves the list after --node-timeout.
    _, gone = wait_cluster_list([c], [c.addr], NODE_TIMEOUT + 4, cred, "after kill -9 B")
    log(f"  B left C's `config get cluster` {time.monotonic() - killed:.2f}s after the kill; "
        f"/admin/v1/nodes on C: {node_states(admin_nodes(c))}")
    # A credential created while B is down must reach B from PostgreSQL.
    while_down = add_credential(c, cred.cache_id)
    b.start()
    vers, took = wait_cluster_list([b, c], [b.addr, c.addr], REJOIN_WITHIN, cred, "after restarting B")
    since = time.monotonic()
    times = wait_cred_everywhere([b], cred, since, "restarted B, the cache's credential")
    wait_cred_everywhere([b], while_down, since, "restarted B, a credential created while it was down")
    got = ascii_auth_reply(b, S["revoked"])
    check(got.startswith(b"CLIENT_ERROR"), f"restarted B accepts the credential removed in (e): {got!r}")
    mc.disconnect_all()
    return (f"failover after {failover_after:.2f}s; {len(wrote) / 10:.1f}% writes ok; B rejoined "
            f"{took * 1000:.0f} ms after listening; credentials on B: {fmt_times(times)}")


def h_postgres_restart():
    """PostgreSQL restarted: nodes keep serving meanwhile; a credential created afterwards works everywhere within 2 s."""
    pg = S["pg"]
    cred = S["cache"]
    nodes = live_nodes()
    sessions = {n.name: ascii_login(n, cred) for n in nodes}
    pg.stop("fast")
    down_at = time.monotonic()
    ops = 0
    try:
        while time.monotonic() - down_at < 1.0 or ops < 4 * len(nodes):
            for n in nodes:
                key = f"pgdown:{ops}".encode()
                s = sessions[n.name]
                check(ascii_cmd(s, b"set " + key + b" 0 0 2", b"ok") == b"STORED\r\n",
                      f"PostgreSQL down: set on node {n.name}'s live session")
                check(ascii_get(s, key) == b"ok", f"PostgreSQL down: get on node {n.name}'s live session")
                fresh = ascii_login(n, cred)  # a new login while PostgreSQL is down
                check(ascii_get(fresh, key) == b"ok", f"PostgreSQL down: new session on node {n.name}")
                fresh.close()
                ops += 1
            time.sleep(0.05)
    finally:
        pg.start()
    down_for = time.monotonic() - down_at
    for s in sessions.values():
        s.close()
    # The CLI works again once the node reconnects (retried for up to 10 s).
    t0 = time.monotonic()
    while True:
        try:
            new = add_credential(nodes[0], cred.cache_id)
            break
        except CheckFailed as e:
            check(time.monotonic() - t0 < CLI_RETRY_WITHIN,
                  f"`shoal credential add` still fails {CLI_RETRY_WITHIN}s after PostgreSQL came back: {e}")
            time.sleep(0.2)
    cli_after = time.monotonic() - t0
    times = wait_cred_everywhere(nodes, new, time.monotonic(), "credential created after the restart")
    addrs = [n.addr for n in nodes]
    _, took = wait_cluster_list(nodes, addrs, 5.0, cred, "membership after the PostgreSQL restart")
    return (f"{ops} set/get/login rounds while PostgreSQL was down ({down_for:.2f}s); CLI ok after "
            f"{cli_after:.2f}s; new credential: {fmt_times(times)}")


def j_drained_node_rejoins():
    """The drained node A restarted on its port rejoins (three nodes again) and serves the cache."""
    a, b, c = (S["nodes"][k] for k in "ABC")
    a.start()
    vers, took = wait_cluster_list([a, b, c], [a.addr, b.addr, c.addr], REJOIN_WITHIN, S["cache"],
                                   "after restarting the drained A")
    times = wait_cred_everywhere([a], S["cache"], time.monotonic(), "restarted A")
    return f"A back in every list after {took * 1000:.0f} ms (version {max(vers.values())}); {fmt_times(times)}"


CHECKS = [
    ("a. three nodes on one PostgreSQL", a_start_cluster),
    ("b. new cache's credential on every node", b_credential_propagates),
    ("c. ketama clients spread keys evenly", c_ketama_split),
    ("d. API stats = per-node data-port stats", d_api_stats_match),
    ("k. analytics span the cluster", k_analytics_span_the_cluster),
    ("i. fill to the plan before evicting", i_fill_to_plan),
    ("e. removed credential's sessions closed", e_revoke_closes_sessions),
    ("f. drain", f_drain),
    ("g. kill -9, failover, rejoin", g_kill_and_rejoin),
    ("h. PostgreSQL restart", h_postgres_restart),
    ("j. drained node rejoins", j_drained_node_rejoins),
]


# ================================================================ self-test


def selftest():
    """The harness without cluster mode: PostgreSQL lifecycle, node start /
    restart on the same port / stop against a plain multi-tenant build, and
    the parsers."""
    # Parser.
    payload = b"3\nh1|127.0.0.1|11211 h2|127.0.0.1|11212 h3|10.0.0.1|1\n"
    ok = b"CONFIG cluster 0 %d\r\n%s\r\nEND\r\n" % (len(payload), payload)
    check(parse_config_cluster(ok) == (3, [("h1", "127.0.0.1", 11211), ("h2", "127.0.0.1", 11212),
                                           ("h3", "10.0.0.1", 1)]), "parse_config_cluster")
    n = len(payload)
    for bad in [ok.replace(b" %d\r\n" % n, b" %d\r\n" % (n - 1)), ok.replace(b" %d\r\n" % n, b" %d\r\n" % (n + 1)),
                b"CONFIG cluster 0 2\r\n3\n\r\nEND\r\n", b"ERROR\r\n"]:
        try:
            parse_config_cluster(bad)
        except CheckFailed as e:
            log(f"  parser rejects {bad[:24]!r}...: {str(e)[:90]}")
        else:
            raise CheckFailed(f"parse_config_cluster accepted {bad!r}")
    check(parse_stats(b"STAT curr_items 5\r\nSTAT version 1.6.18\r\nEND\r\n") ==
          {"curr_items": 5, "version": "1.6.18"}, "parse_stats")
    log("PASS parsers")

    pg = Postgres(S["work"])
    S["pg"] = pg
    t0 = time.monotonic()
    pg.init()
    pg.start()
    log(f"PASS PostgreSQL init + start on 127.0.0.1:{pg.port} as {pg.as_user or 'the current user'} "
        f"[{time.monotonic() - t0:.2f}s]")
    check(pg.query("create table t(x int); insert into t values (42)").returncode == 0, "create table")
    t0 = time.monotonic()
    pg.restart()
    q = pg.query("select x from t")
    check(q.stdout.strip() == "42", f"data survives the restart: {q.stdout!r} {q.stderr!r}")
    log(f"PASS PostgreSQL restart on the same port [{time.monotonic() - t0:.2f}s]")
    pg.stop()
    check(not pg.running() and port_is_free(pg.port), "PostgreSQL stopped and its port free")
    q = pg.query("select 1")
    check(q.returncode != 0, "PostgreSQL answers after stop")
    pg.start()
    log("PASS PostgreSQL stop (port freed, queries refused) and start again")

    log(f"  {BIN} has --control-plane: {binary_supports_cluster()}")
    n = Node("S", S["work"], 2, pg_url=None)
    S["nodes"] = {"S": n}
    n.start()
    log(f"PASS node start: data {n.addr}, admin {n.admin}")
    cred = create_cache(n, "selftest")
    check(cred.servers == [n.addr], f"MEMCACHIER_SERVERS {cred.servers}")
    wait_cred_everywhere([n], cred, time.monotonic(), "selftest cache")
    st = data_stats(n, cred)
    check(st.get("limit_maxbytes") == PLAN_BYTES, f"data-port stats: {st.get('limit_maxbytes')}")
    status, body = http("GET", f"http://{n.admin}/api/v2/caches/{cred.cache_id}/stats", basic(cred))
    check(status == 200, f"API stats: {status} {body[:200]!r}")
    log(f"  API stats answer (single node, old build?): {body[:80]!r}...")
    s = ascii_login(n, cred)
    port = n.port
    check(n.kill() == -signal.SIGKILL, "node killed by SIGKILL")
    t0 = time.monotonic()
    wait_closed(s, 2, "session of the killed node")
    n.start()
    check(n.port == port, f"restart on the same port: {n.port} != {port}")
    wait_cred_everywhere([n], cred, time.monotonic(), "restarted node (local state)")
    log(f"PASS kill -9 and restart on the same port {port} [{time.monotonic() - t0:.2f}s]")
    try:
        ver, lst = config_get_cluster(n, cred)
        check(lst == [n.addr], f"`config get cluster` on a single node lists {lst}, not itself ({n.addr})")
        log(f"PASS `config get cluster` on this build: version {ver}, {lst}")
    except CheckFailed as e:
        log(f"  `config get cluster` on this build: {str(e)[:100]}")
    check(n.stop(), "node exits on SIGTERM within 5 s")
    log("PASS node stop (SIGTERM)")
    # A node that cannot start is reported with its log.
    bad = Node("X", S["work"], 1, pg_url=f"postgres://postgres@127.0.0.1:{pg.port}/postgres")
    try:
        bad.start(within=10)
    except CheckFailed as e:
        log(f"PASS a node that cannot start is reported: {str(e).splitlines()[0][:150]}")
    else:
        log(f"  note: node X started with --control-plane: {bad.addr}")
        bad.stop()


# ================================================================ main


def cleanup():
    """Stops the nodes and PostgreSQL and removes the work dir; runs once
    (finally, atexit, and on SIGTERM/SIGINT/SIGHUP)."""
    if S.get("_cleaned"):
        return
    S["_cleaned"] = True
    for n in (S.get("nodes") or {}).values():
        try:
            if n.alive() and not n.stop():
                log(f"note: node {n.name} ignored SIGTERM for 5 s; killed")
        except Exception as e:  # noqa: BLE001
            log(f"note: stopping node {n.name}: {e}")
    if S.get("pg"):
        try:
            S["pg"].cleanup()
        except Exception as e:  # noqa: BLE001
            log(f"note: stopping PostgreSQL: {e}")
    work = S.get("work")
    if work and os.path.isdir(work):
        if os.environ.get("SHOAL_KEEP_WORK") == "1":
            log(f"note: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def dump_logs():
    for n in (S.get("nodes") or {}).values():
        print(f"--- node {n.name} ({n.addr}, {'running' if n.alive() else 'not running'}) log, last 40 lines ---",
              file=sys.stderr)
        print(tail(n.log_path, 40), file=sys.stderr)
    if S.get("pg"):
        print("--- PostgreSQL log, last 20 lines ---", file=sys.stderr)
        print(S["pg"].log_tail(20), file=sys.stderr)


def main():
    args = sys.argv[1:]
    if args not in ([], ["--selftest"]):
        sys.exit(__doc__)
    check_bin = os.path.isfile(BIN) and os.access(BIN, os.X_OK)
    if not check_bin:
        sys.exit(f"FAIL: {BIN} not built (cargo build --release --bins)")
    S["work"] = tempfile.mkdtemp(prefix="shoal-cluster-", dir="/tmp")
    os.chmod(S["work"], 0o755)  # PostgreSQL runs as `postgres` and must traverse it
    atexit.register(cleanup)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    name = "self-test"
    try:
        if args == ["--selftest"]:
            selftest()
            log("== cluster harness self-test passed ==")
            return 0
        for name, fn in CHECKS:
            t0 = time.monotonic()
            detail = fn()
            log(f"PASS {name}: {detail} [{time.monotonic() - t0:.2f}s]")
        dead = [n.name for n in S["nodes"].values() if not n.alive()]
        check(not dead, f"nodes not running at the end: {dead}")
        log("== cluster tests passed ==")
        return 0
    except (CheckFailed, AssertionError) as e:
        print(f"FAIL {name}: {e}", file=sys.stderr)
        dump_logs()
        return 1
    except Exception:
        import traceback

        print(f"FAIL {name}: unexpected error", file=sys.stderr)
        traceback.print_exc()
        dump_logs()
        return 1
    finally:
        cleanup()


if __name__ == "__main__":
    sys.exit(main())
