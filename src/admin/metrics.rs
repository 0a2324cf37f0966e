//! `GET /metrics`: Prometheus text format (0.0.4), built with
//! `prometheus-client` on each scrape.
//!
//! Names are prometheus/memcached_exporter's (protocol.md §3.1), so
//! dashboards and alerts written for memcached work unchanged. Every
//! family has a server-wide series (no `cache` label) and, for the
//! cache-scoped ones, one series per hosted cache of the control store with
//! `cache="<id>"` — the numbers `stats` reports on a connection of that
//! cache. Process-wide facts (`up`, uptime, time, version, CPU, connection
//! limit, listener) have only the server series, so `sum without (cache)`
//! over a family never counts the process twice.
//!
//! Server-wide numbers in multi-tenant mode: a connection's commands are
//! counted in its cache's registry once it has authenticated, so the server
//! series is the server registry (connections, authentication, requests
//! before login) plus every hosted cache's; open and total connections are
//! the server registry's alone (it counts every accepted connection, the
//! caches count them again after login). A deleted cache's counters leave
//! the server sums, which Prometheus sees as a counter reset.
//!
//! Latency: `shoal_request_duration_seconds{class}` histograms made from the
//! cores' hdrhistograms (pushed once a second, so at most that old), with
//! fixed buckets from 10 µs to 100 ms. An hdr value counts in a bucket when
//! the highest value of its hdr range is within the bound, so a bucket can
//! only be under-counted, by at most the histogram's precision (±1% server,
//! ±6% per cache).

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use crate::latency::{ClassHistograms, CLASSES};
use crate::stats::Totals;

/// The `Content-Type` of the response (Prometheus text format 0.0.4, which
/// `promtool check metrics` and every Prometheus server read).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Bucket bounds of the latency histograms, microseconds (+Inf is implied).
const BOUNDS_US: [u64; 13] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000,
];

/// `-c` (memcached's `maxconns`), for `memcached_max_connections`; 0 = not
/// told, and the family is left out.
static MAX_CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// Tells `/metrics` the connection limit (`-c`); called once at startup.
pub fn set_max_connections(n: u64) {
    MAX_CONNECTIONS.store(n, Ordering::Relaxed);
}

/// One scope's numbers: the server's or one hosted cache's.
struct Scope {
    /// `None` for the server-wide series.
    cache: Option<u32>,
    totals: Totals,
    limit_bytes: u64,
    latency: ClassHistograms,
}

impl Scope {
    fn labels(&self) -> Labels {
        match self.cache {
            None => Vec::new(),
            Some(id) => vec![(Cow::Borrowed("cache"), Cow::Owned(id.to_string()))],
        }
    }
}

type Labels = Vec<(Cow<'static, str>, Cow<'static, str>)>;

/// Everything one scrape reports, read before encoding starts.
struct Snapshot {
    /// The server scope first, then the caches by id.
    scopes: Vec<Scope>,
    uptime: u64,
    time: u64,
    rusage_user: f64,
    rusage_system: f64,
    max_connections: u64,
    tls: Option<TlsNumbers>,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("scopes", &self.scopes.len())
            .finish()
    }
}

/// Renders the `/metrics` body. `caches` are the hosted caches of the control
/// store as `(id, plan bytes)`.
pub(crate) fn render(caches: &[(u32, u64)]) -> String {
    let snapshot = snapshot(caches);
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(snapshot));
    let mut body = String::new();
    // Writing to a String cannot fail, and the collector does not fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut body, &registry);
    body
}

fn snapshot(caches: &[(u32, u64)]) -> Snapshot {
    let (rusage_user, rusage_system) = rusage();
    let mut scopes = Vec::with_capacity(caches.len() + 1);
    // The stats and latency registries exist once the runtime started (an
    // admin endpoint spawned on its own, as in tests, has neither).
    let hub = crate::latency::hub();
    if let Some(hub) = hub {
        let mut caches = caches.to_vec();
        caches.sort_unstable();
        let server = crate::stats::registry().totals();
        let mut all = server;
        for &(id, plan) in &caches {
            let t = crate::stats::cache(id).totals();
            all.add(&t);
            scopes.push(Scope {
                cache: Some(id),
                totals: t,
                limit_bytes: plan,
                latency: hub.merged(Some(id)),
            });
        }
        // Connections are counted by the server registry on accept and
        // again by a cache on login: take the server's.
        all.curr_connections = server.curr_connections;
        all.total_connections = server.total_connections;
        let server_scope = Scope {
            cache: None,
            totals: all,
            // The server's own memory limit (-m), which the plans share.
            limit_bytes: server.limit_maxbytes,
            latency: hub.merged(None),
        };
        scopes.insert(0, server_scope);
    }
    Snapshot {
        scopes,
        uptime: crate::clock::uptime() as u64,
        time: crate::clock::unix_now() as u64,
        rusage_user,
        rusage_system,
        max_connections: MAX_CONNECTIONS.load(Ordering::Relaxed),
        tls: crate::tls::installed().map(|t| TlsNumbers {
            handshake_errors: t.handshake_errors(),
            new_sessions: t.new_sessions(),
            since_refresh: t.time_since_refresh(),
        }),
    }
}

/// memcached's TLS stats, when a listener speaks TLS.
struct TlsNumbers {
    handshake_errors: u64,
    new_sessions: u64,
    since_refresh: u64,
}

/// User and system CPU seconds of the process.
fn rusage() -> (f64, f64) {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(u.ru_utime), secs(u.ru_stime))
}

/// A latency histogram in seconds, from an hdrhistogram in microseconds.
#[derive(Debug)]
struct LatencyHistogram {
    sum: f64,
    count: u64,
    /// `(upper bound, count in this bucket alone)`, ending with +Inf.
    buckets: Vec<(f64, u64)>,
}

impl LatencyHistogram {
    fn from_hdr(h: &Histogram<u64>) -> LatencyHistogram {
        let mut per = [0u64; BOUNDS_US.len() + 1];
        let mut sum_us = 0f64;
        for v in h.iter_recorded() {
            let n = v.count_at_value();
            let top = v.value_iterated_to();
            per[BOUNDS_US.partition_point(|b| *b < top)] += n;
            sum_us += h.median_equivalent(top) as f64 * n as f64;
        }
        let buckets = BOUNDS_US
            .iter()
            .map(|b| *b as f64 / 1e6)
            .chain(std::iter::once(f64::INFINITY))
            .zip(per)
            .collect();
        LatencyHistogram {
            sum: sum_us / 1e6,
            count: per.iter().sum(),
            buckets,
        }
    }
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(self.sum, self.count, &self.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// How a family's value is read from a scope.
type Read = fn(&Scope) -> u64;

/// A family with one series per scope (server, then each cache).
struct Family {
    /// The name without the `_total` prometheus-client adds to counters.
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    read: Read,
}

/// The families reported per scope, in memcached_exporter's order.
const PER_SCOPE: &[Family] = &[
    Family {
        name: "memcached_read_bytes",
        help: "Total number of bytes read by this server from network.",
        kind: MetricType::Counter,
        read: |s| s.totals.bytes_read,
    },
    Family {
        name: "memcached_written_bytes",
        help: "Total number of bytes sent by this server to network.",
        kind: MetricType::Counter,
        read: |s| s.totals.bytes_written,
    },
    Family {
        name: "memcached_current_connections",
        help: "Current number of open connections.",
        kind: MetricType::Gauge,
        read: |s| s.totals.curr_connections,
    },
    Family {
        name: "memcached_connections",
        help: "Total number of connections opened since the server started running.",
        kind: MetricType::Counter,
        read: |s| s.totals.total_connections,
    },
    Family {
        name: "memcached_connections_rejected",
        help: "Total number of connections rejected due to hitting the connection limit (-c, or a cache's own).",
        kind: MetricType::Counter,
        read: |s| s.totals.rejected_connections,
    },
    Family {
        name: "memcached_connections_yielded",
        help: "Total number of connections yielded running due to hitting the per-event request limit.",
        kind: MetricType::Counter,
        read: |s| s.totals.conn_yields,
    },
    Family {
        name: "memcached_current_bytes",
        help: "Current number of bytes used to store items.",
        kind: MetricType::Gauge,
        read: |s| s.totals.bytes,
    },
    Family {
        name: "memcached_limit_bytes",
        help: "Number of bytes this server (or cache: its plan) is allowed to use for storage.",
        kind: MetricType::Gauge,
        read: |s| s.limit_bytes,
    },
    Family {
        name: "memcached_current_items",
        help: "Current number of items stored by this instance.",
        kind: MetricType::Gauge,
        read: |s| s.totals.curr_items,
    },
    Family {
        name: "memcached_items",
        help: "Total number of items stored during the life of this instance.",
        kind: MetricType::Counter,
        read: |s| s.totals.total_items,
    },
    Family {
        name: "memcached_items_evicted",
        help: "Total number of valid items removed from cache to free memory for new items.",
        kind: MetricType::Counter,
        read: |s| s.totals.evictions,
    },
    Family {
        name: "memcached_items_reclaimed",
        help: "Total number of times an entry was stored using memory from an expired entry.",
        kind: MetricType::Counter,
        read: |s| s.totals.reclaimed,
    },
    Family {
        name: "memcached_item_too_large",
        help: "The number of times an item exceeded the max-item-size when being stored.",
        kind: MetricType::Counter,
        read: |s| s.totals.store_too_large,
    },
    Family {
        name: "memcached_item_no_memory",
        help: "The number of times an item could not be stored due to no more memory.",
        kind: MetricType::Counter,
        read: |s| s.totals.store_no_memory,
    },
    Family {
        name: "memcached_direct_reclaims",
        help: "Times worker threads had to directly reclaim or evict items.",
        kind: MetricType::Counter,
        read: |s| direct_reclaims(&s.totals),
    },
    Family {
        name: "memcached_malloced_bytes",
        help: "Number of bytes of memory allocated to the stores (items and index).",
        kind: MetricType::Gauge,
        read: |s| s.totals.mem_used,
    },
];

/// `direct_reclaims`: shoal has no background LRU maintainer, so every
/// eviction is done by the core storing the new item (the same number
/// `stats` reports).
fn direct_reclaims(t: &Totals) -> u64 {
    t.evictions
}

/// `memcached_commands_total{command,status}` from `stats` as the exporter
/// derives it (`set`/`hit` is `cmd_set` minus the CAS commands).
fn commands(t: &Totals) -> [(&'static str, &'static str, u64); 15] {
    let cas = t.cas_hits + t.cas_misses + t.cas_badval;
    [
        ("get", "hit", t.get_hits),
        ("get", "miss", t.get_misses),
        ("delete", "hit", t.delete_hits),
        ("delete", "miss", t.delete_misses),
        ("incr", "hit", t.incr_hits),
        ("incr", "miss", t.incr_misses),
        ("decr", "hit", t.decr_hits),
        ("decr", "miss", t.decr_misses),
        ("cas", "hit", t.cas_hits),
        ("cas", "miss", t.cas_misses),
        ("cas", "badval", t.cas_badval),
        ("touch", "hit", t.touch_hits),
        ("touch", "miss", t.touch_misses),
        ("flush", "hit", t.cmd_flush),
        ("set", "hit", t.cmd_set.saturating_sub(cas)),
    ]
}

fn one<M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: M,
) -> Result<(), fmt::Error> {
    let m = enc.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(m)
}

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), fmt::Error> {
        one(
            &mut enc,
            "memcached_up",
            "Could the memcached server be reached.",
            ConstGauge::new(1i64),
        )?;
        one(
            &mut enc,
            "memcached_uptime_seconds",
            "Number of seconds since the server started.",
            ConstGauge::new(self.uptime),
        )?;
        one(
            &mut enc,
            "memcached_time_seconds",
            "current UNIX time according to the server.",
            ConstGauge::new(self.time),
        )?;
        {
            let mut m = enc.encode_descriptor(
                "memcached_version",
                "The version of this memcached server.",
                None,
                MetricType::Gauge,
            )?;
            // The memcached version shoal answers on every protocol, as
            // memcached_exporter reports it; shoal's own below.
            let labels = [("version", crate::protocol::MEMCACHED_VERSION)];
            ConstGauge::new(1i64).encode(m.encode_family(&labels)?)?;
        }
        {
            let mut m = enc.encode_descriptor(
                "shoal_version",
                "The version of shoal itself.",
                None,
                MetricType::Gauge,
            )?;
            let labels = [("version", env!("CARGO_PKG_VERSION"))];
            ConstGauge::new(1i64).encode(m.encode_family(&labels)?)?;
        }
        one(
            &mut enc,
            "memcached_process_user_cpu_seconds",
            "Accumulated user time for this process.",
            ConstCounter::new(self.rusage_user),
        )?;
        one(
            &mut enc,
            "memcached_process_system_cpu_seconds",
            "Accumulated system time for this process.",
            ConstCounter::new(self.rusage_system),
        )?;
        if self.max_connections > 0 {
            one(
                &mut enc,
                "memcached_max_connections",
                "Maximum number of clients allowed.",
                ConstGauge::new(self.max_connections),
            )?;
        }
        one(
            &mut enc,
            "memcached_connections_listener_disabled",
            "Number of times that memcached has hit its connections limit and disabled its listener.",
            // shoal never disables its listener: over the limit it closes
            // the new connection (rejected_connections).
            ConstCounter::new(0u64),
        )?;
        one(
            &mut enc,
            "memcached_accepting_conns",
            "The server is currently accepting connections.",
            ConstGauge::new(1i64),
        )?;
        if let Some(tls) = &self.tls {
            one(
                &mut enc,
                "shoal_tls_handshake_errors",
                "TLS handshakes that failed (memcached's ssl_handshake_errors).",
                ConstCounter::new(tls.handshake_errors),
            )?;
            one(
                &mut enc,
                "shoal_tls_new_sessions",
                "TLS handshakes that did not resume a session (memcached's ssl_new_sessions).",
                ConstCounter::new(tls.new_sessions),
            )?;
            one(
                &mut enc,
                "shoal_tls_seconds_since_cert_refresh",
                "Seconds since the TLS certificate was last loaded (memcached's time_since_server_cert_refresh).",
                ConstGauge::new(tls.since_refresh as i64),
            )?;
        }
        if self.scopes.is_empty() {
            return Ok(());
        }

        for f in PER_SCOPE {
            let mut m = enc.encode_descriptor(f.name, f.help, None, f.kind)?;
            for s in &self.scopes {
                let labels = s.labels();
                let v = (f.read)(s);
                let series = m.encode_family(&labels)?;
                match f.kind {
                    MetricType::Counter => ConstCounter::new(v).encode(series)?,
                    _ => ConstGauge::new(v).encode(series)?,
                }
            }
        }

        {
            let mut m = enc.encode_descriptor(
                "memcached_commands",
                "Total number of all requests broken down by command (get, set, etc.) and status.",
                None,
                MetricType::Counter,
            )?;
            for s in &self.scopes {
                for (command, status, v) in commands(&s.totals) {
                    let mut labels = s.labels();
                    labels.push((Cow::Borrowed("command"), Cow::Borrowed(command)));
                    labels.push((Cow::Borrowed("status"), Cow::Borrowed(status)));
                    ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
                }
            }
        }

        let mut m = enc.encode_descriptor(
            "shoal_request_duration_seconds",
            "Request service time per command class, from the read that delivered the request to the write of its reply.",
            None,
            MetricType::Histogram,
        )?;
        for s in &self.scopes {
            for class in CLASSES {
                let Some(h) = s.latency.class(class) else {
                    continue;
                };
                let mut labels = s.labels();
                labels.push((Cow::Borrowed("class"), Cow::Borrowed(class.name())));
                LatencyHistogram::from_hdr(h).encode(m.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_at_count() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 2).unwrap();
        h.record_n(5, 3).unwrap(); // 10 µs bucket
        h.record_n(100, 2).unwrap(); // 100 µs bucket
        h.record_n(2_000, 1).unwrap(); // 2.5 ms bucket
        h.record_n(1_000_000, 1).unwrap(); // +Inf
        let l = LatencyHistogram::from_hdr(&h);
        assert_eq!(l.count, 7);
        let per: Vec<u64> = l.buckets.iter().map(|b| b.1).collect();
        assert_eq!(per, [3, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(l.buckets[3].0, 0.0001);
        assert!(l.buckets.last().unwrap().0.is_infinite());
        let want = (3.0 * 5.0 + 2.0 * 100.0 + 2_000.0 + 1_000_000.0) / 1e6;
        assert!((l.sum - want).abs() / want < 0.01, "{} vs {want}", l.sum);
    }

    #[test]
    fn counters_get_one_total_suffix() {
        let body = render(&[]);
        assert!(!body.contains("_total_total"), "{body}");
        assert!(
            body.contains("memcached_process_user_cpu_seconds_total "),
            "{body}"
        );
        assert!(
            body.contains(&format!(
                "memcached_version{{version=\"{}\"}} 1",
                crate::protocol::MEMCACHED_VERSION
            )),
            "{body}"
        );
        assert!(
            body.contains(&format!(
                "shoal_version{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            )),
            "{body}"
        );
    }
}
