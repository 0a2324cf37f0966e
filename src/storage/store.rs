//! [`Store`]: the public operations. Eviction lives in `evict.rs`, expiry and flush in
//! `expiry.rs`; this file holds the lookup/write paths they share.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use foldhash::fast::FixedState;

use super::cas::CasSeq;
use super::compact::Compaction;
use super::index::{Index, SlotRef};
use super::item::{
    self, CasField, Header, View, ACCESS_OFF, DEAD, EXPTIME_OFF, FETCHED, HAS_EXP,
    ITEM_SIZE_ALLOWANCE, MAX_KEY_LEN, META_BITS, STALE, WIN,
};
use super::segment::{Segment, Segments, DEFAULT_SEGMENT, UNSET};
use super::{Budget, ItemRef, StoreConfig, StoreError, StoreStats};

/// memcached's largest `-I`.
const MAX_ITEM_SIZE_MAX: usize = 1 << 30;

/// Fixed seed: the store's hash only has to be consistent within the process (the router
/// hashes keys to shards with its own seeded hash).
const HASHER: FixedState = FixedState::with_seed(0x5e9c_ac4e_0b5e_55ed);

#[inline]
pub(crate) fn hash_key(key: &[u8]) -> u64 {
    let mut h = HASHER.build_hasher();
    h.write(key);
    h.finish()
}

#[inline]
pub(super) fn is_expired(exptime: u32, now: u32) -> bool {
    exptime != 0 && exptime <= now
}

/// Where an item's CAS comes from.
#[derive(Debug, Clone, Copy)]
pub(super) enum CasSpec {
    /// A value of this shard's counter (stored as a small delta).
    Counter(u64),
    /// A caller-supplied CAS outside the shard's sequence (stored verbatim).
    Abs(u64),
}

#[derive(Debug, Default, Clone)]
pub(super) struct Counters {
    pub total_items: u64,
    pub evictions: u64,
    pub evicted_unfetched: u64,
    pub expired_unfetched: u64,
    pub reclaimed: u64,
    pub get_expired: u64,
    pub get_flushed: u64,
}

/// Totals over live items.
#[derive(Debug, Default, Clone)]
pub(super) struct Live {
    pub items: u64,
    /// Header + key + value.
    pub bytes: u64,
    /// Key + value only (for the overhead figure).
    pub kv_bytes: u64,
}

/// Position of the incremental expiry walk (`maintain`).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Cursor {
    pub id: u32,
    pub version: u32,
    pub off: u32,
}

/// One shard's cache: items, index, eviction, expiry. See the module docs for the design.
pub struct Store {
    /// The memory bound; with a budget, this store's lease (taken from, and returned to, it).
    pub(super) limit: usize,
    /// The cache's shared plan (`budget.rs`); None: `limit` is fixed by the configuration.
    pub(super) budget: Option<Arc<Budget>>,
    /// Budgeted: the last lease asked for came up short, so the store is full and evicts
    /// (re-checked by `maintain`). Until then it grows rather than starting paced evictions.
    pub(super) pool_dry: bool,
    /// Capacity of the segments the store allocates: the full segment size, or for a budgeted
    /// store a size scaled to the plan (`budget.rs`).
    pub(super) seg_cap: usize,
    pub(super) num_shards: usize,
    /// Generation of the last plan lowering this store has shrunk for (`Budget::set_plan`).
    pub(super) shrink_gen: u32,
    pub(super) item_size_max: usize,
    pub(super) index: Index,
    pub(super) segs: Segments,
    pub(super) cas: CasSeq,
    pub(super) counters: Counters,
    pub(super) live: Live,
    pub(super) pending_flush: Option<u32>,
    pub(super) cursor: Cursor,
    /// Latest `now` seen (for calls that take no clock, e.g. `set_memory_limit`).
    pub(super) now: u32,
    /// Share of a compacted segment survivors may keep (`evict::KEEP_PCT`; tests vary it).
    pub(super) keep_pct: usize,
    /// The compaction being paced over stores (`compact.rs`), if any.
    pub(super) compaction: Option<Box<Compaction>>,
}

impl Store {
    /// Creates an empty store. Allocates nothing until the first item is stored.
    pub fn new(cfg: StoreConfig) -> Self {
        let item_size_max = cfg.item_size_max.min(MAX_ITEM_SIZE_MAX);
        let seg_size = DEFAULT_SEGMENT.max(item_size_max.next_power_of_two());
        // A budgeted store starts with no lease: an idle cache costs nothing of its plan.
        let limit = if cfg.budget.is_some() {
            0
        } else {
            cfg.memory_limit
        };
        // Lowerings of the plan before this store existed are not its business.
        let shrink_gen = cfg.budget.as_ref().map_or(0, |b| b.shrink().0);
        let budgeted = cfg.budget.is_some();
        Store {
            limit,
            budget: cfg.budget,
            pool_dry: false,
            // Budgeted stores start small and double (`Store::ramped`).
            seg_cap: if budgeted {
                super::segment::MIN_SEGMENT
            } else {
                seg_size
            },
            num_shards: cfg.num_shards.max(1) as usize,
            shrink_gen,
            item_size_max,
            index: Index::default(),
            segs: Segments::new(seg_size),
            cas: CasSeq::new(cfg.shard_id, cfg.num_shards),
            counters: Counters::default(),
            live: Live::default(),
            pending_flush: None,
            cursor: Cursor::default(),
            now: 0,
            keep_pct: super::evict::KEEP_PCT,
            compaction: None,
        }
    }

    /// Looks up `key` as a client read: marks it fetched, records the access time and bumps its
    /// eviction counter. The returned `fetched`/`last_access` describe the state *before* this
    /// access (what meta `mg ... h l` report). Expired items are removed (`get_expired`).
    pub fn get(&mut self, key: &[u8], now: u32) -> Option<ItemRef<'_>> {
        self.tick(now);
        let (r, addr) = self.lookup(key, now, true)?;
        self.index.bump_freq(r);
        let (id, off) = self.segs.split(addr);
        let seg = self.segs.get_mut(id);
        let delta = seg.access_delta(now);
        let data = &mut seg.data[off..];
        let prev_bits = data[0];
        let prev_access = u16::from_le_bytes([data[ACCESS_OFF], data[ACCESS_OFF + 1]]);
        data[0] = prev_bits | FETCHED;
        data[ACCESS_OFF..ACCESS_OFF + 2].copy_from_slice(&delta.to_le_bytes());
        let seg = self.segs.get(id);
        let mut item = Self::item_ref_in(&self.cas, seg, off);
        item.fetched = prev_bits & FETCHED != 0;
        item.last_access = seg.access_time(prev_access);
        Some(item)
    }

    /// Looks up `key` without access bookkeeping (CAS checks, meta `me`, append). Expired items
    /// are still removed.
    pub fn peek(&mut self, key: &[u8], now: u32) -> Option<ItemRef<'_>> {
        self.tick(now);
        let (_, addr) = self.lookup(key, now, false)?;
        Some(self.item_ref(addr))
    }

    /// Stores `key` → concatenation of `value_parts`, replacing any existing item. Returns the
    /// new CAS. On error an existing item is left as it was.
    pub fn set(
        &mut self,
        key: &[u8],
        value_parts: &[&[u8]],
        flags: u32,
        exptime: u32,
        now: u32,
    ) -> Result<u64, StoreError> {
        self.tick(now);
        let c = self.cas.next_counter();
        self.store(key, value_parts, flags, exptime, CasSpec::Counter(c), now)?;
        Ok(self.cas.cas_of(c))
    }

    /// Like [`set`](Self::set) with a caller-chosen CAS value (not checked for uniqueness).
    pub fn set_with_cas(
        &mut self,
        key: &[u8],
        value_parts: &[&[u8]],
        flags: u32,
        exptime: u32,
        cas: u64,
        now: u32,
    ) -> Result<(), StoreError> {
        self.tick(now);
        let spec = match self.cas.counter_of(cas) {
            Some(c) => CasSpec::Counter(c),
            None => CasSpec::Abs(cas),
        };
        self.store(key, value_parts, flags, exptime, spec, now)
    }

    /// Takes a fresh CAS value from this shard's sequence.
    pub fn next_cas(&mut self) -> u64 {
        let c = self.cas.next_counter();
        self.cas.cas_of(c)
    }

    /// Removes `key`; false if it was absent (or expired).
    pub fn delete(&mut self, key: &[u8], now: u32) -> bool {
        self.tick(now);
        match self.lookup(key, now, false) {
            Some((r, addr)) => {
                self.index.remove(r);
                self.kill(addr);
                true
            }
            None => false,
        }
    }

    /// Sets a new exptime (0 = never) in place; the CAS is unchanged. Counts as an access, as
    /// in memcached. False if the key is absent.
    pub fn touch(&mut self, key: &[u8], exptime: u32, now: u32) -> bool {
        self.tick(now);
        let Some((r, addr)) = self.lookup(key, now, false) else {
            return false;
        };
        self.index.bump_freq(r);
        self.record_access(addr, now);
        let (id, off) = self.segs.split(addr);
        let data = &mut self.segs.get_mut(id).data[off..];
        if data[0] & HAS_EXP != 0 {
            data[EXPTIME_OFF..EXPTIME_OFF + 4].copy_from_slice(&exptime.to_le_bytes());
            return true;
        }
        if exptime == 0 {
            return true;
        }
        // The item has no exptime field (it was stored without one): rewrite it with one.
        self.relocate_with_exptime(key, exptime, now)
    }

    /// Sets or clears the meta-protocol stale flag. False if the key is absent.
    pub fn set_stale(&mut self, key: &[u8], stale: bool, now: u32) -> bool {
        self.set_bit(key, STALE, stale, now)
    }

    /// Sets or clears the meta-protocol win-token-sent flag. False if the key is absent.
    pub fn set_win(&mut self, key: &[u8], win: bool, now: u32) -> bool {
        self.set_bit(key, WIN, win, now)
    }

    /// Number of live items.
    pub fn len(&self) -> usize {
        self.live.items as usize
    }

    pub fn is_empty(&self) -> bool {
        self.live.items == 0
    }

    /// Heap bytes allocated by the store: segments, index, bookkeeping.
    pub fn mem_used(&self) -> usize {
        self.segs.bytes() + self.index.bytes()
    }

    pub fn stats(&self) -> StoreStats {
        let c = &self.counters;
        StoreStats {
            curr_items: self.live.items,
            total_items: c.total_items,
            bytes: self.live.bytes,
            limit_maxbytes: self.limit as u64,
            evictions: c.evictions,
            evicted_unfetched: c.evicted_unfetched,
            expired_unfetched: c.expired_unfetched,
            reclaimed: c.reclaimed,
            mem_used: self.mem_used() as u64,
            get_expired: c.get_expired,
            get_flushed: c.get_flushed,
        }
    }

    /// `(mem_used − Σ(key + value)) / items`: what each item costs beyond its key and value.
    pub fn bytes_per_item_overhead(&self) -> f64 {
        if self.live.items == 0 {
            return 0.0;
        }
        (self.mem_used() as f64 - self.live.kv_bytes as f64) / self.live.items as f64
    }

    // ---- shared internals -------------------------------------------------------------------

    /// Applies clock-driven state changes (a scheduled flush) before any operation.
    #[inline]
    pub(super) fn tick(&mut self, now: u32) {
        self.now = self.now.max(now);
        if let Some(at) = self.pending_flush {
            if now >= at {
                self.pending_flush = None;
                self.flush_now(now);
            }
        }
    }

    /// Index lookup comparing the stored key.
    #[inline]
    pub(super) fn find(&self, h: u64, key: &[u8]) -> Option<SlotRef> {
        let segs = &self.segs;
        self.index.find(h, |loc| item::key_eq(segs.item(loc), key))
    }

    /// Finds a live item; an expired one is removed on the way (lazy expiry).
    #[inline]
    fn lookup(&mut self, key: &[u8], now: u32, is_get: bool) -> Option<(SlotRef, u64)> {
        if key.len() > MAX_KEY_LEN {
            return None;
        }
        let r = self.find(hash_key(key), key)?;
        let addr = self.index.loc(r);
        let data = self.segs.item(addr);
        if data[0] & HAS_EXP != 0 {
            let exptime = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
            if is_expired(exptime, now) {
                self.index.remove(r);
                self.note_expired(data[0]);
                self.kill(addr);
                if is_get {
                    self.counters.get_expired += 1;
                }
                return None;
            }
        }
        Some((r, addr))
    }

    /// Counts the removal of an expired item.
    #[inline]
    pub(super) fn note_expired(&mut self, bits: u8) {
        self.counters.reclaimed += 1;
        if bits & FETCHED == 0 {
            self.counters.expired_unfetched += 1;
        }
    }

    /// Counts the eviction of a live item.
    #[inline]
    pub(super) fn note_evicted(&mut self, bits: u8) {
        self.counters.evictions += 1;
        if bits & FETCHED == 0 {
            self.counters.evicted_unfetched += 1;
        }
    }

    /// Marks the item at `addr` dead (its index slot is already gone or repointed) and updates
    /// the live totals. A segment left without live items goes back to the pool.
    pub(super) fn kill(&mut self, addr: u64) {
        let (id, off) = self.segs.split(addr);
        let seg = self.segs.get_mut(id);
        let v = View::decode(&seg.data[off..seg.len as usize]);
        seg.data[off] |= DEAD;
        seg.live_items -= 1;
        seg.live_bytes -= v.len() as u32;
        let empty = seg.live_items == 0;
        self.live.items -= 1;
        self.live.bytes -= v.len() as u64;
        self.live.kv_bytes -= (v.key_len + v.value_len) as u64;
        if empty && self.segs.head() != Some(id) && !self.is_compacting(id) {
            self.segs.release_to_pool(id, self.now);
        }
    }

    /// Sets the fetched bit and access time; returns the previous bits and access time.
    fn record_access(&mut self, addr: u64, now: u32) -> (u8, u32) {
        let (id, off) = self.segs.split(addr);
        let seg = self.segs.get_mut(id);
        let delta = seg.access_delta(now);
        let data = &mut seg.data[off..];
        let prev_bits = data[0];
        let prev = u16::from_le_bytes([data[ACCESS_OFF], data[ACCESS_OFF + 1]]);
        data[0] |= FETCHED;
        data[ACCESS_OFF..ACCESS_OFF + 2].copy_from_slice(&delta.to_le_bytes());
        (prev_bits, seg.access_time(prev))
    }

    fn set_bit(&mut self, key: &[u8], bit: u8, on: bool, now: u32) -> bool {
        self.tick(now);
        let Some((_, addr)) = self.lookup(key, now, false) else {
            return false;
        };
        let (id, off) = self.segs.split(addr);
        let b = &mut self.segs.get_mut(id).data[off];
        if on {
            *b |= bit;
        } else {
            *b &= !bit;
        }
        true
    }

    /// The CAS counter of a counter-CAS item at `off` in `seg`.
    #[inline]
    pub(super) fn counter_at(seg: &Segment, off: usize, delta: u64) -> u64 {
        seg.page_base[Segment::page_of(off)].wrapping_add(delta)
    }

    pub(super) fn item_ref(&self, addr: u64) -> ItemRef<'_> {
        let (id, off) = self.segs.split(addr);
        Self::item_ref_in(&self.cas, self.segs.get(id), off)
    }

    #[inline]
    fn item_ref_in<'a>(cas_seq: &CasSeq, seg: &'a Segment, off: usize) -> ItemRef<'a> {
        let data = &seg.data[off..seg.len as usize];
        let v = View::decode(data);
        let cas = match v.cas {
            CasField::Abs(c) => c,
            CasField::Delta(d) => cas_seq.cas_of(Self::counter_at(seg, off, d)),
        };
        ItemRef {
            key: &data[v.key_off..v.key_off + v.key_len],
            value: &data[v.value_off..v.value_off + v.value_len],
            flags: v.flags,
            cas,
            exptime: v.exptime,
            last_access: seg.access_time(v.access),
            fetched: v.bits & FETCHED != 0,
            stale: v.bits & STALE != 0,
            win: v.bits & WIN != 0,
        }
    }

    /// The CAS field to write for `spec` at offset `off` of `seg`, setting the page base if this
    /// is the page's first counter item.
    #[inline]
    pub(super) fn cas_field(
        cas: &CasSeq,
        seg: &mut Segment,
        off: usize,
        spec: CasSpec,
    ) -> CasField {
        match spec {
            CasSpec::Counter(c) => {
                let base = &mut seg.page_base[Segment::page_of(off)];
                if *base == UNSET {
                    *base = c;
                }
                if c >= *base {
                    CasField::Delta(c - *base)
                } else {
                    CasField::Abs(cas.cas_of(c))
                }
            }
            CasSpec::Abs(v) => CasField::Abs(v),
        }
    }

    /// Adds a just-written item of `len` bytes to the live totals.
    #[inline]
    fn note_written(&mut self, id: u32, len: usize, kv: usize) {
        let seg = self.segs.get_mut(id);
        seg.len += len as u32;
        seg.live_items += 1;
        seg.live_bytes += len as u32;
        self.live.items += 1;
        self.live.bytes += len as u64;
        self.live.kv_bytes += kv as u64;
    }

    fn store(
        &mut self,
        key: &[u8],
        parts: &[&[u8]],
        flags: u32,
        exptime: u32,
        cas: CasSpec,
        now: u32,
    ) -> Result<(), StoreError> {
        self.store_bits(key, parts, flags, exptime, cas, 0, now)
    }

    /// [`store`](Self::store) with the meta bits (`META_BITS`) the item starts with.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn store_bits(
        &mut self,
        key: &[u8],
        parts: &[&[u8]],
        flags: u32,
        exptime: u32,
        cas: CasSpec,
        bits: u8,
        now: u32,
    ) -> Result<(), StoreError> {
        let value_len = parts
            .iter()
            .try_fold(0usize, |acc, p| acc.checked_add(p.len()))
            .ok_or(StoreError::TooLarge)?;
        let charged = key
            .len()
            .checked_add(value_len)
            .and_then(|n| n.checked_add(ITEM_SIZE_ALLOWANCE));
        if key.len() > MAX_KEY_LEN || charged.is_none_or(|n| n > self.item_size_max) {
            return Err(StoreError::TooLarge);
        }
        let n = item::max_item_len(key.len(), value_len, flags, exptime != 0);
        if n > self.max_item_room() && !self.lease_item_room(n) {
            return Err(StoreError::NoMemory);
        }
        let h = hash_key(key);
        self.reserve_index(h);
        let addr = self.make_room(n, now)?;
        // Look up only now: making room may have evicted or moved the old version.
        let existing = self.find(h, key);

        let (id, off) = self.segs.split(addr);
        let seg = self.segs.get_mut(id);
        let header = Header {
            bits,
            access: seg.access_delta(now),
            exptime,
            force_exp: false,
            key_len: key.len(),
            value_len,
            cas: Self::cas_field(&self.cas, seg, off, cas),
            flags,
        };
        let len = header.write(&mut seg.data[off..], key, parts);
        debug_assert!(len <= n);
        self.note_written(id, len, key.len() + value_len);

        match existing {
            Some(r) => {
                let old = self.index.loc(r);
                self.index.set_loc(r, addr, 0);
                self.kill(old);
            }
            None => self.index_insert(h, addr),
        }
        self.counters.total_items += 1;
        if self.mem_used() > self.limit {
            self.lease_more(self.mem_used() - self.limit);
        }
        self.enforce_budget(true);
        self.pace_compaction(len, now);
        Ok(())
    }

    /// Inserts a new index entry, growing the sub-table if the cuckoo insert finds no room.
    fn index_insert(&mut self, h: u64, addr: u64) {
        while !self.index.insert(h, addr) {
            self.index.grow(h);
        }
    }

    /// Grows the index ahead of an insert if needed, freeing segments first so the growth stays
    /// within budget. Done before the new item is written so freeing can't drop it.
    fn reserve_index(&mut self, h: u64) {
        while let Some(extra) = self.index.growth_needed(h) {
            let over = (self.mem_used() + extra).saturating_sub(self.limit);
            if over > 0 && self.lease_more(over) > 0 {
                continue;
            }
            if over > 0 && self.release_memory(over, false) {
                continue;
            }
            self.index.grow(h);
        }
    }

    /// Rewrites an item that has no exptime field with one (CAS, flags and meta bits kept).
    fn relocate_with_exptime(&mut self, key: &[u8], exptime: u32, now: u32) -> bool {
        let h = hash_key(key);
        let Some(r) = self.find(h, key) else {
            return false;
        };
        let v = View::decode(self.segs.item(self.index.loc(r)));
        let n = item::max_item_len(v.key_len, v.value_len, v.flags, true);
        if n > self.max_item_room() {
            return false;
        }
        let Ok(dst) = self.make_room(n, now) else {
            return false;
        };
        // Making room may have moved (compaction) or evicted the item.
        let Some(r) = self.find(h, key) else {
            return false;
        };
        let src = self.index.loc(r);
        let (sid, soff) = self.segs.split(src);
        let (did, doff) = self.segs.split(dst);
        let (len, kv) = if sid == did {
            // Same segment: the destination (the append point) lies after the source.
            let seg = self.segs.get_mut(sid);
            let v = View::decode(&seg.data[soff..seg.len as usize]);
            let spec = Self::cas_spec_of(seg, soff, &v);
            let cas = Self::cas_field(&self.cas, seg, doff, spec);
            let header = Self::moved_header(&v, seg.access_delta(now), exptime, cas);
            let (lo, hi) = seg.data.split_at_mut(doff);
            let old = &lo[soff..];
            let len = header.write(
                hi,
                &old[v.key_off..v.key_off + v.key_len],
                &[&old[v.value_off..v.value_off + v.value_len]],
            );
            (len, v.key_len + v.value_len)
        } else {
            let (src_seg, dst_seg) = self.segs.pair_mut(sid, did);
            let v = View::decode(&src_seg.data[soff..src_seg.len as usize]);
            let spec = Self::cas_spec_of(src_seg, soff, &v);
            let cas = Self::cas_field(&self.cas, dst_seg, doff, spec);
            let header = Self::moved_header(&v, dst_seg.access_delta(now), exptime, cas);
            let old = &src_seg.data[soff..];
            let len = header.write(
                &mut dst_seg.data[doff..],
                &old[v.key_off..v.key_off + v.key_len],
                &[&old[v.value_off..v.value_off + v.value_len]],
            );
            (len, v.key_len + v.value_len)
        };
        self.note_written(did, len, kv);
        let freq = self.index.freq(r);
        self.index.set_loc(r, dst, freq);
        self.kill(src);
        true
    }

    /// The CAS of an existing item, as a spec for rewriting it elsewhere.
    pub(super) fn cas_spec_of(seg: &Segment, off: usize, v: &View) -> CasSpec {
        match v.cas {
            CasField::Abs(c) => CasSpec::Abs(c),
            CasField::Delta(d) => CasSpec::Counter(Self::counter_at(seg, off, d)),
        }
    }

    /// Header for an existing item rewritten elsewhere with a (forced) exptime field.
    fn moved_header(v: &View, access: u16, exptime: u32, cas: CasField) -> Header {
        Header {
            bits: v.bits & META_BITS,
            access,
            exptime,
            force_exp: true,
            key_len: v.key_len,
            value_len: v.value_len,
            cas,
            flags: v.flags,
        }
    }
}
