//! The per-shard storage engine: one [`Store`] per core, single-threaded (`&mut self`), no
//! locks, no I/O, no async, no `unsafe`.
//!
//! Design (Segcache-like log, NSDI'21 "Segcache"):
//!
//! * **Items** ([`item`](self::item)) are packed back to back in 1 MiB segments
//!   ([`segment`](self::segment)) with a variable header, 6 bytes for a typical item (flags and
//!   exptime only when non-zero, CAS as a 1-byte delta against a per-page base).
//! * **Index** ([`index`](self::index)): 8-byte slots (fingerprint | 2-bit access counter |
//!   location) in bucketized cuckoo sub-tables under an extendible-hashing directory; loads of
//!   80–95 %, ≈ 9 B/item; growth is in 12.5 % steps of one 64 KiB sub-table and never reads
//!   item memory.
//! * **Eviction** ([`evict`](self::evict), [`compact`](self::compact)): segments form a FIFO;
//!   the oldest is compacted in place (items read since they were last examined survive,
//!   CLOCK-style, up to 75 % of the segment; the rest are evicted) and becomes the write head.
//!   Once the store is full, each set advances that compaction by a few items, so eviction is
//!   spread over sets rather than one stall per segment. No spare segment is ever needed, so a
//!   2 MiB store holds 1 MiB items.
//! * **Expiry** ([`expiry`](self::expiry)): lazy on access plus a bounded incremental `maintain`
//!   walk; emptied segments are reused before anything is evicted. `flush_all` empties the store
//!   in O(segments).
//! * **CAS** ([`cas`](self::cas)): per-shard counter interleaved across shards
//!   (`counter * num_shards + shard_id + 1`), stored with the item, so touch and compaction never
//!   change it.
//! * **Memory bound**: segments + index + bookkeeping ≤ `memory_limit`; a growth reserve of about
//!   one index sub-table stays free so index growth never forces a synchronous eviction.
//! * **Warm restart** ([`image`](self::image)): a store's live items in FIFO order to an image
//!   (over `Write`, with CRC-32 blocks) and back through the ordinary write path, CAS, flags,
//!   expiry and meta bits kept; the runtime does the files.
//! * **Plans across cores** ([`budget`](self::budget)): with a shared [`Budget`], `memory_limit`
//!   is a lease taken from the cache's plan in segment-sized chunks where the store would
//!   otherwise evict, and given back on flush, drop, `maintain` and plan cuts.
//!
//! Per-item overhead for 16 B keys + 32 B values at 1M items: ≈ 15.4 bytes (memcached: ~59).

use std::sync::Arc;

mod budget;
mod cas;
mod compact;
mod evict;
mod expiry;
mod image;
mod index;
mod item;
mod scan;
mod segment;
mod store;

pub use budget::Budget;
pub use image::{
    verify as verify_image, Block, FileInfo, ImageError, ImageItem, ImageReader, ImageWriter,
    Manifest, IMAGE_VERSION,
};
pub use scan::PrefixWalk;
pub(crate) use store::hash_key;
pub use store::Store;

/// Static configuration of one shard's store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Hard bound on the bytes the store allocates for items and index together. Ignored when
    /// `budget` is set.
    pub memory_limit: usize,
    /// The cache's memory plan, shared by its stores on all cores (`budget.rs`). None: the
    /// store is bounded by `memory_limit` alone. With a budget the store starts with nothing and
    /// leases memory from the plan as it grows, so the stores together stay within the plan.
    pub budget: Option<Arc<Budget>>,
    /// memcached `-I`: an item with `key.len() + value.len() + 50 > item_size_max` is refused.
    /// Clamped to 1 GiB.
    pub item_size_max: usize,
    /// This shard's id, `< num_shards` (folded into CAS values so they are unique across cores).
    pub shard_id: u32,
    /// Number of shards in the process (0 is treated as 1).
    pub num_shards: u32,
}

/// Why a store was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The item exceeds `item_size_max` (or the key exceeds 250 bytes).
    TooLarge,
    /// The item can never fit in this store's memory budget.
    NoMemory,
}

/// A borrowed view of a stored item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemRef<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub flags: u32,
    pub cas: u64,
    /// 0 = never expires, else absolute time in the store's clock.
    pub exptime: u32,
    /// Last access time (approximate, seconds, store clock). For `get`, the time of the
    /// previous access (or of the store), not of this one.
    pub last_access: u32,
    /// Has been fetched since stored. For `get`, whether it had been before this access.
    pub fetched: bool,
    pub stale: bool,
    pub win: bool,
}

/// Counters in memcached's naming.
#[derive(Debug, Clone, Default)]
pub struct StoreStats {
    pub curr_items: u64,
    pub total_items: u64,
    /// Sum of key + value + header bytes of live items (memcached `bytes`).
    pub bytes: u64,
    pub limit_maxbytes: u64,
    pub evictions: u64,
    pub evicted_unfetched: u64,
    pub expired_unfetched: u64,
    pub reclaimed: u64,
    /// Everything allocated: segments, index, bookkeeping.
    pub mem_used: u64,
    pub get_expired: u64,
    /// Always 0: flush_all drops items at once rather than hiding them lazily, so a get never
    /// finds a flushed item.
    pub get_flushed: u64,
}

/// How far `mem_used` may exceed `memory_limit`: one index sub-table growth step that had to
/// happen with nothing left to evict, or after the new item was already written (a cuckoo insert
/// found no path, which is rare). Otherwise the store stays within the limit.
pub const MEMORY_SLACK: usize = index::MAX_GROWTH_BYTES;

#[cfg(test)]
mod lease_tests;
#[cfg(test)]
mod tests;
