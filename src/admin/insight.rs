//! MemCachier API v2 insight routes over the stats history (`history.rs`):
//!
//! | route | success |
//! | --- | --- |
//! | `GET /caches/:id/insight/processed_stats?names=a,b&startTime=&endTime=` | 200 `[{name, columns, values}]` |
//! | `GET /caches/:id/insight/processed_stats/per_server?...` | the same with `tags: {server}` |
//! | `GET /caches/:id/insight/latency?startTime=&endTime=` | 200 `[{name: "latency", tags: {server}, columns: [time, duration], values}]`, mean ns |
//!
//! Latency comes from the cores' per-cache histograms, sampled with the
//! other counters (so at the history's granularities: 1 min for a day,
//! where MemCachier quotes 20 s).
//!
//! `names` is required (400 without it or with an unknown name); times are
//! ISO 8601 (`2023-01-08T15:20:00Z`) or unix seconds, defaulting to the last
//! 24 hours. Authentication as in `api_v2.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use super::auth::authorize;
use super::body::{time_range, ApiError};
use super::AdminState;

type Shared = State<Arc<AdminState>>;

pub(crate) fn router() -> Router<Arc<AdminState>> {
    Router::new()
        .route(
            "/caches/{id}/insight/processed_stats",
            get(|s, h, p, q| processed(s, h, p, q, false)),
        )
        .route(
            "/caches/{id}/insight/processed_stats/per_server",
            get(|s, h, p, q| processed(s, h, p, q, true)),
        )
        .route("/caches/{id}/insight/latency", get(latency))
}

async fn latency(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let cache = authorize(&state, &headers, &id)?;
    let (start, end) = time_range(&q)?;
    let server = state.this_server();
    let history = state.history.lock().unwrap_or_else(|e| e.into_inner());
    Ok(Json(history.latency(cache.id, start, end, server)).into_response())
}

async fn processed(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    per_server: bool,
) -> Result<Response, ApiError> {
    let cache = authorize(&state, &headers, &id)?;
    let names: Vec<String> = q
        .get("names")
        .map(|n| {
            n.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        return Err(ApiError::invalid("query parameter names is required"));
    }
    let (start, end) = time_range(&q)?;
    let history = state.history.lock().unwrap_or_else(|e| e.into_inner());
    let mut series = history
        .processed(cache.id, &names, start, end, cache.memory_limit)
        .map_err(ApiError::invalid)?;
    if per_server {
        // One server per node: the series is this node's.
        if let Some(Value::Object(s)) = series.get_mut(0) {
            s.insert(
                "tags".into(),
                serde_json::json!({ "server": state.this_server() }),
            );
        }
    }
    Ok(Json(series).into_response())
}
