//! Issue 12, item 5: connections that have not logged in (multi-tenant
//! mode) hold a bounded share of the node. A flood of them cannot keep a
//! real tenant out, and none may make the server buffer more than a
//! login's worth of bytes.

mod common;

use common::{rss_kb, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Reads until the peer closes or `timeout` passes; returns what came.
fn read_to_close(s: &mut TcpStream, timeout: Duration) -> (Vec<u8>, bool) {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let until = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        match s.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (got, true),
        }
    }
    (got, false)
}

fn flood_leaves_room_for_a_tenant(cores: usize) {
    let dir = tempfile::tempdir().unwrap();
    // -c 64: before, 64 silent connections took every slot for the 5 s
    // authentication window.
    let s = Server::start_mt(cores, dir.path(), &["-c", "64"]);
    let cred = s.create_cache("flooded", "16MB");
    let mut flood = Vec::new();
    for _ in 0..100 {
        if let Ok(c) = TcpStream::connect(s.addr) {
            flood.push(c);
        }
    }
    // A real tenant connects after the flood and logs in.
    let mut tenant = s.login(&cred.user, &cred.pass);
    assert_eq!(tenant.set("k", b"v"), "STORED\r\n");
    assert_eq!(tenant.get("k"), Some((0, b"v".to_vec())));
    // The oldest of the flood were told why and hung up on.
    let (first, closed) = read_to_close(&mut flood[0], Duration::from_secs(3));
    assert!(closed, "the oldest flood connection was closed");
    assert_eq!(first, b"ERROR Too many open connections\r\n");
}

fn no_item_sized_buffers_before_login(cores: usize) {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_mt(cores, dir.path(), &[]);
    let base = rss_kb(s.pid());
    let chunk = vec![b'x'; 200_000];
    let mut conns = Vec::new();
    for _ in 0..100 {
        let mut c = TcpStream::connect(s.addr).unwrap();
        c.write_all(b"set u 0 0 1000000\r\n").unwrap();
        // The server hangs up after a login's worth; later writes may fail.
        let _ = c.write_all(&chunk);
        conns.push(c);
    }
    let peak = rss_kb(s.pid());
    for c in conns.iter_mut() {
        let (got, closed) = read_to_close(c, Duration::from_secs(3));
        assert!(closed, "a pre-auth item-sized set is hung up on");
        assert_eq!(got, b"CLIENT_ERROR auth token too long\r\n");
    }
    let grown = peak.saturating_sub(base);
    eprintln!("cores {cores}: RSS {base} kB -> {peak} kB (+{grown} kB) with 100 pre-auth sets");
    // Before: each buffered its 200 KB (+20 MB here, +80 MB with 1 MB each).
    assert!(grown < 10 * 1024, "RSS grew by {grown} kB");
    // The server still serves tenants.
    let cred = s.create_cache("after", "16MB");
    let mut t = s.login(&cred.user, &cred.pass);
    assert_eq!(t.set("k", b"v"), "STORED\r\n");
}

at_1_and_2_cores! {
    flood => flood_leaves_room_for_a_tenant;
    big_preauth_set => no_item_sized_buffers_before_login;
}
