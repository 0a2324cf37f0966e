//! Process limits and restarts over real sockets: the open-file limit
//! (raised to fit -c, or -c lowered to fit it; clients beyond any limit get
//! memcached's `ERROR Too many open connections`, none hangs), the
//! locked-memory limit io_uring needs, and restarting on the same port right
//! after SIGKILL.

mod common;

use common::{eventually, shoal_cmd, Server};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

const CLIENTS: usize = 400;
const TOO_MANY: &str = "ERROR Too many open connections\r\n";

/// Linux's CAP_SYS_RESOURCE: lets a process raise its hard limits.
const CAP_SYS_RESOURCE: libc::c_ulong = 24;

/// This test process opens one socket per client: make sure it may.
fn raise_own_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write one rlimit we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// `cmd`, started with RLIMIT_NOFILE `soft`/`hard` and unable to raise its
/// hard limit even when the tests run as root (as an ordinary user is).
fn with_nofile(mut cmd: Command, soft: u64, hard: u64) -> Command {
    // SAFETY: the hook runs in the forked child before exec and makes only
    // async-signal-safe system calls (prctl, setrlimit) on plain values.
    unsafe {
        cmd.pre_exec(move || {
            // Dropped from the bounding set, the capability is not granted
            // again at exec (root's permitted set is capped by it). Without
            // CAP_SETPCAP this fails, and the process lacks both anyway.
            libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_RESOURCE, 0, 0, 0);
            let lim = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// What each client got for its `version`.
#[derive(Default, Debug)]
struct Tally {
    version: usize,
    too_many: usize,
    /// (client, what it got or why it got nothing): hangs, resets, others.
    bad: Vec<(usize, String)>,
}

/// Reads one line from each stream, all within `within` (a client that has
/// no line by then counts as hung).
fn tally(streams: &mut [TcpStream], within: Duration) -> Tally {
    let deadline = Instant::now() + within;
    let mut t = Tally::default();
    for (i, s) in streams.iter_mut().enumerate() {
        let mut got = Vec::new();
        let mut why = None;
        // Bounded: each round reads at least a byte or ends the loop.
        for _ in 0..256 {
            if got.ends_with(b"\n") {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut buf = [0u8; 64];
            match s.read(&mut buf) {
                Ok(0) => {
                    why = Some("closed without a reply".to_string());
                    break;
                }
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => {
                    why = Some(format!("no reply: {e}"));
                    break;
                }
            }
        }
        let line = String::from_utf8_lossy(&got).into_owned();
        if line.starts_with("VERSION ") && line.ends_with("\r\n") {
            t.version += 1;
        } else if line == TOO_MANY {
            t.too_many += 1;
        } else {
            t.bad
                .push((i, format!("{line:?} {}", why.unwrap_or_default())));
        }
    }
    t
}

/// Connects `CLIENTS` clients that each send `version`.
fn flood(addr: SocketAddr) -> Vec<TcpStream> {
    (0..CLIENTS)
        .map(|_| {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.write_all(b"version\r\n").unwrap();
            s
        })
        .collect()
}

/// A fresh client gets VERSION (within a few seconds).
fn still_serves(s: &Server) -> bool {
    eventually(Duration::from_secs(10), || {
        let Ok(mut c) = TcpStream::connect(s.addr) else {
            return false;
        };
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 64];
        c.write_all(b"version\r\n").is_ok()
            && matches!(c.read(&mut buf), Ok(n) if buf[..n].starts_with(b"VERSION "))
    })
}

/// The server's `maxconns` setting.
fn maxconns(s: &Server) -> usize {
    let mut c = s.connect();
    c.stats("settings")["maxconns"].parse().unwrap()
}

/// The `N` of "-c lowered from 1024 to N" in the server's stderr.
fn lowered_to(s: &Server) -> Option<usize> {
    let text = s.stderr_text();
    let rest = text.split("-c lowered from 1024 to ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn low_hard_fd_limit_lowers_conn_limit_and_no_client_hangs() {
    raise_own_nofile();
    let cmd = with_nofile(shoal_cmd(0, 2, &["-c", "1024"]), 256, 256);
    let s = Server::launch(cmd).unwrap();
    let n =
        lowered_to(&s).unwrap_or_else(|| panic!("no lowered -c in stderr: {}", s.stderr_text()));
    assert!(n > 0 && n < 256, "lowered to {n}");

    let mut clients = flood(s.addr);
    let t = tally(&mut clients, Duration::from_secs(20));
    assert!(t.bad.is_empty(), "clients without a proper reply: {t:?}");
    // Exactly -c are served (they stay connected); every other client is
    // told why it is turned away.
    assert_eq!(t.version, n, "{t:?}");
    assert_eq!(t.too_many, CLIENTS - n);
    assert!(
        !s.stderr_text().contains("accept failed"),
        "the headroom ran out: {}",
        s.stderr_text()
    );
    drop(clients);
    assert!(still_serves(&s), "the server stopped serving");
    assert_eq!(maxconns(&s), n);
}

#[test]
fn fd_limit_raised_when_hard_limit_allows() {
    raise_own_nofile();
    let cmd = with_nofile(shoal_cmd(0, 2, &["-c", "1024"]), 256, 4096);
    let s = Server::launch(cmd).unwrap();
    assert_eq!(lowered_to(&s), None, "{}", s.stderr_text());
    // The kernel's view: the soft limit now fits -c.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", s.pid())).unwrap();
    let soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no open-file limit in {limits}"));
    assert!((1024..=4096).contains(&soft), "soft limit {soft}");

    let mut clients = flood(s.addr);
    let t = tally(&mut clients, Duration::from_secs(20));
    assert_eq!(t.version, CLIENTS, "{t:?}");
    drop(clients);
    assert!(still_serves(&s));
    assert_eq!(maxconns(&s), 1024);
}

#[test]
fn running_out_of_fds_turns_clients_away_instead_of_hanging() {
    // No headroom: -c becomes the whole limit (256), so the descriptors run
    // out before -c is reached and accept fails with EMFILE.
    raise_own_nofile();
    let mut cmd = shoal_cmd(0, 2, &["-c", "1024"]);
    cmd.env("SHOAL_FD_HEADROOM", "0");
    let s = Server::launch(with_nofile(cmd, 256, 256)).unwrap();
    assert_eq!(lowered_to(&s), Some(256), "{}", s.stderr_text());
    let started = Instant::now();

    let mut clients = flood(s.addr);
    let t = tally(&mut clients, Duration::from_secs(20));
    assert!(t.bad.is_empty(), "clients without a proper reply: {t:?}");
    assert!(t.version > 100 && t.version < 256, "{t:?}");
    assert_eq!(t.version + t.too_many, CLIENTS);
    // Logged, but at most once a second per core.
    let secs = started.elapsed().as_secs() as usize + 1;
    let text = s.stderr_text();
    let warnings = text.matches("accept failed").count();
    assert!(warnings >= 1, "EMFILE was never hit: {text}");
    assert!(warnings <= 2 * (secs + 1), "{warnings} warnings in {secs}s");
    drop(clients);
    assert!(still_serves(&s), "the server stopped serving");
}

#[test]
fn locked_memory_limit_too_low_refuses_to_start_and_says_what_to_do() {
    // Docker's default `ulimit -l` is often 64 KiB: glommio's executors need
    // 512 KiB, and a core that cannot start must not leave a silent exit.
    let mut cmd = shoal_cmd(0, 1, &[]);
    // SAFETY: as in `with_nofile`: prctl and setrlimit on plain values.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_RESOURCE, 0, 0, 0);
            let lim = libc::rlimit {
                rlim_cur: 64 * 1024,
                rlim_max: 64 * 1024,
            };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn shoal");
    // Bounded: a server that started anyway is killed, and that fails.
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "started with 64 KiB of memlock: {err}"
    );
    assert!(
        err.contains("RLIMIT_MEMLOCK) is 64 KiB") && err.contains("--ulimit memlock=-1"),
        "{err}"
    );
}

#[test]
fn restart_right_after_sigkill_on_the_same_port() {
    // A free fixed port: bound once, released at once.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut s = Server::launch(shoal_cmd(port, 2, &[])).unwrap();
    for round in 0..5 {
        // A served connection, so sockets on the port are in every state.
        let mut c = s.connect();
        assert!(c.call("version\r\n").starts_with("VERSION "));
        drop(s); // SIGKILL, then reaped
        let t = Instant::now();
        s = Server::launch(shoal_cmd(port, 2, &[]))
            .unwrap_or_else(|e| panic!("restart {round} failed: {e}"));
        eprintln!("restart {round}: listening after {:?}", t.elapsed());
        drop(c);
    }
    let mut c = s.connect();
    assert!(c.call("version\r\n").starts_with("VERSION "));
}
