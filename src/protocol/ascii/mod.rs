//! The classic memcached ASCII protocol (protocol.md §1.1–1.3), byte-exact
//! with memcached 1.6.18: an incremental request parser ([`AsciiParser`]) and
//! reply encoders ([`encode`]).
//!
//! Meta commands (`mg`, `ms`, …) share the line machinery: the parser hands
//! their lines to [`crate::protocol::meta::parse`].

pub mod encode;
mod line;
pub mod parse;

pub use crate::protocol::text::Parsed;
pub use parse::AsciiParser;
