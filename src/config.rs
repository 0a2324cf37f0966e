//! The server's settings: what the layers below the command line read (the
//! runtime, `stats settings`). Plain data with memcached's defaults; reading
//! them from flags and a TOML file is the command line's job
//! (`crate::cli::args`).

use std::path::PathBuf;
use std::time::Duration;

/// The default admin address: loopback only, so the operator API is not
/// reachable from other hosts unless the operator says so.
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:11299";
/// The default data directory of multi-tenant mode (the server's and the
/// operator subcommands' `--data-dir`).
pub const DEFAULT_DATA_DIR: &str = "./shoal-data";
/// 1 in this many requests feeds the popular-items sketches by default.
pub const DEFAULT_INTROSPECTION_SAMPLE: u32 = 8;
/// Admin connections served at once by default: far more than an
/// operator's tools and the dashboard need, far fewer than the data
/// plane's fds.
pub const DEFAULT_ADMIN_MAX_CONNS: usize = 256;
/// Time an admin connection has to send a request's head, by default.
pub const DEFAULT_ADMIN_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time an admin request has to complete, body included, by default:
/// above the cores' 3 s probe wait and a webhook address check, with room
/// for a slow operator network.
pub const DEFAULT_ADMIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Multi-tenant mode's item memory when `-m` is not given: 1 GiB. memcached's
/// 64 MB would not hold even three of MemCachier's smallest (25 MB) plans,
/// and at the default `--plan-overcommit` of 1 every plan must fit; the limit
/// is a ceiling, memory is taken only as caches fill.
pub const DEFAULT_MULTI_TENANT_MEMORY: usize = 1 << 30;
/// By default the plans may add up to the node's memory, no more: every cache
/// can fill its whole plan at once.
pub const DEFAULT_PLAN_OVERCOMMIT: f64 = 1.0;

/// The server's settings after merging defaults, the config file and flags.
#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    pub listen: String,
    /// Total item memory in bytes, split evenly across cores (multi-tenant
    /// mode: all caches' items together).
    pub memory_limit: usize,
    /// Multi-tenant mode: the plans may add up to `memory_limit` × this
    /// (>= 1); beyond 1 each cache's budget is scaled down as the node fills.
    pub plan_overcommit: f64,
    pub conn_limit: usize,
    pub threads: usize,
    pub item_size_max: usize,
    pub verbosity: u8,
    /// `shutdown` command allowed (memcached `-A`).
    pub enable_shutdown: bool,
    /// CAS disabled (memcached `-C`).
    pub disable_cas: bool,
    /// flush_all disabled (memcached `-F`).
    pub disable_flush_all: bool,
    /// Host many caches: every connection authenticates and sees only its
    /// own cache (off: open mode, memcached-like, no auth).
    pub multi_tenant: bool,
    /// Multi-tenant mode: where caches and credentials are kept.
    pub data_dir: PathBuf,
    /// Warm restart: where a clean stop writes the caches' items and the
    /// next start reads them back; None: off (the default in open mode; in
    /// multi-tenant mode the default is `data_dir`).
    pub restart_dir: Option<PathBuf>,
    /// Multi-tenant mode: the operator HTTP endpoint's address.
    pub admin_addr: String,
    /// Multi-tenant mode: the admin endpoint serves HTTPS with this PEM
    /// certificate chain and the key below (both or neither).
    pub admin_tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of `admin_tls_cert`.
    pub admin_tls_key: Option<PathBuf>,
    /// PEM certificates the other nodes' admin certificates must chain to
    /// (cluster fan-out); None: those of `admin_tls_cert`.
    pub admin_tls_ca: Option<PathBuf>,
    /// Multi-tenant mode: unauthenticated connections are closed after this.
    pub auth_timeout: Duration,
    /// Multi-tenant mode: how often each cache's stats are sampled into history.
    pub stats_interval: Duration,
    /// Multi-tenant mode: 0 turns introspection (recent logs, popular items,
    /// watched prefixes) off; N > 0 feeds 1 in N requests to the top-K sketches
    /// (the recent log sees every request).
    pub introspection_sample: u32,
    /// Multi-tenant mode: SMTP relay (`host:port`) for email alerts; none:
    /// email delivery configs are kept but not sent.
    pub smtp_relay: Option<String>,
    /// Sender address of alert emails.
    pub smtp_from: String,
    /// The cluster name the API reports (one server is one cluster).
    pub cluster_name: String,
    /// Multi-tenant mode: admin connections served at once; more are closed.
    pub admin_max_conns: usize,
    /// Multi-tenant mode: time an admin connection has to send a request's
    /// head (also how long it may sit idle between requests).
    pub admin_header_timeout: Duration,
    /// Multi-tenant mode: time an admin request has to complete.
    pub admin_request_timeout: Duration,
    /// Multi-tenant mode: alert webhooks and Slack URLs may reach loopback,
    /// private and other non-public addresses.
    pub alert_allow_private: bool,
    /// A cluster: the shared control plane (`postgres://...`); none: the
    /// embedded data-dir store, one node.
    pub control_plane: Option<String>,
    /// Cluster: the host (or host:port) clients reach this node at (default:
    /// the listen address and bound port).
    pub advertise: Option<String>,
    /// Cluster: this node's name (default: its advertised host:port).
    pub node_name: Option<String>,
    /// Cluster: time between heartbeats.
    pub heartbeat_interval: Duration,
    /// Cluster: a node silent this long is marked down.
    pub node_timeout: Duration,
    /// Cluster: a drained node stops this long after leaving the list.
    pub drain_grace: Duration,
    /// TLS on the data port (and/or a TLS port beside it); None: plain only.
    pub tls: Option<TlsConfig>,
}

/// Where the data port speaks TLS, and with what.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub settings: crate::tls::Settings,
    /// A TLS port beside the plain one (`--tls-port`).
    pub port: Option<u16>,
    /// The main port (-p) speaks TLS too (`-Z`).
    pub on_main_port: bool,
}

impl Default for Config {
    /// memcached's defaults (`-p 11211 -l 127.0.0.1 -m 64 -c 1024 -I 1m`),
    /// one executor per core, open mode.
    fn default() -> Config {
        Config {
            port: 11211,
            listen: "127.0.0.1".into(),
            memory_limit: 64 << 20,
            plan_overcommit: DEFAULT_PLAN_OVERCOMMIT,
            conn_limit: 1024,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            item_size_max: 1 << 20,
            verbosity: 0,
            enable_shutdown: false,
            disable_cas: false,
            disable_flush_all: false,
            multi_tenant: false,
            data_dir: DEFAULT_DATA_DIR.into(),
            restart_dir: None,
            admin_addr: DEFAULT_ADMIN_ADDR.into(),
            admin_tls_cert: None,
            admin_tls_key: None,
            admin_tls_ca: None,
            auth_timeout: Duration::from_secs(5),
            stats_interval: Duration::from_secs(10),
            introspection_sample: DEFAULT_INTROSPECTION_SAMPLE,
            smtp_relay: None,
            smtp_from: "shoal@localhost".into(),
            cluster_name: "local".into(),
            admin_max_conns: DEFAULT_ADMIN_MAX_CONNS,
            admin_header_timeout: DEFAULT_ADMIN_HEADER_TIMEOUT,
            admin_request_timeout: DEFAULT_ADMIN_REQUEST_TIMEOUT,
            alert_allow_private: false,
            control_plane: None,
            advertise: None,
            node_name: None,
            heartbeat_interval: Duration::from_secs(1),
            node_timeout: Duration::from_secs(5),
            drain_grace: Duration::from_secs(5),
            tls: None,
        }
    }
}
