//! Multi-tenant control plane: caches, credentials and how a connection
//! proves which cache it belongs to.
//!
//! - [`ControlStore`] (`store.rs`) is the durable source of truth, kept in
//!   `<data-dir>/control.json`. It is owned by one thread (the admin thread);
//!   every successful change is written to disk *before* it becomes visible.
//! - [`Registry`] (`registry.rs`) is an immutable snapshot of that state,
//!   handed to every core as an `Arc`. The auth path (SASL PLAIN in
//!   `sasl.rs`, the ASCII forms in `ascii_auth.rs`) reads it without a lock.
//! - Per cache, the store also keeps API v2 alerts, their delivery configs,
//!   watched key prefixes (carried to the cores by the registry) and an SSO
//!   secret.
//! - `secret.rs` generates usernames, passwords and the operator token from
//!   the OS CSPRNG.
//!
//! Plain synchronous Rust: no glommio, no sockets.

pub mod ascii_auth;
pub mod backend;
pub mod capacity;
mod registry;
pub mod sasl;
mod secret;
mod store;

use serde::{Deserialize, Serialize};

pub use ascii_auth::{ascii_claimed_cache, authenticate_ascii};
pub use registry::{fingerprint_hex, parse_fingerprint, Registry, Session};
pub use sasl::{authenticate_plain, plain_claimed_cache, plain_mechs};
pub use secret::is_username_shaped;

/// A fresh operator token (a cluster's first node offers one to the database).
pub fn new_operator_token() -> Result<String, ControlError> {
    Ok(secret::operator_token()?)
}
pub use store::{
    canonical_fingerprint, ControlStore, CONTROL_FILE, MAX_ALERTS_PER_CACHE,
    MAX_CERTS_PER_CREDENTIAL, MAX_CREDENTIALS_PER_CACHE, MAX_DELIVERY_CONFIGS_PER_CACHE,
    MAX_DESCRIPTION_LEN, MAX_PREFIX_LEN, MAX_WATCHED_PREFIXES_PER_CACHE, OPERATOR_TOKEN_FILE,
};
pub use store::{empty_state, write_private};

/// What a credential may do besides reading (MemCachier's `write_capability`,
/// `flush_capability`, `api_capability`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Caps {
    /// Storage commands, incr/decr, delete, touch.
    pub write: bool,
    /// `flush_all` (ASCII) / FLUSH (binary).
    pub flush: bool,
    /// The per-cache HTTP API.
    pub api: bool,
}

impl Caps {
    /// Every capability: what a cache's first (primary) credential gets.
    pub const ALL: Caps = Caps {
        write: true,
        flush: true,
        api: true,
    };
}

/// One hosted cache.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Cache {
    /// Unique, never reused after deletion; starts at 1.
    pub id: u32,
    /// Operator-chosen label, unique among live caches.
    pub name: String,
    /// The memory plan in bytes (> 0).
    pub memory_limit: u64,
    /// The plan's connection limit: how many connections may be logged in
    /// to the cache at once, across all cores; the next one is refused
    /// (`ERROR Too many open connections`). 0 = no per-cache limit (only
    /// the server's `-c`): the default, and what control files written
    /// before the field existed load as, so upgrading changes nothing.
    #[serde(default)]
    pub max_connections: u32,
    /// A disabled cache fails authentication; its live connections are closed.
    pub enabled: bool,
    /// Creation time, unix seconds.
    pub created: u64,
}

/// One set of SASL credentials of a cache.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Credential {
    /// Unique across all caches (MemCachier-like, e.g. `15F38E`).
    pub username: String,
    /// Stored in clear in the 0600 control file: the MemCachier API hands it
    /// back (`sasl_password`). The [`Registry`] only keeps its SHA-256.
    pub password: String,
    pub cache_id: u32,
    pub caps: Caps,
    /// Exactly one credential per cache is primary.
    pub primary: bool,
    /// Creation time, unix seconds.
    pub created: u64,
    /// SHA-256 fingerprints (lowercase hex of the DER certificate) of the
    /// TLS client certificates that log in as this credential with no
    /// SASL/ASCII step. Absent in older control files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cert_fingerprints: Vec<String>,
}

/// What an alert watches (MemCachier's `trigger_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerType {
    /// The share of gets that hit, over the last sampling interval, fell
    /// below the threshold (percent).
    HitRate,
    /// The cache's bytes exceed the threshold (percent) of its plan.
    MemoryUsage,
}

impl TriggerType {
    /// The wire name: `hit_rate` or `memory_usage`.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerType::HitRate => "hit_rate",
            TriggerType::MemoryUsage => "memory_usage",
        }
    }

    /// The inverse of [`TriggerType::as_str`].
    pub fn parse(s: &str) -> Option<TriggerType> {
        match s {
            "hit_rate" => Some(TriggerType::HitRate),
            "memory_usage" => Some(TriggerType::MemoryUsage),
            _ => None,
        }
    }
}

/// How an alert is delivered (MemCachier's `delivery_type`; `webhook` is
/// ours: a generic JSON POST to `slack_url`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryType {
    Email,
    Slack,
    Webhook,
}

impl DeliveryType {
    /// The wire name: `email`, `slack` or `webhook`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryType::Email => "email",
            DeliveryType::Slack => "slack",
            DeliveryType::Webhook => "webhook",
        }
    }

    /// The inverse of [`DeliveryType::as_str`].
    pub fn parse(s: &str) -> Option<DeliveryType> {
        match s {
            "email" => Some(DeliveryType::Email),
            "slack" => Some(DeliveryType::Slack),
            "webhook" => Some(DeliveryType::Webhook),
            _ => None,
        }
    }
}

/// An alert of one cache (MemCachier API v2 "Alerts").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique among all alerts, delivery configs and watched prefixes of the
    /// store; never reused.
    pub id: u64,
    pub cache_id: u32,
    pub trigger_type: TriggerType,
    /// Percent, 0..=100.
    pub trigger_threshold: u8,
    /// A delivery config of the same cache.
    pub delivery_config_id: u64,
    /// At most [`MAX_DESCRIPTION_LEN`] bytes.
    pub description: String,
    /// A disabled alert never fires.
    pub enabled: bool,
}

/// What `add_alert` needs: an [`Alert`] without its ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAlert {
    pub trigger_type: TriggerType,
    pub trigger_threshold: u8,
    pub delivery_config_id: u64,
    pub description: String,
    pub enabled: bool,
}

/// A partial update of an alert (API v2 `PUT alerts/:id`): `None` keeps the
/// field's value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertPatch {
    pub trigger_type: Option<TriggerType>,
    pub trigger_threshold: Option<u8>,
    pub delivery_config_id: Option<u64>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// Where a cache's alerts go (MemCachier's alert delivery config).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryConfig {
    /// Shares the id space of alerts and watched prefixes; never reused.
    pub id: u64,
    pub cache_id: u32,
    pub delivery_type: DeliveryType,
    /// The recipient of `email` configs ("" otherwise, unless given).
    pub email: String,
    /// The `http://` or `https://` URL `slack` and `webhook` configs POST to.
    pub slack_url: String,
    /// The channel a `slack` message names ("": the webhook's default).
    pub slack_channel: String,
}

/// What `add_delivery_config` needs: a [`DeliveryConfig`] without its ids.
/// Fields the type does not use may be "".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDeliveryConfig {
    pub delivery_type: DeliveryType,
    pub email: String,
    pub slack_url: String,
    pub slack_channel: String,
}

/// A key prefix whose traffic a cache's users watch (API v2
/// `introspection/prefixes`). Cores see them through [`Registry::watched`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchedPrefix {
    /// Shares the id space of alerts and delivery configs; never reused.
    pub id: u64,
    pub cache_id: u32,
    /// 1..=[`MAX_PREFIX_LEN`] bytes, no whitespace or control characters
    /// (it is a memcached key prefix); unique within the cache.
    pub name: String,
}

/// Why a control-plane operation failed. The admin API maps these to HTTP
/// statuses: 404, 409, 400, 500.
#[derive(Debug)]
pub enum ControlError {
    /// No such cache, or no such credential in that cache.
    NotFound,
    /// The request conflicts with the current state (duplicate name, removing
    /// the primary credential, data dir locked by another process, ...).
    Conflict(String),
    /// The request (or the file on disk) is malformed.
    Invalid(String),
    /// Reading or writing the data dir failed; the in-memory state is unchanged.
    Io(std::io::Error),
    /// Another node committed first: the store has adopted the newer state
    /// and the change should be tried again against it.
    Stale,
    /// The shared control plane (PostgreSQL) cannot be reached; nothing was
    /// changed (or, when the connection broke during the commit, the change
    /// arrives through the next reload).
    Unavailable(String),
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlError::NotFound => f.write_str("not found"),
            ControlError::Conflict(m) => write!(f, "conflict: {m}"),
            ControlError::Invalid(m) => write!(f, "invalid: {m}"),
            ControlError::Io(e) => write!(f, "i/o error: {e}"),
            ControlError::Stale => f.write_str("another node changed the control state first"),
            ControlError::Unavailable(m) => write!(f, "control plane unavailable: {m}"),
        }
    }
}

impl std::error::Error for ControlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ControlError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for ControlError {
    fn from(e: std::io::Error) -> Self {
        ControlError::Io(e)
    }
}
