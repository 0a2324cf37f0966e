//! The MemCachier API v2 subset a cache's own users call, under
//! `/api/v2/caches/:id/...`, authenticated with HTTP Basic by a credential
//! of that cache that has the api capability (reference 001, protocol.md
//! §2.1).
//!
//! | route | success |
//! | --- | --- |
//! | `GET info` | 200 cache object with its credentials |
//! | `GET credentials` | 200 list of credentials |
//! | `POST credentials [{write_capability, flush_capability, api_capability}]` | 201 the new credential (an omitted capability on; no body: all) |
//! | `PATCH credentials/:user {write_capability, flush_capability, api_capability}` | 200 the capabilities (an omitted one becomes false) |
//! | `DELETE credentials/:user` | 200 |
//! | `POST credentials/primary/:user` | 200 the promoted credential |
//! | `POST enable_cache` | 200 |
//! | `POST flush` | 204, once every core has flushed |
//! | `POST reset_stats` | 204 |
//! | `GET stats` | 200 the documented counters |
//!
//! The rest of API v2 lives beside this file: `insight.rs` (processed
//! stats, latency), `introspection.rs`, `alerts.rs`, `manage.rs`
//! (rotate_sso, switch_cluster) and `certs.rs` (shoal's extension: client
//! certificate fingerprints).
//!
//! `GET /api/v2/openapi.json` (no credentials) serves the OpenAPI 3
//! description of all of them (`openapi.json`, checked against the running
//! server by `scripts/schemathesis-check.sh`).
//!
//! Errors: 400 an id that is not a number (or a bad body), 401 no or wrong
//! credentials, 403 a credential of another cache or without the api
//! capability, 404 no such cache or credential.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::authorize;
use super::body::{credential_json, parse_json, ApiError};
use super::AdminState;
use crate::tenancy::{Caps, ControlError};

type Shared = State<Arc<AdminState>>;
type ApiResult = Result<Response, ApiError>;

/// The OpenAPI 3 description of this router's routes.
const OPENAPI: &str = include_str!("openapi.json");

pub(crate) fn router() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/caches/{id}/info", get(info))
        .route(
            "/caches/{id}/credentials",
            get(list_credentials).post(create_credential),
        )
        .route(
            "/caches/{id}/credentials/{username}",
            patch(update_credential).delete(delete_credential),
        )
        .route(
            "/caches/{id}/credentials/primary/{username}",
            post(promote_credential),
        )
        .route("/caches/{id}/enable_cache", post(enable_cache))
        .route("/caches/{id}/flush", post(flush))
        .route("/caches/{id}/reset_stats", post(reset_stats))
        .route("/caches/{id}/stats", get(stats))
}

async fn openapi() -> Response {
    ([(CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn info(State(state): Shared, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let creds = state.lock().credentials(cache.id);
    Ok(Json(json!({
        "id": cache.id,
        "name": cache.name,
        "label": cache.name,
        "cache_type": "memcachier",
        "plan": cache.memory_limit,
        "max_connections": cache.max_connections,
        "provider": "shoal",
        "enabled": cache.enabled,
        "cluster_name": state.cluster_name,
        "servers": state.servers().split(',').map(str::to_string).collect::<Vec<_>>(),
        "credentials": creds.iter().map(credential_json).collect::<Vec<_>>(),
        "can_switch": false,
        "can_manage_credentials": true,
        "can_update_capabilities": true,
    }))
    .into_response())
}

async fn list_credentials(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let creds = state.lock().credentials(cache.id);
    let list: Vec<Value> = creds.iter().map(credential_json).collect();
    Ok(Json(Value::Array(list)).into_response())
}

/// POST body (optional; MemCachier's has none): the new credential's
/// capabilities, an omitted one on. A body that is not this is refused
/// rather than ignored, so a read-only credential asked for is never
/// created with every capability.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCapsBody {
    write_capability: Option<bool>,
    flush_capability: Option<bool>,
    api_capability: Option<bool>,
}

async fn create_credential(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let caps = new_credential_caps(&body)?;
    let cred = state.mutate(|s| s.add_credential(cache.id, caps))?;
    Ok((StatusCode::CREATED, Json(credential_json(&cred))).into_response())
}

/// The capabilities of a new credential from its POST body.
pub(crate) fn new_credential_caps(body: &[u8]) -> Result<Caps, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Caps::ALL);
    }
    let req: NewCapsBody = parse_json(body)?;
    Ok(Caps {
        write: req.write_capability.unwrap_or(true),
        flush: req.flush_capability.unwrap_or(true),
        api: req.api_capability.unwrap_or(true),
    })
}

/// PATCH body: MemCachier sets an omitted capability to false.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CapsBody {
    #[serde(default)]
    write_capability: bool,
    #[serde(default)]
    flush_capability: bool,
    #[serde(default)]
    api_capability: bool,
}

/// A credential's new capabilities from its PATCH body.
pub(crate) fn credential_caps(body: &[u8]) -> Result<Caps, ApiError> {
    let req: CapsBody = if body.is_empty() {
        parse_json(b"{}")?
    } else {
        parse_json(body)?
    };
    Ok(Caps {
        write: req.write_capability,
        flush: req.flush_capability,
        api: req.api_capability,
    })
}

async fn update_credential(
    State(state): Shared,
    headers: HeaderMap,
    Path((id, username)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let caps = credential_caps(&body)?;
    let cred = state.mutate(|s| s.set_caps(cache.id, &username, caps))?;
    Ok(Json(json!({
        "write_capability": cred.caps.write,
        "flush_capability": cred.caps.flush,
        "api_capability": cred.caps.api,
    }))
    .into_response())
}

async fn delete_credential(
    State(state): Shared,
    headers: HeaderMap,
    Path((id, username)): Path<(String, String)>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    state.mutate(|s| s.remove_credential(cache.id, &username))?;
    Ok(StatusCode::OK.into_response())
}

async fn promote_credential(
    State(state): Shared,
    headers: HeaderMap,
    Path((id, username)): Path<(String, String)>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    state.mutate(|s| s.promote(cache.id, &username))?;
    let cred = state
        .lock()
        .credentials(cache.id)
        .into_iter()
        .find(|c| c.username == username)
        .ok_or(ControlError::NotFound)?;
    Ok(Json(credential_json(&cred)).into_response())
}

async fn enable_cache(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    state.mutate(|s| s.set_enabled(cache.id, true))?;
    Ok(StatusCode::OK.into_response())
}

/// The deploy-hook flush (reference 000): answered once every core of
/// every live node has dropped the cache's items, so the deploy that
/// follows sees an empty cache.
async fn flush(State(state): Shared, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    super::fanout::cluster_flush(&state, &cache).await
}

async fn reset_stats(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    crate::stats::cache(cache.id).reset();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Every live server's counters of the cache, keyed by its host:port.
async fn stats(State(state): Shared, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    super::fanout::cluster_stats(&state, &cache).await
}
