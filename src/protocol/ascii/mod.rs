//! The classic memcached ASCII protocol (protocol.md §1.1–1.3), byte-exact
//! with memcached 1.6.18: an incremental request parser ([`AsciiParser`]) and
//! reply encoders ([`encode`]).
//!
//! Meta commands (`mg`, `ms`, …) are not parsed here yet; they are answered
//! `ERROR` like any unknown command.

pub mod encode;
pub mod parse;

pub use parse::{AsciiParser, Parsed};
