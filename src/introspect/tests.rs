use super::*;

const T0: u32 = 1_700_000_000;

fn hits(i: &mut Introspect, key: &[u8], n: usize) {
    for _ in 0..n {
        i.record(T0, Cmd::Get, Status::Hit, key, 10);
    }
}

#[test]
fn names() {
    let cmds = [
        (Cmd::Get, "GET"),
        (Cmd::Gat, "GAT"),
        (Cmd::Touch, "TOUCH"),
        (Cmd::Set, "SET"),
        (Cmd::Add, "ADD"),
        (Cmd::Replace, "REPLACE"),
        (Cmd::Append, "APPEND"),
        (Cmd::Prepend, "PREPEND"),
        (Cmd::Cas, "CAS"),
        (Cmd::Delete, "DELETE"),
        (Cmd::Incr, "INCR"),
        (Cmd::Decr, "DECR"),
    ];
    for (c, n) in cmds {
        assert_eq!(c.name(), n);
    }
    let statuses = [
        (Status::Hit, "HIT"),
        (Status::Miss, "MISS"),
        (Status::Stored, "STORED"),
        (Status::NotStored, "NOT_STORED"),
        (Status::Exists, "EXISTS"),
        (Status::NotFound, "NOT_FOUND"),
        (Status::Deleted, "DELETED"),
        (Status::Touched, "TOUCHED"),
        (Status::TooLarge, "TOO_LARGE"),
        (Status::NoMemory, "NO_MEMORY"),
        (Status::NonNumeric, "NON_NUMERIC"),
    ];
    for (s, n) in statuses {
        assert_eq!(s.name(), n);
    }
}

#[test]
fn classification() {
    use Cmd::*;
    use Status::*;
    let cases = [
        (Get, Hit, Class::Hit),
        (Gat, Hit, Class::Hit),
        (Get, Miss, Class::Miss),
        (Gat, Miss, Class::Miss),
        (Touch, NotFound, Class::Miss),
        (Delete, NotFound, Class::Miss),
        (Incr, NotFound, Class::Miss),
        (Decr, Miss, Class::Miss),
        (Set, Stored, Class::Mutation),
        (Add, Stored, Class::Mutation),
        (Replace, Stored, Class::Mutation),
        (Append, Stored, Class::Mutation),
        (Prepend, Stored, Class::Mutation),
        (Cas, Stored, Class::Mutation),
        (Delete, Deleted, Class::Mutation),
        (Incr, Hit, Class::Mutation),
        (Decr, Hit, Class::Mutation),
        (Touch, Touched, Class::Mutation),
        (Add, NotStored, Class::Other),
        (Cas, Exists, Class::Other),
        (Cas, NotFound, Class::Other),
        (Set, TooLarge, Class::Other),
        (Set, NoMemory, Class::Other),
        (Incr, NonNumeric, Class::Other),
        (Delete, Exists, Class::Other),
    ];
    for (c, s, want) in cases {
        assert_eq!(classify(c, s), want, "{c:?} {s:?}");
    }
}

#[test]
fn nothing_allocated_until_first_record() {
    let mut i = Introspect::new(1);
    assert_eq!(i.heap_bytes(), 0);
    i.tick(T0 + 10_000);
    assert_eq!(i.heap_bytes(), 0);
    let r = i.report();
    assert!(r.log.is_empty() && r.popular.most_hit_keys.is_empty());
    assert_eq!(r.popular.time_slice_ns, 0);
    i.record(T0, Cmd::Get, Status::Miss, b"k", 0);
    assert!(i.heap_bytes() > 0);
}

#[test]
fn sketches_follow_the_classification() {
    let mut i = Introspect::new(1);
    hits(&mut i, b"user:1", 5);
    hits(&mut i, b"user:2", 2);
    i.record(T0, Cmd::Get, Status::Miss, b"user:3", 0);
    i.record(T0, Cmd::Delete, Status::NotFound, b"user:3", 0);
    i.record(T0, Cmd::Set, Status::Stored, b"page:9", 100);
    i.record(T0, Cmd::Incr, Status::Hit, b"page:9", 2);
    i.record(T0, Cmd::Add, Status::NotStored, b"page:9", 100);
    i.record(T0, Cmd::Set, Status::Stored, b"plain", 1);
    assert_eq!(i.key_counts(b"user:1"), (5, 0, 0));
    assert_eq!(i.key_counts(b"user:3"), (0, 2, 0));
    assert_eq!(i.key_counts(b"page:9"), (0, 0, 2));
    assert_eq!(i.key_counts(b"nope"), (0, 0, 0));
    let p = i.report().popular;
    let top = |v: &[Top]| {
        v.iter()
            .map(|t| (String::from_utf8_lossy(&t.name).into_owned(), t.popularity))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        top(&p.most_hit_keys),
        [("user:1".into(), 5), ("user:2".into(), 2)]
    );
    assert_eq!(top(&p.most_missed_keys), [("user:3".into(), 2)]);
    assert_eq!(
        top(&p.most_mutated_keys),
        [("page:9".into(), 2), ("plain".into(), 1)]
    );
    // Every operation counts toward its prefix; "plain" has none.
    assert_eq!(
        top(&p.popular_prefixes),
        [("user".into(), 9), ("page".into(), 3)]
    );
}

#[test]
fn prefix_ends_at_the_first_delimiter() {
    assert_eq!(prefix_of(b"a:b:c"), Some(&b"a"[..]));
    assert_eq!(prefix_of(b":x"), Some(&b""[..]));
    assert_eq!(prefix_of(b"abc"), None);
}

#[test]
fn log_records_every_request_in_order() {
    let mut i = Introspect::new(16);
    for n in 0..(LOG_LEN as u32 + 5) {
        i.record(
            T0 + n,
            Cmd::Set,
            Status::Stored,
            format!("k{n}").as_bytes(),
            n,
        );
    }
    let log = i.report().log;
    assert_eq!(log.len(), LOG_LEN);
    assert_eq!(log[0].key, b"k5");
    assert_eq!(log[0].seq, 6);
    assert_eq!(log[0].time, T0 + 5);
    assert_eq!(log[0].cmd, "SET");
    assert_eq!(log[0].status, "STORED");
    assert_eq!(log[0].size, 5);
    let last = log.last().unwrap();
    assert_eq!(last.key, format!("k{}", LOG_LEN + 4).as_bytes());
    assert!(log.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
}

#[test]
fn long_keys_are_truncated() {
    let mut i = Introspect::new(1);
    let key = vec![b'x'; 300];
    hits(&mut i, &key, 2);
    assert_eq!(i.report().log[0].key.len(), MAX_KEY_LEN);
    assert_eq!(i.key_counts(&key), (2, 0, 0));
}

#[test]
fn watched_counters_are_exact_and_kept_by_id() {
    let mut i = Introspect::new(64);
    i.set_watched(&[(1, b"user:".to_vec()), (2, b"page:".to_vec())]);
    for _ in 0..100 {
        i.record(T0, Cmd::Get, Status::Hit, b"user:1", 1);
        i.record(T0, Cmd::Get, Status::Miss, b"user:2", 0);
        i.record(T0, Cmd::Set, Status::Stored, b"page:1", 1);
        i.record(T0, Cmd::Add, Status::NotStored, b"page:1", 1);
        i.record(T0, Cmd::Get, Status::Hit, b"other", 1);
    }
    let w = |i: &Introspect| {
        i.report()
            .watched
            .iter()
            .map(|w| (w.id, w.hits, w.misses, w.mutations))
            .collect::<Vec<_>>()
    };
    assert_eq!(w(&i), [(1, 100, 100, 0), (2, 0, 0, 100)]);
    // Keep 2, drop 1, add 3; 1 comes back from zero.
    i.set_watched(&[(2, b"page:".to_vec()), (3, b"o".to_vec())]);
    i.record(T0, Cmd::Get, Status::Hit, b"other", 1);
    assert_eq!(w(&i), [(2, 0, 0, 100), (3, 1, 0, 0)]);
    i.set_watched(&[(1, b"user:".to_vec()), (2, b"page:".to_vec())]);
    assert_eq!(w(&i), [(1, 0, 0, 0), (2, 0, 0, 100)]);
    // A changed prefix starts over.
    i.set_watched(&[(2, b"pag".to_vec())]);
    assert_eq!(w(&i), [(2, 0, 0, 0)]);
    // At most MAX_WATCHED, repeated ids ignored.
    let many: Vec<(u64, Vec<u8>)> = (0..20).map(|n| (n % 12, vec![b'a'])).collect();
    i.set_watched(&many);
    assert_eq!(i.report().watched.len(), MAX_WATCHED);
}

#[test]
fn watched_sketches_hold_only_their_keys() {
    let mut i = Introspect::new(1);
    i.set_watched(&[(7, b"user:".to_vec())]);
    hits(&mut i, b"user:1", 3);
    hits(&mut i, b"page:1", 5);
    i.record(T0, Cmd::Set, Status::Stored, b"user:2", 1);
    let r = i.report();
    let w = &r.watched[0];
    assert_eq!(w.popular.most_hit_keys.len(), 1);
    assert_eq!(w.popular.most_hit_keys[0].name, b"user:1");
    assert_eq!(w.popular.most_hit_keys[0].popularity, 3);
    assert_eq!(w.popular.most_mutated_keys[0].name, b"user:2");
    assert!(w.popular.popular_prefixes.is_empty());
    assert_eq!(r.popular.most_hit_keys[0].name, b"page:1");
}

#[test]
fn tick_halves_every_decay_period() {
    let mut i = Introspect::new(1);
    i.set_watched(&[(1, b"k".to_vec())]);
    hits(&mut i, b"k:1", 16);
    i.tick(T0 + DECAY_SECS - 1);
    assert_eq!(i.key_counts(b"k:1"), (16, 0, 0));
    i.tick(T0 + DECAY_SECS);
    assert_eq!(i.key_counts(b"k:1"), (8, 0, 0));
    i.tick(T0 + DECAY_SECS + 1);
    assert_eq!(i.key_counts(b"k:1"), (8, 0, 0));
    // Two periods passed at once: halved twice.
    i.tick(T0 + 3 * DECAY_SECS);
    assert_eq!(i.key_counts(b"k:1"), (2, 0, 0));
    let r = i.report();
    assert_eq!(r.popular.popular_prefixes[0].popularity, 2);
    assert_eq!(r.watched[0].popular.most_hit_keys[0].popularity, 2);
    // Exact counters do not decay.
    assert_eq!(r.watched[0].hits, 16);
    // A long idle time forgets everything.
    i.tick(T0 + 1000 * DECAY_SECS);
    assert_eq!(i.key_counts(b"k:1"), (0, 0, 0));
    assert!(i.report().popular.most_hit_keys.is_empty());
}

#[test]
fn time_slice_is_capped_at_two_decay_periods() {
    let mut i = Introspect::new(1);
    i.record(T0, Cmd::Get, Status::Miss, b"a", 0);
    i.record(T0 + 42, Cmd::Get, Status::Miss, b"a", 0);
    assert_eq!(i.report().popular.time_slice_ns, 42_000_000_000);
    i.tick(T0 + 10 * DECAY_SECS);
    assert_eq!(
        i.report().popular.time_slice_ns,
        u64::from(2 * DECAY_SECS) * 1_000_000_000
    );
}

/// 1 in N sampling, scaled back, estimates counts within a few percent,
/// even for a pattern whose period equals N (a fixed stride would see
/// only one of these keys).
#[test]
fn sampling_is_unbiased_and_does_not_alias() {
    for n in [2u32, 8] {
        let mut i = Introspect::new(n);
        let rounds = 20_000;
        for _ in 0..rounds {
            for k in 0..n {
                i.record(T0, Cmd::Get, Status::Hit, format!("k{k}").as_bytes(), 1);
            }
        }
        for k in 0..n {
            let (h, _, _) = i.key_counts(format!("k{k}").as_bytes());
            let err = (h as f64 - rounds as f64).abs() / rounds as f64;
            assert!(err < 0.08, "n={n} k{k}: {h} vs {rounds}");
        }
    }
}

#[test]
fn memory_stays_within_the_documented_bound() {
    let mut i = Introspect::new(1);
    let watched: Vec<(u64, Vec<u8>)> = (0..MAX_WATCHED as u64)
        .map(|n| (n, vec![b'a' + n as u8]))
        .collect();
    i.set_watched(&watched);
    let mut key = vec![b'x'; MAX_KEY_LEN];
    for n in 0..5_000u32 {
        key[0] = b'a' + (n % MAX_WATCHED as u32) as u8;
        key[1] = b':';
        key[2..6].copy_from_slice(&n.to_le_bytes());
        i.record(T0, Cmd::Get, Status::Hit, &key, 0);
        i.record(T0, Cmd::Get, Status::Miss, &key, 0);
        i.record(T0, Cmd::Set, Status::Stored, &key, 0);
    }
    let bytes = i.heap_bytes();
    assert!(bytes <= 370_000, "{bytes} bytes");
    // Warm: more traffic of the same shape allocates nothing more.
    for n in 0..1000u32 {
        key[2..6].copy_from_slice(&(n + 7).to_le_bytes());
        i.record(T0, Cmd::Get, Status::Hit, &key, 0);
    }
    assert_eq!(i.heap_bytes(), bytes);
}

fn top(name: &str, popularity: u64) -> Top {
    Top {
        name: name.as_bytes().to_vec(),
        popularity,
    }
}

#[test]
fn merge_popular_concatenates_keys_and_sums_prefixes() {
    let a = Popular {
        time_slice_ns: 5,
        most_hit_keys: vec![top("a", 10), top("c", 3)],
        most_missed_keys: vec![top("m", 1)],
        most_mutated_keys: vec![],
        popular_prefixes: vec![top("p", 4), top("q", 1)],
    };
    let b = Popular {
        time_slice_ns: 9,
        most_hit_keys: vec![top("b", 10), top("d", 7)],
        most_missed_keys: vec![],
        most_mutated_keys: vec![top("z", 2)],
        popular_prefixes: vec![top("q", 6), top("r", 2)],
    };
    let m = merge_popular(&[&a, &b], 3);
    assert_eq!(m.time_slice_ns, 9);
    assert_eq!(m.most_hit_keys, [top("a", 10), top("b", 10), top("d", 7)]);
    assert_eq!(m.most_missed_keys, [top("m", 1)]);
    assert_eq!(m.most_mutated_keys, [top("z", 2)]);
    assert_eq!(m.popular_prefixes, [top("q", 7), top("p", 4), top("r", 2)]);
    let none = merge_popular(&[], 3);
    assert_eq!(none.time_slice_ns, 0);
    assert!(none.most_hit_keys.is_empty());
}

#[test]
fn merge_logs_keeps_the_newest_by_time_then_seq() {
    let entry = |time, seq, key: &str| LogEntry {
        time,
        seq,
        key: key.as_bytes().to_vec(),
        cmd: "GET",
        status: "HIT",
        size: 0,
    };
    let r1 = CoreReport {
        log: vec![entry(10, 1, "a"), entry(12, 2, "b"), entry(12, 3, "c")],
        ..CoreReport::default()
    };
    let r2 = CoreReport {
        log: vec![entry(11, 7, "x"), entry(12, 8, "y"), entry(13, 9, "z")],
        ..CoreReport::default()
    };
    let keys = |v: Vec<LogEntry>| {
        v.into_iter()
            .map(|e| String::from_utf8(e.key).unwrap())
            .collect::<Vec<_>>()
    };
    let both = [r1, r2];
    assert_eq!(keys(merge_logs(&both, 4)), ["b", "c", "y", "z"]);
    assert_eq!(keys(merge_logs(&both, 100)), ["a", "x", "b", "c", "y", "z"]);
    assert!(merge_logs(&both, 0).is_empty());
    assert!(merge_logs(&[], 5).is_empty());
}

/// Space-Saving's guarantees hold through `record` (sample_every 1).
#[test]
fn frequent_keys_are_reported() {
    let mut i = Introspect::new(1);
    let mut n = 0u64;
    for round in 0..200u32 {
        hits(&mut i, b"hot:1", 3);
        hits(&mut i, b"hot:2", 2);
        n += 5;
        for j in 0..5u32 {
            hits(&mut i, format!("cold:{round}:{j}").as_bytes(), 1);
            n += 1;
        }
    }
    let p = i.report().popular;
    assert_eq!(p.most_hit_keys[0].name, b"hot:1");
    assert!(p.most_hit_keys[0].popularity >= 600);
    assert_eq!(p.most_hit_keys[1].name, b"hot:2");
    assert!(p.most_hit_keys[1].popularity >= 400);
    assert_eq!(p.popular_prefixes[0], top("cold", 1000));
    assert!(600 * TOP_K as u64 > n);
}
