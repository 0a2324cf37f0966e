//! Multi-tenant control plane: caches, credentials and how a connection
//! proves which cache it belongs to.
//!
//! - [`ControlStore`] (`store.rs`) is the durable source of truth, kept in
//!   `<data-dir>/control.json`. It is owned by one thread (the admin thread);
//!   every successful change is written to disk *before* it becomes visible.
//! - [`Registry`] (`registry.rs`) is an immutable snapshot of that state,
//!   handed to every core as an `Arc`. The auth path (SASL PLAIN in
//!   `sasl.rs`, the ASCII forms in `ascii_auth.rs`) reads it without a lock.
//! - `secret.rs` generates usernames, passwords and the operator token from
//!   the OS CSPRNG.
//!
//! Plain synchronous Rust: no glommio, no sockets.

pub mod ascii_auth;
mod registry;
pub mod sasl;
mod secret;
mod store;

use serde::{Deserialize, Serialize};

pub use ascii_auth::authenticate_ascii;
pub use registry::{Registry, Session};
pub use sasl::{authenticate_plain, plain_mechs};
pub use secret::is_username_shaped;
pub use store::{ControlStore, CONTROL_FILE, MAX_CREDENTIALS_PER_CACHE, OPERATOR_TOKEN_FILE};

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
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlError::NotFound => f.write_str("not found"),
            ControlError::Conflict(m) => write!(f, "conflict: {m}"),
            ControlError::Invalid(m) => write!(f, "invalid: {m}"),
            ControlError::Io(e) => write!(f, "i/o error: {e}"),
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
