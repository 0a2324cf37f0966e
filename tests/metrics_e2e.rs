//! `GET /metrics` on the admin endpoint against `stats` on a data connection,
//! and the `stats` names prometheus/memcached_exporter reads.

mod common;

use common::{eventually, Client, Server};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// `GET path` over HTTP/1.1: (status line, headers+body).
fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("connect admin");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read response");
    let (head, body) = resp.split_once("\r\n\r\n").expect("http response");
    (head.to_string(), body.to_string())
}

/// Samples of a text-format scrape: `name{labels}` → value.
fn scrape(admin: SocketAddr) -> HashMap<String, f64> {
    let (head, body) = http_get(admin, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').expect("sample line");
            let v = match v {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {l:?}")),
            };
            (k.to_string(), v)
        })
        .collect()
}

fn get(m: &HashMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("no sample {key} in {:?}", similar(m, key)))
}

/// The samples of `key`'s family, for a failure message.
fn similar<'a>(m: &'a HashMap<String, f64>, key: &str) -> Vec<&'a String> {
    let name = key.split('{').next().unwrap_or(key);
    let mut k: Vec<_> = m.keys().filter(|k| k.starts_with(name)).collect();
    k.sort();
    k
}

fn stat(s: &HashMap<String, String>, name: &str) -> f64 {
    s.get(name)
        .unwrap_or_else(|| panic!("no stat {name}"))
        .parse()
        .unwrap()
}

/// Creates a cache and returns (id, username, password).
fn create_cache(server: &Server, name: &str) -> (String, String, String) {
    let out = server
        .ctl(&["cache", "create", "--name", name, "--memory", "8MB"])
        .expect("cache create");
    let field = |prefix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {out}"))
            .trim()
            .to_string()
    };
    let id = out
        .split_whitespace()
        .skip_while(|w| *w != "cache")
        .nth(1)
        .map(|w| w.trim_end_matches(['.', ',']).to_string())
        .unwrap_or_else(|| panic!("no cache id in {out}"));
    (
        id,
        field("MEMCACHIER_USERNAME="),
        field("MEMCACHIER_PASSWORD="),
    )
}

fn login(server: &Server, user: &str, pass: &str) -> Client {
    let mut c = server.connect();
    let req = format!("set {user} 0 0 {}\r\n{pass}\r\n", pass.len());
    assert_eq!(c.call(&req), "STORED\r\n", "ascii auth");
    c
}

#[test]
fn metrics_agree_with_stats_per_cache_and_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_mt(2, dir.path(), &["-m", "100"]);
    let admin = server.admin.unwrap();
    let (id, user, pass) = create_cache(&server, "metrics");
    let (other, user2, pass2) = create_cache(&server, "other");
    let mut c = login(&server, &user, &pass);

    // Traffic of every kind the exporter reports.
    let mut gets = 0;
    for i in 0..20 {
        assert_eq!(c.set(&format!("k{i}"), b"value"), "STORED\r\n");
    }
    for i in 0..30 {
        c.get(&format!("k{i}")); // 20 hits, 10 misses
        gets += 1;
    }
    assert_eq!(c.call("delete k0\r\n"), "DELETED\r\n");
    assert_eq!(c.call("delete nope\r\n"), "NOT_FOUND\r\n");
    assert_eq!(c.set("n", b"1"), "STORED\r\n");
    assert_eq!(c.call("incr n 5\r\n"), "6\r\n");
    assert_eq!(c.call("decr n 2\r\n"), "4\r\n");
    assert_eq!(c.call("incr nope 1\r\n"), "NOT_FOUND\r\n");
    assert_eq!(c.call("touch k1 100\r\n"), "TOUCHED\r\n");
    assert_eq!(c.call("touch nope 100\r\n"), "NOT_FOUND\r\n");
    assert_eq!(c.call("cas k1 0 0 1 987654321\r\nx\r\n"), "EXISTS\r\n");
    assert_eq!(c.call("cas nope 0 0 1 1\r\nx\r\n"), "NOT_FOUND\r\n");

    // The other cache's traffic must not show in this cache's series.
    let mut c2 = login(&server, &user2, &pass2);
    assert_eq!(c2.set("x", b"y"), "STORED\r\n");
    assert!(c2.get("x").is_some());

    let st = c.stats("");
    let m = scrape(admin);
    let cache = |name: &str, extra: &str| {
        if extra.is_empty() {
            format!("{name}{{cache=\"{id}\"}}")
        } else {
            format!("{name}{{cache=\"{id}\",{extra}}}")
        }
    };
    let cmd = |command: &str, status: &str| {
        cache(
            "memcached_commands_total",
            &format!("command=\"{command}\",status=\"{status}\""),
        )
    };
    for (command, status, stat_name) in [
        ("get", "hit", "get_hits"),
        ("get", "miss", "get_misses"),
        ("delete", "hit", "delete_hits"),
        ("delete", "miss", "delete_misses"),
        ("incr", "hit", "incr_hits"),
        ("incr", "miss", "incr_misses"),
        ("decr", "hit", "decr_hits"),
        ("decr", "miss", "decr_misses"),
        ("cas", "hit", "cas_hits"),
        ("cas", "miss", "cas_misses"),
        ("cas", "badval", "cas_badval"),
        ("touch", "hit", "touch_hits"),
        ("touch", "miss", "touch_misses"),
        ("flush", "hit", "cmd_flush"),
    ] {
        assert_eq!(
            get(&m, &cmd(command, status)),
            stat(&st, stat_name),
            "{command}/{status} vs {stat_name}"
        );
    }
    assert_eq!(get(&m, &cmd("get", "hit")), 20.0);
    assert_eq!(get(&m, &cmd("get", "miss")), 10.0);
    let cas = stat(&st, "cas_hits") + stat(&st, "cas_misses") + stat(&st, "cas_badval");
    assert_eq!(get(&m, &cmd("set", "hit")), stat(&st, "cmd_set") - cas);
    for (metric, stat_name) in [
        ("memcached_current_items", "curr_items"),
        ("memcached_items_total", "total_items"),
        ("memcached_current_bytes", "bytes"),
        ("memcached_limit_bytes", "limit_maxbytes"),
        ("memcached_items_evicted_total", "evictions"),
        ("memcached_items_reclaimed_total", "reclaimed"),
        ("memcached_item_too_large_total", "store_too_large"),
        ("memcached_item_no_memory_total", "store_no_memory"),
        ("memcached_direct_reclaims_total", "direct_reclaims"),
        ("memcached_current_connections", "curr_connections"),
        ("memcached_connections_total", "total_connections"),
        (
            "memcached_connections_rejected_total",
            "rejected_connections",
        ),
        ("memcached_connections_yielded_total", "conn_yields"),
    ] {
        assert_eq!(
            get(&m, &cache(metric, "")),
            stat(&st, stat_name),
            "{metric}"
        );
    }
    assert_eq!(
        get(&m, &cache("memcached_limit_bytes", "")),
        8.0 * 1024.0 * 1024.0
    );
    assert_eq!(get(&m, &cache("memcached_current_items", "")), 20.0); // 19 k* + n
                                                                      // Byte counters move with every request (the stats call included), so
                                                                      // they only have to be there and be plausible.
    assert!(get(&m, &cache("memcached_read_bytes_total", "")) > 0.0);
    assert!(get(&m, &cache("memcached_written_bytes_total", "")) >= stat(&st, "bytes_written"));
    let slabs = c.stats("slabs");
    assert_eq!(
        get(&m, &cache("memcached_malloced_bytes", "")),
        stat(&slabs, "total_malloced")
    );

    // The other cache has its own series; the server's are the sums.
    let other_hits =
        format!("memcached_commands_total{{cache=\"{other}\",command=\"get\",status=\"hit\"}}");
    assert_eq!(get(&m, &other_hits), 1.0);
    assert_eq!(
        get(
            &m,
            "memcached_commands_total{command=\"get\",status=\"hit\"}"
        ),
        21.0
    );
    assert_eq!(get(&m, "memcached_current_items"), 21.0);
    assert_eq!(get(&m, "memcached_limit_bytes"), 100.0 * 1024.0 * 1024.0); // -m

    // Connections: the server counts every accepted one (two logged in, plus
    // the admin-free scrape does not count), not twice.
    assert!(get(&m, "memcached_current_connections") >= 2.0);
    assert!(get(&m, "memcached_current_connections") < 4.0);
    assert_eq!(get(&m, "memcached_up"), 1.0);
    assert_eq!(get(&m, "memcached_accepting_conns"), 1.0);
    // The memcached version every protocol answers; shoal's own apart.
    assert!(m.contains_key(&format!(
        "memcached_version{{version=\"{}\"}}",
        shoal::protocol::MEMCACHED_VERSION
    )));
    assert!(m.contains_key(&format!(
        "shoal_version{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    )));
    for k in m.keys() {
        assert!(!k.contains("_total_total"), "double suffix: {k}");
    }

    // Latency: the cores push their histograms each second.
    let count_key = cache("shoal_request_duration_seconds_count", "class=\"get\"");
    let mut last = None;
    let ok = eventually(Duration::from_secs(10), || {
        let m = scrape(admin);
        last = m.get(&count_key).copied();
        last == Some(gets as f64)
    });
    assert!(ok, "get histogram count {last:?}, want {gets}");
    let m = scrape(admin);
    let inf = cache(
        "shoal_request_duration_seconds_bucket",
        "class=\"get\",le=\"+Inf\"",
    );
    assert_eq!(get(&m, &inf), gets as f64);
    // Buckets are cumulative.
    let mut prev = 0.0;
    for le in [
        "1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
        "0.01", "0.025", "0.05", "0.1", "+Inf",
    ] {
        let key = cache(
            "shoal_request_duration_seconds_bucket",
            &format!("class=\"get\",le=\"{le}\""),
        );
        let v = get(&m, &key);
        assert!(v >= prev, "{key}: {v} < {prev}");
        prev = v;
    }
    let sum = get(
        &m,
        &cache("shoal_request_duration_seconds_sum", "class=\"get\""),
    );
    assert!(sum > 0.0 && sum < 60.0, "sum {sum}");
    // The server-wide histogram counts both caches' gets.
    let server_count = "shoal_request_duration_seconds_count{class=\"get\"}";
    assert!(
        eventually(Duration::from_secs(10), || {
            scrape(admin)
                .get(server_count)
                .is_some_and(|v| *v == gets as f64 + 1.0)
        }),
        "server-wide get count"
    );

    // A deleted cache's series go away.
    server.ctl(&["cache", "delete", &other]).expect("delete");
    let m = scrape(admin);
    assert!(!m.contains_key(&other_hits));
}

/// Every `stats` name prometheus/memcached_exporter reads for the metrics
/// above must be there (a missing one silently drops its metric).
#[test]
fn stats_carry_every_name_the_exporter_reads() {
    let server = Server::start(1, &[]);
    let mut c = server.connect();
    let general = c.stats("");
    let missing: Vec<_> = [
        "uptime",
        "time",
        "version",
        "rusage_user",
        "rusage_system",
        "bytes_read",
        "bytes_written",
        "curr_connections",
        "total_connections",
        "rejected_connections",
        "conn_yields",
        "listen_disabled_num",
        "accepting_conns",
        "bytes",
        "limit_maxbytes",
        "cmd_set",
        "cmd_flush",
        "get_hits",
        "get_misses",
        "delete_hits",
        "delete_misses",
        "incr_hits",
        "incr_misses",
        "decr_hits",
        "decr_misses",
        "cas_hits",
        "cas_misses",
        "cas_badval",
        "touch_hits",
        "touch_misses",
        "curr_items",
        "total_items",
        "evictions",
        "reclaimed",
        "store_too_large",
        "store_no_memory",
        "direct_reclaims",
    ]
    .into_iter()
    .filter(|n| !general.contains_key(*n))
    .collect();
    assert!(missing.is_empty(), "`stats` lacks {missing:?}");
    // rusage_* are timevals ("sec.usec"), the rest numbers.
    for (name, v) in &general {
        if name == "version" || name == "shoal_version" || name == "libevent" {
            continue;
        }
        assert!(v.parse::<f64>().is_ok(), "{name} {v:?} is not a number");
    }
    assert!(c.stats("settings").contains_key("maxconns"));
    assert!(c.stats("slabs").contains_key("total_malloced"));
}
