//! End-to-end ASCII protocol tests over real sockets, each run against
//! `shoal -t 1` and `shoal -t 2` (cross-core forwarding). IDs cite
//! protocol.md (A-*, X-*).

mod common;
use common::{eventually, Server};
use std::io::Write;
use std::time::Duration;

fn set_get_roundtrip(cores: usize) {
    let s = Server::start(cores, &[]);
    let mut c = s.connect();
    // A-set / A-get
    assert_eq!(c.call("set foo 5 0 3\r\nbar\r\n"), "STORED\r\n");
    assert_eq!(c.get("foo"), Some((5, b"bar".to_vec())));
    assert_eq!(c.get("missing"), None);
    // binary-safe data including CR LF inside
    assert_eq!(c.set("bin", b"a\r\nb\0c"), "STORED\r\n");
    assert_eq!(c.get("bin"), Some((0, b"a\r\nb\0c".to_vec())));
    // max 32-bit flags
    assert_eq!(c.call("set f 4294967295 0 1\r\nx\r\n"), "STORED\r\n");
    assert_eq!(c.get("f"), Some((4294967295, b"x".to_vec())));
}

fn multiget_spans_cores_in_order(cores: usize) {
    let s = Server::start(cores, &[]);
    let mut c = s.connect();
    let keys: Vec<String> = (0..200).map(|i| format!("key{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        if i % 3 != 0 {
            assert_eq!(c.set(k, format!("v{i}").as_bytes()), "STORED\r\n");
        }
    }
    c.send(format!("get {}\r\n", keys.join(" ")).as_bytes());
    let body = c.until_end();
    let mut expect = String::new();
    for (i, k) in keys.iter().enumerate() {
        if i % 3 != 0 {
            let v = format!("v{i}");
            expect.push_str(&format!("VALUE {k} 0 {}\r\n{v}\r\n", v.len()));
        }
    }
    expect.push_str("END\r\n");
    assert_eq!(body, expect);
}

fn pipelined_requests_answer_in_order(cores: usize) {
    let s = Server::start(cores, &[]);
    let mut c = s.connect();
    let mut req = Vec::new();
    let mut expect = String::new();
    for i in 0..500 {
        req.extend_from_slice(
            format!("set p{i} {i} 0 {}\r\n{i}\r\n", i.to_string().len()).as_bytes(),
        );
        expect.push_str("STORED\r\n");
        req.extend_from_slice(format!("get p{i}\r\n").as_bytes());
        expect.push_str(&format!(
            "VALUE p{i} {i} {}\r\n{i}\r\nEND\r\n",
            i.to_string().len()
        ));
        req.extend_from_slice(format!("incr p{i} 1\r\n").as_bytes());
        expect.push_str(&format!("{}\r\n", i + 1));
    }
    c.send(&req);
    let got = c.bytes(expect.len());
    assert_eq!(String::from_utf8(got).unwrap(), expect);
}

fn add_replace_append_prepend(cores: usize) {
    let s = Server::start(cores, &[]);
    let mut c = s.connect();
    assert_eq!(c.call("add k 0 0 1\r\na\r\n"), "STORED\r\n");
    assert_eq!(c.call("add k 0 0 1\r\nb\r\n"), "NOT_STORED\r\n");
    assert_eq!(c.call("replace nope 0 0 1\r\nb\r\n"), "NOT_STORED\r\n");
    assert_eq!(c.call("replace k 7 0 1\r\nb\r\n"), "STORED\r\n");
    assert_eq!(c.call("append k 0 0 2\r\ncd\r\n"), "STORED\r\n");
    assert_eq!(c.call("prepend k 0 0 2\r\nyz\r\n"), "STORED\r\n");
    // A-append: flags of the existing item are kept
    assert_eq!(c.get("k"), Some((7, b"yzbcd".to_vec())));
    assert_eq!(c.call("append nope 0 0 1\r\nx\r\n"), "NOT_STORED\r\n");
    assert_eq!(c.call("prepend nope 0 0 1\r\nx\r\n"), "NOT_STORED\r\n");
}

fn gets_and_cas(cores: usize) {
    let s = Server::start(cores, &[]);
    let mut c = s.connect();
    assert_eq!(c.call("cas nope 0 0 1 1\r\nx\r\n"), "NOT_FOUND\r\n");
    assert_eq!(c.set("a", b"1"), "STORED\r\n");
    assert_eq!(c.set("b", b"2"), "STORED\r\n");
    c.send(b"gets a b\r\n");
    let body = c.until_end();
    let cas: Vec<u64> = body
        .lines()
        .filter(|l| l.starts_with("VALUE"))
        .map(|l| l.split(' ').nth(4).unwrap().parse().unwrap())
        .collect();
    assert_eq!(cas.len(), 2);
    assert_ne!(cas[0], cas[1], "CAS unique per item");
    assert_eq!(
        c.call(&format!("cas a 0 0 1 {}\r\nX\r\n", cas[0] + 1000)),
        "EXISTS\r\n"
    );
    assert_eq!(
        c.call(&format!("cas a 0 0 1 {}\r\nX\r\n", cas[0])),
        "STORED\r\n"
    );
    assert_eq!(
        c.call(&format!("cas a 0 0 1 {}\r\nY\r\n", cas[0])),
        "EXISTS\r\n"
    );
    assert_eq!(c.get("a"), Some((0, b"X".to_vec())));
    // touch keeps the CAS unique
    c.send(b"gets b\r\n");
    let before = c.until_end();
    assert_eq!(c.call("touch b 100\r\n"), "TOUCHED\r\n");
    c.send(b"gets b\r\n");
    assert_eq!(c.until_end(), before);
    let st = c.stats("");
    assert_eq!(st["cas_misses"], "1");
    assert_eq!(st["cas_hits"], "1");
    assert_eq!(st["cas_badval"], "2");
}

fn incr_decr(cores: usize) {
    let s = Server::start(cores, &[]);
    let mut c = s.connect();
    assert_eq!(c.call("incr n 1\r\n"), "NOT_FOUND\r\n");
    assert_eq!(c.set("n", b"18446744073709551615"), "STORED\r\n");
    assert_eq!(c.call("incr n 1\r\n"), "0\r\n", "incr wraps at 2^64");
    assert_eq!(c.call("decr n 5\r\n"), "0\r\n", "decr floors at 0");
    assert_eq!(c.call("incr n 42\r\n"), "42\r\n");
    assert_eq!(c.get("n"), Some((0, b"42".to_vec())));
    assert_eq!(c.set("t", b"hi"), "STORED\r\n");
    assert_eq!(
        c.call("incr t 1\r\n"),
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    );
    assert_eq!(
        c.call("incr n abc\r\n"),
        "CLIENT_ERROR invalid numeric delta argument\r\n"
    );
    assert_eq!(
        c.call("decr n -1\r\n"),
        "CLIENT_ERROR invalid numeric delta argument\r\n"
    );
}

fn delete_touch_gat(cores: usize) {
    let s = Server::start(cores, &[]);
    let mut c = s.connect();
    assert_eq!(c.call("delete d\r\n"), "NOT_FOUND\r\n");
    assert_eq!(c.set("d", b"v"), "STORED\r\n");
    assert_eq!(c.call("delete d\r\n"), "DELETED\r\n");
    assert_eq!(c.get("d"), None);
    assert_eq!(c.call("touch d 10\r\n"), "NOT_FOUND\r\n");
    assert_eq!(c.set("g", b"val"), "STORED\r\n");
    assert_eq!(
        c.call("touch g abc\r\n"),
        "CLIENT_ERROR invalid exptime argument\r\n"
    );
    c.send(b"gat 100 g missing\r\n");
    assert_eq!(c.until_end(), "VALUE g 0 3\r\nval\r\nEND\r\n");
    c.send(b"gats 100 g\r\n");
    let l = c.until_end();
    assert!(
        l.starts_with("VALUE g 0 3 ") && l.ends_with("\r\nval\r\nEND\r\n"),
        "{l:?}"
    );
    let st = c.stats("");
    assert_eq!(st["touch_hits"], "2");
    assert_eq!(st["touch_misses"], "2");
    assert_eq!(st["delete_hits"], "1");
    assert_eq!(st["delete_misses"], "1");
}

fn expiry_relative_and_negative(cores: usize) {
    let s = Server::start(cores, &[]);
    let mut c = s.connect();
    // negative exptime = already expired
    assert_eq!(c.call("set neg 0 -1 1\r\nx\r\n"), "STORED\r\n");
    assert_eq!(c.get("neg"), None);
    // absolute time in the past
    assert_eq!(c.call("set abs 0 2592001 1\r\nx\r\n"), "STORED\r\n");
    assert_eq!(c.get("abs"), None);
    assert_eq!(c.call("set short 0 1 1\r\nx\r\n"), "STORED\r\n");
    assert_eq!(c.call("set long 0 1000 1\r\ny\r\n"), "STORED\r\n");
    assert!(
        eventually(Duration::from_secs(5), || c.get("short").is_none()),
        "relative TTL expires"
    );
    assert_eq!(c.get("long"), Some((0, b"y".to_vec())));
    // gat with a negative exptime expires the item
    c.send(b"gat -1 long\r\n");
    c.until_end();
    assert_eq!(c.get("long"), None);
}

fn flush_all_now_and_delayed(cores: usize) {
    let s = Server::start(cores, &[]);
    let mut c = s.connect();
    for i in 0..50 {
        assert_eq!(c.set(&format!("f{i}"), b"v"), "STORED\r\n");
    }
    assert_eq!(c.call("flush_all\r\n"), "OK\r\n");
    for i in 0..50 {
        assert_eq!(c.get(&format!("f{i}")), None);
    }
    assert_eq!(c.set("later", b"v"), "STORED\r\n");
    assert_eq!(c.call("flush_all 2\r\n"), "OK\r\n");
    assert_eq!(
        c.get("later"),
        Some((0, b"v".to_vec())),
        "delayed flush not yet"
    );
    assert!(
        eventually(Duration::from_secs(6), || c.get("later").is_none()),
        "delayed flush happens"
    );
    c.send(b"flush_all noreply\r\n");
    assert_eq!(
        c.call("flush_all bogus\r\n"),
        "CLIENT_ERROR invalid exptime argument\r\n"
    );
    assert_eq!(c.stats("")["cmd_flush"], "3");
}

fn noreply_suppresses_replies(cores: usize) {
    let s = Server::start(cores, &[]);
    let mut c = s.connect();
    c.send(b"set n 0 0 1 noreply\r\n1\r\nadd n 0 0 1 noreply\r\n2\r\nincr n 5 noreply\r\n");
    c.send(b"append n 0 0 1 noreply\r\n0\r\ndelete zz noreply\r\ntouch n 0 noreply\r\nverbosity 1 noreply\r\n");
    assert_eq!(c.get("n"), Some((0, b"60".to_vec())));
}

fn too_large_and_limits(cores: usize) {
    let s = Server::start(cores, &[]);
    let mut c = s.connect();
    // 1 MiB - 1 KiB stores, 1 MiB does not, and the old value is removed
    let ok = vec![b'a'; 1024 * 1024 - 1024];
    assert_eq!(c.set("big", &ok), "STORED\r\n");
    assert_eq!(c.get("big").map(|v| v.1.len()), Some(ok.len()));
    let too = vec![b'b'; 1024 * 1024];
    assert_eq!(
        c.set("big", &too),
        "SERVER_ERROR object too large for cache\r\n"
    );
    assert_eq!(c.get("big"), None);
    // huge declared length is swallowed without buffering
    c.send(b"set huge 0 0 2000000\r\n");
    c.send(&vec![b'x'; 2_000_000]);
    c.send(b"\r\n");
    assert_eq!(c.line(), "SERVER_ERROR object too large for cache\r\n");
    assert!(c.call("version\r\n").starts_with("VERSION "));
    // bad data chunk
    // 3 bytes read for a 1-byte block; the last two are not CRLF
    assert_eq!(
        c.call("set bad 0 0 1\r\nxyz"),
        "CLIENT_ERROR bad data chunk\r\n"
    );
    // key > 250 bytes
    let long = "k".repeat(251);
    assert_eq!(
        c.call(&format!("get {long}\r\n")),
        "CLIENT_ERROR bad command line format\r\n"
    );
    assert_eq!(c.stats("")["store_too_large"], "2");
}

fn errors_and_misc(cores: usize) {
    let s = Server::start(cores, &[]);
    let mut c = s.connect();
    assert_eq!(c.call("bogus\r\n"), "ERROR\r\n");
    assert_eq!(c.call("GET foo\r\n"), "ERROR\r\n", "X-2 case-sensitive");
    assert_eq!(
        c.call("set x 0 0 -1\r\n"),
        "CLIENT_ERROR bad command line format\r\n"
    );
    assert!(c.call("version\r\n").starts_with("VERSION "));
    assert_eq!(c.call("verbosity 1\r\n"), "OK\r\n");
    assert_eq!(c.call("stats bogus\r\n"), "ERROR\r\n");
    assert_eq!(c.call("stats reset\r\n"), "RESET\r\n");
    assert_eq!(
        c.call("cache_memlimit 4\r\n"),
        "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n"
    );
    assert_eq!(c.call("cache_memlimit 100\r\n"), "OK\r\n");
    assert_eq!(c.stats("")["limit_maxbytes"], (100u64 << 20).to_string());
    assert_eq!(c.call("shutdown\r\n"), "ERROR: shutdown not enabled\r\n");
    let settings = c.stats("settings");
    assert_eq!(settings["item_size_max"], "1048576");
    assert_eq!(settings["num_threads"], cores.to_string());
    assert_eq!(c.call("stats detail on\r\n"), "OK\r\n");
    assert_eq!(c.set("pre:a", b"1"), "STORED\r\n");
    c.get("pre:a");
    c.send(b"stats detail dump\r\n");
    assert_eq!(
        c.until_end(),
        "PREFIX pre get 1 hit 1 set 1 del 0\r\nEND\r\n"
    );
    c.send(b"quit\r\n");
    assert!(c.closed());
}

fn stats_count_like_memcached(cores: usize) {
    let s = Server::start(cores, &[]);
    let mut c = s.connect();
    for i in 0..20 {
        c.set(&format!("s{i}"), b"v");
    }
    for i in 0..30 {
        c.get(&format!("s{i}"));
    }
    let st = c.stats("");
    assert_eq!(st["cmd_set"], "20");
    assert_eq!(st["cmd_get"], "30");
    assert_eq!(st["get_hits"], "20");
    assert_eq!(st["get_misses"], "10");
    assert_eq!(st["curr_items"], "20");
    assert_eq!(st["threads"], cores.to_string());
    for name in [
        "pid",
        "uptime",
        "time",
        "version",
        "rusage_user",
        "curr_connections",
        "total_connections",
        "bytes_read",
        "bytes_written",
        "limit_maxbytes",
        "evictions",
        "bytes",
        "total_items",
    ] {
        assert!(st.contains_key(name), "missing stat {name}");
    }
    assert_eq!(c.call("stats reset\r\n"), "RESET\r\n");
    let st = c.stats("");
    assert_eq!(st["cmd_get"], "0");
    assert_eq!(st["curr_items"], "20", "gauges survive reset");
}

fn line_rules_hang_up(cores: usize) {
    let s = Server::start(cores, &[]);
    // > 2048 bytes without a newline that is not a get → closed
    let mut c = s.connect();
    c.send(&vec![b'x'; 4096]);
    assert!(c.closed());
    // a long multiget line is fine
    let mut c = s.connect();
    let keys: Vec<String> = (0..500).map(|i| format!("longkey_{i:05}")).collect();
    c.send(format!("get {}\r\n", keys.join(" ")).as_bytes());
    assert_eq!(c.line(), "END\r\n");
    // an HTTP request line → closed without a reply
    let mut c = s.connect();
    c.send(b"GET / HTTP/1.1\r\n");
    assert!(c.closed());
    // the server still serves others
    let mut c = s.connect();
    assert!(c.call("version\r\n").starts_with("VERSION"));
}

fn eviction_keeps_memory_bounded(cores: usize) {
    let s = Server::start(cores, &["-m", "8"]);
    let mut c = s.connect();
    let val = vec![b'z'; 1000];
    let mut req = Vec::new();
    for i in 0..30_000 {
        req.extend_from_slice(format!("set ev{i} 0 0 {} noreply\r\n", val.len()).as_bytes());
        req.extend_from_slice(&val);
        req.extend_from_slice(b"\r\n");
    }
    c.stream.write_all(&req).unwrap();
    let st = c.stats("");
    let evictions: u64 = st["evictions"].parse().unwrap();
    let mem: u64 = st["mem_used"].parse().unwrap();
    assert!(evictions > 0, "30 MB into an 8 MB cache must evict");
    assert!(mem <= 8 << 20, "mem_used {mem} within the limit");
    // the newest item survives
    assert_eq!(c.get("ev29999").map(|v| v.1), Some(val));
}

/// A pipeline far larger than one batch or the socket buffers: the server
/// answers in bounded batches while the client keeps writing.
fn huge_pipeline_streams_through(cores: usize) {
    let s = Server::start(cores, &[]);
    let mut c = s.connect();
    assert_eq!(c.set("hp", b"0123456789"), "STORED\r\n");
    const N: usize = 100_000;
    let mut writer = c.stream.try_clone().unwrap();
    let t = std::thread::spawn(move || {
        let chunk = "get hp\r\n".repeat(1000);
        for _ in 0..N / 1000 {
            writer.write_all(chunk.as_bytes()).unwrap();
        }
    });
    let one = "VALUE hp 0 10\r\n0123456789\r\nEND\r\n";
    for i in 0..N {
        let got = c.bytes(one.len());
        assert_eq!(got, one.as_bytes(), "reply {i}");
    }
    t.join().unwrap();
    let rss_kib = common::rss_kb(s.pid());
    assert!(
        rss_kib < 512 * 1024,
        "server RSS {rss_kib} KiB stays bounded"
    );
}

/// Client bytes never take the server down: random garbage (text and
/// binary-looking) on many connections, then a normal client is served.
fn garbage_never_kills_the_server(cores: usize) {
    let s = Server::start(cores, &[]);
    let mut seed = 0x2545_F491_4F6C_DD1Du64 ^ cores as u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..200 {
        let len = (next() % 4096) as usize;
        let mut junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        match i % 4 {
            0 if !junk.is_empty() => junk[0] = 0x80, // binary magic
            1 => junk
                .splice(0..0, b"set k 0 0 ".iter().copied())
                .for_each(drop),
            2 => junk.splice(0..0, b"mg k ".iter().copied()).for_each(drop),
            _ => {}
        }
        let mut c = std::net::TcpStream::connect(s.addr).unwrap();
        let _ = c.write_all(&junk);
        let _ = c.shutdown(std::net::Shutdown::Write);
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut c, &mut sink);
    }
    let mut c = s.connect();
    assert_eq!(c.set("alive", b"yes"), "STORED\r\n");
    assert_eq!(c.get("alive"), Some((0, b"yes".to_vec())));
}

fn stats_conns_lists_clients(cores: usize) {
    let s = Server::start(cores, &[]);
    let mut a = s.connect();
    let mut b = s.connect();
    // A round trip first: connect() returns once the kernel finished the
    // handshake, which can be before the server accepted and listed it.
    assert_eq!(b.set("listed", b"1"), "STORED\r\n");
    let b_addr = format!("tcp:{}", b.stream.local_addr().unwrap());
    // And poll (bounded) for the line all the same: `a` asks on its own
    // core, and a loaded machine must not turn any ordering between the two
    // cores into a red run. What it must show is the line, within 5 s.
    let mut conns = Default::default();
    let listed = eventually(Duration::from_secs(5), || {
        conns = a.stats("conns");
        conns.values().any(|v| *v == b_addr)
    });
    assert!(listed, "the other client is listed: {conns:?}");
    let entry = conns
        .iter()
        .find(|(k, v)| k.ends_with(":addr") && **v == b_addr)
        .map(|(k, _)| k.trim_end_matches(":addr").to_string())
        .unwrap();
    assert_eq!(
        conns[&format!("{entry}:listen_addr")],
        format!("tcp:{}", s.addr)
    );
    // The server marks the connection waiting after it sent the reply, so
    // on another core the flag may still be in flight: poll for it.
    let state_key = format!("{entry}:state");
    assert!(
        eventually(Duration::from_secs(5), || a
            .stats("conns")
            .get(&state_key)
            .is_some_and(|v| v == "conn_waiting")),
        "the idle client shows as conn_waiting"
    );
    assert!(conns.contains_key(&format!("{entry}:secs_since_last_cmd")));
    drop(b);
    assert!(eventually(Duration::from_secs(5), || !a
        .stats("conns")
        .values()
        .any(|v| *v == b_addr)));
}

at_1_and_2_cores! {
    garbage => garbage_never_kills_the_server;
    huge_pipeline => huge_pipeline_streams_through;
    stats_conns => stats_conns_lists_clients;
    set_get => set_get_roundtrip;
    multiget => multiget_spans_cores_in_order;
    pipelining => pipelined_requests_answer_in_order;
    storage_modes => add_replace_append_prepend;
    cas => gets_and_cas;
    arith => incr_decr;
    delete_touch => delete_touch_gat;
    expiry => expiry_relative_and_negative;
    flush => flush_all_now_and_delayed;
    noreply => noreply_suppresses_replies;
    limits => too_large_and_limits;
    errors => errors_and_misc;
    stats => stats_count_like_memcached;
    hangups => line_rules_hang_up;
    eviction => eviction_keeps_memory_bounded;
}

#[test]
fn connection_limit_rejects_with_memcached_error() {
    //
    let s = Server::start(1, &["-c", "2"]);
    let mut a = s.connect();
    let mut b = s.connect();
    assert!(a.call("version\r\n").starts_with("VERSION"));
    assert!(b.call("version\r\n").starts_with("VERSION"));
    let mut c = s.connect();
    assert_eq!(c.line(), "ERROR Too many open connections\r\n");
    assert!(c.closed());
    drop(a);
    // a slot frees up once a client leaves
    assert!(eventually(Duration::from_secs(5), || {
        let mut d = s.connect();
        d.send(b"version\r\n");
        d.line().starts_with("VERSION")
    }));
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let s = Server::start(2, &[]);
    let mut c = s.connect();
    assert_eq!(c.set("x", b"y"), "STORED\r\n");
    assert!(s.terminate(), "exit status 0 after SIGTERM");
}

#[test]
fn second_instance_on_same_port_fails() {
    let s = Server::start(1, &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["-p", &s.addr.port().to_string(), "-t", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already in use"));
}
