//! The stats history's unit tests.

use super::*;

fn values(gets: u64, hits: u64) -> Vec<u64> {
    let mut v = vec![0; FIELDS.len()];
    v[field("cmd_get")] = gets;
    v[field("get_hits")] = hits;
    v[field("get_misses")] = gets - hits;
    v
}

#[test]
fn buckets_rates_and_granularity() {
    let mut h = History::default();
    let t0 = 1_795_000_000 / 60 * 60;
    h.record(1, t0, values(0, 0));
    h.record(1, t0 + 10, values(50, 40)); // same minute: replaces
    h.record(1, t0 + 60, values(100, 80));
    h.record(1, t0 + 120, values(700, 80));
    let (step, pts) = h.points(1, t0, t0 + 3600);
    assert_eq!(step, 60);
    assert_eq!(pts.len(), 3);
    let names: Vec<String> = ["get_rate", "hit_rate"].map(String::from).to_vec();
    let out = h.processed(1, &names, t0, t0 + 3600, 1 << 20).unwrap();
    let rows = out[0]["values"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    // t0+10 → t0+60: 50 gets in 50 s, 40 of 50 hit.
    assert_eq!(rows[0][1], 1.0);
    assert_eq!(rows[0][2], 0.8);
    // then 600 gets in 60 s, none hit.
    assert_eq!(rows[1][1], 10.0);
    assert_eq!(rows[1][2], 0.0);
    assert_eq!(out[0]["columns"], json!(["time", "get_rate", "hit_rate"]));
    assert!(h.processed(1, &["nope".into()], t0, t0 + 60, 0).is_err());
    // A week's span reads the 10-minute tier.
    assert_eq!(h.points(1, t0, t0 + 3 * 86_400).0, 600);
    assert_eq!(History::tier_for(100 * 86_400), 3);
}

#[test]
fn idle_caches_add_no_points_and_tiers_are_bounded() {
    let mut h = History::default();
    for i in 0..5000u64 {
        h.record(7, i * 60, values(5, 5));
    }
    assert_eq!(h.caches[&7][0].points.len(), 1, "idle: one point");
    for i in 0..5000u64 {
        h.record(8, i * 60, values(i, i));
    }
    assert_eq!(h.caches[&8][0].points.len(), TIERS[0].1);
    assert!(h.caches[&8][1].points.len() <= TIERS[1].1);
}

#[test]
fn save_and_load_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.json");
    assert_eq!(History::load(&path).unwrap().caches.len(), 0);
    let mut h = History::default();
    h.record(3, 1000, values(2, 1));
    h.save(&path).unwrap();
    let back = History::load(&path).unwrap();
    assert_eq!(back.points(3, 0, 2000).1.len(), 1);
    std::fs::write(&path, b"{broken").unwrap();
    assert!(History::load(&path).is_err());
}

#[test]
fn saved_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.json");
    // An older server left it, and its temporary file, world-readable.
    std::fs::write(&path, b"{}").unwrap();
    std::fs::write(dir.path().join("history.json.tmp"), b"").unwrap();
    for p in [&path, &dir.path().join("history.json.tmp")] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    History::default().save(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(!dir.path().join("history.json.tmp").exists());
}

#[test]
fn parse_times() {
    for t in [0u64, 951_782_400, 1_795_534_628] {
        assert_eq!(parse_time(&iso8601(t)), Some(t));
    }
    assert_eq!(parse_time("1795534628"), Some(1_795_534_628));
    assert_eq!(parse_time("2023-13-01T00:00:00Z"), None);
    assert_eq!(parse_time("yesterday"), None);
}

#[test]
fn iso_dates() {
    assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
    assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(iso8601(1_795_534_628), "2026-11-24T15:37:08Z");
}
