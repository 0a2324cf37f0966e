//! The control-plane agent: one task on the `shoal-control` thread that
//! owns the database connection (see the module comment of `cluster`).

use std::collections::HashMap;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls, Notification};

use super::pg::{self, Me};
use super::{
    shares, ClusterConfig, Hooks, Joined, NodeInfo, NodeReport, NodeState, Request, Update,
};
use crate::tenancy::backend::CommitError;
use crate::topology::{self, ClusterView, NodeAddr};

/// Bounds every query: a database that stops answering counts as lost.
const QUERY_WAIT: Duration = Duration::from_secs(3);
/// Reconnect backoff: from this, doubling, to `BACKOFF_MAX`.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

struct Agent {
    cfg: ClusterConfig,
    /// The connection (None while lost) and its notifications.
    client: Option<Client>,
    notes: Option<mpsc::UnboundedReceiver<Notification>>,
    /// When the current connection was made: silent nodes are only reaped
    /// after a whole node timeout connected (after a database outage every
    /// heartbeat is old, and the others need time to come back).
    connected_at: Instant,
    /// The newest revision handed to the admin thread (or loaded at join).
    revision: u64,
    /// This process has registered (its first heartbeat went through).
    registered: bool,
    drain: Drain,
    updates: mpsc::UnboundedSender<Update>,
    nodes: Arc<Mutex<Vec<NodeInfo>>>,
    /// This node's shares of the plans: handed to the runtime, reported
    /// with the heartbeat, read by the admin thread.
    shares: Arc<Mutex<HashMap<u32, u64>>>,
    /// What the last heartbeat reported (the caches and their plans the
    /// shares are computed for).
    last_report: NodeReport,
    hooks: Option<Hooks>,
    /// Logged once per outage.
    outage_logged: bool,
}

type Fail = String;

/// Where a drain stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Drain {
    Serving,
    /// Out of the discovery list; stop once this passes.
    Until(Instant),
    /// The stop was requested.
    Over,
}

/// Where the agent publishes what it learns.
pub(super) struct Outputs {
    /// Newer states, to the admin thread.
    pub updates: mpsc::UnboundedSender<Update>,
    /// The node list, for the admin routes.
    pub nodes: Arc<Mutex<Vec<NodeInfo>>>,
    /// This node's plan shares, for the API's stats.
    pub shares: Arc<Mutex<HashMap<u32, u64>>>,
}

async fn bounded<T, E: std::fmt::Display>(
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, Fail> {
    match tokio::time::timeout(QUERY_WAIT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the database did not answer in time".into()),
    }
}

/// The thread's body: joins, answers `joined`, then serves until stopped.
pub(super) fn run(
    cfg: ClusterConfig,
    new_token: String,
    connect_for: Duration,
    mut requests: mpsc::UnboundedReceiver<Request>,
    out: Outputs,
    joined: std_mpsc::SyncSender<Result<Joined, String>>,
) {
    let Outputs {
        updates,
        nodes,
        shares,
    } = out;
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = joined.send(Err(format!("control-plane runtime: {e}")));
            return;
        }
    };
    rt.block_on(async move {
        let mut agent = Agent {
            cfg,
            client: None,
            notes: None,
            connected_at: Instant::now(),
            revision: 0,
            registered: false,
            drain: Drain::Serving,
            updates,
            nodes,
            shares,
            last_report: NodeReport::default(),
            hooks: None,
            outage_logged: false,
        };
        match agent.join(&new_token, connect_for).await {
            Ok(j) => {
                let _ = joined.send(Ok(j));
            }
            Err(e) => {
                let _ = joined.send(Err(e));
                return;
            }
        }
        agent.serve(&mut requests).await;
    });
}

fn me_of(cfg: &ClusterConfig) -> Me<'_> {
    Me {
        cluster: &cfg.cluster,
        name: &cfg.node_name,
        host: &cfg.advertise.host,
        ip: &cfg.advertise.ip,
        port: cfg.advertise.port,
        admin: &cfg.admin,
    }
}

impl Agent {
    /// Connects, LISTENs; the notifications arrive through `self.notes`.
    async fn connect(&mut self) -> Result<(), Fail> {
        let mut config: tokio_postgres::Config = self
            .cfg
            .url
            .parse()
            .map_err(|e| format!("--control-plane: {e}"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(2));
        }
        config.application_name("shoal");
        let (client, mut connection) = bounded(config.connect(NoTls)).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        if tx.send(n).is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::warn!("control plane: connection lost: {e}");
                        return;
                    }
                    None => return,
                }
            }
            // Dropping `tx` tells the agent the connection is gone.
        });
        bounded(client.batch_execute(&format!(
            "LISTEN {}; LISTEN {}",
            pg::CONTROL_CHANNEL,
            pg::NODES_CHANNEL
        )))
        .await?;
        self.client = Some(client);
        self.notes = Some(rx);
        self.connected_at = Instant::now();
        Ok(())
    }

    /// The first connection: schema, bootstrap, load. Retries until
    /// `connect_for` has passed.
    async fn join(&mut self, new_token: &str, connect_for: Duration) -> Result<Joined, Fail> {
        let deadline = Instant::now() + connect_for;
        let mut backoff = BACKOFF_MIN;
        loop {
            match self.try_join(new_token).await {
                Ok(j) => {
                    // Only a new database needs it; it can be a whole state.
                    self.cfg.seed = None;
                    return Ok(j);
                }
                Err(e) if Instant::now() + backoff < deadline => {
                    tracing::warn!("control plane: {e}; retrying");
                    self.client = None;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Err(e) => return Err(format!("cannot join the control plane: {e}")),
            }
        }
    }

    async fn try_join(&mut self, new_token: &str) -> Result<Joined, Fail> {
        self.connect().await?;
        let cluster = self.cfg.cluster.clone();
        let (seed_rev, seed) = self
            .cfg
            .seed
            .clone()
            .unwrap_or_else(|| (0, crate::tenancy::empty_state()));
        let client = self.client.as_mut().ok_or("not connected")?;
        let applied = bounded(super::schema::migrate(client)).await?;
        if applied > 0 {
            tracing::info!(applied, "control plane: schema migrations applied");
        }
        let (token, token_created) =
            bounded(pg::bootstrap(client, &cluster, seed_rev, &seed, new_token)).await?;
        let (revision, json) = bounded(pg::load(client, &cluster)).await?;
        let history = bounded(pg::load_history(client, &cluster, &self.cfg.node_name)).await?;
        self.revision = revision;
        Ok(Joined {
            revision,
            json,
            token,
            token_created,
            history,
        })
    }

    async fn serve(&mut self, requests: &mut mpsc::UnboundedReceiver<Request>) {
        let mut tick = tokio::time::interval(self.cfg.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backoff = BACKOFF_MIN;
        let mut retry_at = Instant::now();
        loop {
            if self.client.is_none() && Instant::now() >= retry_at {
                match self.reconnect().await {
                    Ok(()) => backoff = BACKOFF_MIN,
                    Err(e) => {
                        if !self.outage_logged {
                            tracing::error!(
                                "control plane unreachable ({e}); serving the last snapshot, reconnecting"
                            );
                            self.outage_logged = true;
                        }
                        self.lose();
                        retry_at = Instant::now() + backoff;
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    }
                }
            }
            let retry = tokio::time::sleep_until(retry_at.into());
            tokio::select! {
                req = requests.recv() => match req {
                    Some(r) => {
                        if !self.handle(r).await {
                            return;
                        }
                    }
                    None => return,
                },
                note = next_note(&mut self.notes) => match note {
                    Some(n) => self.on_note(n).await,
                    None => self.lose(),
                },
                _ = tick.tick() => {
                    self.beat().await;
                    if matches!(self.drain, Drain::Until(t) if Instant::now() >= t) {
                        self.drain = Drain::Over;
                        if let Some(h) = &self.hooks {
                            (h.drained)();
                        }
                    }
                }
                _ = retry, if self.client.is_none() => {}
            }
        }
    }

    /// Drops the connection: changes are refused until it is back.
    fn lose(&mut self) {
        self.client = None;
        self.notes = None;
    }

    /// A new connection after an outage: the whole state is reloaded by
    /// revision (a NOTIFY sent while we were away is lost).
    async fn reconnect(&mut self) -> Result<(), Fail> {
        self.connect().await?;
        self.reload().await?;
        if self.outage_logged {
            tracing::info!("control plane reconnected");
            self.outage_logged = false;
        }
        self.beat().await;
        Ok(())
    }

    /// Serves one request; false when it was the stop.
    async fn handle(&mut self, req: Request) -> bool {
        match req {
            Request::Commit {
                revision,
                json,
                reply,
            } => {
                let r = self.commit(revision, &json).await;
                let _ = reply.send(r);
            }
            Request::Hooks(h) => self.hooks = Some(h),
            Request::AdminAddr(a) => {
                self.cfg.admin = a;
                // The next heartbeat writes the whole row again.
                self.registered = false;
                self.beat().await;
            }
            Request::SetState { name, state, reply } => {
                let r = match self.client.as_mut() {
                    None => Err("control plane unavailable".to_string()),
                    Some(c) => bounded(pg::set_state(c, &self.cfg.cluster, &name, state)).await,
                };
                if r.is_ok() {
                    self.refresh().await;
                }
                let _ = reply.send(r);
            }
            Request::SaveHistory(json) => {
                if let Some(c) = self.client.as_ref() {
                    let r = bounded(pg::save_history(
                        c,
                        &self.cfg.cluster,
                        &self.cfg.node_name,
                        &json,
                    ));
                    if let Err(e) = r.await {
                        tracing::warn!("control plane: saving stats history: {e}");
                    }
                }
            }
            Request::Stop(done) => {
                self.leave().await;
                let _ = done.send(());
                return false;
            }
        }
        true
    }

    async fn commit(&mut self, revision: u64, json: &[u8]) -> Result<(), CommitError> {
        let Some(client) = self.client.as_mut() else {
            return Err(CommitError::Unavailable(
                "no connection to the database".into(),
            ));
        };
        match bounded(pg::commit(client, &self.cfg.cluster, revision, json)).await {
            Ok(Ok(())) => {
                self.revision = self.revision.max(revision);
                Ok(())
            }
            Ok(Err(stale)) => Err(stale),
            Err(e) => {
                // The outcome is unknown (the COMMIT may have landed): drop
                // the connection; the reconnect reloads whatever is there.
                self.lose();
                Err(CommitError::Unavailable(e))
            }
        }
    }

    async fn on_note(&mut self, n: Notification) {
        if n.payload() != self.cfg.cluster {
            return;
        }
        if n.channel() == pg::CONTROL_CHANNEL {
            if let Err(e) = self.reload().await {
                tracing::warn!("control plane: reload: {e}");
                self.lose();
            }
        } else {
            self.refresh().await;
        }
    }

    /// Loads the state if it is newer than what the admin thread has.
    async fn reload(&mut self) -> Result<(), Fail> {
        let client = self.client.as_ref().ok_or("not connected")?;
        let (revision, json) = bounded(pg::load(client, &self.cfg.cluster)).await?;
        if revision > self.revision {
            self.revision = revision;
            let _ = self.updates.send((revision, json));
        }
        Ok(())
    }

    /// One heartbeat, then a check for a missed state change, then the
    /// node list.
    async fn beat(&mut self) {
        if self.client.is_none() {
            return;
        }
        self.last_report = self.report();
        let report = serde_json::to_string(&self.last_report).unwrap_or_else(|_| "{}".into());
        let reap = (self.connected_at.elapsed() >= self.cfg.node_timeout)
            .then_some(self.cfg.node_timeout.as_secs_f64());
        let register = !self.registered;
        let Some(mut client) = self.client.take() else {
            return;
        };
        let r = async {
            let me = me_of(&self.cfg);
            bounded(pg::heartbeat(&mut client, &me, &report, register, reap)).await?;
            bounded(pg::revision(&client, &self.cfg.cluster)).await
        }
        .await;
        self.client = Some(client);
        match r {
            Ok(revision) => {
                self.registered = true;
                if revision > self.revision {
                    if let Err(e) = self.reload().await {
                        tracing::warn!("control plane: reload: {e}");
                    }
                }
                self.refresh().await;
            }
            Err(e) => {
                tracing::warn!("control plane: heartbeat: {e}");
                self.lose();
            }
        }
    }

    /// The runtime's numbers with this node's shares filled in.
    fn report(&self) -> NodeReport {
        let mut report = self
            .hooks
            .as_ref()
            .map(|h| (h.report)())
            .unwrap_or_default();
        let shares = lock(&self.shares);
        for c in &mut report.caches {
            c.share = shares.get(&c.id).copied().unwrap_or(c.plan);
        }
        report
    }

    /// Reads the node list: the discovery list, this node's plan shares,
    /// and whether this node was drained.
    async fn refresh(&mut self) {
        let Some(client) = self.client.as_ref() else {
            return;
        };
        let (version, nodes) = match bounded(pg::nodes(client, &self.cfg.cluster)).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("control plane: node list: {e}");
                return;
            }
        };
        let up: Vec<&NodeInfo> = nodes.iter().filter(|n| n.state == NodeState::Up).collect();
        topology::set_view(ClusterView {
            version,
            nodes: up
                .iter()
                .map(|n| NodeAddr {
                    host: n.host.clone(),
                    ip: n.ip.clone(),
                    port: n.port,
                })
                .collect(),
        });
        self.update_shares(&up);
        let me = nodes.iter().find(|n| n.name == self.cfg.node_name);
        if me.is_some_and(|n| n.state == NodeState::Leaving) && self.drain == Drain::Serving {
            tracing::warn!(
                "drained: out of the discovery list; stopping in {:?}",
                self.cfg.drain_grace
            );
            self.drain = Drain::Until(Instant::now() + self.cfg.drain_grace);
        }
        *self.nodes.lock().unwrap_or_else(|e| e.into_inner()) = nodes;
    }

    /// Recomputes this node's share of every cache from the live nodes'
    /// reports and hands them to the runtime. This node's bytes are taken
    /// from its own report too, not fresh: every node then splits the same
    /// numbers, so the shares add up to the plan (fresh bytes here against
    /// a heartbeat-old picture of the others would let each node claim a
    /// little more than its part while the cache fills fast).
    fn update_shares(&mut self, up: &[&NodeInfo]) {
        let Some(hooks) = &self.hooks else {
            return;
        };
        let reported = up.iter().find(|n| n.name == self.cfg.node_name);
        let peers: Vec<HashMap<u32, u64>> = up
            .iter()
            .filter(|n| n.name != self.cfg.node_name)
            .map(|n| n.report.caches.iter().map(|c| (c.id, c.bytes)).collect())
            .collect();
        let held: HashMap<u32, (u64, u64)> = self
            .last_report
            .caches
            .iter()
            .map(|c| {
                let bytes = reported
                    .and_then(|n| n.report.caches.iter().find(|r| r.id == c.id))
                    .map_or(c.bytes, |r| r.bytes);
                (c.id, (c.plan, bytes))
            })
            .collect();
        let next = shares::shares(&held, &peers);
        let mut current = lock(&self.shares);
        if next != *current {
            (hooks.shares)(next.clone());
            *current = next;
        }
    }

    /// A clean stop: out of the list now rather than after the timeout.
    async fn leave(&mut self) {
        if let Some(c) = self.client.as_mut() {
            let name = self.cfg.node_name.clone();
            if let Err(e) =
                bounded(pg::set_state(c, &self.cfg.cluster, &name, NodeState::Down)).await
            {
                tracing::warn!("control plane: leaving: {e}");
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn next_note(
    notes: &mut Option<mpsc::UnboundedReceiver<Notification>>,
) -> Option<Notification> {
    match notes {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
