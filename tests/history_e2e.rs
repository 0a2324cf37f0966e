//! Stats history end to end: counters sampled on the interval become
//! MemCachier processed stats at 1-minute granularity, and survive a
//! restart. Needs two minute buckets, so it waits for the minute to change
//! (at most about a minute).

mod common;
use common::{eventually, Server};
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn get(s: &Server, path: &str, user: &str, pass: &str) -> (u16, Value) {
    s.api_v2("GET", path, Some((user, pass)), None)
}

fn minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
}

#[test]
fn processed_stats_from_sampled_history_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let interval = ["--stats-interval", "0.2"];
    let s = Server::start_mt(2, dir.path(), &interval);
    let out = s
        .ctl(&["cache", "create", "--name", "h", "--memory", "8MB"])
        .unwrap();
    let val = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap()
            .to_string()
    };
    let (user, pass) = (val("MEMCACHIER_USERNAME="), val("MEMCACHIER_PASSWORD="));
    let id: u32 = val("Created cache ")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let path =
        format!("/caches/{id}/insight/processed_stats?names=get_rate,hit_rate,items,max_bytes");

    // Errors first: names is required and must be known.
    let base = format!("/caches/{id}/insight/processed_stats");
    assert_eq!(get(&s, &base, &user, &pass).0, 400);
    assert_eq!(get(&s, &format!("{base}?names=nope"), &user, &pass).0, 400);
    assert_eq!(
        get(
            &s,
            &format!("{base}?names=items&startTime=garbage"),
            &user,
            &pass
        )
        .0,
        400
    );

    // One minute bucket with 4 hits and 2 misses, the next with more.
    let mut c = s.connect();
    let auth = format!("set {user} 0 0 {}\r\n{pass}\r\n", pass.len());
    assert_eq!(c.call(&auth), "STORED\r\n");
    let start_minute = minute();
    for k in ["a", "b"] {
        assert_eq!(c.set(k, b"1"), "STORED\r\n");
    }
    for k in ["a", "b", "a", "b", "x", "y"] {
        c.get(k);
    }
    assert!(
        eventually(Duration::from_secs(75), || minute() > start_minute),
        "the minute never changed"
    );
    // Keep the counters moving: an unchanged sample adds no point, and the
    // server's minute may turn a moment after ours.
    let mut last = Value::Null;
    let ok = eventually(Duration::from_secs(20), || {
        c.get("a");
        let (status, v) = get(&s, &path, &user, &pass);
        assert_eq!(status, 200, "{v}");
        last = v;
        // The newest row covers the last interval: it shows these gets
        // once a sample after them has been taken.
        last[0]["values"]
            .as_array()
            .and_then(|r| r.last())
            .is_some_and(|row| row[1].as_f64().is_some_and(|g| g > 0.0))
    });
    assert!(ok, "no processed rows with gets: {last}");
    assert_eq!(last[0]["name"], "processed_stats");
    assert_eq!(
        last[0]["columns"],
        serde_json::json!(["time", "get_rate", "hit_rate", "items", "max_bytes"])
    );
    let row = last[0]["values"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(row[0].as_str().unwrap().ends_with('Z'), "{row}");
    assert!(row[1].as_f64().unwrap() > 0.0, "gets happened: {row}");
    assert!(row[2].as_f64().unwrap() > 0.0, "some hit: {row}");
    assert_eq!(row[3].as_f64().unwrap(), 2.0, "{row}");
    assert_eq!(row[4].as_f64().unwrap(), (8u64 << 20) as f64, "{row}");

    // per_server carries the server tag.
    let (status, ps) = get(
        &s,
        &format!("/caches/{id}/insight/processed_stats/per_server?names=items"),
        &user,
        &pass,
    );
    assert_eq!(status, 200);
    assert_eq!(ps[0]["tags"]["server"], s.addr.to_string());

    // A clean restart keeps the history.
    drop(c);
    assert!(s.terminate(), "clean exit");
    let s = Server::start_mt(2, dir.path(), &interval);
    let (status, again) = get(&s, &path, &user, &pass);
    assert_eq!(status, 200);
    assert!(
        again[0]["values"].as_array().is_some_and(|r| !r.is_empty()),
        "history lost over a restart: {again}"
    );
}
