//! The server's command line and config file. Flags follow memcached's
//! conventions so an operator's muscle memory (`-p -l -m -c -t -I -v`)
//! carries over; every flag can also be set in a TOML file given with
//! `--config` (same long names, command line wins). [`Cli::into_config`]
//! merges both over [`Config`]'s defaults.

use clap::{ArgAction, Parser};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;

#[derive(Parser, Debug, Default)]
#[command(
    name = "shoal",
    version,
    about = "shoal — a memcached-compatible, thread-per-core cache server",
    long_about = None
)]
pub struct Cli {
    /// TCP port to listen on (default: 11211)
    #[arg(short = 'p', long = "port")]
    pub port: Option<u16>,
    /// interface to listen on (default: 127.0.0.1)
    #[arg(short = 'l', long = "listen")]
    pub listen: Option<String>,
    /// item memory in megabytes (default: 64; multi-tenant mode: 1024, shared by all caches)
    #[arg(short = 'm', long = "memory-limit")]
    pub memory_limit: Option<u64>,
    /// max simultaneous connections (default: 1024)
    #[arg(short = 'c', long = "conn-limit")]
    pub conn_limit: Option<usize>,
    /// number of cores (threads) to use (default: all)
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// adjusts max item size (default: 1m, min: 1k, max: 1024m)
    #[arg(short = 'I', long = "max-item-size")]
    pub max_item_size: Option<String>,
    /// verbose (print errors/warnings); -vv very verbose
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,
    /// enable the ascii "shutdown" command
    #[arg(short = 'A', long = "enable-shutdown")]
    pub enable_shutdown: bool,
    /// disable use of CAS
    #[arg(short = 'C', long = "disable-cas")]
    pub disable_cas: bool,
    /// disable flush_all command
    #[arg(short = 'F', long = "disable-flush-all")]
    pub disable_flush_all: bool,
    /// read settings from a TOML file (keys: port, listen, memory-limit, conn-limit,
    /// threads, max-item-size, verbose)
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// host many caches with their own credentials and memory plans
    #[arg(long = "multi-tenant")]
    pub multi_tenant: bool,
    /// multi-tenant mode: directory for caches, credentials and the operator token (default: ./shoal-data)
    #[arg(long = "data-dir", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// warm restart: a clean stop (SIGTERM, SIGUSR1, shutdown) saves the items here and the next start loads them; "" turns it off (default: off; multi-tenant mode: the data dir)
    #[arg(long = "restart-dir", value_name = "DIR", value_parser = any_path)]
    pub restart_dir: Option<PathBuf>,
    /// multi-tenant mode: address of the operator HTTP endpoint (default: 127.0.0.1:11299)
    #[arg(long = "admin-addr", value_name = "ADDR")]
    pub admin_addr: Option<String>,
    /// multi-tenant mode: serve the admin endpoint over HTTPS with this PEM certificate chain (with --admin-tls-key)
    #[arg(long = "admin-tls-cert", value_name = "FILE")]
    pub admin_tls_cert: Option<PathBuf>,
    /// multi-tenant mode: the PEM private key (PKCS#8, PKCS#1 or SEC1) of --admin-tls-cert
    #[arg(long = "admin-tls-key", value_name = "FILE")]
    pub admin_tls_key: Option<PathBuf>,
    /// cluster: PEM certificates the other nodes' admin certificates must chain to (default: those of --admin-tls-cert)
    #[arg(long = "admin-tls-ca", value_name = "FILE")]
    pub admin_tls_ca: Option<PathBuf>,
    /// multi-tenant mode: seconds a connection has to authenticate (default: 5)
    #[arg(long = "auth-timeout", value_name = "SECS")]
    pub auth_timeout: Option<f64>,
    /// multi-tenant mode: seconds between stats history samples (default: 10)
    #[arg(long = "stats-interval", value_name = "SECS")]
    pub stats_interval: Option<f64>,
    /// multi-tenant mode: 1 in N requests feed the popular-items sketches; 0 turns introspection off (default: 8)
    #[arg(long = "introspection-sample", value_name = "N")]
    pub introspection_sample: Option<u32>,
    /// multi-tenant mode: SMTP relay host:port for email alerts (default: none, email alerts not sent)
    #[arg(long = "smtp-relay", value_name = "HOST:PORT")]
    pub smtp_relay: Option<String>,
    /// multi-tenant mode: sender address of alert emails (default: shoal@localhost)
    #[arg(long = "smtp-from", value_name = "ADDR")]
    pub smtp_from: Option<String>,
    /// multi-tenant mode: cluster name reported by the API (default: local)
    #[arg(long = "cluster-name", value_name = "NAME")]
    pub cluster_name: Option<String>,
    /// multi-tenant mode: admin connections served at once; more are closed at once (default: 256)
    #[arg(long = "admin-max-conns", value_name = "N")]
    pub admin_max_conns: Option<usize>,
    /// multi-tenant mode: seconds an admin connection has to send a request's headers, and may stay idle (default: 10)
    #[arg(long = "admin-header-timeout", value_name = "SECS")]
    pub admin_header_timeout: Option<f64>,
    /// multi-tenant mode: seconds an admin request has to complete, body included (default: 30)
    #[arg(long = "admin-request-timeout", value_name = "SECS")]
    pub admin_request_timeout: Option<f64>,
    /// multi-tenant mode: the caches' plans may add up to -m times RATIO; above 1 each cache's memory is scaled down when the node fills (default: 1)
    #[arg(long = "plan-overcommit", value_name = "RATIO")]
    pub plan_overcommit: Option<f64>,
    /// multi-tenant mode: let alert webhooks and Slack URLs reach loopback, private, link-local and other non-public addresses
    #[arg(long = "alert-allow-private")]
    pub alert_allow_private: bool,
    /// run as one node of a cluster whose caches and credentials live in PostgreSQL (postgres://user@host:port/db); implies --multi-tenant
    #[arg(long = "control-plane", value_name = "URL")]
    pub control_plane: Option<String>,
    /// cluster: HOST or HOST:PORT clients reach this node at (default: the listen address and port)
    #[arg(long = "advertise", value_name = "HOST[:PORT]")]
    pub advertise: Option<String>,
    /// cluster: this node's unique name (default: its advertised HOST:PORT)
    #[arg(long = "node-name", value_name = "NAME")]
    pub node_name: Option<String>,
    /// cluster: seconds between heartbeats (default: 1)
    #[arg(long = "heartbeat-interval", value_name = "SECS")]
    pub heartbeat_interval: Option<f64>,
    /// cluster: seconds without a heartbeat before a node is marked down (default: 5)
    #[arg(long = "node-timeout", value_name = "SECS")]
    pub node_timeout: Option<f64>,
    /// cluster: seconds a drained node keeps serving after it left the discovery list (default: 5)
    #[arg(long = "drain-grace", value_name = "SECS")]
    pub drain_grace: Option<f64>,
    #[command(flatten)]
    pub tls: super::tls_args::TlsArgs,
    /// operator commands against a running multi-tenant server
    #[command(subcommand)]
    pub command: Option<super::Subcommand>,
}

/// The TOML file: same keys as the long flags.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub port: Option<u16>,
    pub listen: Option<String>,
    pub memory_limit: Option<u64>,
    pub conn_limit: Option<usize>,
    pub threads: Option<usize>,
    pub max_item_size: Option<String>,
    pub verbose: Option<u8>,
    pub enable_shutdown: Option<bool>,
    pub disable_cas: Option<bool>,
    pub disable_flush_all: Option<bool>,
    pub multi_tenant: Option<bool>,
    pub data_dir: Option<PathBuf>,
    pub restart_dir: Option<PathBuf>,
    pub admin_addr: Option<String>,
    pub admin_tls_cert: Option<PathBuf>,
    pub admin_tls_key: Option<PathBuf>,
    pub admin_tls_ca: Option<PathBuf>,
    pub auth_timeout: Option<f64>,
    pub stats_interval: Option<f64>,
    pub introspection_sample: Option<u32>,
    pub smtp_relay: Option<String>,
    pub smtp_from: Option<String>,
    pub cluster_name: Option<String>,
    pub admin_max_conns: Option<usize>,
    pub admin_header_timeout: Option<f64>,
    pub admin_request_timeout: Option<f64>,
    pub alert_allow_private: Option<bool>,
    pub plan_overcommit: Option<f64>,
    pub control_plane: Option<String>,
    pub advertise: Option<String>,
    pub node_name: Option<String>,
    pub heartbeat_interval: Option<f64>,
    pub node_timeout: Option<f64>,
    pub drain_grace: Option<f64>,
    #[serde(default)]
    pub tls: super::tls_args::TlsFile,
}

/// Seconds from a flag or the file, within 0.1 s to an hour.
fn seconds(name: &str, v: Option<f64>, default: Duration) -> Result<Duration, String> {
    match v {
        Some(secs) if !(0.1..=3600.0).contains(&secs) => {
            Err(format!("{name} must be between 0.1 and 3600 seconds"))
        }
        Some(secs) => Ok(Duration::from_secs_f64(secs)),
        None => Ok(default),
    }
}

/// A path as given, the empty one included (`--restart-dir ''` = off).
fn any_path(s: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(s))
}

/// Parses memcached's size syntax: `1m`, `512k`, `2097152`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1024),
        Some('m' | 'M') => (&s[..s.len() - 1], 1024 * 1024),
        Some('g' | 'G') => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    let n: usize = num.parse().map_err(|_| format!("invalid size '{s}'"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("size '{s}' too large"))
}

impl Cli {
    /// The settings in effect: [`Config`]'s defaults, overridden by the
    /// optional TOML file, overridden by the flags.
    pub fn into_config(self) -> Result<Config, String> {
        let file = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
                toml::from_str::<FileConfig>(&text).map_err(|e| format!("{}: {e}", p.display()))?
            }
            None => FileConfig::default(),
        };
        let d = Config::default();
        let threads = self.threads.or(file.threads).unwrap_or(d.threads);
        if threads == 0 || threads > 256 {
            return Err("threads must be between 1 and 256".into());
        }
        let item_size_max = match self.max_item_size.or(file.max_item_size) {
            Some(s) => parse_size(&s)?,
            None => d.item_size_max,
        };
        if item_size_max < 1024 {
            return Err("Item max size cannot be less than 1024 bytes.".into());
        }
        if item_size_max > 1024 * 1024 * 1024 {
            return Err("Cannot set item size limit higher than 1 gigabyte.".into());
        }
        let auth_timeout = match self.auth_timeout.or(file.auth_timeout) {
            Some(secs) if !(secs > 0.0 && secs <= 3600.0) => {
                return Err("auth-timeout must be between 0 and 3600 seconds".into())
            }
            Some(secs) => Duration::from_secs_f64(secs),
            None => d.auth_timeout,
        };
        let stats_interval = match self.stats_interval.or(file.stats_interval) {
            Some(secs) if !(0.1..=86_400.0).contains(&secs) => {
                return Err("stats-interval must be between 0.1 and 86400 seconds".into())
            }
            Some(secs) => Duration::from_secs_f64(secs),
            None => d.stats_interval,
        };
        let admin_header_timeout = seconds(
            "admin-header-timeout",
            self.admin_header_timeout.or(file.admin_header_timeout),
            d.admin_header_timeout,
        )?;
        let admin_request_timeout = seconds(
            "admin-request-timeout",
            self.admin_request_timeout.or(file.admin_request_timeout),
            d.admin_request_timeout,
        )?;
        let admin_max_conns = self
            .admin_max_conns
            .or(file.admin_max_conns)
            .unwrap_or(d.admin_max_conns);
        if admin_max_conns == 0 {
            return Err("admin-max-conns must be at least 1".into());
        }
        let admin_tls_cert = self.admin_tls_cert.or(file.admin_tls_cert);
        let admin_tls_key = self.admin_tls_key.or(file.admin_tls_key);
        let admin_tls_ca = self.admin_tls_ca.or(file.admin_tls_ca);
        if admin_tls_cert.is_some() != admin_tls_key.is_some() {
            return Err("admin-tls-cert and admin-tls-key go together".into());
        }
        if admin_tls_ca.is_some() && admin_tls_cert.is_none() {
            return Err("admin-tls-ca needs admin-tls-cert and admin-tls-key".into());
        }
        let control_plane = self.control_plane.or(file.control_plane);
        if let Some(url) = &control_plane {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err("control-plane must be a postgres:// URL".into());
            }
        }
        let heartbeat_interval = seconds(
            "heartbeat-interval",
            self.heartbeat_interval.or(file.heartbeat_interval),
            d.heartbeat_interval,
        )?;
        let node_timeout = seconds(
            "node-timeout",
            self.node_timeout.or(file.node_timeout),
            d.node_timeout,
        )?;
        if node_timeout <= heartbeat_interval {
            return Err("node-timeout must be longer than heartbeat-interval".into());
        }
        let drain_grace = seconds(
            "drain-grace",
            self.drain_grace.or(file.drain_grace),
            d.drain_grace,
        )?;
        let multi_tenant = self.multi_tenant
            || control_plane.is_some()
            || file.multi_tenant.unwrap_or(d.multi_tenant);
        let memory_limit = match self.memory_limit.or(file.memory_limit) {
            Some(mb) => usize::try_from(mb)
                .ok()
                .and_then(|mb| mb.checked_mul(1024 * 1024))
                .ok_or("memory limit too large")?,
            None if multi_tenant => crate::config::DEFAULT_MULTI_TENANT_MEMORY,
            None => d.memory_limit,
        };
        if multi_tenant && (memory_limit as u64) < crate::tenancy::capacity::MIN_PLAN {
            return Err("multi-tenant mode needs -m of at least 1 (megabyte)".into());
        }
        let plan_overcommit = self
            .plan_overcommit
            .or(file.plan_overcommit)
            .unwrap_or(d.plan_overcommit);
        if !(1.0..=1000.0).contains(&plan_overcommit) {
            return Err("plan-overcommit must be between 1 and 1000".into());
        }
        let tls = self.tls.into_config(file.tls)?;
        let data_dir = self.data_dir.or(file.data_dir).unwrap_or(d.data_dir);
        let restart_dir = match self.restart_dir.or(file.restart_dir) {
            Some(dir) if dir.as_os_str().is_empty() => None,
            Some(dir) => Some(dir),
            None if multi_tenant => Some(data_dir.clone()),
            None => d.restart_dir,
        };
        Ok(Config {
            tls,
            port: self.port.or(file.port).unwrap_or(d.port),
            listen: self.listen.or(file.listen).unwrap_or(d.listen),
            memory_limit,
            plan_overcommit,
            conn_limit: self
                .conn_limit
                .or(file.conn_limit)
                .unwrap_or(d.conn_limit)
                .max(1),
            threads,
            item_size_max,
            verbosity: if self.verbose > 0 {
                self.verbose
            } else {
                file.verbose.unwrap_or(d.verbosity)
            },
            enable_shutdown: self.enable_shutdown
                || file.enable_shutdown.unwrap_or(d.enable_shutdown),
            disable_cas: self.disable_cas || file.disable_cas.unwrap_or(d.disable_cas),
            disable_flush_all: self.disable_flush_all
                || file.disable_flush_all.unwrap_or(d.disable_flush_all),
            multi_tenant,
            data_dir,
            restart_dir,
            admin_addr: self.admin_addr.or(file.admin_addr).unwrap_or(d.admin_addr),
            admin_tls_cert,
            admin_tls_key,
            admin_tls_ca,
            auth_timeout,
            stats_interval,
            introspection_sample: self
                .introspection_sample
                .or(file.introspection_sample)
                .unwrap_or(d.introspection_sample),
            smtp_relay: self.smtp_relay.or(file.smtp_relay).or(d.smtp_relay),
            smtp_from: self.smtp_from.or(file.smtp_from).unwrap_or(d.smtp_from),
            cluster_name: self
                .cluster_name
                .or(file.cluster_name)
                .unwrap_or(d.cluster_name),
            admin_max_conns,
            admin_header_timeout,
            admin_request_timeout,
            alert_allow_private: self.alert_allow_private
                || file.alert_allow_private.unwrap_or(d.alert_allow_private),
            control_plane,
            advertise: self.advertise.or(file.advertise),
            node_name: self.node_name.or(file.node_name),
            heartbeat_interval,
            node_timeout,
            drain_grace,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("2048"), Ok(2048));
        assert!(parse_size("x").is_err());
    }

    #[test]
    fn defaults_and_file() {
        let c = Cli::default().into_config().unwrap();
        assert_eq!(
            (c.port, c.listen.as_str(), c.memory_limit),
            (11211, "127.0.0.1", 64 << 20)
        );
        let dir = std::env::temp_dir().join(format!("shoal-cfg-{}", std::process::id()));
        std::fs::write(&dir, "port = 2222\nmemory-limit = 8\nthreads = 1\n").unwrap();
        let cli = Cli {
            config: Some(dir.clone()),
            port: Some(3333),
            ..Cli::default()
        };
        let c = cli.into_config().unwrap();
        std::fs::remove_file(&dir).ok();
        assert_eq!((c.port, c.memory_limit, c.threads), (3333, 8 << 20, 1));
    }

    #[test]
    fn multi_tenant_memory_and_overcommit() {
        let mt = |m: Option<u64>, r: Option<f64>| {
            Cli {
                multi_tenant: true,
                memory_limit: m,
                plan_overcommit: r,
                ..Cli::default()
            }
            .into_config()
        };
        let c = mt(None, None).unwrap();
        assert_eq!((c.memory_limit, c.plan_overcommit), (1 << 30, 1.0));
        let c = mt(Some(64), Some(2.5)).unwrap();
        assert_eq!((c.memory_limit, c.plan_overcommit), (64 << 20, 2.5));
        for bad in [0.5, 0.0, -1.0, f64::NAN, f64::INFINITY, 1001.0] {
            assert!(mt(None, Some(bad)).is_err(), "{bad}");
        }
        assert!(mt(Some(u64::MAX), None).is_err());
    }

    #[test]
    fn restart_dir_defaults() {
        let c = Cli::default().into_config().unwrap();
        assert_eq!(c.restart_dir, None);
        let c = Cli {
            restart_dir: Some("/tmp/r".into()),
            ..Cli::default()
        }
        .into_config()
        .unwrap();
        assert_eq!(c.restart_dir, Some("/tmp/r".into()));
        let c = Cli {
            multi_tenant: true,
            data_dir: Some("/tmp/d".into()),
            ..Cli::default()
        }
        .into_config()
        .unwrap();
        assert_eq!(c.restart_dir, Some("/tmp/d".into()));
        let c = Cli {
            multi_tenant: true,
            restart_dir: Some("".into()),
            ..Cli::default()
        }
        .into_config()
        .unwrap();
        assert_eq!(c.restart_dir, None);
    }
}
