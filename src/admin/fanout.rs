//! How any node's API answers for the whole cluster: this node's own
//! numbers, and the same numbers asked of every other live node over its
//! admin endpoint (`/admin/v1/local/...`, registered by the route files)
//! with the cluster's operator token (every node holds the same one, from
//! the database): one blocking call per peer on tokio's blocking pool, all
//! at once, each bounded by `PEER_TIMEOUT`. Outside a cluster there are no
//! peers and every answer is this node's. A node serving its admin
//! endpoint over HTTPS calls its peers over HTTPS, verifying them against
//! its admin TLS roots (`tls.rs`).

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::body::{parse_id, ApiError};
use super::probe::Probe;
use super::tls::AdminTls;
use super::AdminState;
use crate::cluster::NodeState;
use crate::tenancy::Cache;

type ApiResult = Result<Response, ApiError>;

/// How long a peer has to answer a fan-out call.
const PEER_TIMEOUT: Duration = Duration::from_secs(5);

/// The cache a `/admin/v1/local/...` route names (operator routes: no
/// credential to check).
pub(super) fn local_cache(state: &AdminState, id: &str) -> Result<Cache, ApiError> {
    let id = parse_id(id)?;
    state
        .lock()
        .cache(id)
        .ok_or_else(|| ApiError::not_found("no such cache"))
}

/// This node's counters of `cache`, named as memcached's `stats` names them
/// (MemCachier's API: one such object per server). `limit_maxbytes` is the
/// plan, or in a cluster the memory the cache may use on this node (its
/// share of the plan).
pub(super) fn local_stats(state: &AdminState, cache: &Cache) -> Value {
    let t = crate::stats::cache(cache.id).totals();
    let limit = state
        .cluster
        .as_ref()
        .and_then(|c| c.share(cache.id))
        .map_or(cache.memory_limit, |s| s.min(cache.memory_limit));
    json!({
        "auth_cmds": t.auth_cmds,
        "auth_errors": t.auth_errors,
        "bytes": t.bytes,
        "bytes_read": t.bytes_read,
        "bytes_written": t.bytes_written,
        "cas_badval": t.cas_badval,
        "cas_hits": t.cas_hits,
        "cas_misses": t.cas_misses,
        "cmd_delete": t.delete_hits + t.delete_misses,
        "cmd_flush": t.cmd_flush,
        "cmd_get": t.cmd_get,
        "cmd_set": t.cmd_set,
        "cmd_touch": t.cmd_touch,
        "curr_connections": t.curr_connections,
        "curr_items": t.curr_items,
        "decr_hits": t.decr_hits,
        "decr_misses": t.decr_misses,
        "delete_hits": t.delete_hits,
        "delete_misses": t.delete_misses,
        "evictions": t.evictions,
        "expired": t.get_expired + t.expired_unfetched,
        "get_hits": t.get_hits,
        "get_misses": t.get_misses,
        "incr_hits": t.incr_hits,
        "incr_misses": t.incr_misses,
        "limit_maxbytes": limit,
        "max_connections": cache.max_connections,
        "rejected_connections": t.rejected_connections,
        "time": crate::clock::unix_now(),
        "total_connections": t.total_connections,
        "total_items": t.total_items,
        "touch_hits": t.touch_hits,
        "touch_misses": t.touch_misses,
    })
}

/// Drops the cache's items on every core of this node.
pub(super) async fn local_flush(cache: u32) -> Result<(), ApiError> {
    let probe = Probe {
        cache,
        flush: true,
        ..Probe::default()
    };
    super::probe::ask(probe)
        .await
        .map(drop)
        .map_err(|_| ApiError::invalid("Failed to flush cache."))
}

/// A live peer: its data address (host:port) and admin address.
struct Peer {
    server: String,
    admin: String,
}

/// The other live nodes (none outside a cluster).
fn peers(state: &AdminState) -> Vec<Peer> {
    let Some(plane) = &state.cluster else {
        return Vec::new();
    };
    plane
        .nodes()
        .into_iter()
        .filter(|n| n.state == NodeState::Up && n.name != plane.node_name() && !n.admin.is_empty())
        .map(|n| Peer {
            server: crate::topology::NodeAddr {
                host: n.host,
                ip: n.ip,
                port: n.port,
            }
            .host_port(),
            admin: n.admin,
        })
        .collect()
}

/// Calls `method path` on every live peer at once; (server, answer) each,
/// the answer's JSON body (Null when empty) or why it failed.
async fn fan_out(
    state: &AdminState,
    method: &'static str,
    path: String,
) -> Vec<(String, Result<Value, String>)> {
    let peers = peers(state);
    if peers.is_empty() {
        return Vec::new();
    }
    let token = state.lock().operator_token().to_string();
    let calls: Vec<_> = peers
        .into_iter()
        .map(|p| {
            let (token, path, tls) = (token.clone(), path.clone(), state.tls.clone());
            let server = p.server.clone();
            let call = tokio::task::spawn_blocking(move || {
                call_peer(method, &p.admin, &path, &token, tls.as_deref())
            });
            (server, call)
        })
        .collect();
    let mut out = Vec::with_capacity(calls.len());
    for (server, call) in calls {
        let r = call.await.unwrap_or_else(|e| Err(e.to_string()));
        out.push((server, r));
    }
    out
}

pub(super) fn call_peer(
    method: &str,
    admin: &str,
    path: &str,
    token: &str,
    tls: Option<&AdminTls>,
) -> Result<Value, String> {
    let mut config = ureq::Agent::config_builder()
        .timeout_global(Some(PEER_TIMEOUT))
        .max_redirects(0)
        .proxy(None)
        .http_status_as_error(true);
    let scheme = match tls {
        None => "http",
        Some(tls) => {
            let roots = ureq::tls::RootCerts::Specific(tls.peer_roots.clone());
            config = config.tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build());
            "https"
        }
    };
    let agent: ureq::Agent = config.build().into();
    let url = format!("{scheme}://{admin}{path}");
    let auth = format!("Bearer {token}");
    let resp = match method {
        "POST" => agent.post(&url).header("Authorization", &auth).send_empty(),
        _ => agent.get(&url).header("Authorization", &auth).call(),
    };
    let mut resp = resp.map_err(|e| format!("{method} {url}: {e}"))?;
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("{method} {url}: {e}"))?;
    if body.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&body).map_err(|e| format!("{method} {url}: {e}"))
}

/// Every live peer's answer to `GET path`, or MemCachier's "Server error:
/// host:port,..." naming the ones that did not answer.
pub(super) async fn from_peers(
    state: &AdminState,
    path: String,
) -> Result<Vec<(String, Value)>, ApiError> {
    let mut answers = Vec::new();
    let mut failed = Vec::new();
    for (server, r) in fan_out(state, "GET", path).await {
        match r {
            Ok(v) => answers.push((server, v)),
            Err(e) => {
                tracing::warn!("cluster: {server}: {e}");
                failed.push(server);
            }
        }
    }
    if failed.is_empty() {
        Ok(answers)
    } else {
        Err(server_error(&failed))
    }
}

/// The API's `stats`: one object per live server, keyed by its host:port,
/// as MemCachier's API answers. A peer that does not answer fails the call
/// with MemCachier's "Server error: host:port,...".
pub(super) async fn cluster_stats(state: &AdminState, cache: &Cache) -> ApiResult {
    let mut all = serde_json::Map::new();
    all.insert(state.this_server().to_string(), local_stats(state, cache));
    let path = format!("/admin/v1/local/caches/{}/stats", cache.id);
    all.extend(from_peers(state, path).await?);
    Ok(Json(Value::Object(all)).into_response())
}

/// The API's `flush`: every live node drops the cache's items; 204 only
/// when all did, else MemCachier's "Server error: host:port,..." naming
/// the nodes that did not.
pub(super) async fn cluster_flush(state: &AdminState, cache: &Cache) -> ApiResult {
    let path = format!("/admin/v1/local/caches/{}/flush", cache.id);
    let (local, remote) = tokio::join!(local_flush(cache.id), fan_out(state, "POST", path));
    let mut failed = Vec::new();
    if local.is_err() {
        failed.push(state.this_server().to_string());
    }
    for (server, r) in remote {
        if let Err(e) = r {
            tracing::warn!("cluster flush: {server}: {e}");
            failed.push(server);
        }
    }
    if failed.is_empty() {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(server_error(&failed))
    }
}

pub(super) fn server_error(failed: &[String]) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        format!("Server error: {}", failed.join(",")),
    )
}
