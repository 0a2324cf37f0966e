//! A cache's plan is for the whole cluster; each node holds a share of it.
//!
//! The clients' consistent hashing decides where keys land, and a cache's
//! keys do not split evenly (ketama's arcs differ by several percent, and a
//! cache's own keys add their own variance). An even split would make the
//! node with the most keys evict while the others still have room. So a
//! node's share follows where the cache's bytes actually are, as the nodes
//! report them every heartbeat:
//!
//! `share_i = plan × (bytes_i + prior) / (Σ bytes + n × prior)`,
//!
//! with `prior` a small even weight (`plan × PRIOR / n`) that splits an empty
//! cache evenly and keeps a node with no keys yet able to take some. The
//! shares add up to the plan. As the cache fills, each node's share tends
//! to its fraction of the bytes times the plan, so the first eviction comes
//! when the cluster as a whole is nearly full (with the most loaded node at
//! fraction q, at Σ bytes / plan = (q + PRIOR/n) / (q (1 + PRIOR)), 99% for
//! q = 0.36 on three nodes). A node that evicts while the others have room
//! grows its share on the next heartbeat, the same lease idea as across
//! cores, one level up. Reports lag a heartbeat; the shares are fractions,
//! which move slowly, so the lag costs little.

use std::collections::HashMap;

/// The even part of the split, as a fraction of the plan.
const PRIOR: f64 = 0.02;

/// One node's numbers for one cache, as reported.
#[derive(Clone, Copy, Debug, Default)]
pub struct Held {
    pub bytes: u64,
}

/// This node's share of `plan`, given each live node's bytes of the cache
/// (`me` is this node's, fresh; `others` as last reported).
pub fn share(plan: u64, me: Held, others: &[Held]) -> u64 {
    let n = (others.len() + 1) as f64;
    let plan_f = plan as f64;
    let prior = plan_f * PRIOR / n;
    let total: f64 = others.iter().map(|h| h.bytes as f64).sum::<f64>() + me.bytes as f64;
    let f = (me.bytes as f64 + prior) / (total + n * prior);
    // Never 0 (a store with no budget could not take a single item), never
    // beyond the plan.
    ((plan_f * f).round() as u64).clamp(1, plan.max(1))
}

/// Every cache's share on this node: `mine` maps cache id to (plan, bytes
/// here); `peers` are the other live nodes' reports (cache id to bytes).
pub fn shares(mine: &HashMap<u32, (u64, u64)>, peers: &[HashMap<u32, u64>]) -> HashMap<u32, u64> {
    mine.iter()
        .map(|(&id, &(plan, bytes))| {
            let others: Vec<Held> = peers
                .iter()
                .map(|p| Held {
                    bytes: p.get(&id).copied().unwrap_or(0),
                })
                .collect();
            (id, share(plan, Held { bytes }, &others))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    #[test]
    fn an_empty_cache_splits_evenly() {
        let s = share(30 * MB, Held { bytes: 0 }, &[Held::default(); 2]);
        assert_eq!(s, 10 * MB);
    }

    #[test]
    fn a_single_node_holds_the_whole_plan() {
        assert_eq!(share(30 * MB, Held { bytes: 5 * MB }, &[]), 30 * MB);
    }

    #[test]
    fn shares_follow_the_bytes_and_add_up_to_the_plan() {
        let b = [9 * MB, 10 * MB, 11 * MB];
        let s: Vec<u64> = (0..3)
            .map(|i| {
                let others: Vec<Held> = (0..3)
                    .filter(|&j| j != i)
                    .map(|j| Held { bytes: b[j] })
                    .collect();
                share(30 * MB, Held { bytes: b[i] }, &others)
            })
            .collect();
        let sum: u64 = s.iter().sum();
        assert!(sum.abs_diff(30 * MB) <= 3, "{s:?}");
        assert!(s[0] < s[1] && s[1] < s[2], "{s:?}");
    }

    #[test]
    fn the_most_loaded_node_evicts_only_when_the_cluster_is_nearly_full() {
        // Keys land 36% / 33% / 31%; grow until node 0 reaches its share.
        let q = [0.36, 0.33, 0.31];
        let plan = 30 * MB;
        let mut total = 0.0;
        loop {
            total += 0.001 * plan as f64;
            let b: Vec<u64> = q.iter().map(|f| (f * total) as u64).collect();
            let mine = share(
                plan,
                Held { bytes: b[0] },
                &[Held { bytes: b[1] }, Held { bytes: b[2] }],
            );
            if b[0] >= mine {
                break;
            }
        }
        assert!(
            total / plan as f64 >= 0.98,
            "first eviction at {}",
            total / plan as f64
        );
    }

    #[test]
    fn shares_maps_every_cache_of_this_node() {
        let mine = HashMap::from([(1, (30 * MB, 0)), (2, (10 * MB, 0))]);
        let peers = vec![HashMap::from([(1, 0)]), HashMap::new()];
        let s = shares(&mine, &peers);
        assert_eq!(s[&1], 10 * MB);
        assert!(s[&2].abs_diff(10 * MB / 3) <= 1, "{s:?}");
    }
}
