//! The numbers the pages show and refresh: a cache's summary (API v2
//! `stats` plus what MemCachier's dashboard derives from its samples) and
//! the operator's view of every cache and of the node.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::{node_status, proxy, AdminState, History, FIELDS};
use crate::tenancy::Cache;

fn field(name: &str) -> usize {
    FIELDS.iter().position(|f| *f == name).expect("known field")
}

/// What the history adds to the live counters of a cache.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) struct Derived {
    /// Get hit rate over the last hour (the cache's whole life when younger,
    /// since the last `reset_stats` when that was later); None: no gets.
    pub hit_rate_hour: Option<f64>,
    /// Evictions since the last stats sample.
    pub new_evictions: u64,
}

/// `hits`, `misses`, `evictions`: the live counters of `cache`.
pub(super) fn derive(
    history: &History,
    cache: &Cache,
    now: u64,
    hits: u64,
    misses: u64,
    evictions: u64,
) -> Derived {
    let hour_ago = now.saturating_sub(3600);
    let (_, pts) = history.points(cache.id, hour_ago, now);
    let (h, m) = (field("get_hits"), field("get_misses"));
    // The oldest sample of the hour, else the last one before it (an idle
    // cache adds no points); a cache younger than an hour: everything.
    let base = pts
        .iter()
        .find(|p| p.t >= hour_ago)
        .or(pts.first())
        .filter(|_| cache.created < hour_ago)
        .filter(|p| p.v[h] <= hits && p.v[m] <= misses);
    let (dh, dm) = match base {
        Some(p) => (hits - p.v[h], misses - p.v[m]),
        None => (hits, misses),
    };
    let hit_rate_hour = (dh + dm > 0).then(|| dh as f64 / (dh + dm) as f64);
    let e = field("evictions");
    let new_evictions = match pts.last() {
        Some(p) if p.v[e] <= evictions => evictions - p.v[e],
        Some(_) => evictions,
        None => evictions,
    };
    Derived {
        hit_rate_hour,
        new_evictions,
    }
}

/// API v2 `stats` (one object per server) summed over the servers; `time`
/// is the latest.
fn cluster_totals(stats: &Value) -> Option<Map<String, Value>> {
    let mut sum = Map::new();
    for server in stats.as_object()?.values() {
        for (k, v) in server.as_object()? {
            let Some(n) = v.as_u64() else { continue };
            let was = sum.get(k).and_then(Value::as_u64).unwrap_or(0);
            let next = if k == "time" { was.max(n) } else { was + n };
            sum.insert(k.clone(), Value::from(next));
        }
    }
    Some(sum)
}

/// A cache's summary: every field of API v2 `stats`, plus `name`, `enabled`,
/// `hit_rate_hour` (0..1 or null), `new_evictions` and `mem_fraction`.
/// None: no such cache (or the API would not answer).
pub(super) async fn cache_summary(state: &Arc<AdminState>, id: u32) -> Option<Value> {
    let cache = state.lock().cache(id)?;
    let stats = proxy::get_json(state, &format!("/api/v2/caches/{id}/stats")).await?;
    let mut map = cluster_totals(&stats)?;
    // The plan, not the sum of the servers' shares of it.
    map.insert("limit_maxbytes".into(), Value::from(cache.memory_limit));
    let n = |map: &Map<String, Value>, k: &str| map.get(k).and_then(Value::as_u64).unwrap_or(0);
    let derived = {
        let history = state.history.lock().unwrap_or_else(|e| e.into_inner());
        derive(
            &history,
            &cache,
            crate::clock::unix_now() as u64,
            n(&map, "get_hits"),
            n(&map, "get_misses"),
            n(&map, "evictions"),
        )
    };
    let plan = cache.memory_limit.max(1);
    let fraction = n(&map, "bytes") as f64 / plan as f64;
    map.insert("id".into(), json!(cache.id));
    map.insert("name".into(), json!(cache.name));
    map.insert("enabled".into(), json!(cache.enabled));
    map.insert("hit_rate_hour".into(), json!(derived.hit_rate_hour));
    map.insert("new_evictions".into(), json!(derived.new_evictions));
    map.insert("mem_fraction".into(), json!(fraction));
    Some(Value::Object(map))
}

/// One row of the operator's cache table.
pub(super) fn cache_row(history: &History, cache: &Cache, now: u64) -> Value {
    let t = crate::stats::cache_if_exists(cache.id)
        .map(|r| r.totals())
        .unwrap_or_default();
    let d = derive(history, cache, now, t.get_hits, t.get_misses, t.evictions);
    json!({
        "id": cache.id,
        "name": cache.name,
        "plan": cache.memory_limit,
        "bytes": t.bytes,
        "mem_fraction": t.bytes as f64 / cache.memory_limit.max(1) as f64,
        "curr_items": t.curr_items,
        "hit_rate_hour": d.hit_rate_hour,
        "curr_connections": t.curr_connections,
        "total_connections": t.total_connections,
        "enabled": cache.enabled,
    })
}

/// The operator overview: every cache, and the node's health.
pub(super) async fn operator_summary(state: &Arc<AdminState>) -> Value {
    let mut caches = state.lock().caches();
    caches.sort_by_key(|c| c.id);
    let now = crate::clock::unix_now() as u64;
    let rows: Vec<Value> = {
        let history = state.history.lock().unwrap_or_else(|e| e.into_inner());
        caches.iter().map(|c| cache_row(&history, c, now)).collect()
    };
    let latency = proxy::get_json(state, "/admin/v1/latency")
        .await
        .and_then(|v| v.get("latency").cloned())
        .unwrap_or_else(|| json!({}));
    let t = crate::stats::registry().totals();
    // Items and bytes live in the caches; the server-wide counters have
    // the connections and the node's item memory.
    let sum = |k: &str| rows.iter().filter_map(|r| r[k].as_u64()).sum::<u64>();
    let (bytes, items) = (sum("bytes"), sum("curr_items"));
    json!({
        "caches": rows,
        "node": {
            "status": node_status(),
            "latency": latency,
            "bytes": bytes,
            "limit_maxbytes": t.limit_maxbytes,
            "curr_items": items,
            "curr_connections": t.curr_connections,
            "total_connections": t.total_connections,
            "plans_total": caches.iter().map(|c| c.memory_limit).sum::<u64>(),
            "cluster_name": state.cluster_name,
            "servers": state.servers(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(hits: u64, misses: u64, evictions: u64) -> Vec<u64> {
        let mut v = vec![0; FIELDS.len()];
        v[field("cmd_get")] = hits + misses;
        v[field("get_hits")] = hits;
        v[field("get_misses")] = misses;
        v[field("evictions")] = evictions;
        v
    }

    fn cache(created: u64) -> Cache {
        Cache {
            id: 1,
            name: "c".into(),
            memory_limit: 1 << 20,
            max_connections: 0,
            enabled: true,
            created,
        }
    }

    #[test]
    fn hit_rate_over_the_last_hour() {
        let t0 = 1_800_000_000 / 60 * 60;
        let mut h = History::default();
        h.record(1, t0, sample(0, 100, 0)); // long ago: all misses
        h.record(1, t0 + 7200, sample(80, 100, 3));
        h.record(1, t0 + 7260, sample(90, 110, 5));
        let now = t0 + 7300;
        // An old cache: the hour since t0+7200 → 10 hits of 20 gets (plus
        // what happened since the last sample).
        let d = derive(&h, &cache(t0), now, 100, 110, 9);
        assert_eq!(d.hit_rate_hour, Some(20.0 / 30.0));
        assert_eq!(d.new_evictions, 4);
        // A young cache: everything.
        let d = derive(&h, &cache(now - 100), now, 100, 110, 9);
        assert_eq!(d.hit_rate_hour, Some(100.0 / 210.0));
        // After reset_stats: counters below the baseline count from zero.
        let d = derive(&h, &cache(t0), now, 3, 1, 0);
        assert_eq!(d.hit_rate_hour, Some(0.75));
        assert_eq!(d.new_evictions, 0);
        // No gets: unknown.
        let d = derive(&History::default(), &cache(t0), now, 0, 0, 0);
        assert_eq!(d.hit_rate_hour, None);
    }
}
