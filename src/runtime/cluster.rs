//! Multi-tenant mode's control store: the embedded data-dir store, or (with
//! `--control-plane`) this node's seat in a cluster whose state lives in
//! PostgreSQL (`crate::cluster`), and the hooks that connect that cluster's
//! agent to this node's cores.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::core::Server;
use super::StartError;
use crate::cluster::{CacheReport, ClusterConfig, ControlPlane, Hooks, NodeReport};
use crate::config::Config;
use crate::tenancy::ControlStore;
use crate::topology::NodeAddr;

/// How long a starting node retries an unreachable database.
const JOIN_WAIT: Duration = Duration::from_secs(15);

/// The opened store, and the cluster it belongs to (None: one node).
pub struct Control {
    pub store: ControlStore,
    pub plane: Option<Arc<ControlPlane>>,
    /// The stats history saved in the database, if any.
    pub history: Option<String>,
}

/// Opens the store: a cluster's when `--control-plane` is given.
pub fn open(config: &Config, bound: SocketAddr) -> Result<Control, StartError> {
    let dir = &config.data_dir;
    let Some(url) = &config.control_plane else {
        let store = ControlStore::open(dir)
            .map_err(|e| StartError(format!("cannot open data dir {}: {e}", dir.display())))?;
        return Ok(Control {
            store,
            plane: None,
            history: None,
        });
    };
    let advertise = advertise(config.advertise.as_deref(), bound)?;
    let node_name = config
        .node_name
        .clone()
        .unwrap_or_else(|| advertise.host_port());
    let seed = local_seed(dir);
    let cfg = ClusterConfig {
        url: url.clone(),
        cluster: config.cluster_name.clone(),
        node_name,
        advertise,
        admin: String::new(),
        heartbeat: config.heartbeat_interval,
        node_timeout: config.node_timeout,
        drain_grace: config.drain_grace,
        seed,
    };
    let token = crate::tenancy::new_operator_token()
        .map_err(|e| StartError(format!("cannot generate an operator token: {e}")))?;
    let (plane, joined) = ControlPlane::join(cfg, token, JOIN_WAIT).map_err(StartError)?;
    let store = ControlStore::open_shared(
        dir,
        plane.backend(),
        joined.revision,
        &joined.json,
        joined.token,
        joined.token_created,
    )
    .map_err(|e| StartError(format!("cannot open data dir {}: {e}", dir.display())))?;
    tracing::info!(
        cluster = plane.cluster(),
        node = plane.node_name(),
        revision = joined.revision,
        "joined the cluster's control plane"
    );
    Ok(Control {
        store,
        plane: Some(Arc::new(plane)),
        history: joined.history,
    })
}

/// This data dir's own `control.json` (a single node that becomes the
/// first node of a cluster brings its caches along).
fn local_seed(dir: &std::path::Path) -> Option<(u64, Vec<u8>)> {
    let bytes = std::fs::read(dir.join(crate::tenancy::CONTROL_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some((v.get("revision")?.as_u64()?, bytes))
}

/// `--advertise HOST[:PORT]`, or the bound address (loopback when bound to
/// every interface, with a warning: other hosts cannot use that).
fn advertise(flag: Option<&str>, bound: SocketAddr) -> Result<NodeAddr, StartError> {
    let (host, port) = match flag {
        None => {
            let ip = bound.ip();
            if ip.is_unspecified() {
                tracing::warn!(
                    "listening on every interface: advertising 127.0.0.1 (set --advertise)"
                );
                return Ok(NodeAddr {
                    host: "127.0.0.1".into(),
                    ip: "127.0.0.1".into(),
                    port: bound.port(),
                });
            }
            (ip.to_string(), bound.port())
        }
        Some(s) => match s.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !h.ends_with(':') && p.parse::<u16>().is_ok() => (
                h.trim_matches(['[', ']']).to_string(),
                p.parse().unwrap_or(0),
            ),
            _ => (s.trim_matches(['[', ']']).to_string(), bound.port()),
        },
    };
    let ip = (host.as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(|a| a.ip().to_string())
        .ok_or_else(|| StartError(format!("cannot resolve the advertised host {host}")))?;
    Ok(NodeAddr { host, ip, port })
}

/// Connects the agent to this node: reports from the stats, shares into
/// the cache budgets, a drain into a stop.
pub fn install_hooks(plane: &ControlPlane, server: &Arc<Server>) {
    let srv = server.clone();
    let report = Box::new(move || node_report(&srv));
    let srv = server.clone();
    let shares = Box::new(move |shares: HashMap<u32, u64>| {
        if let Some(t) = &srv.tenants {
            t.set_shares(shares);
        }
    });
    let srv = server.clone();
    let drained = Box::new(move || {
        tracing::warn!("drain grace over: stopping");
        super::request_stop(&srv);
    });
    plane.set_hooks(Hooks {
        report,
        shares,
        drained,
    });
}

fn node_report(server: &Server) -> NodeReport {
    let mut report = NodeReport {
        cores: server.config.threads,
        memory_limit: server.config.memory_limit as u64,
        connections: server.conns.load(Ordering::Relaxed) as u64,
        ..NodeReport::default()
    };
    let Some(tenants) = &server.tenants else {
        return report;
    };
    for cache in tenants.snapshot().caches() {
        let t = crate::stats::cache_if_exists(cache.id)
            .map(|r| r.totals())
            .unwrap_or_default();
        report.memory_used += t.bytes;
        // The agent fills in the share.
        report.caches.push(CacheReport {
            id: cache.id,
            plan: cache.memory_limit,
            bytes: t.bytes,
            items: t.curr_items,
            evictions: t.evictions,
            ..CacheReport::default()
        });
    }
    report
}
