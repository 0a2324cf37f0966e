//! What `key_stats` can honestly say about one key's counts, and how sure
//! it is.
//!
//! A key's hits, misses and mutations come from Space-Saving sketches fed
//! one request in `every` (sampled independently), halved every
//! [`super::DECAY_SECS`]. Two errors stack up:
//!
//! * the sketch: a tracked key's sampled count lies in `[count − error,
//!   count]`; an untracked key's in `[0, smallest tracked count]` once the
//!   sketch is full (0 before);
//! * the sampling: `s` sampled of `t` true requests is Binomial(t, 1/every);
//!   the range for `t` is `every` times the 95% Poisson limits for `s`
//!   (Wilson–Hilferty; conservative for a binomial, and right for small
//!   `s`, where a normal approximation is not: for `s = 0` the top is about
//!   3.7·every).
//!
//! [`estimate`] returns the point estimate (the sketch count scaled by
//! `every`, what `key_stats` always answered) with a range that covers
//! both errors at about 95%. With `every == 1` and a key tracked since its
//! first request, the count is exact and the range is that one number.

/// One count: the estimate and a range that holds the true (decayed)
/// count with about 95% confidence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Estimate {
    pub value: u64,
    pub low: u64,
    pub high: u64,
}

impl Estimate {
    /// Exact when the range is one number.
    pub fn exact(&self) -> bool {
        self.low == self.high
    }
}

/// z for a two-sided 95% interval.
const Z: f64 = 1.96;

/// `tracked`: the key's `(count, error)` in the sketch, if tracked;
/// `untracked_max`: what an untracked key's sampled count can be at most
/// (`SpaceSaving::untracked_max`); `every`: the sampling rate (1 in `every`).
pub fn estimate(tracked: Option<(u64, u64)>, untracked_max: u64, every: u32) -> Estimate {
    let n = u64::from(every.max(1));
    let (point, low_sampled, high_sampled) = match tracked {
        Some((count, error)) => (count, count.saturating_sub(error), count),
        None => (0, 0, untracked_max),
    };
    if n == 1 {
        return Estimate {
            value: point,
            low: low_sampled,
            high: high_sampled,
        };
    }
    Estimate {
        value: point.saturating_mul(n),
        low: sampled_low(low_sampled, n),
        high: sampled_high(high_sampled, n),
    }
}

/// Lower 95% limit of a Poisson mean given `s` events (Wilson–Hilferty).
fn poisson_low(s: u64) -> f64 {
    if s == 0 {
        return 0.0;
    }
    let s = s as f64;
    s * (1.0 - 1.0 / (9.0 * s) - Z / (3.0 * s.sqrt())).powi(3)
}

/// Upper 95% limit of a Poisson mean given `s` events (Wilson–Hilferty).
fn poisson_high(s: u64) -> f64 {
    let s1 = s as f64 + 1.0;
    s1 * (1.0 - 1.0 / (9.0 * s1) + Z / (3.0 * s1.sqrt())).powi(3)
}

// The sampled count is Binomial(t, 1/n), whose variance is below the
// Poisson's with the same mean, so Poisson limits scaled by n are a little
// conservative, and they stay right at the small counts where the normal
// approximation does not.
fn sampled_low(s: u64, n: u64) -> u64 {
    // At least the s requests that were sampled happened.
    ((poisson_low(s) * n as f64).floor() as u64).max(s)
}

fn sampled_high(s: u64, n: u64) -> u64 {
    (poisson_high(s) * n as f64).ceil().min(u64::MAX as f64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsampled_tracked_from_the_start_is_exact() {
        let e = estimate(Some((10, 0)), 0, 1);
        assert_eq!((e.value, e.low, e.high), (10, 10, 10));
        assert!(e.exact());
    }

    #[test]
    fn sketch_error_widens_the_range_downward() {
        let e = estimate(Some((10, 4)), 3, 1);
        assert_eq!((e.value, e.low, e.high), (10, 6, 10));
        // Untracked in a full sketch: up to its smallest count.
        let e = estimate(None, 3, 1);
        assert_eq!((e.value, e.low, e.high), (0, 0, 3));
    }

    #[test]
    fn sampling_bounds_contain_the_truth_about_95_percent_of_the_time() {
        // Simulate: t true requests sampled 1 in 8, many times; the range
        // must hold t in roughly 95% of runs (and the rule of three for 0).
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rand = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for t in [0u64, 3, 10, 40, 200, 1000] {
            let runs = 2000;
            let mut inside = 0;
            for _ in 0..runs {
                let s = (0..t).filter(|_| rand() % 8 == 0).count() as u64;
                let e = estimate(Some((s, 0)).filter(|_| s > 0), 0, 8);
                assert_eq!(e.value, s * 8);
                if e.low <= t && t <= e.high {
                    inside += 1;
                }
            }
            let share = inside as f64 / runs as f64;
            assert!(share >= 0.93, "t={t}: only {share} of ranges held it");
        }
    }

    #[test]
    fn the_issue_s_example_is_inside_its_range() {
        // Set once, missed 3 times, read 10 times, sampled 1 in 8: whatever
        // the sketch saw, a range is stated and a plausible draw covers it.
        let hits = estimate(Some((2, 0)), 0, 8);
        assert_eq!(hits.value, 16);
        assert!(hits.low <= 10 && 10 <= hits.high, "{hits:?}");
        let mutations = estimate(None, 0, 8);
        assert_eq!(mutations.value, 0);
        assert!(mutations.high >= 1, "{mutations:?}");
    }
}
