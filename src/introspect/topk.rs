//! Space-Saving top-K sketch (Metwally, Agrawal, El Abbadi, "Efficient
//! computation of frequent and top-k elements in data streams", ICDT 2005).
//!
//! [`TOP_K`] counters. A key already tracked gets +1; a new key takes a free
//! counter (count 1, error 0) or, when all are taken, replaces the key with
//! the smallest count `min` and inherits `min + 1` with error `min`. For a
//! stream of N offers this guarantees:
//!
//! * every key offered more than N / K times is tracked;
//! * a tracked key's count is ≥ its true count, and `count − error` ≤ it.
//!
//! Cost per offer: one probe of a 64-slot open-addressing table (linear
//! probing, backward-shift deletion) keyed by the caller's hash; a tracked
//! key touches no allocator. Replacing the minimum scans the K counts
//! (K = 32) and reuses the evicted key's buffer.
//!
//! Memory: nothing until the first offer; then one boxed table (≈ 1.7 KiB)
//! plus the tracked keys (each ≤ `MAX_KEY_LEN` bytes).

use super::TOP_K;

/// Table slots: a power of two, at most half full.
const SLOTS: usize = 2 * TOP_K;
const MASK: usize = SLOTS - 1;
/// An empty slot (entries are numbered `0..TOP_K`).
const EMPTY: u8 = u8::MAX;

const _: () = assert!(SLOTS.is_power_of_two() && TOP_K < EMPTY as usize);

/// One Space-Saving sketch.
#[derive(Default)]
pub(crate) struct SpaceSaving {
    t: Option<Box<Table>>,
}

struct Table {
    /// Entries in use: `0..len`.
    len: usize,
    counts: [u64; TOP_K],
    errors: [u64; TOP_K],
    hashes: [u64; TOP_K],
    keys: [Vec<u8>; TOP_K],
    /// Open addressing: entry number or `EMPTY`.
    slots: [u8; SLOTS],
}

impl Table {
    fn new() -> Box<Table> {
        Box::new(Table {
            len: 0,
            counts: [0; TOP_K],
            errors: [0; TOP_K],
            hashes: [0; TOP_K],
            keys: std::array::from_fn(|_| Vec::new()),
            slots: [EMPTY; SLOTS],
        })
    }

    #[inline]
    fn find(&self, key: &[u8], hash: u64) -> Option<usize> {
        let mut i = hash as usize & MASK;
        loop {
            let e = self.slots[i];
            if e == EMPTY {
                return None;
            }
            let e = e as usize;
            if self.hashes[e] == hash && self.keys[e] == key {
                return Some(e);
            }
            i = (i + 1) & MASK;
        }
    }

    fn insert_slot(&mut self, entry: usize) {
        let mut i = self.hashes[entry] as usize & MASK;
        while self.slots[i] != EMPTY {
            i = (i + 1) & MASK;
        }
        self.slots[i] = entry as u8;
    }

    /// Removes `entry`'s slot, shifting later members of its probe run back
    /// so every lookup still finds its key before an empty slot.
    fn remove_slot(&mut self, entry: usize) {
        let mut i = self.hashes[entry] as usize & MASK;
        while self.slots[i] as usize != entry {
            i = (i + 1) & MASK;
        }
        let mut j = i;
        loop {
            j = (j + 1) & MASK;
            let e = self.slots[j];
            if e == EMPTY {
                break;
            }
            let home = self.hashes[e as usize] as usize & MASK;
            // `e` may move to the hole at `i` unless its home lies cyclically in (i, j].
            let stays = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !stays {
                self.slots[i] = e;
                i = j;
            }
        }
        self.slots[i] = EMPTY;
    }

    fn set(&mut self, entry: usize, key: &[u8], hash: u64, count: u64, error: u64) {
        let k = &mut self.keys[entry];
        k.clear();
        k.extend_from_slice(key);
        self.hashes[entry] = hash;
        self.counts[entry] = count;
        self.errors[entry] = error;
        self.insert_slot(entry);
    }

    fn rebuild_slots(&mut self) {
        self.slots = [EMPTY; SLOTS];
        for e in 0..self.len {
            self.insert_slot(e);
        }
    }
}

impl SpaceSaving {
    pub const fn new() -> SpaceSaving {
        SpaceSaving { t: None }
    }

    /// Counts one occurrence of `key` (`hash` is the caller's hash of it).
    #[inline]
    pub fn offer(&mut self, key: &[u8], hash: u64) {
        let t = self.t.get_or_insert_with(Table::new);
        if let Some(e) = t.find(key, hash) {
            t.counts[e] += 1;
            return;
        }
        Self::offer_new(t, key, hash);
    }

    #[inline(never)]
    fn offer_new(t: &mut Table, key: &[u8], hash: u64) {
        if t.len < TOP_K {
            let e = t.len;
            t.len += 1;
            t.set(e, key, hash, 1, 0);
            return;
        }
        // Two branch-free passes (the minimum, then its first position)
        // beat one pass whose compare branch is data-dependent.
        let min = t.counts.iter().copied().fold(u64::MAX, u64::min);
        let m = t.counts.iter().position(|&c| c == min).unwrap_or(0);
        t.remove_slot(m);
        t.set(m, key, hash, min + 1, min);
    }

    /// `(count, error)` of `key` if tracked.
    pub fn get(&self, key: &[u8], hash: u64) -> Option<(u64, u64)> {
        let t = self.t.as_ref()?;
        t.find(key, hash).map(|e| (t.counts[e], t.errors[e]))
    }

    /// Divides every count and error by `2^shift`; keys whose count drops
    /// to 0 are forgotten.
    pub fn decay(&mut self, shift: u32) {
        let Some(t) = self.t.as_mut() else {
            return;
        };
        if shift >= u64::BITS {
            t.len = 0;
            t.slots = [EMPTY; SLOTS];
            return;
        }
        let mut w = 0;
        for r in 0..t.len {
            let c = t.counts[r] >> shift;
            if c == 0 {
                continue;
            }
            if w != r {
                t.keys.swap(w, r);
                t.hashes[w] = t.hashes[r];
            }
            t.counts[w] = c;
            t.errors[w] = t.errors[r] >> shift;
            w += 1;
        }
        if w != t.len {
            t.len = w;
            t.rebuild_slots();
        }
    }

    /// The most an untracked key can have been counted: the smallest
    /// tracked count once every entry is taken (Space-Saving hands an
    /// evicted key's count to its successor), else 0.
    pub fn untracked_max(&self) -> u64 {
        match &self.t {
            Some(t) if t.len == TOP_K => t.counts.iter().copied().min().unwrap_or(0),
            _ => 0,
        }
    }

    /// Tracked keys: `(key, count, error)`, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u64, u64)> + '_ {
        self.t
            .iter()
            .flat_map(|t| (0..t.len).map(move |e| (t.keys[e].as_slice(), t.counts[e], t.errors[e])))
    }

    /// Number of tracked keys.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.t.as_ref().map_or(0, |t| t.len)
    }

    /// Heap bytes held (table and key buffers).
    pub fn heap_bytes(&self) -> usize {
        self.t.as_ref().map_or(0, |t| {
            std::mem::size_of::<Table>() + t.keys.iter().map(Vec::capacity).sum::<usize>()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn h(key: &[u8]) -> u64 {
        super::super::hash(key)
    }

    fn offer(s: &mut SpaceSaving, key: &[u8]) {
        s.offer(key, h(key));
    }

    #[test]
    fn nothing_allocated_until_first_offer() {
        let s = SpaceSaving::new();
        assert_eq!(s.heap_bytes(), 0);
        assert_eq!(s.len(), 0);
        assert_eq!(s.get(b"a", h(b"a")), None);
    }

    #[test]
    fn counts_exactly_below_capacity() {
        let mut s = SpaceSaving::new();
        for i in 0..TOP_K {
            for _ in 0..=i {
                offer(&mut s, format!("k{i}").as_bytes());
            }
        }
        assert_eq!(s.len(), TOP_K);
        for i in 0..TOP_K {
            let k = format!("k{i}");
            assert_eq!(
                s.get(k.as_bytes(), h(k.as_bytes())),
                Some((i as u64 + 1, 0))
            );
        }
    }

    #[test]
    fn new_key_replaces_the_minimum() {
        let mut s = SpaceSaving::new();
        for i in 0..TOP_K {
            for _ in 0..2 {
                offer(&mut s, format!("k{i}").as_bytes());
            }
        }
        // k0 is the first minimum (all have 2): give everyone else one more.
        for i in 1..TOP_K {
            offer(&mut s, format!("k{i}").as_bytes());
        }
        offer(&mut s, b"new");
        assert_eq!(s.get(b"new", h(b"new")), Some((3, 2)));
        assert_eq!(s.get(b"k0", h(b"k0")), None);
        assert_eq!(s.len(), TOP_K);
        // Every other key is still findable after the slot was removed.
        for i in 1..TOP_K {
            let k = format!("k{i}");
            assert_eq!(s.get(k.as_bytes(), h(k.as_bytes())), Some((3, 0)));
        }
    }

    /// Colliding hashes exercise the backward-shift deletion.
    #[test]
    fn deletion_keeps_probe_runs_intact() {
        let mut s = SpaceSaving::new();
        // All keys share two home slots.
        let hash_of = |i: usize| ((i % 2) as u64) << 40 | (i % 2) as u64;
        for i in 0..TOP_K {
            let k = format!("k{i}");
            for _ in 0..(i + 2) {
                s.offer(k.as_bytes(), hash_of(i));
            }
        }
        for round in 0..200usize {
            let k = format!("n{round}");
            s.offer(k.as_bytes(), hash_of(round));
            let t = s.t.as_ref().unwrap();
            for e in 0..t.len {
                assert_eq!(t.find(&t.keys[e], t.hashes[e]), Some(e));
            }
        }
    }

    #[test]
    fn decay_halves_and_forgets_zeros() {
        let mut s = SpaceSaving::new();
        for _ in 0..5 {
            offer(&mut s, b"five");
        }
        offer(&mut s, b"one");
        for _ in 0..3 {
            offer(&mut s, b"three");
        }
        s.decay(1);
        assert_eq!(s.get(b"five", h(b"five")), Some((2, 0)));
        assert_eq!(s.get(b"three", h(b"three")), Some((1, 0)));
        assert_eq!(s.get(b"one", h(b"one")), None);
        assert_eq!(s.len(), 2);
        offer(&mut s, b"one");
        assert_eq!(s.get(b"one", h(b"one")), Some((1, 0)));
        s.decay(64);
        assert_eq!(s.len(), 0);
        assert_eq!(s.get(b"five", h(b"five")), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The Space-Saving guarantees against an exact count, on skewed
        /// streams over many more keys than counters.
        #[test]
        fn space_saving_guarantees(
            stream in prop::collection::vec((0u32..400, 0u32..100), 1..4000),
        ) {
            let mut s = SpaceSaving::new();
            let mut exact: HashMap<Vec<u8>, u64> = HashMap::new();
            for &(a, b) in &stream {
                // Skewed: small ids are much more frequent.
                let id = a * b / 100;
                let key = format!("key:{id}").into_bytes();
                offer(&mut s, &key);
                *exact.entry(key).or_default() += 1;
            }
            let n = stream.len() as u64;
            prop_assert!(s.len() <= TOP_K);
            let total: u64 = s.iter().map(|(_, c, _)| c).sum();
            prop_assert_eq!(total, n);
            for (key, count, error) in s.iter() {
                let truth = exact.get(key).copied().unwrap_or(0);
                prop_assert!(count >= truth, "estimate {} < true {}", count, truth);
                prop_assert!(count - error <= truth, "lower bound {} > true {}", count - error, truth);
            }
            for (key, &truth) in &exact {
                if truth * TOP_K as u64 > n {
                    prop_assert!(s.get(key, h(key)).is_some(), "frequent key {:?} ({}) missing", key, truth);
                }
            }
        }
    }
}
