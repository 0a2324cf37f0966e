//! One core: its shard, its listener, its connections, and the tasks that
//! serve other cores' batches and route their replies back.

use super::forward::{Forwarding, Waiting};
use super::mesh::{Batch, Replies};
use super::pool::{Pools, ReadBuf};
use super::readiness::Readiness;
use super::shard;
use crate::admin::probe::{CoreAnswer, KeyAnswer};
use crate::config::Config;
use crate::exec::{Shard, ShardSettings};
use crate::latency::CoreLatency;
use crate::stats::{self, CoreStats};
use crate::storage::{PrefixWalk, StoreConfig};
use crate::tenancy::{Registry, Session};
use glommio::channels::channel_mesh::{Full, MeshBuilder, Senders};
use glommio::net::TcpListener;
use glommio::timer::sleep;
use std::cell::{RefCell, RefMut};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::os::fd::{FromRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Process-wide state shared by all cores (read-mostly).
pub struct Server {
    pub config: Config,
    pub settings: Arc<ShardSettings>,
    /// One seed for every core: all must agree on which core owns a key.
    pub hash_seed: u64,
    /// Open client connections, for the connection limit (touched on
    /// accept/close only, never per request).
    pub conns: AtomicUsize,
    pub shutdown: AtomicBool,
    /// Cores that have joined both meshes (loading an image comes after).
    pub joined: AtomicUsize,
    /// Cores that are accepting.
    pub ready: AtomicUsize,
    /// Connections that fit the descriptors left, when accept ran out of
    /// them (see `accept::FdCap`).
    pub fd_cap: super::accept::FdCap,
    /// Multi-tenant mode's registry and budgets; None in open mode.
    pub tenants: Option<super::tenants::Tenants>,
    /// TLS settings and counters; None when no listener speaks TLS.
    pub tls: Option<Arc<crate::tls::TlsContext>>,
    /// The main port speaks TLS (`-Z` without `--tls-port`, or both).
    pub tls_main: bool,
    /// Each core's listener of the TLS port (`--tls-port`), by core id.
    pub tls_fds: Vec<RawFd>,
    /// Warm restart (`--restart-dir`); None when off.
    pub restart: Option<super::restart::Restart>,
}

impl Server {
    /// Every store's CAS counter starts above this: the highest CAS of a
    /// loaded image (0 without one).
    pub fn cas_floor(&self) -> u64 {
        self.restart.as_ref().map_or(0, |r| r.cas_floor())
    }
}

/// Items a watched-prefix walk visits per maintenance tick (every 200 ms):
/// well under a millisecond of work, about 250k items a second.
const WALK_STEP: usize = 50_000;

/// A cache's watched-prefix walks on one core: the one in progress and the
/// last finished one (its prefixes and their keys and bytes).
#[derive(Default)]
pub struct Walks {
    running: Option<PrefixWalk>,
    done: Option<Walked>,
}

/// A finished walk: its prefixes and, for each, (keys, bytes).
type Walked = (Vec<Vec<u8>>, Vec<(u64, u64)>);

/// This core's view of the world; shared by its tasks through `Rc`.
pub struct Core {
    /// Index of this core on the request mesh = the shard id it owns.
    pub id: usize,
    pub n: usize,
    pub server: Arc<Server>,
    /// Open mode's shard (cache 0).
    pub shard: RefCell<Shard>,
    /// Multi-tenant mode: this core's shard of each cache, created on the
    /// cache's first use here (an idle cache costs nothing on this core).
    pub tenant_shards: RefCell<HashMap<u32, Shard>>,
    /// This core's copy of the registry (refreshed on the tick).
    pub registry: RefCell<Arc<Registry>>,
    /// Authenticated connections on this core, by connection id: closed when
    /// a new registry revokes their credential or disables their cache.
    pub sessions: RefCell<HashMap<RawFd, Session>>,
    /// Server-wide counters of this core (cache 0).
    pub stats: Arc<CoreStats>,
    /// This core's latency histograms, pushed to `latency::hub()` each second.
    pub latency: RefCell<CoreLatency>,
    /// Watched-prefix walks of each cache's store on this core.
    pub prefix_walks: RefCell<HashMap<u32, Walks>>,
    /// Sends batches to owner cores (None with one core).
    pub requests: Option<Senders<Batch>>,
    /// Index of this core on the reply mesh (owners answer there).
    pub reply_id: usize,
    /// Forwarding rounds in flight, collecting their replies.
    pub waiters: RefCell<slab::Slab<Waiting>>,
    /// Where a connection with nothing pending reads into (see conn.rs).
    pub scratch: RefCell<ReadBuf>,
    /// Read and reply buffers for connections with requests in flight.
    pub pools: Pools,
    /// Forwarding queues for connections with requests in flight.
    /// Boxed: a connection holds one only while busy, through a pointer.
    #[allow(clippy::vec_box)]
    pub forwardings: RefCell<Vec<Box<Forwarding>>>,
    /// Input readiness of this core's connections (one epoll instance).
    pub readiness: Rc<Readiness>,
    hasher: foldhash::fast::FixedState,
}

impl Core {
    /// The core that owns `key` of `cache`: a seeded hash of both, scaled to
    /// `n` (no modulo bias). Hashing the cache too spreads every tenant over
    /// all cores, whatever its key names.
    #[inline]
    pub fn owner(&self, cache: u32, key: &[u8]) -> usize {
        if self.n == 1 {
            return 0;
        }
        let h = if cache == 0 {
            self.hasher.hash_one(key)
        } else {
            self.hasher.hash_one((cache, key))
        };
        ((h as u128 * self.n as u128) >> 64) as usize
    }

    /// This core's shard of `cache` (0 = open mode's only one).
    pub fn shard(&self, cache: u32) -> RefMut<'_, Shard> {
        if cache == 0 {
            return self.shard.borrow_mut();
        }
        RefMut::map(self.tenant_shards.borrow_mut(), |shards| {
            shards
                .entry(cache)
                .or_insert_with(|| self.new_tenant_shard(cache))
        })
    }

    fn new_tenant_shard(&self, cache: u32) -> Shard {
        let budget = self.server.tenants.as_ref().map(|t| t.budget(cache));
        let cfg = StoreConfig {
            memory_limit: 0,
            item_size_max: self.server.config.item_size_max,
            shard_id: self.id as u32,
            num_shards: self.n as u32,
            budget,
        };
        let stats = stats::cache(cache).core(self.id);
        let mut shard = Shard::new(cfg, stats, self.server.settings.clone());
        shard.store.raise_cas_floor(self.server.cas_floor());
        let sample = self.server.config.introspection_sample;
        if sample > 0 {
            shard.enable_introspection(sample);
            if let Some(i) = shard.introspect.as_mut() {
                i.set_watched(self.registry.borrow().watched(cache));
            }
        }
        shard
    }

    /// The plan of `cache` as the budget has it now (cache_memlimit, or plans
    /// overcommitting the node's -m, may have lowered it below the registry's).
    pub fn plan(&self, cache: u32) -> u64 {
        match &self.server.tenants {
            Some(t) => t.budget(cache).plan() as u64,
            None => 0,
        }
    }

    /// Picks up a new registry snapshot: drops the shards of deleted caches
    /// and closes connections whose credential or cache is gone or disabled
    /// (shutting the socket down wakes their pending read with EOF).
    pub fn refresh_registry(&self) {
        let Some(tenants) = &self.server.tenants else {
            return;
        };
        if tenants.version() == self.registry.borrow().version() {
            return;
        }
        let next = tenants.snapshot();
        let mut shards = self.tenant_shards.borrow_mut();
        shards.retain(|id, _| next.cache(*id).is_some());
        for (id, shard) in shards.iter_mut() {
            if let Some(i) = shard.introspect.as_mut() {
                i.set_watched(next.watched(*id));
            }
        }
        drop(shards);
        for (fd, session) in self.sessions.borrow().iter() {
            if !next.still_valid(session) {
                // SAFETY: the fd belongs to a live connection of this core
                // (removed from `sessions` before the stream is closed).
                unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
            }
        }
        *self.registry.borrow_mut() = next;
    }

    /// Carries out the admin thread's probes (`admin::probe`) about one
    /// cache: API flushes and introspection questions. A cache that has no
    /// shard here has nothing to flush or report; the shard is not created
    /// for it.
    fn answer_probes(&self) {
        let Some(tenants) = &self.server.tenants else {
            return;
        };
        let probes = tenants.take_probes(self.id);
        if probes.is_empty() {
            return;
        }
        let now = crate::clock::now();
        let mut shards = self.tenant_shards.borrow_mut();
        for (probe, reply) in probes {
            let mut answer = CoreAnswer::default();
            if let Some(shard) = shards.get_mut(&probe.cache) {
                if probe.flush {
                    shard.flush(now, now);
                }
                if probe.report {
                    answer.report = shard.introspect.as_ref().map(|i| i.report());
                }
                // Only the key's owner stores it and records its requests
                // (other cores forward them there).
                if let Some(key) = probe
                    .key
                    .as_ref()
                    .filter(|k| self.owner(probe.cache, k) == self.id)
                {
                    let i = shard.introspect.as_ref();
                    let [hits, misses, mutations] =
                        i.map(|i| i.key_estimates(key)).unwrap_or_default();
                    let size = shard.store.peek(key, now).map(|it| it.value.len() as u64);
                    answer.key = Some(KeyAnswer {
                        size,
                        hits,
                        misses,
                        mutations,
                        sample_every: i.map_or(0, |i| i.sample_every()),
                    });
                }
                if !probe.scan.is_empty() {
                    let mut walks = self.prefix_walks.borrow_mut();
                    let w = walks.entry(probe.cache).or_default();
                    answer.scan = w
                        .done
                        .as_ref()
                        .filter(|(p, _)| *p == probe.scan)
                        .map(|(_, counts)| counts.clone());
                    if probe.walk && w.running.is_none() {
                        w.running = Some(PrefixWalk::new(probe.scan.clone()));
                    }
                }
            } else {
                // No shard here: nothing under any prefix.
                answer.scan = Some(vec![(0, 0); probe.scan.len()]);
            }
            // The asker may have given up; nothing to do then.
            let _ = reply.send(answer);
        }
    }

    /// Publishes a copy of this core's histograms for the admin side.
    fn push_latency(&self) {
        let Some(hub) = crate::latency::hub() else {
            return;
        };
        let snapshot = {
            let mut latency = self.latency.borrow_mut();
            let registry = self.registry.borrow();
            if self.server.tenants.is_some() {
                latency.retain_caches(|id| registry.cache(id).is_some());
            }
            latency.clone()
        };
        hub.push(self.id, snapshot);
    }

    /// Background expiry on every shard of this core.
    fn maintain(&self) {
        let now = crate::clock::now();
        self.shard.borrow_mut().maintain(now);
        let unix = crate::exec::unix_time(now);
        let mut shards = self.tenant_shards.borrow_mut();
        for shard in shards.values_mut() {
            shard.maintain(now);
            if let Some(i) = shard.introspect.as_mut() {
                i.tick(unix);
            }
        }
        // Watched-prefix walks, a bounded step each.
        let mut walks = self.prefix_walks.borrow_mut();
        walks.retain(|id, _| shards.contains_key(id));
        for (id, w) in walks.iter_mut() {
            let (Some(walk), Some(shard)) = (w.running.as_mut(), shards.get_mut(id)) else {
                continue;
            };
            if let Some(counts) = shard.store.walk_prefixes(walk, now, WALK_STEP) {
                let prefixes = walk.prefixes().to_vec();
                w.running = None;
                w.done = Some((prefixes, counts));
            }
        }
    }
}

/// The executor's main future.
pub async fn core_main(
    server: Arc<Server>,
    fds: Arc<Vec<RawFd>>,
    requests: MeshBuilder<Batch, Full>,
    replies: MeshBuilder<Replies, Full>,
) -> Result<(), String> {
    let n = server.config.threads;
    // glommio 0.9's shared-channel handshake (inside the mesh joins) only
    // re-checks a peer's arrival when this executor's reactor loops; the
    // peer's connect does not wake it. A reactor that went to sleep first
    // would wait forever (seen as a startup hang in about 1 of 3 starts with
    // a dozen servers starting at once). A 1 ms ticker keeps it looping until
    // both meshes are joined.
    let joined = Rc::new(std::cell::Cell::new(false));
    let ticker = {
        let joined = joined.clone();
        glommio::spawn_local(async move {
            while !joined.get() {
                sleep(Duration::from_millis(1)).await;
            }
        })
        .detach()
    };
    let (req_tx, req_rx) = requests
        .join()
        .await
        .map_err(|_| "cannot join the request mesh".to_string())?;
    let (rep_tx, rep_rx) = replies
        .join()
        .await
        .map_err(|_| "cannot join the reply mesh".to_string())?;
    joined.set(true);
    drop(ticker);
    server.joined.fetch_add(1, Ordering::AcqRel);
    let id = req_tx.peer_id();
    let stats = stats::registry().core(id);
    let store_cfg = StoreConfig {
        memory_limit: server.config.memory_limit / n,
        item_size_max: server.config.item_size_max,
        shard_id: id as u32,
        num_shards: n as u32,
        budget: None,
    };
    let core = Rc::new(Core {
        id,
        n,
        shard: RefCell::new(Shard::new(
            store_cfg,
            stats.clone(),
            server.settings.clone(),
        )),
        tenant_shards: RefCell::new(HashMap::new()),
        registry: RefCell::new(
            server
                .tenants
                .as_ref()
                .map_or_else(|| Arc::new(Registry::empty()), |t| t.snapshot()),
        ),
        sessions: RefCell::new(HashMap::new()),
        prefix_walks: RefCell::new(HashMap::new()),
        latency: RefCell::new(CoreLatency::default()),
        stats,
        reply_id: rep_tx.peer_id(),
        requests: (n > 1).then_some(req_tx),
        waiters: RefCell::new(slab::Slab::new()),
        scratch: RefCell::new(ReadBuf::new()),
        pools: Pools::default(),
        forwardings: RefCell::new(Vec::new()),
        readiness: Rc::new(
            Readiness::new().map_err(|e| format!("cannot create an epoll instance: {e}"))?,
        ),
        hasher: foldhash::fast::FixedState::with_seed(server.hash_seed),
        server: server.clone(),
    });
    core.shard
        .borrow_mut()
        .store
        .raise_cas_floor(server.cas_floor());
    // A saved image is loaded (by every core) before any core accepts.
    if let Some(restart) = &server.restart {
        restart.load_core(&core).await;
    }
    core.shard.borrow().publish();
    shard::spawn_servers(core.clone(), req_rx, rep_tx);
    shard::spawn_reply_routers(core.clone(), rep_rx);
    core.readiness.install_sleep();
    glommio::spawn_local(core.readiness.clone().run()).detach();

    // SAFETY: the fd is a listening socket bound for this core alone.
    let listener = unsafe { TcpListener::from_raw_fd(fds[id]) };
    let accept = glommio::spawn_local(super::accept::accept_loop(
        core.clone(),
        listener,
        fds[id],
        server.tls_main,
    ))
    .detach();
    let tls_accept = server.tls_fds.get(id).map(|&fd| {
        // SAFETY: the fd is the TLS port's listening socket bound for this
        // core alone.
        let listener = unsafe { TcpListener::from_raw_fd(fd) };
        glommio::spawn_local(super::accept::accept_loop(core.clone(), listener, fd, true)).detach()
    });
    server.ready.fetch_add(1, Ordering::AcqRel);

    // Maintenance and shutdown watch on a slow tick.
    let mut ticks = 0u32;
    while !server.shutdown.load(Ordering::Acquire) {
        sleep(Duration::from_millis(50)).await;
        ticks = ticks.wrapping_add(1);
        core.refresh_registry();
        core.answer_probes();
        if ticks.is_multiple_of(4) {
            core.maintain();
        }
        if ticks.is_multiple_of(20) {
            core.push_latency();
        }
    }
    accept.cancel();
    if let Some(tls_accept) = tls_accept {
        tls_accept.cancel();
    }
    // Let in-flight requests finish for up to a second.
    for _ in 0..20 {
        if server.conns.load(Ordering::Acquire) == 0 {
            break;
        }
        sleep(Duration::from_millis(50)).await;
    }
    // A clean stop: write this core's stores for the next start.
    if let Some(restart) = &server.restart {
        restart.save_core(&core);
    }
    Ok(())
}
