//! The admin endpoint's limits against a running multi-tenant server: its
//! connection cap, header and whole-request timeouts (short values here),
//! canonical cache ids in the API, and the mode of the history file.

mod common;
use common::{eventually, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Reads `c` until EOF or reset (Ok(what was read, how long)), or Err if
/// it is still open after `within`.
fn until_closed(c: &mut TcpStream, within: Duration) -> Result<(String, Duration), String> {
    let start = Instant::now();
    let mut got = Vec::new();
    loop {
        let left = within.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(format!(
                "still open after {within:?}; read {:?}",
                String::from_utf8_lossy(&got)
            ));
        }
        c.set_read_timeout(Some(left)).unwrap();
        let mut buf = [0u8; 1024];
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(_) => break,
        }
    }
    Ok((String::from_utf8_lossy(&got).into_owned(), start.elapsed()))
}

/// A connection to the admin endpoint that has sent part of a request head.
fn partial(s: &Server) -> TcpStream {
    let mut c = TcpStream::connect(s.admin.unwrap()).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        .unwrap();
    c
}

fn healthz_ok(s: &Server) -> bool {
    let Ok(mut c) = TcpStream::connect(s.admin.unwrap()) else {
        return false;
    };
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    matches!(until_closed(&mut c, Duration::from_secs(5)), Ok((r, _)) if r.starts_with("HTTP/1.1 200"))
}

#[test]
fn excess_connections_are_closed_and_slow_heads_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_mt(
        1,
        dir.path(),
        &["--admin-max-conns", "4", "--admin-header-timeout", "1.5"],
    );
    // Four slow clients take every slot...
    let mut slow: Vec<TcpStream> = (0..4).map(|_| partial(&s)).collect();
    // ...and the server has accepted them all: a fifth is closed at once,
    // without an answer (polled: the accepts may still be in flight).
    let start = Instant::now();
    let mut extra = None;
    assert!(
        eventually(Duration::from_secs(5), || {
            let mut c = partial(&s);
            match until_closed(&mut c, Duration::from_millis(500)) {
                Ok(r) => {
                    extra = Some(r);
                    true
                }
                Err(_) => {
                    slow.push(c);
                    false
                }
            }
        }),
        "a connection over the cap was not closed"
    );
    let (answer, took) = extra.unwrap();
    assert_eq!(answer, "", "closed without an answer");
    assert!(
        took < Duration::from_millis(500),
        "closed at once: {took:?}"
    );
    // The slow ones are closed by the header timeout (1.5 s), not held.
    for c in &mut slow {
        let (_, took) = until_closed(c, Duration::from_secs(5)).expect("slow head closed");
        assert!(took <= Duration::from_secs(5), "{took:?}");
    }
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "timed out before 1.5 s: {:?}",
        start.elapsed()
    );
    // Their slots are free again.
    assert!(eventually(Duration::from_secs(5), || healthz_ok(&s)));
    // An idle keep-alive connection is closed after the header timeout too.
    let mut idle = TcpStream::connect(s.admin.unwrap()).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let (answer, _) = until_closed(&mut idle, Duration::from_secs(5)).expect("idle closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn a_slow_body_gets_408() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_mt(1, dir.path(), &["--admin-request-timeout", "1"]);
    let mut c = TcpStream::connect(s.admin.unwrap()).unwrap();
    // The head arrives in time; the body never does.
    c.write_all(
        b"POST /api/v2/caches/1/alerts/configs HTTP/1.1\r\nHost: t\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"deli",
    )
    .unwrap();
    let (answer, took) = until_closed(&mut c, Duration::from_secs(10)).expect("closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took >= Duration::from_millis(800), "{took:?}");
    assert!(healthz_ok(&s));
}

#[test]
fn cache_ids_are_canonical_decimal() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_mt(1, dir.path(), &[]);
    let t = s.create_cache("ids", "8MB");
    assert_eq!(t.cache, 1);
    let (st, _) = s.api_v2("GET", "/caches/1/stats", t.basic(), None);
    assert_eq!(st, 200);
    let (invalid, _) = s.api_v2("GET", "/caches/abc/stats", t.basic(), None);
    assert_eq!(invalid, 400);
    for id in ["+1", "01", "001", "%2B1", "1%20"] {
        let (st, body) = s.api_v2("GET", &format!("/caches/{id}/stats"), t.basic(), None);
        assert_eq!(st, invalid, "{id}: {body}");
        let (st, body) = s.api_v2("GET", &format!("/caches/{id}/alerts"), t.basic(), None);
        assert_eq!(st, invalid, "{id}: {body}");
    }
}

#[test]
fn history_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_mt(1, dir.path(), &["--stats-interval", "0.1"]);
    s.create_cache("h", "8MB");
    // Saved every 6 samples, and on a clean stop.
    let path = dir.path().join("history.json");
    eventually(Duration::from_secs(5), || path.exists());
    assert!(s.terminate(), "clean stop");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "history.json mode {mode:o}");
}
