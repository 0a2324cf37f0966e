//! MemCachier API v2 introspection routes, under `/api/v2/caches/:id/`:
//!
//! | route | success |
//! | --- | --- |
//! | `GET introspection/recent_logs` | 200 `{server: [{timestamp, key, command, status, size}]}`, the last 100 |
//! | `GET introspection/compound_stats?startTime=&endTime=` | 200 `[{name, columns, values}]` |
//! | `GET introspection/popular_items` | 200 `{time_slice, most_hit_keys, most_missed_keys, most_mutated_keys, popular_prefixes}` |
//! | `GET introspection/key_stats?key=` | 200 `[{timestamp, name, size, hit_count, miss_count, mutation_count, in_cache, estimated, sample_rate, hit_count_range, miss_count_range, mutation_count_range}]` (counts are sampled estimates; each `*_range` holds the true count at ~95%, see `introspect::estimate`) |
//! | `GET introspection/prefixes` | 200 `[{id, name}]` |
//! | `POST introspection/prefixes {name}` | 200 `{id, name}` |
//! | `DELETE introspection/prefixes/:prefix_id` | 204 |
//! | `GET introspection/prefixes/:prefix_id/stats?startTime=&endTime=` | 200 `[{name, columns, values}]` |
//! | `GET introspection/prefixes/:prefix_id/popular_items` | 200 as popular_items, the prefix's keys |
//!
//! The numbers come from the cores (`probe.rs`): each keeps, per cache, a
//! ring of its last 100 commands and Space-Saving top-K sketches fed by a
//! sample of requests (`crate::introspect`), so nothing here scans a cache
//! for popular items. Watched prefixes' key counts and sizes are a walk of
//! the cache's store, taken on the history's sampling interval.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::authorize;
use super::body::{canonical_id, parse_json, time_range, ApiError};
use super::fanout::{from_peers, local_cache};
use super::history::iso8601;
use super::probe::{ask, Probe};
use super::AdminState;
use crate::introspect::{merge_logs, merge_popular, CoreReport, Estimate, Popular, Top, LOG_LEN};
use crate::tenancy::{Cache, WatchedPrefix};

type Shared = State<Arc<AdminState>>;
type ApiResult = Result<Response, ApiError>;

/// Entries in each popular-items list.
const TOP: usize = 10;

pub(crate) fn router() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/caches/{id}/introspection/recent_logs", get(recent_logs))
        .route(
            "/caches/{id}/introspection/compound_stats",
            get(compound_stats),
        )
        .route(
            "/caches/{id}/introspection/popular_items",
            get(popular_items),
        )
        .route("/caches/{id}/introspection/key_stats", get(key_stats))
        .route(
            "/caches/{id}/introspection/prefixes",
            get(list_prefixes).post(watch_prefix),
        )
        .route(
            "/caches/{id}/introspection/prefixes/{prefix_id}",
            axum::routing::delete(unwatch_prefix),
        )
        .route(
            "/caches/{id}/introspection/prefixes/{prefix_id}/stats",
            get(prefix_stats),
        )
        .route(
            "/caches/{id}/introspection/prefixes/{prefix_id}/popular_items",
            get(prefix_popular_items),
        )
}

/// This node's name in per-server answers.
fn server_name(state: &AdminState) -> String {
    state.this_server().to_string()
}

/// Every core's introspection report for `cache`.
async fn reports(cache: u32) -> Result<Vec<CoreReport>, ApiError> {
    let answers = ask(Probe {
        cache,
        report: true,
        ..Probe::default()
    })
    .await?;
    Ok(answers.into_iter().filter_map(|a| a.report).collect())
}

fn name(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn tops_json(tops: &[Top]) -> Value {
    tops.iter()
        .map(|t| json!({ "name": name(&t.name), "popularity": t.popularity }))
        .collect()
}

fn popular_json(p: &Popular) -> Value {
    json!({
        "time_slice": p.time_slice_ns,
        "most_hit_keys": tops_json(&p.most_hit_keys),
        "most_missed_keys": tops_json(&p.most_missed_keys),
        "most_mutated_keys": tops_json(&p.most_mutated_keys),
        "popular_prefixes": tops_json(&p.popular_prefixes),
    })
}

async fn recent_logs(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let mut by_server = serde_json::Map::new();
    by_server.insert(server_name(&state), local_logs(cache.id).await?);
    // In a cluster, every other node's log under its own host:port.
    let path = format!("/admin/v1/local/caches/{}/recent_logs", cache.id);
    for (_, v) in from_peers(&state, path).await? {
        if let Value::Object(m) = v {
            by_server.extend(m);
        }
    }
    Ok(Json(Value::Object(by_server)).into_response())
}

/// This node's recent log of the cache, for the other nodes (under
/// `/admin/v1`, behind the operator token): `{host:port: [lines]}`.
pub(crate) fn local_routes() -> Router<Arc<AdminState>> {
    Router::new().route("/local/caches/{id}/recent_logs", get(local_recent_logs))
}

async fn local_recent_logs(State(state): Shared, Path(id): Path<String>) -> ApiResult {
    let cache = local_cache(&state, &id)?;
    let mut by_server = serde_json::Map::new();
    by_server.insert(server_name(&state), local_logs(cache.id).await?);
    Ok(Json(Value::Object(by_server)).into_response())
}

/// This node's log lines of `cache`, every core's merged.
async fn local_logs(cache: u32) -> Result<Value, ApiError> {
    let reports = reports(cache).await?;
    Ok(merge_logs(&reports, LOG_LEN)
        .iter()
        .map(|e| {
            json!({
                "timestamp": iso8601(e.time as u64),
                "key": name(&e.key),
                "command": e.cmd,
                "status": e.status,
                "size": e.size,
            })
        })
        .collect())
}

async fn compound_stats(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let (start, end) = time_range(&q)?;
    let history = state.history.lock().unwrap_or_else(|e| e.into_inner());
    Ok(Json(history.compound(cache.id, start, end)).into_response())
}

async fn popular_items(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let reports = reports(cache.id).await?;
    let parts: Vec<&Popular> = reports.iter().map(|r| &r.popular).collect();
    Ok(Json(popular_json(&merge_popular(&parts, TOP))).into_response())
}

async fn key_stats(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let key = q
        .get("key")
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::invalid("query parameter key is required"))?;
    if key.len() > 250 {
        return Err(ApiError::invalid("key is longer than 250 bytes"));
    }
    let answers = ask(Probe {
        cache: cache.id,
        key: Some(key.as_bytes().to_vec()),
        ..Probe::default()
    })
    .await?;
    // Only the key's owner core answers (none when the cache was never
    // used there: then nothing was counted, exactly).
    let k = answers
        .iter()
        .find_map(|a| a.key.clone())
        .unwrap_or_default();
    let range = |e: &Estimate| json!([e.low, e.high]);
    Ok(Json(json!([{
        "timestamp": iso8601(crate::clock::unix_now() as u64),
        "name": key,
        "size": k.size.unwrap_or(0),
        "hit_count": k.hits.value,
        "miss_count": k.misses.value,
        "mutation_count": k.mutations.value,
        "in_cache": k.size.is_some(),
        "estimated": !(k.hits.exact() && k.misses.exact() && k.mutations.exact()),
        "sample_rate": k.sample_every.max(1),
        "hit_count_range": range(&k.hits),
        "miss_count_range": range(&k.misses),
        "mutation_count_range": range(&k.mutations),
    }]))
    .into_response())
}

fn prefix_json(p: &WatchedPrefix) -> Value {
    json!({ "id": p.id, "name": p.name })
}

async fn list_prefixes(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let list: Vec<Value> = state
        .lock()
        .prefixes(cache.id)
        .iter()
        .map(prefix_json)
        .collect();
    Ok(Json(Value::Array(list)).into_response())
}

#[derive(Deserialize)]
struct PrefixBody {
    name: String,
}

/// The prefix a `POST prefixes` body names (the store checks it).
pub(crate) fn prefix_name(body: &[u8]) -> Result<String, ApiError> {
    Ok(parse_json::<PrefixBody>(body)?.name)
}

async fn watch_prefix(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let name = prefix_name(&body)?;
    let p = state.mutate(|s| s.add_prefix(cache.id, &name))?;
    Ok(Json(prefix_json(&p)).into_response())
}

/// The cache and its watched prefix `raw` (400 not a number, 404 not one
/// of this cache's).
fn watched(
    state: &AdminState,
    headers: &HeaderMap,
    id: &str,
    raw: &str,
) -> Result<(Cache, WatchedPrefix), ApiError> {
    let cache = authorize(state, headers, id)?;
    let pid: u64 = canonical_id(raw)
        .ok_or_else(|| ApiError::invalid("The specified prefix ID is invalid (not a number)."))?;
    let prefix = state
        .lock()
        .prefixes(cache.id)
        .into_iter()
        .find(|p| p.id == pid)
        .ok_or_else(|| ApiError::not_found("Prefix not found."))?;
    Ok((cache, prefix))
}

async fn unwatch_prefix(
    State(state): Shared,
    headers: HeaderMap,
    Path((id, pid)): Path<(String, String)>,
) -> ApiResult {
    let (cache, prefix) = watched(&state, &headers, &id, &pid)?;
    state.mutate(|s| s.remove_prefix(cache.id, prefix.id))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn prefix_stats(
    State(state): Shared,
    headers: HeaderMap,
    Path((id, pid)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let (_, prefix) = watched(&state, &headers, &id, &pid)?;
    let (start, end) = time_range(&q)?;
    let history = state.history.lock().unwrap_or_else(|e| e.into_inner());
    Ok(Json(history.prefix_stats(prefix.id, start, end)).into_response())
}

async fn prefix_popular_items(
    State(state): Shared,
    headers: HeaderMap,
    Path((id, pid)): Path<(String, String)>,
) -> ApiResult {
    let (cache, prefix) = watched(&state, &headers, &id, &pid)?;
    let reports = reports(cache.id).await?;
    let parts: Vec<&Popular> = reports
        .iter()
        .flat_map(|r| r.watched.iter())
        .filter(|w| w.id == prefix.id)
        .map(|w| &w.popular)
        .collect();
    Ok(Json(popular_json(&merge_popular(&parts, TOP))).into_response())
}

/// One sampling round's prefix numbers for the history: for every cache
/// with watched prefixes (`watched`, caches without any left out), each prefix's (id, [keys, bytes, hits, misses,
/// mutations]) summed over the cores.
///
/// Keys and bytes come from walks of the cache's store that the cores
/// advance a bounded step per tick: a round reads the last finished walk
/// and, when `scan` is set (every few rounds) or a prefix has no numbers
/// yet, starts the next. `walked` keeps the last totals for the rounds
/// between.
pub(super) async fn sample_prefixes(
    watched: &[(u32, Vec<WatchedPrefix>)],
    scan: bool,
    walked: &mut HashMap<u64, (u64, u64)>,
) -> Vec<(u64, Vec<u64>)> {
    walked.retain(|id, _| watched.iter().any(|(_, ps)| ps.iter().any(|p| p.id == *id)));
    let mut out = Vec::new();
    for (cache, prefixes) in watched {
        let cache = *cache;
        let walk = scan || prefixes.iter().any(|p| !walked.contains_key(&p.id));
        let probe = Probe {
            cache,
            report: true,
            scan: prefixes
                .iter()
                .map(|p| p.name.as_bytes().to_vec())
                .collect(),
            walk,
            ..Probe::default()
        };
        let Ok(answers) = ask(probe).await else {
            continue;
        };
        // A total only once every core has finished a walk over these prefixes.
        let scans: Option<Vec<&Vec<(u64, u64)>>> =
            answers.iter().map(|a| a.scan.as_ref()).collect();
        for (i, p) in prefixes.iter().enumerate() {
            if let Some(scans) = &scans {
                let sum = scans
                    .iter()
                    .filter_map(|s| s.get(i))
                    .fold((0, 0), |(k, b), (keys, bytes)| (k + keys, b + bytes));
                walked.insert(p.id, sum);
            }
            let (keys, bytes) = walked.get(&p.id).copied().unwrap_or_default();
            let mut v = vec![keys, bytes, 0, 0, 0];
            for a in &answers {
                let counters = a
                    .report
                    .iter()
                    .flat_map(|r| r.watched.iter())
                    .filter(|w| w.id == p.id);
                for w in counters {
                    v[2] += w.hits;
                    v[3] += w.misses;
                    v[4] += w.mutations;
                }
            }
            out.push((p.id, v));
        }
    }
    out
}
