//! systemd's `Type=notify` (packaging/systemd/shoal.service): with
//! `$NOTIFY_SOCKET` set, shoal sends `READY=1` once every core accepts (and
//! the admin endpoint is up), and `STOPPING=1` when a stop begins.

mod common;

use common::{shoal_cmd, Server};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// The next datagram on `rx` (5 s at most).
fn next(rx: &UnixDatagram) -> String {
    let mut buf = [0u8; 256];
    let n = rx.recv(&mut buf).expect("a notification within 5 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn ready_then_stopping(extra: &[&str], data_dir: Option<&std::path::Path>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut cmd = shoal_cmd(0, 2, extra);
    if let Some(d) = data_dir {
        cmd.arg("--data-dir").arg(d);
    }
    cmd.env("NOTIFY_SOCKET", &path);
    let s = Server::launch(cmd).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(next(&rx), "READY=1");
    // Ready means serving: the first request needs no retry (`config get
    // cluster` is answered before authentication in multi-tenant mode).
    let mut c = s.connect();
    assert!(c
        .call("config get cluster\r\n")
        .starts_with("CONFIG cluster "));
    if let Some(admin) = s.admin {
        assert!(
            std::net::TcpStream::connect(admin).is_ok(),
            "admin endpoint up at READY"
        );
    }
    assert!(s.terminate(), "exit status 0 after SIGTERM");
    assert_eq!(next(&rx), "STOPPING=1");
}

#[test]
fn open_mode_notifies_ready_and_stopping() {
    ready_then_stopping(&[], None);
}

#[test]
fn multi_tenant_notifies_ready_once_the_admin_endpoint_is_up() {
    let data = tempfile::tempdir().unwrap();
    ready_then_stopping(
        &["--multi-tenant", "--admin-addr", "127.0.0.1:0"],
        Some(data.path()),
    );
}

#[test]
fn without_notify_socket_nothing_is_sent_and_a_bad_one_only_warns() {
    // A socket nobody listens on: a warning, and the server still serves.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = shoal_cmd(0, 1, &[]);
    cmd.env("NOTIFY_SOCKET", dir.path().join("nobody"));
    let s = Server::launch(cmd).unwrap_or_else(|e| panic!("{e}"));
    let mut c = s.connect();
    assert!(c.call("version\r\n").starts_with("VERSION "));
    assert!(common::eventually(Duration::from_secs(5), || s
        .stderr_text()
        .contains("cannot notify systemd (READY=1)")));
}
