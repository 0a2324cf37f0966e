//! The operator's admin HTTP endpoint for multi-tenant mode.
//!
//! It runs on its own OS thread (`shoal-admin`) with a tokio current-thread
//! runtime and axum, never on a data core (design.md §1.4: axum wants `Send`
//! futures, glommio's cores do not provide them, and a slow admin request
//! must never delay a cache request). The thread owns the
//! [`ControlStore`] behind a mutex; every successful mutation is persisted
//! by the store first and then announced through `on_change` with the new
//! [`Registry`] snapshot, which the runtime pushes to its cores.
//!
//! - `routes.rs`: the `/admin/v1` routes and their handlers, and the whole
//!   router: it merges the API v2 route files (`api_v2.rs`, `alerts.rs`,
//!   `insight.rs`, `introspection.rs`, `manage.rs`) and `certs.rs` (client
//!   certificate fingerprints, operator and API v2 routes).
//! - `auth.rs`: the operator bearer-token check and the API v2 credential
//!   check ([`auth::authorize`]).
//! - `body.rs`: request bodies, memory sizes, time ranges, JSON views and errors.
//! - `metrics.rs`: the Prometheus `GET /metrics` (no token, like `/healthz`).
//! - `dashboard/`: the web dashboard (`/dashboard`, and `/sso/ID` in a browser).
//! - `server.rs`: the accept loop, its connection cap and its timeouts.
//! - `tls.rs`: HTTPS (`--admin-tls-cert`, `--admin-tls-key`), also used by
//!   the cluster fan-out to reach its peers.
//!
//! Route files share what they need through the modules below them (this
//! file's [`AdminState`] with its `lock`/`mutate`, `auth.rs`, `body.rs`,
//! `history.rs`, `probe.rs`), never through each other or `routes.rs`.
//!
//! The client side of the same API is `crate::cli`.

mod alerting;
mod alerts;
mod api_v2;
mod auth;
mod body;
mod certs;
mod dashboard;
mod fanout;
mod fuzz;
pub mod history;
mod insight;
mod introspection;
mod manage;
mod metrics;
mod nodes;
pub mod probe;
mod routes;
mod server;
mod status;
mod tls;
mod tls_routes;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::tenancy::{ControlError, ControlStore, Registry};
use body::ApiError;

pub use body::parse_memory;
pub(crate) use fuzz::body as fuzz_body;
pub use metrics::set_max_connections;
pub use server::AdminLimits;
pub use tls::{install as install_tls, TlsFiles};

/// Called after every committed change with the store's new snapshot. It runs
/// on the admin thread while the store's lock is held, so calls arrive in
/// commit order; it should only hand the snapshot on (e.g. send it to the
/// cores' channels), not block.
pub type OnChange = Box<dyn Fn(Arc<Registry>) + Send + Sync>;

/// How long [`AdminHandle::shutdown`] lets in-flight requests finish before
/// dropping their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Where the admin endpoint listens and what it tells clients.
#[derive(Clone, Debug)]
pub struct AdminConfig {
    /// Address to bind; port 0 picks a free one (see [`AdminHandle::local_addr`]).
    pub bind: SocketAddr,
    /// The data-plane address(es) a client connects to, as printed in
    /// `MEMCACHIER_SERVERS` (comma-separated `host:port`).
    pub servers: String,
    /// How often every cache's counters are sampled into the stats history.
    pub stats_interval: Duration,
    /// SMTP relay (`host:port`) for email alerts; None: emails are not sent.
    pub smtp_relay: Option<String>,
    /// Sender address of alert emails.
    pub smtp_from: String,
    /// The cluster name the API reports.
    pub cluster_name: String,
    /// The cluster this node belongs to (None: a single node).
    pub cluster: Option<Arc<crate::cluster::ControlPlane>>,
    /// The stats history the cluster's database kept for this node (JSON),
    /// preferred over the data dir's file.
    pub history: Option<String>,
    /// Connection cap and timeouts of the endpoint.
    pub limits: AdminLimits,
    /// Alert webhooks and Slack URLs may reach loopback, private and other
    /// non-public addresses (`--alert-allow-private`); off, they are refused.
    pub alert_allow_private: bool,
}

impl AdminConfig {
    /// Listens on `bind` with every other setting at its default (data
    /// servers `127.0.0.1:11211`, the memcached default).
    pub fn new(bind: SocketAddr) -> AdminConfig {
        AdminConfig {
            bind,
            servers: "127.0.0.1:11211".to_string(),
            stats_interval: DEFAULT_STATS_INTERVAL,
            smtp_relay: None,
            smtp_from: "shoal@localhost".into(),
            cluster_name: "local".into(),
            cluster: None,
            history: None,
            limits: AdminLimits::default(),
            alert_allow_private: false,
        }
    }
}

/// The default stats sampling interval.
pub const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(10);
/// Samples between two saves of the history file.
const HISTORY_SAVE_EVERY: u32 = 6;
/// Samples between two walks of a cache's store for its watched prefixes'
/// keys and bytes (the cores walk in bounded steps, but a walk still costs
/// work per item; the history keeps one point a minute anyway).
const PREFIX_WALK_EVERY: u32 = 6;
/// The history file in the data dir.
pub const HISTORY_FILE: &str = "history.json";

/// State shared by the handlers (all on the admin thread).
pub(crate) struct AdminState {
    pub(crate) store: Mutex<ControlStore>,
    pub(crate) on_change: OnChange,
    pub(crate) token_digest: [u8; 32],
    /// This node's data address (host:port).
    pub(crate) servers: String,
    pub(crate) cluster: Option<Arc<crate::cluster::ControlPlane>>,
    pub(crate) history: Mutex<history::History>,
    /// Which alerts are firing, and each cache's previous sample.
    pub(crate) alerts: Mutex<alerting::Engine>,
    /// SMTP relay for email alerts (None: not sent) and their sender.
    pub(crate) smtp_relay: Option<String>,
    pub(crate) smtp_from: String,
    pub(crate) cluster_name: String,
    /// `--alert-allow-private`: see [`AdminConfig::alert_allow_private`].
    pub(crate) alert_allow_private: bool,
    /// HTTPS settings (None: plain HTTP): the dashboard marks its cookies
    /// Secure, the fan-out calls peers over HTTPS.
    pub(crate) tls: Option<Arc<tls::AdminTls>>,
}

impl AdminState {
    /// `MEMCACHIER_SERVERS`: every live node of the cluster (this node
    /// alone when it is not in one).
    pub(crate) fn servers(&self) -> String {
        let view = crate::topology::view();
        if view.nodes.is_empty() {
            self.servers.clone()
        } else {
            view.servers_line()
        }
    }

    /// This node's own host:port (the per-server tag of its series).
    pub(crate) fn this_server(&self) -> &str {
        &self.servers
    }

    /// The control store. A panic while holding the lock cannot leave the
    /// store half-changed on disk (it writes then renames), so keep serving.
    pub(crate) fn lock(&self) -> MutexGuard<'_, ControlStore> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a change against the store and, if it committed anything (the
    /// registry version moved, even when a later step of the same request
    /// failed), hands the new snapshot to `on_change`. The lock is held
    /// across the callback so snapshots reach it in commit order. A change
    /// that lost a race with another node (`Stale`: the store has adopted
    /// the newer state) runs again against that state, a few times at most.
    pub(crate) fn mutate<T>(
        &self,
        mut f: impl FnMut(&mut ControlStore) -> Result<T, ControlError>,
    ) -> Result<T, ApiError> {
        let mut store = self.lock();
        let before = store.registry().version();
        let mut result = f(&mut store);
        for _ in 1..MUTATE_TRIES {
            if !matches!(result, Err(ControlError::Stale)) {
                break;
            }
            result = f(&mut store);
        }
        let registry = store.registry();
        if registry.version() != before {
            (self.on_change)(registry);
        }
        Ok(result?)
    }

    /// Takes a newer state committed by another node (the control plane's
    /// reload) and publishes it like a local change.
    pub(crate) fn adopt(&self, revision: u64, json: &[u8]) {
        let mut store = self.lock();
        match store.adopt(revision, json) {
            Ok(true) => (self.on_change)(store.registry()),
            Ok(false) => {}
            Err(e) => tracing::error!("control plane: state {revision} refused: {e}"),
        }
    }
}

/// How often `mutate` runs a change that keeps losing races with other nodes.
const MUTATE_TRIES: usize = 5;

/// A running admin endpoint. Dropping it shuts the endpoint down, like
/// [`AdminHandle::shutdown`].
#[must_use = "dropping the handle stops the admin endpoint"]
pub struct AdminHandle {
    local_addr: SocketAddr,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl AdminHandle {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, gives in-flight requests up to a second, and joins
    /// the admin thread. The store (and its data-dir lock) is released when
    /// this returns.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("admin thread panicked");
            }
        }
    }
}

impl Drop for AdminHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Starts the admin endpoint on `bind` with `servers` defaulting to the
/// memcached default `127.0.0.1:11211`. See [`spawn_with`].
pub fn spawn(
    store: ControlStore,
    bind: SocketAddr,
    on_change: OnChange,
) -> std::io::Result<AdminHandle> {
    spawn_with(store, AdminConfig::new(bind), on_change)
}

/// Binds `config.bind` (errors are returned here, not on the thread), then
/// serves the admin API from a new `shoal-admin` OS thread until the handle
/// is shut down or dropped.
pub fn spawn_with(
    store: ControlStore,
    config: AdminConfig,
    on_change: OnChange,
) -> std::io::Result<AdminHandle> {
    let listener = TcpListener::bind(config.bind)?;
    let local_addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let tls = tls::installed();
    if tls.is_none() && !local_addr.ip().is_loopback() {
        eprintln!(
            "shoal: warning: the admin endpoint listens on {local_addr} without TLS; \
             the operator token and API credentials sent to it travel in clear text; \
             give --admin-tls-cert and --admin-tls-key"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;

    let history_path = store.dir().join(HISTORY_FILE);
    let saved = config.history.as_deref().and_then(|json| {
        serde_json::from_str::<history::History>(json)
            .map_err(|e| tracing::error!("stats history from the control plane: {e}"))
            .ok()
    });
    let history = saved
        .map(Ok)
        .unwrap_or_else(|| history::History::load(&history_path));
    let history = history.unwrap_or_else(|e| {
        // Keep the unreadable file for inspection rather than overwrite it.
        let aside = history_path.with_extension("json.unreadable");
        tracing::error!(
            "stats history {}: {e}; moved to {}",
            history_path.display(),
            aside.display()
        );
        let _ = std::fs::rename(&history_path, &aside);
        history::History::default()
    });
    let state = Arc::new(AdminState {
        history: Mutex::new(history),
        alerts: Mutex::default(),
        token_digest: auth::digest(store.operator_token()),
        store: Mutex::new(store),
        on_change,
        servers: config.servers,
        smtp_relay: config.smtp_relay,
        smtp_from: config.smtp_from,
        cluster_name: config.cluster_name,
        alert_allow_private: config.alert_allow_private,
        cluster: config.cluster.clone(),
        tls: tls.clone(),
    });
    let updates = config.cluster.as_ref().and_then(|c| c.take_updates());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    let thread = std::thread::Builder::new()
        .name("shoal-admin".into())
        .spawn(move || {
            // Other nodes' commits, adopted and published like local ones.
            let adopter = updates.map(|mut rx| {
                let state = state.clone();
                runtime.spawn(async move {
                    while let Some((revision, json)) = rx.recv().await {
                        state.adopt(revision, &json);
                    }
                })
            });
            let sampler = runtime.spawn(sample_history(
                state.clone(),
                history_path.clone(),
                config.stats_interval,
            ));
            let app = routes::router(state.clone());
            runtime.block_on(server::serve(
                listener,
                app,
                config.limits,
                tls,
                stop_rx,
                SHUTDOWN_GRACE,
            ));
            sampler.abort();
            if let Some(a) = adopter {
                a.abort();
            }
            // A clean stop keeps every sample taken so far.
            let history = state.history.lock().unwrap_or_else(|e| e.into_inner());
            save_history(&state, &history, &history_path);
            // Dropping the runtime here cancels connections that outlived the grace period.
        })?;
    tracing::info!(%local_addr, "admin endpoint listening");
    Ok(AdminHandle {
        local_addr,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// Samples every cache's counters into the history each `interval`, and
/// saves the history (write-then-rename) every few samples.
async fn sample_history(state: Arc<AdminState>, path: std::path::PathBuf, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut n = 0u32;
    let mut walked = std::collections::HashMap::new();
    loop {
        tick.tick().await;
        let (caches, watched) = {
            let store = state.lock();
            let caches = store.caches();
            let watched: Vec<_> = caches
                .iter()
                .map(|c| (c.id, store.prefixes(c.id)))
                .filter(|(_, p)| !p.is_empty())
                .collect();
            (caches, watched)
        };
        let now = crate::clock::unix_now() as u64;
        // Asks the cores first: the history lock is not held across an await.
        let walk = n.is_multiple_of(PREFIX_WALK_EVERY);
        let prefixes = introspection::sample_prefixes(&watched, walk, &mut walked).await;
        let mut history = state.history.lock().unwrap_or_else(|e| e.into_inner());
        history.retain(|id| caches.iter().any(|c| c.id == id));
        history.retain_prefixes(|id| watched.iter().any(|(_, ps)| ps.iter().any(|p| p.id == id)));
        let hub = crate::latency::hub();
        let mut sampled = Vec::with_capacity(caches.len());
        for cache in caches {
            let totals = crate::stats::cache_if_exists(cache.id)
                .map(|r| r.totals())
                .unwrap_or_default();
            let sample = history::sample(&totals);
            history.record(cache.id, now, sample.clone());
            if let Some(hub) = hub {
                let (requests, ns) = hub.merged(Some(cache.id)).totals();
                history.record_latency(cache.id, now, requests, ns);
            }
            sampled.push((cache, sample));
        }
        for (id, v) in prefixes {
            history.record_prefix(id, now, v);
        }
        n += 1;
        if n.is_multiple_of(HISTORY_SAVE_EVERY) {
            save_history(&state, &history, &path);
        }
        alerting::after_sample(&state, &sampled, now);
    }
}

/// Saves the history to the data dir, and in a cluster to the database too
/// (where a node restarted on a new machine finds it).
fn save_history(state: &AdminState, history: &history::History, path: &std::path::Path) {
    if let Err(e) = history.save(path) {
        tracing::error!("saving stats history: {e}");
    }
    if let Some(plane) = &state.cluster {
        match serde_json::to_string(history) {
            Ok(json) => plane.save_history(json),
            Err(e) => tracing::error!("encoding stats history: {e}"),
        }
    }
}
