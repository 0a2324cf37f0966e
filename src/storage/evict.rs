//! Making room: segment allocation within the budget, and eviction by in-place compaction.
//!
//! When the write head is full and the budget allows no new segment, the *oldest* segment is
//! compacted in place and becomes the new write head:
//!
//! * dead (overwritten/deleted) and expired items are dropped;
//! * an item whose 2-bit access counter is non-zero survives, its counter decremented (second
//!   chance, CLOCK-style, so an item must keep being read to keep surviving);
//! * survivors may use at most `KEEP_PCT` of the segment (and never the room the new item
//!   needs), so each compaction frees real space and a single store does bounded work;
//! * everything else is evicted.
//!
//! Compacting in place (survivors slide towards the segment start, their index slots are
//! repointed) means eviction never needs a spare segment: a store whose budget holds a single
//! segment still accepts items up to the segment size. Survivors keep their CAS (it is stored
//! as a counter, re-encoded against the new page base) and their meta bits.
//!
//! `KEEP_PCT` was chosen with the hit-ratio simulation in `tests` below (Zipf workloads): see
//! `keep_fraction_hit_ratios`.

use super::index::FREQ_MAX;
use super::item::{CasField, Header, View, DEAD, HAS_EXP, META_BITS};
use super::segment::{Segment, Segments, MIN_SEGMENT, PAGE_SIZE, UNSET};
use super::store::{hash_key, is_expired, Store};
use super::StoreError;

/// Most of a compacted segment that survivors may occupy, in percent.
pub(crate) const KEEP_PCT: usize = 50;

const _: () = assert!(FREQ_MAX as usize >= 1);

impl Store {
    /// Largest item (encoded length) this store can ever hold at the current index size.
    pub(super) fn max_item_room(&self) -> usize {
        let fixed = self.index.bytes() + self.segs.bytes() - self.segs.data_bytes();
        let budget = self
            .limit
            .saturating_sub(fixed + self.segs.alloc_overhead() + 64);
        Segment::cap_for_budget(budget).min(self.segs.seg_size())
    }

    /// Capacity of a new segment the budget allows for an item of `n` bytes, if any.
    fn affordable_segment(&self, n: usize) -> Option<usize> {
        let used = self.mem_used() + self.segs.alloc_overhead();
        let cap = Segment::cap_for_budget(self.limit.saturating_sub(used)).min(self.segs.seg_size());
        (cap >= n && cap >= MIN_SEGMENT.min(self.segs.seg_size())).then_some(cap)
    }

    /// Returns the address where an item of up to `n` bytes can be appended to the write head,
    /// allocating, reusing or evicting segments as needed.
    pub(super) fn make_room(&mut self, n: usize, now: u32) -> Result<u64, StoreError> {
        loop {
            if let Some(id) = self.segs.head() {
                let seg = self.segs.get(id);
                if seg.free() >= n {
                    return Ok(self.segs.addr(id, seg.len as usize));
                }
            }
            if self.segs.reuse_pooled(n, now).is_some() {
                continue;
            }
            if let Some(cap) = self.affordable_segment(n) {
                if self.segs.alloc_head(cap, now).is_some() {
                    continue;
                }
            }
            if self.segs.free_small_pooled(n) {
                continue;
            }
            let Some(victim) = self.segs.oldest() else {
                return Err(StoreError::NoMemory);
            };
            let cap = self.segs.get(victim).cap();
            if cap < n {
                // A partial segment too small for this item: give its memory back so a
                // bigger one can be allocated.
                self.evict_segment(victim, now);
                self.segs.free(victim);
                continue;
            }
            let keep = (cap - n).min(cap * self.keep_pct / 100);
            self.compact(victim, keep, now);
            self.segs.move_to_back(victim);
        }
    }

    /// Compacts segment `id` in place, keeping at most `keep` bytes of recently accessed items.
    pub(super) fn compact(&mut self, id: u32, keep: usize, now: u32) {
        let (seg_len, old_time_base) = {
            let seg = self.segs.get(id);
            (seg.len as usize, seg.time_base)
        };
        // Re-base access times so the u16 deltas of new items don't saturate; survivors' deltas
        // only shrink.
        let time_base = old_time_base.max(now.saturating_sub(1 << 15));
        let mut r = 0; // read offset
        let mut w = 0; // write offset
        let mut kept = 0;
        let mut survivors = 0u32;
        let mut read_page = usize::MAX;
        let mut read_base = UNSET;
        let mut write_page = usize::MAX;
        while r < seg_len {
            let seg = self.segs.get(id);
            let v = View::decode(&seg.data[r..seg_len]);
            let len = v.len();
            // Page bases are overwritten behind the reader as survivors are placed; remember
            // the base of the page being read before the writer can reach it.
            let rp = Segment::page_of(r);
            if rp != read_page {
                read_page = rp;
                read_base = seg.page_base[rp];
            }
            if v.bits & DEAD != 0 {
                r += len;
                continue;
            }
            let data = &seg.data[r..seg_len];
            let h = hash_key(&data[v.key_off..v.key_off + v.key_len]);
            let Some(slot) = self.index.find_loc(h, self.segs.addr(id, r)) else {
                // Not indexed: cannot happen; drop the bytes rather than keep garbage live.
                debug_assert!(false, "live item without index entry");
                self.forget_live(len, v.key_len + v.value_len);
                r += len;
                continue;
            };
            if is_expired(v.exptime, now) {
                self.index.remove(slot);
                self.note_expired(v.bits);
                self.forget_live(len, v.key_len + v.value_len);
                r += len;
                continue;
            }
            let freq = self.index.freq(slot);
            let counter = match v.cas {
                CasField::Delta(d) => Some(read_base.wrapping_add(d)),
                CasField::Abs(_) => None,
            };
            let wp = Segment::page_of(w);
            let base = if wp == write_page {
                seg.page_base[wp]
            } else {
                UNSET
            };
            let cas = match counter {
                Some(c) => {
                    let b = if base == UNSET { c } else { base };
                    if c >= b {
                        CasField::Delta(c - b)
                    } else {
                        CasField::Abs(self.cas.cas_of(c))
                    }
                }
                None => v.cas,
            };
            let header = Header {
                bits: v.bits & META_BITS,
                access: Segment::access_delta_from(
                    time_base,
                    old_time_base.saturating_add(v.access as u32),
                ),
                exptime: v.exptime,
                force_exp: v.bits & HAS_EXP != 0,
                key_len: v.key_len,
                value_len: v.value_len,
                cas,
                flags: v.flags,
            };
            let new_len = header.item_len();
            // `w + new_len <= r + len`: the re-encoded item must not overrun unread items (its
            // CAS delta may grow by a byte against the new page base).
            if freq == 0 || kept + new_len > keep || w + new_len > r + len {
                self.index.remove(slot);
                self.note_evicted(v.bits);
                self.forget_live(len, v.key_len + v.value_len);
                r += len;
                continue;
            }
            self.index.set_loc(slot, self.segs.addr(id, w), freq - 1);
            let seg = self.segs.get_mut(id);
            if wp != write_page {
                write_page = wp;
                seg.page_base[wp] = UNSET;
            }
            if let Some(c) = counter {
                if seg.page_base[wp] == UNSET {
                    seg.page_base[wp] = c;
                }
            }
            // Destinations never pass their sources: key first (its source lies before the
            // value), then value, then the header around them.
            let pl = header.prefix_len();
            let sl = header.suffix_len();
            seg.data
                .copy_within(r + v.key_off..r + v.key_off + v.key_len, w + pl);
            seg.data.copy_within(
                r + v.value_off..r + v.value_off + v.value_len,
                w + pl + v.key_len + sl,
            );
            header.write_prefix(&mut seg.data[w..]);
            header.write_suffix(&mut seg.data[w + pl + v.key_len..]);
            self.live.bytes = self.live.bytes + new_len as u64 - len as u64;
            kept += new_len;
            survivors += 1;
            w += new_len;
            r += len;
        }
        let seg = self.segs.get_mut(id);
        let first_unused = if write_page == usize::MAX {
            0
        } else {
            write_page + 1
        };
        for b in seg.page_base.iter_mut().skip(first_unused) {
            *b = UNSET;
        }
        seg.len = w as u32;
        seg.live_items = survivors;
        seg.live_bytes = kept as u32;
        seg.time_base = time_base;
        seg.version = seg.version.wrapping_add(1);
    }

    /// Drops every item of segment `id` from the index (evicted, or reclaimed if expired). The
    /// caller then frees or resets the segment.
    pub(super) fn evict_segment(&mut self, id: u32, now: u32) {
        let seg_len = self.segs.get(id).len as usize;
        let mut r = 0;
        while r < seg_len {
            let seg = self.segs.get(id);
            let v = View::decode(&seg.data[r..seg_len]);
            let len = v.len();
            if v.bits & DEAD == 0 {
                let h = hash_key(&seg.data[r + v.key_off..r + v.key_off + v.key_len]);
                if let Some(slot) = self.index.find_loc(h, self.segs.addr(id, r)) {
                    self.index.remove(slot);
                }
                if is_expired(v.exptime, now) {
                    self.note_expired(v.bits);
                } else {
                    self.note_evicted(v.bits);
                }
                self.forget_live(len, v.key_len + v.value_len);
                self.segs.get_mut(id).data[r] |= DEAD;
            }
            r += len;
        }
        let seg = self.segs.get_mut(id);
        seg.live_items = 0;
        seg.live_bytes = 0;
    }

    /// Subtracts a removed item from the store-wide live totals (segment totals are the
    /// caller's business).
    #[inline]
    fn forget_live(&mut self, len: usize, kv: usize) {
        self.live.items -= 1;
        self.live.bytes -= len as u64;
        self.live.kv_bytes -= kv as u64;
    }

    /// Returns at least `need` bytes of segment memory to the budget while keeping recently
    /// used items: frees a pooled (empty) segment, or compacts the oldest segment (second
    /// chance, as for any eviction) and shrinks its buffer; a segment too small to shrink is
    /// freed with its items. With `spare_head`, the write head (holding the item just stored) is
    /// left alone. False when nothing could be released.
    pub(super) fn release_memory(&mut self, need: usize, spare_head: bool) -> bool {
        if self.segs.free_one_pooled() {
            return true;
        }
        let Some(victim) = self.segs.oldest() else {
            return false;
        };
        if spare_head && self.segs.head() == Some(victim) {
            return false;
        }
        let cap = self.segs.get(victim).cap();
        let need = need.next_multiple_of(PAGE_SIZE);
        if cap < need + MIN_SEGMENT {
            self.evict_segment(victim, self.now);
            self.segs.free(victim);
            return true;
        }
        let new_cap = cap - need;
        self.compact(victim, new_cap.min(cap * self.keep_pct / 100), self.now);
        self.segs.shrink(victim, new_cap);
        self.segs.move_to_back(victim);
        true
    }

    /// Releases memory until the store is within its limit (after an index growth that could
    /// not be planned for, or a lower limit). With `spare_head`, the write head is kept.
    pub(super) fn enforce_budget(&mut self, spare_head: bool) {
        while self.mem_used() > self.limit {
            let excess = self.mem_used() - self.limit;
            if !self.release_memory(excess, spare_head) {
                break;
            }
        }
        if self.live.items == 0 && self.mem_used() > self.limit {
            self.index.clear();
            if self.segs.is_empty() {
                self.segs = Segments::new(self.segs.seg_size());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use crate::storage::{Store, StoreConfig};

    /// Zipf(`alpha`) sampler over `n` keys by inverse CDF.
    struct Zipf {
        cdf: Vec<f64>,
        x: u64,
    }

    impl Zipf {
        fn new(n: usize, alpha: f64) -> Zipf {
            let mut cdf = Vec::with_capacity(n);
            let mut sum = 0.0;
            for i in 1..=n {
                sum += 1.0 / (i as f64).powf(alpha);
                cdf.push(sum);
            }
            for c in &mut cdf {
                *c /= sum;
            }
            Zipf { cdf, x: 0x2545_F491_4F6C_DD1D }
        }

        fn next(&mut self) -> u64 {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            let u = (self.x >> 11) as f64 / (1u64 << 53) as f64;
            // Scramble ranks so popularity is unrelated to key order.
            (self.cdf.partition_point(|&c| c < u) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        }
    }

    /// Hit ratio of get-or-set on a store of `limit` bytes (16 B keys, 100 B values).
    fn store_hit_ratio(keep_pct: usize, limit: usize, alpha: f64, keys: usize, ops: usize) -> (f64, u64) {
        let mut s = Store::new(StoreConfig {
            memory_limit: limit,
            item_size_max: 1 << 20,
            shard_id: 0,
            num_shards: 1,
        });
        s.keep_pct = keep_pct;
        let mut z = Zipf::new(keys, alpha);
        let v = [7u8; 100];
        let (mut hits, mut n) = (0u64, 0u64);
        for i in 0..ops {
            let k = z.next().to_le_bytes();
            let hit = s.get(&k, 2).is_some();
            if !hit {
                s.set(&k, &[&v], 0, 0, 2).unwrap();
            }
            if i >= ops / 4 {
                n += 1;
                hits += hit as u64;
            }
        }
        (hits as f64 / n as f64, s.len() as u64)
    }

    /// Exact LRU holding `cap` items, as a reference point.
    fn lru_hit_ratio(cap: usize, alpha: f64, keys: usize, ops: usize) -> f64 {
        let mut z = Zipf::new(keys, alpha);
        let mut stamp_of: HashMap<u64, u64> = HashMap::new();
        let mut by_stamp: BTreeMap<u64, u64> = BTreeMap::new();
        let (mut hits, mut n) = (0u64, 0u64);
        for i in 0..ops {
            let k = z.next();
            let hit = if let Some(old) = stamp_of.insert(k, i as u64) {
                by_stamp.remove(&old);
                true
            } else {
                false
            };
            by_stamp.insert(i as u64, k);
            if stamp_of.len() > cap {
                let (&s, &victim) = by_stamp.iter().next().unwrap();
                by_stamp.remove(&s);
                stamp_of.remove(&victim);
            }
            if i >= ops / 4 {
                n += 1;
                hits += hit as u64;
            }
        }
        hits as f64 / n as f64
    }

    /// The benchmark behind `KEEP_PCT`:
    /// `cargo test --release --lib keep_fraction -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn keep_fraction_hit_ratios() {
        let keys = 1_000_000;
        let ops = 4_000_000;
        for alpha in [0.8, 1.0, 1.2] {
            for limit_mib in [8, 32] {
                let limit = limit_mib << 20;
                let mut line = format!("zipf {alpha} cache {limit_mib} MiB:");
                let mut items = 0;
                for keep in [0, 25, 50, 75, 90] {
                    let (h, n) = store_hit_ratio(keep, limit, alpha, keys, ops);
                    items = n;
                    line += &format!("  keep {keep}% {:.2}%", h * 100.0);
                }
                line += &format!("  | LRU({items} items) {:.2}%", lru_hit_ratio(items as usize, alpha, keys, ops) * 100.0);
                eprintln!("{line}");
            }
        }
    }
}
