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
//! In a cluster every node samples its own counters: `processed_stats` sums
//! the nodes' series bucket by bucket (`history::merge`), `per_server` and
//! `latency` give one series per node, each tagged with its host:port. The
//! other nodes' points come from their `/admin/v1/local/caches/:id/history`
//! and `.../latency` (operator routes, `local_routes`).
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
use super::fanout::{from_peers, local_cache};
use super::history::{self, Point};
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

/// This node's history for the other nodes (under `/admin/v1`, behind the
/// operator token).
pub(crate) fn local_routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/local/caches/{id}/history", get(local_history))
        .route("/local/caches/{id}/latency", get(local_latency))
}

/// This node's points of the cache in the range: `{step, points}`.
async fn local_history(
    State(state): Shared,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let cache = local_cache(&state, &id)?;
    let (start, end) = time_range(&q)?;
    let history = state.history.lock().unwrap_or_else(|e| e.into_inner());
    let (step, points) = history.points(cache.id, start, end);
    Ok(Json(serde_json::json!({ "step": step, "points": points })).into_response())
}

async fn local_latency(
    State(state): Shared,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let cache = local_cache(&state, &id)?;
    let (start, end) = time_range(&q)?;
    Ok(Json(local_latency_of(&state, cache.id, start, end)).into_response())
}

fn local_latency_of(state: &AdminState, cache: u32, start: u64, end: u64) -> Value {
    let history = state.history.lock().unwrap_or_else(|e| e.into_inner());
    history.latency(cache, start, end, state.this_server())
}

/// The range as the other nodes' local routes take it: the caller's own
/// `startTime` / `endTime`, so that a range left open ends at each node's
/// own now (a node's newest sample can be a second ahead of this one's
/// clock, and would fall outside an end fixed here).
fn range_query(q: &HashMap<String, String>) -> String {
    ["startTime", "endTime"]
        .iter()
        .filter_map(|k| q.get(*k).map(|v| format!("{k}={}", query_escape(v))))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn query_escape(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn latency(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let cache = authorize(&state, &headers, &id)?;
    let (start, end) = time_range(&q)?;
    let mut series = match local_latency_of(&state, cache.id, start, end) {
        Value::Array(a) => a,
        v => vec![v],
    };
    let path = format!(
        "/admin/v1/local/caches/{}/latency?{}",
        cache.id,
        range_query(&q)
    );
    for (_, v) in from_peers(&state, path).await? {
        match v {
            Value::Array(a) => series.extend(a),
            v => series.push(v),
        }
    }
    Ok(Json(series).into_response())
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
    let (step, mine) = {
        let history = state.history.lock().unwrap_or_else(|e| e.into_inner());
        let (step, pts) = history.points(cache.id, start, end);
        (step, pts.into_iter().cloned().collect::<Vec<Point>>())
    };
    let mut nodes = vec![(state.this_server().to_string(), mine)];
    let path = format!(
        "/admin/v1/local/caches/{}/history?{}",
        cache.id,
        range_query(&q)
    );
    for (server, v) in from_peers(&state, path).await? {
        let points = serde_json::from_value(v["points"].clone())
            .map_err(|e| ApiError::invalid(format!("history from {server}: {e}")))?;
        nodes.push((server, points));
    }
    let processed = |pts: &[Point]| {
        let refs: Vec<&Point> = pts.iter().collect();
        history::processed_of(&refs, &names, start, cache.memory_limit).map_err(ApiError::invalid)
    };
    if !per_server {
        let all: Vec<Vec<Point>> = nodes.into_iter().map(|(_, p)| p).collect();
        let series = match all.len() {
            1 => processed(&all[0])?,
            _ => processed(&history::merge(step, &all))?,
        };
        return Ok(Json(series).into_response());
    }
    let mut out = Vec::new();
    for (server, pts) in &nodes {
        let Value::Array(series) = processed(pts)? else {
            continue;
        };
        for mut s in series {
            if let Value::Object(o) = &mut s {
                o.insert("tags".into(), serde_json::json!({ "server": server }));
            }
            out.push(s);
        }
    }
    Ok(Json(Value::Array(out)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_passes_on_as_given() {
        let q = HashMap::from([
            (
                "startTime".to_string(),
                "2023-01-08T15:20:00+01:00".to_string(),
            ),
            ("names".to_string(), "bytes".to_string()),
        ]);
        assert_eq!(
            range_query(&q),
            "startTime=2023-01-08T15%3A20%3A00%2B01%3A00"
        );
        assert_eq!(range_query(&HashMap::new()), "");
    }
}
