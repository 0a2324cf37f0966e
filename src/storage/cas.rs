//! CAS unique values.
//!
//! Each shard draws CAS values from its own counter and interleaves them with the other shards:
//! `cas = counter * num_shards + shard_id + 1`. So CAS values are unique across cores without any
//! shared state, never 0 (0 means "no CAS" on the wire), and increase per shard.
//!
//! Items store the *counter* (not the CAS) as a small delta against a per-page base (see
//! `item.rs`): the counter advances by one per store, while the CAS advances by `num_shards`,
//! which would cost an extra varint byte per item on a 16-core box. Because the counter is
//! stored with the item, touching or moving an item (compaction) never changes its CAS.

/// The CAS sequence of one shard.
#[derive(Debug, Clone)]
pub(crate) struct CasSeq {
    counter: u64,
    shard: u64,
    shards: u64,
}

impl CasSeq {
    pub fn new(shard_id: u32, num_shards: u32) -> CasSeq {
        let shards = num_shards.max(1) as u64;
        CasSeq {
            counter: 0,
            shard: shard_id as u64 % shards,
            shards,
        }
    }

    /// Takes the next counter value.
    #[inline]
    pub fn next_counter(&mut self) -> u64 {
        let c = self.counter;
        self.counter = self.counter.wrapping_add(1);
        c
    }

    /// Moves the counter so that every CAS taken from now on is above `cas`.
    pub fn raise_past(&mut self, cas: u64) {
        self.counter = self.counter.max(cas.div_ceil(self.shards));
    }

    /// The last CAS taken (0: none yet).
    pub fn last(&self) -> u64 {
        match self.counter {
            0 => 0,
            c => self.cas_of(c - 1),
        }
    }

    /// The CAS value of counter `c`.
    #[inline]
    pub fn cas_of(&self, c: u64) -> u64 {
        c.wrapping_mul(self.shards).wrapping_add(self.shard + 1)
    }

    /// The counter whose CAS is `cas`, if `cas` belongs to this shard's sequence (a
    /// caller-supplied CAS that doesn't is stored verbatim instead).
    #[inline]
    pub fn counter_of(&self, cas: u64) -> Option<u64> {
        let x = cas.checked_sub(self.shard + 1)?;
        (x % self.shards == 0).then_some(x / self.shards)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_across_shards_and_never_zero() {
        let mut seen = std::collections::HashSet::new();
        for shard in 0..4 {
            let mut s = CasSeq::new(shard, 4);
            for _ in 0..1000 {
                let c = s.next_counter();
                let cas = s.cas_of(c);
                assert_ne!(cas, 0);
                assert!(seen.insert(cas));
                assert_eq!(s.counter_of(cas), Some(c));
            }
        }
    }

    #[test]
    fn foreign_cas_is_not_a_counter() {
        let s = CasSeq::new(1, 4);
        assert_eq!(s.counter_of(0), None);
        assert_eq!(s.counter_of(1), None); // shard 0's first CAS
        assert_eq!(s.counter_of(2), Some(0));
        assert_eq!(s.counter_of(3), None);
        assert_eq!(s.counter_of(6), Some(1));
    }

    #[test]
    fn raised_past_any_cas() {
        for shards in 1..5u32 {
            for shard in 0..shards {
                for cas in [0u64, 1, 2, 5, 6, 7, 1000, 1 << 40] {
                    let mut s = CasSeq::new(shard, shards);
                    s.raise_past(cas);
                    let c = s.next_counter();
                    assert!(s.cas_of(c) > cas, "{shard}/{shards} {cas}");
                    assert_eq!(s.last(), s.cas_of(c));
                }
            }
        }
        assert_eq!(CasSeq::new(0, 1).last(), 0);
    }

    #[test]
    fn zero_shards_is_one_shard() {
        let mut s = CasSeq::new(7, 0);
        let c = s.next_counter();
        assert_eq!(s.cas_of(c), 1);
    }
}
