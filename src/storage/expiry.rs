//! Expiry, flush_all and memory-limit changes.
//!
//! * **Lazy expiry**: every lookup drops an expired item it finds (`store.rs`).
//! * **`maintain`**: a cursor walks all segments item by item, a bounded number of items per
//!   call, and drops expired ones. A segment left with no live items goes back to the pool and
//!   is reused before any eviction happens, so memory held by expired items is reused without
//!   evicting live ones. Dead bytes inside partly-live segments are reclaimed when eviction
//!   compacts the segment. The walk also re-bases segments' access-time base before the 16-bit
//!   per-item deltas would saturate.
//! * **flush_all**: an immediate flush empties the store in O(segments): every segment goes to
//!   the pool and the index is dropped. A delayed flush is remembered and applied by the first
//!   call whose `now` reaches it: since every item present then was stored before that time,
//!   that is exactly "invalidate items stored before `at`". (Hence `get_flushed` stays 0:
//!   flushed items are gone, not lazily hidden.)

use super::item::{View, ACCESS_OFF, DEAD};
use super::segment::Segment;
use super::store::{hash_key, is_expired, Cursor, Live, Store};

/// `maintain` examines at most this many items per item it may reclaim.
const SCAN_PER_RECLAIM: usize = 8;
/// Re-base a segment's access times once its base is this old (the u16 deltas saturate at
/// 65535 s); the new base is `now - REBASE_TO` so recent accesses stay exact.
const REBASE_AFTER: u32 = 3 << 14;
const REBASE_TO: u32 = 1 << 14;

impl Store {
    /// Flushes all items now (`at <= now`) or schedules a flush at time `at`, replacing any
    /// pending one: from `at` on, items stored before `at` are gone.
    pub fn flush(&mut self, at: u32, now: u32) {
        self.tick(now);
        if at <= now {
            self.pending_flush = None;
            self.flush_now(now);
        } else {
            self.pending_flush = Some(at);
        }
    }

    pub(super) fn flush_now(&mut self, now: u32) {
        self.compaction = None;
        self.segs.reset_all(now);
        self.index.clear();
        self.live = Live::default();
        self.cursor = Cursor::default();
        self.release_after_flush();
    }

    /// Changes the memory limit (`cache_memlimit`). Shrinking evicts whole segments, oldest
    /// first, until the store fits.
    ///
    /// A budgeted store resizes its lease instead: shrinking returns the difference to the
    /// budget, growing leases what the budget has left.
    pub fn set_memory_limit(&mut self, bytes: usize) {
        if self.budget.is_some() {
            self.resize_lease(bytes);
            return;
        }
        self.limit = bytes;
        self.enforce_budget(false);
    }

    /// Reclaims up to `max_items` expired items, examining at most `8 * max_items` items.
    /// Returns the number reclaimed. Call it periodically from a low-priority task.
    pub fn maintain(&mut self, now: u32, max_items: usize) -> usize {
        self.tick(now);
        self.maintain_lease();
        // Idle time is a good time for eviction work that stores would otherwise do.
        if self.compaction.is_some() {
            self.compact_step(max_items, now);
        }
        let mut budget = max_items.saturating_mul(SCAN_PER_RECLAIM);
        let mut reclaimed = 0;
        // Visiting each id slot once per call at most keeps an empty store cheap.
        let mut segments_left = self.segs.id_limit() as usize + 1;
        while budget > 0 && reclaimed < max_items {
            let c = self.cursor;
            // The segment being compacted drops its expired items itself (and its items move).
            if c.id >= self.segs.id_limit() || !self.segs.is_live(c.id) || self.is_compacting(c.id)
            {
                if segments_left == 0 {
                    break;
                }
                segments_left -= 1;
                self.cursor = self.next_segment(c.id);
                continue;
            }
            let seg = self.segs.get(c.id);
            if seg.version != c.version {
                // Items moved or the segment was reset since we paused here: start it over.
                self.cursor = Cursor {
                    id: c.id,
                    version: seg.version,
                    off: 0,
                };
                continue;
            }
            if c.off == 0 && seg.len > 0 && now.saturating_sub(seg.time_base) >= REBASE_AFTER {
                self.rebase_access_times(c.id, now.saturating_sub(REBASE_TO));
            }
            let seg = self.segs.get(c.id);
            if c.off as usize >= seg.len as usize {
                if segments_left == 0 {
                    break;
                }
                segments_left -= 1;
                self.cursor = self.next_segment(c.id);
                continue;
            }
            let off = c.off as usize;
            let v = View::decode(&seg.data[off..seg.len as usize]);
            self.cursor.off += v.len() as u32;
            budget -= 1;
            if v.bits & DEAD != 0 || !is_expired(v.exptime, now) {
                continue;
            }
            let h = hash_key(&seg.data[off + v.key_off..off + v.key_off + v.key_len]);
            let addr = self.segs.addr(c.id, off);
            if let Some(slot) = self.index.find_loc(h, addr) {
                self.index.remove(slot);
                self.note_expired(v.bits);
                self.kill(addr);
                reclaimed += 1;
            }
        }
        reclaimed
    }

    fn next_segment(&self, id: u32) -> Cursor {
        let next = if id.saturating_add(1) >= self.segs.id_limit() {
            0
        } else {
            id + 1
        };
        Cursor {
            id: next,
            version: if self.segs.is_live(next) {
                self.segs.get(next).version
            } else {
                0
            },
            off: 0,
        }
    }

    /// Moves segment `id`'s access-time base forward to `base`, rewriting every item's delta.
    fn rebase_access_times(&mut self, id: u32, base: u32) {
        let seg = self.segs.get_mut(id);
        let old = seg.time_base;
        if base <= old {
            return;
        }
        let len = seg.len as usize;
        let mut r = 0;
        while r < len {
            let v = View::decode(&seg.data[r..len]);
            let t = old.saturating_add(v.access as u32);
            let d = Segment::access_delta_from(base, t);
            seg.data[r + ACCESS_OFF..r + ACCESS_OFF + 2].copy_from_slice(&d.to_le_bytes());
            r += v.len();
        }
        seg.time_base = base;
    }
}
