//! A cluster's history of one cache: every node samples its own counters,
//! so the cluster's series is the nodes' series summed bucket by bucket.
//!
//! Counters are cumulative and an idle node adds no points, so a node with
//! no point in a bucket still counts with its latest point before it (its
//! counters did not move). The merged series starts at the first bucket in
//! which every node has a point: before that a node's whole total would
//! appear at once, as a burst of traffic that never happened. Each merged
//! point carries the latest sample time of its bucket.
//!
//! A node's series can hold two points in one bucket: in a series' first
//! bucket the history keeps the sample the newest one replaced, as its left
//! neighbour. Such an earlier point counts as the bucket before, so the
//! cluster's first minute has its rates too.

use super::Point;

/// The nodes' series (each in time order, at bucket width `step`) summed
/// into one.
pub fn merge(step: u64, series: &[Vec<Point>]) -> Vec<Point> {
    let step = step.max(1);
    let live: Vec<(&Vec<Point>, Vec<u64>)> = series
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| (s, buckets_of(s, step)))
        .collect();
    let Some(first) = live.iter().map(|(_, b)| b[0]).max() else {
        return Vec::new();
    };
    let mut buckets: Vec<u64> = live
        .iter()
        .flat_map(|(_, b)| b.iter().copied())
        .filter(|&b| b >= first)
        .collect();
    buckets.sort_unstable();
    buckets.dedup();
    // Per node: the index of its next point not yet folded in.
    let mut next = vec![0usize; live.len()];
    buckets
        .into_iter()
        .map(|bucket| {
            let mut merged = Point {
                t: 0,
                v: Vec::new(),
            };
            for ((s, b), i) in live.iter().zip(next.iter_mut()) {
                while *i < s.len() && b[*i] <= bucket {
                    *i += 1;
                }
                // Every node has a point at or before `first`, so i >= 1.
                let p = &s[*i - 1];
                if b[*i - 1] == bucket {
                    merged.t = merged.t.max(p.t);
                }
                if merged.v.len() < p.v.len() {
                    merged.v.resize(p.v.len(), 0);
                }
                for (m, x) in merged.v.iter_mut().zip(&p.v) {
                    *m += x;
                }
            }
            merged
        })
        .collect()
}

/// Each point's bucket, strictly increasing: a point sharing its bucket
/// with the next one counts as the bucket before.
fn buckets_of(s: &[Point], step: u64) -> Vec<u64> {
    let mut b: Vec<u64> = s.iter().map(|p| p.t / step).collect();
    for i in (0..b.len().saturating_sub(1)).rev() {
        b[i] = b[i].min(b[i + 1].saturating_sub(1));
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: u64, v: &[u64]) -> Point {
        Point { t, v: v.to_vec() }
    }

    #[test]
    fn one_series_is_itself() {
        let s = vec![p(60, &[1]), p(125, &[3]), p(190, &[7])];
        assert_eq!(merge(60, std::slice::from_ref(&s)), s);
    }

    #[test]
    fn nodes_sum_per_bucket_and_an_idle_node_carries_its_last_point() {
        let a = vec![p(61, &[10, 1]), p(121, &[20, 1]), p(181, &[30, 2])];
        // b is idle in the second minute: no point there.
        let b = vec![p(65, &[5, 0]), p(185, &[9, 4])];
        assert_eq!(
            merge(60, &[a, b]),
            vec![p(65, &[15, 1]), p(121, &[25, 1]), p(185, &[39, 6])]
        );
    }

    #[test]
    fn the_series_starts_when_every_node_has_a_point() {
        let a = vec![p(60, &[100]), p(120, &[110]), p(180, &[120])];
        let b = vec![p(130, &[50]), p(190, &[55])];
        // Before 120 b's 50 would look like 50 requests in a minute.
        assert_eq!(merge(60, &[a, b]), vec![p(130, &[160]), p(190, &[175])]);
    }

    #[test]
    fn a_first_bucket_with_its_replaced_sample_keeps_its_rates() {
        // Both nodes in their first minute: the replaced sample, then the newest.
        let a = vec![p(61, &[1]), p(70, &[11])];
        let b = vec![p(62, &[2]), p(71, &[4])];
        assert_eq!(merge(60, &[a, b]), vec![p(62, &[3]), p(71, &[15])]);
    }

    #[test]
    fn no_points_no_series() {
        assert!(merge(60, &[Vec::new(), Vec::new()]).is_empty());
        assert!(merge(60, &[]).is_empty());
    }
}
