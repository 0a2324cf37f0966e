//! Test harness: starts a real `shoal` process on a free port, polls for
//! readiness, and speaks the protocol over a real socket.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running server, killed on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// The admin endpoint (multi-tenant mode): from the `shoal admin
    /// listening on ADDR` line printed before the listening line.
    pub admin: Option<SocketAddr>,
    /// The data directory given to `start_mt`.
    pub data_dir: Option<PathBuf>,
    /// Every line the server printed on stderr so far.
    pub stderr: Arc<Mutex<Vec<String>>>,
}

/// `shoal -p PORT -l 127.0.0.1 -t CORES` plus `extra`, for `Server::launch`.
pub fn shoal_cmd(port: u16, cores: usize, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoal"));
    cmd.args([
        "-p",
        &port.to_string(),
        "-l",
        "127.0.0.1",
        "-t",
        &cores.to_string(),
    ])
    .args(extra);
    cmd
}

impl Server {
    /// Starts `shoal -p 0 -t <cores>` plus `extra` args and waits until it
    /// announces its port.
    pub fn start(cores: usize, extra: &[&str]) -> Server {
        Server::launch(shoal_cmd(0, cores, extra)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Spawns `cmd` (a shoal server command line) and waits up to 30 s for
    /// it to announce its address. Err: it exited or stayed silent first;
    /// the message holds what it printed.
    pub fn launch(mut cmd: Command) -> Result<Server, String> {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shoal");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<(String, Option<String>)>();
        let lines_log = log.clone();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines();
            let mut sent = false;
            let mut admin = None;
            for line in lines.by_ref().map_while(Result::ok) {
                lines_log.lock().unwrap().push(line.clone());
                if !sent {
                    if let Some(rest) = line.strip_prefix("shoal admin listening on ") {
                        admin = rest.split_whitespace().next().map(str::to_string);
                        continue;
                    }
                    if let Some(rest) = line.strip_prefix("shoal listening on ") {
                        let addr = rest.split_whitespace().next().unwrap().to_string();
                        let _ = tx.send((addr, admin.take()));
                        sent = true;
                        continue;
                    }
                }
                eprintln!("[shoal] {line}");
            }
        });
        let (addr, admin) = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let said = log.lock().unwrap().join("\n");
                return Err(format!("shoal did not announce its address ({e}): {said}"));
            }
        };
        Ok(Server {
            child,
            addr: addr.parse().unwrap(),
            admin: admin.map(|a| a.parse().expect("admin address")),
            data_dir: None,
            stderr: log,
        })
    }

    /// Everything printed on stderr so far, one line each.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Starts a multi-tenant server (`--multi-tenant --data-dir DIR
    /// --admin-addr 127.0.0.1:0`) plus `extra` args; `admin` is set.
    pub fn start_mt(cores: usize, dir: &Path, extra: &[&str]) -> Server {
        let dir_s = dir.to_str().expect("utf-8 data dir");
        let mut args = vec![
            "--multi-tenant",
            "--data-dir",
            dir_s,
            "--admin-addr",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let mut s = Server::start(cores, &args);
        assert!(s.admin.is_some(), "no `shoal admin listening on` line");
        s.data_dir = Some(dir.to_path_buf());
        s
    }

    /// Runs `shoal <args> --admin ADDR --data-dir DIR` against this
    /// (multi-tenant) server: Ok(stdout) on exit code 0, else Err(stderr).
    pub fn ctl(&self, args: &[&str]) -> Result<String, String> {
        let admin = self.admin.expect("not a multi-tenant server").to_string();
        let dir = self.data_dir.as_ref().expect("no data dir");
        let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
            .args(args)
            .arg("--admin")
            .arg(&admin)
            .arg("--data-dir")
            .arg(dir)
            .env_remove("SHOAL_ADMIN_TOKEN")
            .stdin(Stdio::null())
            .output()
            .expect("run shoal subcommand");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "shoal {args:?} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Sends SIGTERM and waits for exit; returns the exit status success.
    pub fn terminate(self) -> bool {
        self.stop_with(15, Duration::from_secs(10))
    }

    /// Sends signal `sig` and waits up to `within` for the process to exit
    /// with status 0.
    pub fn stop_with(self, sig: i32, within: Duration) -> bool {
        self.signal(sig);
        self.wait_exit(within)
    }

    /// Sends signal `sig` (15 SIGTERM, 10 SIGUSR1, 9 SIGKILL, ...).
    pub fn signal(&self, sig: i32) {
        unsafe { libc_kill(self.child.id() as i32, sig) };
    }

    /// Waits up to `within` for the process to exit (it was told to some
    /// other way): true if it exited with status 0.
    pub fn wait_exit(mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.success();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking text-protocol client with a read timeout.
pub struct Client {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Client { stream, reader }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads one line including its "\r\n".
    pub fn line(&mut self) -> String {
        let mut buf = Vec::new();
        self.reader.read_until(b'\n', &mut buf).expect("read line");
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Sends `req` and returns the next line.
    pub fn call(&mut self, req: &str) -> String {
        self.send(req.as_bytes());
        self.line()
    }

    /// Reads exactly `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.reader.read_exact(&mut buf).expect("read bytes");
        buf
    }

    /// Reads lines until (and including) `END\r\n`.
    pub fn until_end(&mut self) -> String {
        let mut all = String::new();
        loop {
            let l = self.line();
            if l.is_empty() {
                panic!("connection closed before END; got {all:?}");
            }
            all.push_str(&l);
            if l == "END\r\n" {
                return all;
            }
        }
    }

    /// `get` of one key: Some((flags, value)) or None.
    pub fn get(&mut self, key: &str) -> Option<(u32, Vec<u8>)> {
        self.send(format!("get {key}\r\n").as_bytes());
        let l = self.line();
        if l == "END\r\n" {
            return None;
        }
        let parts: Vec<&str> = l.trim_end().split(' ').collect();
        assert_eq!(parts[0], "VALUE", "unexpected {l:?}");
        let flags = parts[2].parse().unwrap();
        let len: usize = parts[3].parse().unwrap();
        let data = self.bytes(len + 2);
        assert_eq!(self.line(), "END\r\n");
        Some((flags, data[..len].to_vec()))
    }

    pub fn set(&mut self, key: &str, val: &[u8]) -> String {
        let mut req = format!("set {key} 0 0 {}\r\n", val.len()).into_bytes();
        req.extend_from_slice(val);
        req.extend_from_slice(b"\r\n");
        self.send(&req);
        self.line()
    }

    /// `stats` as a map.
    pub fn stats(&mut self, which: &str) -> std::collections::HashMap<String, String> {
        let req = if which.is_empty() {
            "stats\r\n".to_string()
        } else {
            format!("stats {which}\r\n")
        };
        self.send(req.as_bytes());
        let mut m = std::collections::HashMap::new();
        loop {
            let l = self.line();
            if l == "END\r\n" || l.is_empty() {
                return m;
            }
            let mut it = l.trim_end().splitn(3, ' ');
            assert_eq!(it.next(), Some("STAT"), "bad stats line {l:?}");
            m.insert(
                it.next().unwrap().to_string(),
                it.next().unwrap_or("").to_string(),
            );
        }
    }

    /// Waits up to `within` for the server to close this connection: Ok(how
    /// long it took) on EOF or reset, Err(why) if it is still open or sent
    /// data. Unlike `closed`, a read timeout is not taken for a close. The
    /// read timeout is restored to 20 s afterwards.
    pub fn eof_within(&mut self, within: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        let deadline = start + within;
        let mut result = Err("still open".to_string());
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 256];
            match self.reader.read(&mut buf) {
                Ok(0) => {
                    result = Ok(start.elapsed());
                    break;
                }
                Ok(n) => {
                    result = Err(format!(
                        "unexpected data {:?}",
                        String::from_utf8_lossy(&buf[..n])
                    ));
                    break;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    result = Ok(start.elapsed());
                    break;
                }
            }
        }
        let _ = self.stream.set_read_timeout(Some(Duration::from_secs(20)));
        result
    }

    /// True once the server has closed this connection (EOF within the timeout).
    pub fn closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.reader.read(&mut buf), Ok(0) | Err(_))
    }
}

/// The resident set size of process `pid`, in kB (from /proc).
pub fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Generates `#[test]` functions running `$body(cores)` at 1 and at 2 cores.
#[macro_export]
macro_rules! at_1_and_2_cores {
    ($($name:ident => $body:expr;)*) => {
        mod one_core { use super::*; $( #[test] fn $name() { ($body)(1) } )* }
        mod two_cores { use super::*; $( #[test] fn $name() { ($body)(2) } )* }
    };
}

/// Standard base64 (for HTTP Basic in tests).
pub fn b64(raw: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in raw.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Server {
    /// One MemCachier API v2 request on the admin endpoint, with HTTP Basic
    /// `user:pass` (None: no Authorization); the body parsed as JSON (Null
    /// when it is not).
    pub fn api_v2(
        &self,
        method: &str,
        path: &str,
        auth: Option<(&str, &str)>,
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        self.http(method, &format!("/api/v2{path}"), auth, body)
    }

    /// One HTTP request to the admin endpoint at `path` (see `api_v2`).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        auth: Option<(&str, &str)>,
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let auth = auth.map(|(u, p)| format!("Basic {}", b64(format!("{u}:{p}").as_bytes())));
        self.request(method, path, auth, body)
    }

    /// One operator request on the admin endpoint (`/admin/v1{path}`, the
    /// Bearer token from the data dir): status and JSON body.
    pub fn operator(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let dir = self.data_dir.as_ref().expect("no data dir");
        let token = std::fs::read_to_string(dir.join("operator.token")).unwrap();
        let auth = Some(format!("Bearer {}", token.trim()));
        self.request(method, &format!("/admin/v1{path}"), auth, body)
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        authorization: Option<String>,
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let mut c = TcpStream::connect(self.admin.unwrap()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
        if let Some(a) = authorization {
            req.push_str(&format!("Authorization: {a}\r\n"));
        }
        let body = body.unwrap_or("");
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        c.write_all(req.as_bytes()).unwrap();
        let mut raw = String::new();
        c.read_to_string(&mut raw).unwrap();
        let (head, text) = raw.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (
            status,
            serde_json::from_str(text).unwrap_or(serde_json::Value::Null),
        )
    }
}

/// A hosted cache and its primary credential.
pub struct Cred {
    pub cache: u32,
    pub user: String,
    pub pass: String,
}

impl Cred {
    /// HTTP Basic credentials for `Server::api_v2`.
    pub fn basic(&self) -> Option<(&str, &str)> {
        Some((self.user.as_str(), self.pass.as_str()))
    }
}

/// The value after `key` on its line of `out`.
pub fn line_value(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {out}"))
        .trim()
        .to_string()
}

impl Server {
    /// `shoal cache create --name NAME --memory MEMORY`: the id and primary credential.
    pub fn create_cache(&self, name: &str, memory: &str) -> Cred {
        let out = self
            .ctl(&["cache", "create", "--name", name, "--memory", memory])
            .unwrap();
        let cache = line_value(&out, "Created cache ")
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        Cred {
            cache,
            user: line_value(&out, "MEMCACHIER_USERNAME="),
            pass: line_value(&out, "MEMCACHIER_PASSWORD="),
        }
    }

    /// A data connection authenticated as `user` (MemCachier's ASCII auth).
    pub fn login(&self, user: &str, pass: &str) -> Client {
        let mut c = self.connect();
        let r = c.call(&format!("set {user} 0 0 {}\r\n{pass}\r\n", pass.len()));
        assert_eq!(r, "STORED\r\n", "auth as {user}");
        c
    }
}

/// One binary SASL PLAIN AUTH (opcode 0x21) as `user`/`pass` on a new
/// connection: the connection (still open unless the server closed it),
/// the reply's status and its body.
pub fn sasl_plain(addr: SocketAddr, user: &str, pass: &str) -> (TcpStream, u16, Vec<u8>) {
    let mut t = TcpStream::connect(addr).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let key = b"PLAIN";
    let value = format!("\0{user}\0{pass}");
    let mut f = vec![0x80, 0x21];
    f.extend_from_slice(&(key.len() as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(&((key.len() + value.len()) as u32).to_be_bytes());
    f.extend_from_slice(&[0; 12]);
    f.extend_from_slice(key);
    f.extend_from_slice(value.as_bytes());
    t.write_all(&f).unwrap();
    let mut h = [0u8; 24];
    t.read_exact(&mut h).unwrap();
    assert_eq!((h[0], h[1]), (0x81, 0x21), "{h:?}");
    let status = u16::from_be_bytes([h[6], h[7]]);
    let mut body = vec![0; u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize];
    t.read_exact(&mut body).unwrap();
    (t, status, body)
}

/// One binary response: (opcode, status, opaque, extras, key, value).
#[allow(clippy::type_complexity)]
pub fn bin_response(s: &mut std::net::TcpStream) -> (u8, u16, u32, Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut h = [0u8; 24];
    s.read_exact(&mut h).unwrap();
    assert_eq!(h[0], 0x81, "response magic");
    let keylen = u16::from_be_bytes([h[2], h[3]]) as usize;
    let extlen = h[4] as usize;
    let status = u16::from_be_bytes([h[6], h[7]]);
    let body = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
    let opaque = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
    let mut b = vec![0; body];
    s.read_exact(&mut b).unwrap();
    (
        h[1],
        status,
        opaque,
        b[..extlen].to_vec(),
        b[extlen..extlen + keylen].to_vec(),
        b[extlen + keylen..].to_vec(),
    )
}
