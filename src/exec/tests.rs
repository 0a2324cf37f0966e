use super::*;
use crate::introspect::LogEntry;

fn shard() -> Shard {
    Shard::standalone(64 << 20, 1 << 20, false)
}

/// (key, cmd, status, size) of the recent log, oldest first.
fn log(s: &Shard) -> Vec<(String, &'static str, &'static str, u32)> {
    let r = s.introspect.as_ref().expect("enabled").report();
    r.log
        .into_iter()
        .map(|e: LogEntry| (String::from_utf8(e.key).unwrap(), e.cmd, e.status, e.size))
        .collect()
}

#[test]
fn introspection_is_off_by_default() {
    let mut s = shard();
    assert!(s.introspect.is_none());
    s.store(StoreMode::Set, b"k", 0, 0, b"v", 0, 10);
    assert!(s.introspect.is_none());
}

#[test]
fn every_shard_operation_is_recorded_once() {
    let mut s = shard();
    s.enable_introspection(1);
    let now = clock::now();
    let t0 = unix_time(now);
    s.store(StoreMode::Set, b"user:1", 0, 0, b"hello", 0, now);
    s.store(StoreMode::Add, b"user:1", 0, 0, b"x", 0, now);
    s.store(StoreMode::Append, b"user:1", 0, 0, b"!!", 0, now);
    s.store(StoreMode::Cas, b"user:1", 0, 0, b"x", 12345, now);
    s.store(StoreMode::Replace, b"nope", 0, 0, b"x", 0, now);
    s.store(StoreMode::Set, b"big", 0, 0, &vec![b'x'; 1 << 20], 0, now);
    s.store_too_large(StoreMode::Prepend, b"big", now);
    assert_eq!(
        s.get_with(b"user:1", None, now, |it| it.value.len()),
        Some(7)
    );
    assert_eq!(s.get_with(b"user:2", None, now, |_| ()), None);
    s.get_with(b"user:1", Some(100), now, |_| ());
    assert!(s.touch(b"user:1", 100, now));
    assert!(!s.touch(b"user:2", 100, now));
    s.store(StoreMode::Set, b"n", 0, 0, b"9", 0, now);
    assert_eq!(s.arith(b"n", true, 1, now), ArithOutcome::Value(10));
    assert_eq!(s.arith(b"n", false, 1, now), ArithOutcome::Value(9));
    assert_eq!(s.arith(b"m", true, 1, now), ArithOutcome::NotFound);
    assert_eq!(s.arith(b"user:1", true, 1, now), ArithOutcome::NonNumeric);
    assert!(s.delete(b"user:1", now));
    assert!(!s.delete(b"user:1", now));
    let want: Vec<(String, &str, &str, u32)> = [
        ("user:1", "SET", "STORED", 5),
        ("user:1", "ADD", "NOT_STORED", 1),
        ("user:1", "APPEND", "STORED", 7),
        ("user:1", "CAS", "EXISTS", 1),
        ("nope", "REPLACE", "NOT_STORED", 1),
        ("big", "SET", "TOO_LARGE", 1 << 20),
        ("big", "PREPEND", "TOO_LARGE", 0),
        ("user:1", "GET", "HIT", 7),
        ("user:2", "GET", "MISS", 0),
        ("user:1", "GAT", "HIT", 7),
        ("user:1", "TOUCH", "TOUCHED", 0),
        ("user:2", "TOUCH", "NOT_FOUND", 0),
        ("n", "SET", "STORED", 1),
        ("n", "INCR", "HIT", 2),
        ("n", "DECR", "HIT", 1),
        ("m", "INCR", "NOT_FOUND", 0),
        ("user:1", "INCR", "NON_NUMERIC", 0),
        ("user:1", "DELETE", "DELETED", 0),
        ("user:1", "DELETE", "NOT_FOUND", 0),
    ]
    .into_iter()
    .map(|(k, c, st, n)| (k.to_string(), c, st, n))
    .collect();
    assert_eq!(log(&s), want);
    let i = s.introspect.as_ref().unwrap();
    // Hits: get + gat; misses: none for user:1; mutations: set, append,
    // touch, delete.
    assert_eq!(i.key_counts(b"user:1"), (2, 1, 4));
    assert_eq!(i.key_counts(b"user:2"), (0, 2, 0));
    assert_eq!(i.key_counts(b"n"), (0, 0, 3));
    let r = i.report();
    assert!(r.log.iter().all(|e| e.time >= t0 && e.time <= t0 + 5));
    assert!(r.log.windows(2).all(|w| w[0].seq < w[1].seq));
}

#[test]
fn meta_operations_are_recorded_once() {
    use meta_ops::{MetaArith, MetaDelete, MetaSet, MgCount, MgEffects};
    let mut s = shard();
    s.enable_introspection(1);
    let now = 10;
    let ms = |key, data, mode, compare_cas| MetaSet {
        key,
        data,
        mode,
        flags: 0,
        exptime: 0,
        compare_cas,
        new_cas: None,
        invalidate: false,
        vivify_exptime: None,
    };
    s.meta_set(&ms(b"a", b"123", StoreMode::Set, None), now);
    s.meta_set(&ms(b"a", b"4", StoreMode::Set, Some(999)), now);
    s.meta_set_too_large(b"a", now);
    s.meta_set(&ms(b"a", b"5", StoreMode::Set, None), now);
    let hit = |c| MgEffects {
        count: c,
        ..MgEffects::default()
    };
    s.meta_get(b"a", true, None, now, |_| hit(MgCount::Hit));
    s.meta_get(b"a", true, None, now, |_| hit(MgCount::TouchHit));
    s.meta_get(b"b", true, None, now, |_| hit(MgCount::Miss));
    // Vivify on miss: the client missed.
    s.meta_get(b"c", true, Some((0, None)), now, |_| hit(MgCount::Hit));
    let ma = |vivify| MetaArith {
        incr: true,
        delta: 1,
        compare_cas: None,
        new_cas: None,
        vivify,
        initial: 100,
    };
    s.meta_arith(b"a", &ma(false), now, |e, _| e);
    s.meta_arith(b"z", &ma(false), now, |e, _| e);
    s.meta_arith(b"z", &ma(true), now, |e, _| e);
    s.meta_delete(b"a", &MetaDelete::default(), now);
    s.meta_delete(b"a", &MetaDelete::default(), now);
    let got: Vec<(String, &str, &str, u32)> = log(&s);
    let want: Vec<(String, &str, &str, u32)> = [
        ("a", "SET", "STORED", 3),
        ("a", "CAS", "EXISTS", 1),
        ("a", "SET", "TOO_LARGE", 0),
        ("a", "SET", "STORED", 1),
        ("a", "GET", "HIT", 1),
        ("a", "GAT", "HIT", 1),
        ("b", "GET", "MISS", 0),
        ("c", "GET", "MISS", 0),
        ("a", "INCR", "HIT", 1),
        ("z", "INCR", "NOT_FOUND", 0),
        ("z", "INCR", "MISS", 3),
        ("a", "DELETE", "DELETED", 0),
        ("a", "DELETE", "NOT_FOUND", 0),
    ]
    .into_iter()
    .map(|(k, c, st, n)| (k.to_string(), c, st, n))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn watched_prefix_counters_through_the_shard() {
    let mut s = shard();
    s.enable_introspection(8);
    s.introspect
        .as_mut()
        .unwrap()
        .set_watched(&[(1, b"user:".to_vec())]);
    let now = 10;
    for i in 0..50u32 {
        let key = format!("user:{}", i % 5);
        s.store(StoreMode::Set, key.as_bytes(), 0, 0, b"v", 0, now);
        s.get_with(key.as_bytes(), None, now, |_| ());
        s.get_with(b"user:none", None, now, |_| ());
        s.get_with(b"other", None, now, |_| ());
    }
    let r = s.introspect.as_ref().unwrap().report();
    let w = &r.watched[0];
    assert_eq!((w.id, w.hits, w.misses, w.mutations), (1, 50, 50, 50));
    // Same rate again: kept; another rate: started afresh.
    s.enable_introspection(8);
    assert_eq!(s.introspect.as_ref().unwrap().report().log.len(), 100);
    s.enable_introspection(1);
    assert!(s.introspect.as_ref().unwrap().report().log.is_empty());
}

#[test]
fn unix_time_matches_the_clock() {
    let now = clock::now();
    let unix = clock::unix_now();
    assert!((i64::from(unix_time(now)) - unix).abs() <= 1);
    assert_eq!(unix_time(now + 60), unix_time(now) + 60);
}

#[test]
fn counter_parsing_matches_safe_strtoull() {
    assert_eq!(parse_counter(b"10"), Some(10));
    assert_eq!(parse_counter(b"9 "), Some(9));
    assert_eq!(parse_counter(b" 7"), Some(7));
    assert_eq!(parse_counter(b"18446744073709551615"), Some(u64::MAX));
    assert_eq!(parse_counter(b"18446744073709551616"), None);
    assert_eq!(parse_counter(b"hi"), None);
    assert_eq!(parse_counter(b"12abc"), None);
    assert_eq!(parse_counter(b""), None);
}
