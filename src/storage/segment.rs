//! Segments: the item memory. Items are appended back to back (no alignment, no per-item
//! allocation) into large fixed-capacity buffers, which are kept in FIFO order (oldest first,
//! the last one is the write head).
//!
//! Why segments rather than `Box<[u8]>` per item or memcached-style slab classes: one allocation
//! per ~1 MiB instead of per item (no allocator overhead, no fragmentation, no slab
//! calcification), exact accounting against the memory bound, and eviction works on whole
//! regions of memory so it can always free contiguous room for the largest item.
//!
//! An item's *address* is `segment id << shift | byte offset`, with `1 << shift` the full segment
//! size; it fits the index's 37-bit location field (128 GiB per shard).

use std::collections::VecDeque;

use super::index::LOC_MASK;

/// Segments keep one base CAS counter per page of this many bytes, so the per-item CAS field is
/// a small delta (usually one byte).
pub(crate) const PAGE_SIZE: usize = 4096;
const PAGE_SHIFT: u32 = PAGE_SIZE.trailing_zeros();
/// Page base not set yet (no counter-CAS item starts in that page).
pub(crate) const UNSET: u64 = u64::MAX;
/// Smallest partial segment worth allocating when the budget left is less than a full segment.
pub(crate) const MIN_SEGMENT: usize = 16 * 1024;
/// Smallest full segment size; larger if `item_size_max` needs it.
pub(crate) const DEFAULT_SEGMENT: usize = 1 << 20;

/// One segment.
pub(crate) struct Segment {
    pub data: Box<[u8]>,
    /// Base CAS counter per page (`UNSET` where no counter-CAS item starts yet).
    pub page_base: Box<[u64]>,
    /// Append offset: bytes `[0, len)` hold items, live or dead.
    pub len: u32,
    pub live_items: u32,
    /// Bytes of live items (header + key + value).
    pub live_bytes: u32,
    /// Item `access` fields are seconds since this time.
    pub time_base: u32,
    /// Bumped whenever items move or the segment is reset, so a paused walk knows its offset
    /// is stale.
    pub version: u32,
}

impl Segment {
    fn new(cap: usize, now: u32) -> Segment {
        Segment {
            // vec![0; n] is calloc: untouched pages cost no RSS.
            data: vec![0u8; cap].into_boxed_slice(),
            page_base: vec![UNSET; cap.div_ceil(PAGE_SIZE)].into_boxed_slice(),
            len: 0,
            live_items: 0,
            live_bytes: 0,
            time_base: now,
            version: 0,
        }
    }

    /// Heap bytes a segment of capacity `cap` costs (data + page bases).
    pub fn cost(cap: usize) -> usize {
        cap + cap.div_ceil(PAGE_SIZE) * 8
    }

    /// Largest capacity (page multiple) whose `cost` fits in `bytes`.
    pub fn cap_for_budget(bytes: usize) -> usize {
        let pages = bytes / (PAGE_SIZE + 8);
        pages * PAGE_SIZE
    }

    #[inline]
    pub fn cap(&self) -> usize {
        self.data.len()
    }

    #[inline]
    pub fn free(&self) -> usize {
        self.cap() - self.len as usize
    }

    /// Empties the segment for reuse.
    pub fn reset(&mut self, now: u32) {
        self.len = 0;
        self.live_items = 0;
        self.live_bytes = 0;
        self.time_base = now;
        self.version = self.version.wrapping_add(1);
        self.page_base.fill(UNSET);
    }

    #[inline]
    pub fn page_of(off: usize) -> usize {
        off >> PAGE_SHIFT
    }

    /// `access` field value for absolute time `t` (saturating).
    #[inline]
    pub fn access_delta(&self, t: u32) -> u16 {
        Self::access_delta_from(self.time_base, t)
    }

    /// `access` field value for absolute time `t` against `base` (saturating).
    #[inline]
    pub fn access_delta_from(base: u32, t: u32) -> u16 {
        t.saturating_sub(base).min(u16::MAX as u32) as u16
    }

    #[inline]
    pub fn access_time(&self, delta: u16) -> u32 {
        self.time_base.saturating_add(delta as u32)
    }
}

/// All segments of one store.
pub(crate) struct Segments {
    slots: Vec<Option<Segment>>,
    free_ids: Vec<u32>,
    /// Segments holding items, oldest first; the back is the write head.
    fifo: VecDeque<u32>,
    /// Allocated, empty segments not in the FIFO, reused before allocating.
    pool: Vec<u32>,
    /// Sum of `Segment::cost` over allocated segments.
    data_bytes: usize,
    shift: u32,
}

impl Segments {
    /// `seg_size` must be a power of two.
    pub fn new(seg_size: usize) -> Segments {
        debug_assert!(seg_size.is_power_of_two());
        Segments {
            slots: Vec::new(),
            free_ids: Vec::new(),
            fifo: VecDeque::new(),
            pool: Vec::new(),
            data_bytes: 0,
            shift: seg_size.trailing_zeros(),
        }
    }

    /// Bytes of segment memory (data + page bases), without bookkeeping vectors.
    pub fn data_bytes(&self) -> usize {
        self.data_bytes
    }

    /// Full segment size.
    #[inline]
    pub fn seg_size(&self) -> usize {
        1 << self.shift
    }

    /// Heap bytes owned, including bookkeeping vectors.
    pub fn bytes(&self) -> usize {
        self.data_bytes
            + self.slots.capacity() * std::mem::size_of::<Option<Segment>>()
            + self.free_ids.capacity() * 4
            + self.fifo.capacity() * 4
            + self.pool.capacity() * 4
    }

    /// Segment ids that fit in an index location.
    fn max_segments(&self) -> usize {
        ((LOC_MASK >> self.shift) + 1) as usize
    }

    /// Bookkeeping bytes that allocating one more segment may add (vector growth), so budget
    /// checks stay conservative.
    pub fn alloc_overhead(&self) -> usize {
        let grow = |len: usize, cap: usize, elem: usize| {
            if len < cap {
                0
            } else {
                cap.max(4) * elem
            }
        };
        grow(
            self.slots.len(),
            self.slots.capacity(),
            std::mem::size_of::<Option<Segment>>(),
        ) + grow(self.fifo.len(), self.fifo.capacity(), 4)
            + grow(self.pool.len(), self.pool.capacity(), 4)
    }

    #[inline]
    pub fn addr(&self, id: u32, off: usize) -> u64 {
        ((id as u64) << self.shift) | off as u64
    }

    #[inline]
    pub fn split(&self, addr: u64) -> (u32, usize) {
        (
            (addr >> self.shift) as u32,
            (addr & ((1 << self.shift) - 1)) as usize,
        )
    }

    #[inline]
    pub fn get(&self, id: u32) -> &Segment {
        self.slots[id as usize].as_ref().expect("live segment id")
    }

    #[inline]
    pub fn get_mut(&mut self, id: u32) -> &mut Segment {
        self.slots[id as usize].as_mut().expect("live segment id")
    }

    /// Two distinct segments, mutably (for copying an item between them).
    pub fn pair_mut(&mut self, a: u32, b: u32) -> (&mut Segment, &mut Segment) {
        debug_assert_ne!(a, b);
        let (a, b) = (a as usize, b as usize);
        if a < b {
            let (x, y) = self.slots.split_at_mut(b);
            (x[a].as_mut().expect("live"), y[0].as_mut().expect("live"))
        } else {
            let (x, y) = self.slots.split_at_mut(a);
            (y[0].as_mut().expect("live"), x[b].as_mut().expect("live"))
        }
    }

    /// The bytes of the item at `addr` up to the segment's append offset.
    #[inline]
    pub fn item(&self, addr: u64) -> &[u8] {
        let (id, off) = self.split(addr);
        let seg = self.get(id);
        &seg.data[off..seg.len as usize]
    }

    #[inline]
    pub fn head(&self) -> Option<u32> {
        self.fifo.back().copied()
    }

    #[inline]
    pub fn oldest(&self) -> Option<u32> {
        self.fifo.front().copied()
    }

    /// Ids of segments in the FIFO, oldest first.
    pub fn fifo_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.fifo.iter().copied()
    }

    /// Number of id slots (for walking all segments by id).
    pub fn id_limit(&self) -> u32 {
        self.slots.len() as u32
    }

    pub fn is_live(&self, id: u32) -> bool {
        self.slots.get(id as usize).is_some_and(|s| s.is_some())
    }

    /// Allocates a segment of capacity `cap` and makes it the write head.
    /// Returns None when no segment id is left.
    pub fn alloc_head(&mut self, cap: usize, now: u32) -> Option<u32> {
        let id = match self.free_ids.pop() {
            Some(id) => id,
            None => {
                if self.slots.len() >= self.max_segments() {
                    return None;
                }
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        self.slots[id as usize] = Some(Segment::new(cap, now));
        self.data_bytes += Segment::cost(cap);
        self.fifo.push_back(id);
        Some(id)
    }

    /// Takes a pooled segment with capacity ≥ `n`, resets it and makes it the write head.
    pub fn reuse_pooled(&mut self, n: usize, now: u32) -> Option<u32> {
        let i = self.pool.iter().position(|&id| self.get(id).cap() >= n)?;
        let id = self.pool.swap_remove(i);
        self.get_mut(id).reset(now);
        self.fifo.push_back(id);
        Some(id)
    }

    /// Frees one pooled segment (to make budget); prefers the smallest.
    pub fn free_one_pooled(&mut self) -> bool {
        let Some(i) = (0..self.pool.len()).min_by_key(|&i| self.get(self.pool[i]).cap()) else {
            return false;
        };
        let id = self.pool.swap_remove(i);
        self.dealloc(id);
        true
    }

    /// Frees a pooled segment smaller than `n`, if any (it can never hold such an item).
    pub fn free_small_pooled(&mut self, n: usize) -> bool {
        let Some(i) = self.pool.iter().position(|&id| self.get(id).cap() < n) else {
            return false;
        };
        let id = self.pool.swap_remove(i);
        self.dealloc(id);
        true
    }

    /// Removes `id` from the FIFO and frees its memory. The caller has dropped its items.
    pub fn free(&mut self, id: u32) {
        self.unlink(id);
        self.dealloc(id);
    }

    /// Shrinks segment `id` to `new_cap` bytes (a page multiple ≥ its `len`), returning the
    /// difference to the budget. `realloc` shrinks in place, so this never needs the old and new
    /// buffers at once.
    pub fn shrink(&mut self, id: u32, new_cap: usize) {
        let seg = self.get_mut(id);
        let old_cap = seg.cap();
        debug_assert!(new_cap >= seg.len as usize && new_cap <= old_cap);
        let mut data = std::mem::take(&mut seg.data).into_vec();
        data.truncate(new_cap);
        data.shrink_to_fit();
        seg.data = data.into_boxed_slice();
        let mut pages = std::mem::take(&mut seg.page_base).into_vec();
        pages.truncate(new_cap.div_ceil(PAGE_SIZE));
        pages.shrink_to_fit();
        seg.page_base = pages.into_boxed_slice();
        seg.version = seg.version.wrapping_add(1);
        self.data_bytes = self.data_bytes - Segment::cost(old_cap) + Segment::cost(new_cap);
    }

    /// True when an empty segment is waiting in the pool.
    pub fn has_pooled(&self) -> bool {
        !self.pool.is_empty()
    }

    /// True when no segment is allocated.
    pub fn is_empty(&self) -> bool {
        self.fifo.is_empty() && self.pool.is_empty()
    }

    /// Moves an emptied segment from the FIFO to the reuse pool.
    pub fn release_to_pool(&mut self, id: u32, now: u32) {
        self.unlink(id);
        self.get_mut(id).reset(now);
        self.pool.push(id);
    }

    /// Makes `id` (already in the FIFO) the write head, i.e. the youngest segment.
    pub fn move_to_back(&mut self, id: u32) {
        self.unlink(id);
        self.fifo.push_back(id);
    }

    /// Moves every FIFO segment to the pool, emptied (flush_all).
    pub fn reset_all(&mut self, now: u32) {
        while let Some(id) = self.fifo.pop_front() {
            self.get_mut(id).reset(now);
            self.pool.push(id);
        }
    }

    fn unlink(&mut self, id: u32) {
        // The oldest segment is the common case (eviction); others are rare (a segment emptied
        // by deletes/expiry), so a linear search is fine.
        if self.fifo.front() == Some(&id) {
            self.fifo.pop_front();
        } else if let Some(i) = self.fifo.iter().position(|&x| x == id) {
            self.fifo.remove(i);
        }
    }

    fn dealloc(&mut self, id: u32) {
        if let Some(seg) = self.slots[id as usize].take() {
            self.data_bytes -= Segment::cost(seg.cap());
            self.free_ids.push(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addressing_roundtrip() {
        let s = Segments::new(DEFAULT_SEGMENT);
        for (id, off) in [(0u32, 0usize), (1, 5), (12345, DEFAULT_SEGMENT - 1)] {
            let a = s.addr(id, off);
            assert!(a <= LOC_MASK);
            assert_eq!(s.split(a), (id, off));
        }
        assert_eq!(s.max_segments(), 1 << 17); // 128 GiB of 1 MiB segments
    }

    #[test]
    fn alloc_pool_free_accounting() {
        let mut s = Segments::new(DEFAULT_SEGMENT);
        assert_eq!(s.bytes(), 0);
        let a = s.alloc_head(DEFAULT_SEGMENT, 10).unwrap();
        let b = s.alloc_head(64 * 1024, 10).unwrap();
        assert_eq!(s.head(), Some(b));
        assert_eq!(s.oldest(), Some(a));
        assert_eq!(
            s.data_bytes,
            Segment::cost(DEFAULT_SEGMENT) + Segment::cost(64 * 1024)
        );
        s.move_to_back(a);
        assert_eq!(s.head(), Some(a));
        assert_eq!(s.oldest(), Some(b));
        s.release_to_pool(b, 11);
        assert_eq!(s.fifo_ids().count(), 1);
        assert!(s.reuse_pooled(DEFAULT_SEGMENT, 12).is_none());
        assert_eq!(s.reuse_pooled(1000, 12), Some(b));
        assert_eq!(s.head(), Some(b));
        s.free(a);
        s.free(b);
        assert_eq!(s.data_bytes, 0);
        // Ids are reused.
        assert!(s.alloc_head(MIN_SEGMENT, 0).unwrap() < 2);
    }

    #[test]
    fn cap_for_budget_fits() {
        for bytes in [0usize, 4095, 4104, 100_000, 1 << 20, 3 << 20] {
            let cap = Segment::cap_for_budget(bytes);
            assert!(Segment::cost(cap) <= bytes);
            assert_eq!(cap % PAGE_SIZE, 0);
        }
    }

    #[test]
    fn access_delta_saturates() {
        let mut seg = Segment::new(PAGE_SIZE, 100);
        assert_eq!(seg.access_delta(50), 0);
        assert_eq!(seg.access_delta(105), 5);
        assert_eq!(seg.access_delta(u32::MAX), u16::MAX);
        assert_eq!(seg.access_time(5), 105);
        seg.reset(200);
        assert_eq!(seg.access_time(0), 200);
        assert_eq!(seg.version, 1);
    }
}
