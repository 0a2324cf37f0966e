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
