//! Issue 12, item 1: replies cost a connection bounded memory whatever the
//! request mix and however slowly the client reads, and a client reading
//! slowly does not stall the core for the others.
//!
//! The stated bound: a connection holds at most about 1 MiB of replies plus
//! one item, plus the values of one forwarding round (16 MiB at the default
//! 1 MiB item size limit). While a round is spliced in, those bytes exist up
//! to three times at once (the owner's reply buffer, the connection's
//! replies, the merged copy), so a slow reader at two cores may take ~50 MiB
//! at its peak, and the allocator keeps some of what was freed. Two slow
//! clients here: the server's RSS must not grow by more than `RSS_BOUND_KB`
//! while they read (it grew by ~1 GB per client before the bound).

mod common;

use common::{rss_kb, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const VALUE: usize = 1_000_000;
/// RSS growth allowed while the two slow readers hold their replies: their
/// peaks (~2 x 50 MiB at two cores, ~2 x 2 MiB at one) plus allocator
/// slack. Measured: +4 MB at one core, +32 to +86 MB at two. Without the
/// bound it grew by 1 to 2 GB.
const RSS_BOUND_KB: u64 = 160 * 1024;

/// A client that sent a request whose replies are huge and reads them at
/// about 6 MB/s.
struct SlowReader {
    stream: TcpStream,
    got: usize,
}

impl SlowReader {
    fn start(s: &Server, request: &[u8]) -> SlowReader {
        let stream = TcpStream::connect(s.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let mut w = &stream;
        w.write_all(request).expect("send");
        SlowReader { stream, got: 0 }
    }

    /// Reads what is there, up to 64 KiB.
    fn nibble(&mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        if let Ok(n) = self.stream.read(&mut buf) {
            self.got += n;
        }
    }
}

fn slow_readers_stay_bounded(cores: usize) {
    let s = Server::start(cores, &["-m", "64"]);
    let mut c = s.connect();
    // Four keys: at two cores some are this connection's core's and some
    // are forwarded, whichever core the slow clients land on.
    let keys = ["bk0", "bk1", "bk2", "bk3"];
    let value = vec![b'x'; VALUE];
    for k in keys {
        assert_eq!(c.set(k, &value), "STORED\r\n");
    }
    assert_eq!(c.set("small", b"v"), "STORED\r\n");
    let base = rss_kb(s.pid());

    // One get of 1,000 keys (1 GB of replies), and 200 pipelined gets.
    let mut multi = b"get".to_vec();
    for i in 0..1000 {
        multi.extend_from_slice(b" ");
        multi.extend_from_slice(keys[i % keys.len()].as_bytes());
    }
    multi.extend_from_slice(b"\r\n");
    let mut pipelined = Vec::new();
    for i in 0..200 {
        pipelined.extend_from_slice(format!("get {}\r\n", keys[i % keys.len()]).as_bytes());
    }
    let mut readers = [
        SlowReader::start(&s, &multi),
        SlowReader::start(&s, &pipelined),
    ];

    let mut peak = base;
    let mut latencies = Vec::new();
    let until = Instant::now() + Duration::from_secs(3);
    let mut rounds = 0;
    while Instant::now() < until && rounds < 1000 {
        rounds += 1;
        for r in readers.iter_mut() {
            r.nibble();
        }
        let t = Instant::now();
        assert_eq!(c.get("small"), Some((0, b"v".to_vec())));
        latencies.push(t.elapsed());
        peak = peak.max(rss_kb(s.pid()));
        std::thread::sleep(Duration::from_millis(5));
    }
    let grown = peak.saturating_sub(base);
    latencies.sort();
    let slowest = latencies.last().copied().unwrap_or_default();
    // The 95th percentile: this 2-CPU machine is shared, and a test beside
    // this one may take the CPU for a moment; the max is bounded loosely.
    let p95 = latencies[latencies.len() * 95 / 100];
    eprintln!(
        "cores {cores}: RSS {base} kB -> peak {peak} kB (+{grown} kB); other gets p95 {p95:?} max {slowest:?}; \
         slow readers got {} and {} bytes",
        readers[0].got, readers[1].got
    );
    assert!(
        readers.iter().all(|r| r.got > 0),
        "the slow readers are being answered"
    );
    assert!(
        grown < RSS_BOUND_KB,
        "RSS grew by {grown} kB with two slow readers (bound {RSS_BOUND_KB} kB)"
    );
    assert!(
        p95 < Duration::from_millis(50),
        "another client's gets: p95 {p95:?}"
    );
    assert!(
        slowest < Duration::from_millis(500),
        "another client's get took {slowest:?}"
    );
    drop(readers);
    // The server goes on serving once the slow clients are gone.
    assert_eq!(c.get("small"), Some((0, b"v".to_vec())));
}

/// A fast reader still gets every reply of a huge multi-key get, complete
/// and in order (the replies are written in pieces now).
fn huge_multiget_arrives_whole(cores: usize) {
    let s = Server::start(cores, &["-m", "64"]);
    let mut c = s.connect();
    let keys: Vec<String> = (0..8).map(|i| format!("hk{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        let value = vec![b'a' + i as u8; 300_000];
        assert_eq!(c.set(k, &value), "STORED\r\n");
    }
    let mut req = String::from("get");
    let order: Vec<usize> = (0..100).map(|i| (i * 3) % keys.len()).collect();
    for &i in &order {
        req.push(' ');
        req.push_str(&keys[i]);
    }
    req.push_str("\r\n");
    c.send(req.as_bytes());
    for &i in &order {
        let header = c.line();
        assert_eq!(header, format!("VALUE {} 0 300000\r\n", keys[i]));
        let data = c.bytes(300_002);
        assert!(data[..300_000].iter().all(|b| *b == b'a' + i as u8));
        assert_eq!(&data[300_000..], b"\r\n");
    }
    assert_eq!(c.line(), "END\r\n");
}

at_1_and_2_cores! {
    slow_readers => slow_readers_stay_bounded;
    huge_multiget => huge_multiget_arrives_whole;
}
