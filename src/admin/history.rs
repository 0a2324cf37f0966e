//! Stats history: each cache's counters sampled on a fixed interval and kept
//! at MemCachier's granularities (1 min for a day, 10 min for a week, 1 h
//! for three months, 1 day beyond), bounded per cache, persisted in the data
//! dir so a restart keeps it; and MemCachier's processed stats (rates, hit
//! rates, fractions) computed from it.
//!
//! Counters are cumulative, so a bucket keeps the last sample that fell in
//! it and rates are differences between neighbouring points. An idle cache
//! adds no points (a sample equal to the previous point is only a time
//! stamp away from it), so thousands of idle caches cost little.
//!
//! Plain Rust: the admin thread samples and serves it.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::stats::Totals;

/// What is sampled, in this order.
pub const FIELDS: [&str; 27] = [
    "cmd_get",
    "get_hits",
    "get_misses",
    "get_expired",
    "cmd_set",
    "cmd_flush",
    "cmd_touch",
    "touch_hits",
    "touch_misses",
    "delete_hits",
    "delete_misses",
    "incr_hits",
    "incr_misses",
    "decr_hits",
    "decr_misses",
    "cas_hits",
    "cas_misses",
    "cas_badval",
    "evictions",
    "bytes",
    "curr_items",
    "curr_connections",
    "total_connections",
    "bytes_read",
    "bytes_written",
    "auth_cmds",
    "auth_errors",
];

/// The sampled values of `t`, in `FIELDS` order; `limit` is the cache's plan.
pub fn sample(t: &Totals) -> Vec<u64> {
    vec![
        t.cmd_get,
        t.get_hits,
        t.get_misses,
        t.get_expired,
        t.cmd_set,
        t.cmd_flush,
        t.cmd_touch,
        t.touch_hits,
        t.touch_misses,
        t.delete_hits,
        t.delete_misses,
        t.incr_hits,
        t.incr_misses,
        t.decr_hits,
        t.decr_misses,
        t.cas_hits,
        t.cas_misses,
        t.cas_badval,
        t.evictions,
        t.bytes,
        t.curr_items,
        t.curr_connections,
        t.total_connections,
        t.bytes_read,
        t.bytes_written,
        t.auth_cmds,
        t.auth_errors,
    ]
}

fn field(name: &str) -> usize {
    FIELDS.iter().position(|f| *f == name).expect("known field")
}

/// (bucket width in seconds, points kept): a day of minutes, a week of ten
/// minutes, about three months of hours, five years of days.
pub const TIERS: [(u64, usize); 4] = [(60, 1440), (600, 1008), (3600, 2232), (86400, 1826)];

/// One sample: unix time and the values in `FIELDS` order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub t: u64,
    pub v: Vec<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Tier {
    points: VecDeque<Point>,
    /// The sample the newest point replaced (same bucket). A series with a
    /// single point has no left neighbour for its rates; this is one, so a
    /// new cache shows numbers within its first minute.
    #[serde(default)]
    prev: Option<Point>,
}

/// Every cache's series, plus two smaller families kept the same way:
/// each cache's request latency (cumulative `[requests, nanoseconds]`, for
/// `insight/latency`) and each watched prefix's `PREFIX_FIELDS`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct History {
    caches: BTreeMap<u32, Vec<Tier>>,
    #[serde(default)]
    latency: BTreeMap<u32, Vec<Tier>>,
    #[serde(default)]
    prefixes: BTreeMap<u64, Vec<Tier>>,
}

/// A watched prefix's sample: two gauges from a store scan, then three
/// cumulative counters from the cores.
pub const PREFIX_FIELDS: [&str; 5] = ["num_keys", "total_size", "hits", "misses", "mutations"];

/// The columns of `compound_stats` and of a watched prefix's `stats`.
const COMPOUND_COLUMNS: [&str; 6] = [
    "time",
    "num_keys",
    "total_size",
    "total_hits_rate",
    "total_misses_rate",
    "total_mutations_rate",
];

/// Adds a sample taken at `t` to one series' tiers (see `History::record`).
fn record_into(tiers: &mut Vec<Tier>, t: u64, v: Vec<u64>) {
    if tiers.len() != TIERS.len() {
        *tiers = vec![Tier::default(); TIERS.len()];
    }
    for (tier, (step, cap)) in tiers.iter_mut().zip(TIERS) {
        let bucket = t / step;
        match tier.points.back_mut() {
            Some(last) if last.t / step == bucket => {
                tier.prev = Some(std::mem::replace(last, Point { t, v: v.clone() }));
            }
            // Nothing changed since the last point: no new point.
            Some(last) if last.v == v => {}
            _ => {
                tier.points.push_back(Point { t, v: v.clone() });
                if tier.points.len() > cap {
                    tier.points.pop_front();
                }
            }
        }
    }
}

/// The points of one series in [start, end] at the span's granularity, plus
/// the point just before `start` (rates need a left neighbour).
fn points_of(tiers: Option<&Vec<Tier>>, start: u64, end: u64) -> (u64, Vec<&Point>) {
    let tier = History::tier_for(end.saturating_sub(start));
    let step = TIERS[tier].0;
    let Some(tier) = tiers.and_then(|t| t.get(tier)) else {
        return (step, Vec::new());
    };
    let pts = &tier.points;
    let first = pts.partition_point(|p| p.t < start);
    let from = first.saturating_sub(1);
    let to = pts.partition_point(|p| p.t <= end);
    let mut out: Vec<&Point> = pts.range(from..to).collect();
    if let (1, Some(prev)) = (pts.len(), &tier.prev) {
        // Sub-second sampling can put both in the same second; rates then
        // read the difference as one second's.
        if out.len() == 1 && prev.t <= out[0].t {
            out.insert(0, prev);
        }
    }
    (step, out)
}

/// One row per neighbouring pair `a → b` with `b` in range: `f(a, b)` gives
/// the values after the time column.
fn rows(pts: &[&Point], start: u64, f: impl Fn(&Point, &Point) -> Vec<Value>) -> Vec<Value> {
    pts.windows(2)
        .filter(|pair| pair[1].t >= start)
        .map(|pair| {
            let mut row = vec![json!(iso8601(pair[1].t))];
            row.extend(f(pair[0], pair[1]));
            Value::Array(row)
        })
        .collect()
}

/// Per-second rate of field `i` between `a` and `b` (a counter that went
/// down was reset: its new value is what happened since).
fn rate_of(a: &Point, b: &Point, i: usize) -> f64 {
    let dt = b.t.saturating_sub(a.t).max(1) as f64;
    let (x, y) = (
        a.v.get(i).copied().unwrap_or(0),
        b.v.get(i).copied().unwrap_or(0),
    );
    let d = if y >= x { y - x } else { y };
    d as f64 / dt
}

/// The processed stat names (MemCachier's), all computed here.
pub const PROCESSED: [&str; 36] = [
    "auth_cmds_rate",
    "auth_errors_rate",
    "bytes",
    "bytes_read_rate",
    "bytes_write_rate",
    "cas_badval_rate",
    "cas_fraction",
    "cas_hit_rate",
    "cas_rate",
    "connection_rate",
    "connections",
    "decr_fraction",
    "decr_hit_rate",
    "decr_rate",
    "delete_fraction",
    "delete_hit_rate",
    "delete_rate",
    "eviction_rate",
    "flush_fraction",
    "flush_rate",
    "get_expired_rate",
    "get_fraction",
    "get_hit_rate",
    "get_rate",
    "hit_rate",
    "incr_fraction",
    "incr_hit_rate",
    "incr_rate",
    "items",
    "max_bytes",
    "request_rate",
    "set_fraction",
    "set_rate",
    "touch_fraction",
    "touch_hit_rate",
    "touch_rate",
];

impl History {
    /// Adds a sample of `cache` taken at unix time `t`.
    pub fn record(&mut self, cache: u32, t: u64, v: Vec<u64>) {
        record_into(self.caches.entry(cache).or_default(), t, v);
    }

    /// Adds `cache`'s cumulative request count and service time (ns).
    pub fn record_latency(&mut self, cache: u32, t: u64, requests: u64, ns: u64) {
        record_into(
            self.latency.entry(cache).or_default(),
            t,
            vec![requests, ns],
        );
    }

    /// Adds a sample of watched prefix `id` (`PREFIX_FIELDS` order).
    pub fn record_prefix(&mut self, id: u64, t: u64, v: Vec<u64>) {
        record_into(self.prefixes.entry(id).or_default(), t, v);
    }

    /// Forgets caches that no longer exist.
    pub fn retain(&mut self, keep: impl Fn(u32) -> bool) {
        self.caches.retain(|id, _| keep(*id));
        self.latency.retain(|id, _| keep(*id));
    }

    /// Forgets prefixes that are no longer watched.
    pub fn retain_prefixes(&mut self, keep: impl Fn(u64) -> bool) {
        self.prefixes.retain(|id, _| keep(*id));
    }

    /// `insight/latency`: the mean service time in nanoseconds of the
    /// requests between neighbouring samples, `[{name: "latency", tags:
    /// {server}, columns: [time, duration], values}]`. Intervals without
    /// requests have no row.
    pub fn latency(&self, cache: u32, start: u64, end: u64, server: &str) -> Value {
        let (_, mut pts) = points_of(self.latency.get(&cache), start, end);
        // A series still in its first bucket: the counters started at zero
        // with the series, so its only point's mean covers everything.
        let zero = Point {
            t: 0,
            v: vec![0, 0],
        };
        if self
            .latency
            .get(&cache)
            .is_some_and(|t| t[0].points.len() == 1)
            && pts.last().is_some_and(|p| p.t >= start)
        {
            pts = vec![&zero, pts[pts.len() - 1]];
        }
        let values: Vec<Value> = rows(&pts, start, |a, b| {
            let (n, ns) = if b.v[0] >= a.v[0] && b.v[1] >= a.v[1] {
                (b.v[0] - a.v[0], b.v[1] - a.v[1])
            } else {
                (b.v[0], b.v[1])
            };
            vec![json!(if n == 0 { 0.0 } else { ns as f64 / n as f64 })]
        })
        .into_iter()
        .filter(|row| row[1].as_f64().is_some_and(|d| d > 0.0))
        .collect();
        json!([{
            "name": "latency",
            "tags": { "server": server },
            "columns": ["time", "duration"],
            "values": values,
        }])
    }

    /// `introspection/compound_stats`: the cache's keys and bytes, and the
    /// rates of hits, misses and mutations (the three kinds popular_items
    /// ranks keys by).
    pub fn compound(&self, cache: u32, start: u64, end: u64) -> Value {
        let (_, pts) = points_of(self.caches.get(&cache), start, end);
        let values = rows(&pts, start, |a, b| {
            let sum_rate =
                |names: &[&str]| -> f64 { names.iter().map(|n| rate_of(a, b, field(n))).sum() };
            vec![
                json!(b.v[field("curr_items")]),
                json!(b.v[field("bytes")]),
                json!(sum_rate(&["get_hits"])),
                json!(sum_rate(&[
                    "get_misses",
                    "touch_misses",
                    "delete_misses",
                    "incr_misses",
                    "decr_misses"
                ])),
                json!(sum_rate(&[
                    "cmd_set",
                    "touch_hits",
                    "delete_hits",
                    "incr_hits",
                    "decr_hits"
                ])),
            ]
        });
        json!([{ "name": "compound_stats", "columns": COMPOUND_COLUMNS, "values": values }])
    }

    /// A watched prefix's `stats`: the same columns as `compound`.
    pub fn prefix_stats(&self, id: u64, start: u64, end: u64) -> Value {
        let (_, pts) = points_of(self.prefixes.get(&id), start, end);
        let values = rows(&pts, start, |a, b| {
            vec![
                json!(b.v.first().copied().unwrap_or(0)),
                json!(b.v.get(1).copied().unwrap_or(0)),
                json!(rate_of(a, b, 2)),
                json!(rate_of(a, b, 3)),
                json!(rate_of(a, b, 4)),
            ]
        });
        json!([{ "name": "prefix_stats", "columns": COMPOUND_COLUMNS, "values": values }])
    }

    /// The tier MemCachier uses for a span: ≤ 24 h → 1 min, ≤ 1 week →
    /// 10 min, ≤ ~3 months → 1 h, else 1 day.
    pub fn tier_for(span: u64) -> usize {
        match span {
            s if s <= 86_400 => 0,
            s if s <= 7 * 86_400 => 1,
            s if s <= 92 * 86_400 => 2,
            _ => 3,
        }
    }

    /// The points of `cache` in [start, end] at the span's granularity, plus
    /// the point just before `start` (rates need a left neighbour).
    pub fn points(&self, cache: u32, start: u64, end: u64) -> (u64, Vec<&Point>) {
        points_of(self.caches.get(&cache), start, end)
    }

    /// MemCachier's processed stats for `cache` (InfluxDB-style series):
    /// `[{name, columns: [time, names...], values: [[iso8601, ...], ...]}]`.
    /// Unknown names are an error (the API answers 400).
    pub fn processed(
        &self,
        cache: u32,
        names: &[String],
        start: u64,
        end: u64,
        plan: u64,
    ) -> Result<Value, String> {
        let (_, pts) = self.points(cache, start, end);
        processed_of(&pts, names, start, plan)
    }

    /// Loads `path` (missing: empty history; unreadable: an error, so a bad
    /// file is never silently replaced).
    pub fn load(path: &Path) -> std::io::Result<History> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(History::default()),
            Err(e) => Err(e),
        }
    }

    /// Writes `path` crash-safely and readable by the server's user only
    /// (0600, like the control store: the history names caches and their
    /// traffic): `path.tmp`, fsync, rename, as the store writes its file.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
        else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("not a file path: {}", path.display()),
            ));
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        crate::tenancy::write_private(dir, name, &bytes)
    }
}

/// MemCachier's processed stats over `pts` (one node's series, or the
/// cluster's merged one; see [`History::processed`]).
pub fn processed_of(
    pts: &[&Point],
    names: &[String],
    start: u64,
    plan: u64,
) -> Result<Value, String> {
    if let Some(bad) = names.iter().find(|n| !PROCESSED.contains(&n.as_str())) {
        return Err(format!("unknown stat name {bad}"));
    }
    let rows = rows(pts, start, |a, b| {
        names
            .iter()
            .map(|name| json!(processed_value(name, a, b, plan)))
            .collect()
    });
    let mut columns = vec![json!("time")];
    columns.extend(names.iter().map(|n| json!(n)));
    Ok(json!([{ "name": "processed_stats", "columns": columns, "values": rows }]))
}

/// One processed stat between two neighbouring points `a` → `b`.
fn processed_value(name: &str, a: &Point, b: &Point, plan: u64) -> f64 {
    let dt = b.t.saturating_sub(a.t).max(1) as f64;
    let d = |f: &str| b.v[field(f)].saturating_sub(a.v[field(f)]) as f64;
    let rate = |f: &str| d(f) / dt;
    let ratio = |num: f64, den: f64| if den > 0.0 { num / den } else { 0.0 };
    let gets = d("cmd_get");
    let sets = d("cmd_set");
    let deletes = d("delete_hits") + d("delete_misses");
    let incrs = d("incr_hits") + d("incr_misses");
    let decrs = d("decr_hits") + d("decr_misses");
    let touches = d("cmd_touch");
    let flushes = d("cmd_flush");
    let cas = d("cas_hits") + d("cas_misses") + d("cas_badval");
    let requests = gets + sets + deletes + incrs + decrs + touches + flushes;
    match name {
        "auth_cmds_rate" => rate("auth_cmds"),
        "auth_errors_rate" => rate("auth_errors"),
        "bytes" => b.v[field("bytes")] as f64,
        "bytes_read_rate" => rate("bytes_read"),
        "bytes_write_rate" => rate("bytes_written"),
        "cas_badval_rate" => rate("cas_badval"),
        "cas_fraction" => ratio(cas, requests),
        "cas_hit_rate" => ratio(d("cas_hits"), cas),
        "cas_rate" => cas / dt,
        "connection_rate" => rate("total_connections"),
        "connections" => b.v[field("curr_connections")] as f64,
        "decr_fraction" => ratio(decrs, requests),
        "decr_hit_rate" => ratio(d("decr_hits"), decrs),
        "decr_rate" => decrs / dt,
        "delete_fraction" => ratio(deletes, requests),
        "delete_hit_rate" => ratio(d("delete_hits"), deletes),
        "delete_rate" => deletes / dt,
        "eviction_rate" => rate("evictions"),
        "flush_fraction" => ratio(flushes, requests),
        "flush_rate" => flushes / dt,
        "get_expired_rate" => rate("get_expired"),
        "get_fraction" => ratio(gets, requests),
        "get_hit_rate" | "hit_rate" => ratio(d("get_hits"), d("get_hits") + d("get_misses")),
        "get_rate" => gets / dt,
        "incr_fraction" => ratio(incrs, requests),
        "incr_hit_rate" => ratio(d("incr_hits"), incrs),
        "incr_rate" => incrs / dt,
        "items" => b.v[field("curr_items")] as f64,
        "max_bytes" => plan as f64,
        "request_rate" => requests / dt,
        "set_fraction" => ratio(sets, requests),
        "set_rate" => sets / dt,
        "touch_fraction" => ratio(touches, requests),
        "touch_hit_rate" => ratio(d("touch_hits"), touches),
        "touch_rate" => touches / dt,
        _ => 0.0,
    }
}

/// Unix seconds of `2023-01-08T15:20:00Z` (UTC; a bare integer is taken as
/// unix seconds). None when malformed.
pub fn parse_time(s: &str) -> Option<u64> {
    if let Ok(n) = s.parse::<u64>() {
        return Some(n);
    }
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // days_from_civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// `2026-11-24T16:00:00Z` for unix seconds `t` (UTC).
pub fn iso8601(t: u64) -> String {
    let (year, month, day, h, m, s) = crate::clock::civil(t);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

mod merge;
pub use merge::merge;

#[cfg(test)]
mod tests;
