//! shoal: a memcached-compatible, multi-tenant, thread-per-core cache server.
//!
//! Layout: `protocol` (pure wire parsing/encoding), `storage` (pure per-core
//! store), `exec` (command semantics over a store), `runtime` (glommio: cores,
//! sockets, forwarding — the only module that does I/O), `stats`, `clock`,
//! `config`.

pub mod clock;
pub mod config;
pub mod exec;
pub mod protocol;
pub mod runtime;
pub mod stats;
pub mod storage;
pub mod tenancy;
