//! Plan sizes against the node's memory: what the control store accepts and
//! what each cache may really use.
//!
//! - **Validation** (create and plan changes, [`check_plan`]): a plan is at
//!   least [`MIN_PLAN`] and at most the node's item memory (`-m`; a plan the
//!   node can never hold is a mistake, not a promise) and [`MAX_PLAN`]. The
//!   sum of all plans may be at most `-m × --plan-overcommit`; a change that
//!   would pass it is refused, unless it does not grow the sum (shrinking a
//!   plan is always allowed, so a node restarted with a smaller `-m` can be
//!   brought back within it one cache at a time).
//! - **Enforcement** ([`effective_plan`]): whatever the plans add up to (an
//!   overcommitted node, or a data dir written under a larger `-m`), each
//!   cache's budget is its plan × min(1, node / sum of plans), so the
//!   budgets together never exceed `-m`. A cache over its budget evicts its
//!   own oldest items, so when the node is full every cache holds the same
//!   fraction of its plan and none can take memory another was promised.
//!   Simple and static: a cache whose neighbours are idle does not borrow
//!   their share (that would need evicting from a borrower when the lender
//!   wakes up, across cores).

use super::ControlError;

/// The smallest plan: 1 MiB. A budget is leased to the cores in segments
/// of at least 16-64 KiB each plus an index; below about 1 MiB a cache spread
/// over several cores holds only a handful of items, and a byte-sized plan
/// none. MemCachier's smallest plan is 25 MB; tests and small deployments
/// use 1-16 MB plans, which stay valid.
pub const MIN_PLAN: u64 = 1 << 20;
/// The largest plan on any node: 1 TiB, far beyond one server's RAM for one
/// cache today, and far from overflowing `usize`/`i64` arithmetic on sums
/// of many plans.
pub const MAX_PLAN: u64 = 1 << 40;

/// The node's item memory and how far plans may overcommit it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Capacity {
    /// `-m` in bytes: all caches' items together.
    pub node_bytes: u64,
    /// The sum of plans may be up to `node_bytes × overcommit` (>= 1).
    pub overcommit: f64,
}

impl Capacity {
    /// The most all plans together may add up to.
    pub fn plans_allowed(&self) -> u128 {
        let r = if self.overcommit.is_finite() && self.overcommit >= 1.0 {
            self.overcommit
        } else {
            1.0
        };
        (self.node_bytes as f64 * r) as u128
    }
}

fn mib(bytes: u128) -> String {
    let m = bytes as f64 / (1u64 << 20) as f64;
    if m.fract() == 0.0 {
        format!("{m:.0} MiB")
    } else {
        format!("{m:.2} MiB")
    }
}

/// Checks a new plan of `bytes` for cache `id` (None: a cache being
/// created), given every cache's `(id, plan)` now. Without a `cap` (a store
/// not attached to a server) only the size bounds apply.
pub fn check_plan(
    plans: impl Iterator<Item = (u32, u64)>,
    id: Option<u32>,
    bytes: u64,
    cap: Option<Capacity>,
) -> Result<(), ControlError> {
    if bytes < MIN_PLAN {
        return Err(ControlError::Invalid(format!(
            "memory plan must be at least 1 MiB (got {bytes} bytes)"
        )));
    }
    let max = cap.map_or(MAX_PLAN, |c| c.node_bytes.min(MAX_PLAN));
    if bytes > max {
        let what = if cap.is_some_and(|c| c.node_bytes <= MAX_PLAN) {
            "the node's memory limit (-m)"
        } else {
            "the largest plan"
        };
        return Err(ControlError::Invalid(format!(
            "memory plan of {} is larger than {what}, {}",
            mib(bytes.into()),
            mib(max.into())
        )));
    }
    let Some(cap) = cap else { return Ok(()) };
    let (mut others, mut old) = (0u128, 0u128);
    for (cid, plan) in plans {
        if Some(cid) == id {
            old = plan.into();
        } else {
            others += u128::from(plan);
        }
    }
    let total = others + u128::from(bytes);
    let allowed = cap.plans_allowed();
    if total > allowed && total > others + old {
        return Err(ControlError::Conflict(format!(
            "plans would total {}, over the {} this node allows \
             (-m {} × --plan-overcommit {}): lower or delete another cache's plan, \
             or restart the server with a larger -m or --plan-overcommit",
            mib(total),
            mib(allowed),
            mib(cap.node_bytes.into()),
            cap.overcommit
        )));
    }
    Ok(())
}

/// The bytes a cache with `plan` may really use on a node of `node_bytes`
/// whose plans add up to `sum`: the plan scaled by min(1, node / sum), so
/// the results for all caches add up to at most `node_bytes` (each is
/// rounded down). Never more than `node_bytes`, whatever the plan.
pub fn effective_plan(plan: u64, sum: u128, node_bytes: u64) -> u64 {
    let plan = u128::from(plan);
    let node = u128::from(node_bytes);
    let sum = sum.max(plan);
    let eff = if sum <= node { plan } else { plan * node / sum };
    eff.min(node) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 1 << 20;

    fn cap(node_mb: u64, overcommit: f64) -> Option<Capacity> {
        Some(Capacity {
            node_bytes: node_mb * M,
            overcommit,
        })
    }

    #[test]
    fn sizes_are_bounded() {
        let none = std::iter::empty;
        for bad in [0, 1, M - 1, i64::MAX as u64, u64::MAX, MAX_PLAN + 1] {
            assert!(check_plan(none(), None, bad, None).is_err(), "{bad}");
            assert!(
                check_plan(none(), None, bad, cap(64, 1.0)).is_err(),
                "{bad}"
            );
        }
        assert!(check_plan(none(), None, M, cap(64, 1.0)).is_ok());
        assert!(check_plan(none(), None, 64 * M, cap(64, 1.0)).is_ok());
        // One plan never exceeds the node, overcommit or not.
        let e = check_plan(none(), None, 65 * M, cap(64, 8.0)).unwrap_err();
        assert!(e.to_string().contains("-m"), "{e}");
    }

    #[test]
    fn overcommit_bounds_the_sum() {
        let plans = || [(1, 40 * M), (2, 20 * M)].into_iter();
        assert!(check_plan(plans(), None, 4 * M, cap(64, 1.0)).is_ok());
        let e = check_plan(plans(), None, 5 * M, cap(64, 1.0)).unwrap_err();
        assert!(matches!(e, ControlError::Conflict(_)), "{e}");
        assert!(check_plan(plans(), None, 64 * M, cap(64, 2.0)).is_ok());
        assert!(check_plan(plans(), None, 64 * M + 1, cap(64, 2.0)).is_err());
        // Growing cache 2 by 4 MiB fits; by 5 it does not.
        assert!(check_plan(plans(), Some(2), 24 * M, cap(64, 1.0)).is_ok());
        assert!(check_plan(plans(), Some(2), 25 * M, cap(64, 1.0)).is_err());
        // Over the limit already (smaller -m after a restart): shrinking is
        // allowed, growing is not.
        assert!(check_plan(plans(), Some(1), 30 * M, cap(32, 1.0)).is_ok());
        assert!(check_plan(plans(), Some(1), 41 * M, cap(32, 1.0)).is_err());
    }

    #[test]
    fn effective_plans_fit_the_node() {
        assert_eq!(effective_plan(25 * M, 50 * M as u128, 64 * M), 25 * M);
        let plans = [1024 * M, 64 * M, 64 * M];
        let sum: u128 = plans.iter().map(|&p| u128::from(p)).sum();
        let eff: Vec<u64> = plans
            .iter()
            .map(|&p| effective_plan(p, sum, 64 * M))
            .collect();
        assert!(eff.iter().sum::<u64>() <= 64 * M);
        assert_eq!(eff[1], eff[2]);
        assert!(eff[0] > 14 * eff[1]);
        // Absurd plans already on disk still land within the node.
        let huge = i64::MAX as u64;
        assert_eq!(effective_plan(huge, huge.into(), 64 * M), 64 * M);
        assert_eq!(
            effective_plan(u64::MAX, u128::from(u64::MAX) * 3, 64 * M),
            64 * M / 3
        );
    }
}
