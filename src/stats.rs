//! Server counters, memcached's names (protocol.md §1.4).
//!
//! Each core owns one `CoreStats` and is its only writer: `Counter::incr` is a
//! relaxed load + store (a plain `mov` on x86, no lock prefix), so the hot path
//! has no contended atomics, while `stats` on any core — or the admin thread —
//! can read every core's numbers at any time and sum them.

use std::collections::HashMap;
use std::sync::atomic::{
    AtomicU32, AtomicU64, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed,
};
use std::sync::{Arc, Mutex, OnceLock};

/// A single-writer counter readable from any thread.
#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one; must only be called by the owning core.
    #[inline]
    pub fn incr(&self) {
        self.add(1)
    }
    /// Adds `n`; must only be called by the owning core.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed)
    }
    /// Sets a gauge (single writer).
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed)
    }
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

macro_rules! core_stats {
    ($($name:ident),* $(,)?) => {
        /// Per-core counters; field names are memcached's stat names.
        #[derive(Default, Debug)]
        pub struct CoreStats { $(pub $name: Counter,)* }

        /// A plain copy of the counters, summed over cores.
        #[derive(Default, Debug, Clone, Copy)]
        pub struct Totals { $(pub $name: u64,)* }

        impl CoreStats {
            /// Adds this core's values into `t`.
            pub fn add_to(&self, t: &mut Totals) {
                $(t.$name = t.$name.wrapping_add(self.$name.get());)*
            }
        }

        impl Totals {
            /// `self - base` per counter (for `stats reset`).
            pub fn minus(&self, base: &Totals) -> Totals {
                Totals { $($name: self.$name.wrapping_sub(base.$name),)* }
            }

            /// `self += other` per counter (sums over caches).
            pub fn add(&mut self, other: &Totals) {
                $(self.$name = self.$name.wrapping_add(other.$name);)*
            }
        }
    };
}

core_stats!(
    // connections
    curr_connections,
    total_connections,
    rejected_connections,
    conn_yields,
    // commands
    cmd_get,
    cmd_set,
    cmd_flush,
    cmd_touch,
    cmd_meta,
    get_hits,
    get_misses,
    get_expired,
    get_flushed,
    delete_misses,
    delete_hits,
    incr_misses,
    incr_hits,
    decr_misses,
    decr_hits,
    cas_misses,
    cas_hits,
    cas_badval,
    touch_hits,
    touch_misses,
    store_too_large,
    store_no_memory,
    auth_cmds,
    auth_errors,
    bytes_read,
    bytes_written,
    // remote work (shoal-specific)
    forwarded_batches,
    forwarded_ops,
    // storage gauges published by the shard after mutations
    curr_items,
    total_items,
    bytes,
    evictions,
    evicted_unfetched,
    expired_unfetched,
    reclaimed,
    limit_maxbytes,
    mem_used,
);

impl CoreStats {
    /// Copies a store's gauges into this core's counters.
    pub fn publish_store(&self, s: &crate::storage::StoreStats) {
        self.curr_items.set(s.curr_items);
        self.total_items.set(s.total_items);
        self.bytes.set(s.bytes);
        self.evictions.set(s.evictions);
        self.evicted_unfetched.set(s.evicted_unfetched);
        self.expired_unfetched.set(s.expired_unfetched);
        self.reclaimed.set(s.reclaimed);
        self.limit_maxbytes.set(s.limit_maxbytes);
        self.mem_used.set(s.mem_used);
        self.get_expired.set(s.get_expired);
        self.get_flushed.set(s.get_flushed);
    }
}

/// One scope's stats on every core: the whole server in open mode, or one
/// hosted cache in multi-tenant mode (its own counters, its own `stats reset`).
pub struct Registry {
    cores: Vec<Arc<CoreStats>>,
    /// Values at the last `stats reset`; reported numbers are `current - baseline`.
    baseline: Mutex<Totals>,
    /// Connections logged in to this cache on every core (the [`Seat`]s
    /// taken): the one counter cores share, touched at login and logout.
    seats: AtomicU32,
}

/// A logged-in connection's place in its cache's connection limit; given
/// back when dropped (logout, close, re-login), however the connection ends.
pub struct Seat(Arc<Registry>);

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.seats.fetch_sub(1, AcqRel);
    }
}

/// The server-wide registry (open mode's only one; in multi-tenant mode it
/// counts connections and auth before a connection has a cache).
static REGISTRY: OnceLock<Arc<Registry>> = OnceLock::new();

/// Per-cache registries, created when a cache is first used on any core.
/// Locked on first use of a cache per core and on `stats`, never per request.
static CACHES: Mutex<Option<HashMap<u32, Arc<Registry>>>> = Mutex::new(None);

/// Creates the registry for `n` cores (once per process).
pub fn init(n: usize) -> &'static Registry {
    REGISTRY.get_or_init(|| Arc::new(Registry::new(n)))
}

/// The process-wide registry; panics if `init` was not called (a startup bug).
pub fn registry() -> &'static Registry {
    REGISTRY.get().expect("stats::init not called")
}

/// The registry of cache `id` (0 = the server-wide one).
pub fn cache(id: u32) -> Arc<Registry> {
    let global = REGISTRY.get().expect("stats::init not called");
    if id == 0 {
        return global.clone();
    }
    let mut map = CACHES.lock().unwrap_or_else(|e| e.into_inner());
    map.get_or_insert_with(HashMap::new)
        .entry(id)
        .or_insert_with(|| Arc::new(Registry::new(global.cores.len())))
        .clone()
}

/// The registry of cache `id` if it was ever used (None also before `init`).
pub fn cache_if_exists(id: u32) -> Option<Arc<Registry>> {
    REGISTRY.get()?;
    let map = CACHES.lock().unwrap_or_else(|e| e.into_inner());
    map.as_ref()?.get(&id).cloned()
}

/// Forgets a deleted cache's counters.
pub fn drop_cache(id: u32) {
    let mut map = CACHES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = map.as_mut() {
        m.remove(&id);
    }
}

impl Registry {
    fn new(n: usize) -> Registry {
        Registry {
            cores: (0..n).map(|_| Arc::new(CoreStats::default())).collect(),
            baseline: Mutex::new(Totals::default()),
            seats: AtomicU32::new(0),
        }
    }

    /// Takes a seat unless `limit` (0 = none) are taken: exact across
    /// cores, as the check and the increment are one compare-and-swap.
    pub fn take_seat(self: &Arc<Self>, limit: u32) -> Option<Seat> {
        self.seats
            .fetch_update(AcqRel, Acquire, |n| {
                (limit == 0 || n < limit).then(|| n.saturating_add(1))
            })
            .ok()
            .map(|_| Seat(self.clone()))
    }

    /// Seats taken now.
    pub fn seats(&self) -> u32 {
        self.seats.load(Acquire)
    }
    pub fn core(&self, i: usize) -> Arc<CoreStats> {
        self.cores[i].clone()
    }
    pub fn cores(&self) -> &[Arc<CoreStats>] {
        &self.cores
    }
    /// Raw sums over all cores.
    pub fn raw_totals(&self) -> Totals {
        let mut t = Totals::default();
        for c in &self.cores {
            c.add_to(&mut t);
        }
        t
    }
    /// Sums minus the `stats reset` baseline; the gauges (connections,
    /// items, bytes, limits) are kept as they are.
    pub fn totals(&self) -> Totals {
        let raw = self.raw_totals();
        let base = *self.baseline.lock().unwrap_or_else(|e| e.into_inner());
        let mut t = raw.minus(&base);
        t.curr_connections = raw.curr_connections;
        t.curr_items = raw.curr_items;
        t.bytes = raw.bytes;
        t.limit_maxbytes = raw.limit_maxbytes;
        t.mem_used = raw.mem_used;
        t
    }
    /// `stats reset`: zero the reported counters without touching the writers.
    pub fn reset(&self) {
        let raw = self.raw_totals();
        *self.baseline.lock().unwrap_or_else(|e| e.into_inner()) = raw;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_keeps_gauges() {
        let r = Registry::new(2);
        r.cores[0].cmd_get.add(3);
        r.cores[1].cmd_get.add(4);
        r.cores[1].curr_items.set(9);
        assert_eq!(r.totals().cmd_get, 7);
        r.reset();
        assert_eq!(r.totals().cmd_get, 0);
        assert_eq!(r.totals().curr_items, 9);
        r.cores[0].cmd_get.incr();
        assert_eq!(r.totals().cmd_get, 1);
    }

    #[test]
    fn seats_stop_at_the_limit_and_come_back_when_dropped() {
        let r = Arc::new(Registry::new(1));
        let a = r.take_seat(2).unwrap();
        let _b = r.take_seat(2).unwrap();
        assert!(r.take_seat(2).is_none());
        assert_eq!(r.seats(), 2);
        drop(a);
        let _c = r.take_seat(2).unwrap();
        assert!(r.take_seat(2).is_none());
        // 0: no limit.
        let more: Vec<_> = (0..10).map(|_| r.take_seat(0).unwrap()).collect();
        assert_eq!(r.seats(), 12);
        drop(more);
        assert_eq!(r.seats(), 2);
    }

    #[test]
    fn seats_are_exact_across_threads() {
        let r = Arc::new(Registry::new(1));
        let admitted = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        if let Some(seat) = r.take_seat(3) {
                            let now = admitted.fetch_add(1, AcqRel) + 1;
                            assert!(now <= 3, "{now} seats of 3");
                            admitted.fetch_sub(1, AcqRel);
                            drop(seat);
                        }
                    }
                });
            }
        });
        assert_eq!(r.seats(), 0);
    }
}
