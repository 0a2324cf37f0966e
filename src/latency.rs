//! Request latency: per-core hdrhistograms per command class, for the whole
//! server and per hosted cache.
//!
//! Each core owns a [`CoreLatency`] (no sharing, no atomics on the request
//! path) and, on its maintenance tick, pushes a copy into its slot of the
//! process-wide [`Hub`]. The admin thread merges the slots when asked. So a
//! reading is at most one push interval (1 s) old.
//!
//! What is measured is service time as the server sees it: from the read
//! that delivered a request until the write that carries its reply (cross-core
//! hops and queueing behind earlier requests of the batch included).
//! Recording costs one clock read per batch, not per request.

use hdrhistogram::Histogram;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Command classes reported separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Get = 0,
    Set = 1,
    Delete = 2,
    IncrDecr = 3,
    Touch = 4,
    Flush = 5,
    Other = 6,
}

pub const CLASSES: [Class; 7] = [
    Class::Get,
    Class::Set,
    Class::Delete,
    Class::IncrDecr,
    Class::Touch,
    Class::Flush,
    Class::Other,
];

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Get => "get",
            Class::Set => "set",
            Class::Delete => "delete",
            Class::IncrDecr => "incr_decr",
            Class::Touch => "touch",
            Class::Flush => "flush",
            Class::Other => "other",
        }
    }
}

/// Largest recorded latency, microseconds (longer ones are clamped).
const MAX_US: u64 = 60_000_000;

/// One class's histogram, microseconds. The server-wide ones keep 2
/// significant digits; a hosted cache's keep 1 (about ±6%), so that
/// thousands of caches cost kilobytes, not megabytes, each.
fn histogram(sigfig: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, sigfig).expect("static histogram bounds are valid")
}

/// Histograms per class, created on first use (most caches only get and set).
#[derive(Clone, Default)]
pub struct ClassHistograms {
    by_class: [Option<Histogram<u64>>; 7],
}

impl ClassHistograms {
    fn record(&mut self, class: Class, us: u64, count: u64, sigfig: u8) {
        self.by_class[class as usize]
            .get_or_insert_with(|| histogram(sigfig))
            .saturating_record_n(us.clamp(1, MAX_US), count);
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &ClassHistograms) {
        for (mine, theirs) in self.by_class.iter_mut().zip(&other.by_class) {
            let Some(theirs) = theirs else { continue };
            match mine {
                Some(m) => {
                    // Same bounds, so this cannot fail; a lower precision
                    // histogram is folded value by value by hdrhistogram.
                    let _ = m.add(theirs);
                }
                None => *mine = Some(theirs.clone()),
            }
        }
    }

    pub fn class(&self, class: Class) -> Option<&Histogram<u64>> {
        self.by_class[class as usize].as_ref()
    }

    /// Requests recorded over every class and the sum of their service
    /// times in nanoseconds (from each histogram's mean, so within its
    /// precision): what the stats history samples for `insight/latency`.
    pub fn totals(&self) -> (u64, u64) {
        self.by_class.iter().flatten().fold((0, 0), |(n, sum), h| {
            let ns = h.mean() * h.len() as f64 * 1000.0;
            (n + h.len(), sum + ns as u64)
        })
    }
}

/// Summary of one histogram, microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        Percentiles {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// One core's histograms: the server's, and each hosted cache's.
#[derive(Clone, Default)]
pub struct CoreLatency {
    pub server: ClassHistograms,
    pub caches: HashMap<u32, ClassHistograms>,
}

impl CoreLatency {
    /// Records `count` requests of `class` that took `us` microseconds; `cache`
    /// 0 is open mode (server-wide only).
    pub fn record(&mut self, cache: u32, class: Class, us: u64, count: u64) {
        if count == 0 {
            return;
        }
        self.server.record(class, us, count, 2);
        if cache != 0 {
            self.caches
                .entry(cache)
                .or_default()
                .record(class, us, count, 1);
        }
    }

    /// Forgets caches that no longer exist.
    pub fn retain_caches(&mut self, keep: impl Fn(u32) -> bool) {
        self.caches.retain(|id, _| keep(*id));
    }
}

/// The latest copy each core pushed.
pub struct Hub {
    slots: Vec<Mutex<Option<CoreLatency>>>,
}

static HUB: OnceLock<Hub> = OnceLock::new();

/// Creates the hub for `n` cores (once per process).
pub fn init(n: usize) -> &'static Hub {
    HUB.get_or_init(|| Hub {
        slots: (0..n).map(|_| Mutex::new(None)).collect(),
    })
}

/// The process-wide hub, if `init` was called.
pub fn hub() -> Option<&'static Hub> {
    HUB.get()
}

impl Hub {
    /// Core `core` publishes its histograms (from its maintenance tick).
    pub fn push(&self, core: usize, snapshot: CoreLatency) {
        if let Some(slot) = self.slots.get(core) {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(snapshot);
        }
    }

    /// Server-wide histograms merged over cores (`cache` None) or one cache's.
    pub fn merged(&self, cache: Option<u32>) -> ClassHistograms {
        let mut all = ClassHistograms::default();
        for slot in &self.slots {
            let slot = slot.lock().unwrap_or_else(|e| e.into_inner());
            let Some(core) = slot.as_ref() else { continue };
            match cache {
                None => all.merge(&core.server),
                Some(id) => {
                    if let Some(h) = core.caches.get(&id) {
                        all.merge(h)
                    }
                }
            }
        }
        all
    }

    /// Percentiles per class name (classes never seen are left out).
    pub fn report(&self, cache: Option<u32>) -> Vec<(&'static str, Percentiles)> {
        let merged = self.merged(cache);
        CLASSES
            .iter()
            .filter_map(|c| merged.class(*c).map(|h| (c.name(), Percentiles::of(h))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_per_class_and_cache_and_merges_cores() {
        let hub = Hub {
            slots: (0..2).map(|_| Mutex::new(None)).collect(),
        };
        let mut a = CoreLatency::default();
        let mut b = CoreLatency::default();
        a.record(7, Class::Get, 100, 90);
        a.record(7, Class::Get, 5_000, 10);
        b.record(8, Class::Set, 40, 5);
        b.record(0, Class::Flush, 0, 1); // clamped to 1 µs
        a.record(7, Class::Delete, 10, 0); // nothing
        hub.push(0, a);
        hub.push(1, b);

        let server = hub.report(None);
        let names: Vec<_> = server.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["get", "set", "flush"]);
        let get = server[0].1;
        assert_eq!(get.count, 100);
        assert!((99..=101).contains(&get.p50), "{get:?}");
        assert!((4_950..=5_050).contains(&get.p99), "{get:?}");
        assert!(get.p50 <= get.p90 && get.p90 <= get.p99 && get.p99 <= get.p999);
        assert!(get.p999 <= get.max);

        let seven = hub.report(Some(7));
        assert_eq!(seven.len(), 1);
        assert_eq!(seven[0].1.count, 100);
        let eight = hub.report(Some(8));
        assert_eq!((eight[0].0, eight[0].1.count), ("set", 5));
        assert!(hub.report(Some(9)).is_empty());
    }

    #[test]
    fn a_cache_histogram_is_small() {
        let mut c = CoreLatency::default();
        c.record(1, Class::Get, 100, 1);
        let h = c.caches[&1].class(Class::Get).unwrap();
        // Counts array bytes: one significant digit keeps it near 3 KB.
        assert!(h.distinct_values() * 8 < 4096, "{}", h.distinct_values());
    }
}
