//! End-to-end tests of multi-tenant mode (`--multi-tenant`) over real
//! sockets: authentication on the wire (ASCII `set` and binary SASL PLAIN),
//! revocation, capabilities, isolation between caches under a randomized
//! workload and under memory pressure, how full a cache gets before it
//! evicts, and the item size limit. Caches and credentials are managed with
//! the `shoal cache` / `shoal credential` subcommands against the server's
//! admin endpoint, as an operator would.

mod common;
use common::{Client, Server};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a registry change may take to reach every core (it takes about
/// one 50 ms tick; this bounds every poll).
const SETTLE: Duration = Duration::from_secs(5);
/// A live connection of a revoked credential / disabled cache must be closed
/// within this.
const CLOSE_WITHIN: Duration = Duration::from_secs(2);
/// Consecutive fresh connections that must agree before a change counts as
/// having reached every core (each lands on a core by its source port).
const AGREE: usize = 8;

// ---------------------------------------------------------------------------
// Operator side
// ---------------------------------------------------------------------------

/// One credential as the subcommands print it.
#[derive(Clone, Debug)]
struct Cred {
    cache: u32,
    user: String,
    pass: String,
}

/// The value of a `KEY=value` line of a subcommand's output.
fn line_value(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= line in {out:?}"))
        .to_string()
}

/// `shoal cache create --name NAME --memory MEMORY`; waits until its primary
/// credential authenticates on every core.
fn create_cache(s: &Server, name: &str, memory: &str) -> Cred {
    let out = s
        .ctl(&["cache", "create", "--name", name, "--memory", memory])
        .unwrap();
    // "Created cache 3 (name, 25 MiB)."
    let id: u32 = out
        .lines()
        .find_map(|l| l.strip_prefix("Created cache "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no `Created cache ID` line in {out:?}"));
    assert_eq!(line_value(&out, "MEMCACHIER_SERVERS"), s.addr.to_string());
    let cred = Cred {
        cache: id,
        user: line_value(&out, "MEMCACHIER_USERNAME"),
        pass: line_value(&out, "MEMCACHIER_PASSWORD"),
    };
    assert!(
        !cred.user.is_empty() && !cred.pass.is_empty() && !cred.user.contains(' '),
        "{out:?}"
    );
    settle_auth(s, &cred, true);
    cred
}

/// `shoal credential add --cache ID [flags]`; waits until it authenticates
/// on every core.
fn add_credential(s: &Server, cache: u32, flags: &[&str]) -> Cred {
    let id = cache.to_string();
    let mut args = vec!["credential", "add", "--cache", &id];
    args.extend_from_slice(flags);
    let out = s.ctl(&args).unwrap();
    assert!(
        out.starts_with(&format!("Added credential to cache {cache} (")),
        "{out:?}"
    );
    let cred = Cred {
        cache,
        user: line_value(&out, "MEMCACHIER_USERNAME"),
        pass: line_value(&out, "MEMCACHIER_PASSWORD"),
    };
    settle_auth(s, &cred, true);
    cred
}

/// `shoal cache set --id ID <flag>` (the subcommand takes the id as
/// `--id`, see src/cli/mod.rs `CacheCmd::Set`).
fn cache_set(s: &Server, cache: u32, flag: &[&str]) -> String {
    let id = cache.to_string();
    let mut args = vec!["cache", "set", "--id", &id];
    args.extend_from_slice(flag);
    s.ctl(&args).unwrap()
}

/// Polls fresh connections until `AGREE` in a row authenticate (`ok`) or
/// are refused (`!ok`); panics after `SETTLE`.
fn settle_auth(s: &Server, cred: &Cred, ok: bool) {
    let deadline = Instant::now() + SETTLE;
    let mut agreeing = 0;
    let mut last = String::new();
    while agreeing < AGREE {
        assert!(
            Instant::now() < deadline,
            "auth of {cred:?} did not settle to ok={ok} within {SETTLE:?}; last answer {last:?}"
        );
        let mut c = s.connect();
        last = ascii_auth(&mut c, &cred.user, &cred.pass);
        let got = last == "STORED\r\n";
        if !got {
            assert_eq!(last, "CLIENT_ERROR authentication failure\r\n");
        }
        if got == ok {
            agreeing += 1;
        } else {
            agreeing = 0;
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

// ---------------------------------------------------------------------------
// ASCII side
// ---------------------------------------------------------------------------

/// The MemCachier form: `set <username> 0 0 <len>\r\n<password>\r\n`.
fn ascii_auth(c: &mut Client, user: &str, pass: &str) -> String {
    c.call(&format!("set {user} 0 0 {}\r\n{pass}\r\n", pass.len()))
}

/// A text connection authenticated as `cred`.
fn ascii_conn(s: &Server, cred: &Cred) -> Client {
    let mut c = s.connect();
    assert_eq!(ascii_auth(&mut c, &cred.user, &cred.pass), "STORED\r\n");
    c
}

fn ascii_set(c: &mut Client, key: &str, flags: u32, val: &[u8]) -> String {
    let mut req = format!("set {key} {flags} 0 {}\r\n", val.len()).into_bytes();
    req.extend_from_slice(val);
    req.extend_from_slice(b"\r\n");
    c.send(&req);
    c.line()
}

fn ascii_store(c: &mut Client, cmd: &str, key: &str, val: &[u8]) -> String {
    let mut req = format!("{cmd} {key} 0 0 {}\r\n", val.len()).into_bytes();
    req.extend_from_slice(val);
    req.extend_from_slice(b"\r\n");
    c.send(&req);
    c.line()
}

/// `get k1 k2 ...` as a map of the hits.
fn ascii_mget(c: &mut Client, keys: &[String]) -> HashMap<String, (u32, Vec<u8>)> {
    c.send(format!("get {}\r\n", keys.join(" ")).as_bytes());
    let mut hits = HashMap::new();
    loop {
        let l = c.line();
        if l == "END\r\n" {
            return hits;
        }
        let parts: Vec<&str> = l.trim_end().split(' ').collect();
        assert!(
            parts.len() == 4 && parts[0] == "VALUE",
            "unexpected line {l:?}"
        );
        let len: usize = parts[3].parse().unwrap();
        let data = c.bytes(len + 2);
        assert_eq!(&data[len..], b"\r\n");
        let prev = hits.insert(
            parts[1].to_string(),
            (parts[2].parse().unwrap(), data[..len].to_vec()),
        );
        assert!(prev.is_none(), "key {} returned twice", parts[1]);
    }
}

// ---------------------------------------------------------------------------
// Binary side
// ---------------------------------------------------------------------------

mod op {
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const DELETE: u8 = 0x04;
    pub const INCREMENT: u8 = 0x05;
    pub const FLUSH: u8 = 0x08;
    pub const NOOP: u8 = 0x0a;
    pub const VERSION: u8 = 0x0b;
    pub const APPEND: u8 = 0x0e;
    pub const PREPEND: u8 = 0x0f;
    pub const STAT: u8 = 0x10;
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const SASL_LIST_MECHS: u8 = 0x20;
    pub const SASL_AUTH: u8 = 0x21;
}

mod status {
    pub const OK: u16 = 0x00;
    pub const KEY_NOT_FOUND: u16 = 0x01;
    pub const TOO_LARGE: u16 = 0x03;
    pub const NOT_STORED: u16 = 0x05;
    pub const DELTA_BADVAL: u16 = 0x06;
    pub const AUTH_ERROR: u16 = 0x20;
}

/// A binary request: (opcode, key, extras, value).
type BinCase<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

#[derive(Debug)]
struct Resp {
    opcode: u8,
    status: u16,
    opaque: u32,
    extras: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
}

/// A blocking binary-protocol client.
struct Bin {
    s: TcpStream,
    opaque: u32,
}

impl Bin {
    fn connect(addr: SocketAddr) -> Bin {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_nodelay(true).unwrap();
        Bin { s, opaque: 0 }
    }

    /// Sends one request frame; returns its opaque.
    fn send(&mut self, opcode: u8, key: &[u8], extras: &[u8], value: &[u8]) -> u32 {
        self.opaque = self.opaque.wrapping_add(1);
        let mut f = vec![0x80, opcode];
        f.extend_from_slice(&(key.len() as u16).to_be_bytes());
        f.push(extras.len() as u8);
        f.extend_from_slice(&[0, 0, 0]);
        f.extend_from_slice(&((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
        f.extend_from_slice(&self.opaque.to_be_bytes());
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(extras);
        f.extend_from_slice(key);
        f.extend_from_slice(value);
        self.s.write_all(&f).expect("write");
        self.opaque
    }

    fn recv(&mut self) -> std::io::Result<Resp> {
        let mut h = [0u8; 24];
        self.s.read_exact(&mut h)?;
        assert_eq!(h[0], 0x81, "response magic in {h:?}");
        let keylen = u16::from_be_bytes([h[2], h[3]]) as usize;
        let extlen = h[4] as usize;
        let body = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
        let mut b = vec![0; body];
        self.s.read_exact(&mut b)?;
        Ok(Resp {
            opcode: h[1],
            status: u16::from_be_bytes([h[6], h[7]]),
            opaque: u32::from_be_bytes([h[12], h[13], h[14], h[15]]),
            extras: b[..extlen].to_vec(),
            key: b[extlen..extlen + keylen].to_vec(),
            value: b[extlen + keylen..].to_vec(),
        })
    }

    /// One request, one response (checked to answer it).
    fn call(&mut self, opcode: u8, key: &[u8], extras: &[u8], value: &[u8]) -> Resp {
        let opaque = self.send(opcode, key, extras, value);
        let r = self.recv().expect("binary response");
        assert_eq!(
            (r.opcode, r.opaque),
            (opcode, opaque),
            "response does not answer the request: {r:?}"
        );
        r
    }

    fn list_mechs(&mut self) -> Resp {
        self.call(op::SASL_LIST_MECHS, b"", b"", b"")
    }

    fn auth(&mut self, user: &str, pass: &str) -> Resp {
        self.auth_mech(b"PLAIN", user, pass)
    }

    fn auth_mech(&mut self, mech: &[u8], user: &str, pass: &str) -> Resp {
        let msg = format!("\0{user}\0{pass}");
        self.call(op::SASL_AUTH, mech, b"", msg.as_bytes())
    }

    fn get(&mut self, key: &str) -> Option<(u32, Vec<u8>)> {
        let r = self.call(op::GET, key.as_bytes(), b"", b"");
        match r.status {
            status::OK => {
                assert_eq!(r.extras.len(), 4, "{r:?}");
                let flags = u32::from_be_bytes(r.extras[..4].try_into().unwrap());
                Some((flags, r.value))
            }
            status::KEY_NOT_FOUND => None,
            _ => panic!("binary get {key}: {r:?}"),
        }
    }

    fn set(&mut self, key: &str, flags: u32, val: &[u8]) -> Resp {
        let mut extras = flags.to_be_bytes().to_vec();
        extras.extend_from_slice(&0u32.to_be_bytes());
        self.call(op::SET, key.as_bytes(), &extras, val)
    }

    /// Increment without auto-create (expiration 0xffffffff), like ASCII incr.
    fn incr(&mut self, key: &str, delta: u64) -> Resp {
        let mut extras = delta.to_be_bytes().to_vec();
        extras.extend_from_slice(&0u64.to_be_bytes());
        extras.extend_from_slice(&u32::MAX.to_be_bytes());
        self.call(op::INCREMENT, key.as_bytes(), &extras, b"")
    }

    /// `stat` with no key: the cache's counters.
    fn stats(&mut self) -> HashMap<String, String> {
        let opaque = self.send(op::STAT, b"", b"", b"");
        let mut m = HashMap::new();
        loop {
            let r = self.recv().expect("stat response");
            assert_eq!((r.opcode, r.opaque, r.status), (op::STAT, opaque, 0));
            if r.key.is_empty() {
                return m;
            }
            m.insert(
                String::from_utf8(r.key).unwrap(),
                String::from_utf8(r.value).unwrap(),
            );
        }
    }

    /// Ok(elapsed) once the server closes the connection within `within`.
    fn eof_within(&mut self, within: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        let deadline = start + within;
        let result = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Err("still open".to_string());
            }
            self.s.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 256];
            match self.s.read(&mut buf) {
                Ok(0) => break Ok(start.elapsed()),
                Ok(n) => break Err(format!("unexpected data {:?}", &buf[..n])),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => break Ok(start.elapsed()),
            }
        };
        let _ = self.s.set_read_timeout(Some(Duration::from_secs(20)));
        result
    }
}

/// A binary connection authenticated as `cred`.
fn bin_conn(s: &Server, cred: &Cred) -> Bin {
    let mut b = Bin::connect(s.addr);
    let r = b.auth(&cred.user, &cred.pass);
    assert_eq!((r.status, r.value.as_slice()), (0, &b"Authenticated"[..]));
    b
}

// ---------------------------------------------------------------------------
// Deterministic PRNG (xorshift64*)
// ---------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn letters(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| b'a' + (self.next() % 26) as u8).collect()
    }
}

fn stat_u64(m: &HashMap<String, String>, name: &str) -> u64 {
    m.get(name)
        .unwrap_or_else(|| panic!("no stat {name} in {m:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("stat {name} is not a number: {:?}", m[name]))
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn mt(cores: usize, dir: &Path) -> Server {
    Server::start_mt(cores, dir, &[])
}

// ---------------------------------------------------------------------------
// 1. Authentication on the wire
// ---------------------------------------------------------------------------

fn ascii_auth_wire(cores: usize) {
    let dir = tempdir();
    let s = mt(cores, dir.path());
    let a = create_cache(&s, "wire-a", "25MB");

    // Anything before authentication: CLIENT_ERROR unauthenticated, and the
    // connection stays open.
    let mut c = s.connect();
    for req in [
        "get foo\r\n",
        "version\r\n",
        "stats\r\n",
        "delete foo\r\n",
        "incr foo 1\r\n",
        "flush_all\r\n",
        "bogus command\r\n",
        "add foo 0 0 3\r\nbar\r\n",
    ] {
        assert_eq!(
            c.call(req),
            "CLIENT_ERROR unauthenticated\r\n",
            "reply to {req:?} before auth"
        );
    }
    // A wrong password: refused, still open, still unauthenticated.
    let wrong = "0".repeat(a.pass.len());
    assert_eq!(
        ascii_auth(&mut c, &a.user, &wrong),
        "CLIENT_ERROR authentication failure\r\n"
    );
    assert_eq!(c.call("get foo\r\n"), "CLIENT_ERROR unauthenticated\r\n");
    // The right one on the same connection.
    assert_eq!(ascii_auth(&mut c, &a.user, &a.pass), "STORED\r\n");
    assert_eq!(c.set("foo", b"bar"), "STORED\r\n");
    assert_eq!(c.get("foo"), Some((0, b"bar".to_vec())));
    // The authenticating set stored nothing under the username.
    assert_eq!(c.get(&a.user), None);
    // Once authenticated, a set with the username as key is a plain set.
    assert_eq!(c.set(&a.user, b"x"), "STORED\r\n");
    assert_eq!(c.get(&a.user), Some((0, b"x".to_vec())));
    assert_eq!(c.call("delete foo2\r\n"), "NOT_FOUND\r\n");

    // memcached -Y form: any key, value "<user> <pass>".
    let token = format!("{} {}", a.user, a.pass);
    let mut y = s.connect();
    assert_eq!(
        y.call(&format!("set anykey 0 0 {}\r\n{token}\r\n", token.len())),
        "STORED\r\n"
    );
    assert_eq!(y.get("foo"), Some((0, b"bar".to_vec())), "same cache");
    assert_eq!(y.get("anykey"), None, "the auth set stored nothing");
    // -Y form with a wrong password / unknown user.
    for bad in [
        format!("{} {wrong}", a.user),
        format!("NOSUCHUSER {}", a.pass),
    ] {
        let mut c = s.connect();
        assert_eq!(
            c.call(&format!("set anykey 0 0 {}\r\n{bad}\r\n", bad.len())),
            "CLIENT_ERROR authentication failure\r\n",
            "-Y token {bad:?}"
        );
        assert_eq!(c.call("get foo\r\n"), "CLIENT_ERROR unauthenticated\r\n");
    }

    // A disabled cache's credential does not authenticate.
    let b = create_cache(&s, "wire-b", "25MB");
    let out = cache_set(&s, b.cache, &["--disable"]);
    assert!(out.contains("disabled"), "{out:?}");
    settle_auth(&s, &b, false);
    let mut c = s.connect();
    assert_eq!(
        ascii_auth(&mut c, &b.user, &b.pass),
        "CLIENT_ERROR authentication failure\r\n"
    );
    let token = format!("{} {}", b.user, b.pass);
    assert_eq!(
        c.call(&format!("set anykey 0 0 {}\r\n{token}\r\n", token.len())),
        "CLIENT_ERROR authentication failure\r\n"
    );
    let mut bin = Bin::connect(s.addr);
    let r = bin.auth(&b.user, &b.pass);
    assert_eq!(
        (r.status, r.value.as_slice()),
        (0x20, &b"Auth failure."[..])
    );
    // The other cache is unaffected.
    let mut c = ascii_conn(&s, &a);
    assert_eq!(c.get("foo"), Some((0, b"bar".to_vec())));
}

fn binary_auth_wire(cores: usize) {
    let dir = tempdir();
    let s = mt(cores, dir.path());
    let a = create_cache(&s, "bin-a", "25MB");

    let mut b = Bin::connect(s.addr);
    let r = b.list_mechs();
    assert_eq!((r.status, r.value.as_slice()), (0, &b"PLAIN"[..]));
    // VERSION is answered before authentication (as memcached does).
    let r = b.call(op::VERSION, b"", b"", b"");
    assert_eq!(r.status, 0, "{r:?}");
    // A wrong password: status 0x20 "Auth failure.", connection stays open.
    let wrong = "0".repeat(a.pass.len());
    let r = b.auth(&a.user, &wrong);
    assert_eq!(
        (r.status, r.value.as_slice()),
        (0x20, &b"Auth failure."[..])
    );
    // An unknown mechanism fails the same way.
    let r = b.auth_mech(b"CRAM-MD5", &a.user, &a.pass);
    assert_eq!(
        (r.status, r.value.as_slice()),
        (0x20, &b"Auth failure."[..])
    );
    let r = b.list_mechs();
    assert_eq!((r.status, r.value.as_slice()), (0, &b"PLAIN"[..]));
    let r = b.auth(&a.user, &a.pass);
    assert_eq!((r.status, r.value.as_slice()), (0, &b"Authenticated"[..]));
    assert_eq!(b.set("bk", 7, b"bv").status, 0);
    assert_eq!(b.get("bk"), Some((7, b"bv".to_vec())));
    // The text protocol with the same credential sees the same cache.
    let mut c = ascii_conn(&s, &a);
    assert_eq!(c.get("bk"), Some((7, b"bv".to_vec())));
    assert_eq!(c.set("tk", b"tv"), "STORED\r\n");
    assert_eq!(b.get("tk"), Some((0, b"tv".to_vec())));

    // Any other command before authentication: 0x20 and the server closes.
    for opcode in [op::GET, op::SET, op::NOOP, op::FLUSH, op::STAT] {
        let mut b = Bin::connect(s.addr);
        let extras: &[u8] = if opcode == op::SET { &[0; 8] } else { &[] };
        let key: &[u8] = if matches!(opcode, op::GET | op::SET) {
            b"bk"
        } else {
            b""
        };
        let value: &[u8] = if opcode == op::SET { b"evil" } else { b"" };
        let r = b.call(opcode, key, extras, value);
        assert_eq!(
            (r.status, r.value.as_slice()),
            (0x20, &b"Auth failure."[..]),
            "opcode {opcode:#04x} before auth"
        );
        b.eof_within(CLOSE_WITHIN)
            .unwrap_or_else(|e| panic!("opcode {opcode:#04x} before auth: connection {e}"));
    }
    // The refused SET wrote nothing.
    assert_eq!(c.get("bk"), Some((7, b"bv".to_vec())));

    // A disabled cache: SASL AUTH fails (connection stays open).
    cache_set(&s, a.cache, &["--disable"]);
    settle_auth(&s, &a, false);
    let mut b = Bin::connect(s.addr);
    let r = b.auth(&a.user, &a.pass);
    assert_eq!(
        (r.status, r.value.as_slice()),
        (0x20, &b"Auth failure."[..])
    );
    let r = b.list_mechs();
    assert_eq!((r.status, r.value.as_slice()), (0, &b"PLAIN"[..]));
}

/// `--auth-timeout 1`: unauthenticated connections are closed within 4 s;
/// authenticated ones are not.
fn auth_timeout(cores: usize) {
    let dir = tempdir();
    let s = Server::start_mt(cores, dir.path(), &["--auth-timeout", "1"]);
    let a = create_cache(&s, "timeout", "25MB");
    let limit = Duration::from_secs(4);

    let silent = s.connect();
    let started = Instant::now();
    let mut chatty = s.connect();
    assert_eq!(
        chatty.call("get foo\r\n"),
        "CLIENT_ERROR unauthenticated\r\n"
    );
    let mut partial = s.connect();
    partial.send(format!("set {} 0 0 {}\r\n", a.user, a.pass.len()).as_bytes());
    let mut bin_silent = Bin::connect(s.addr);
    let mut bin_chatty = Bin::connect(s.addr);
    assert_eq!(bin_chatty.list_mechs().status, 0);
    let mut authed = ascii_conn(&s, &a);
    let mut bin_authed = bin_conn(&s, &a);

    for (name, mut c) in [("silent", silent), ("chatty", chatty), ("partial", partial)] {
        let left = limit.saturating_sub(started.elapsed());
        c.eof_within(left).unwrap_or_else(|e| {
            panic!("{name} unauthenticated text connection not closed within {limit:?}: {e}")
        });
    }
    for (name, b) in [("silent", &mut bin_silent), ("chatty", &mut bin_chatty)] {
        let left = limit.saturating_sub(started.elapsed());
        b.eof_within(left).unwrap_or_else(|e| {
            panic!("{name} unauthenticated binary connection not closed within {limit:?}: {e}")
        });
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700),
        "closed after {took:?}, before the 1 s timeout"
    );
    // Past the timeout, authenticated connections still work.
    while started.elapsed() < Duration::from_millis(2500) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(authed.set("k", b"v"), "STORED\r\n");
    assert_eq!(authed.get("k"), Some((0, b"v".to_vec())));
    assert_eq!(bin_authed.get("k"), Some((0, b"v".to_vec())));
}

// ---------------------------------------------------------------------------
// 2. Revocation
// ---------------------------------------------------------------------------

fn revocation(cores: usize) {
    let dir = tempdir();
    let s = mt(cores, dir.path());
    let a = create_cache(&s, "revoke", "25MB");
    let x = add_credential(&s, a.cache, &[]);

    // Several live connections of each, so that both cores hold some.
    let mut x_text: Vec<Client> = (0..3).map(|_| ascii_conn(&s, &x)).collect();
    let mut x_bin: Vec<Bin> = (0..2).map(|_| bin_conn(&s, &x)).collect();
    let mut a_text: Vec<Client> = (0..3).map(|_| ascii_conn(&s, &a)).collect();
    let mut a_bin: Vec<Bin> = (0..2).map(|_| bin_conn(&s, &a)).collect();
    assert_eq!(x_text[0].set("shared", b"1"), "STORED\r\n");
    assert_eq!(a_text[0].get("shared"), Some((0, b"1".to_vec())));

    // Removing X closes X's connections, and only those.
    let out = s
        .ctl(&[
            "credential",
            "remove",
            "--cache",
            &a.cache.to_string(),
            &x.user,
        ])
        .unwrap();
    assert_eq!(
        out,
        format!("Removed credential {} from cache {}.\n", x.user, a.cache)
    );
    let removed = Instant::now();
    for (i, c) in x_text.iter_mut().enumerate() {
        let left = CLOSE_WITHIN.saturating_sub(removed.elapsed());
        c.eof_within(left).unwrap_or_else(|e| {
            panic!("text connection {i} of the removed credential not closed within {CLOSE_WITHIN:?}: {e}")
        });
    }
    for (i, b) in x_bin.iter_mut().enumerate() {
        let left = CLOSE_WITHIN.saturating_sub(removed.elapsed());
        b.eof_within(left).unwrap_or_else(|e| {
            panic!("binary connection {i} of the removed credential not closed within {CLOSE_WITHIN:?}: {e}")
        });
    }
    settle_auth(&s, &x, false);
    let mut b = Bin::connect(s.addr);
    assert_eq!(b.auth(&x.user, &x.pass).status, 0x20);
    for c in a_text.iter_mut() {
        assert_eq!(c.get("shared"), Some((0, b"1".to_vec())));
    }
    for b in a_bin.iter_mut() {
        assert_eq!(b.get("shared"), Some((0, b"1".to_vec())));
    }

    // Disabling the cache closes the primary's connections.
    cache_set(&s, a.cache, &["--disable"]);
    let disabled = Instant::now();
    for (i, c) in a_text.iter_mut().enumerate() {
        let left = CLOSE_WITHIN.saturating_sub(disabled.elapsed());
        c.eof_within(left).unwrap_or_else(|e| {
            panic!(
                "text connection {i} of the disabled cache not closed within {CLOSE_WITHIN:?}: {e}"
            )
        });
    }
    for (i, b) in a_bin.iter_mut().enumerate() {
        let left = CLOSE_WITHIN.saturating_sub(disabled.elapsed());
        b.eof_within(left).unwrap_or_else(|e| {
            panic!("binary connection {i} of the disabled cache not closed within {CLOSE_WITHIN:?}: {e}")
        });
    }
    settle_auth(&s, &a, false);
    let mut b = Bin::connect(s.addr);
    assert_eq!(b.auth(&a.user, &a.pass).status, 0x20);

    // Enabling it lets the primary in again (the removed credential stays out).
    let out = cache_set(&s, a.cache, &["--enable"]);
    assert!(out.contains("enabled"), "{out:?}");
    settle_auth(&s, &a, true);
    let mut b = bin_conn(&s, &a);
    assert_eq!(b.set("after", 0, b"enable").status, 0);
    let mut c = ascii_conn(&s, &a);
    assert_eq!(c.get("after"), Some((0, b"enable".to_vec())));
    let mut c = s.connect();
    assert_eq!(
        ascii_auth(&mut c, &x.user, &x.pass),
        "CLIENT_ERROR authentication failure\r\n"
    );
}

// ---------------------------------------------------------------------------
// 3. Capabilities
// ---------------------------------------------------------------------------

fn capabilities(cores: usize) {
    let dir = tempdir();
    let s = mt(cores, dir.path());
    let a = create_cache(&s, "caps", "25MB");
    let ro = add_credential(&s, a.cache, &["--no-write", "--no-flush"]);
    let nf = add_credential(&s, a.cache, &["--no-flush"]);
    let full = add_credential(&s, a.cache, &[]);

    let mut p = ascii_conn(&s, &a);
    let keys: Vec<String> = (0..20).map(|i| format!("key{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            ascii_set(&mut p, k, i as u32, format!("v{i}").as_bytes()),
            "STORED\r\n"
        );
    }
    assert_eq!(p.set("n", b"10"), "STORED\r\n");
    let mut expect: HashMap<String, (u32, Vec<u8>)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), (i as u32, format!("v{i}").into_bytes())))
        .collect();
    expect.insert("n".into(), (0, b"10".to_vec()));
    let all: Vec<String> = expect.keys().cloned().collect();

    // Read-only over text: every write is NOT_STORED, reads work.
    let mut r = ascii_conn(&s, &ro);
    assert_eq!(r.get("key1"), Some((1, b"v1".to_vec())));
    for req in [
        "set key1 0 0 1\r\nX\r\n".to_string(),
        "set newkey 0 0 1\r\nX\r\n".into(),
        "add newkey 0 0 1\r\nX\r\n".into(),
        "replace key1 0 0 1\r\nX\r\n".into(),
        "append key1 0 0 1\r\nX\r\n".into(),
        "prepend key1 0 0 1\r\nX\r\n".into(),
        "cas key1 0 0 1 1\r\nX\r\n".into(),
        "incr n 5\r\n".into(),
        "decr n 5\r\n".into(),
        "delete key2\r\n".into(),
        "touch key3 100\r\n".into(),
    ] {
        assert_eq!(r.call(&req), "NOT_STORED\r\n", "read-only {req:?}");
    }
    // noreply writes are refused silently.
    r.send(b"set key4 0 0 1 noreply\r\nX\r\ndelete key5 noreply\r\n");
    assert_eq!(
        r.call("flush_all\r\n"),
        "CLIENT_ERROR flush_all not allowed\r\n"
    );
    assert_eq!(
        r.call("flush_all 0\r\n"),
        "CLIENT_ERROR flush_all not allowed\r\n"
    );
    assert_eq!(
        ascii_mget(&mut r, &all),
        expect,
        "read-only text changed data"
    );

    // Read-only over binary: 0x05 for writes, connection stays open.
    let mut rb = bin_conn(&s, &ro);
    let set_extras = [0u8; 8];
    let mut incr_extras = 5u64.to_be_bytes().to_vec();
    incr_extras.extend_from_slice(&0u64.to_be_bytes());
    incr_extras.extend_from_slice(&0u32.to_be_bytes());
    let cases: [BinCase; 9] = [
        (op::SET, b"key1", &set_extras, b"X"),
        (op::SET, b"newkey", &set_extras, b"X"),
        (0x02, b"newkey", &set_extras, b"X"), // ADD
        (0x03, b"key1", &set_extras, b"X"),   // REPLACE
        (op::APPEND, b"key1", b"", b"X"),
        (op::PREPEND, b"key1", b"", b"X"),
        (op::DELETE, b"key2", b"", b""),
        (op::INCREMENT, b"n", &incr_extras, b""),
        (op::TOUCH, b"key3", &100u32.to_be_bytes(), b""),
    ];
    for (opcode, key, extras, value) in cases {
        let resp = rb.call(opcode, key, extras, value);
        assert_eq!(
            resp.status,
            status::NOT_STORED,
            "read-only binary opcode {opcode:#04x}: {resp:?}"
        );
    }
    let resp = rb.call(0x06, b"n", &incr_extras, b""); // DECREMENT
    assert_eq!(resp.status, status::NOT_STORED, "read-only decr: {resp:?}");
    let resp = rb.call(op::GAT, b"key3", &100u32.to_be_bytes(), b"");
    assert_eq!(resp.status, status::NOT_STORED, "read-only GAT: {resp:?}");
    let resp = rb.call(op::FLUSH, b"", b"", b"");
    assert_eq!(
        (resp.status, resp.value.as_slice()),
        (status::AUTH_ERROR, &b"Auth failure."[..]),
        "no-flush binary flush"
    );
    assert_eq!(rb.get("key1"), Some((1, b"v1".to_vec())), "still open");
    assert_eq!(
        ascii_mget(&mut p, &all),
        expect,
        "read-only binary changed data"
    );

    // No-flush but write: writes work, flush_all is refused (both wires).
    let mut f = ascii_conn(&s, &nf);
    assert_eq!(ascii_set(&mut f, "nfkey", 3, b"nfv"), "STORED\r\n");
    expect.insert("nfkey".into(), (3, b"nfv".to_vec()));
    assert_eq!(
        f.call("flush_all\r\n"),
        "CLIENT_ERROR flush_all not allowed\r\n"
    );
    f.send(b"flush_all noreply\r\n");
    assert_eq!(f.call("incr n 1\r\n"), "11\r\n");
    expect.insert("n".into(), (0, b"11".to_vec()));
    let mut fb = bin_conn(&s, &nf);
    let resp = fb.call(op::FLUSH, b"", b"", b"");
    assert_eq!(
        (resp.status, resp.value.as_slice()),
        (status::AUTH_ERROR, &b"Auth failure."[..])
    );
    assert_eq!(fb.get("nfkey"), Some((3, b"nfv".to_vec())), "still open");
    let all: Vec<String> = expect.keys().cloned().collect();
    assert_eq!(
        ascii_mget(&mut p, &all),
        expect,
        "no-flush flush changed data"
    );

    // A full-caps credential shares the primary's keyspace, both ways.
    let mut g = ascii_conn(&s, &full);
    assert_eq!(ascii_mget(&mut g, &all), expect);
    assert_eq!(ascii_set(&mut g, "fromfull", 9, b"ff"), "STORED\r\n");
    assert_eq!(p.get("fromfull"), Some((9, b"ff".to_vec())));
    let mut gb = bin_conn(&s, &full);
    assert_eq!(gb.get("key7"), Some((7, b"v7".to_vec())));
    // Its flush empties the cache for every credential.
    assert_eq!(g.call("flush_all\r\n"), "OK\r\n");
    assert_eq!(ascii_mget(&mut p, &all), HashMap::new());
    assert_eq!(r.get("fromfull"), None);
}

/// `stats` shows only the connection's cache; flush_all and `stats reset`
/// act on it alone.
fn stats_and_flush_are_per_cache(cores: usize) {
    let dir = tempdir();
    let s = mt(cores, dir.path());
    let a = create_cache(&s, "stats-a", "25MB");
    let b = create_cache(&s, "stats-b", "30MB");
    let mut ca = ascii_conn(&s, &a);
    let mut cb = ascii_conn(&s, &b);
    for i in 0..3 {
        assert_eq!(ca.set(&format!("k{i}"), b"aaaa"), "STORED\r\n");
    }
    for i in 0..5 {
        assert_eq!(cb.set(&format!("k{i}"), b"bbbbbbbb"), "STORED\r\n");
    }
    assert_eq!(ca.get("k0"), Some((0, b"aaaa".to_vec())));
    assert_eq!(ca.get("k9"), None);
    for i in 0..5 {
        assert_eq!(cb.get(&format!("k{i}")), Some((0, b"bbbbbbbb".to_vec())));
    }
    let sa = ca.stats("");
    let sb = cb.stats("");
    assert_eq!(stat_u64(&sa, "curr_items"), 3);
    assert_eq!(stat_u64(&sb, "curr_items"), 5);
    assert_eq!(stat_u64(&sa, "get_hits"), 1);
    assert_eq!(stat_u64(&sa, "get_misses"), 1);
    assert_eq!(stat_u64(&sb, "get_hits"), 5);
    assert_eq!(stat_u64(&sa, "limit_maxbytes"), 25 << 20);
    assert_eq!(stat_u64(&sb, "limit_maxbytes"), 30 << 20);
    assert_eq!(stat_u64(&sa, "evictions"), 0);
    let (ba, bb) = (stat_u64(&sa, "bytes"), stat_u64(&sb, "bytes"));
    assert!(ba > 0 && bb > ba, "bytes a={ba} b={bb}");
    // Binary stats agree.
    let mut bina = bin_conn(&s, &a);
    let bs = bina.stats();
    assert_eq!(stat_u64(&bs, "curr_items"), 3);
    assert_eq!(stat_u64(&bs, "limit_maxbytes"), 25 << 20);

    // stats reset zeroes A's counters only.
    assert_eq!(ca.call("stats reset\r\n"), "RESET\r\n");
    assert_eq!(stat_u64(&ca.stats(""), "get_hits"), 0);
    assert_eq!(stat_u64(&cb.stats(""), "get_hits"), 5);

    // flush_all on A leaves B's items.
    assert_eq!(ca.call("flush_all\r\n"), "OK\r\n");
    for i in 0..3 {
        assert_eq!(ca.get(&format!("k{i}")), None);
    }
    for i in 0..5 {
        assert_eq!(cb.get(&format!("k{i}")), Some((0, b"bbbbbbbb".to_vec())));
    }
    let r = bina.call(op::FLUSH, b"", b"", b"");
    assert_eq!(r.status, 0);
    assert_eq!(stat_u64(&cb.stats(""), "curr_items"), 5);
}

// ---------------------------------------------------------------------------
// 4. Randomized isolation
// ---------------------------------------------------------------------------

/// A connection of either protocol, with the operations the model knows.
enum Conn {
    Text(Client),
    Binary(Bin),
}

#[derive(Debug, PartialEq, Eq)]
enum Arith {
    Value(u64),
    NotFound,
    NonNumeric,
}

impl Conn {
    fn get(&mut self, key: &str) -> Option<(u32, Vec<u8>)> {
        match self {
            Conn::Text(c) => c.get(key),
            Conn::Binary(b) => b.get(key),
        }
    }

    fn set(&mut self, key: &str, flags: u32, val: &[u8]) {
        match self {
            Conn::Text(c) => assert_eq!(ascii_set(c, key, flags, val), "STORED\r\n", "set {key}"),
            Conn::Binary(b) => {
                let r = b.set(key, flags, val);
                assert_eq!(r.status, 0, "binary set {key}: {r:?}");
            }
        }
    }

    /// True if deleted, false if not found.
    fn delete(&mut self, key: &str) -> bool {
        match self {
            Conn::Text(c) => match c.call(&format!("delete {key}\r\n")).as_str() {
                "DELETED\r\n" => true,
                "NOT_FOUND\r\n" => false,
                other => panic!("delete {key}: {other:?}"),
            },
            Conn::Binary(b) => match b.call(op::DELETE, key.as_bytes(), b"", b"") {
                r if r.status == 0 => true,
                r if r.status == status::KEY_NOT_FOUND => false,
                r => panic!("binary delete {key}: {r:?}"),
            },
        }
    }

    /// True if stored, false if the key was missing.
    fn append(&mut self, key: &str, val: &[u8]) -> bool {
        match self {
            Conn::Text(c) => match ascii_store(c, "append", key, val).as_str() {
                "STORED\r\n" => true,
                "NOT_STORED\r\n" => false,
                other => panic!("append {key}: {other:?}"),
            },
            Conn::Binary(b) => match b.call(op::APPEND, key.as_bytes(), b"", val) {
                r if r.status == 0 => true,
                r if r.status == status::NOT_STORED => false,
                r => panic!("binary append {key}: {r:?}"),
            },
        }
    }

    fn incr(&mut self, key: &str, delta: u64) -> Arith {
        match self {
            Conn::Text(c) => {
                let l = c.call(&format!("incr {key} {delta}\r\n"));
                match l.as_str() {
                    "NOT_FOUND\r\n" => Arith::NotFound,
                    "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n" => {
                        Arith::NonNumeric
                    }
                    _ => Arith::Value(
                        l.trim_end()
                            .parse()
                            .unwrap_or_else(|_| panic!("incr {key}: {l:?}")),
                    ),
                }
            }
            Conn::Binary(b) => {
                let r = b.incr(key, delta);
                match r.status {
                    0 => Arith::Value(u64::from_be_bytes(
                        r.value.as_slice().try_into().expect("8-byte incr value"),
                    )),
                    status::KEY_NOT_FOUND => Arith::NotFound,
                    status::DELTA_BADVAL => Arith::NonNumeric,
                    _ => panic!("binary incr {key}: {r:?}"),
                }
            }
        }
    }

    fn flush_all(&mut self) {
        match self {
            Conn::Text(c) => assert_eq!(c.call("flush_all\r\n"), "OK\r\n"),
            Conn::Binary(b) => assert_eq!(b.call(op::FLUSH, b"", b"", b"").status, 0),
        }
    }

    /// Every hit among `keys`.
    fn mget(&mut self, keys: &[String]) -> HashMap<String, (u32, Vec<u8>)> {
        match self {
            Conn::Text(c) => ascii_mget(c, keys),
            Conn::Binary(b) => keys
                .iter()
                .filter_map(|k| b.get(k).map(|v| (k.clone(), v)))
                .collect(),
        }
    }

    fn stats(&mut self) -> HashMap<String, String> {
        match self {
            Conn::Text(c) => c.stats(""),
            Conn::Binary(b) => b.stats(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Conn::Text(_) => "text",
            Conn::Binary(_) => "binary",
        }
    }
}

type Model = HashMap<String, (u32, Vec<u8>)>;

struct Tenant {
    cred: Cred,
    conns: Vec<Conn>,
    model: Model,
}

/// A model value's incr result: memcached's rule (all digits, fits u64).
fn model_incr(v: &[u8], delta: u64) -> Option<u64> {
    if v.is_empty() || v.len() > 20 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v)
        .ok()?
        .parse::<u64>()
        .ok()
        .map(|n| n.wrapping_add(delta))
}

/// Describes where a read disagrees with the model, naming any cache whose
/// model holds the value that came back.
fn explain(tenants: &[Tenant], t: usize, key: &str, got: &Option<(u32, Vec<u8>)>) -> String {
    let owners: Vec<u32> = tenants
        .iter()
        .filter(|o| got.is_some() && o.model.get(key) == got.as_ref())
        .map(|o| o.cred.cache)
        .collect();
    format!(
        "cache {} key {key}: got {:?}, model {:?}; caches whose model has that value: {owners:?}",
        tenants[t].cred.cache,
        got.as_ref().map(|(f, v)| (f, String::from_utf8_lossy(v))),
        tenants[t]
            .model
            .get(key)
            .map(|(f, v)| (f, String::from_utf8_lossy(v))),
    )
}

fn check_all(tenants: &mut [Tenant], keys: &[String], when: &str) {
    for t in 0..tenants.len() {
        for c in 0..tenants[t].conns.len() {
            let got = tenants[t].conns[c].mget(keys);
            if got != tenants[t].model {
                for k in keys {
                    let g = got.get(k).cloned();
                    assert_eq!(
                        g.as_ref(),
                        tenants[t].model.get(k),
                        "{when}, {} conn {c}: {}",
                        tenants[t].conns[c].kind(),
                        explain(tenants, t, k, &g)
                    );
                }
            }
        }
    }
}

fn randomized_isolation(cores: usize) {
    const OPS: usize = 4000;
    const KEYS: usize = 24;
    let dir = tempdir();
    let s = mt(cores, dir.path());
    let plans = ["25MB", "25MB", "40MB", "2MB"];
    let small = plans.len() - 1;
    let mut tenants: Vec<Tenant> = plans
        .iter()
        .enumerate()
        .map(|(i, plan)| {
            let cred = create_cache(&s, &format!("iso{i}"), plan);
            // Two text and two binary connections per cache, one of each on a
            // second credential of the same cache.
            let second = add_credential(&s, cred.cache, &[]);
            let conns = vec![
                Conn::Text(ascii_conn(&s, &cred)),
                Conn::Binary(bin_conn(&s, &cred)),
                Conn::Text(ascii_conn(&s, &second)),
                Conn::Binary(bin_conn(&s, &second)),
            ];
            Tenant {
                cred,
                conns,
                model: HashMap::new(),
            }
        })
        .collect();
    // The same key names in every cache.
    let keys: Vec<String> = (0..KEYS).map(|i| format!("key{i}")).collect();
    let mut rng = Rng::new(0x5eed_0000 + cores as u64);
    let started = Instant::now();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for step in 0..OPS {
        let t = rng.below(tenants.len());
        let c = rng.below(tenants[t].conns.len());
        let key = keys[rng.below(KEYS)].clone();
        let roll = rng.below(100);
        let tenant = &mut tenants[t];
        let kind = tenant.conns[c].kind();
        let ctx = |op: &str| format!("step {step} {op} via {kind} conn {c}");
        let name = match roll {
            0..=29 => {
                let got = tenant.conns[c].get(&key);
                if got.as_ref() != tenant.model.get(&key) {
                    panic!("{}: {}", ctx("get"), explain(&tenants, t, &key, &got));
                }
                "get"
            }
            30..=54 => {
                let flags = rng.next() as u32;
                let val = if rng.below(2) == 0 {
                    rng.range(0, u32::MAX as u64).to_string().into_bytes()
                } else {
                    let n = if rng.below(10) == 0 {
                        rng.range(1000, 6000)
                    } else {
                        rng.range(1, 200)
                    } as usize;
                    let mut v = format!("c{}:", tenant.cred.cache).into_bytes();
                    v.extend(rng.letters(n));
                    v
                };
                tenant.conns[c].set(&key, flags, &val);
                tenant.model.insert(key, (flags, val));
                "set"
            }
            55..=64 => {
                let deleted = tenant.conns[c].delete(&key);
                let had = tenant.model.remove(&key).is_some();
                assert_eq!(
                    deleted,
                    had,
                    "{} {key} (cache {})",
                    ctx("delete"),
                    tenant.cred.cache
                );
                "delete"
            }
            65..=74 => {
                let n = rng.range(1, 40) as usize;
                let data = rng.letters(n);
                let stored = tenant.conns[c].append(&key, &data);
                let had = match tenant.model.get_mut(&key) {
                    Some((_, v)) => {
                        v.extend_from_slice(&data);
                        true
                    }
                    None => false,
                };
                assert_eq!(
                    stored,
                    had,
                    "{} {key} (cache {})",
                    ctx("append"),
                    tenant.cred.cache
                );
                "append"
            }
            75..=88 => {
                let delta = rng.range(0, 1000);
                let got = tenant.conns[c].incr(&key, delta);
                let want = match tenant.model.get_mut(&key) {
                    None => Arith::NotFound,
                    Some((_, v)) => match model_incr(v, delta) {
                        Some(n) => {
                            *v = n.to_string().into_bytes();
                            Arith::Value(n)
                        }
                        None => Arith::NonNumeric,
                    },
                };
                assert_eq!(
                    got,
                    want,
                    "{} {key} (cache {})",
                    ctx("incr"),
                    tenant.cred.cache
                );
                "incr"
            }
            89..=97 => {
                let got = tenant.conns[c].mget(&keys);
                if got != tenant.model {
                    for k in &keys {
                        let g = got.get(k).cloned();
                        if g.as_ref() != tenants[t].model.get(k) {
                            panic!("{}: {}", ctx("multi-get"), explain(&tenants, t, k, &g));
                        }
                    }
                }
                "mget"
            }
            _ => {
                tenant.conns[c].flush_all();
                tenant.model.clear();
                "flush_all"
            }
        };
        *counts.entry(name).or_default() += 1;
    }
    check_all(&mut tenants, &keys, "after the random phase");
    eprintln!(
        "randomized isolation ({cores} cores): {OPS} ops in {:?}: {counts:?}",
        started.elapsed()
    );

    // Memory pressure: 20 MB into the 2 MB cache, over the shared key names
    // and more.
    let pressure = Instant::now();
    let mut written = 0usize;
    let mut i = 0usize;
    while written < 20 << 20 {
        let key = if i.is_multiple_of(10) {
            keys[rng.below(KEYS)].clone()
        } else {
            format!("p{i}")
        };
        let mut val = format!("c{}:", tenants[small].cred.cache).into_bytes();
        let n = rng.range(2000, 16000) as usize;
        val.extend(rng.letters(n));
        let c = rng.below(tenants[small].conns.len());
        tenants[small].conns[c].set(&key, 0, &val);
        written += key.len() + val.len();
        if key.starts_with("key") {
            tenants[small].model.insert(key, (0, val));
        }
        i += 1;
        assert!(
            pressure.elapsed() < Duration::from_secs(60),
            "pressure phase too slow"
        );
    }
    // The other caches lost nothing; the small one returns its own values or
    // nothing.
    let (before, after) = tenants.split_at_mut(small);
    check_all(before, &keys, "after 20 MB into the 2 MB cache");
    let smallest = &mut after[0];
    for c in 0..smallest.conns.len() {
        let got = smallest.conns[c].mget(&keys);
        for (k, v) in &got {
            assert_eq!(
                Some(v),
                smallest.model.get(k),
                "small cache {} key {k} after pressure",
                smallest.cred.cache
            );
        }
    }
    for (i, t) in tenants.iter_mut().enumerate() {
        let st = t.conns[0].stats();
        let (ev, bytes, max) = (
            stat_u64(&st, "evictions"),
            stat_u64(&st, "bytes"),
            stat_u64(&st, "limit_maxbytes"),
        );
        if i == small {
            assert!(ev > 0, "the 2 MB cache took 20 MB without evicting: {st:?}");
            assert_eq!(max, 2 << 20);
            assert!(bytes <= max, "small cache bytes {bytes} > plan {max}");
        } else {
            assert_eq!(ev, 0, "cache {} evicted: {st:?}", t.cred.cache);
        }
    }
    eprintln!(
        "pressure ({cores} cores): {} sets, {written} bytes into the 2 MB cache in {:?}",
        i,
        pressure.elapsed()
    );
}

// ---------------------------------------------------------------------------
// 5. How full a cache gets before it evicts
// ---------------------------------------------------------------------------

#[test]
fn fill_97_percent_before_first_eviction() {
    const PLAN: u64 = 25 << 20;
    let dir = tempdir();
    let s = mt(2, dir.path());
    let a = create_cache(&s, "fill", "25MB");
    let mut c = ascii_conn(&s, &a);
    let mut rng = Rng::new(0xf111);
    let first = c.stats("");
    assert_eq!(stat_u64(&first, "limit_maxbytes"), PLAN);
    assert_eq!(stat_u64(&first, "evictions"), 0);

    let started = Instant::now();
    let mut prev = first;
    let mut since_stats = 0;
    let mut writes = 0usize;
    let mut written = 0usize;
    let mut dense = false;
    let (before, after) = loop {
        assert!(
            writes < 20_000,
            "no eviction after {writes} writes ({written} bytes)"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "fill too slow: {writes} writes"
        );
        let len = rng.range(100, 20 * 1024) as usize;
        let mut val = format!("{writes}:").into_bytes();
        val.resize(len, b'a' + (writes % 26) as u8);
        let key = format!("fill:{writes}");
        assert_eq!(
            ascii_set(&mut c, &key, 0, &val),
            "STORED\r\n",
            "write {writes}"
        );
        writes += 1;
        written += len;
        since_stats += 1;
        if dense || since_stats >= 20 {
            since_stats = 0;
            let now = c.stats("");
            if stat_u64(&now, "evictions") > 0 {
                break (prev, now);
            }
            dense = stat_u64(&now, "bytes") * 10 >= PLAN * 9;
            prev = now;
        }
    };
    let bytes = stat_u64(&before, "bytes");
    let max = stat_u64(&before, "limit_maxbytes");
    let pct = bytes as f64 * 100.0 / max as f64;
    let per_core: Vec<(u64, u64)> = (0..2)
        .map(|i| {
            (
                stat_u64(&after, &format!("core:{i}:curr_items")),
                stat_u64(&after, &format!("core:{i}:bytes")),
            )
        })
        .collect();
    eprintln!(
        "fill: bytes before the first eviction {bytes} of limit_maxbytes {max} = {pct:.2}% \
         ({writes} writes of 100 B - 20 KiB, {written} value bytes, {} items then; \
         dense stats polling: {dense}; per core (items, bytes) after: {per_core:?}; \
         mem_used {} ; took {:?})",
        stat_u64(&before, "curr_items"),
        after.get("mem_used").map_or("-", String::as_str),
        started.elapsed()
    );
    assert!(
        dense,
        "the first eviction came before bytes reached 90% of the plan (last stats: {bytes} bytes = {pct:.2}%)"
    );
    // Keys of one cache hash to both cores.
    assert!(
        per_core.iter().all(|(items, _)| *items > 0),
        "all items on one core: {per_core:?}"
    );
    assert!(
        bytes * 100 >= max * 97,
        "bytes before the first eviction {bytes} < 97% of limit_maxbytes {max} ({pct:.2}%)"
    );
}

// ---------------------------------------------------------------------------
// 6. Item size limit
// ---------------------------------------------------------------------------

fn too_large(cores: usize) {
    const MB: usize = 1 << 20;
    let dir = tempdir();
    let s = mt(cores, dir.path());
    let a = create_cache(&s, "big", "25MB");
    let mut c = ascii_conn(&s, &a);

    // key + value = 1 MB + 1: refused, the connection goes on.
    let key = "big";
    let val = vec![b'x'; MB + 1 - key.len()];
    assert_eq!(
        ascii_set(&mut c, key, 0, &val),
        "SERVER_ERROR object too large for cache\r\n"
    );
    assert_eq!(c.get(key), None);
    assert_eq!(c.set("after", b"ok"), "STORED\r\n");
    // Well under the limit is fine.
    let fits = vec![b'y'; MB - 4096];
    assert_eq!(ascii_set(&mut c, "fits", 0, &fits), "STORED\r\n");
    assert_eq!(c.get("fits"), Some((0, fits.clone())));

    // append / prepend past the limit: refused the same way, old value kept.
    // Every mismatch is collected so one run shows them all.
    let mut wrong = Vec::new();
    let old = vec![b'o'; 600 * 1024];
    assert_eq!(ascii_set(&mut c, "grow", 5, &old), "STORED\r\n");
    let more = vec![b'm'; 500 * 1024];
    for cmd in ["append", "prepend"] {
        let got = ascii_store(&mut c, cmd, "grow", &more);
        if got != "SERVER_ERROR object too large for cache\r\n" {
            wrong.push(format!(
                "text {cmd} of 500 KiB to a 600 KiB item answered {got:?}, \
                 expected \"SERVER_ERROR object too large for cache\\r\\n\""
            ));
        }
        assert_eq!(
            c.get("grow"),
            Some((5, old.clone())),
            "old value not kept after {cmd}"
        );
    }

    // The binary protocol: 0x03 (E2BIG), old value kept.
    let mut b = bin_conn(&s, &a);
    let r = b.set("bbig", 0, &vec![b'z'; MB + 1 - 4]);
    if r.status != status::TOO_LARGE {
        wrong.push(format!(
            "binary set of key+value = 1 MiB + 1 answered status {:#04x}, expected 0x03",
            r.status
        ));
    }
    assert_eq!(b.get("bbig"), None);
    for opcode in [op::APPEND, op::PREPEND] {
        let r = b.call(opcode, b"grow", b"", &more);
        if r.status != status::TOO_LARGE {
            wrong.push(format!(
                "binary opcode {opcode:#04x} of 500 KiB to a 600 KiB item answered status \
                 {:#04x} {:?}, expected 0x03",
                r.status,
                String::from_utf8_lossy(&r.value)
            ));
        }
        assert_eq!(b.get("grow"), Some((5, old.clone())), "old value not kept");
    }
    assert_eq!(c.get("after"), Some((0, b"ok".to_vec())));
    assert!(
        wrong.is_empty(),
        "growing past the item size limit:\n{}",
        wrong.join("\n")
    );
}

at_1_and_2_cores! {
    ascii_auth_wire_behaviour => ascii_auth_wire;
    binary_auth_wire_behaviour => binary_auth_wire;
    unauthenticated_connections_time_out => auth_timeout;
    revocation_closes_live_connections => revocation;
    credential_capabilities => capabilities;
    stats_and_flush_are_scoped_to_the_cache => stats_and_flush_are_per_cache;
    randomized_isolation_between_caches => randomized_isolation;
    item_size_limit => too_large;
}
