//! Multi-tenant mode's shared state: the current registry snapshot and each
//! cache's memory budget.
//!
//! A budget is the cache's plan scaled so that all plans fit the node's
//! memory (`-m`): plan × min(1, node / sum of plans)
//! (`tenancy::capacity::effective_plan`), recomputed on every publish, so
//! the budgets together never exceed `-m` however far the plans overcommit
//! it. A tenant's `cache_memlimit` can lower its own budget further.
//!
//! The admin thread publishes a new `Registry` after every committed change;
//! cores notice the version on their maintenance tick (every 50 ms), copy the
//! `Arc` into their own cell and re-check their sessions. The request path
//! only ever reads the core's own copy, so it takes no lock. The admin
//! thread's probes (API flushes, introspection) wait in a per-core queue
//! that the same tick empties.

use crate::admin::probe::{CoreAnswer, Probe};
use crate::storage::Budget;
use crate::tenancy::capacity::effective_plan;
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
    /// Each cache's budget, shared by its stores on every core. Locked when
    /// a cache is first used on a core and on publish, never per request.
    budgets: Mutex<Budgets>,
    /// The node's item memory (`-m`) that all budgets share.
    node_bytes: u64,
    /// Unauthenticated connections are closed after this.
    pub auth_timeout: Duration,
    /// The admin thread's questions to each core, answered on its tick.
    probes: Vec<Mutex<Vec<Asked>>>,
    /// Whether a core's `probes` is non-empty (so a tick checks one atomic).
    probes_waiting: Vec<AtomicBool>,
}

#[derive(Default)]
struct Budgets {
    slots: HashMap<u32, Slot>,
    /// The sum of all plans in the current snapshot (this node's shares of
    /// them in a cluster).
    plans: u128,
    /// In a cluster: this node's share of each cache's plan (the control
    /// plane's split, `crate::cluster::shares`); a cache missing here has
    /// its whole plan (one node, or not yet reported).
    shares: Option<HashMap<u32, u64>>,
}

impl Budgets {
    /// What cache `cache` may hold on this node before the node's own
    /// overcommit scaling: its plan, or its share of it in a cluster.
    fn node_plan(&self, cache: &crate::tenancy::Cache) -> u64 {
        self.shares
            .as_ref()
            .and_then(|s| s.get(&cache.id))
            .map_or(cache.memory_limit, |&s| s.min(cache.memory_limit))
    }
}

struct Slot {
    budget: Arc<Budget>,
    /// The tenant's own lower limit (`cache_memlimit`), until the operator
    /// changes the plan.
    own: Option<u64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Tenants {
    pub fn new(
        registry: Arc<Registry>,
        auth_timeout: Duration,
        cores: usize,
        node_bytes: u64,
    ) -> Tenants {
        let t = Tenants {
            version: AtomicU64::new(registry.version()),
            current: Mutex::new(Registry::empty().into()),
            budgets: Mutex::new(Budgets::default()),
            node_bytes,
            auth_timeout,
            probes: (0..cores).map(|_| Mutex::new(Vec::new())).collect(),
            probes_waiting: (0..cores).map(|_| AtomicBool::new(false)).collect(),
        };
        t.publish(registry);
        t
    }

    /// What cache `plan` may use now: its share of the node, at most `own`.
    fn effective(&self, plans: u128, plan: u64, own: Option<u64>) -> usize {
        let eff = effective_plan(plan, plans, self.node_bytes);
        own.map_or(eff, |o| eff.min(o)) as usize
    }

    /// Installs a new snapshot: budget changes (a plan changed, or caches
    /// came or went and the node's share of every plan with them) reach the
    /// budgets at once (the stores shrink on their next `maintain`), deleted
    /// caches lose their budget and counters, and cores pick the snapshot up
    /// on their tick.
    pub fn publish(&self, next: Arc<Registry>) {
        let mut current = lock(&self.current);
        {
            let mut budgets = lock(&self.budgets);
            budgets.slots.retain(|id, _| {
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
                // A new plan from the operator replaces the tenant's own limit.
                if let (true, Some(slot)) = (changed, budgets.slots.get_mut(&cache.id)) {
                    slot.own = None;
                }
            }
            self.resize(&mut budgets, &next);
        }
        self.version.store(next.version(), Ordering::Release);
        *current = next;
    }

    /// Sets every budget from the snapshot `reg` and the node's shares.
    fn resize(&self, budgets: &mut Budgets, reg: &Registry) {
        let plans = reg.caches().map(|c| u128::from(budgets.node_plan(c))).sum();
        budgets.plans = plans;
        for cache in reg.caches() {
            let plan = budgets.node_plan(cache);
            let Some(slot) = budgets.slots.get(&cache.id) else {
                continue;
            };
            let want = self.effective(plans, plan, slot.own);
            if slot.budget.plan() != want {
                slot.budget.set_plan(want);
            }
        }
    }

    /// A cluster's split of the plans: this node's share of each cache
    /// (cache id → bytes). The budgets follow at once.
    pub fn set_shares(&self, shares: HashMap<u32, u64>) {
        let current = lock(&self.current);
        let mut budgets = lock(&self.budgets);
        budgets.shares = Some(shares);
        self.resize(&mut budgets, &current);
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
        let mut budgets = lock(&self.budgets);
        if let Some(slot) = budgets.slots.get(&id) {
            return slot.budget.clone();
        }
        let plan = current.cache(id).map_or(0, |c| budgets.node_plan(c));
        let budget = Arc::new(Budget::new(self.effective(budgets.plans, plan, None)));
        let slot = Slot {
            budget: budget.clone(),
            own: None,
        };
        budgets.slots.insert(id, slot);
        budget
    }

    /// A tenant's `cache_memlimit`: its budget becomes at most `bytes` (the
    /// caller checked that this is within the plan) until the plan changes.
    pub fn set_own_limit(&self, id: u32, bytes: u64) {
        let budget = self.budget(id);
        let current = lock(&self.current);
        let mut budgets = lock(&self.budgets);
        let plan = current.cache(id).map_or(0, |c| budgets.node_plan(c));
        let want = self.effective(budgets.plans, plan, Some(bytes));
        if let Some(slot) = budgets.slots.get_mut(&id) {
            slot.own = Some(bytes);
        }
        budget.set_plan(want);
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
