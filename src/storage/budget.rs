//! Per-cache memory plans enforced across cores with leases.
//!
//! A cache has one [`Budget`] (its plan, in bytes) shared by its stores on all cores. Each store
//! holds a *lease*: its `limit`, taken from the budget in chunks. The hot path never touches the
//! budget: a store reaches for it only where it would otherwise have to evict or refuse (about
//! once per segment allocated, or when the index must grow past its reserve), and in
//! `maintain`/flush to give lease back. So a set costs no shared atomic, and the sum of the
//! stores' limits never exceeds the plan (`grab` never over-leases).
//!
//! Chunking: a store leases one *allocation segment* at a time — what allocating its next
//! segment needs, no more — and budgeted stores allocate segments of
//! `plan / (32 · num_shards)` bytes, clamped to [64 KiB, segment size]. Why that size: when
//! the plan runs out, every other core's write head is partly empty (half a segment on average)
//! and that memory is leased but holds nothing, so small plans need small segments for the cache
//! to fill; 1/32 of a core's fair share caps that waste at about 1/64 of the plan in total. The
//! 64 KiB floor keeps pool traffic rare and items of tens of KiB fitting, and full 1 MiB segments
//! are used from a 64 MiB plan up (on two cores). As the pool drains, segments taper to
//! `(plan − leased) / num_shards` (at least 16 KiB), so the heads left partly empty when it runs
//! out are small. Segment tails a growing store leaves unused are trimmed off
//! (`trim_closed_head`), so small segments do not waste more at their ends.
//!
//! Giving back: a flush frees everything and returns the whole lease; `maintain` frees empty
//! segments and returns lease beyond one spare segment (so memory freed by deletes and expiry
//! can move to another core), and when the plan was lowered below what is leased, shrinks the
//! store by its share of the excess (evicting as needed). A dropped store returns its lease.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::segment::{Segment, Segments, MIN_SEGMENT, PAGE_SIZE};
use super::store::Store;

/// A cache's memory plan and how much of it its stores have leased. Shared as `Arc<Budget>`.
#[derive(Debug)]
pub struct Budget {
    plan: AtomicUsize,
    leased: AtomicUsize,
    /// The latest lowering of the plan below what was leased: generation (high 32 bits) and
    /// `plan / leased` then, as a 32-bit fraction (low 32 bits). Each store scales its lease by
    /// it once per generation, so all shrink in proportion and one `maintain` round each brings
    /// the total within the plan (shares of a shrinking excess would converge only slowly, and
    /// make the first stores to run give the most).
    shrink: AtomicU64,
}

impl Budget {
    pub fn new(plan: usize) -> Budget {
        Budget {
            plan: AtomicUsize::new(plan),
            leased: AtomicUsize::new(0),
            shrink: AtomicU64::new(0),
        }
    }

    /// The plan: the most bytes all of the cache's stores together may allocate.
    pub fn plan(&self) -> usize {
        self.plan.load(Ordering::Relaxed)
    }

    /// Bytes currently leased to stores (can exceed the plan right after it was lowered, until
    /// the stores' `maintain` gives the excess back).
    pub fn leased(&self) -> usize {
        self.leased.load(Ordering::Relaxed)
    }

    /// Changes the plan. Raising it lets stores grow at their next lease; lowering it makes
    /// each store shrink by its share of the excess at its next `maintain`.
    pub fn set_plan(&self, bytes: usize) {
        self.plan.store(bytes, Ordering::SeqCst);
        // Leases can only shrink from here while over the plan (no grab succeeds), so scaling
        // every store's current lease by `plan / leased` lands within the plan.
        let leased = self.leased.load(Ordering::SeqCst);
        if leased > bytes {
            let frac = ((bytes as u128) << 32) / leased as u128;
            let gen = (self.shrink.load(Ordering::Relaxed) >> 32).wrapping_add(1) & 0xffff_ffff;
            self.shrink.store(gen << 32 | frac as u64, Ordering::SeqCst);
        }
    }

    /// Generation and fraction (of 2^32) of the latest lowering.
    pub(super) fn shrink(&self) -> (u32, u64) {
        let v = self.shrink.load(Ordering::SeqCst);
        ((v >> 32) as u32, v & 0xffff_ffff)
    }

    /// Leases up to `want` bytes: grants `min(want, plan − leased)`, possibly 0. Never takes the
    /// total leased above the plan.
    pub fn grab(&self, want: usize) -> usize {
        let mut cur = self.leased.load(Ordering::Relaxed);
        loop {
            let got = want.min(self.plan().saturating_sub(cur));
            if got == 0 {
                return 0;
            }
            match self.leased.compare_exchange_weak(
                cur,
                cur + got,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return got,
                Err(now) => cur = now,
            }
        }
    }

    /// Returns `n` leased bytes to the pool.
    pub fn release(&self, n: usize) {
        if n > 0 {
            let prev = self.leased.fetch_sub(n, Ordering::Relaxed);
            debug_assert!(prev >= n, "released more than was leased");
        }
    }
}

/// Smallest segment a budgeted store allocates while the pool has more (smaller pieces would
/// mean more pool traffic and more segment tails).
const MIN_ALLOC: usize = 64 * 1024;
/// Granularity of trimmed segment tails (the allocator's, roughly: finer than a page so that
/// many small segments do not each waste half a page of the plan).
const TRIM_GRAIN: usize = 64;

/// Segment capacity budgeted stores allocate (see the module docs).
fn alloc_segment(plan: usize, num_shards: usize, seg_size: usize) -> usize {
    let share = plan / (32 * num_shards.max(1));
    share.clamp(MIN_ALLOC, seg_size) / PAGE_SIZE * PAGE_SIZE
}

impl Store {
    /// A budgeted store's next segment is at most as large as the segment memory it already
    /// holds (at least `MIN_SEGMENT`): a cache holding a few small items then costs a 16 KiB
    /// segment, not a full one, and a filling cache still reaches full segments after a few
    /// doublings. Thousands of mostly idle caches per server make this matter.
    fn ramped(&self, cap: usize) -> usize {
        let held = self.segs.data_bytes().max(MIN_SEGMENT);
        cap.min(held.next_multiple_of(PAGE_SIZE))
    }

    /// Leases up to `want` more bytes (rounded up to a page) and raises the limit by what was
    /// granted. Returns the grant; 0 for a store without a budget.
    pub(super) fn lease_more(&mut self, want: usize) -> usize {
        let Some(b) = &self.budget else { return 0 };
        let want = want.next_multiple_of(PAGE_SIZE);
        let got = b.grab(want);
        self.limit += got;
        self.pool_dry = got < want;
        self.seg_cap = self.ramped(alloc_segment(
            b.plan(),
            self.num_shards,
            self.segs.seg_size(),
        ));
        got
    }

    /// Returns `n` bytes of lease (the caller has made the store fit `limit − n`).
    fn lease_less(&mut self, n: usize) {
        let n = n.min(self.limit);
        if let Some(b) = &self.budget {
            b.release(n);
            self.limit -= n;
        }
    }

    /// Budgeted stores: leases what allocating a segment for an item of `n` bytes needs (a full
    /// allocation segment if the pool has it, else what is left). True if a segment for the
    /// item is now affordable.
    pub(super) fn lease_segment(&mut self, n: usize) -> bool {
        if self.budget.is_none() {
            return false;
        }
        // As the pool drains, lease smaller segments (down to the smallest the store allocates
        // at all): when it runs out, the other cores' write heads (leased, partly empty) are
        // then small, so the plan fills.
        let left = self
            .budget
            .as_ref()
            .map_or(0, |b| b.plan().saturating_sub(b.leased()));
        let taper = (left / self.num_shards).max(MIN_SEGMENT) / PAGE_SIZE * PAGE_SIZE;
        let cap = self.seg_cap.min(taper).max(n.next_multiple_of(PAGE_SIZE));
        let need = Segment::cost(cap)
            + self.segs.alloc_overhead()
            + self.mem_used()
            + self.index.growth_reserve();
        let want = need.saturating_sub(self.limit).max(PAGE_SIZE);
        self.lease_more(want) > 0 && self.affordable_segment(n).is_some()
    }

    /// Budgeted stores: leases what storing an item of `n` bytes needs at all (the room a new,
    /// empty store must have). True if it now fits.
    pub(super) fn lease_item_room(&mut self, n: usize) -> bool {
        if self.budget.is_none() {
            return false;
        }
        let fixed = self.index.bytes() + self.segs.bytes() - self.segs.data_bytes();
        let need = Segment::cost(n.next_multiple_of(PAGE_SIZE))
            + fixed
            + self.segs.alloc_overhead()
            + 64
            + self.index.growth_reserve();
        let want = need.saturating_sub(self.limit);
        self.lease_more(want) > 0 && n <= self.max_item_room()
    }

    /// Budgeted stores growing their lease: cuts the unused tail off the write head that an
    /// item of `n` bytes just did not fit, since it will never be written and would otherwise
    /// hold lease another core could use.
    pub(super) fn trim_closed_head(&mut self, n: usize) {
        if self.budget.is_none() || self.pool_dry {
            return;
        }
        let (Some(head), Some(oldest)) = (self.segs.head(), self.segs.oldest()) else {
            return;
        };
        let seg = self.segs.get(head);
        // The only segment stays whole: it is the one compaction would reuse in place.
        if head == oldest || seg.free() >= n || self.is_compacting(head) {
            return;
        }
        let new_cap = (seg.len as usize).next_multiple_of(TRIM_GRAIN);
        if new_cap < seg.cap() {
            self.segs.shrink(head, new_cap);
        }
    }

    /// Budgeted stores, from `maintain`: gives back the share of a lowered plan's excess, or
    /// the lease beyond one spare segment (freeing empty segments first).
    pub(super) fn maintain_lease(&mut self) {
        let Some(b) = &self.budget else { return };
        // A hosted cache that holds nothing (all deleted or expired) keeps no
        // segment or index either: with thousands of mostly idle caches per
        // core these, not items, would dominate memory. A pending delayed
        // flush must still see later items, so such a store is left alone.
        if self.live.items == 0 && self.pending_flush.is_none() && self.mem_used() > 0 {
            self.release_all();
            return;
        }
        let (plan, leased) = (b.plan(), b.leased());
        let (gen, frac) = b.shrink();
        if leased > plan {
            if gen != self.shrink_gen {
                self.shrink_gen = gen;
                let keep = ((self.limit as u128 * frac as u128) >> 32) as usize;
                let cut = self.limit - keep.min(self.limit);
                self.limit -= cut;
                self.enforce_budget(false);
                self.limit += cut;
                self.lease_less(cut);
            }
        } else {
            while self.segs.free_one_pooled() {}
            let keep = self.mem_used()
                + self.index.growth_reserve()
                + Segment::cost(self.seg_cap)
                + self.segs.alloc_overhead();
            let spare = self.limit.saturating_sub(keep) / PAGE_SIZE * PAGE_SIZE;
            self.lease_less(spare);
        }
        let Some(b) = &self.budget else { return };
        self.pool_dry = b.plan().saturating_sub(b.leased()) < MIN_SEGMENT;
        self.seg_cap = self.ramped(alloc_segment(
            b.plan(),
            self.num_shards,
            self.segs.seg_size(),
        ));
    }

    /// Budgeted stores, after a flush: frees every segment and returns the whole lease.
    pub(super) fn release_after_flush(&mut self) {
        if self.budget.is_none() {
            return;
        }
        self.segs = Segments::new(self.segs.seg_size());
        self.index.clear();
        self.lease_less(self.limit);
        self.pool_dry = false;
    }

    /// Budgeted stores: changes the lease to `bytes` (`set_memory_limit`): shrinking evicts as
    /// needed and returns the difference; growing leases what the pool has.
    pub(super) fn resize_lease(&mut self, bytes: usize) {
        if bytes < self.limit {
            let cut = self.limit - bytes;
            self.limit = bytes;
            self.enforce_budget(false);
            self.limit += cut;
            self.lease_less(cut);
        } else if bytes > self.limit {
            self.lease_more(bytes - self.limit);
        }
    }

    /// Empties the store and frees all its memory; a budgeted store also returns its whole
    /// lease (the cache is being deleted, or the core no longer serves it). The store stays
    /// usable and leases again on its next write.
    pub fn release_all(&mut self) {
        self.flush_now(self.now);
        self.segs = Segments::new(self.segs.seg_size());
        self.index.clear();
        self.lease_less(self.limit);
    }
}

impl Drop for Store {
    /// A dropped store's memory goes back to its cache's plan.
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.release(self.limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn grab_is_bounded_by_the_plan() {
        let b = Budget::new(1000);
        assert_eq!(b.grab(300), 300);
        assert_eq!(b.grab(800), 700, "takes what is left");
        assert_eq!(b.grab(1), 0);
        assert_eq!(b.leased(), 1000);
        b.release(500);
        assert_eq!(b.grab(10), 10);
        b.set_plan(200);
        assert_eq!(b.grab(10), 0, "nothing while over a lowered plan");
        b.set_plan(2000);
        assert_eq!(b.grab(10_000), 1490);
    }

    #[test]
    fn concurrent_grabs_never_over_lease() {
        let plan = 1 << 20;
        let b = Arc::new(Budget::new(plan));
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let b = b.clone();
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
                    for _ in 0..50_000 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        if !x.is_multiple_of(3) || held.is_empty() {
                            let got = b.grab((x % 70_000) as usize + 1);
                            assert!(b.leased() <= plan);
                            if got > 0 {
                                held.push(got);
                            }
                        } else {
                            let i = (x as usize / 3) % held.len();
                            b.release(held.swap_remove(i));
                        }
                    }
                    held.iter().sum::<usize>()
                })
            })
            .collect();
        let held: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(b.leased(), held);
        assert!(held <= plan);
    }
}
