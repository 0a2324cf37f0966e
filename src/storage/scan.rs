//! Prefix scan: how many live items (and how many key + value bytes) a
//! cache holds under some key prefixes, for the introspection routes.
//!
//! A walk of the segments like `maintain`'s, either in one go
//! (`scan_prefixes`) or a bounded number of items per step
//! (`walk_prefixes`, what the runtime uses): no allocation beyond the
//! answer, nothing changed except that a scheduled flush whose time has
//! come is applied first. An item counts only if it is
//! not dead, not expired and still the one the index points at, so
//! overwritten, deleted and expired-but-unreclaimed items are not counted.

use super::item::{View, DEAD};
use super::store::{hash_key, is_expired, Store};

/// A walk of a store counting, for some prefixes, the live unexpired items
/// whose key starts with each and their key + value bytes; advanced a
/// bounded number of items at a time by [`Store::walk_prefixes`], so a large
/// cache never holds its core for long.
///
/// The store keeps changing between steps, so a finished walk is a close
/// estimate rather than a snapshot: an item written behind the walk after it
/// passed is missed, one moved ahead of it (compaction, an overwrite into
/// the head segment) may count twice, and a segment that was reset or
/// compacted under the walk is started over.
#[derive(Debug, Clone)]
pub struct PrefixWalk {
    prefixes: Vec<Vec<u8>>,
    counts: Vec<(u64, u64)>,
    /// The segment being walked, its version when the walk entered it, and
    /// the offset reached.
    id: u32,
    version: u32,
    off: usize,
    entered: bool,
}

impl PrefixWalk {
    pub fn new(prefixes: Vec<Vec<u8>>) -> PrefixWalk {
        PrefixWalk {
            counts: vec![(0, 0); prefixes.len()],
            prefixes,
            id: 0,
            version: 0,
            off: 0,
            entered: false,
        }
    }

    /// The prefixes this walk counts.
    pub fn prefixes(&self) -> &[Vec<u8>] {
        &self.prefixes
    }
}

impl Store {
    /// For each of `prefixes`, (live unexpired items whose key starts with
    /// it, their key + value bytes), in one go. An item under several
    /// prefixes counts under each.
    pub fn scan_prefixes(&mut self, prefixes: &[&[u8]], now: u32) -> Vec<(u64, u64)> {
        let mut walk = PrefixWalk::new(prefixes.iter().map(|p| p.to_vec()).collect());
        loop {
            if let Some(counts) = self.walk_prefixes(&mut walk, now, usize::MAX) {
                return counts;
            }
        }
    }

    /// Advances `walk` by at most `budget` items; the counts once it has
    /// visited every segment (the walk is then spent).
    pub fn walk_prefixes(
        &mut self,
        walk: &mut PrefixWalk,
        now: u32,
        budget: usize,
    ) -> Option<Vec<(u64, u64)>> {
        self.tick(now);
        if walk.prefixes.is_empty() {
            return Some(Vec::new());
        }
        let mut left = budget;
        while walk.id < self.segs.id_limit() {
            let id = walk.id;
            if !self.segs.is_live(id) {
                walk.id += 1;
                walk.entered = false;
                continue;
            }
            let seg = self.segs.get(id);
            if !walk.entered || seg.version != walk.version {
                // First visit, or the segment changed under the walk: (re)start it.
                walk.entered = true;
                walk.version = seg.version;
                walk.off = 0;
            }
            let len = seg.len as usize;
            while walk.off < len {
                if left == 0 {
                    return None;
                }
                left -= 1;
                let at = walk.off;
                let v = View::decode(&seg.data[at..len]);
                walk.off += v.len();
                if v.bits & DEAD != 0 || is_expired(v.exptime, now) {
                    continue;
                }
                let key = &seg.data[at + v.key_off..at + v.key_off + v.key_len];
                // The index check (a hash and a probe) only for keys that match.
                let mut live = None;
                for (p, o) in walk.prefixes.iter().zip(walk.counts.iter_mut()) {
                    if !key.starts_with(p) {
                        continue;
                    }
                    let is_live = *live.get_or_insert_with(|| {
                        self.index
                            .find_loc(hash_key(key), self.segs.addr(id, at))
                            .is_some()
                    });
                    if !is_live {
                        break;
                    }
                    o.0 += 1;
                    o.1 += (v.key_len + v.value_len) as u64;
                }
            }
            walk.id += 1;
            walk.entered = false;
        }
        Some(std::mem::take(&mut walk.counts))
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn store(limit: usize) -> Store {
        Store::new(StoreConfig {
            memory_limit: limit,
            item_size_max: 1 << 20,
            shard_id: 0,
            num_shards: 1,
            budget: None,
        })
    }

    /// key → (value length, exptime).
    type Model = HashMap<Vec<u8>, (usize, u32)>;

    fn expected(model: &Model, prefixes: &[&[u8]], now: u32) -> Vec<(u64, u64)> {
        prefixes
            .iter()
            .map(|p| {
                model
                    .iter()
                    .filter(|(k, (_, exp))| k.starts_with(p) && !(*exp != 0 && *exp <= now))
                    .fold((0, 0), |(n, b), (k, (vl, _))| {
                        (n + 1, b + (k.len() + vl) as u64)
                    })
            })
            .collect()
    }

    #[test]
    fn counts_live_items_under_each_prefix() {
        let mut s = store(64 << 20);
        let now = 10;
        assert_eq!(s.scan_prefixes(&[b"a:"], now), [(0, 0)]);
        assert!(s.scan_prefixes(&[], now).is_empty());
        s.set(b"a:1", &[b"xx"], 0, 0, now).unwrap();
        s.set(b"a:2", &[b"yyy"], 0, 0, now).unwrap();
        s.set(b"b:1", &[b"z"], 0, 0, now).unwrap();
        // Overwritten: only the new value counts.
        s.set(b"a:1", &[b"xxxxx"], 0, 0, now).unwrap();
        // Deleted: gone.
        s.set(b"a:3", &[b"q"], 0, 0, now).unwrap();
        assert!(s.delete(b"a:3", now));
        // Expires at 20.
        s.set(b"a:4", &[b"e"], 0, 20, now).unwrap();
        let p: [&[u8]; 4] = [b"a:", b"b:", b"", b"c"];
        assert_eq!(
            s.scan_prefixes(&p, now),
            [(3, 8 + 6 + 4), (1, 4), (4, 8 + 6 + 4 + 4), (0, 0)]
        );
        assert_eq!(
            s.scan_prefixes(&p, 20),
            [(2, 8 + 6), (1, 4), (3, 8 + 6 + 4), (0, 0)]
        );
        // A scheduled flush whose time has come is applied first.
        s.flush(30, 20);
        assert_eq!(s.scan_prefixes(&p, 30), [(0, 0); 4]);
    }

    /// Walked a few items at a time over a quiet store: the same answer as
    /// the one-go scan.
    #[test]
    fn a_stepwise_walk_matches_the_scan() {
        let mut s = store(64 << 20);
        let value = vec![b'v'; 3000];
        for i in 0..2000u32 {
            let key = format!("{}:{i}", if i % 4 == 0 { "a" } else { "b" });
            s.set(key.as_bytes(), &[&value], 0, 0, 5).unwrap();
        }
        let want = s.scan_prefixes(&[b"a:", b"b:"], 5);
        assert_eq!(want[0].0, 500);
        let mut walk = PrefixWalk::new(vec![b"a:".to_vec(), b"b:".to_vec()]);
        let mut steps = 0;
        let got = loop {
            steps += 1;
            if let Some(c) = s.walk_prefixes(&mut walk, 5, 97) {
                break c;
            }
        };
        assert_eq!(got, want);
        assert!(steps > 2000 / 97, "{steps} steps");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Against a model, through sets, overwrites, deletes, expiry,
        /// maintain and eviction-free growth over several segments.
        #[test]
        fn scan_matches_a_model(
            ops in prop::collection::vec((0u8..4, 0u16..300, 0usize..20_000, 0u32..40), 1..600),
        ) {
            let mut s = store(256 << 20);
            let mut model = Model::new();
            let prefixes: [&[u8]; 4] = [b"user:", b"user:1", b"page:", b"x"];
            let names = ["user:", "page:", "xy", "other"];
            let mut now = 1u32;
            for (i, &(op, k, vlen, ttl)) in ops.iter().enumerate() {
                let key = format!("{}{}", names[k as usize % 4], k).into_bytes();
                match op {
                    0 | 1 => {
                        let exp = if ttl < 20 { 0 } else { now + ttl - 15 };
                        let value = vec![b'v'; vlen];
                        s.set(&key, &[&value], 0, exp, now).unwrap();
                        model.insert(key, (vlen, exp));
                    }
                    2 => {
                        s.delete(&key, now);
                        model.remove(&key);
                    }
                    _ => {
                        now += 1;
                        if i % 7 == 0 {
                            s.maintain(now, 10);
                        }
                    }
                }
                if i % 50 == 0 {
                    prop_assert_eq!(s.scan_prefixes(&prefixes, now), expected(&model, &prefixes, now));
                }
            }
            prop_assert_eq!(s.scan_prefixes(&prefixes, now), expected(&model, &prefixes, now));
            let later = now + 100;
            prop_assert_eq!(s.scan_prefixes(&prefixes, later), expected(&model, &prefixes, later));
        }
    }

    /// A store small enough to evict: the scan agrees with what `peek` finds.
    #[test]
    fn scan_agrees_with_lookups_under_eviction() {
        let mut s = store(4 << 20);
        let value = vec![b'v'; 1000];
        for i in 0..20_000u32 {
            let key = format!("{}:{i}", if i % 3 == 0 { "a" } else { "b" });
            s.set(key.as_bytes(), &[&value], 0, 0, 5).unwrap();
            if i % 5 == 0 {
                s.get(format!("a:{}", i / 2).as_bytes(), 5);
            }
        }
        let mut want = [(0u64, 0u64); 2];
        for i in 0..20_000u32 {
            let (p, j) = if i % 3 == 0 { ("a", 0) } else { ("b", 1) };
            let key = format!("{p}:{i}");
            if let Some(it) = s.peek(key.as_bytes(), 5) {
                want[j].0 += 1;
                want[j].1 += (it.key.len() + it.value.len()) as u64;
            }
        }
        assert!(want[0].0 + want[1].0 < 20_000, "nothing was evicted");
        assert_eq!(s.scan_prefixes(&[b"a:", b"b:"], 5), want);
    }
}
