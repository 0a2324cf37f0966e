//! Meta-protocol variants of the neutral operations (protocol.md §1.6):
//! lookups that report the pre-access state, vivify-on-miss, the stale/win
//! flags, CAS-compare and caller-chosen CAS (`E`), mirroring memcached's
//! `do_store_item` / `do_add_delta` and the meta `process_m*_command`
//! functions. Like `super`, nothing here knows about wire formats:
//! `super::meta` encodes.
//!
//! Stats are counted as memcached 1.6.18 counts them for meta commands:
//! mg hits/misses as `cmd_get`/`get_hits`/`get_misses` (or
//! `cmd_touch`/`touch_hits` when `T` was given), a vivified mg as a hit; ms
//! as `cmd_set` plus `cas_*` in CAS mode; md as `delete_hits`/`delete_misses`
//! (a CAS mismatch is a miss; an `I` invalidation counts neither); ma as
//! `incr_*`/`decr_*` (vivify and CAS mismatch count nothing).

use super::{decimal_len, parse_counter, store_cmd, store_status, Shard, StoreOutcome};
use crate::introspect::{Cmd, Status};
use crate::protocol::StoreMode;
use crate::storage::{ItemRef, StoreError};

/// The item an mg reply is built from.
pub struct MgItem<'a> {
    pub item: ItemRef<'a>,
    /// Created by this request (`N` on a miss): a 0-byte stub.
    pub created: bool,
}

/// Which counters an mg bumps.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum MgCount {
    /// Nothing (the reply turned into an error).
    #[default]
    None,
    /// `cmd_get`, `get_hits`.
    Hit,
    /// `cmd_touch`, `touch_hits` (a hit with `T`).
    TouchHit,
    /// `cmd_get`, `get_misses`.
    Miss,
}

/// What an mg asks to change once its reply is built.
#[derive(Debug, Default, Clone, Copy)]
pub struct MgEffects {
    /// New exptime (server clock, 0 = never) to store.
    pub exptime: Option<u32>,
    /// Mark the item's win token as sent (the client got `W`).
    pub win: bool,
    pub count: MgCount,
}

/// An ms request (M-ms).
#[derive(Debug, Clone, Copy)]
pub struct MetaSet<'a> {
    pub key: &'a [u8],
    pub data: &'a [u8],
    /// Set, Add, Replace, Append or Prepend (never Cas: `compare_cas` turns
    /// set/replace into a CAS store, as memcached does).
    pub mode: StoreMode,
    pub flags: u32,
    /// Server-clock exptime (0 = never).
    pub exptime: u32,
    /// `C`: compare CAS.
    pub compare_cas: Option<u64>,
    /// `E`: CAS for the stored item.
    pub new_cas: Option<u64>,
    /// `I`: with a CAS store, a CAS lower than the item's stores the value
    /// marked stale (keeping the old TTL and win flag).
    pub invalidate: bool,
    /// `N` with append/prepend: a missing item is created with the data and
    /// this exptime.
    pub vivify_exptime: Option<u32>,
}

/// Result of [`Shard::meta_set`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaSetResult {
    pub outcome: StoreOutcome,
    /// The stored item's CAS; 0 unless stored.
    pub cas: u64,
    /// The item's value length after the command (append/prepend grow it);
    /// the request's data length when nothing was stored.
    pub size: usize,
}

/// An md request (M-md).
#[derive(Debug, Clone, Copy, Default)]
pub struct MetaDelete {
    /// `C`: delete only if the CAS matches.
    pub compare_cas: Option<u64>,
    /// `I`: mark stale, give a new CAS, clear the win flag instead of deleting.
    pub invalidate: bool,
    /// `T` (server clock): with `I`, the new exptime; with `x`, the tombstone's.
    pub ttl: Option<u32>,
    /// `x`: replace the value with an empty one (flags `client_flags`).
    pub remove_value: bool,
    pub client_flags: u32,
    /// `E`: CAS for the changed item.
    pub new_cas: Option<u64>,
}

/// Outcome of [`Shard::meta_delete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaDeleteOutcome {
    /// Deleted, invalidated or emptied: `HD`.
    Done,
    /// `NF`.
    NotFound,
    /// CAS mismatch: `EX`.
    Exists,
    /// The item could not be rewritten: `SERVER_ERROR out of memory`.
    NoMemory,
}

/// An ma request (M-ma).
#[derive(Debug, Clone, Copy)]
pub struct MetaArith {
    pub incr: bool,
    pub delta: u64,
    /// `C`: a non-zero value must match the item's CAS.
    pub compare_cas: Option<u64>,
    /// `E`: CAS for the changed item.
    pub new_cas: Option<u64>,
    /// `N`: create a missing item holding `initial`.
    pub vivify: bool,
    pub initial: u64,
}

/// Outcome of [`Shard::meta_arith`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaArithOutcome {
    Value {
        value: u64,
        cas: u64,
        /// The exptime the reply's `T`/`N`/`t` walk starts from: the old
        /// item's, or 0 for a created one (memcached allocates it immortal and
        /// applies `N` while building the reply).
        base_exptime: u32,
        created: bool,
    },
    NotFound,
    Exists,
    NonNumeric,
    /// `SERVER_ERROR out of memory`.
    NoMemory,
    /// Vivify failed: `SERVER_ERROR Out of memory allocating new item`.
    VivifyNoMemory,
}

/// The introspection command of an mg: Gat when it touched the item.
#[inline]
fn mg_cmd(eff: &MgEffects) -> Cmd {
    if eff.count == MgCount::TouchHit {
        Cmd::Gat
    } else {
        Cmd::Get
    }
}

/// memcached's `cas_result` for an existing item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CasResult {
    None,
    Match,
    Stale,
    BadVal,
}

impl Shard {
    /// mg (M-mg): looks `key` up — recording the access unless `bump` is
    /// false (`u`) — or, on a miss with `vivify = Some((exptime, cas))`,
    /// creates a 0-byte item. `f` builds the reply from the item (or `None`
    /// on a miss) and returns what to change; the item it sees reports the
    /// fetched flag and last access from *before* this request.
    pub fn meta_get<F>(
        &mut self,
        key: &[u8],
        bump: bool,
        vivify: Option<(u32, Option<u64>)>,
        now: u32,
        f: F,
    ) where
        F: FnOnce(Option<MgItem<'_>>) -> MgEffects,
    {
        let found = if bump {
            self.store.get(key, now)
        } else {
            self.store.peek(key, now)
        };
        if let Some(item) = found {
            let size = item.value.len();
            let eff = f(Some(MgItem {
                item,
                created: false,
            }));
            self.note(now, mg_cmd(&eff), Status::Hit, key, size);
            self.mg_apply(key, eff, now);
            return;
        }
        if let Some((exptime, cas)) = vivify {
            let cas = cas.unwrap_or_else(|| self.store.next_cas());
            // An already-past TTL (`N-1`) still answers with the new item, as
            // memcached (which links it immortal and sets the TTL after);
            // `f`'s effects then expire it.
            let exptime = if exptime != 0 && exptime <= now {
                0
            } else {
                exptime
            };
            if self
                .store
                .set_with_cas(key, &[], 0, exptime, cas, now)
                .is_ok()
            {
                self.publish();
                if let Some(item) = self.store.peek(key, now) {
                    let eff = f(Some(MgItem {
                        item,
                        created: true,
                    }));
                    if bump {
                        // memcached's delayed bump marks the new item fetched.
                        self.store.get(key, now);
                    }
                    // The client missed (and won the recache).
                    self.note(now, mg_cmd(&eff), Status::Miss, key, 0);
                    self.mg_apply(key, eff, now);
                    return;
                }
            }
        }
        let eff = f(None);
        self.note(now, mg_cmd(&eff), Status::Miss, key, 0);
        self.mg_apply(key, eff, now);
    }

    fn mg_apply(&mut self, key: &[u8], eff: MgEffects, now: u32) {
        if let Some(exptime) = eff.exptime {
            self.store.touch(key, exptime, now);
        }
        if eff.win {
            self.store.set_win(key, true, now);
        }
        match eff.count {
            MgCount::None => {}
            MgCount::Hit => {
                self.stats.cmd_get.incr();
                self.stats.get_hits.incr();
            }
            MgCount::TouchHit => {
                self.stats.cmd_touch.incr();
                self.stats.touch_hits.incr();
            }
            MgCount::Miss => {
                self.stats.cmd_get.incr();
                self.stats.get_misses.incr();
            }
        }
    }

    /// me (M-me): the item without recording an access.
    pub fn meta_peek(&mut self, key: &[u8], now: u32) -> Option<ItemRef<'_>> {
        self.store.peek(key, now)
    }

    /// ms whose declared length is over the item size limit (the parser
    /// swallowed the data): memcached counts `store_too_large` and unlinks the
    /// key whatever the mode, so a stale value cannot be served.
    pub fn meta_set_too_large(&mut self, key: &[u8], now: u32) {
        self.note(now, Cmd::Set, Status::TooLarge, key, 0);
        self.unlink_too_large(key, now);
    }

    fn unlink_too_large(&mut self, key: &[u8], now: u32) {
        self.stats.store_too_large.incr();
        if self.store.delete(key, now) {
            self.publish();
        }
    }

    /// memcached's `do_store_item` in full: ms (M-ms) calls it directly and
    /// [`Shard::store`] (ASCII and binary stores) delegates to it, so the
    /// CAS/add/append rules live in one place.
    pub fn meta_set(&mut self, s: &MetaSet<'_>, now: u32) -> MetaSetResult {
        let r = self.meta_set_inner(s, now);
        // A compare-CAS set/replace is a CAS store.
        let cmd =
            if s.compare_cas.is_some() && matches!(s.mode, StoreMode::Set | StoreMode::Replace) {
                Cmd::Cas
            } else {
                store_cmd(s.mode)
            };
        self.note(now, cmd, store_status(r.outcome), s.key, r.size);
        r
    }

    fn meta_set_inner(&mut self, s: &MetaSet<'_>, now: u32) -> MetaSetResult {
        let none = |outcome| MetaSetResult {
            outcome,
            cas: 0,
            size: s.data.len(),
        };
        if self.too_large(s.key, s.data.len()) {
            // item_alloc failed before the data was read.
            self.unlink_too_large(s.key, now);
            return none(StoreOutcome::TooLarge);
        }
        self.stats.cmd_set.incr();
        let mut mode = s.mode;
        if s.compare_cas.is_some() && matches!(mode, StoreMode::Set | StoreMode::Replace) {
            mode = StoreMode::Cas;
        }
        let vivify_append =
            s.vivify_exptime.is_some() && matches!(mode, StoreMode::Append | StoreMode::Prepend);
        let exptime = if vivify_append {
            s.vivify_exptime.unwrap_or(0)
        } else {
            s.exptime
        };
        // The request's CAS, 0 = none (`C0` compares as "no CAS" here).
        let it_cas = s.compare_cas.unwrap_or(0);
        let old = self
            .store
            .peek(s.key, now)
            .map(|it| (it.cas, it.flags, it.exptime, it.win));
        let Some((old_cas, old_flags, old_exptime, old_win)) = old else {
            return match mode {
                StoreMode::Set | StoreMode::Add => {
                    self.meta_put(s.key, &[s.data], s.flags, exptime, s.new_cas, true, now)
                }
                StoreMode::Append | StoreMode::Prepend if vivify_append => {
                    self.meta_put(s.key, &[s.data], s.flags, exptime, s.new_cas, true, now)
                }
                StoreMode::Cas => {
                    self.stats.cas_misses.incr();
                    none(StoreOutcome::NotFound)
                }
                _ => none(StoreOutcome::NotStored),
            };
        };
        let cas_res = if it_cas == 0 {
            CasResult::None
        } else if it_cas == old_cas {
            CasResult::Match
        } else if s.invalidate && mode == StoreMode::Cas && it_cas < old_cas {
            CasResult::Stale
        } else {
            CasResult::BadVal
        };
        match mode {
            StoreMode::Add => {
                // add on an existing key only refreshes its recency.
                self.store.get(s.key, now);
                none(StoreOutcome::NotStored)
            }
            StoreMode::Cas => match cas_res {
                CasResult::Match => {
                    self.stats.cas_hits.incr();
                    self.meta_put(s.key, &[s.data], s.flags, exptime, s.new_cas, true, now)
                }
                CasResult::Stale => {
                    // Replace the value but keep the TTL, mark it stale and
                    // keep a sent win token.
                    self.stats.cas_hits.incr();
                    let r =
                        self.meta_put(s.key, &[s.data], s.flags, old_exptime, s.new_cas, true, now);
                    if r.outcome == StoreOutcome::Stored {
                        self.store.set_stale(s.key, true, now);
                        if old_win {
                            self.store.set_win(s.key, true, now);
                        }
                    }
                    r
                }
                CasResult::None | CasResult::BadVal => {
                    self.stats.cas_badval.incr();
                    none(StoreOutcome::Exists)
                }
            },
            StoreMode::Append | StoreMode::Prepend => {
                if !matches!(cas_res, CasResult::None | CasResult::Match) {
                    return none(StoreOutcome::Exists);
                }
                let mut buf = std::mem::take(&mut self.scratch);
                buf.clear();
                if let Some(it) = self.store.peek(s.key, now) {
                    buf.extend_from_slice(it.value);
                }
                let r = if self.too_large(s.key, buf.len() + s.data.len()) {
                    if self.settings.append_too_large_is_error {
                        self.stats.store_too_large.incr();
                        none(StoreOutcome::TooLarge)
                    } else {
                        none(StoreOutcome::NotStored)
                    }
                } else {
                    let parts: [&[u8]; 2] = if mode == StoreMode::Append {
                        [&buf, s.data]
                    } else {
                        [s.data, &buf]
                    };
                    let r =
                        self.meta_put(s.key, &parts, old_flags, old_exptime, s.new_cas, false, now);
                    if r.outcome == StoreOutcome::Stored {
                        r
                    } else {
                        // Allocation of the combined item failed: NOT_STORED.
                        none(StoreOutcome::NotStored)
                    }
                };
                self.scratch = buf;
                r
            }
            StoreMode::Set | StoreMode::Replace => {
                self.meta_put(s.key, &[s.data], s.flags, exptime, s.new_cas, true, now)
            }
        }
    }

    /// Writes an item (with the `E` CAS when given). A failed write of a new
    /// value unlinks the old one when `unlink_on_fail` (memcached's ms does
    /// when `item_alloc` fails).
    #[allow(clippy::too_many_arguments)]
    fn meta_put(
        &mut self,
        key: &[u8],
        parts: &[&[u8]],
        flags: u32,
        exptime: u32,
        new_cas: Option<u64>,
        unlink_on_fail: bool,
        now: u32,
    ) -> MetaSetResult {
        let size = parts.iter().map(|p| p.len()).sum();
        let cas = new_cas.unwrap_or_else(|| self.store.next_cas());
        match self
            .store
            .set_with_cas(key, parts, flags, exptime, cas, now)
        {
            Ok(()) => {
                self.publish();
                MetaSetResult {
                    outcome: StoreOutcome::Stored,
                    cas,
                    size,
                }
            }
            Err(e) => {
                let outcome = match e {
                    StoreError::TooLarge => {
                        self.stats.store_too_large.incr();
                        StoreOutcome::TooLarge
                    }
                    StoreError::NoMemory => {
                        self.stats.store_no_memory.incr();
                        StoreOutcome::NoMemory
                    }
                };
                if unlink_on_fail && self.store.delete(key, now) {
                    self.publish();
                }
                MetaSetResult {
                    outcome,
                    cas: 0,
                    size,
                }
            }
        }
    }

    /// md (M-md): memcached's `process_mdelete_command` (plus `x`/`E` from
    /// memcached 1.6.4x).
    pub fn meta_delete(&mut self, key: &[u8], d: &MetaDelete, now: u32) -> MetaDeleteOutcome {
        let r = self.meta_delete_inner(key, d, now);
        let status = match r {
            MetaDeleteOutcome::Done => Status::Deleted,
            MetaDeleteOutcome::NotFound => Status::NotFound,
            MetaDeleteOutcome::Exists => Status::Exists,
            MetaDeleteOutcome::NoMemory => Status::NoMemory,
        };
        self.note(now, Cmd::Delete, status, key, 0);
        r
    }

    fn meta_delete_inner(&mut self, key: &[u8], d: &MetaDelete, now: u32) -> MetaDeleteOutcome {
        let Some(old_cas) = self.store.peek(key, now).map(|it| it.cas) else {
            self.stats.delete_misses.incr();
            return MetaDeleteOutcome::NotFound;
        };
        if d.compare_cas.is_some_and(|c| c != old_cas) {
            self.stats.delete_misses.incr();
            return MetaDeleteOutcome::Exists;
        }
        if d.remove_value {
            // A tombstone: empty value, the request's flags and TTL, the old
            // CAS unless `E`.
            let cas = d.new_cas.unwrap_or(old_cas);
            if self
                .store
                .set_with_cas(key, &[], d.client_flags, d.ttl.unwrap_or(0), cas, now)
                .is_err()
            {
                return MetaDeleteOutcome::NoMemory;
            }
        }
        if d.invalidate {
            // Mark stale, clear the win token, new CAS, maybe new TTL. The
            // store has no in-place CAS update, so the item is rewritten (its
            // fetched flag is carried over).
            let mut buf = std::mem::take(&mut self.scratch);
            buf.clear();
            let Some((flags, exptime, fetched)) = self.store.peek(key, now).map(|it| {
                buf.extend_from_slice(it.value);
                (it.flags, it.exptime, it.fetched)
            }) else {
                self.scratch = buf;
                return MetaDeleteOutcome::NotFound;
            };
            let cas = d.new_cas.unwrap_or_else(|| self.store.next_cas());
            let exptime = d.ttl.unwrap_or(exptime);
            let ok = self
                .store
                .set_with_cas(key, &[&buf], flags, exptime, cas, now)
                .is_ok();
            self.scratch = buf;
            if !ok {
                return MetaDeleteOutcome::NoMemory;
            }
            self.store.set_stale(key, true, now);
            if fetched {
                self.store.get(key, now);
            }
        } else {
            self.stats.delete_hits.incr();
            if !d.remove_value {
                self.store.delete(key, now);
            }
        }
        self.publish();
        MetaDeleteOutcome::Done
    }

    /// ma (M-ma): memcached's `process_marithmetic_command` + `do_add_delta`.
    /// `final_exptime(base, created)` gives the exptime to store once the
    /// reply's `T`/`N` flags are applied. The stored number is not
    /// space-padded (as shoal's incr/decr).
    pub fn meta_arith(
        &mut self,
        key: &[u8],
        a: &MetaArith,
        now: u32,
        final_exptime: impl FnOnce(u32, bool) -> u32,
    ) -> MetaArithOutcome {
        let r = self.meta_arith_inner(key, a, now, final_exptime);
        let (status, size) = match r {
            // A vivified counter: the client missed.
            MetaArithOutcome::Value {
                value,
                created: true,
                ..
            } => (Status::Miss, decimal_len(value)),
            MetaArithOutcome::Value { value, .. } => (Status::Hit, decimal_len(value)),
            MetaArithOutcome::NotFound => (Status::NotFound, 0),
            MetaArithOutcome::Exists => (Status::Exists, 0),
            MetaArithOutcome::NonNumeric => (Status::NonNumeric, 0),
            MetaArithOutcome::NoMemory | MetaArithOutcome::VivifyNoMemory => (Status::NoMemory, 0),
        };
        let cmd = if a.incr { Cmd::Incr } else { Cmd::Decr };
        self.note(now, cmd, status, key, size);
        r
    }

    fn meta_arith_inner(
        &mut self,
        key: &[u8],
        a: &MetaArith,
        now: u32,
        final_exptime: impl FnOnce(u32, bool) -> u32,
    ) -> MetaArithOutcome {
        let Some((value, flags, exptime, cas)) = self.store.peek(key, now).map(|it| {
            let v = if it.value.is_empty() {
                None
            } else {
                Some(parse_counter(it.value))
            };
            (v, it.flags, it.exptime, it.cas)
        }) else {
            if a.vivify {
                let mut buf = itoa::Buffer::new();
                let digits = buf.format(a.initial).as_bytes();
                let new_cas = a.new_cas.unwrap_or_else(|| self.store.next_cas());
                let exptime = final_exptime(0, true);
                return match self
                    .store
                    .set_with_cas(key, &[digits], 0, exptime, new_cas, now)
                {
                    Ok(()) => {
                        self.publish();
                        MetaArithOutcome::Value {
                            value: a.initial,
                            cas: new_cas,
                            base_exptime: 0,
                            created: true,
                        }
                    }
                    Err(_) => MetaArithOutcome::VivifyNoMemory,
                };
            }
            if a.incr {
                self.stats.incr_misses.incr();
            } else {
                self.stats.decr_misses.incr();
            }
            return MetaArithOutcome::NotFound;
        };
        // Zero-byte values are non-numeric before the CAS check.
        let Some(parsed) = value else {
            return MetaArithOutcome::NonNumeric;
        };
        if a.compare_cas.is_some_and(|c| c != 0 && c != cas) {
            return MetaArithOutcome::Exists;
        }
        let Some(old) = parsed else {
            return MetaArithOutcome::NonNumeric;
        };
        if a.incr {
            self.stats.incr_hits.incr();
        } else {
            self.stats.decr_hits.incr();
        }
        let new = if a.incr {
            old.wrapping_add(a.delta)
        } else {
            old.saturating_sub(a.delta)
        };
        let mut buf = itoa::Buffer::new();
        let digits = buf.format(new).as_bytes();
        let new_cas = a.new_cas.unwrap_or_else(|| self.store.next_cas());
        let stored_exptime = final_exptime(exptime, false);
        match self
            .store
            .set_with_cas(key, &[digits], flags, stored_exptime, new_cas, now)
        {
            Ok(()) => {
                self.publish();
                MetaArithOutcome::Value {
                    value: new,
                    cas: new_cas,
                    base_exptime: exptime,
                    created: false,
                }
            }
            Err(_) => MetaArithOutcome::NoMemory,
        }
    }
}
