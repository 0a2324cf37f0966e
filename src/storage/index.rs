//! The hash index: key hash → item location, 8 bytes per slot.
//!
//! Why not `hashbrown`: a `HashMap<Key, Loc>` costs 9 bytes per slot plus up to 2× growth slack
//! (≈ 18–36 B/item) and a full rehash doubles memory transiently, which breaks a hard memory
//! bound. This index stores one `u64` per item and keeps the load factor between ~0.8 and 0.95:
//!
//! * **Slot** = `fingerprint:25 | freq:2 | location:37`. The location is a segment address
//!   (`segment id << shift | byte offset`, see `segment.rs`; 128 GiB per shard); `freq` is the
//!   2-bit access counter
//!   the evictor uses for second chance (updating it on a hit touches a cache line the lookup
//!   already loaded); the fingerprint filters candidates so a lookup usually dereferences item
//!   memory only for the right key. An all-zero slot is empty (fingerprints are never 0).
//! * **Sub-table** = bucketized cuckoo hash table: 64-byte buckets of 8 slots (one cache line),
//!   each key has two candidate buckets, so a lookup (hit or miss) reads at most two lines. Both
//!   buckets derive from the fingerprint alone (`home(f)`, and `alt(b, f) = g(f) − b mod n`, an
//!   involution valid for any `n`), so displacing a slot or resizing a sub-table never needs the
//!   key. That lets sub-tables grow by 12.5 % instead of doubling, which keeps the load factor
//!   high (≈ 9 B/item on average) and makes resizes cheap (no item memory is touched).
//! * **Directory** (extendible hashing on the low fingerprint bits) over sub-tables capped at
//!   `MAX_BUCKETS` (64 KiB). A full sub-table splits in two by the next fingerprint bit, which
//!   the slot holds, so no growth step ever reads item memory (an earlier version hashed keys to
//!   split and stalled ~1 ms per split). Within a sub-table the low `depth` fingerprint bits are
//!   equal, so `MAX_DEPTH` keeps ≥ 10 bits for bucket choice and filtering. The transient extra
//!   memory of any growth step is at most about one sub-table.

/// Slots per bucket (one 64-byte cache line).
pub(crate) const SLOTS: usize = 8;
const LOC_BITS: u32 = 37;
/// Mask of the location part of a slot.
pub(crate) const LOC_MASK: u64 = (1 << LOC_BITS) - 1;
const FREQ_SHIFT: u32 = LOC_BITS;
const FREQ_MASK: u64 = 3 << FREQ_SHIFT;
/// Saturation value of the per-slot access counter.
pub(crate) const FREQ_MAX: u8 = 3;
const FP_SHIFT: u32 = LOC_BITS + 2;
/// A sub-table never grows beyond this many buckets (64 KiB); it splits instead.
pub(crate) const MAX_BUCKETS: usize = 1024;
/// Grow a sub-table when an insert would push its load above 95 %.
const MAX_LOAD_PCT: usize = 95;
/// Size freshly split halves for 80 % load.
const SPLIT_LOAD_PCT: usize = 80;
/// Directory depth cap: 32 K sub-tables (≈ 250 M items per shard) leave 10 fingerprint bits to
/// spread a sub-table's keys over its buckets; beyond it sub-tables just grow.
const MAX_DEPTH: u32 = 15;
/// BFS node budget for finding a cuckoo displacement path.
const MAX_NODES: usize = 256;
/// Bytes of one sub-table bucket array plus its bookkeeping: the most any single growth step can
/// allocate on top of the steady state (bigger halves after a skewed split are still < 2× this).
pub(crate) const MAX_GROWTH_BYTES: usize = 2 * MAX_BUCKETS * 64 + 4096;

const _: () = assert!(std::mem::size_of::<Bucket>() == 64);
const _: () = assert!(std::mem::align_of::<Bucket>() == 64);
const _: () = assert!(64 - FP_SHIFT >= MAX_DEPTH + 10);

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Bucket([u64; SLOTS]);

const EMPTY_BUCKET: Bucket = Bucket([0; SLOTS]);

struct Table {
    buckets: Box<[Bucket]>,
    count: u32,
    /// Local depth: this table owns every directory entry whose low `depth` bits match.
    depth: u32,
}

/// A slot position; valid until the next insert or growth (removals don't move slots).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotRef {
    table: u32,
    pos: u32,
}

/// The per-shard index. Empty until the first insert (no allocation for an unused store).
#[derive(Default)]
pub(crate) struct Index {
    dir: Vec<u32>,
    tables: Vec<Table>,
    global_depth: u32,
    count: usize,
    bucket_bytes: usize,
    /// Largest sub-table ever (buckets): bounds what one growth step can allocate.
    max_buckets_seen: usize,
}

#[inline]
fn fingerprint(h: u64) -> u64 {
    let f = h >> FP_SHIFT;
    f | (f == 0) as u64
}

#[inline]
fn reduce(x: u64, n: usize) -> usize {
    (((x >> 32) * n as u64) >> 32) as usize
}

#[inline]
fn home(f: u64, n: usize) -> usize {
    reduce(f.wrapping_mul(0x9E37_79B9_7F4A_7C15), n)
}

#[inline]
fn alt(b: usize, f: u64, n: usize) -> usize {
    let g = reduce(f.wrapping_mul(0xC2B2_AE3D_27D4_EB4F), n);
    if g >= b {
        g - b
    } else {
        g + n - b
    }
}

/// Bitmask of slots in `bucket` whose fingerprint is `f` (written so LLVM vectorizes it).
#[inline]
fn matches(bucket: &Bucket, f: u64) -> u32 {
    let mut m = 0u32;
    for (i, s) in bucket.0.iter().enumerate() {
        m |= ((s >> FP_SHIFT == f) as u32) << i;
    }
    m
}

#[inline]
fn empties(bucket: &Bucket) -> u32 {
    bucket.0.iter().map(|&s| (s == 0) as u32).sum()
}

#[inline]
fn empty_slot(bucket: &Bucket) -> Option<usize> {
    bucket.0.iter().position(|&s| s == 0)
}

#[derive(Clone, Copy, Default)]
struct Node {
    bucket: u32,
    parent: u16,
    slot: u8,
}
const ROOT: u16 = u16::MAX;

/// Places `entry` in one of its two buckets, displacing others along the shortest cuckoo path
/// found by a bounded BFS. Returns false (table unchanged) when no path exists within budget.
fn place(buckets: &mut [Bucket], entry: u64) -> bool {
    let n = buckets.len();
    let f = entry >> FP_SHIFT;
    let b1 = home(f, n);
    let b2 = alt(b1, f, n);
    // Two choices: the emptier bucket. Keeping buckets balanced makes "both full" (and the
    // displacement search with its extra cache misses) rare even at 95 % load.
    let (e1, e2) = (empties(&buckets[b1]), empties(&buckets[b2]));
    if e1 > 0 || e2 > 0 {
        let b = if e1 >= e2 { b1 } else { b2 };
        let i = empty_slot(&buckets[b]).unwrap_or(0);
        buckets[b].0[i] = entry;
        return true;
    }
    let mut nodes = [Node::default(); MAX_NODES];
    nodes[0] = Node {
        bucket: b1 as u32,
        parent: ROOT,
        slot: 0,
    };
    let mut len = 1;
    if b2 != b1 {
        nodes[1] = Node {
            bucket: b2 as u32,
            parent: ROOT,
            slot: 0,
        };
        len = 2;
    }
    let mut head = 0;
    while head < len {
        let b = nodes[head].bucket as usize;
        if head >= 2 {
            if let Some(e) = empty_slot(&buckets[b]) {
                execute_path(buckets, &nodes, head, e, entry);
                return true;
            }
        }
        for s in 0..SLOTS {
            if len == MAX_NODES {
                break;
            }
            let a = alt(b, buckets[b].0[s] >> FP_SHIFT, n);
            // A bucket may appear only once on a path, or a later move would carry the wrong
            // element into it.
            if a == b || on_path(&nodes, head, a) {
                continue;
            }
            nodes[len] = Node {
                bucket: a as u32,
                parent: head as u16,
                slot: s as u8,
            };
            len += 1;
            // Start loading the candidate now so the misses of one level overlap.
            std::hint::black_box(buckets[a].0[0]);
        }
        head += 1;
    }
    false
}

fn on_path(nodes: &[Node], mut idx: usize, bucket: usize) -> bool {
    loop {
        if nodes[idx].bucket as usize == bucket {
            return true;
        }
        if nodes[idx].parent == ROOT {
            return false;
        }
        idx = nodes[idx].parent as usize;
    }
}

/// Moves each element on the path one step towards the leaf's free slot, then stores `entry`
/// in the root's freed slot.
fn execute_path(
    buckets: &mut [Bucket],
    nodes: &[Node],
    mut idx: usize,
    mut free: usize,
    entry: u64,
) {
    loop {
        let node = nodes[idx];
        if node.parent == ROOT {
            buckets[node.bucket as usize].0[free] = entry;
            return;
        }
        let parent = nodes[node.parent as usize];
        buckets[node.bucket as usize].0[free] =
            buckets[parent.bucket as usize].0[node.slot as usize];
        free = node.slot as usize;
        idx = node.parent as usize;
    }
}

fn new_buckets(n: usize) -> Box<[Bucket]> {
    vec![EMPTY_BUCKET; n.max(1)].into_boxed_slice()
}

/// Rebuilds `entries` into a table of at least `n` buckets, growing until every entry places.
fn rebuild(entries: impl Iterator<Item = u64> + Clone, mut n: usize) -> Box<[Bucket]> {
    'retry: loop {
        let mut buckets = new_buckets(n);
        for e in entries.clone() {
            if !place(&mut buckets, e) {
                n = grown(n);
                continue 'retry;
            }
        }
        return buckets;
    }
}

#[inline]
fn grown(n: usize) -> usize {
    n + n / 8 + 1
}

fn buckets_for(count: usize, load_pct: usize) -> usize {
    (count * 100).div_ceil(SLOTS * load_pct).max(1)
}

impl Table {
    fn entries(&self) -> impl Iterator<Item = u64> + Clone + '_ {
        self.buckets.iter().flat_map(|b| b.0).filter(|&s| s != 0)
    }

    #[inline]
    fn full_after_insert(&self) -> bool {
        (self.count as usize + 1) * 100 > self.buckets.len() * SLOTS * MAX_LOAD_PCT
    }
}

impl Index {
    /// Number of entries.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.count
    }

    /// Heap bytes owned by the index.
    pub fn bytes(&self) -> usize {
        self.bucket_bytes
            + self.dir.capacity() * std::mem::size_of::<u32>()
            + self.tables.capacity() * std::mem::size_of::<Table>()
    }

    /// Memory to keep free so the next growth step never has to evict synchronously: a split of
    /// the largest sub-table (two halves ≈ 1.25× its size) plus a directory doubling.
    pub fn growth_reserve(&self) -> usize {
        if self.dir.is_empty() {
            return 256;
        }
        (self.max_buckets_seen * 64 * 5 / 4 + 2 * 64).min(MAX_GROWTH_BYTES) + self.dir.len() * 4
    }

    /// Drops everything (flush_all), returning all memory.
    pub fn clear(&mut self) {
        *self = Index::default();
    }

    /// Sub-table of fingerprint `f`.
    #[inline]
    fn table_of(&self, f: u64) -> usize {
        self.dir[(f as usize) & (self.dir.len() - 1)] as usize
    }

    /// Finds the slot whose fingerprint matches `h` and for which `is_key(location)` holds.
    #[inline]
    pub fn find(&self, h: u64, mut is_key: impl FnMut(u64) -> bool) -> Option<SlotRef> {
        if self.dir.is_empty() {
            return None;
        }
        let f = fingerprint(h);
        let t = self.table_of(f);
        let buckets = &self.tables[t].buckets;
        let n = buckets.len();
        let b1 = home(f, n);
        let b2 = alt(b1, f, n);
        // Both masks before any branch: the two cache-line loads overlap instead of the second
        // waiting for the first bucket's scan.
        let m1 = matches(&buckets[b1], f);
        let m2 = if b2 != b1 {
            matches(&buckets[b2], f)
        } else {
            0
        };
        for (b, mut m) in [(b1, m1), (b2, m2)] {
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                m &= m - 1;
                if is_key(buckets[b].0[i] & LOC_MASK) {
                    return Some(SlotRef {
                        table: t as u32,
                        pos: (b * SLOTS + i) as u32,
                    });
                }
            }
        }
        None
    }

    /// Loads the two candidate buckets of `h` into cache without using them, so a walk over many
    /// items can have their (independent) cache misses in flight together. Safe stand-in for a
    /// prefetch instruction: the loaded word is only passed to `black_box`.
    #[inline]
    pub fn touch(&self, h: u64) {
        if self.dir.is_empty() {
            return;
        }
        let f = fingerprint(h);
        let buckets = &self.tables[self.table_of(f)].buckets;
        let n = buckets.len();
        let b1 = home(f, n);
        std::hint::black_box(buckets[b1].0[0]);
        std::hint::black_box(buckets[alt(b1, f, n)].0[0]);
    }

    /// Finds the slot for the item of hash `h` stored at `loc` (segment walks).
    #[inline]
    pub fn find_loc(&self, h: u64, loc: u64) -> Option<SlotRef> {
        self.find(h, |l| l == loc)
    }

    #[inline]
    fn slot_mut(&mut self, r: SlotRef) -> &mut u64 {
        let pos = r.pos as usize;
        &mut self.tables[r.table as usize].buckets[pos / SLOTS].0[pos % SLOTS]
    }

    #[inline]
    fn slot(&self, r: SlotRef) -> u64 {
        let pos = r.pos as usize;
        self.tables[r.table as usize].buckets[pos / SLOTS].0[pos % SLOTS]
    }

    #[inline]
    pub fn loc(&self, r: SlotRef) -> u64 {
        self.slot(r) & LOC_MASK
    }

    #[inline]
    pub fn freq(&self, r: SlotRef) -> u8 {
        ((self.slot(r) & FREQ_MASK) >> FREQ_SHIFT) as u8
    }

    #[cfg(test)]
    pub fn set_freq(&mut self, r: SlotRef, freq: u8) {
        let s = self.slot_mut(r);
        *s = (*s & !FREQ_MASK) | ((freq.min(FREQ_MAX) as u64) << FREQ_SHIFT);
    }

    /// Records an access: saturating increment of the 2-bit counter.
    #[inline]
    pub fn bump_freq(&mut self, r: SlotRef) {
        let s = self.slot_mut(r);
        if *s & FREQ_MASK != FREQ_MASK {
            *s += 1 << FREQ_SHIFT;
        }
    }

    /// Points the slot at a new location (same key), setting its access counter.
    #[inline]
    pub fn set_loc(&mut self, r: SlotRef, loc: u64, freq: u8) {
        debug_assert!(loc <= LOC_MASK);
        let s = self.slot_mut(r);
        *s = (*s & !(LOC_MASK | FREQ_MASK)) | loc | ((freq.min(FREQ_MAX) as u64) << FREQ_SHIFT);
    }

    pub fn remove(&mut self, r: SlotRef) {
        *self.slot_mut(r) = 0;
        self.tables[r.table as usize].count -= 1;
        self.count -= 1;
    }

    /// Inserts a new entry (the key must not be present). Returns false when the sub-table has no
    /// room; call `grow` and retry. Never allocates.
    pub fn insert(&mut self, h: u64, loc: u64) -> bool {
        debug_assert!(loc <= LOC_MASK);
        if self.dir.is_empty() {
            return false;
        }
        let f = fingerprint(h);
        let t = self.table_of(f);
        let table = &mut self.tables[t];
        if table.full_after_insert() {
            return false;
        }
        if !place(&mut table.buckets, (f << FP_SHIFT) | loc) {
            return false;
        }
        table.count += 1;
        self.count += 1;
        true
    }

    /// Bytes the next `grow(h)` would allocate, if inserting `h` requires growth first.
    pub fn growth_needed(&self, h: u64) -> Option<usize> {
        if self.dir.is_empty() {
            return Some(64 + 64);
        }
        let table = &self.tables[self.table_of(fingerprint(h))];
        if !table.full_after_insert() {
            return None;
        }
        Some(self.growth_bytes(table))
    }

    fn growth_bytes(&self, table: &Table) -> usize {
        let n = table.buckets.len();
        if n >= MAX_BUCKETS && self.global_depth < MAX_DEPTH {
            let dir = if table.depth == self.global_depth {
                self.dir.len() * 4
            } else {
                0
            };
            (buckets_for(table.count as usize / 2, SPLIT_LOAD_PCT) * 2 + 2) * 64 + dir + 64
        } else {
            grown(n) * 64
        }
    }

    /// Makes room for at least one more entry in `h`'s sub-table: creates the first table,
    /// resizes the sub-table by 12.5 %, or splits a full-size one. Never reads item memory.
    pub fn grow(&mut self, h: u64) {
        if self.dir.is_empty() {
            self.dir.push(0);
            self.tables.push(Table {
                buckets: new_buckets(1),
                count: 0,
                depth: 0,
            });
            self.global_depth = 0;
            self.bucket_bytes = 64;
            self.max_buckets_seen = 1;
            return;
        }
        let t = self.table_of(fingerprint(h));
        let n = self.tables[t].buckets.len();
        if n >= MAX_BUCKETS && self.global_depth < MAX_DEPTH {
            self.split(t);
        } else {
            let table = &self.tables[t];
            let buckets = rebuild(table.entries(), grown(n));
            self.bucket_bytes = self.bucket_bytes - n * 64 + buckets.len() * 64;
            self.max_buckets_seen = self.max_buckets_seen.max(buckets.len());
            self.tables[t].buckets = buckets;
        }
    }

    fn split(&mut self, t: usize) {
        let depth = self.tables[t].depth;
        if depth == self.global_depth {
            self.dir.extend_from_within(..);
            self.global_depth += 1;
        }
        let old = &self.tables[t];
        let bit = |s: u64| (s >> (FP_SHIFT + depth)) & 1;
        let ones = old.entries().filter(|&s| bit(s) == 1).count();
        let count = old.count as usize;
        let pick = |want: u64| old.entries().filter(move |&s| bit(s) == want);
        let lo = rebuild(pick(0), buckets_for(count - ones, SPLIT_LOAD_PCT));
        let hi = rebuild(pick(1), buckets_for(ones, SPLIT_LOAD_PCT));
        self.bucket_bytes = self.bucket_bytes - old.buckets.len() * 64 + (lo.len() + hi.len()) * 64;
        self.max_buckets_seen = self.max_buckets_seen.max(lo.len()).max(hi.len());
        self.tables[t] = Table {
            buckets: lo,
            count: (count - ones) as u32,
            depth: depth + 1,
        };
        let new_t = self.tables.len() as u32;
        self.tables.push(Table {
            buckets: hi,
            count: ones as u32,
            depth: depth + 1,
        });
        for (i, d) in self.dir.iter_mut().enumerate() {
            if *d as usize == t && (i >> depth) & 1 == 1 {
                *d = new_t;
            }
        }
    }

    /// Average load factor (for tests and the overhead report).
    #[cfg(test)]
    pub fn load(&self) -> f64 {
        self.count as f64 / (self.bucket_bytes / 64 * SLOTS).max(1) as f64
    }

    /// Checks structural invariants (tests only).
    #[cfg(test)]
    pub fn check(&self, mut key_hash: impl FnMut(u64) -> u64) {
        let mut total = 0;
        for (t, table) in self.tables.iter().enumerate() {
            let n = table.buckets.len();
            let mut c = 0;
            for (b, bucket) in table.buckets.iter().enumerate() {
                for &s in &bucket.0 {
                    if s == 0 {
                        continue;
                    }
                    c += 1;
                    let h = key_hash(s & LOC_MASK);
                    assert_eq!(s >> FP_SHIFT, fingerprint(h));
                    assert_eq!(self.table_of(fingerprint(h)), t, "entry in wrong sub-table");
                    let b1 = home(fingerprint(h), n);
                    assert!(
                        b == b1 || b == alt(b1, fingerprint(h), n),
                        "entry in wrong bucket"
                    );
                }
            }
            assert_eq!(c, table.count as usize);
            total += c;
        }
        assert_eq!(total, self.count);
    }
}

#[cfg(test)]
mod tests;
