//! Stores sharing one cache's [`Budget`] (`budget.rs`): the plan holds across stores, fills,
//! and lease flows back on flush, plan changes, maintain and drop.

use std::sync::Arc;

use super::*;

const MIB: usize = 1 << 20;

fn budgeted(b: &Arc<Budget>, shard_id: u32, num_shards: u32) -> Store {
    Store::new(StoreConfig {
        memory_limit: usize::MAX, // ignored with a budget
        item_size_max: MIB,
        shard_id,
        num_shards,
        budget: Some(b.clone()),
    })
}

/// Deterministic xorshift64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Value size from 50 B to 20 KB, log-uniform (most items small, most bytes in large ones).
    fn size(&mut self) -> usize {
        (50.0 * 400f64.powf(self.unit())) as usize
    }
}

/// Writes unique keys of uneven sizes, 75 % of them to store 0, into two stores sharing a plan
/// until either evicts. Returns the live bytes of both just before the first eviction, as a
/// fraction of the plan. Checks the plan holds after every set.
fn fill_until_first_eviction(plan: usize, seed: u64) -> f64 {
    let b = Arc::new(Budget::new(plan));
    let mut stores = [budgeted(&b, 0, 2), budgeted(&b, 1, 2)];
    let mut rng = Rng(seed);
    let value = vec![0x5au8; 20_000];
    let mut before = 0u64;
    for i in 0u64.. {
        let which = usize::from(rng.next().is_multiple_of(4));
        let len = rng.size();
        let key = format!("key:{i}");
        stores[which]
            .set(key.as_bytes(), &[&value[..len]], 0, 0, 1)
            .unwrap();
        assert!(b.leased() <= plan);
        let used: usize = stores.iter().map(|s| s.mem_used()).sum();
        assert!(
            used <= plan + 2 * MEMORY_SLACK,
            "{used} bytes allocated on a plan of {plan}"
        );
        for s in &stores {
            assert!(s.mem_used() <= s.limit + MEMORY_SLACK);
        }
        if stores.iter().any(|s| s.stats().evictions > 0) {
            break;
        }
        before = stores.iter().map(|s| s.stats().bytes).sum();
    }
    for s in &stores {
        s.check_invariants();
        let head_free = s.segs.head().map_or(0, |h| s.segs.get(h).free());
        eprintln!(
            "  lease {} mem_used {} bytes {} index {} head free {head_free}",
            s.limit,
            s.mem_used(),
            s.live.bytes,
            s.index.bytes()
        );
    }
    let split: Vec<_> = stores.iter().map(|s| s.stats().bytes).collect();
    let fill = before as f64 / plan as f64;
    eprintln!(
        "plan {plan}: {:.2} % filled before the first eviction (bytes per store now {split:?}, \
         leased {})",
        fill * 100.0,
        b.leased()
    );
    fill
}

#[test]
fn shared_plan_fills_before_evicting() {
    for (plan, seed) in [
        (25_000_000, 0x2545_F491_4F6C_DD1D),
        (4 * MIB, 0x9E37_79B9_7F4A_7C15),
        (64 * MIB, 0xD1B5_4A32_D192_ED03),
    ] {
        let fill = fill_until_first_eviction(plan, seed);
        assert!(
            fill >= 0.97,
            "plan {plan}: only {:.2} % filled",
            fill * 100.0
        );
    }
}

#[test]
fn idle_budgeted_store_leases_nothing() {
    let b = Arc::new(Budget::new(64 * MIB));
    let mut s = budgeted(&b, 0, 4);
    assert_eq!(
        (s.mem_used(), b.leased(), s.stats().limit_maxbytes),
        (0, 0, 0)
    );
    assert_eq!(s.maintain(10, 100), 0);
    assert!(s.get(b"nope", 10).is_none());
    assert_eq!((s.mem_used(), b.leased()), (0, 0));
    s.set(b"k", &[b"v"], 0, 0, 10).unwrap();
    assert!(b.leased() > 0 && b.leased() <= MIB + MEMORY_SLACK);
    assert_eq!(s.stats().limit_maxbytes, b.leased() as u64);
    assert_eq!(s.get(b"k", 11).unwrap().value, b"v");
}

/// Fills both stores up to the plan with 1 KB values.
fn fill(stores: &mut [Store], n: usize) {
    let v = [1u8; 1000];
    for i in 0..n {
        let s = &mut stores[i % stores.len()];
        s.set(format!("k{i}").as_bytes(), &[&v], 0, 0, 1).unwrap();
    }
}

#[test]
fn flush_returns_the_lease() {
    let b = Arc::new(Budget::new(8 * MIB));
    let mut stores = [budgeted(&b, 0, 2), budgeted(&b, 1, 2)];
    fill(&mut stores, 20_000);
    assert!(b.leased() > 7 * MIB);
    let other = stores[1].limit;
    stores[0].flush(1, 1);
    assert!(stores[0].is_empty());
    assert_eq!(stores[0].mem_used(), 0);
    assert_eq!(b.leased(), other, "all of store 0's lease is back");
    // A delayed flush, applied by a later call, returns it as well.
    stores[1].flush(5, 2);
    assert!(stores[1].get(b"k1", 6).is_none());
    assert_eq!(b.leased(), 0);
    // And the store leases again on its next write.
    stores[0].set(b"again", &[b"x"], 0, 0, 7).unwrap();
    assert!(b.leased() > 0);
    assert_eq!(stores[0].get(b"again", 7).unwrap().value, b"x");
}

#[test]
fn lowering_the_plan_shrinks_stores_on_maintain() {
    let plan = 16 * MIB;
    let b = Arc::new(Budget::new(plan));
    let mut stores = [budgeted(&b, 0, 2), budgeted(&b, 1, 2)];
    fill(&mut stores, 40_000);
    assert!(stores.iter().all(|s| s.stats().evictions > 0));
    let new_plan = 6 * MIB;
    b.set_plan(new_plan);
    // One maintain per store: each scales its lease by plan / leased at the lowering.
    for s in &mut stores {
        s.maintain(2, 100);
    }
    assert!(b.leased() <= new_plan, "{} leased", b.leased());
    // Further rounds change nothing.
    let limits = [stores[0].limit, stores[1].limit];
    for s in &mut stores {
        s.maintain(2, 100);
    }
    assert_eq!(limits, [stores[0].limit, stores[1].limit]);
    let used: usize = stores.iter().map(|s| s.mem_used()).sum();
    assert!(used <= new_plan, "{used} > {new_plan}");
    let (a, c) = (stores[0].limit, stores[1].limit);
    assert!(a.abs_diff(c) < MIB, "shrunk in proportion: {a} vs {c}");
    for s in &stores {
        s.check_invariants();
        assert!(!s.is_empty());
    }
    // Still serving, within the new plan.
    fill(&mut stores, 10_000);
    assert!(b.leased() <= new_plan);
    // Raising the plan lets them grow again.
    b.set_plan(plan);
    fill(&mut stores, 40_000);
    assert!(b.leased() > new_plan);
}

#[test]
fn dropping_a_store_returns_its_lease() {
    let b = Arc::new(Budget::new(8 * MIB));
    let mut stores = vec![budgeted(&b, 0, 2), budgeted(&b, 1, 2)];
    fill(&mut stores, 20_000);
    let kept = stores[1].limit;
    drop(stores.remove(0));
    assert_eq!(b.leased(), kept);
    stores[0].release_all();
    assert_eq!(b.leased(), 0);
    assert_eq!(stores[0].mem_used(), 0);
    stores[0].set(b"k", &[b"v"], 0, 0, 1).unwrap();
    drop(stores);
    assert_eq!(b.leased(), 0);
}

#[test]
fn maintain_moves_unused_lease_to_another_core() {
    let b = Arc::new(Budget::new(8 * MIB));
    let mut a = budgeted(&b, 0, 2);
    let mut c = budgeted(&b, 1, 2);
    let v = [1u8; 1000];
    for i in 0..10_000 {
        a.set(format!("a{i}").as_bytes(), &[&v], 0, 100, 1).unwrap();
    }
    assert!(b.leased() > 7 * MIB, "store a took the plan");
    // Everything in a expires; its maintain walk frees the segments and returns the lease.
    while a.maintain(200, 1000) > 0 {}
    assert!(a.is_empty());
    assert!(a.limit < 2 * MIB, "a kept {} of lease", a.limit);
    for i in 0..10_000 {
        c.set(format!("c{i}").as_bytes(), &[&v], 0, 0, 201).unwrap();
    }
    assert!(c.stats().bytes > 6 * MIB as u64, "c could use a's memory");
    assert!(b.leased() <= 8 * MIB);
}

#[test]
fn set_memory_limit_resizes_the_lease() {
    let b = Arc::new(Budget::new(8 * MIB));
    let mut s = budgeted(&b, 0, 1);
    fill(std::slice::from_mut(&mut s), 20_000);
    s.set_memory_limit(2 * MIB);
    assert_eq!(b.leased(), 2 * MIB);
    assert!(s.mem_used() <= 2 * MIB);
    s.set_memory_limit(100 * MIB);
    assert_eq!(b.leased(), 8 * MIB, "grows only as far as the plan");
    s.check_invariants();
}

#[test]
fn small_plan_holds_a_large_item() {
    let b = Arc::new(Budget::new(4 * MIB));
    let mut stores = [budgeted(&b, 0, 2), budgeted(&b, 1, 2)];
    let big = vec![3u8; MIB - 100];
    stores[1].set(b"big", &[&big], 0, 0, 1).unwrap();
    fill(&mut stores, 2_000);
    stores[1].set(b"big2", &[&big], 0, 0, 1).unwrap();
    assert_eq!(stores[1].get(b"big2", 1).unwrap().value.len(), big.len());
    assert!(b.leased() <= 4 * MIB);
    for s in &stores {
        s.check_invariants();
    }
}

#[test]
fn budgeted_stores_under_churn_stay_consistent_and_within_plan() {
    let plan = 4 * MIB;
    let b = Arc::new(Budget::new(plan));
    let mut stores = [budgeted(&b, 0, 2), budgeted(&b, 1, 2)];
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    let value = vec![7u8; 20_000];
    for i in 0..200_000u32 {
        let x = rng.next();
        let which = usize::from(x % 8 < 2);
        let s = &mut stores[which];
        let key = format!("k{}", (x >> 8) % 20_000);
        match (x >> 40) % 10 {
            0..=5 => {
                let len = rng.size();
                s.set(key.as_bytes(), &[&value[..len]], 0, 0, i / 100)
                    .unwrap();
            }
            6..=8 => {
                s.get(key.as_bytes(), i / 100);
            }
            _ => {
                s.delete(key.as_bytes(), i / 100);
            }
        }
        if i % 5_000 == 0 {
            s.maintain(i / 100, 100);
        }
        assert!(b.leased() <= plan);
        assert!(s.mem_used() <= s.limit + MEMORY_SLACK);
    }
    for s in &stores {
        s.check_invariants();
        assert!(s.stats().evictions > 0);
    }
    let bytes: u64 = stores.iter().map(|s| s.stats().bytes).sum();
    eprintln!(
        "steady state: {:.1} % of the plan live",
        bytes as f64 * 100.0 / plan as f64
    );
}

#[test]
fn an_emptied_store_gives_back_its_memory_on_maintain() {
    let b = Arc::new(Budget::new(25_000_000));
    let mut s = budgeted(&b, 0, 2);
    s.set(b"k", &[b"v"], 0, 0, 1).unwrap();
    assert!(s.mem_used() > 0 && b.leased() > 0);
    assert!(s.delete(b"k", 1));
    s.maintain(2, 1000);
    assert_eq!(
        (s.mem_used(), b.leased()),
        (0, 0),
        "an empty cache holds nothing"
    );
    // A second maintain has nothing left to do, and the store still works.
    s.maintain(3, 1000);
    s.set(b"k", &[b"w"], 0, 0, 4).unwrap();
    assert_eq!(s.get(b"k", 4).unwrap().value, b"w");
    // A delayed flush keeps an empty store's state until it has happened.
    assert!(s.delete(b"k", 4));
    s.flush(10, 4);
    s.maintain(5, 1000);
    s.set(b"late", &[b"x"], 0, 0, 6).unwrap();
    s.maintain(11, 1000);
    assert!(
        s.get(b"late", 11).is_none(),
        "the delayed flush still applied"
    );
}

#[test]
fn small_plans_store_their_first_item_on_every_core() {
    for plan in [8 * MIB, 25_000_000, 2 * MIB] {
        for shards in [1u32, 2, 4] {
            let b = Arc::new(Budget::new(plan));
            let mut stores: Vec<Store> = (0..shards).map(|i| budgeted(&b, i, shards)).collect();
            for (i, s) in stores.iter_mut().enumerate() {
                s.maintain(1, 1000);
                assert!(
                    s.set(b"k0", &[b"v"], 0, 0, 1).is_ok(),
                    "plan {plan} shard {i} of {shards}"
                );
            }
        }
    }
}
