use super::*;

fn h(i: u64) -> u64 {
    // A decent 64-bit mix standing in for the store's key hash.
    let mut x = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn insert(ix: &mut Index, i: u64) {
    loop {
        if ix.growth_needed(h(i)).is_some() {
            ix.grow(h(i));
        }
        if ix.insert(h(i), i) {
            return;
        }
        ix.grow(h(i));
    }
}

#[test]
fn alt_is_an_involution_for_any_size() {
    for n in [1usize, 2, 3, 7, 100, 1023, 1024, 1153] {
        for f in 1..2000u64 {
            let b1 = home(f, n);
            assert!(b1 < n);
            let b2 = alt(b1, f, n);
            assert!(b2 < n);
            assert_eq!(alt(b2, f, n), b1);
        }
    }
}

#[test]
fn empty_index_allocates_nothing() {
    let ix = Index::default();
    assert_eq!(ix.bytes(), 0);
    assert!(ix.find(h(1), |_| true).is_none());
}

#[test]
fn insert_find_remove_many() {
    let mut ix = Index::default();
    let n = 200_000u64;
    for i in 1..=n {
        insert(&mut ix, i);
    }
    assert_eq!(ix.len(), n as usize);
    ix.check(h);
    for i in 1..=n {
        let r = ix.find(h(i), |l| l == i).expect("present");
        assert_eq!(ix.loc(r), i);
    }
    assert!(ix.find(h(n + 1), |l| l == n + 1).is_none());
    for i in (1..=n).step_by(2) {
        let r = ix.find_loc(h(i), i).unwrap();
        ix.remove(r);
    }
    ix.check(h);
    for i in 1..=n {
        assert_eq!(ix.find_loc(h(i), i).is_some(), i % 2 == 0);
    }
    // Load stays high: that is what keeps the per-item overhead low.
    let load = ix.load() * 2.0; // half were removed
    assert!(load > 0.75, "load {load}");
}

#[test]
fn load_factor_when_filling() {
    let mut ix = Index::default();
    let mut min = 1.0f64;
    for i in 1..=300_000u64 {
        insert(&mut ix, i);
        if i > 50_000 && i % 1000 == 0 {
            min = min.min(ix.load());
        }
    }
    assert!(min > 0.7, "min load {min}");
    let per_item = ix.bytes() as f64 / ix.len() as f64;
    assert!(per_item < 11.0, "index bytes/item {per_item}");
}

#[test]
fn freq_and_loc_updates() {
    let mut ix = Index::default();
    insert(&mut ix, 42);
    let r = ix.find_loc(h(42), 42).unwrap();
    assert_eq!(ix.freq(r), 0);
    for _ in 0..10 {
        ix.bump_freq(r);
    }
    assert_eq!(ix.freq(r), FREQ_MAX);
    ix.set_freq(r, 1);
    assert_eq!(ix.freq(r), 1);
    ix.set_loc(r, 77, 0);
    assert_eq!(ix.loc(r), 77);
    assert_eq!(ix.freq(r), 0);
    assert!(ix.find_loc(h(42), 77).is_some());
}

#[test]
fn place_fails_cleanly_when_full() {
    let mut buckets = new_buckets(1);
    for i in 1..=8u64 {
        assert!(place(&mut buckets, (fingerprint(h(i)) << FP_SHIFT) | i));
    }
    let before: Vec<u64> = buckets.iter().flat_map(|b| b.0).collect();
    assert!(!place(&mut buckets, (fingerprint(h(9)) << FP_SHIFT) | 9));
    let after: Vec<u64> = buckets.iter().flat_map(|b| b.0).collect();
    assert_eq!(before, after);
}
