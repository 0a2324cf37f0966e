//! Per-cache, per-core introspection state behind MemCachier's API v2
//! introspection routes (recent_logs, popular_items, key_stats, watched
//! prefixes). Plain data, no I/O, no clock: the caller passes unix seconds.
//!
//! One [`Introspect`] lives in each shard that has it enabled
//! (`Shard::introspect`); the shard's operations call [`Introspect::record`]
//! once per key operation, the core's maintenance tick calls
//! [`Introspect::tick`], and the admin thread gets an owned copy through
//! [`Introspect::report`] and merges the cores' copies with
//! [`merge_popular`] and [`merge_logs`].
//!
//! Per request ([`Introspect::record`]):
//!
//! * the recent log ([`log`]) gets every request;
//! * watched-prefix counters (hits, misses, mutations) are exact;
//! * 1 in `sample_every` requests, chosen by a geometric skip counter (so
//!   each request is sampled independently with probability
//!   1/`sample_every`, whatever the access pattern, with one random draw
//!   per *sampled* request), feeds the Space-Saving sketches ([`topk`]): the
//!   hit, miss and mutation sketches of keys, the prefix sketch, and each
//!   matching watched prefix's key sketches. Estimates are scaled back by
//!   `sample_every`.
//!
//! Every [`DECAY_SECS`] the sketch counts are halved ([`Introspect::tick`]),
//! so popularity follows recent traffic.
//!
//! Memory: nothing is allocated until the first `record`. The bound, with
//! keys of at most [`MAX_KEY_LEN`] bytes: the log holds [`LOG_LEN`] entries
//! (≤ 100 × (72 + 250) B ≈ 32 KB); each sketch holds at most [`TOP_K`] keys
//! in a 1.6 KiB table (≤ 1.6 KiB + 32 × 250 B ≈ 9.6 KB); there are 4 sketches
//! (hits, misses, mutations, prefixes; ≈ 38 KB) plus 3 per watched prefix
//! (≤ [`MAX_WATCHED`] × 29 KB ≈ 290 KB). So ≈ 70 KB per (cache, core) without
//! watched prefixes and ≈ 360 KB with ten, at worst-case key lengths;
//! typical keys (tens of bytes) need a fraction of that.

pub mod estimate;
mod log;
mod topk;

use std::sync::atomic::{AtomicU64, Ordering};

pub use estimate::Estimate;
use log::Log;
use topk::SpaceSaving;

/// Recent log entries kept per core.
pub const LOG_LEN: usize = 100;
/// Entries tracked per sketch.
pub const TOP_K: usize = 32;
/// Watched prefixes per cache (the control store enforces it too).
pub const MAX_WATCHED: usize = 10;
/// Sketch counts halve this often (seconds).
pub const DECAY_SECS: u32 = 300;
/// Keys longer than this (the memcached limit) are truncated before they
/// are logged or tracked.
pub const MAX_KEY_LEN: usize = 250;
/// A key's prefix for `popular_prefixes` ends at the first of these
/// (memcached's `stats detail` delimiter).
pub const PREFIX_DELIMITER: u8 = b':';

/// The command of a recorded key operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    Get,
    Gat,
    Touch,
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    Cas,
    Delete,
    Incr,
    Decr,
}

impl Cmd {
    pub fn name(self) -> &'static str {
        match self {
            Cmd::Get => "GET",
            Cmd::Gat => "GAT",
            Cmd::Touch => "TOUCH",
            Cmd::Set => "SET",
            Cmd::Add => "ADD",
            Cmd::Replace => "REPLACE",
            Cmd::Append => "APPEND",
            Cmd::Prepend => "PREPEND",
            Cmd::Cas => "CAS",
            Cmd::Delete => "DELETE",
            Cmd::Incr => "INCR",
            Cmd::Decr => "DECR",
        }
    }
}

/// The outcome of a recorded key operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Hit,
    Miss,
    Stored,
    NotStored,
    Exists,
    NotFound,
    Deleted,
    Touched,
    TooLarge,
    NoMemory,
    NonNumeric,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Hit => "HIT",
            Status::Miss => "MISS",
            Status::Stored => "STORED",
            Status::NotStored => "NOT_STORED",
            Status::Exists => "EXISTS",
            Status::NotFound => "NOT_FOUND",
            Status::Deleted => "DELETED",
            Status::Touched => "TOUCHED",
            Status::TooLarge => "TOO_LARGE",
            Status::NoMemory => "NO_MEMORY",
            Status::NonNumeric => "NON_NUMERIC",
        }
    }
}

/// One recent-log line.
#[derive(Clone, Debug, Default)]
pub struct LogEntry {
    /// Unix seconds.
    pub time: u32,
    /// Per-core order (1, 2, …).
    pub seq: u64,
    pub key: Vec<u8>,
    pub cmd: &'static str,
    pub status: &'static str,
    pub size: u32,
}

/// A key or prefix and its estimated request count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Top {
    pub name: Vec<u8>,
    pub popularity: u64,
}

/// The popular keys and prefixes, most popular first.
#[derive(Clone, Debug, Default)]
pub struct Popular {
    /// The span the popularity covers, in ns.
    pub time_slice_ns: u64,
    pub most_hit_keys: Vec<Top>,
    pub most_missed_keys: Vec<Top>,
    pub most_mutated_keys: Vec<Top>,
    pub popular_prefixes: Vec<Top>,
}

/// One watched prefix on one core.
#[derive(Clone, Debug, Default)]
pub struct WatchedReport {
    pub id: u64,
    /// Exact counts since the prefix was first watched on this core.
    pub hits: u64,
    pub misses: u64,
    pub mutations: u64,
    /// Its keys only; `popular_prefixes` is empty.
    pub popular: Popular,
}

/// An owned copy of one core's state for the admin thread.
#[derive(Clone, Debug, Default)]
pub struct CoreReport {
    /// Oldest first.
    pub log: Vec<LogEntry>,
    pub popular: Popular,
    pub watched: Vec<WatchedReport>,
}

/// Which sketch (and watched counter) an operation feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Hit,
    Miss,
    Mutation,
    Other,
}

#[inline]
fn classify(cmd: Cmd, status: Status) -> Class {
    use Cmd::*;
    match (cmd, status) {
        (Get | Gat, Status::Hit) => Class::Hit,
        (Get | Gat | Touch | Delete | Incr | Decr, Status::Miss | Status::NotFound) => Class::Miss,
        (Set | Add | Replace | Append | Prepend | Cas, Status::Stored)
        | (Delete, Status::Deleted)
        | (Incr | Decr, Status::Hit)
        | (Touch, Status::Touched) => Class::Mutation,
        _ => Class::Other,
    }
}

/// The store's key hash (any fixed, process-consistent hash will do).
#[inline]
pub(crate) fn hash(key: &[u8]) -> u64 {
    crate::storage::hash_key(key)
}

/// The key's `popular_prefixes` name: up to the first delimiter.
#[inline]
fn prefix_of(key: &[u8]) -> Option<&[u8]> {
    memchr::memchr(PREFIX_DELIMITER, key).map(|i| &key[..i])
}

/// The hit, miss and mutation sketches of some keys.
#[derive(Default)]
struct KeySketches {
    hits: SpaceSaving,
    misses: SpaceSaving,
    mutations: SpaceSaving,
}

impl KeySketches {
    #[inline]
    fn offer(&mut self, class: Class, key: &[u8], h: u64) {
        match class {
            Class::Hit => self.hits.offer(key, h),
            Class::Miss => self.misses.offer(key, h),
            Class::Mutation => self.mutations.offer(key, h),
            Class::Other => {}
        }
    }

    fn decay(&mut self, shift: u32) {
        self.hits.decay(shift);
        self.misses.decay(shift);
        self.mutations.decay(shift);
    }

    fn heap_bytes(&self) -> usize {
        self.hits.heap_bytes() + self.misses.heap_bytes() + self.mutations.heap_bytes()
    }
}

struct Watched {
    id: u64,
    prefix: Vec<u8>,
    hits: u64,
    misses: u64,
    mutations: u64,
    keys: KeySketches,
}

/// Introspection state of one (cache, core). See the module docs.
pub struct Introspect {
    sample_every: u32,
    /// Requests still to pass over before the next sampled one.
    skip: u32,
    /// `1 / ln(1 − 1/sample_every)` (unused when `sample_every` is 1).
    inv_ln_q: f64,
    rng: u64,
    seq: u64,
    /// Unix time of the first record.
    first: Option<u32>,
    /// Latest unix time seen by `record` or `tick`.
    last: u32,
    next_decay: u32,
    log: Log,
    keys: KeySketches,
    prefixes: SpaceSaving,
    watched: Vec<Watched>,
}

/// splitmix64: seeds each instance's generator differently.
fn seed() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0x853c_49e6_748f_ea9b);
    let mut z = NEXT.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) | 1
}

impl Introspect {
    /// `sample_every` ≥ 1 (0 is taken as 1): one in that many recorded
    /// requests feeds the sketches. Allocates nothing.
    pub fn new(sample_every: u32) -> Introspect {
        let sample_every = sample_every.max(1);
        let inv_ln_q = if sample_every > 1 {
            1.0 / (1.0 - 1.0 / f64::from(sample_every)).ln()
        } else {
            0.0
        };
        let mut i = Introspect {
            sample_every,
            skip: 0,
            inv_ln_q,
            rng: seed(),
            seq: 0,
            first: None,
            last: 0,
            next_decay: 0,
            log: Log::new(),
            keys: KeySketches::default(),
            prefixes: SpaceSaving::new(),
            watched: Vec::new(),
        };
        i.skip = i.draw_skip();
        i
    }

    /// The sampling rate this was created with.
    pub fn sample_every(&self) -> u32 {
        self.sample_every
    }

    /// The cache's watched prefixes (id, prefix bytes), at most
    /// [`MAX_WATCHED`] (later ones are ignored, as are repeated ids). An id
    /// still present with the same prefix keeps its counters and sketches;
    /// others are dropped; new ones (or an id whose prefix changed) start
    /// from zero.
    pub fn set_watched(&mut self, watched: &[(u64, Vec<u8>)]) {
        let mut old = std::mem::take(&mut self.watched);
        for (id, prefix) in watched {
            if self.watched.len() == MAX_WATCHED {
                break;
            }
            if self.watched.iter().any(|w| w.id == *id) {
                continue;
            }
            let kept = old
                .iter()
                .position(|w| w.id == *id && w.prefix == *prefix)
                .map(|i| old.swap_remove(i));
            self.watched.push(kept.unwrap_or_else(|| Watched {
                id: *id,
                prefix: prefix.clone(),
                hits: 0,
                misses: 0,
                mutations: 0,
                keys: KeySketches::default(),
            }));
        }
    }

    /// One key operation at unix time `now`; `size` is the value length
    /// (get hit: the value's; set: the data's; misses and deletes: 0 or the
    /// known size).
    #[inline]
    pub fn record(&mut self, now: u32, cmd: Cmd, status: Status, key: &[u8], size: u32) {
        let key = &key[..key.len().min(MAX_KEY_LEN)];
        if self.first.is_none() {
            self.first = Some(now);
            self.next_decay = now.saturating_add(DECAY_SECS);
        }
        self.last = self.last.max(now);
        self.seq += 1;
        self.log
            .push(now, self.seq, key, cmd.name(), status.name(), size);
        let class = classify(cmd, status);
        let sampled = if self.skip == 0 {
            self.skip = self.draw_skip();
            true
        } else {
            self.skip -= 1;
            false
        };
        if !self.watched.is_empty() {
            self.record_watched(key, class, sampled);
        }
        if sampled {
            let h = hash(key);
            self.keys.offer(class, key, h);
            if let Some(p) = prefix_of(key) {
                self.prefixes.offer(p, hash(p));
            }
        }
    }

    fn record_watched(&mut self, key: &[u8], class: Class, sampled: bool) {
        let mut h = None;
        for w in &mut self.watched {
            if !key.starts_with(&w.prefix) {
                continue;
            }
            match class {
                Class::Hit => w.hits += 1,
                Class::Miss => w.misses += 1,
                Class::Mutation => w.mutations += 1,
                Class::Other => continue,
            }
            if sampled {
                let h = *h.get_or_insert_with(|| hash(key));
                w.keys.offer(class, key, h);
            }
        }
    }

    /// Requests to pass over before the next sample: geometric with
    /// success probability 1/`sample_every`.
    #[inline]
    fn draw_skip(&mut self) -> u32 {
        if self.sample_every == 1 {
            return 0;
        }
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        // Uniform in (0, 1].
        let u = ((r >> 11) as f64 + 1.0) * (1.0 / (1u64 << 53) as f64);
        // ln(u) ≤ 0 and inv_ln_q < 0; `as` saturates.
        (u.ln() * self.inv_ln_q) as u32
    }

    /// Estimated (hits, misses, mutations) of `key` from the sketches,
    /// scaled by `sample_every`; 0 where the key is not tracked.
    pub fn key_counts(&self, key: &[u8]) -> (u64, u64, u64) {
        let [h, m, u] = self.key_estimates(key);
        (h.value, m.value, u.value)
    }

    /// [hits, misses, mutations] of `key`: each estimate with the range
    /// that holds the true (decayed) count at about 95% ([`estimate`]).
    pub fn key_estimates(&self, key: &[u8]) -> [Estimate; 3] {
        let key = &key[..key.len().min(MAX_KEY_LEN)];
        let h = hash(key);
        let est = |s: &SpaceSaving| {
            estimate::estimate(s.get(key, h), s.untracked_max(), self.sample_every)
        };
        [
            est(&self.keys.hits),
            est(&self.keys.misses),
            est(&self.keys.mutations),
        ]
    }

    /// Halves every sketch count (once per [`DECAY_SECS`] passed) when `now`
    /// has reached the next decay point. Call it from the core's
    /// maintenance tick.
    pub fn tick(&mut self, now: u32) {
        if self.first.is_none() {
            return;
        }
        self.last = self.last.max(now);
        if now < self.next_decay {
            return;
        }
        let periods = (now - self.next_decay) / DECAY_SECS + 1;
        self.next_decay = self
            .next_decay
            .saturating_add(periods.saturating_mul(DECAY_SECS));
        let shift = periods.min(u64::BITS);
        self.keys.decay(shift);
        self.prefixes.decay(shift);
        for w in &mut self.watched {
            w.keys.decay(shift);
        }
    }

    /// The span the popularity covers: since the first record, at most
    /// two decay periods.
    fn time_slice_ns(&self) -> u64 {
        let secs = self.first.map_or(0, |f| self.last.saturating_sub(f));
        u64::from(secs.min(2 * DECAY_SECS)) * 1_000_000_000
    }

    fn tops(&self, s: &SpaceSaving) -> Vec<Top> {
        let n = u64::from(self.sample_every);
        let mut v: Vec<Top> = s
            .iter()
            .map(|(k, c, _)| Top {
                name: k.to_vec(),
                popularity: c.saturating_mul(n),
            })
            .collect();
        sort_tops(&mut v);
        v
    }

    fn popular(&self, keys: &KeySketches, prefixes: Option<&SpaceSaving>) -> Popular {
        Popular {
            time_slice_ns: self.time_slice_ns(),
            most_hit_keys: self.tops(&keys.hits),
            most_missed_keys: self.tops(&keys.misses),
            most_mutated_keys: self.tops(&keys.mutations),
            popular_prefixes: prefixes.map(|p| self.tops(p)).unwrap_or_default(),
        }
    }

    /// An owned copy for the admin thread.
    pub fn report(&self) -> CoreReport {
        CoreReport {
            log: self.log.snapshot(),
            popular: self.popular(&self.keys, Some(&self.prefixes)),
            watched: self
                .watched
                .iter()
                .map(|w| WatchedReport {
                    id: w.id,
                    hits: w.hits,
                    misses: w.misses,
                    mutations: w.mutations,
                    popular: self.popular(&w.keys, None),
                })
                .collect(),
        }
    }

    /// Heap bytes held now (see the module docs for the bound).
    pub fn heap_bytes(&self) -> usize {
        self.log.heap_bytes()
            + self.keys.heap_bytes()
            + self.prefixes.heap_bytes()
            + self.watched.capacity() * std::mem::size_of::<Watched>()
            + self
                .watched
                .iter()
                .map(|w| w.prefix.capacity() + w.keys.heap_bytes())
                .sum::<usize>()
    }
}

/// Most popular first, ties by name.
fn sort_tops(v: &mut [Top]) {
    v.sort_unstable_by(|a, b| {
        b.popularity
            .cmp(&a.popularity)
            .then_with(|| a.name.cmp(&b.name))
    });
}

/// Sums entries of the same name and keeps the `top` most popular.
fn merge_tops<'a>(lists: impl Iterator<Item = &'a Vec<Top>>, top: usize) -> Vec<Top> {
    let mut all: Vec<Top> = lists.flatten().cloned().collect();
    all.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    let mut merged: Vec<Top> = Vec::with_capacity(all.len());
    for t in all {
        match merged.last_mut() {
            Some(last) if last.name == t.name => {
                last.popularity = last.popularity.saturating_add(t.popularity)
            }
            _ => merged.push(t),
        }
    }
    sort_tops(&mut merged);
    merged.truncate(top);
    merged
}

/// Merges the cores' popular lists. Keys are owned by one core each, so
/// their lists are in effect concatenated; prefixes appear on several cores
/// and are summed by name (keys of the same name are summed too, which
/// changes nothing while each key has one owner). Each list is sorted by
/// popularity (descending, ties by name) and cut to `top`;
/// `time_slice_ns` is the largest.
pub fn merge_popular(parts: &[&Popular], top: usize) -> Popular {
    Popular {
        time_slice_ns: parts.iter().map(|p| p.time_slice_ns).max().unwrap_or(0),
        most_hit_keys: merge_tops(parts.iter().map(|p| &p.most_hit_keys), top),
        most_missed_keys: merge_tops(parts.iter().map(|p| &p.most_missed_keys), top),
        most_mutated_keys: merge_tops(parts.iter().map(|p| &p.most_mutated_keys), top),
        popular_prefixes: merge_tops(parts.iter().map(|p| &p.popular_prefixes), top),
    }
}

/// The newest `n` entries of all cores, oldest first, ordered by
/// (time, seq).
pub fn merge_logs(reports: &[CoreReport], n: usize) -> Vec<LogEntry> {
    let mut all: Vec<&LogEntry> = reports.iter().flat_map(|r| r.log.iter()).collect();
    all.sort_by_key(|e| (e.time, e.seq));
    let skip = all.len().saturating_sub(n);
    all.into_iter().skip(skip).cloned().collect()
}

#[cfg(test)]
mod tests;
