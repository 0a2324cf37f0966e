//! Which nodes serve the data plane right now: what `config get cluster`
//! answers (ElastiCache's auto-discovery) and what `MEMCACHIER_SERVERS`
//! lists. Plain data and one process-wide snapshot; the control plane
//! (`crate::cluster`) replaces it on every membership change, a single node
//! sets it once at startup to itself.
//!
//! Readers take the snapshot (an `Arc`) under a read lock held for a pointer
//! copy; `config get cluster` is an operator/client-library command, never
//! on a cache request's path.

use std::sync::{Arc, RwLock};

/// One node as the discovery list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddr {
    /// The advertised host name (an IP address when none was given).
    pub host: String,
    /// The advertised IP address.
    pub ip: String,
    pub port: u16,
}

impl NodeAddr {
    /// `host:port`, as MEMCACHIER_SERVERS and the API's stats keys write it.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The live nodes (in a stable order) and the membership version: bumped on
/// every change of the list, so auto-discovery clients know to re-hash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterView {
    pub version: u64,
    pub nodes: Vec<NodeAddr>,
}

impl ClusterView {
    /// A single node: itself, version 1.
    pub fn single(node: NodeAddr) -> ClusterView {
        ClusterView {
            version: 1,
            nodes: vec![node],
        }
    }

    /// `MEMCACHIER_SERVERS`: the nodes' `host:port`, comma-separated.
    pub fn servers_line(&self) -> String {
        let v: Vec<String> = self.nodes.iter().map(NodeAddr::host_port).collect();
        v.join(",")
    }
}

static VIEW: RwLock<Option<Arc<ClusterView>>> = RwLock::new(None);

/// The current list; an empty one (version 0) before the runtime set it.
pub fn view() -> Arc<ClusterView> {
    VIEW.read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

/// Replaces the list (the control plane on a membership change).
pub fn set_view(view: ClusterView) {
    *VIEW.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(view));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_line_lists_every_node() {
        let v = ClusterView {
            version: 3,
            nodes: vec![
                NodeAddr {
                    host: "a.example".into(),
                    ip: "10.0.0.1".into(),
                    port: 11211,
                },
                NodeAddr {
                    host: "::1".into(),
                    ip: "::1".into(),
                    port: 11212,
                },
            ],
        };
        assert_eq!(v.servers_line(), "a.example:11211,[::1]:11212");
    }
}
