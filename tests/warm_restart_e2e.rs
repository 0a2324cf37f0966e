//! Warm restart over real processes: a clean stop writes the items to
//! `--restart-dir`, the next start reads them back (flags, CAS, remaining
//! TTL), on the same or another core count; a damaged, truncated, missing or
//! mismatched image starts empty with a line on stderr; a loaded image is
//! never loaded twice. `million_items` (ignored; `scripts/warm-restart-bench.sh`
//! runs it) measures 1M items.

mod common;

use common::{Client, Server};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SIGKILL: i32 = 9;
const SIGUSR1: i32 = 10;

/// How long a stop may take in these tests (it writes the image first).
const STOP_WAIT: Duration = Duration::from_secs(60);

/// TTL of the items meant to expire while the server is down (they must
/// still be there at the stop: `million_items` takes longer to write them
/// and gives them more).
const SHORT_TTL: u32 = 3;

#[derive(Clone, Debug)]
struct Item {
    key: String,
    value: Vec<u8>,
    flags: u32,
    /// What `set` was given: 0 none, else seconds (or an absolute unix time).
    exptime: u64,
    short: bool,
}

/// What `mg key f c t v` answered.
#[derive(Clone, Debug, PartialEq)]
struct Meta {
    flags: u32,
    cas: u64,
    /// -1: never expires.
    ttl: i64,
    value: Vec<u8>,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `n` items named `{prefix}{i}`: a quarter without TTL, a quarter with a
/// TTL of an hour, a quarter with an absolute expiry a day ahead, a quarter
/// (with `short`) with that TTL, to run out while the server is down.
fn items(prefix: &str, n: usize, short: Option<u32>) -> Vec<Item> {
    let day = unix_now() + 86_400;
    (0..n)
        .map(|i| {
            let len = 1 + (i * 7919) % 200;
            let value: Vec<u8> = (0..len).map(|j| b'a' + ((i + j) % 26) as u8).collect();
            let (exptime, is_short) = match (i % 4, short) {
                (0, _) => (0, false),
                (1, _) => (3600, false),
                (2, _) => (day, false),
                (_, Some(ttl)) => (u64::from(ttl), true),
                (_, None) => (7200, false),
            };
            Item {
                key: format!("{prefix}{i}"),
                value,
                flags: (i as u32).wrapping_mul(2_654_435_761),
                exptime,
                short: is_short,
            }
        })
        .collect()
}

/// Stores `items` with pipelined `set ... noreply`, then waits for `mn`.
fn write_items(c: &mut Client, items: &[Item]) {
    let mut buf = Vec::with_capacity(1 << 20);
    for it in items {
        write!(
            buf,
            "set {} {} {} {} noreply\r\n",
            it.key,
            it.flags,
            it.exptime,
            it.value.len()
        )
        .unwrap();
        buf.extend_from_slice(&it.value);
        buf.extend_from_slice(b"\r\n");
        if buf.len() > 256 << 10 {
            c.send(&buf);
            buf.clear();
        }
    }
    buf.extend_from_slice(b"mn\r\n");
    c.send(&buf);
    assert_eq!(c.line(), "MN\r\n");
}

/// `mg key f c t v` for every key, pipelined in chunks.
fn read_meta(c: &mut Client, keys: &[&str]) -> Vec<Option<Meta>> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let mut req = Vec::new();
        for k in chunk {
            write!(req, "mg {k} f c t v\r\n").unwrap();
        }
        c.send(&req);
        for k in chunk {
            let l = c.line();
            if l == "EN\r\n" {
                out.push(None);
                continue;
            }
            let parts: Vec<&str> = l.trim_end().split(' ').collect();
            assert_eq!(parts[0], "VA", "{k}: {l:?}");
            let len: usize = parts[1].parse().unwrap();
            let mut m = Meta {
                flags: 0,
                cas: 0,
                ttl: 0,
                value: Vec::new(),
            };
            for p in &parts[2..] {
                let (f, v) = p.split_at(1);
                match f {
                    "f" => m.flags = v.parse().unwrap(),
                    "c" => m.cas = v.parse().unwrap(),
                    "t" => m.ttl = v.parse().unwrap(),
                    _ => panic!("{k}: unexpected {p} in {l:?}"),
                }
            }
            let data = c.bytes(len + 2);
            m.value = data[..len].to_vec();
            out.push(Some(m));
        }
    }
    out
}

fn keys(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.key.as_str()).collect()
}

/// `shoal --restart-dir DIR -m 256` plus `extra` (which may give another -m).
fn start(cores: usize, dir: &Path, extra: &[&str]) -> Server {
    let mut args = vec!["--restart-dir", dir.to_str().unwrap()];
    if !extra.contains(&"-m") {
        args.extend_from_slice(&["-m", "256"]);
    }
    args.extend_from_slice(extra);
    Server::start(cores, &args)
}

/// Waits for a line containing `what` among `log`'s lines (the reader
/// thread may still be catching up after the process exited).
fn log_line(log: &Arc<Mutex<Vec<String>>>, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(l) = log.lock().unwrap().iter().find(|l| l.contains(what)) {
            return l.clone();
        }
        if Instant::now() > deadline {
            panic!(
                "no line with {what:?} in:\n{}",
                log.lock().unwrap().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The number right after `word` in `line` ("saved 123 items" → 123 for "saved").
fn number_after(line: &str, word: &str) -> u64 {
    let rest = line
        .split(word)
        .nth(1)
        .unwrap_or_else(|| panic!("{word:?} not in {line:?}"));
    rest.split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap_or_else(|_| panic!("no number after {word:?} in {line:?}"))
}

/// The number right before `word` ("3 expired" → 3 for "expired").
fn number_before(line: &str, word: &str) -> u64 {
    let head = line
        .split(word)
        .next()
        .unwrap_or_else(|| panic!("{word:?} not in {line:?}"));
    head.split(|c: char| !c.is_ascii_digit())
        .rfind(|s| !s.is_empty())
        .unwrap()
        .parse()
        .unwrap()
}

/// Stops `s` with `sig`; returns how long the stop took and the saved count.
fn stop(s: Server, sig: i32) -> (Duration, u64) {
    let log = s.stderr.clone();
    let t = Instant::now();
    assert!(s.stop_with(sig, STOP_WAIT), "clean exit after signal {sig}");
    let took = t.elapsed();
    let saved = number_after(&log_line(&log, "warm restart: saved"), "saved");
    (took, saved)
}

/// What a round trip measured.
struct Report {
    /// SIGTERM to exit (the image written).
    stop: Duration,
    /// Process start to the `listening` line (the image checked and loaded).
    start: Duration,
    /// Items readable before the stop.
    held: u64,
    saved: u64,
    /// The restarted server's `loaded` line.
    loaded: String,
    /// Peak RSS in kB: of the first server when the items were written, of
    /// the restarted one right after loading them.
    rss_before: u64,
    rss_after: u64,
}

/// Peak resident set size of `pid` in kB.
fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Writes `n` mixed items at `from` cores, stops with SIGTERM, waits for
/// the short TTLs to run out, restarts at `to` cores and checks every item:
/// the short ones are gone, every other one that was there before the stop
/// reads back with its value, flags, CAS and remaining TTL (less the
/// downtime); new CAS values are above the restored ones; the image is gone
/// once loaded, so a crash then restarts empty. With `-m` below the data
/// some items are evicted while writing: what is readable before the stop
/// is what must come back.
fn round_trip(from: usize, to: usize, n: usize, dir: &Path, extra: &[&str]) -> Report {
    round_trip_ttl(from, to, n, SHORT_TTL, dir, extra)
}

/// `round_trip` with `short_ttl` as the TTL that runs out during the
/// downtime.
fn round_trip_ttl(
    from: usize,
    to: usize,
    n: usize,
    short_ttl: u32,
    dir: &Path,
    extra: &[&str],
) -> Report {
    let all = items("k:", n, Some(short_ttl));
    let s = start(from, dir, extra);
    let mut c = s.connect();
    write_items(&mut c, &all);
    let read_at = Instant::now();
    let before = read_meta(&mut c, &keys(&all));
    let held = before.iter().flatten().count() as u64;
    if !extra.contains(&"-m") {
        // Nothing is evicted at -m 256 (short TTLs may already run out on
        // a slow machine).
        for (it, m) in all.iter().zip(&before) {
            assert!(it.short || m.is_some(), "{} missing", it.key);
        }
    }
    for (it, m) in all.iter().zip(&before) {
        if let Some(m) = m {
            assert_eq!((m.flags, &m.value), (it.flags, &it.value), "{}", it.key);
        }
    }
    let max_cas = before.iter().flatten().map(|m| m.cas).max().unwrap();
    let rss_before = peak_rss(s.pid());
    drop(c);
    let (stop_took, saved) = stop(s, 15);
    assert!(saved <= held && saved >= held * 3 / 4, "{saved} of {held}");

    // Let the short TTLs run out during the downtime.
    std::thread::sleep(Duration::from_secs(u64::from(short_ttl)) + Duration::from_millis(500));
    let t = Instant::now();
    let s = start(to, dir, extra);
    let start_took = t.elapsed();
    let rss_after = peak_rss(s.pid());
    let loaded = log_line(&s.stderr, "warm restart: loaded");
    let long = all
        .iter()
        .zip(&before)
        .filter(|(i, b)| !i.short && b.is_some())
        .count() as u64;
    assert_eq!(number_before(&loaded, "items"), long, "{loaded}");
    assert_eq!(number_before(&loaded, "expired") + long, saved, "{loaded}");
    assert!(
        !dir.join("shoal-restart.manifest").exists(),
        "a loaded image must be retired"
    );
    let mut c = s.connect();
    let after = read_meta(&mut c, &keys(&all));
    // From the first read before the stop to the last one after the start.
    let downtime = read_at.elapsed().as_secs() as i64;
    for ((it, b), a) in all.iter().zip(&before).zip(&after) {
        let Some(b) = b.as_ref().filter(|_| !it.short) else {
            assert_eq!(a, &None, "{} should be gone", it.key);
            continue;
        };
        let a = a.as_ref().unwrap_or_else(|| panic!("{} lost", it.key));
        assert_eq!(
            (a.flags, a.cas, &a.value),
            (b.flags, b.cas, &b.value),
            "{}",
            it.key
        );
        if b.ttl == -1 {
            assert_eq!(a.ttl, -1, "{}", it.key);
        } else {
            assert!(
                a.ttl <= b.ttl && a.ttl >= b.ttl - downtime - 3,
                "{}: ttl {} before, {} after {downtime} s",
                it.key,
                b.ttl,
                a.ttl
            );
        }
    }
    // New CAS values are above every restored one, on every core.
    for i in 0..32 {
        let l = c.call(&format!("ms new:{i} 1 c\r\nx\r\n"));
        let cas: u64 = l.trim_end().strip_prefix("HD c").unwrap().parse().unwrap();
        assert!(cas > max_cas, "{cas} <= {max_cas}");
    }
    // Crash now: the image was retired, so the next start is empty.
    drop(c);
    assert!(!s.stop_with(SIGKILL, STOP_WAIT));
    let s = start(to, dir, extra);
    log_line(&s.stderr, "warm restart: no image");
    let mut c = s.connect();
    assert_eq!(c.get("k:0"), None);
    assert_eq!(c.get("k:1"), None);
    Report {
        stop: stop_took,
        start: start_took,
        held,
        saved,
        loaded,
        rss_before,
        rss_after,
    }
}

at_1_and_2_cores! {
    items_survive_a_restart => |cores| {
        let dir = tempfile::tempdir().unwrap();
        let r = round_trip(cores, cores, 20_000, dir.path(), &[]);
        eprintln!("20k items at {cores} cores: stop {:?}, start {:?}", r.stop, r.start);
    };
    a_damaged_image_starts_empty => damaged;
    shutdown_and_sigusr1_save_too => other_stops;
}

#[test]
fn the_core_count_may_change() {
    let dir = tempfile::tempdir().unwrap();
    round_trip(2, 1, 10_000, dir.path(), &[]);
    round_trip(1, 3, 10_000, dir.path(), &[]);
}

/// 100k items at 2 cores: the restart time in the test output.
#[test]
fn restart_time_for_100k_items() {
    let dir = tempfile::tempdir().unwrap();
    let r = round_trip(2, 2, 100_000, dir.path(), &[]);
    eprintln!(
        "warm restart, 100k items, 2 cores: stop {:?}, start to ready {:?}",
        r.stop, r.start
    );
}

/// Writes a few items and stops cleanly, leaving an image in `dir`.
fn save_some(cores: usize, dir: &Path, extra: &[&str]) -> Vec<Item> {
    let all = items("d:", 3000, None);
    let s = start(cores, dir, extra);
    let mut c = s.connect();
    write_items(&mut c, &all);
    drop(c);
    let (_, saved) = stop(s, 15);
    assert_eq!(saved, 3000);
    all
}

/// Starts on an image damaged by `damage`: empty, with a line saying why
/// that contains `why`.
fn starts_empty(cores: usize, dir: &Path, extra: &[&str], why: &str) {
    let s = start(cores, dir, extra);
    let line = log_line(&s.stderr, "warm restart: the image");
    assert!(
        line.contains("not usable") && line.contains(why),
        "{why:?}: {line}"
    );
    assert!(line.contains("starting empty"), "{line}");
    let mut c = s.connect();
    assert_eq!(c.stats("")["curr_items"], "0");
    assert_eq!(c.get("d:0"), None);
    assert_eq!(c.get("d:1"), None);
    // The damaged files are gone: the next clean stop writes a new image.
    drop(c);
    assert!(s.terminate());
}

fn image(dir: &Path, core: usize) -> std::path::PathBuf {
    dir.join(format!("shoal-restart.core-{core}.img"))
}

fn damaged(cores: usize) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let last = cores - 1;

    // A flipped byte in the middle of an image file.
    save_some(cores, d, &[]);
    let mut bytes = std::fs::read(image(d, last)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    bytes[mid + 1] ^= 0x01;
    std::fs::write(image(d, last), &bytes).unwrap();
    starts_empty(cores, d, &[], "checksum");

    // A truncated image file.
    save_some(cores, d, &[]);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(image(d, 0))
        .unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len - 100).unwrap();
    drop(f);
    starts_empty(cores, d, &[], "truncated");

    // A missing image file.
    save_some(cores, d, &[]);
    std::fs::remove_file(image(d, last)).unwrap();
    starts_empty(cores, d, &[], "No such file");

    // A damaged manifest.
    save_some(cores, d, &[]);
    let m = d.join("shoal-restart.manifest");
    let mut bytes = std::fs::read(&m).unwrap();
    bytes[20] ^= 0xff;
    std::fs::write(&m, &bytes).unwrap();
    starts_empty(cores, d, &[], "checksum");

    // A truncated manifest.
    save_some(cores, d, &[]);
    let bytes = std::fs::read(&m).unwrap();
    std::fs::write(&m, &bytes[..bytes.len() / 2]).unwrap();
    starts_empty(cores, d, &[], "truncated");

    // Another -m, another -I.
    save_some(cores, d, &[]);
    starts_empty(cores, d, &["-m", "128"], "-m");
    save_some(cores, d, &[]);
    starts_empty(cores, d, &["-I", "2m"], "-I");

    // And an intact one still loads after all that.
    let all = save_some(cores, d, &[]);
    let s = start(cores, d, &[]);
    log_line(&s.stderr, "warm restart: loaded 3000 items");
    let mut c = s.connect();
    let got = read_meta(&mut c, &keys(&all));
    assert!(got.iter().all(Option::is_some));
}

/// `shutdown` (with -A) and SIGUSR1 are clean stops too.
fn other_stops(cores: usize) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = start(cores, d, &["-A"]);
    let mut c = s.connect();
    assert_eq!(c.set("a", b"one"), "STORED\r\n");
    c.send(b"shutdown\r\n");
    let log = s.stderr.clone();
    assert!(s.wait_exit(STOP_WAIT), "shutdown: clean exit");
    log_line(&log, "warm restart: saved 1 items");

    let s = start(cores, d, &[]);
    let mut c = s.connect();
    assert_eq!(c.get("a"), Some((0, b"one".to_vec())));
    assert_eq!(c.set("b", b"two"), "STORED\r\n");
    drop(c);
    stop(s, SIGUSR1);

    let s = start(cores, d, &[]);
    let mut c = s.connect();
    assert_eq!(c.get("a"), Some((0, b"one".to_vec())));
    assert_eq!(c.get("b"), Some((0, b"two".to_vec())));
    assert_eq!(c.stats("settings")["warm_restart"], "yes");
}

/// Multi-tenant mode: on by default (in the data dir), every cache gets its
/// own items back, same key names or not.
#[test]
fn each_cache_gets_its_items_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_mt(2, dir.path(), &["-m", "64"]);
    let a = s.create_cache("a", "8MB");
    let b = s.create_cache("b", "8MB");
    let mut ca = s.login(&a.user, &a.pass);
    let mut cb = s.login(&b.user, &b.pass);
    for i in 0..500 {
        assert_eq!(ca.set(&format!("k{i}"), b"from-a"), "STORED\r\n");
        assert_eq!(cb.set(&format!("k{i}"), b"from-b"), "STORED\r\n");
    }
    assert_eq!(cb.set("only-b", b"b"), "STORED\r\n");
    let cas_a = read_meta(&mut ca, &["k7"])[0].clone().unwrap().cas;
    drop((ca, cb));
    let (_, saved) = stop(s, 15);
    assert_eq!(saved, 1001);

    let s = Server::start_mt(1, dir.path(), &["-m", "64"]);
    log_line(&s.stderr, "warm restart: loaded 1001 items");
    let mut ca = s.login(&a.user, &a.pass);
    let mut cb = s.login(&b.user, &b.pass);
    for i in 0..500 {
        assert_eq!(ca.get(&format!("k{i}")), Some((0, b"from-a".to_vec())));
        assert_eq!(cb.get(&format!("k{i}")), Some((0, b"from-b".to_vec())));
    }
    assert_eq!(ca.get("only-b"), None);
    assert_eq!(read_meta(&mut ca, &["k7"])[0].clone().unwrap().cas, cas_a);
    // Tenants see only that warm restart is on, not where.
    let settings = ca.stats("settings");
    assert_eq!(settings["warm_restart"], "yes");
    assert!(!settings
        .values()
        .any(|v| v.contains(dir.path().to_str().unwrap())));
}

/// Off unless asked for in open mode; `--restart-dir ''` turns it off in
/// multi-tenant mode.
#[test]
fn off_by_default_in_open_mode() {
    let s = Server::start(1, &[]);
    let mut c = s.connect();
    assert_eq!(c.stats("settings")["warm_restart"], "no");
    drop(c);
    assert!(s.terminate());
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_mt(1, dir.path(), &["--restart-dir", ""]);
    assert!(!s.stderr_text().contains("warm restart"));
    assert!(s.terminate());
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("shoal-restart")),
        "{names:?}"
    );
}

/// 1M items (a quarter each: no TTL, 1 h, an absolute time a day ahead, 25 s
/// that run out while the server is down; values of 1 to 200 bytes) at 2
/// cores, -m 256, through `round_trip`: stop time, start-to-ready time,
/// items kept, and the peak RSS of the restarted server against -m.
/// `scripts/warm-restart-bench.sh` runs it; WARM_RESTART_ITEMS,
/// WARM_RESTART_CORES and WARM_RESTART_MB change the item count, core count
/// and -m.
#[test]
#[ignore]
fn million_items() {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let n: usize = env("WARM_RESTART_ITEMS", "1000000").parse().unwrap();
    let cores: usize = env("WARM_RESTART_CORES", "2").parse().unwrap();
    let m = env("WARM_RESTART_MB", "256");
    let dir = tempfile::tempdir().unwrap();
    let r = round_trip_ttl(cores, cores, n, 25, dir.path(), &["-m", &m]);
    eprintln!(
        "warm restart, {n} items at {cores} cores, -m {m}: {} readable before the stop\n  \
         stop (SIGTERM to exit, image written): {:?}, {} items saved\n  \
         start to ready (image checked and loaded): {:?}\n  \
         {}\n  \
         every item kept reads back with its value, flags, CAS and remaining TTL\n  \
         peak RSS: {} MiB writing, {} MiB restarted (right after the load)",
        r.held,
        r.stop,
        r.saved,
        r.start,
        r.loaded,
        r.rss_before >> 10,
        r.rss_after >> 10
    );
    let limit: u64 = m.parse::<u64>().unwrap() << 10;
    assert!(
        r.rss_after <= limit + (64 << 10),
        "peak RSS {} kB over -m {m} + 64 MiB",
        r.rss_after
    );
}
