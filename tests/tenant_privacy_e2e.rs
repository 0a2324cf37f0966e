//! What a tenant's connection may learn about, or change in, the server:
//! `stats` keeps memcached's fields but not the server's pid or CPU time,
//! and `verbosity` does not change the server-wide setting. Open mode keeps
//! memcached's behaviour.

mod common;
use common::Server;

#[test]
fn tenant_stats_hide_the_server_pid_and_rusage() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_mt(2, dir.path(), &[]);
    let t = s.create_cache("private", "8MB");
    let mut c = s.login(&t.user, &t.pass);
    let stats = c.stats("");
    // The fields clients parse are there, as numbers...
    for f in [
        "pid",
        "rusage_user",
        "rusage_system",
        "uptime",
        "curr_items",
    ] {
        assert!(stats.contains_key(f), "no {f} in {stats:?}");
    }
    // ...but say nothing about the process.
    assert_eq!(stats["pid"], "0");
    assert_ne!(stats["pid"], s.pid().to_string());
    assert_eq!(stats["rusage_user"], "0.000000");
    assert_eq!(stats["rusage_system"], "0.000000");
    assert_eq!(stats["version"], "1.6.18");
}

#[test]
fn open_mode_stats_keep_the_pid() {
    let s = Server::start(1, &[]);
    let stats = s.connect().stats("");
    assert_eq!(stats["pid"], s.pid().to_string());
    assert!(stats["rusage_user"].contains('.'), "{stats:?}");
}

#[test]
fn tenant_verbosity_does_not_leak() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_mt(1, dir.path(), &[]);
    let a = s.create_cache("a", "8MB");
    let b = s.create_cache("b", "8MB");
    let mut ca = s.login(&a.user, &a.pass);
    let mut cb = s.login(&b.user, &b.pass);
    assert_eq!(cb.stats("settings")["verbosity"], "0");
    // memcached's answer, and nothing changes for anyone.
    assert_eq!(ca.call("verbosity 2\r\n"), "OK\r\n");
    ca.send(b"verbosity 1 noreply\r\n");
    assert_eq!(cb.stats("settings")["verbosity"], "0");
    assert_eq!(ca.stats("settings")["verbosity"], "0");
}

#[test]
fn open_mode_verbosity_is_server_wide() {
    let s = Server::start(1, &[]);
    let mut a = s.connect();
    let mut b = s.connect();
    assert_eq!(a.call("verbosity 2\r\n"), "OK\r\n");
    assert_eq!(b.stats("settings")["verbosity"], "2");
    assert_eq!(a.call("verbosity 0\r\n"), "OK\r\n");
}

/// One SASL PLAIN AUTH as `user`/`pass`: the reply status.
fn sasl_plain(s: &Server, user: &str, pass: &str) -> u16 {
    common::sasl_plain(s.addr, user, pass).1
}

/// auth_cmds and auth_errors count in the stats of the cache whose
/// credential a login named (ASCII in both forms, and SASL PLAIN), whether
/// it succeeded or not; another cache's stats do not see them.
fn auth_counts_per_cache(cores: usize) {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_mt(cores, dir.path(), &[]);
    let a = s.create_cache("a", "8MB");
    let b = s.create_cache("b", "8MB");
    // a: 3 good logins (one of them the stats connection below), 4 failed.
    let _c1 = s.login(&a.user, &a.pass);
    assert_eq!(sasl_plain(&s, &a.user, &a.pass), 0);
    let mut bad = s.connect();
    let wrong = "0".repeat(a.pass.len());
    assert_eq!(
        bad.call(&format!(
            "set {} 0 0 {}\r\n{wrong}\r\n",
            a.user,
            wrong.len()
        )),
        "CLIENT_ERROR authentication failure\r\n"
    );
    let token = format!("{} nope", a.user);
    assert_eq!(
        bad.call(&format!("set anykey 0 0 {}\r\n{token}\r\n", token.len())),
        "CLIENT_ERROR authentication failure\r\n"
    );
    assert_eq!(sasl_plain(&s, &a.user, "nope"), 0x20);
    let long = "x".repeat(20_000);
    assert_eq!(
        bad.call(&format!("set {} 0 0 {}\r\n{long}\r\n", a.user, long.len())),
        "CLIENT_ERROR auth token too long\r\n"
    );
    // Unknown usernames count server-wide only.
    assert_eq!(sasl_plain(&s, "nobody", "x"), 0x20);
    let mut ca = s.login(&a.user, &a.pass);
    let st = ca.stats("");
    assert_eq!(
        (st["auth_cmds"].as_str(), st["auth_errors"].as_str()),
        ("7", "4"),
        "{st:?}"
    );
    let mut cb = s.login(&b.user, &b.pass);
    let st = cb.stats("");
    assert_eq!(
        (st["auth_cmds"].as_str(), st["auth_errors"].as_str()),
        ("1", "0"),
        "{st:?}"
    );
}

#[test]
fn auth_counts_per_cache_one_core() {
    auth_counts_per_cache(1);
}

#[test]
fn auth_counts_per_cache_two_cores() {
    auth_counts_per_cache(2);
}
