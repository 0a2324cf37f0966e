//! Multi-tenant mode's node memory (-m) over real sockets: all caches' items
//! together stay within it however large their plans, and plans are checked
//! against it (size bounds, `--plan-overcommit`).

mod common;

use common::{Client, Cred, Server};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

fn stat(c: &mut Client, name: &str) -> u64 {
    let m = c.stats("");
    m.get(name)
        .unwrap_or_else(|| panic!("no stat {name}"))
        .parse()
        .unwrap()
}

fn create(s: &Server, name: &str, memory: Value) -> (u16, Value) {
    let body = json!({"name": name, "memory": memory}).to_string();
    s.operator("POST", "/caches", Some(&body))
}

fn message(v: &Value) -> String {
    v.to_string()
}

/// The probe of issue 12: -m 64 with plans of 1 GB + 64 MB + 64 MB (kept
/// from a data dir written under a larger -m), each cache written 64 MiB (3x
/// the node in all). Before: 303 MB of items, RSS 354 MB.
#[test]
fn node_memory_stays_within_m() {
    let dir = tempdir();
    let plans = [("big", "1GB"), ("a", "64MB"), ("b", "64MB")];
    let creds: Vec<Cred> = {
        let s = Server::start_mt(2, dir.path(), &["-m", "2048"]);
        let creds = plans.iter().map(|(n, m)| s.create_cache(n, m)).collect();
        assert!(s.terminate());
        creds
    };
    let s = Server::start_mt(2, dir.path(), &["-m", "64"]);
    let mut conns: Vec<Client> = creds.iter().map(|c| s.login(&c.user, &c.pass)).collect();
    let limits: Vec<u64> = conns
        .iter_mut()
        .map(|c| stat(c, "limit_maxbytes"))
        .collect();
    assert!(
        limits.iter().sum::<u64>() <= 64 * MIB,
        "budgets {limits:?} exceed -m"
    );
    let rss_before = rss_bytes(s.pid());

    const VALUE: usize = 32 * 1024;
    let per_cache = 64 * MIB as usize / VALUE;
    let val = vec![b'x'; VALUE];
    let started = Instant::now();
    for i in 0..per_cache {
        for (n, c) in conns.iter_mut().enumerate() {
            assert_eq!(c.set(&format!("k{n}:{i}"), &val), "STORED\r\n");
        }
        assert!(started.elapsed() < Duration::from_secs(300), "too slow");
    }
    // Stats reach the counters on the cores' next tick.
    std::thread::sleep(Duration::from_millis(500));
    let rss_after = rss_bytes(s.pid());
    let (bytes, mem): (Vec<u64>, Vec<u64>) = conns
        .iter_mut()
        .map(|c| (stat(c, "bytes"), stat(c, "mem_used")))
        .unzip();
    let (total_bytes, total_mem) = (bytes.iter().sum::<u64>(), mem.iter().sum::<u64>());
    eprintln!(
        "node memory: -m 64, plans 1GB+64MB+64MB, {} MiB written: budgets {limits:?}, \
         items bytes {bytes:?} = {total_bytes}, mem_used {mem:?} = {total_mem}, \
         RSS {} -> {} MiB, {:?}",
        (3 * per_cache * VALUE) >> 20,
        rss_before >> 20,
        rss_after >> 20,
        started.elapsed()
    );
    assert!(total_mem <= 64 * MIB, "mem_used {total_mem} > -m");
    assert!(total_bytes <= 64 * MIB, "items {total_bytes} > -m");
    // Every cache keeps its share: the 1 GB plan most, the 64 MB plans alike.
    assert!(bytes.iter().all(|&b| b > 0), "{bytes:?}");
    assert!(
        bytes[0] > 8 * bytes[1] && bytes[0] > 8 * bytes[2],
        "{bytes:?}"
    );
    // The node filled (what it may hold, less segment and index overhead).
    assert!(total_bytes >= 40 * MIB, "node only {total_bytes} full");
    // RSS grows by the node's 64 MiB of items plus allocator and connection
    // slack, not by what was written (192 MiB).
    assert!(
        rss_after <= rss_before + 64 * MIB + 32 * MIB,
        "RSS {} -> {} MiB",
        rss_before >> 20,
        rss_after >> 20
    );
}

#[test]
fn plans_are_validated_against_the_node() {
    let dir = tempdir();
    let s = Server::start_mt(1, dir.path(), &["-m", "64"]);
    // Sizes: too small, absurd, larger than the node.
    for bad in [
        json!(i64::MAX),
        json!(u64::MAX),
        json!(0),
        json!(1),
        json!(MIB - 1),
        json!("65MB"),
        json!("1GB"),
    ] {
        let (st, body) = create(&s, "x", bad.clone());
        assert_eq!(st, 400, "{bad}: {body}");
    }
    let (st, body) = create(&s, "x", json!("65MB"));
    assert!(message(&body).contains("-m"), "{st} {body}");

    // At the default ratio (1) the plans may add up to -m, no more.
    assert_eq!(create(&s, "a", json!("40MB")).0, 201);
    let (st, b) = create(&s, "b", json!("24MB"));
    assert_eq!(st, 201, "{b}");
    let b_id = b["cache"]["id"].as_u64().unwrap();
    let (st, body) = create(&s, "c", json!("1MB"));
    assert_eq!(st, 409, "{body}");
    assert!(message(&body).contains("plan-overcommit"), "{body}");
    let path = format!("/caches/{b_id}");
    let (st, body) = s.operator("PATCH", &path, Some(&json!({"memory": "25MB"}).to_string()));
    assert_eq!(st, 409, "{body}");
    assert_eq!(
        s.operator("PATCH", &path, Some(&json!({"memory": "14MB"}).to_string()))
            .0,
        200
    );
    assert_eq!(
        s.operator("PATCH", &path, Some(&json!({"memory": 1}).to_string()))
            .0,
        400
    );
    // The CLI says why.
    let err = s
        .ctl(&["cache", "create", "--name", "c", "--memory", "20MB"])
        .unwrap_err();
    assert!(err.contains("plan-overcommit"), "{err}");
    let err = s
        .ctl(&["cache", "create", "--name", "c", "--memory", "1B"])
        .unwrap_err();
    assert!(err.contains("at least 1 MiB"), "{err}");
    let c = s.create_cache("c", "10MB");
    assert!(s.terminate());

    // Ratio 2: up to 128 MiB of plans on the 64 MiB node; budgets scale.
    let s = Server::start_mt(1, dir.path(), &["-m", "64", "--plan-overcommit", "2"]);
    assert_eq!(create(&s, "d", json!("64MB")).0, 201);
    // 40 + 14 + 10 + 64 = 128 MiB: one more byte of plan is refused.
    assert_eq!(create(&s, "e", json!("1MB")).0, 409);
    let mut conn = s.login(&c.user, &c.pass);
    assert_eq!(stat(&mut conn, "limit_maxbytes"), 5 * MIB, "10 MB × 64/128");
    check_rejected_flags(dir.path());
}

/// Bad --plan-overcommit values stop the server with a clear error.
fn check_rejected_flags(dir: &Path) {
    for bad in ["0.5", "0", "-1", "nan", "abc"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_shoal"))
            .args(["--multi-tenant", "--data-dir"])
            .arg(dir)
            .args(["-p", "0", &format!("--plan-overcommit={bad}")])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("plan-overcommit"), "{bad}: {err}");
    }
}
