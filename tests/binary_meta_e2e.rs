//! End-to-end binary and meta protocol tests over real sockets at 1 and 2
//! cores: quiet pipelines spanning cores come back in request order
//! (protocol.md §1.6 M-*, §1.7 B-*).

mod common;
use common::Server;
use std::collections::HashMap;
use std::io::Write;

/// A binary request frame (B-*): 24-byte header + extras + key + value.
fn frame(opcode: u8, opaque: u32, key: &[u8], extras: &[u8], value: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80, opcode];
    f.extend_from_slice(&(key.len() as u16).to_be_bytes());
    f.push(extras.len() as u8);
    f.extend_from_slice(&[0, 0, 0]);
    f.extend_from_slice(&((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
    f.extend_from_slice(&opaque.to_be_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(extras);
    f.extend_from_slice(key);
    f.extend_from_slice(value);
    f
}

/// Reads one binary response: (opcode, status, opaque, key, value).
fn response(s: &mut std::net::TcpStream) -> (u8, u16, u32, Vec<u8>, Vec<u8>) {
    let (op, status, opaque, _, key, value) = common::bin_response(s);
    (op, status, opaque, key, value)
}

fn binary_quiet_pipeline(cores: usize) {
    let srv = Server::start(cores, &[]);
    let mut s = std::net::TcpStream::connect(srv.addr).unwrap();
    let mut req = Vec::new();
    // SetQ k0..k49 (silent on success), then GetKQ k0..k99 (misses silent), then Noop.
    for i in 0..50u32 {
        let key = format!("k{i}");
        req.extend(frame(
            0x11,
            i,
            key.as_bytes(),
            &[0, 0, 0, 7, 0, 0, 0, 0],
            format!("v{i}").as_bytes(),
        ));
    }
    for i in 0..100u32 {
        req.extend(frame(0x0d, 1000 + i, format!("k{i}").as_bytes(), &[], &[]));
    }
    req.extend(frame(0x0a, 9999, b"", &[], &[]));
    s.write_all(&req).unwrap();
    for i in 0..50u32 {
        let (op, status, opaque, key, value) = response(&mut s);
        assert_eq!((op, status, opaque), (0x0d, 0, 1000 + i));
        assert_eq!(key, format!("k{i}").into_bytes());
        assert_eq!(value, format!("v{i}").into_bytes());
    }
    let (op, status, opaque, _, _) = response(&mut s);
    assert_eq!(
        (op, status, opaque),
        (0x0a, 0, 9999),
        "noop ends the pipeline"
    );
    // Unknown opcode: 0x81, connection stays up (B-4).
    s.write_all(&frame(0x55, 7, b"", &[], &[])).unwrap();
    let (_, status, opaque, _, _) = response(&mut s);
    assert_eq!((status, opaque), (0x81, 7));
    // Version still answers.
    s.write_all(&frame(0x0b, 8, b"", &[], &[])).unwrap();
    assert_eq!(response(&mut s).1, 0);
}

fn meta_pipeline_with_mn(cores: usize) {
    let srv = Server::start(cores, &[]);
    let mut c = srv.connect();
    let mut req = String::new();
    for i in 0..40 {
        req.push_str(&format!("ms m{i} 2 q T0 F{i}\r\nv{}\r\n", i % 10));
    }
    for i in 0..60 {
        req.push_str(&format!("mg m{i} v f k q O{i}\r\n"));
    }
    req.push_str("mn\r\n");
    c.send(req.as_bytes());
    for i in 0..40 {
        assert_eq!(c.line(), format!("VA 2 f{i} km{i} O{i}\r\n"));
        assert_eq!(c.line(), format!("v{}\r\n", i % 10));
    }
    assert_eq!(c.line(), "MN\r\n");
    // Meta and classic commands mix on one connection.
    assert_eq!(c.call("ms n 1 F3\r\n1\r\n"), "HD\r\n");
    assert_eq!(c.call("ma n D5 v\r\n"), "VA 1\r\n");
    assert_eq!(c.line(), "6\r\n");
    assert_eq!(c.get("n"), Some((3, b"6".to_vec())));
    assert_eq!(c.call("md n q\r\nmn\r\n"), "MN\r\n");
    assert_eq!(c.call("mg n v\r\n"), "EN\r\n");
}

at_1_and_2_cores! {
    binary_pipeline => binary_quiet_pipeline;
    meta_pipeline => meta_pipeline_with_mn;
}

/// `version`, the binary Version opcode and `stats` on both wires answer
/// memcached's version, which libmemcached-based clients (memstat,
/// php-memcached, pylibmc) parse and branch on; shoal's own version is the
/// `shoal_version` stat (issue 11).
#[test]
fn version_is_memcacheds_on_every_protocol() {
    const MEMCACHED: &str = "1.6.18";
    assert_eq!(shoal::protocol::MEMCACHED_VERSION, MEMCACHED);
    let srv = Server::start(2, &[]);
    let mut c = srv.connect();
    assert_eq!(c.call("version\r\n"), format!("VERSION {MEMCACHED}\r\n"));
    let text = c.stats("");
    assert_eq!(text["version"], MEMCACHED);
    assert_eq!(text["shoal_version"], env!("CARGO_PKG_VERSION"));

    let mut s = std::net::TcpStream::connect(srv.addr).unwrap();
    s.write_all(&frame(0x0b, 5, b"", &[], &[])).unwrap();
    assert_eq!(
        response(&mut s),
        (0x0b, 0, 5, vec![], MEMCACHED.as_bytes().to_vec())
    );
    s.write_all(&frame(0x10, 6, b"", &[], &[])).unwrap();
    let mut binary = HashMap::new();
    loop {
        let (op, status, opaque, key, value) = response(&mut s);
        assert_eq!((op, status, opaque), (0x10, 0, 6));
        if key.is_empty() {
            break;
        }
        binary.insert(
            String::from_utf8(key).unwrap(),
            String::from_utf8(value).unwrap(),
        );
    }
    assert_eq!(binary["version"], MEMCACHED);
    assert_eq!(binary["shoal_version"], env!("CARGO_PKG_VERSION"));
}
