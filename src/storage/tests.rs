//! Store-level unit tests (module-level ones live next to their code).

use super::item::{View, DEAD};
use super::store::hash_key;
use super::*;

const MIB: usize = 1 << 20;

fn store(limit: usize) -> Store {
    Store::new(StoreConfig {
        memory_limit: limit,
        item_size_max: MIB,
        shard_id: 1,
        num_shards: 4,
        budget: None,
    })
}

impl Store {
    /// Checks that segments, index and totals agree.
    pub(super) fn check_invariants(&self) {
        let mut items = 0u64;
        let mut bytes = 0u64;
        let mut kv = 0u64;
        for id in self.segs.fifo_ids() {
            let seg = self.segs.get(id);
            let (mut seg_items, mut seg_bytes) = (0u32, 0u32);
            let mut r = 0;
            while r < seg.len as usize {
                let v = View::decode(&seg.data[r..seg.len as usize]);
                if v.bits & DEAD == 0 {
                    let key = &seg.data[r + v.key_off..r + v.key_off + v.key_len];
                    let addr = self.segs.addr(id, r);
                    assert!(
                        self.index.find_loc(hash_key(key), addr).is_some(),
                        "live item not indexed"
                    );
                    let slot = self.find(hash_key(key), key).expect("findable by key");
                    assert_eq!(self.index.loc(slot), addr, "key indexed twice?");
                    seg_items += 1;
                    seg_bytes += v.len() as u32;
                    kv += (v.key_len + v.value_len) as u64;
                }
                r += v.len();
            }
            assert_eq!(r, seg.len as usize);
            assert_eq!(seg_items, seg.live_items);
            assert_eq!(seg_bytes, seg.live_bytes);
            items += seg_items as u64;
            bytes += seg_bytes as u64;
        }
        assert_eq!(items, self.live.items);
        assert_eq!(bytes, self.live.bytes);
        assert_eq!(kv, self.live.kv_bytes);
        assert_eq!(self.index.len() as u64, items);
    }
}

#[test]
fn empty_store_allocates_nothing() {
    let s = store(64 * MIB);
    assert_eq!(s.mem_used(), 0);
    assert!(s.is_empty());
    assert_eq!(s.stats().limit_maxbytes, 64 * MIB as u64);
}

#[test]
fn set_get_peek_delete() {
    let mut s = store(64 * MIB);
    let cas = s.set(b"k", &[b"hello", b" ", b"world"], 42, 0, 10).unwrap();
    assert_ne!(cas, 0);
    let it = s.get(b"k", 11).unwrap();
    assert_eq!(it.key, b"k");
    assert_eq!(it.value, b"hello world");
    assert_eq!(it.flags, 42);
    assert_eq!(it.cas, cas);
    assert_eq!(it.exptime, 0);
    assert!(!it.fetched, "first get reports not fetched before");
    assert_eq!(it.last_access, 10);
    let it = s.get(b"k", 15).unwrap();
    assert!(it.fetched);
    assert_eq!(it.last_access, 11);
    let it = s.peek(b"k", 20).unwrap();
    assert!(it.fetched);
    assert_eq!(it.last_access, 15);
    assert!(s.get(b"other", 20).is_none());
    assert!(s.delete(b"k", 21));
    assert!(!s.delete(b"k", 21));
    assert!(s.get(b"k", 21).is_none());
    assert_eq!(s.len(), 0);
    s.check_invariants();
}

#[test]
fn overwrite_replaces_and_cas_changes() {
    let mut s = store(64 * MIB);
    let c1 = s.set(b"k", &[b"a"], 0, 0, 2).unwrap();
    let c2 = s.set(b"k", &[b"bb"], 1, 0, 2).unwrap();
    assert_ne!(c1, c2);
    let it = s.get(b"k", 2).unwrap();
    assert_eq!((it.value, it.flags, it.cas), (&b"bb"[..], 1, c2));
    assert_eq!(s.len(), 1);
    assert_eq!(s.stats().total_items, 2);
    s.check_invariants();
}

#[test]
fn cas_is_unique_and_in_shard_sequence() {
    let mut s = store(64 * MIB);
    let mut seen = std::collections::HashSet::new();
    for i in 0..10_000u32 {
        let cas = s.set(&i.to_le_bytes(), &[b"v"], 0, 0, 2).unwrap();
        assert_eq!(cas % 4, 2, "shard 1 of 4: cas = c*4 + 2");
        assert!(seen.insert(cas));
    }
    let n = s.next_cas();
    assert!(seen.insert(n));
    for i in 0..10_000u32 {
        assert!(seen.contains(&s.peek(&i.to_le_bytes(), 2).unwrap().cas));
    }
}

#[test]
fn set_with_cas_keeps_given_value() {
    let mut s = store(64 * MIB);
    for cas in [1u64, 2, 6, 7, u64::MAX, 1 << 40] {
        s.set_with_cas(b"k", &[b"v"], 3, 0, cas, 2).unwrap();
        assert_eq!(s.peek(b"k", 2).unwrap().cas, cas);
    }
    s.check_invariants();
}

#[test]
fn size_limits_mirror_memcached() {
    let mut s = store(64 * MIB);
    let ok = vec![b'x'; MIB - 1024];
    assert!(s.set(b"big", &[&ok], 0, 0, 2).is_ok());
    assert_eq!(s.get(b"big", 2).unwrap().value.len(), MIB - 1024);
    let too_big = vec![b'x'; MIB];
    assert_eq!(
        s.set(b"big", &[&too_big], 0, 0, 2),
        Err(StoreError::TooLarge)
    );
    // The failed set left the old item alone.
    assert_eq!(s.get(b"big", 2).unwrap().value.len(), MIB - 1024);
    let exact = vec![b'x'; MIB - 50 - 3];
    assert!(s.set(b"key", &[&exact], 0, 0, 2).is_ok());
    let over = vec![b'x'; MIB - 50 - 2];
    assert_eq!(s.set(b"key", &[&over], 0, 0, 2), Err(StoreError::TooLarge));
    let long_key = vec![b'k'; 251];
    assert_eq!(
        s.set(&long_key, &[b"v"], 0, 0, 2),
        Err(StoreError::TooLarge)
    );
    assert!(s.get(&long_key, 2).is_none());
    assert!(!s.delete(&long_key, 2));
    let max_key = vec![b'k'; 250];
    assert!(s.set(&max_key, &[b"v"], 0, 0, 2).is_ok());
    assert!(s.set(b"", &[b"empty key"], 0, 0, 2).is_ok());
    assert_eq!(s.get(b"", 2).unwrap().value, b"empty key");
    s.check_invariants();
}

#[test]
fn no_memory_when_budget_too_small() {
    let mut s = store(8 * 1024);
    assert_eq!(s.set(b"k", &[b"v"], 0, 0, 2), Err(StoreError::NoMemory));
    let mut s = store(MIB / 2);
    assert!(s.set(b"k", &[b"v"], 0, 0, 2).is_ok());
    let big = vec![0u8; MIB - 2048];
    assert_eq!(s.set(b"big", &[&big], 0, 0, 2), Err(StoreError::NoMemory));
    assert!(s.get(b"k", 2).is_some(), "a refused item evicts nothing");
}

#[test]
fn lazy_expiry() {
    let mut s = store(64 * MIB);
    s.set(b"k", &[b"v"], 0, 100, 50).unwrap();
    assert_eq!(s.get(b"k", 99).unwrap().exptime, 100);
    assert!(s.get(b"k", 100).is_none());
    assert_eq!(s.stats().get_expired, 1);
    assert_eq!(s.stats().reclaimed, 1);
    assert_eq!(s.len(), 0);
    s.set(b"p", &[b"v"], 0, 100, 50).unwrap();
    assert!(s.peek(b"p", 100).is_none());
    assert_eq!(s.stats().get_expired, 1, "peek is not a get");
    assert_eq!(s.stats().expired_unfetched, 1);
    s.check_invariants();
}

#[test]
fn touch_keeps_cas_and_moves_exptime() {
    let mut s = store(64 * MIB);
    let cas = s.set(b"k", &[b"value"], 9, 0, 10).unwrap();
    s.set_stale(b"k", true, 10);
    assert!(s.touch(b"k", 100, 11)); // needs an exptime field: rewritten
    let it = s.peek(b"k", 12).unwrap();
    assert_eq!(
        (it.value, it.flags, it.cas, it.exptime, it.stale),
        (&b"value"[..], 9, cas, 100, true)
    );
    assert!(it.fetched, "touch counts as an access");
    assert!(s.touch(b"k", 200, 12)); // in place
    assert_eq!(s.peek(b"k", 12).unwrap().exptime, 200);
    assert!(s.touch(b"k", 0, 12));
    assert!(s.peek(b"k", 1000).is_some());
    assert!(!s.touch(b"missing", 5, 12));
    let cas2 = s.set(b"e", &[b"v"], 0, 50, 10).unwrap();
    assert!(s.touch(b"e", 0, 11));
    assert_eq!(s.peek(b"e", 60).unwrap().cas, cas2);
    s.check_invariants();
}

#[test]
fn stale_and_win_bits() {
    let mut s = store(64 * MIB);
    s.set(b"k", &[b"v"], 0, 0, 2).unwrap();
    assert!(s.set_win(b"k", true, 2));
    assert!(s.set_stale(b"k", true, 2));
    let it = s.peek(b"k", 2).unwrap();
    assert!(it.win && it.stale && !it.fetched);
    assert!(s.set_win(b"k", false, 2));
    assert!(!s.peek(b"k", 2).unwrap().win);
    assert!(!s.set_win(b"nope", true, 2));
    s.set(b"k", &[b"v2"], 0, 0, 2).unwrap();
    assert!(!s.peek(b"k", 2).unwrap().stale, "a new item starts clean");
}

#[test]
fn flush_now_and_later() {
    let mut s = store(64 * MIB);
    for i in 0..1000u32 {
        s.set(&i.to_le_bytes(), &[b"v"], 0, 0, 10).unwrap();
    }
    s.flush(10, 10);
    assert_eq!(s.len(), 0);
    assert!(s.get(&1u32.to_le_bytes(), 10).is_none());
    s.set(b"a", &[b"1"], 0, 0, 10).unwrap();
    assert!(s.get(b"a", 10).is_some(), "set after flush survives");

    s.flush(20, 11); // delayed
    s.set(b"b", &[b"2"], 0, 0, 19).unwrap();
    assert!(s.get(b"a", 19).is_some());
    s.set(b"c", &[b"3"], 0, 0, 20).unwrap(); // first call at `at`: flush applies first
    assert!(s.get(b"a", 20).is_none());
    assert!(s.get(b"b", 20).is_none());
    assert!(s.get(b"c", 20).is_some());

    s.flush(30, 21);
    s.flush(40, 22); // replaces the pending one
    s.set(b"d", &[b"4"], 0, 0, 35).unwrap();
    assert!(s.get(b"c", 35).is_some());
    assert!(s.get(b"d", 40).is_none());
    s.check_invariants();
    // Memory is reused: filling again allocates nothing new.
    let used = s.mem_used();
    for i in 0..1000u32 {
        s.set(&i.to_le_bytes(), &[b"v"], 0, 0, 41).unwrap();
    }
    assert!(s.mem_used() <= used + 64 * 1024);
}

#[test]
fn maintain_reclaims_expired_and_memory_is_reused() {
    let mut s = store(64 * MIB);
    let v = vec![b'x'; 1000];
    for i in 0..20_000u32 {
        s.set(&i.to_le_bytes(), &[&v], 0, 100, 10).unwrap();
    }
    for i in 20_000..20_100u32 {
        s.set(&i.to_le_bytes(), &[&v], 0, 0, 10).unwrap();
    }
    let used = s.mem_used();
    assert_eq!(s.maintain(50, 1000), 0);
    let mut total = 0;
    for _ in 0..1000 {
        let n = s.maintain(200, 1000);
        assert!(n <= 1000);
        total += n;
        if n == 0 && total > 0 {
            break;
        }
    }
    assert_eq!(total, 20_000);
    assert_eq!(s.len(), 100);
    assert_eq!(s.stats().reclaimed, 20_000);
    s.check_invariants();
    for i in 30_000..50_000u32 {
        s.set(&i.to_le_bytes(), &[&v], 0, 0, 200).unwrap();
    }
    assert!(s.mem_used() <= used + 2 * MIB, "expired memory was reused");
    assert_eq!(s.stats().evictions, 0);
    for i in 20_000..20_100u32 {
        assert!(s.get(&i.to_le_bytes(), 200).is_some());
    }
    s.check_invariants();
}

#[test]
fn tiny_store_holds_max_size_items() {
    // 2 MiB shard, 1 MiB item limit: every max-size item must store.
    let mut s = store(2 * MIB);
    let big = vec![7u8; MIB - 1024];
    for i in 0..50u32 {
        s.set(&i.to_le_bytes(), &[&big], 0, 0, 2).unwrap();
        assert!(s.mem_used() <= 2 * MIB, "{}", s.mem_used());
        assert_eq!(s.get(&i.to_le_bytes(), 2).unwrap().value.len(), big.len());
        // Mixed with small items.
        for j in 0..100u32 {
            s.set(&(1000 + j).to_le_bytes(), &[b"small"], 0, 0, 2)
                .unwrap();
        }
        s.check_invariants();
    }
    assert!(s.stats().evictions > 0);
}

#[test]
fn memory_bound_holds_under_churn() {
    for limit in [MIB / 4, MIB, 3 * MIB, 8 * MIB] {
        let mut s = store(limit);
        let mut x = 12345u64;
        for i in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = (x % 50_000).to_le_bytes();
            let len = if x.is_multiple_of(100) {
                (x % 60_000) as usize
            } else {
                (x % 300) as usize
            };
            let v = vec![(x & 0xff) as u8; len];
            match s.set(&key, &[&v], 0, 0, 2) {
                Ok(_) => {}
                Err(StoreError::NoMemory) => assert!(limit < MIB),
                Err(e) => panic!("{e:?}"),
            }
            if x.is_multiple_of(3) {
                if let Some(it) = s.get(&key, 2) {
                    assert!(it.value.iter().all(|&b| b == it.value[0]));
                }
            }
            assert!(s.mem_used() <= limit, "{} > {limit}", s.mem_used());
            if i % 20_000 == 0 {
                s.check_invariants();
            }
        }
        s.check_invariants();
        assert!(s.stats().evictions > 0);
        // The budget is actually used.
        assert!(s.mem_used() > limit * 3 / 4, "{} of {limit}", s.mem_used());
    }
}

#[test]
fn hot_items_survive_eviction() {
    let mut s = store(4 * MIB);
    let v = vec![1u8; 100];
    for i in 0..100u32 {
        s.set(&i.to_le_bytes(), &[&v], 0, 0, 2).unwrap();
    }
    for i in 100..200_000u32 {
        s.set(&i.to_le_bytes(), &[&v], 0, 0, 2).unwrap();
        if i % 1000 == 0 {
            for h in 0..100u32 {
                assert!(
                    s.get(&h.to_le_bytes(), 2).is_some(),
                    "hot key {h} evicted at {i}"
                );
            }
        }
    }
    s.check_invariants();
}

#[test]
fn cas_and_meta_survive_compaction() {
    let mut s = store(2 * MIB);
    let v = vec![3u8; 200];
    let mut hot = Vec::new();
    for i in 0..50u32 {
        let cas = s.set(&i.to_le_bytes(), &[&v], i, 1_000_000, 2).unwrap();
        s.set_win(&i.to_le_bytes(), true, 2);
        hot.push(cas);
    }
    for i in 50..100_000u32 {
        s.set(&i.to_le_bytes(), &[&v], 0, 0, 2).unwrap();
        if i % 500 == 0 {
            for (h, &cas) in hot.iter().enumerate() {
                let it = s.get(&(h as u32).to_le_bytes(), 3).unwrap();
                assert_eq!(
                    (it.cas, it.flags, it.exptime, it.win),
                    (cas, h as u32, 1_000_000, true)
                );
            }
        }
    }
    s.check_invariants();
}

#[test]
fn shrinking_the_limit_evicts() {
    let mut s = store(16 * MIB);
    let v = vec![0u8; 500];
    for i in 0..30_000u32 {
        s.set(&i.to_le_bytes(), &[&v], 0, 0, 2).unwrap();
    }
    assert!(s.mem_used() > 12 * MIB);
    s.set_memory_limit(4 * MIB);
    assert!(s.mem_used() <= 4 * MIB);
    assert!(s.stats().evictions > 0);
    assert_eq!(s.stats().limit_maxbytes, 4 * MIB as u64);
    s.check_invariants();
    s.set_memory_limit(0);
    assert!(s.is_empty());
    assert_eq!(s.mem_used(), 0);
    assert_eq!(s.set(b"k", &[b"v"], 0, 0, 2), Err(StoreError::NoMemory));
}

#[test]
fn access_time_survives_long_idle() {
    let mut s = store(64 * MIB);
    s.set(b"k", &[b"v"], 0, 0, 10).unwrap();
    let later = 10 + 200_000;
    s.maintain(later, 100);
    s.get(b"k", later).unwrap();
    let it = s.peek(b"k", later + 5).unwrap();
    assert_eq!(it.last_access, later);
}

#[test]
fn overhead_is_small() {
    let mut s = store(512 * MIB);
    let v = [b'v'; 32];
    for i in 0..200_000u64 {
        let key = format!("key:{i:012}");
        s.set(key.as_bytes(), &[&v], 0, 0, 2).unwrap();
    }
    let o = s.bytes_per_item_overhead();
    let n = s.len() as f64;
    eprintln!(
        "overhead {o:.2}: index {:.2} header {:.2} segment slack {:.2} (segments {})",
        s.index.bytes() as f64 / n,
        (s.live.bytes - s.live.kv_bytes) as f64 / n,
        (s.segs.bytes() as f64 - s.live.bytes as f64) / n,
        s.segs.fifo_ids().count()
    );
    // Index + header; the rest is the partly filled write head, which amortizes away with more
    // items (see the bench's 1M-item figure).
    let per_item = (s.index.bytes() + (s.live.bytes - s.live.kv_bytes) as usize) as f64 / n;
    assert!(per_item < 16.0, "index + header {per_item}");
    assert!(o < 20.0, "overhead {o}");
}

#[test]
fn paused_compaction_is_invisible_to_operations() {
    let mut s = store(3 * MIB);
    // key → (value fill byte, length, cas, exptime)
    let mut model: std::collections::HashMap<u32, (u8, usize, u64, u32)> =
        std::collections::HashMap::new();
    let mut x = 7u64;
    let mut paused_seen = 0;
    let mut now = 2;
    for i in 0..300_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = (x % 30_000) as u32;
        let key = k.to_le_bytes();
        match x % 16 {
            0..=6 => {
                let len = (x >> 20) as usize % 120;
                let fill = (i % 251) as u8;
                let exp = if x.is_multiple_of(5) { now + 50 } else { 0 };
                let cas = s.set(&key, &[&vec![fill; len]], k, exp, now).unwrap();
                model.insert(k, (fill, len, cas, exp));
            }
            7..=11 => {
                if let Some(it) = s.get(&key, now) {
                    let (fill, len, cas, exp) = model[&k];
                    assert_eq!(
                        (it.value.len(), it.cas, it.flags, it.exptime),
                        (len, cas, k, exp)
                    );
                    assert!(it.value.iter().all(|&b| b == fill));
                }
            }
            12 => {
                s.delete(&key, now);
                model.remove(&k);
            }
            13 => {
                if s.touch(&key, now + 100, now) {
                    model.get_mut(&k).unwrap().3 = now + 100;
                }
            }
            14 => {
                s.maintain(now, 10);
            }
            _ => now += 1,
        }
        if s.compaction.as_ref().is_some_and(|c| !c.done) {
            paused_seen += 1;
        }
        if i % 5_000 == 0 {
            s.check_invariants();
        }
    }
    s.check_invariants();
    assert!(
        paused_seen > 1000,
        "compaction was paced over stores ({paused_seen})"
    );
    assert!(s.stats().evictions > 0);
}
