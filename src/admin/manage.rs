//! MemCachier API v2 management routes that are not about credentials, and
//! the dashboard link that `rotate_sso` invalidates:
//!
//! | route | success |
//! | --- | --- |
//! | `POST /api/v2/caches/:id/rotate_sso` | 200 the new dashboard link (a JSON string) |
//! | `POST /api/v2/caches/:id/switch_cluster` | 200 the cluster name (a JSON string) |
//! | `GET /sso/:id?token=` | 200 the cache's dashboard summary (a browser: the dashboard itself); 401 for a rotated-away token |
//!
//! A dashboard link carries the cache's SSO secret; rotating it makes every
//! earlier link answer 401, like MemCachier's "invalidating dashboard URLs".
//!
//! `switch_cluster`: MemCachier moves a cache to another cluster of servers.
//! A shoal node is one cluster (named by `--cluster-name`, default `local`)
//! whose caches live on every core, so there is no other cluster to move
//! to: the call succeeds and answers the cluster the cache is on, which is
//! what a client reads from it either way.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::auth::authorize;
use super::body::{parse_id, ApiError};
use super::AdminState;
use crate::tenancy::Cache;

type Shared = State<Arc<AdminState>>;
type ApiResult = Result<Response, ApiError>;

pub(crate) fn router() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/caches/{id}/rotate_sso", post(rotate_sso))
        .route("/caches/{id}/switch_cluster", post(switch_cluster))
}

/// The dashboard route, outside `/api/v2` (it takes no credential).
pub(crate) fn sso_router() -> Router<Arc<AdminState>> {
    Router::new().route("/sso/{id}", get(dashboard))
}

fn link(id: u32, secret: &str) -> String {
    format!("/sso/{id}?token={secret}")
}

async fn rotate_sso(State(state): Shared, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let secret = state.mutate(|s| s.rotate_sso(cache.id))?;
    Ok(Json(json!(link(cache.id, &secret))).into_response())
}

async fn switch_cluster(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    authorize(&state, &headers, &id)?;
    Ok(Json(json!(state.cluster_name)).into_response())
}

fn unauthorized() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "unauthorized",
        "This dashboard link is not valid (rotated or wrong).",
    )
}

/// The cache a dashboard link opens and its current secret, once the
/// link's token is checked.
fn check_link(
    state: &AdminState,
    id: &str,
    q: &HashMap<String, String>,
) -> Result<(Cache, String), ApiError> {
    let id = parse_id(id)?;
    let token = q.get("token").ok_or_else(unauthorized)?;
    let (cache, secret) = {
        let store = state.lock();
        let cache = store
            .cache(id)
            .ok_or_else(|| ApiError::not_found("Cache not found."))?;
        (cache, store.sso_secret(id).unwrap_or_default())
    };
    // No secret yet: no link has been handed out, so none is valid.
    let ok = !secret.is_empty() && bool::from(secret.as_bytes().ct_eq(token.as_bytes()));
    if !ok {
        return Err(unauthorized());
    }
    Ok((cache, secret))
}

/// A browser gets the web dashboard (`dashboard/`); anything else the
/// read-only summary as JSON.
async fn dashboard(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let link = check_link(&state, &id, &q);
    if super::dashboard::wants_html(&headers) {
        return Ok(super::dashboard::sso_landing(&state, link.map_err(drop)));
    }
    let (cache, _) = link?;
    let t = crate::stats::cache(cache.id).totals();
    Ok(Json(json!({
        "id": cache.id,
        "name": cache.name,
        "enabled": cache.enabled,
        "cluster_name": state.cluster_name,
        "limit_maxbytes": cache.memory_limit,
        "max_connections": cache.max_connections,
        "bytes": t.bytes,
        "curr_items": t.curr_items,
        "get_hits": t.get_hits,
        "get_misses": t.get_misses,
        "curr_connections": t.curr_connections,
        "rejected_connections": t.rejected_connections,
    }))
    .into_response())
}
