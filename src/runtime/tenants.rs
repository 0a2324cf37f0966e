//! Multi-tenant mode's shared state: the current registry snapshot and each
//! cache's memory budget.
//!
//! The admin thread publishes a new `Registry` after every committed change;
//! cores notice the version on their maintenance tick (every 50 ms), copy the
//! `Arc` into their own cell and re-check their sessions. The request path
//! only ever reads the core's own copy, so it takes no lock. The admin
//! thread's probes (API flushes, introspection) wait in a per-core queue
//! that the same tick empties.

use crate::admin::probe::{CoreAnswer, Probe};
use crate::storage::Budget;
use crate::tenancy::Registry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// A probe and where its answer goes.
pub type Asked = (Probe, oneshot::Sender<CoreAnswer>);

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
    /// The admin thread's questions to each core, answered on its tick.
    probes: Vec<Mutex<Vec<Asked>>>,
    /// Whether a core's `probes` is non-empty (so a tick checks one atomic).
    probes_waiting: Vec<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Tenants {
    pub fn new(registry: Arc<Registry>, auth_timeout: Duration, cores: usize) -> Tenants {
        let t = Tenants {
            version: AtomicU64::new(registry.version()),
            current: Mutex::new(Registry::empty().into()),
            budgets: Mutex::new(HashMap::new()),
            auth_timeout,
            probes: (0..cores).map(|_| Mutex::new(Vec::new())).collect(),
            probes_waiting: (0..cores).map(|_| AtomicBool::new(false)).collect(),
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

impl Tenants {
    /// Queues `probe` for every core; each answers on its next tick.
    pub fn probe(&self, probe: Probe) -> Vec<oneshot::Receiver<CoreAnswer>> {
        let mut receivers = Vec::with_capacity(self.probes.len());
        for (queue, waiting) in self.probes.iter().zip(&self.probes_waiting) {
            let (tx, rx) = oneshot::channel();
            lock(queue).push((probe.clone(), tx));
            waiting.store(true, Ordering::Release);
            receivers.push(rx);
        }
        receivers
    }

    /// Core `core`'s queued probes (cheap when there are none).
    pub fn take_probes(&self, core: usize) -> Vec<Asked> {
        if !self.probes_waiting[core].swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        std::mem::take(&mut *lock(&self.probes[core]))
    }
}

impl crate::admin::probe::Probes for ApiPlane {
    fn probe(&self, probe: Probe) -> Vec<oneshot::Receiver<CoreAnswer>> {
        self.0
            .tenants
            .as_ref()
            .map_or_else(Vec::new, |t| t.probe(probe))
    }
}

/// The API's view of the data plane.
pub struct ApiPlane(pub Arc<super::Server>);
