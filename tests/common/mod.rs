//! Test harness: starts a real `shoal` process on a free port, polls for
//! readiness, and speaks the protocol over a real socket.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server, killed on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `shoal -p 0 -t <cores>` plus `extra` args and waits until it
    /// announces its port.
    pub fn start(cores: usize, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shoal"))
            .args(["-p", "0", "-l", "127.0.0.1", "-t", &cores.to_string()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shoal");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines();
            let mut sent = false;
            for line in lines.by_ref().map_while(Result::ok) {
                if !sent {
                    if let Some(rest) = line.strip_prefix("shoal listening on ") {
                        let addr = rest.split_whitespace().next().unwrap().to_string();
                        let _ = tx.send(addr);
                        sent = true;
                        continue;
                    }
                }
                eprintln!("[shoal] {line}");
            }
        });
        let addr: SocketAddr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("shoal did not announce its address")
            .parse()
            .unwrap();
        Server { child, addr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Sends SIGTERM and waits for exit; returns the exit status success.
    pub fn terminate(mut self) -> bool {
        unsafe { libc_kill(self.child.id() as i32, 15) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.success();
            }
            std::thread::sleep(Duration::from_millis(20));
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

    /// True once the server has closed this connection (EOF within the timeout).
    pub fn closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.reader.read(&mut buf), Ok(0) | Err(_))
    }
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
