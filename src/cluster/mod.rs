//! A cluster of nodes on a shared control plane in PostgreSQL
//! (`--control-plane postgres://...`).
//!
//! Each node runs one control-plane agent on its own OS thread
//! (`shoal-control`, a tokio current-thread runtime with tokio-postgres),
//! never on a data core or the admin thread. The agent:
//! - commits the node's control-state changes (the admin's store calls
//!   [`PgBackend::commit`], which hands the change to the agent and waits):
//!   one transaction that checks the revision, writes, and NOTIFYs;
//! - LISTENs for the other nodes' commits and hands each newer state to the
//!   admin thread (`updates`), which adopts it and publishes a new registry
//!   to the cores, exactly as for a local change;
//! - heartbeats this node's row (with a report of its caches' bytes) and
//!   marks silent nodes down; keeps the discovery list (`crate::topology`)
//!   and this node's share of every cache's plan ([`shares`]) current;
//! - on a lost connection keeps the last snapshot (the cores keep serving),
//!   answers changes with `Unavailable`, reconnects with backoff, and on
//!   reconnect reloads the whole state by revision, so no missed
//!   notification can leave a revoked credential alive. It also compares
//!   the revision every heartbeat, for the same reason.
//!
//! Nothing here knows the runtime or the admin endpoint: they install
//! [`Hooks`] and take [`ControlPlane::take_updates`].

mod agent;
mod pg;
mod schema;
pub mod shares;

use std::collections::HashMap;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::tenancy::backend::{Backend, CommitError};
use crate::topology::NodeAddr;

/// How long a change waits for the database before it is refused.
const COMMIT_WAIT: Duration = Duration::from_secs(5);

/// What a node needs to join its cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// `postgres://user[:password]@host[:port]/database[?options]`.
    pub url: String,
    /// Nodes with the same name share caches and credentials.
    pub cluster: String,
    /// This node's unique name (default: its advertised host:port).
    pub node_name: String,
    /// Where clients reach this node's data port.
    pub advertise: NodeAddr,
    /// This node's admin endpoint, as the other nodes reach it.
    pub admin: String,
    pub heartbeat: Duration,
    /// A node silent this long is marked down.
    pub node_timeout: Duration,
    /// A drained node stops this long after it left the discovery list.
    pub drain_grace: Duration,
    /// The state a new database starts from (this data dir's own
    /// `control.json`, when it has one: a single node becoming a cluster).
    pub seed: Option<(u64, Vec<u8>)>,
}

/// A node's membership state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    Up,
    /// Drained: out of the discovery list, stopping.
    Leaving,
    /// Stopped, or silent for longer than the node timeout.
    Down,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Up => "up",
            NodeState::Leaving => "leaving",
            NodeState::Down => "down",
        }
    }

    fn parse(s: &str) -> NodeState {
        match s {
            "up" => NodeState::Up,
            "leaving" => NodeState::Leaving,
            _ => NodeState::Down,
        }
    }
}

/// What a node reports with every heartbeat.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NodeReport {
    pub cores: usize,
    /// `-m`: the item memory all caches on the node share.
    pub memory_limit: u64,
    /// Item bytes held, all caches together.
    pub memory_used: u64,
    pub connections: u64,
    pub caches: Vec<CacheReport>,
}

/// One cache on one node.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CacheReport {
    pub id: u32,
    /// The cluster-wide plan.
    pub plan: u64,
    /// This node's share of it.
    pub share: u64,
    pub bytes: u64,
    pub items: u64,
    pub evictions: u64,
}

/// A node as the cluster's table shows it.
#[derive(Clone, Debug, Serialize)]
pub struct NodeInfo {
    pub name: String,
    pub host: String,
    pub ip: String,
    pub port: u16,
    pub admin: String,
    pub state: NodeState,
    /// Seconds since its last heartbeat (the database's clock).
    pub heartbeat_age: f64,
    /// Unix seconds it (re)joined.
    pub started: u64,
    pub report: NodeReport,
}

/// What the runtime lends the agent.
pub struct Hooks {
    /// This node's numbers, for the heartbeat.
    pub report: Box<dyn Fn() -> NodeReport + Send>,
    /// This node's share of each cache's plan (cache id → bytes), after
    /// every heartbeat.
    pub shares: Box<dyn Fn(HashMap<u32, u64>) + Send>,
    /// The node was drained and its grace is over: stop the process.
    pub drained: Box<dyn Fn() + Send>,
}

/// A state another node committed: (revision, JSON).
pub type Update = (u64, Vec<u8>);

enum Request {
    Commit {
        revision: u64,
        json: Vec<u8>,
        reply: std_mpsc::SyncSender<Result<(), CommitError>>,
    },
    Hooks(Hooks),
    SetState {
        name: String,
        state: NodeState,
        reply: oneshot::Sender<Result<bool, String>>,
    },
    SaveHistory(String),
    AdminAddr(String),
    Stop(std_mpsc::SyncSender<()>),
}

/// What joining found in the database.
pub struct Joined {
    pub revision: u64,
    pub json: Vec<u8>,
    pub token: String,
    pub token_created: bool,
    /// This node's saved stats history, if any.
    pub history: Option<String>,
}

/// The handle on a node's agent.
pub struct ControlPlane {
    requests: mpsc::UnboundedSender<Request>,
    updates: Mutex<Option<mpsc::UnboundedReceiver<Update>>>,
    nodes: Arc<Mutex<Vec<NodeInfo>>>,
    shares: Arc<Mutex<HashMap<u32, u64>>>,
    name: String,
    cluster: String,
    advertised: String,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("cluster", &self.cluster)
            .field("node", &self.name)
            .finish()
    }
}

impl ControlPlane {
    /// Connects (retrying for `connect_for`), applies the schema, creates
    /// the cluster's state and token if new, loads them, and starts the
    /// agent thread.
    pub fn join(
        config: ClusterConfig,
        new_token: String,
        connect_for: Duration,
    ) -> Result<(ControlPlane, Joined), String> {
        let (requests, rx) = mpsc::unbounded_channel();
        let (updates_tx, updates_rx) = mpsc::unbounded_channel();
        let nodes = Arc::new(Mutex::new(Vec::new()));
        let (joined_tx, joined_rx) = std_mpsc::sync_channel(1);
        let name = config.node_name.clone();
        let cluster = config.cluster.clone();
        let advertised = config.advertise.host_port();
        let agent_nodes = nodes.clone();
        let shares = Arc::new(Mutex::new(HashMap::new()));
        let agent_shares = shares.clone();
        std::thread::Builder::new()
            .name("shoal-control".into())
            .spawn(move || {
                agent::run(
                    config,
                    new_token,
                    connect_for,
                    rx,
                    agent::Outputs {
                        updates: updates_tx,
                        nodes: agent_nodes,
                        shares: agent_shares,
                    },
                    joined_tx,
                )
            })
            .map_err(|e| format!("cannot start the control-plane thread: {e}"))?;
        let joined = joined_rx
            .recv()
            .map_err(|_| "the control-plane thread stopped".to_string())??;
        Ok((
            ControlPlane {
                requests,
                updates: Mutex::new(Some(updates_rx)),
                nodes,
                shares,
                name,
                cluster,
                advertised,
            },
            joined,
        ))
    }

    /// The store's side: commits go through the agent.
    pub fn backend(&self) -> Box<dyn Backend> {
        Box::new(PgBackend {
            requests: self.requests.clone(),
        })
    }

    /// Newer states from other nodes (taken once, by the admin thread).
    pub fn take_updates(&self) -> Option<mpsc::UnboundedReceiver<Update>> {
        self.updates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Where this node's admin endpoint listens (known once it is bound).
    pub fn set_admin_addr(&self, addr: String) {
        let _ = self.requests.send(Request::AdminAddr(addr));
    }

    pub fn set_hooks(&self, hooks: Hooks) {
        let _ = self.requests.send(Request::Hooks(hooks));
    }

    /// This node's name in the cluster.
    pub fn node_name(&self) -> &str {
        &self.name
    }

    /// This node's data address as clients use it (host:port).
    pub fn advertised(&self) -> &str {
        &self.advertised
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Every node as of the last heartbeat or membership change.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// This node's share of cache `id`'s plan (None before the first split).
    pub fn share(&self, id: u32) -> Option<u64> {
        self.shares
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .copied()
    }

    /// Marks node `name` leaving (it leaves the discovery list at once and
    /// stops after its drain grace). Ok(false): no such node, or not up.
    pub async fn drain(&self, name: &str) -> Result<bool, String> {
        let (reply, rx) = oneshot::channel();
        self.requests
            .send(Request::SetState {
                name: name.to_string(),
                state: NodeState::Leaving,
                reply,
            })
            .map_err(|_| "the control plane stopped".to_string())?;
        match tokio::time::timeout(COMMIT_WAIT, rx).await {
            Ok(Ok(r)) => r,
            _ => Err("the control plane did not answer".into()),
        }
    }

    /// Saves this node's stats history in the database (fire and forget).
    pub fn save_history(&self, json: String) {
        let _ = self.requests.send(Request::SaveHistory(json));
    }

    /// A clean stop: marks this node down (it leaves the discovery list
    /// now, not after the node timeout) and stops the agent. Bounded.
    pub fn stop(&self) {
        let (tx, rx) = std_mpsc::sync_channel(1);
        if self.requests.send(Request::Stop(tx)).is_ok() {
            let _ = rx.recv_timeout(Duration::from_secs(2));
        }
    }
}

/// The store's backend in a cluster: hands each commit to the agent.
struct PgBackend {
    requests: mpsc::UnboundedSender<Request>,
}

impl Backend for PgBackend {
    fn commit(&mut self, revision: u64, json: &[u8]) -> Result<(), CommitError> {
        let (reply, rx) = std_mpsc::sync_channel(1);
        self.requests
            .send(Request::Commit {
                revision,
                json: json.to_vec(),
                reply,
            })
            .map_err(|_| CommitError::Unavailable("the control plane stopped".into()))?;
        // The admin thread waits here like it waits for an fsync; the agent
        // bounds its own queries, this only bounds a wedged agent.
        rx.recv_timeout(COMMIT_WAIT).unwrap_or_else(|_| {
            Err(CommitError::Unavailable(
                "no answer from the database".into(),
            ))
        })
    }
}
