//! shoal: a memcached-compatible, multi-tenant, thread-per-core cache server.
//!
//! Layout: `protocol` (pure wire parsing/encoding), `storage` (pure per-core
//! store), `exec` (command semantics over a store), `runtime` (glommio: cores,
//! sockets, forwarding — the only data-path module that does I/O), `stats`, `clock`,
//! `config` (the server's settings, plain data), `introspect` (per-core request
//! introspection: recent log, top-K sketches; pure, no I/O), `tenancy` (control
//! plane), `admin` (the operator's HTTP endpoint, on its own OS thread, never a
//! data core) and `cli` (the command line: the server's flags and config file,
//! and the admin endpoint's client, the `shoal cache` / `shoal credential`
//! subcommands).
//!
//! Imports run downward only, with no loops: `main` reads the command line
//! (`cli`) into a `config::Config` and hands it to `runtime`, which drives
//! `exec` over `protocol` and `storage`. `config` imports nothing of the
//! crate, so the data path never sees the command line or the HTTP admin code.

pub mod admin;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod conns;
pub mod exec;
pub mod fuzz;
pub mod introspect;
pub mod latency;
pub mod notify;
pub mod protocol;
pub mod runtime;
pub mod session;
pub mod stats;
pub mod storage;
pub mod tenancy;
pub mod tls;
pub mod topology;
