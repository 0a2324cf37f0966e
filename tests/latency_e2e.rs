//! Latency histograms end to end: requests on data connections show up,
//! counted exactly per command class, in the admin endpoint's merged
//! percentiles, for the whole server and for the cache that sent them.

mod common;
use common::{eventually, Server};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// `GET path` on the admin endpoint with the operator token.
fn get(s: &Server, path: &str) -> (u16, Value) {
    let token = std::fs::read_to_string(s.data_dir.as_ref().unwrap().join("operator.token"))
        .expect("operator token");
    let addr: SocketAddr = s.admin.unwrap();
    let mut c = TcpStream::connect(addr).expect("connect admin");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\r\n",
        token.trim()
    );
    c.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    c.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("http response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Creates a cache and returns (id, username, password).
fn create(s: &Server, name: &str) -> (u32, String, String) {
    let out = s
        .ctl(&["cache", "create", "--name", name, "--memory", "8MB"])
        .unwrap();
    let val = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in {out}"))
            .to_string()
    };
    let id = val("Created cache ")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (id, val("MEMCACHIER_USERNAME="), val("MEMCACHIER_PASSWORD="))
}

fn count(v: &Value, class: &str) -> u64 {
    v["latency"][class]["count"].as_u64().unwrap_or(0)
}

fn latency_is_served_per_class_and_cache(cores: usize) {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_mt(cores, dir.path(), &[]);
    let (busy, user, pass) = create(&s, "busy");
    let (quiet, _, _) = create(&s, "quiet");

    // An auth attempt looks for the newest snapshot, so a cache created a
    // moment ago is usable at once, on either core.
    let mut c = s.connect();
    let auth = format!("set {user} 0 0 {}\r\n{pass}\r\n", pass.len());
    assert_eq!(c.call(&auth), "STORED\r\n");
    for i in 0..40 {
        assert_eq!(c.set(&format!("k{i}"), b"v"), "STORED\r\n");
    }
    for i in 0..60 {
        assert!(c.get(&format!("k{}", i % 40)).is_some());
    }
    for i in 0..5 {
        assert_eq!(c.call(&format!("delete k{i}\r\n")), "DELETED\r\n");
    }
    assert_eq!(c.call("incr nope 1\r\n"), "NOT_FOUND\r\n");
    assert_eq!(c.call("touch k9 100\r\n"), "TOUCHED\r\n");
    // Pipelined noreply sets count too, though nothing is written back.
    c.send(b"set a 0 0 1 noreply\r\nx\r\nset b 0 0 1 noreply\r\ny\r\n");
    assert_eq!(c.call("version\r\n").split(' ').next(), Some("VERSION"));

    // Cores push their histograms every second: poll for the totals.
    let want = [
        ("get", 60),
        ("set", 42),
        ("delete", 5),
        ("incr_decr", 1),
        ("touch", 1),
        // `version`, and the auth `set` (before authentication every
        // request is `other`).
        ("other", 2),
    ];
    let mut last = Value::Null;
    let settled = eventually(Duration::from_secs(10), || {
        let (status, v) = get(&s, &format!("/admin/v1/caches/{busy}/latency"));
        assert_eq!(status, 200);
        last = v;
        want.iter().all(|(class, n)| count(&last, class) == *n)
    });
    assert!(settled, "per-cache counts never matched {want:?}: {last}");
    assert_eq!(last["unit"], "us");
    for (class, _) in want {
        let p = &last["latency"][class];
        let q = |k: &str| p[k].as_u64().unwrap();
        assert!(q("p50") >= 1, "{class}: {p}");
        assert!(
            q("p50") <= q("p90") && q("p90") <= q("p99") && q("p99") <= q("p999"),
            "{class}: {p}"
        );
        assert!(q("p999") <= q("max") + q("max") / 16, "{class}: {p}");
    }
    assert!(last["latency"].get("flush").is_none(), "no flush was sent");

    // The server-wide view holds at least this cache's requests (the auth
    // `set`s of the probing connections count there too).
    let (_, server) = get(&s, "/admin/v1/latency");
    assert_eq!(count(&server, "get"), 60);
    assert!(count(&server, "set") >= 42);

    // Another cache saw nothing; an unknown one is 404.
    let (status, q) = get(&s, &format!("/admin/v1/caches/{quiet}/latency"));
    assert_eq!(status, 200);
    assert_eq!(q["latency"], serde_json::json!({}));
    assert_eq!(get(&s, "/admin/v1/caches/999/latency").0, 404);

    // The status page grades the node from the same histograms (the first
    // ten seconds: everything since startup).
    let (status, page) = get(&s, "/status");
    assert_eq!(status, 200);
    assert!(
        ["green", "yellow", "red"].contains(&page["status"].as_str().unwrap()),
        "{page}"
    );
    assert!(page["requests"].as_u64().unwrap() >= 102, "{page}");
    let p99 = page["p99_us"].as_u64().unwrap();
    let expected = if p99 < 1_000 {
        "green"
    } else if p99 < 10_000 {
        "yellow"
    } else {
        "red"
    };
    assert_eq!(page["status"], expected, "{page}");
}

at_1_and_2_cores! {
    latency_per_class_and_cache => latency_is_served_per_class_and_cache;
}
