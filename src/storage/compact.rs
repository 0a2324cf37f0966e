//! In-place segment compaction, resumable in bounded steps.
//!
//! Compacting a segment drops dead and expired items, keeps items whose 2-bit access counter is
//! non-zero (decrementing it: second chance, CLOCK-style) up to a byte budget `keep`, and evicts
//! the rest. Survivors slide towards the segment start (`w ≤ r` always, so `copy_within` never
//! clobbers unread items) and their index slots are repointed. Their CAS is stored as a counter
//! and re-encoded against the new page base; flags, exptime, meta bits and access time are
//! copied.
//!
//! Compaction can pause after any item (`compact_step`), so eviction work is spread over the
//! sets that consume the write head instead of stalling one set for a whole segment (~2 ms for a
//! 1 MiB segment of small items on a large store). At a pause the segment stays valid for
//! everyone else:
//!
//! * `[0, w)` holds compacted survivors, indexed at their new offsets;
//! * `[w, r)` is covered by one dead *filler* item, so walks can step over it;
//! * `[r, len)` is untouched: items there are still indexed at their old offsets, and their
//!   page's CAS base is unchanged, because the writer keeps the old base of a page the reader is
//!   still in (its survivors come from that page, so their counters are ≥ that base).
//!
//! So abandoning a paused compaction is always safe; resuming it only saves work.

use super::index::FREQ_MAX;
use super::item::{write_filler, CasField, Header, View, DEAD, HAS_EXP, META_BITS, MIN_FILLER};
use super::segment::{Segment, UNSET};
use super::store::{hash_key, is_expired, Store};

/// Items whose index buckets a segment walk loads ahead of processing them.
const LOOKAHEAD: usize = 16;

const _: () = assert!(FREQ_MAX >= 1);

/// Walks the not-dead items of one segment in order, hashing keys and touching their index
/// buckets `LOOKAHEAD` items ahead: per item, a walk's cost is an index probe that would otherwise
/// be a serial cache miss.
pub(super) struct Walker {
    ahead: [(u32, u64); LOOKAHEAD],
    len: usize,
    pos: usize,
    /// Where the next refill starts scanning.
    scan: usize,
}

impl Walker {
    pub fn new(from: usize) -> Walker {
        Walker {
            ahead: [(0, 0); LOOKAHEAD],
            len: 0,
            pos: 0,
            scan: from,
        }
    }

    /// The next item that was not dead when scanned: `(offset, key hash)`. It may have died
    /// since (the caller re-checks). Items behind the returned one may be rewritten freely;
    /// items after it must not move.
    pub fn next(&mut self, store: &Store, id: u32) -> Option<(usize, u64)> {
        if self.pos == self.len {
            let seg = store.segs.get(id);
            let end = seg.len as usize;
            self.len = 0;
            self.pos = 0;
            while self.len < LOOKAHEAD && self.scan < end {
                let v = View::decode(&seg.data[self.scan..end]);
                if v.bits & DEAD == 0 {
                    let key_at = self.scan + v.key_off;
                    let h = hash_key(&seg.data[key_at..key_at + v.key_len]);
                    store.index.touch(h);
                    self.ahead[self.len] = (self.scan as u32, h);
                    self.len += 1;
                }
                self.scan += v.len();
            }
            if self.len == 0 {
                return None;
            }
        }
        let (off, h) = self.ahead[self.pos];
        self.pos += 1;
        Some((off as usize, h))
    }

    /// Offset of the first byte not yet returned by `next` (everything before it that `next`
    /// skipped was dead).
    fn frontier(&self) -> usize {
        if self.pos < self.len {
            self.ahead[self.pos].0 as usize
        } else {
            self.scan
        }
    }
}

/// A compaction in progress (or finished and waiting to become the write head).
pub(super) struct Compaction {
    pub id: u32,
    /// Most bytes survivors may occupy.
    keep: usize,
    /// Write offset: survivors occupy `[0, w)`.
    w: usize,
    /// Page being read and its base counter as it was before the writer could change it.
    read_page: usize,
    read_base: u64,
    /// Page the writer is filling.
    write_page: usize,
    walk: Walker,
    pub done: bool,
}

impl Store {
    /// Compacts segment `id` to completion, survivors ≤ `keep` bytes, resuming a paused
    /// compaction of it. Afterwards `[len, cap)` of the segment is free.
    pub(super) fn compact(&mut self, id: u32, keep: usize, now: u32) {
        match self.compaction.as_mut() {
            Some(c) if c.id == id => c.keep = c.keep.min(keep),
            _ => self.compact_begin(id, keep),
        }
        self.compact_step(usize::MAX, now);
        // A pass that finished earlier under a larger budget may have kept too much.
        if self.segs.get(id).len as usize > keep {
            self.compact_begin(id, keep);
            self.compact_step(usize::MAX, now);
        }
        self.compaction = None;
    }

    /// Starts compacting `id` (abandoning any other compaction, which is always safe).
    pub(super) fn compact_begin(&mut self, id: u32, keep: usize) {
        self.compaction = Some(Box::new(Compaction {
            id,
            keep,
            w: 0,
            read_page: usize::MAX,
            read_base: UNSET,
            write_page: usize::MAX,
            walk: Walker::new(0),
            done: false,
        }));
    }

    /// True if `id` is being compacted or waits compacted (it must not be recycled meanwhile).
    pub(super) fn is_compacting(&self, id: u32) -> bool {
        self.compaction.as_ref().is_some_and(|c| c.id == id)
    }

    /// Forgets compaction state for segment `id` (it is being freed or reset).
    pub(super) fn drop_compaction_of(&mut self, id: u32) {
        if self.is_compacting(id) {
            self.compaction = None;
        }
    }

    /// Advances the compaction in progress by about `max_items` items (a few more if needed to
    /// reach a pause point). Returns true when it is done (or there is none).
    pub(super) fn compact_step(&mut self, max_items: usize, now: u32) -> bool {
        let Some(mut c) = self.compaction.take() else {
            return true;
        };
        if c.done {
            self.compaction = Some(c);
            return true;
        }
        let id = c.id;
        // Items move: a paused walk elsewhere (`maintain`) must restart this segment.
        let seg = self.segs.get_mut(id);
        seg.version = seg.version.wrapping_add(1);
        let mut budget = max_items;
        loop {
            if budget == 0 {
                // Pause where the gap can hold a filler item (0 or ≥ MIN_FILLER bytes).
                let gap = c.walk.frontier() - c.w;
                if gap == 0 || gap >= MIN_FILLER {
                    if gap > 0 {
                        write_filler(&mut self.segs.get_mut(id).data[c.w..], gap);
                    }
                    break;
                }
            }
            let Some((r, h)) = c.walk.next(self, id) else {
                self.compact_finish(&mut c);
                break;
            };
            budget = budget.saturating_sub(1);
            self.compact_item(&mut c, r, h, now);
        }
        let done = c.done;
        self.compaction = Some(c);
        done
    }

    fn compact_finish(&mut self, c: &mut Compaction) {
        let seg = self.segs.get_mut(c.id);
        let first_unused = if c.write_page == usize::MAX {
            0
        } else {
            c.write_page + 1
        };
        for b in seg.page_base.iter_mut().skip(first_unused) {
            *b = UNSET;
        }
        seg.len = c.w as u32;
        seg.version = seg.version.wrapping_add(1);
        c.done = true;
    }

    /// Keeps, evicts or drops the item at offset `r` (key hash `h`).
    fn compact_item(&mut self, c: &mut Compaction, r: usize, h: u64, now: u32) {
        let id = c.id;
        let seg = self.segs.get(id);
        let v = View::decode(&seg.data[r..seg.len as usize]);
        if v.bits & DEAD != 0 {
            return; // died after the walker saw it; already accounted
        }
        let len = v.len();
        let kv = v.key_len + v.value_len;
        let rp = Segment::page_of(r);
        if rp != c.read_page {
            c.read_page = rp;
            c.read_base = seg.page_base[rp];
        }
        let Some(slot) = self.index.find_loc(h, self.segs.addr(id, r)) else {
            debug_assert!(false, "live item without index entry");
            self.drop_live(id, len, kv);
            return;
        };
        if is_expired(v.exptime, now) {
            self.index.remove(slot);
            self.note_expired(v.bits);
            self.drop_live(id, len, kv);
            return;
        }
        let freq = self.index.freq(slot);
        let counter = match v.cas {
            CasField::Delta(d) => Some(c.read_base.wrapping_add(d)),
            CasField::Abs(_) => None,
        };
        let wp = Segment::page_of(c.w);
        // Entering a new write page: keep its base if the reader is still in it (unread items
        // there need it), else start it afresh.
        let base = if wp == c.write_page || wp == rp {
            seg.page_base[wp]
        } else {
            UNSET
        };
        let cas = match counter {
            Some(n) => {
                let b = if base == UNSET { n } else { base };
                if n >= b {
                    CasField::Delta(n - b)
                } else {
                    CasField::Abs(self.cas.cas_of(n))
                }
            }
            None => v.cas,
        };
        let header = Header {
            bits: v.bits & META_BITS,
            access: v.access,
            exptime: v.exptime,
            force_exp: v.bits & HAS_EXP != 0,
            key_len: v.key_len,
            value_len: v.value_len,
            cas,
            flags: v.flags,
        };
        let new_len = header.item_len();
        // `w + new_len <= r + len`: the re-encoded item (its CAS delta may grow against the new
        // page base) must not overrun unread items.
        if freq == 0 || c.kept() + new_len > c.keep || c.w + new_len > r + len {
            self.index.remove(slot);
            self.note_evicted(v.bits);
            self.drop_live(id, len, kv);
            return;
        }
        let w = c.w;
        self.index.set_loc(slot, self.segs.addr(id, w), freq - 1);
        let seg = self.segs.get_mut(id);
        if wp != c.write_page {
            c.write_page = wp;
            if wp != rp {
                seg.page_base[wp] = UNSET;
            }
        }
        if let Some(n) = counter {
            if seg.page_base[wp] == UNSET {
                seg.page_base[wp] = n;
            }
        }
        // Destinations never pass their sources: key first (its source lies before the value),
        // then value, then the header around them.
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
        seg.live_bytes = seg.live_bytes + new_len as u32 - len as u32;
        self.live.bytes = self.live.bytes + new_len as u64 - len as u64;
        c.w += new_len;
    }

    /// An item of segment `id` left without being kept: update segment and store totals.
    fn drop_live(&mut self, id: u32, len: usize, kv: usize) {
        let seg = self.segs.get_mut(id);
        seg.live_items -= 1;
        seg.live_bytes -= len as u32;
        self.forget_live(len, kv);
    }
}

impl Compaction {
    /// Bytes kept so far (survivors are packed from offset 0).
    fn kept(&self) -> usize {
        self.w
    }

    /// Bytes of the segment (of length `len`) not yet examined.
    pub fn remaining(&self, len: usize) -> usize {
        len.saturating_sub(self.walk.frontier())
    }
}
