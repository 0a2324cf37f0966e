//! `GET /status`: the node graded green / yellow / red from its own recent
//! latency, like MemCachier's status page.
//!
//! The cores' histograms are cumulative, so the grade looks at the requests
//! answered since a baseline taken at least `WINDOW` ago: the merged
//! server-wide get and set histograms now, minus the same histograms then.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::latency::{Class, ClassHistograms};

/// How far back the grade looks (at least; at most twice this).
pub const WINDOW: Duration = Duration::from_secs(10);
/// p99 below this is green.
pub const GREEN_BELOW_US: u64 = 1_000;
/// p99 below this (and not green) is yellow; anything slower is red.
pub const YELLOW_BELOW_US: u64 = 10_000;

/// The grade of a window's p99 (None: no requests, an idle node is green).
pub fn grade(p99_us: Option<u64>) -> &'static str {
    match p99_us {
        None => "green",
        Some(us) if us < GREEN_BELOW_US => "green",
        Some(us) if us < YELLOW_BELOW_US => "yellow",
        Some(_) => "red",
    }
}

/// The get and set requests (the ones clients wait on) in one histogram.
fn reads_and_writes(h: &ClassHistograms) -> Option<Histogram<u64>> {
    let mut all: Option<Histogram<u64>> = None;
    for class in [Class::Get, Class::Set] {
        if let Some(c) = h.class(class) {
            match &mut all {
                Some(a) => {
                    let _ = a.add(c);
                }
                None => all = Some(c.clone()),
            }
        }
    }
    all
}

/// Baselines: the newest one at least `WINDOW` old is subtracted.
static BASELINES: Mutex<Vec<(Instant, Option<Histogram<u64>>)>> = Mutex::new(Vec::new());

/// The status body: grade, window, request count and percentiles in µs.
pub fn report() -> Value {
    let now = Instant::now();
    let current = crate::latency::hub().and_then(|h| reads_and_writes(&h.merged(None)));
    let mut baselines = BASELINES.lock().unwrap_or_else(|e| e.into_inner());
    // Keep one baseline per WINDOW/2 and none older than 2×WINDOW (bounded).
    if baselines
        .last()
        .is_none_or(|(t, _)| now.duration_since(*t) >= WINDOW / 2)
    {
        baselines.push((now, current.clone()));
    }
    baselines.retain(|(t, _)| now.duration_since(*t) <= WINDOW * 2);
    // Until a baseline is old enough, grade everything since startup.
    let base = baselines
        .iter()
        .rev()
        .find(|(t, _)| now.duration_since(*t) >= WINDOW);
    let since = base.map_or_else(
        || Duration::from_secs(crate::clock::uptime() as u64),
        |(t, _)| now.duration_since(*t),
    );
    let window = match (current, base.and_then(|(_, b)| b.as_ref())) {
        (Some(mut c), Some(b)) => {
            // Counts only grow, so this cannot underflow.
            let _ = c.subtract(b);
            Some(c)
        }
        (c, _) => c,
    };
    let window = window.filter(|w| !w.is_empty());
    let p99 = window.as_ref().map(|w| w.value_at_quantile(0.99));
    json!({
        "status": grade(p99),
        "window_seconds": since.as_secs(),
        "requests": window.as_ref().map_or(0, |w| w.len()),
        "p50_us": window.as_ref().map(|w| w.value_at_quantile(0.5)),
        "p99_us": p99,
        "thresholds_us": {"green_below": GREEN_BELOW_US, "yellow_below": YELLOW_BELOW_US},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades() {
        assert_eq!(grade(None), "green");
        assert_eq!(grade(Some(120)), "green");
        assert_eq!(grade(Some(GREEN_BELOW_US)), "yellow");
        assert_eq!(grade(Some(9_999)), "yellow");
        assert_eq!(grade(Some(YELLOW_BELOW_US)), "red");
        assert_eq!(grade(Some(2_000_000)), "red");
    }
}
