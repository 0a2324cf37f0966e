//! End-to-end tests of ElastiCache-style cluster auto-discovery over real
//! sockets at 1 and 2 cores: `config get cluster` (ASCII) and opcode 0x60
//! (binary) answer the node list, here the single node itself; unknown
//! keys are errors; in multi-tenant mode the list is answered before login.

mod common;
use common::{Client, Server};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// `<version>\n<host>|<ip>|<port>\n` of a single node listening on `addr`.
fn single_node_text(addr: SocketAddr) -> String {
    let ip = addr.ip().to_string();
    format!("1\n{ip}|{ip}|{}\n", addr.port())
}

/// The whole ASCII answer to `config get cluster`.
fn ascii_answer(addr: SocketAddr) -> Vec<u8> {
    let text = single_node_text(addr);
    format!("CONFIG cluster 0 {}\r\n{text}\r\nEND\r\n", text.len()).into_bytes()
}

/// A binary request frame: 24-byte header + key (no extras, no value).
fn frame(opcode: u8, opaque: u32, key: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80, opcode];
    f.extend_from_slice(&(key.len() as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(&(key.len() as u32).to_be_bytes());
    f.extend_from_slice(&opaque.to_be_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(key);
    f
}

fn binary_conn(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Sends `config get cluster` on `c` and checks the exact answer.
fn check_ascii(c: &mut Client, addr: SocketAddr) {
    let want = ascii_answer(addr);
    c.send(b"config get cluster\r\n");
    assert_eq!(
        String::from_utf8_lossy(&c.bytes(want.len())),
        String::from_utf8_lossy(&want)
    );
}

/// Sends a binary `config get cluster` on `s` and checks the answer.
fn check_binary(s: &mut TcpStream, addr: SocketAddr, opaque: u32) {
    s.write_all(&frame(0x60, opaque, b"cluster")).unwrap();
    let (op, status, opq, extras, key, value) = common::bin_response(s);
    assert_eq!((op, status, opq), (0x60, 0, opaque));
    assert_eq!(extras, vec![0, 0, 0, 0], "flags 0");
    assert!(key.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&value),
        single_node_text(addr),
        "binary config text"
    );
}

fn ascii_discovery(cores: usize) {
    let srv = Server::start(cores, &[]);
    // Each connection lands on a core by its source port: several
    // connections reach every core.
    for _ in 0..8 {
        let mut c = srv.connect();
        check_ascii(&mut c, srv.addr);
        // The connection keeps serving, and asking again answers the same.
        assert_eq!(c.call("set k 0 0 1\r\nv\r\n"), "STORED\r\n");
        check_ascii(&mut c, srv.addr);
    }
}

fn ascii_errors(cores: usize) {
    let srv = Server::start(cores, &[]);
    let mut c = srv.connect();
    for line in [
        "config get foo\r\n",
        "config get\r\n",
        "config\r\n",
        "config get cluster extra\r\n",
    ] {
        assert_eq!(c.call(line), "ERROR\r\n", "{line:?}");
    }
    // `config set` is not offered: its line is an unknown command (the
    // data line that would follow is another one).
    assert_eq!(c.call("config set cluster 0 1\r\n"), "ERROR\r\n");
    assert_eq!(c.call("version\r\n"), "VERSION 1.6.18\r\n");
}

fn binary_discovery(cores: usize) {
    let srv = Server::start(cores, &[]);
    for i in 0..8 {
        let mut s = binary_conn(srv.addr);
        check_binary(&mut s, srv.addr, 0x1000 + i);
        // Unknown key: KEY_ENOENT, and the connection keeps serving.
        s.write_all(&frame(0x60, 7, b"nodes")).unwrap();
        let (op, status, opq, extras, key, value) = common::bin_response(&mut s);
        assert_eq!((op, status, opq), (0x60, 0x01, 7));
        assert!(extras.is_empty() && key.is_empty());
        assert_eq!(value, b"Not found");
        s.write_all(&frame(0x0a, 8, b"")).unwrap(); // Noop
        assert_eq!(common::bin_response(&mut s).1, 0);
    }
}

fn before_login_in_multi_tenant_mode(cores: usize) {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start_mt(cores, dir.path(), &[]);
    let cred = srv.create_cache("discover", "16MB");

    // ASCII: answered before login; the connection then logs in.
    for _ in 0..4 {
        let mut c = srv.connect();
        check_ascii(&mut c, srv.addr);
        // Anything else still needs a login.
        assert_eq!(
            c.call("get k\r\n"),
            "CLIENT_ERROR unauthenticated\r\n",
            "T-1 unchanged"
        );
        let pass = &cred.pass;
        let r = c.call(&format!(
            "set {} 0 0 {}\r\n{pass}\r\n",
            cred.user,
            pass.len()
        ));
        assert_eq!(r, "STORED\r\n", "login after discovery");
        check_ascii(&mut c, srv.addr);
        assert_eq!(c.call("set k 0 0 1\r\nv\r\n"), "STORED\r\n");
    }

    // Binary: answered before SASL, without closing the connection.
    for i in 0..4 {
        let mut s = binary_conn(srv.addr);
        check_binary(&mut s, srv.addr, i);
        s.write_all(&frame(0x60, 9, b"other")).unwrap();
        assert_eq!(common::bin_response(&mut s).1, 0x01);
        check_binary(&mut s, srv.addr, 10 + i);
        // A keyed request still needs authentication (0x20, then close).
        s.write_all(&frame(0x00, 11, b"k")).unwrap();
        assert_eq!(common::bin_response(&mut s).1, 0x20);
    }
}

#[test]
fn ascii_config_get_cluster_1_core() {
    ascii_discovery(1);
}

#[test]
fn ascii_config_get_cluster_2_cores() {
    ascii_discovery(2);
}

#[test]
fn ascii_unknown_config_is_error_1_core() {
    ascii_errors(1);
}

#[test]
fn ascii_unknown_config_is_error_2_cores() {
    ascii_errors(2);
}

#[test]
fn binary_config_get_cluster_1_core() {
    binary_discovery(1);
}

#[test]
fn binary_config_get_cluster_2_cores() {
    binary_discovery(2);
}

#[test]
fn multi_tenant_discovery_before_login_1_core() {
    before_login_in_multi_tenant_mode(1);
}

#[test]
fn multi_tenant_discovery_before_login_2_cores() {
    before_login_in_multi_tenant_mode(2);
}
