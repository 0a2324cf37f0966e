//! Wire protocols. Pure code: bytes in, requests out; replies encoded into a
//! `BytesMut`. No sockets, no storage, no glommio — so everything here is unit
//! tested, property tested and benchmarked in isolation.

pub mod ascii;
pub mod binary;
pub mod command;
pub mod meta;
pub mod reply;
pub mod text;

/// The memcached release whose protocol shoal implements (its t/ suite runs
/// against shoal). `version`, the binary Version opcode and `stats`'s
/// `version` answer it, because clients decide behaviour from it:
/// libmemcached (memstat, pylibmc, php-memcached) parses it as
/// `major.minor.micro` and treats an older server as pre-1.6. shoal's own
/// version is [`SHOAL_VERSION`], the `shoal_version` stat.
pub const MEMCACHED_VERSION: &str = "1.6.18";
/// shoal's own version (Cargo's package version).
pub const SHOAL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// longest key accepted by every protocol (memcached's `KEY_MAX_LENGTH`).
pub const KEY_MAX_LENGTH: usize = 250;

pub use command::{Command, Request, StoreMode};
