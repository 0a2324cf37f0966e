//! The cluster's operator routes: the node list and drain, and this node's
//! own stats and flush for the other nodes (`/admin/v1/local/...`; the
//! asking side is `fanout.rs`).
//!
//! | route | success |
//! | --- | --- |
//! | `GET /admin/v1/nodes` | 200 `{cluster, version, nodes: [{name, host, ip, port, admin, state, heartbeat_age, started, report}]}` |
//! | `POST /admin/v1/nodes/:name/drain` | 202 `{node}`: out of the discovery list now, stops after its drain grace |
//! | `GET /admin/v1/local/caches/:id/stats` | 200 this node's stats of the cache |
//! | `POST /admin/v1/local/caches/:id/flush` | 204 once this node's cores dropped the cache's items |

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::body::ApiError;
use super::fanout::{local_cache, local_flush, local_stats};
use super::AdminState;

type Shared = State<Arc<AdminState>>;
type ApiResult = Result<Response, ApiError>;

/// The operator routes (under `/admin/v1`, behind the token).
pub(super) fn operator_routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/nodes", get(list_nodes))
        .route("/nodes/{name}/drain", post(drain))
        .route("/local/caches/{id}/stats", get(local_stats_route))
        .route("/local/caches/{id}/flush", post(local_flush_route))
}

async fn list_nodes(State(state): Shared) -> ApiResult {
    let Some(plane) = &state.cluster else {
        // One node: itself, always up.
        let view = crate::topology::view();
        let t = crate::stats::registry().totals();
        return Ok(Json(json!({
            "cluster": state.cluster_name,
            "version": view.version,
            "nodes": [{
                "name": state.this_server(),
                "host": view.nodes.first().map(|n| n.host.clone()),
                "ip": view.nodes.first().map(|n| n.ip.clone()),
                "port": view.nodes.first().map(|n| n.port),
                "state": "up",
                "heartbeat_age": 0.0,
                "report": { "memory_used": t.bytes, "caches": state.lock().caches().len() },
            }],
        }))
        .into_response());
    };
    Ok(Json(json!({
        "cluster": plane.cluster(),
        "version": crate::topology::view().version,
        "nodes": plane.nodes(),
    }))
    .into_response())
}

async fn drain(State(state): Shared, Path(name): Path<String>) -> ApiResult {
    let Some(plane) = &state.cluster else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "this node is not in a cluster (no --control-plane)",
        ));
    };
    match plane.drain(&name).await {
        Ok(true) => {
            let node = plane.nodes().into_iter().find(|n| n.name == name);
            Ok((StatusCode::ACCEPTED, Json(json!({ "node": node }))).into_response())
        }
        Ok(false) => Err(ApiError::not_found(
            "no such node, or it is not up (already leaving or down)",
        )),
        Err(e) => Err(ApiError::unavailable(e)),
    }
}

async fn local_stats_route(State(state): Shared, Path(id): Path<String>) -> ApiResult {
    let cache = local_cache(&state, &id)?;
    Ok(Json(local_stats(&state, &cache)).into_response())
}

async fn local_flush_route(State(state): Shared, Path(id): Path<String>) -> ApiResult {
    let cache = local_cache(&state, &id)?;
    local_flush(cache.id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
