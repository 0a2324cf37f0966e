//! Execution: the one place each operation's semantics live, shared by every
//! wire protocol (memcached's `process_*` / `do_store_item` split). A `Shard`
//! is one core's slice of the keyspace: its `Store` plus its counters.
//!
//! Nothing here knows about wire formats; `ascii` turns requests into these
//! calls and encodes their outcomes.

pub mod ascii;
pub mod binary;
pub mod config_cmd;
pub mod meta;
mod meta_ops;
pub mod stats_cmd;

use crate::clock;
use crate::introspect::{Cmd, Introspect, Status};
use crate::protocol::StoreMode;
use crate::stats::CoreStats;
use crate::storage::{ItemRef, Store, StoreConfig};
use stats_cmd::DetailOp;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// memcached counts an item's header toward `-I`; we charge a flat 50 bytes so
/// a 1 MiB − 1 KiB value fits and a 1 MiB one does not (getset.t, X-5).
pub const ITEM_HEADER_ALLOWANCE: usize = 50;

/// `verbosity` level, process-wide like memcached's `settings.verbose`.
pub static VERBOSITY: AtomicU8 = AtomicU8::new(0);

/// Settings every shard needs to execute requests.
#[derive(Debug, Clone)]
pub struct ShardSettings {
    pub item_size_max: usize,
    pub disable_cas: bool,
    pub disable_flush_all: bool,
    pub enable_shutdown: bool,
    /// Multi-tenant mode (T-5): an append/prepend whose result would exceed
    /// the item limit answers too-large instead of memcached's NOT_STORED,
    /// so a hosted cache reports its 1 MB rule the same way for every write.
    pub append_too_large_is_error: bool,
}

/// Outcome of a storage command (A-set … A-cas).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    Stored,
    NotStored,
    Exists,
    NotFound,
    TooLarge,
    NoMemory,
}

/// Outcome of incr/decr (A-incr).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOutcome {
    Value(u64),
    NotFound,
    NonNumeric,
    NoMemory,
}

/// One core's data and counters.
pub struct Shard {
    pub store: Store,
    pub stats: Arc<CoreStats>,
    pub settings: Arc<ShardSettings>,
    /// Reused buffer for append/prepend/incr (the old value must be copied
    /// out before the store can be mutated).
    scratch: Vec<u8>,
    /// Request introspection (API v2 recent logs, popular items, watched
    /// prefixes); None (the default) costs one branch per operation. Every
    /// key operation is recorded once, in the method below that executes it.
    pub introspect: Option<Box<Introspect>>,
}

/// Unix seconds of server time `now` (introspection timestamps).
#[inline]
pub fn unix_time(now: u32) -> u32 {
    clock::unix_of(now).clamp(0, i64::from(u32::MAX)) as u32
}

/// The introspection command of a storage mode.
#[inline]
fn store_cmd(mode: StoreMode) -> Cmd {
    match mode {
        StoreMode::Set => Cmd::Set,
        StoreMode::Add => Cmd::Add,
        StoreMode::Replace => Cmd::Replace,
        StoreMode::Append => Cmd::Append,
        StoreMode::Prepend => Cmd::Prepend,
        StoreMode::Cas => Cmd::Cas,
    }
}

/// The introspection status of a storage outcome.
#[inline]
fn store_status(outcome: StoreOutcome) -> Status {
    match outcome {
        StoreOutcome::Stored => Status::Stored,
        StoreOutcome::NotStored => Status::NotStored,
        StoreOutcome::Exists => Status::Exists,
        StoreOutcome::NotFound => Status::NotFound,
        StoreOutcome::TooLarge => Status::TooLarge,
        StoreOutcome::NoMemory => Status::NoMemory,
    }
}

/// Digits of `v` in decimal (the size of an incr/decr result).
#[inline]
fn decimal_len(v: u64) -> usize {
    v.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Out of line so the disabled path is one branch and no code.
#[inline(never)]
fn record_into(i: &mut Introspect, now: u32, cmd: Cmd, status: Status, key: &[u8], size: usize) {
    i.record(
        unix_time(now),
        cmd,
        status,
        key,
        size.min(u32::MAX as usize) as u32,
    );
}

/// Parses a stored value as memcached's `safe_strtoull` does: optional
/// leading whitespace, digits, then end or whitespace.
pub fn parse_counter(v: &[u8]) -> Option<u64> {
    let start = v.iter().position(|b| !b.is_ascii_whitespace())?;
    let digits = &v[start..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 || (end < digits.len() && !digits[end].is_ascii_whitespace()) {
        return None;
    }
    let mut n: u64 = 0;
    for &d in &digits[..end] {
        n = n.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    Some(n)
}

impl Shard {
    pub fn new(cfg: StoreConfig, stats: Arc<CoreStats>, settings: Arc<ShardSettings>) -> Shard {
        Shard {
            store: Store::new(cfg),
            stats,
            settings,
            scratch: Vec::new(),
            introspect: None,
        }
    }

    /// A shard on its own (one core, own counters, no plan budget, open
    /// mode's settings): for tests, property tests and benchmarks that
    /// execute requests without a runtime.
    pub fn standalone(memory_limit: usize, item_size_max: usize, disable_cas: bool) -> Shard {
        let cfg = StoreConfig {
            memory_limit,
            item_size_max,
            shard_id: 0,
            num_shards: 1,
            budget: None,
        };
        let settings = ShardSettings {
            item_size_max,
            disable_cas,
            disable_flush_all: false,
            enable_shutdown: false,
            append_too_large_is_error: false,
        };
        Shard::new(cfg, Arc::new(CoreStats::default()), Arc::new(settings))
    }

    /// Turns request introspection on (1 in `sample_every` requests feeds
    /// the popularity sketches). Already on with the same rate: kept as is;
    /// with another rate: started afresh.
    pub fn enable_introspection(&mut self, sample_every: u32) {
        let sample_every = sample_every.max(1);
        if self
            .introspect
            .as_ref()
            .is_none_or(|i| i.sample_every() != sample_every)
        {
            self.introspect = Some(Box::new(Introspect::new(sample_every)));
        }
    }

    /// Records one key operation for introspection (server time `now`).
    #[inline(always)]
    fn note(&mut self, now: u32, cmd: Cmd, status: Status, key: &[u8], size: usize) {
        if let Some(i) = self.introspect.as_deref_mut() {
            record_into(i, now, cmd, status, key, size);
        }
    }

    fn too_large(&self, key: &[u8], len: usize) -> bool {
        key.len() + len + ITEM_HEADER_ALLOWANCE > self.settings.item_size_max
    }

    /// Publishes the store's gauges after a mutation, so `stats` on any core is current.
    pub fn publish(&self) {
        self.stats.publish_store(&self.store.stats());
    }

    /// A storage command whose data was too large to even buffer: memcached
    /// answers too-large and, for `set`, unlinks the old value so a stale one
    /// cannot be served.
    pub fn store_too_large(&mut self, mode: StoreMode, key: &[u8], now: u32) {
        self.note(now, store_cmd(mode), Status::TooLarge, key, 0);
        self.refuse_too_large(mode, key, now);
    }

    fn refuse_too_large(&mut self, mode: StoreMode, key: &[u8], now: u32) {
        self.stats.cmd_set.incr();
        self.stats.store_too_large.incr();
        if mode == StoreMode::Set {
            self.store.delete(key, now);
            self.publish();
        }
    }

    /// set/add/replace/append/prepend/cas. `cas` != 0 asks for a CAS match in
    /// every mode (binary header CAS, meta `C`), as memcached's
    /// `do_store_item` does; `mode == Cas` with `cas == 0` never matches.
    /// One implementation for every protocol: this delegates to
    /// [`Shard::meta_set`], which is `do_store_item` in full.
    #[allow(clippy::too_many_arguments)]
    pub fn store(
        &mut self,
        mode: StoreMode,
        key: &[u8],
        flags: u32,
        exptime: i64,
        data: &[u8],
        cas: u64,
        now: u32,
    ) -> (StoreOutcome, u64) {
        stats_cmd::record_detail(key, DetailOp::Set);
        if self.too_large(key, data.len()) {
            self.note(now, store_cmd(mode), Status::TooLarge, key, data.len());
            self.refuse_too_large(mode, key, now);
            return (StoreOutcome::TooLarge, 0);
        }
        let req = meta_ops::MetaSet {
            key,
            data,
            mode,
            flags,
            exptime: clock::realtime(exptime, now),
            compare_cas: (cas != 0 || mode == StoreMode::Cas).then_some(cas),
            new_cas: None,
            invalidate: false,
            vivify_exptime: None,
        };
        let r = self.meta_set(&req, now);
        (r.outcome, r.cas)
    }
    /// get/gets (touch = None) and gat/gats (touch = Some(raw exptime)):
    /// hands a hit to `f` (which encodes it) and counts memcached's get/touch
    /// stats. gat answers with the item and then applies the new exptime, so
    /// an already-past exptime still returns the value once (expirations.t).
    pub fn get_with<R>(
        &mut self,
        key: &[u8],
        touch: Option<i64>,
        now: u32,
        f: impl FnOnce(&ItemRef<'_>) -> R,
    ) -> Option<R> {
        let cmd = if touch.is_some() { Cmd::Gat } else { Cmd::Get };
        self.get_as(key, touch, cmd, now, f)
    }

    /// [`Shard::get_with`], recorded for introspection as `cmd`: Get/Gat
    /// (hit or miss), or Touch (touched or not found) for binary Touch,
    /// which memcached executes as a gat.
    pub(crate) fn get_as<R>(
        &mut self,
        key: &[u8],
        touch: Option<i64>,
        cmd: Cmd,
        now: u32,
        f: impl FnOnce(&ItemRef<'_>) -> R,
    ) -> Option<R> {
        if stats_cmd::DETAIL_ENABLED.load(Ordering::Relaxed) {
            let hit = self.store.peek(key, now).is_some();
            stats_cmd::record_detail(key, DetailOp::Get { hit });
        }
        let mut size = 0;
        let r = self.store.get(key, now).map(|it| {
            size = it.value.len();
            f(&it)
        });
        let status = match (r.is_some(), cmd) {
            (true, Cmd::Touch) => Status::Touched,
            (true, _) => Status::Hit,
            (false, Cmd::Touch) => Status::NotFound,
            (false, _) => Status::Miss,
        };
        self.note(now, cmd, status, key, size);
        match touch {
            None => {
                self.stats.cmd_get.incr();
                if r.is_some() {
                    self.stats.get_hits.incr();
                } else {
                    self.stats.get_misses.incr();
                }
            }
            Some(exptime) => {
                self.stats.cmd_touch.incr();
                if r.is_some() {
                    self.stats.touch_hits.incr();
                    self.store.touch(key, clock::realtime(exptime, now), now);
                } else {
                    self.stats.touch_misses.incr();
                }
            }
        }
        r
    }

    /// delete (A-delete).
    pub fn delete(&mut self, key: &[u8], now: u32) -> bool {
        stats_cmd::record_detail(key, DetailOp::Delete);
        let hit = self.store.delete(key, now);
        let status = if hit {
            Status::Deleted
        } else {
            Status::NotFound
        };
        self.note(now, Cmd::Delete, status, key, 0);
        if hit {
            self.stats.delete_hits.incr();
            self.publish();
        } else {
            self.stats.delete_misses.incr();
        }
        hit
    }

    /// touch (A-touch).
    pub fn touch(&mut self, key: &[u8], exptime: i64, now: u32) -> bool {
        self.stats.cmd_touch.incr();
        let hit = self.store.touch(key, clock::realtime(exptime, now), now);
        let status = if hit {
            Status::Touched
        } else {
            Status::NotFound
        };
        self.note(now, Cmd::Touch, status, key, 0);
        if hit {
            self.stats.touch_hits.incr();
        } else {
            self.stats.touch_misses.incr();
        }
        hit
    }

    /// incr/decr (A-incr): incr wraps at 2^64, decr floors at 0; the item
    /// keeps its flags and exptime and gets a new CAS.
    pub fn arith(&mut self, key: &[u8], incr: bool, delta: u64, now: u32) -> ArithOutcome {
        let r = self.arith_inner(key, incr, delta, now);
        let (status, size) = match r {
            ArithOutcome::Value(v) => (Status::Hit, decimal_len(v)),
            ArithOutcome::NotFound => (Status::NotFound, 0),
            ArithOutcome::NonNumeric => (Status::NonNumeric, 0),
            ArithOutcome::NoMemory => (Status::NoMemory, 0),
        };
        let cmd = if incr { Cmd::Incr } else { Cmd::Decr };
        self.note(now, cmd, status, key, size);
        r
    }

    fn arith_inner(&mut self, key: &[u8], incr: bool, delta: u64, now: u32) -> ArithOutcome {
        let (hits, misses) = if incr {
            (&self.stats.incr_hits, &self.stats.incr_misses)
        } else {
            (&self.stats.decr_hits, &self.stats.decr_misses)
        };
        let Some(it) = self.store.peek(key, now) else {
            misses.incr();
            return ArithOutcome::NotFound;
        };
        let Some(value) = parse_counter(it.value) else {
            return ArithOutcome::NonNumeric;
        };
        let (flags, exptime) = (it.flags, it.exptime);
        hits.incr();
        let new = if incr {
            value.wrapping_add(delta)
        } else {
            value.saturating_sub(delta)
        };
        let mut buf = itoa::Buffer::new();
        let digits = buf.format(new).as_bytes();
        match self.store.set(key, &[digits], flags, exptime, now) {
            Ok(_) => {
                self.publish();
                ArithOutcome::Value(new)
            }
            Err(_) => ArithOutcome::NoMemory,
        }
    }

    /// flush_all: at <= now flushes at once, later schedules.
    pub fn flush(&mut self, at: u32, now: u32) {
        self.store.flush(at, now);
        self.publish();
    }

    /// Background reclaim of expired items (bounded work).
    pub fn maintain(&mut self, now: u32) {
        if self.store.maintain(now, 1000) > 0 {
            self.publish();
        }
    }
}

/// `flush_all [delay]`: the absolute server time the flush takes effect.
pub fn flush_time(delay: i64, now: u32) -> u32 {
    if delay <= 0 {
        now
    } else {
        clock::realtime(delay, now).saturating_sub(1).max(1)
    }
}

/// Current verbosity level.
pub fn verbosity() -> u8 {
    VERBOSITY.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests;
