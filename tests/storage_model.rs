//! Model-based property tests for the storage engine.
//!
//! 1. With a budget that never evicts, random operation sequences (set/get/peek/delete/touch/
//!    flush/maintain/advance-time) behave exactly like a `HashMap` model: values, flags,
//!    exptimes, CAS unique per store and unchanged by touch.
//! 2. With a small budget (evictions, big values), the store never exceeds its memory bound and
//!    never returns a value other than the last one stored for that key.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use shoal::storage::{Store, StoreConfig, StoreError, MEMORY_SLACK};

const MIB: usize = 1 << 20;

#[derive(Debug, Clone)]
enum Op {
    Set {
        key: u8,
        value: Vec<u8>,
        flags: u32,
        ttl: u8,
    },
    Append {
        key: u8,
        tail: Vec<u8>,
    },
    SetWithCas {
        key: u8,
        cas: u64,
    },
    Get {
        key: u8,
    },
    Peek {
        key: u8,
    },
    Delete {
        key: u8,
    },
    Touch {
        key: u8,
        ttl: u8,
    },
    Stale {
        key: u8,
        on: bool,
    },
    Flush {
        delay: u8,
    },
    Maintain {
        max: u8,
    },
    Advance {
        secs: u8,
    },
}

fn key_bytes(k: u8) -> Vec<u8> {
    // Mix short and long keys; all distinct.
    if k.is_multiple_of(3) {
        vec![b'k', k]
    } else {
        let mut v = format!("key-{k:03}-").into_bytes();
        v.resize(20 + (k as usize * 7) % 230, b'x');
        v
    }
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..24;
    prop_oneof![
        6 => (key.clone(), prop::collection::vec(any::<u8>(), 0..200), prop_oneof![Just(0u32), any::<u32>()], 0u8..6)
            .prop_map(|(key, value, flags, ttl)| Op::Set { key, value, flags, ttl }),
        1 => (key.clone(), prop::collection::vec(any::<u8>(), 0..50)).prop_map(|(key, tail)| Op::Append { key, tail }),
        1 => (key.clone(), any::<u64>()).prop_map(|(key, cas)| Op::SetWithCas { key, cas }),
        5 => key.clone().prop_map(|key| Op::Get { key }),
        2 => key.clone().prop_map(|key| Op::Peek { key }),
        2 => key.clone().prop_map(|key| Op::Delete { key }),
        2 => (key.clone(), 0u8..6).prop_map(|(key, ttl)| Op::Touch { key, ttl }),
        1 => (key.clone(), any::<bool>()).prop_map(|(key, on)| Op::Stale { key, on }),
        1 => (0u8..4).prop_map(|delay| Op::Flush { delay }),
        1 => (0u8..20).prop_map(|max| Op::Maintain { max }),
        2 => (0u8..4).prop_map(|secs| Op::Advance { secs }),
    ]
}

#[derive(Debug, Clone)]
struct Model {
    value: Vec<u8>,
    flags: u32,
    exptime: u32,
    cas: u64,
    stale: bool,
}

fn exptime(ttl: u8, now: u32) -> u32 {
    if ttl == 0 {
        0
    } else {
        now + ttl as u32
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn matches_hashmap_model(ops in prop::collection::vec(op(), 1..300), shard in 0u32..4) {
        let mut store = Store::new(StoreConfig {
            memory_limit: 64 * MIB,
            item_size_max: MIB,
            shard_id: shard,
            num_shards: 4,
            budget: None,
        });
        let mut model: HashMap<u8, Model> = HashMap::new();
        let mut pending_flush: Option<u32> = None;
        let mut seen_cas = HashSet::new();
        let mut now = 2u32;
        for op in ops {
            let advance = matches!(op, Op::Advance { .. });
            let is_get = matches!(op, Op::Get { .. });
            // The model's view of time-driven state before the operation.
            if let Some(at) = pending_flush {
                if now >= at && !advance {
                    model.clear();
                    pending_flush = None;
                }
            }
            if !advance {
                model.retain(|_, m| m.exptime == 0 || m.exptime > now);
            }
            match op {
                Op::Set { key, value, flags, ttl } => {
                    let e = exptime(ttl, now);
                    let cas = store.set(&key_bytes(key), &[&value], flags, e, now).unwrap();
                    prop_assert!(cas != 0);
                    prop_assert!(cas % 4 == (shard as u64 + 1) % 4);
                    prop_assert!(seen_cas.insert(cas), "duplicate cas {}", cas);
                    model.insert(key, Model { value, flags, exptime: e, cas, stale: false });
                }
                Op::Append { key, tail } => {
                    let k = key_bytes(key);
                    let old = store.peek(&k, now).map(|it| (it.value.to_vec(), it.flags, it.exptime));
                    prop_assert_eq!(old.is_some(), model.contains_key(&key));
                    if let Some((v, flags, e)) = old {
                        let cas = store.set(&k, &[&v, &tail], flags, e, now).unwrap();
                        prop_assert!(seen_cas.insert(cas));
                        let mut value = v;
                        value.extend_from_slice(&tail);
                        model.insert(key, Model { value, flags, exptime: e, cas, stale: false });
                    }
                }
                Op::SetWithCas { key, cas } => {
                    store.set_with_cas(&key_bytes(key), &[b"explicit"], 5, 0, cas, now).unwrap();
                    model.insert(key, Model { value: b"explicit".to_vec(), flags: 5, exptime: 0, cas, stale: false });
                }
                Op::Get { key } | Op::Peek { key } => {
                    let k = key_bytes(key);
                    let got = if is_get { store.get(&k, now) } else { store.peek(&k, now) };
                    match (got, model.get(&key)) {
                        (None, None) => {}
                        (Some(it), Some(m)) => {
                            prop_assert_eq!(it.key, &k[..]);
                            prop_assert_eq!(it.value, &m.value[..]);
                            prop_assert_eq!(it.flags, m.flags);
                            prop_assert_eq!(it.cas, m.cas);
                            prop_assert_eq!(it.exptime, m.exptime);
                            prop_assert_eq!(it.stale, m.stale);
                            prop_assert!(it.last_access <= now);
                        }
                        (got, want) => prop_assert!(false, "key {}: store {:?} model {:?}", key, got, want),
                    }
                }
                Op::Delete { key } => {
                    prop_assert_eq!(store.delete(&key_bytes(key), now), model.remove(&key).is_some());
                }
                Op::Touch { key, ttl } => {
                    let e = exptime(ttl, now);
                    let hit = store.touch(&key_bytes(key), e, now);
                    prop_assert_eq!(hit, model.contains_key(&key));
                    if let Some(m) = model.get_mut(&key) {
                        m.exptime = e; // CAS unchanged
                    }
                }
                Op::Stale { key, on } => {
                    prop_assert_eq!(store.set_stale(&key_bytes(key), on, now), model.contains_key(&key));
                    if let Some(m) = model.get_mut(&key) {
                        m.stale = on;
                    }
                }
                Op::Flush { delay } => {
                    store.flush(now + delay as u32, now);
                    if delay == 0 {
                        model.clear();
                        pending_flush = None;
                    } else {
                        pending_flush = Some(now + delay as u32);
                    }
                }
                Op::Maintain { max } => {
                    let n = store.maintain(now, max as usize);
                    prop_assert!(n <= max as usize);
                }
                Op::Advance { secs } => now += secs as u32,
            }
            if !advance {
                // Lazily-expired items may still be counted; everything the model has is there.
                prop_assert!(store.len() >= model.len());
            }
        }
        let stats = store.stats();
        prop_assert_eq!(stats.evictions, 0);
        prop_assert!(stats.mem_used <= 64 * MIB as u64);
    }

    #[test]
    fn bounded_memory_and_no_wrong_values(
        limit_kib in 256usize..4096,
        ops in prop::collection::vec((0u16..400, 0u8..10, any::<u16>()), 1..2000),
    ) {
        let limit = limit_kib * 1024;
        let mut store = Store::new(StoreConfig {
            memory_limit: limit,
            item_size_max: MIB,
            shard_id: 0,
            num_shards: 1,
            budget: None,
        });
        // key → last value stored (as (length, fill byte)), None after delete
        let mut model: HashMap<u16, Option<(usize, u8)>> = HashMap::new();
        let mut stored_bytes = 0usize;
        for (i, (key, kind, x)) in ops.into_iter().enumerate() {
            let k = format!("k{key}").into_bytes();
            match kind {
                0..=4 => {
                    // Mostly small values, sometimes up to ~1 MiB.
                    let len = match x % 64 {
                        0 => (x as usize * 16) % (MIB - 1024),
                        1..=4 => x as usize % 20_000,
                        _ => x as usize % 300,
                    };
                    let fill = (i % 251) as u8;
                    let value = vec![fill; len];
                    match store.set(&k, &[&value], 0, 0, 2) {
                        Ok(_) => {
                            model.insert(key, Some((len, fill)));
                            stored_bytes += len + k.len();
                        }
                        // A failed store leaves the old item; it's still "the last value set".
                        Err(StoreError::NoMemory) => prop_assert!(len + 64 > limit / 2),
                        Err(StoreError::TooLarge) => prop_assert!(false, "len {} not too large", len),
                    }
                }
                5..=8 => {
                    if let Some(it) = store.get(&k, 2) {
                        match model.get(&key) {
                            Some(Some((len, fill))) => {
                                prop_assert_eq!(it.value.len(), *len);
                                prop_assert!(it.value.iter().all(|b| b == fill), "wrong bytes");
                            }
                            other => prop_assert!(false, "key {} returned but model has {:?}", key, other),
                        }
                    }
                }
                _ => {
                    store.delete(&k, 2);
                    model.insert(key, None);
                }
            }
            let stats = store.stats();
            prop_assert!(stats.mem_used as usize <= limit + MEMORY_SLACK,
                "mem_used {} > limit {} + slack", stats.mem_used, limit);
            prop_assert_eq!(stats.curr_items as usize, store.len());
        }
        let stats = store.stats();
        if stored_bytes > 2 * limit {
            prop_assert!(stats.evictions > 0, "stored {} into {} without evicting", stored_bytes, limit);
        }
    }
}

#[test]
fn two_mib_shard_with_one_mib_items() {
    let mut store = Store::new(StoreConfig {
        memory_limit: 2 * MIB,
        item_size_max: MIB,
        shard_id: 0,
        num_shards: 1,
        budget: None,
    });
    let value = vec![9u8; MIB - 1024];
    for i in 0..20u32 {
        store.set(&i.to_be_bytes(), &[&value], 0, 0, 2).unwrap();
        assert!(store.stats().mem_used as usize <= 2 * MIB);
        assert_eq!(store.get(&i.to_be_bytes(), 2).unwrap().value, &value[..]);
    }
    assert_eq!(
        store.set(b"x", &[&vec![0u8; MIB]], 0, 0, 2),
        Err(StoreError::TooLarge)
    );
}
