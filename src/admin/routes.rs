//! The operator routes, all under `/admin/v1` and all behind the operator
//! token (`auth.rs`), plus the unauthenticated `GET /healthz`, `GET
//! /metrics` (Prometheus text format, `metrics.rs`) and `GET /status`
//! (green / yellow / red from recent latency, `status.rs`).
//!
//! | route | success |
//! | --- | --- |
//! | `POST /caches {name, memory, connections?}` | 201 `{cache, credential, servers, env}` |
//! | `GET /caches` | 200 `{caches}` |
//! | `GET /caches/:id` | 200 `{cache, credentials, servers}` |
//! | `PATCH /caches/:id {memory?, connections?, enabled?}` | 200 `{cache}` |
//! | `DELETE /caches/:id` | 204 |
//! | `GET /caches/:id/credentials` | 200 `{credentials}` |
//! | `POST /caches/:id/credentials {write?, flush?, api?}` | 201 `{credential}` |
//! | `PATCH /caches/:id/credentials/:username {write, flush, api}` | 200 `{credential}` |
//! | `DELETE /caches/:id/credentials/:username` | 204 |
//! | `POST /caches/:id/credentials/:username/promote` | 200 `{credential}` |
//! | `GET /caches/:id/credentials/:username/certs` | 200 `{cert_fingerprints}` (`certs.rs`) |
//! | `POST /caches/:id/credentials/:username/certs {fingerprint}` | 201 `{credential}` |
//! | `DELETE /caches/:id/credentials/:username/certs/:fingerprint` | 204 |
//! | `GET /tls`, `POST /tls/reload` | 200 the data port's TLS settings and counters (`tls_routes.rs`) |
//! | `GET /latency` | 200 `{latency: {class: {count, p50, p90, p99, p999, max}}}` (µs, all caches) |
//! | `GET /caches/:id/latency` | 200 `{cache_id, latency}` (that cache's requests) |
//!
//! Errors: 400 invalid, 401 no/wrong token, 404 no such cache or
//! credential, 409 conflict, 500 the store could not write (`body.rs`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::auth::require_operator;
use super::body::{
    cache_view, credential_view, credentials_view, env_view, parse_id, parse_json, AddCredential,
    ApiError, CreateCache, PatchCache, SetCaps,
};
use super::AdminState;
use crate::tenancy::{Cache, ControlError, ControlStore, Credential};

type Shared = State<Arc<AdminState>>;
type ApiResult = Result<Response, ApiError>;

pub(crate) fn router(state: Arc<AdminState>) -> Router {
    let operator = Router::new()
        .route("/caches", post(create_cache).get(list_caches))
        .route(
            "/caches/{id}",
            get(get_cache).patch(patch_cache).delete(delete_cache),
        )
        .route(
            "/caches/{id}/credentials",
            get(list_credentials).post(add_credential),
        )
        .route(
            "/caches/{id}/credentials/{username}",
            axum::routing::patch(set_caps).delete(remove_credential),
        )
        .route("/caches/{id}/credentials/{username}/promote", post(promote))
        .route("/latency", get(server_latency))
        .route("/caches/{id}/latency", get(cache_latency))
        .merge(super::certs::operator_routes())
        .merge(super::nodes::operator_routes())
        .merge(super::tls_routes::operator_routes())
        .merge(super::insight::local_routes())
        .merge(super::introspection::local_routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_operator,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/status", get(|| async { Json(super::status::report()) }))
        .nest("/admin/v1", operator)
        .nest(
            "/api/v2",
            super::api_v2::router()
                .merge(super::alerts::router())
                .merge(super::insight::router())
                .merge(super::introspection::router())
                .merge(super::manage::router())
                .merge(super::certs::router()),
        )
        .merge(super::manage::sso_router())
        .merge(super::dashboard::router())
        .fallback(|| async { ApiError::not_found("no such route") })
        .with_state(state)
}

fn created(body: serde_json::Value) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

fn ok(body: serde_json::Value) -> Response {
    Json(body).into_response()
}

/// A `POST /caches` body, checked: the trimmed name, the plan in bytes,
/// the connection limit (0: none).
pub(crate) struct NewCache {
    pub(crate) name: String,
    pub(crate) memory: u64,
    pub(crate) connections: u32,
}

pub(crate) fn new_cache(body: &[u8]) -> Result<NewCache, ApiError> {
    let req: CreateCache = parse_json(body)?;
    let memory = req.memory.bytes()?;
    let name = req.name.trim();
    if name.is_empty() {
        return Err(ApiError::invalid("name must not be empty"));
    }
    Ok(NewCache {
        name: name.to_owned(),
        memory,
        connections: req.connections.unwrap_or(0),
    })
}

/// Creates the cache. Two commits, published together (cores never see
/// the cache without its limit); a crash between them leaves the cache
/// with no limit.
pub(crate) fn create_cache_in(
    s: &mut ControlStore,
    req: &NewCache,
) -> Result<(Cache, Credential), ControlError> {
    let (mut cache, cred) = s.create_cache(&req.name, req.memory)?;
    if req.connections > 0 {
        cache = s.set_max_connections(cache.id, req.connections)?;
    }
    Ok((cache, cred))
}

async fn create_cache(State(state): Shared, body: Bytes) -> ApiResult {
    let req = new_cache(&body)?;
    let (cache, cred) = state.mutate(|s| create_cache_in(s, &req))?;
    Ok(created(json!({
        "cache": cache_view(&cache),
        "credential": credential_view(&cred),
        "servers": state.servers(),
        "env": env_view(&state.servers(), &cred),
    })))
}

async fn list_caches(State(state): Shared) -> ApiResult {
    let mut caches = state.lock().caches();
    caches.sort_by_key(|c| c.id);
    let views: Vec<_> = caches.iter().map(cache_view).collect();
    Ok(ok(json!({ "caches": views })))
}

/// Percentiles per command class merged over the cores' last pushes (at
/// most a second old); classes with no request yet are left out.
fn latency_json(cache: Option<u32>) -> serde_json::Value {
    let report = crate::latency::hub()
        .map(|h| h.report(cache))
        .unwrap_or_default();
    let by_class: serde_json::Map<String, serde_json::Value> = report
        .into_iter()
        .map(|(name, p)| (name.to_string(), json!(p)))
        .collect();
    serde_json::Value::Object(by_class)
}

async fn server_latency() -> ApiResult {
    Ok(ok(json!({ "unit": "us", "latency": latency_json(None) })))
}

async fn cache_latency(State(state): Shared, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id)?;
    state.lock().cache(id).ok_or(ControlError::NotFound)?;
    Ok(ok(json!({
        "cache_id": id,
        "unit": "us",
        "latency": latency_json(Some(id)),
    })))
}

/// `GET /metrics`: the server's and every hosted cache's series.
async fn metrics(State(state): Shared) -> Response {
    let caches: Vec<(u32, u64)> = state
        .lock()
        .caches()
        .iter()
        .map(|c| (c.id, c.memory_limit))
        .collect();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            super::metrics::CONTENT_TYPE,
        )],
        super::metrics::render(&caches),
    )
        .into_response()
}

async fn get_cache(State(state): Shared, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id)?;
    let store = state.lock();
    let cache = store.cache(id).ok_or(ControlError::NotFound)?;
    let creds = store.credentials(id);
    Ok(ok(json!({
        "cache": cache_view(&cache),
        "credentials": credentials_view(&creds),
        "servers": state.servers(),
    })))
}

/// A `PATCH /caches/:id` body, checked: what changes.
pub(crate) struct CachePatch {
    pub(crate) memory: Option<u64>,
    pub(crate) enabled: Option<bool>,
    pub(crate) connections: Option<u32>,
}

/// Validates everything before anything changes.
pub(crate) fn cache_patch(body: &[u8]) -> Result<CachePatch, ApiError> {
    let req: PatchCache = parse_json(body)?;
    let memory = req.memory.as_ref().map(|m| m.bytes()).transpose()?;
    if memory.is_none() && req.enabled.is_none() && req.connections.is_none() {
        return Err(ApiError::invalid(
            "nothing to change: give memory, connections and/or enabled",
        ));
    }
    Ok(CachePatch {
        memory,
        enabled: req.enabled,
        connections: req.connections,
    })
}

pub(crate) fn patch_cache_in(
    s: &mut ControlStore,
    id: u32,
    patch: &CachePatch,
) -> Result<Cache, ControlError> {
    let mut cache = s.cache(id).ok_or(ControlError::NotFound)?;
    if let Some(bytes) = patch.memory {
        cache = s.set_memory_limit(id, bytes)?;
    }
    if let Some(n) = patch.connections {
        cache = s.set_max_connections(id, n)?;
    }
    if let Some(enabled) = patch.enabled {
        cache = s.set_enabled(id, enabled)?;
    }
    Ok(cache)
}

async fn patch_cache(State(state): Shared, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let id = parse_id(&id)?;
    let patch = cache_patch(&body)?;
    let cache = state.mutate(|s| patch_cache_in(s, id, &patch))?;
    Ok(ok(json!({ "cache": cache_view(&cache) })))
}

async fn delete_cache(State(state): Shared, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id)?;
    state.mutate(|s| s.delete_cache(id))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_credentials(State(state): Shared, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id)?;
    let store = state.lock();
    // An unknown cache is a 404, not an empty list.
    store.cache(id).ok_or(ControlError::NotFound)?;
    Ok(ok(
        json!({ "credentials": credentials_view(&store.credentials(id)) }),
    ))
}

async fn add_credential(State(state): Shared, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let id = parse_id(&id)?;
    let req: AddCredential = parse_json(&body)?;
    let cred = state.mutate(|s| s.add_credential(id, req.caps()))?;
    Ok(created(json!({ "credential": credential_view(&cred) })))
}

async fn remove_credential(
    State(state): Shared,
    Path((id, username)): Path<(String, String)>,
) -> ApiResult {
    let id = parse_id(&id)?;
    state.mutate(|s| s.remove_credential(id, &username))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn promote(State(state): Shared, Path((id, username)): Path<(String, String)>) -> ApiResult {
    let id = parse_id(&id)?;
    let cred = state.mutate(|s| {
        s.promote(id, &username)?;
        s.credentials(id)
            .into_iter()
            .find(|c| c.username == username)
            .ok_or(ControlError::NotFound)
    })?;
    Ok(ok(json!({ "credential": credential_view(&cred) })))
}

async fn set_caps(
    State(state): Shared,
    Path((id, username)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let id = parse_id(&id)?;
    let req: SetCaps = parse_json(&body)?;
    let cred = state.mutate(|s| s.set_caps(id, &username, req.caps()))?;
    Ok(ok(json!({ "credential": credential_view(&cred) })))
}
