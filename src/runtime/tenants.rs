//! Multi-tenant mode's shared state: the current registry snapshot and each
//! cache's memory budget.
//!
//! The admin thread publishes a new `Registry` after every committed change;
//! cores notice the version on their maintenance tick (every 50 ms), copy the
//! `Arc` into their own cell and re-check their sessions. The request path
//! only ever reads the core's own copy, so it takes no lock.

use crate::storage::Budget;
use crate::tenancy::Registry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Tenants {
    /// The latest snapshot (written by the admin thread, read on core ticks).
    current: Mutex<Arc<Registry>>,
    /// `current`'s version, so a tick can tell "nothing changed" without the lock.
    version: AtomicU64,
    /// Each cache's plan, shared by its stores on every core. Locked when a
    /// cache is first used on a core and on publish, never per request.
    budgets: Mutex<HashMap<u32, Arc<Budget>>>,
    /// Unauthenticated connections are closed after this.
    pub auth_timeout: Duration,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Tenants {
    pub fn new(registry: Arc<Registry>, auth_timeout: Duration) -> Tenants {
        let t = Tenants {
            version: AtomicU64::new(registry.version()),
            current: Mutex::new(Registry::empty().into()),
            budgets: Mutex::new(HashMap::new()),
            auth_timeout,
        };
        t.publish(registry);
        t
    }

    /// Installs a new snapshot: plan changes reach the budgets at once (the
    /// stores shrink on their next `maintain`), deleted caches lose their
    /// budget and counters, and cores pick the snapshot up on their tick.
    pub fn publish(&self, next: Arc<Registry>) {
        let mut current = lock(&self.current);
        {
            let mut budgets = lock(&self.budgets);
            budgets.retain(|id, _| {
                let keep = next.cache(*id).is_some();
                if !keep {
                    crate::stats::drop_cache(*id);
                }
                keep
            });
            for cache in next.caches() {
                let changed = current
                    .cache(cache.id)
                    .is_none_or(|old| old.memory_limit != cache.memory_limit);
                if let (true, Some(b)) = (changed, budgets.get(&cache.id)) {
                    b.set_plan(cache.memory_limit as usize);
                }
            }
        }
        self.version.store(next.version(), Ordering::Release);
        *current = next;
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn snapshot(&self) -> Arc<Registry> {
        lock(&self.current).clone()
    }

    /// The budget of cache `id`, created on first use with the plan of the
    /// latest snapshot (not the calling core's copy, which may be a tick
    /// behind: a budget created from it would keep a stale plan).
    pub fn budget(&self, id: u32) -> Arc<Budget> {
        // Same lock order as `publish`: current, then budgets.
        let current = lock(&self.current);
        lock(&self.budgets)
            .entry(id)
            .or_insert_with(|| {
                let plan = current.cache(id).map_or(0, |c| c.memory_limit);
                Arc::new(Budget::new(plan as usize))
            })
            .clone()
    }
}
