//! Issue 12, item 7: a cache's plan carries a connection limit. The
//! connection that would go over it is told `ERROR Too many open
//! connections` (binary: an auth error saying so) right after it
//! authenticates, and closed; the cache's stats show the limit and the
//! refusals; the limit is set by the CLI and the admin API and survives a
//! restart.

mod common;

use common::{eventually, line_value, Client, Cred, Server};
use std::collections::HashMap;
use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

const TOO_MANY: &str = "ERROR Too many open connections\r\n";

fn stat(m: &HashMap<String, String>, name: &str) -> u64 {
    m.get(name)
        .unwrap_or_else(|| panic!("no stat {name} in {m:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("stat {name} is not a number"))
}

/// `shoal cache create` with extra flags: the cache and its credential.
fn create(s: &Server, name: &str, extra: &[&str]) -> (Cred, String) {
    let mut args = vec!["cache", "create", "--name", name, "--memory", "16MB"];
    args.extend_from_slice(extra);
    let out = s.ctl(&args).unwrap();
    let cache = line_value(&out, "Created cache ")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let cred = Cred {
        cache,
        user: line_value(&out, "MEMCACHIER_USERNAME="),
        pass: line_value(&out, "MEMCACHIER_PASSWORD="),
    };
    (cred, out)
}

/// An ASCII login attempt: the server's first answer.
fn try_login(s: &Server, cred: &Cred) -> (Client, String) {
    let mut c = s.connect();
    let pass = &cred.pass;
    let line = c.call(&format!(
        "set {} 0 0 {}\r\n{pass}\r\n",
        cred.user,
        pass.len()
    ));
    (c, line)
}

/// Waits until the cache counts `n` logged-in connections.
fn wait_for_connections(probe: &mut Client, n: u64) {
    assert!(
        eventually(Duration::from_secs(10), || stat(
            &probe.stats(""),
            "curr_connections"
        ) == n),
        "curr_connections never reached {n}: {:?}",
        probe.stats("")
    );
}

fn limit_caps_logins_at(cores: usize) {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_mt(cores, dir.path(), &[]);
    let (cred, out) = create(&s, "web", &["--connections", "3"]);
    assert!(out.contains("at most 3 connections"), "{out}");
    let mut conns: Vec<Client> = (0..3).map(|_| s.login(&cred.user, &cred.pass)).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        let key = format!("k{i}");
        assert_eq!(c.set(&key, b"v"), "STORED\r\n");
        assert_eq!(c.get(&key), Some((0, b"v".to_vec())));
    }
    // The fourth authenticates, is told, and is closed.
    let (mut fourth, line) = try_login(&s, &cred);
    assert_eq!(line, TOO_MANY);
    fourth.eof_within(Duration::from_secs(5)).unwrap();
    // The three still work; the stats show the limit and the refusal.
    let st = conns[0].stats("");
    assert_eq!(stat(&st, "max_connections"), 3);
    assert_eq!(stat(&st, "rejected_connections"), 1);
    assert_eq!(stat(&st, "curr_connections"), 3);
    assert_eq!(stat(&conns[0].stats("settings"), "maxconns"), 3);
    assert_eq!(conns[2].get("k0"), Some((0, b"v".to_vec())));
    // One leaves: a new one gets its seat.
    drop(conns.pop());
    wait_for_connections(&mut conns[0], 2);
    let mut again = s.login(&cred.user, &cred.pass);
    assert_eq!(again.get("k1"), Some((0, b"v".to_vec())));
    let (mut fifth, line) = try_login(&s, &cred);
    assert_eq!(line, TOO_MANY);
    fifth.eof_within(Duration::from_secs(5)).unwrap();
    assert_eq!(stat(&again.stats(""), "rejected_connections"), 2);
    // Another cache is not limited by this one's connections.
    let (other, _) = create(&s, "other", &[]);
    let mut o: Vec<Client> = (0..5).map(|_| s.login(&other.user, &other.pass)).collect();
    let st = o[0].stats("");
    assert_eq!(stat(&st, "rejected_connections"), 0);
    assert_eq!(
        stat(&st, "max_connections"),
        1024,
        "no limit: the server's -c"
    );
    // A wrong password at the limit is an ordinary auth failure.
    let (_c, line) = try_login(
        &s,
        &Cred {
            cache: cred.cache,
            user: cred.user.clone(),
            pass: "wrong".into(),
        },
    );
    assert_ne!(line, TOO_MANY);
    // The API v2 stats and info report them too.
    let (code, v) = s.api_v2(
        "GET",
        &format!("/caches/{}/stats", cred.cache),
        cred.basic(),
        None,
    );
    assert_eq!(code, 200, "{v}");
    let v = v.as_object().unwrap().values().next().unwrap().clone();
    assert_eq!(v["max_connections"], 3);
    assert_eq!(v["rejected_connections"], 2);
    let (code, v) = s.api_v2(
        "GET",
        &format!("/caches/{}/info", cred.cache),
        cred.basic(),
        None,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["max_connections"], 3);
    o.clear();
}

/// The binary protocol: SASL PLAIN AUTH over the limit gets an auth error
/// carrying the reason, then the connection is closed.
fn binary_auth(s: &Server, cred: &Cred) -> (TcpStream, u16, Vec<u8>) {
    common::sasl_plain(s.addr, &cred.user, &cred.pass)
}

fn binary_over_the_limit_at(cores: usize) {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_mt(cores, dir.path(), &[]);
    let (cred, _) = create(&s, "bin", &["--connections", "1"]);
    let (_first, status, body) = binary_auth(&s, &cred);
    assert_eq!((status, body.as_slice()), (0, &b"Authenticated"[..]));
    let (mut second, status, body) = binary_auth(&s, &cred);
    assert_eq!(
        (status, body.as_slice()),
        (0x20, &b"Too many open connections"[..])
    );
    let mut buf = [0u8; 16];
    assert!(matches!(second.read(&mut buf), Ok(0) | Err(_)), "closed");
    // An ASCII one is refused too: the count is the cache's, whatever the wire.
    let (mut c, line) = try_login(&s, &cred);
    assert_eq!(line, TOO_MANY);
    c.eof_within(Duration::from_secs(5)).unwrap();
}

fn set_by_api_and_cli_and_kept_at(cores: usize) {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_mt(cores, dir.path(), &[]);
    let (cred, out) = create(&s, "web", &[]);
    assert!(out.contains("no connection limit"), "{out}");
    let id = cred.cache;
    // The API: create with a limit, change it, refuse nonsense.
    let (code, v) = s.operator(
        "POST",
        "/caches",
        Some(r#"{"name":"api","memory":"8MB","connections":7}"#),
    );
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["cache"]["max_connections"], 7);
    let (code, v) = s.operator(
        "PATCH",
        &format!("/caches/{id}"),
        Some(r#"{"connections":2}"#),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["cache"]["max_connections"], 2);
    for bad in [r#"{"connections":-1}"#, r#"{"connections":"many"}"#] {
        let (code, v) = s.operator("PATCH", &format!("/caches/{id}"), Some(bad));
        assert_eq!(code, 400, "{bad}: {v}");
    }
    let (code, v) = s.operator("GET", &format!("/caches/{id}"), None);
    assert_eq!((code, &v["cache"]["max_connections"]), (200, &2.into()));
    // The CLI: set it, see it.
    let out = s
        .ctl(&[
            "cache",
            "set",
            "--id",
            &id.to_string(),
            "--connections",
            "1",
        ])
        .unwrap();
    assert!(out.contains("at most 1 connection"), "{out}");
    let list = s.ctl(&["cache", "list"]).unwrap();
    assert!(list.contains("CONNS"), "{list}");
    let mut first = s.login(&cred.user, &cred.pass);
    assert_eq!(try_login(&s, &cred).1, TOO_MANY);
    assert_eq!(first.set("k", b"v"), "STORED\r\n");
    assert!(s.terminate());
    // After a restart the limit is still 1.
    let s = Server::start_mt(cores, dir.path(), &[]);
    let show = s.ctl(&["cache", "show", &id.to_string()]).unwrap();
    assert!(show.contains("at most 1 connection"), "{show}");
    let mut first = s.login(&cred.user, &cred.pass);
    assert_eq!(stat(&first.stats(""), "max_connections"), 1);
    let (mut c, line) = try_login(&s, &cred);
    assert_eq!(line, TOO_MANY);
    c.eof_within(Duration::from_secs(5)).unwrap();
    // 0 lifts it.
    s.ctl(&[
        "cache",
        "set",
        "--id",
        &id.to_string(),
        "--connections",
        "0",
    ])
    .unwrap();
    let _second = s.login(&cred.user, &cred.pass);
    assert_eq!(stat(&first.stats(""), "rejected_connections"), 1);
}

/// The control file keeps the limit; a file from before the field loads
/// with no limit.
#[test]
fn control_file_keeps_the_limit_and_old_files_load() {
    use shoal::tenancy::ControlStore;
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let mut store = ControlStore::open(dir.path()).unwrap();
        let (c, _) = store.create_cache("a", 1 << 20).unwrap();
        assert_eq!(c.max_connections, 0);
        assert_eq!(
            store.set_max_connections(c.id, 9).unwrap().max_connections,
            9
        );
        assert!(matches!(
            store.set_max_connections(c.id + 1, 9),
            Err(shoal::tenancy::ControlError::NotFound)
        ));
        c.id
    };
    let store = ControlStore::open(dir.path()).unwrap();
    assert_eq!(store.cache(id).unwrap().max_connections, 9);
    assert_eq!(store.registry().cache(id).unwrap().max_connections, 9);
    drop(store);
    // Strip the field, as a file written before it existed.
    let file = dir.path().join(shoal::tenancy::CONTROL_FILE);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    v["caches"][0]
        .as_object_mut()
        .unwrap()
        .remove("max_connections")
        .unwrap();
    std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
    let store = ControlStore::open(dir.path()).unwrap();
    assert_eq!(store.cache(id).unwrap().max_connections, 0);
}

at_1_and_2_cores! {
    limit_caps_logins => limit_caps_logins_at;
    binary_over_the_limit => binary_over_the_limit_at;
    set_by_api_and_cli_and_kept => set_by_api_and_cli_and_kept_at;
}
