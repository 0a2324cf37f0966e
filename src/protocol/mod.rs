//! Wire protocols. Pure code: bytes in, requests out; replies encoded into a
//! `BytesMut`. No sockets, no storage, no glommio — so everything here is unit
//! tested, property tested and benchmarked in isolation.

pub mod ascii;
pub mod binary;
pub mod command;
pub mod meta;
pub mod reply;
pub mod text;

/// longest key accepted by every protocol (memcached's `KEY_MAX_LENGTH`).
pub const KEY_MAX_LENGTH: usize = 250;

pub use command::{Command, Request, StoreMode};
