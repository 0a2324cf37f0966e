//! The memcached binary protocol (protocol.md §1.7), byte-exact with
//! memcached 1.6.18 `proto_bin.c`: an incremental request parser
//! ([`BinaryParser`]) and response encoders ([`encode`]). Execution of
//! key-addressed requests lives in `crate::exec::binary`.
//!
//! A connection whose first byte is 0x80 speaks binary for its whole life
//! (X-11). How it uses this module (the runtime owns the loop):
//!
//! ```text
//! match parser.parse(&mut rbuf) {
//!     BinParsed::Request(req) => match req.key_for_routing() {
//!         // get/gat/touch, stores, delete, incr/decr: run on the owner shard
//!         Some(key) => exec::binary::execute(&mut shard_of(key), &req, now, &mut out),
//!         None => match req.cmd {                       // server-wide
//!             BinCommand::Noop => encode::noop(&mut out, &req),
//!             BinCommand::Version => encode::version(&mut out, &req, VERSION),
//!             BinCommand::Quit => { encode::quit(&mut out, &req); /* write, then close */ }
//!             BinCommand::Flush { delay } => { /* -F: encode::flush_disabled; else cmd_flush++,
//!                 flush every core at exec::flush_time(delay as i64, now), encode::flush */ }
//!             // after earlier forwarded ops have landed, as for ASCII `stats`
//!             BinCommand::Stat => exec::binary::stat(&config, &req, &mut out),
//!             // SASL is off: memcached without SASL answers 0x81.
//!             _ => encode::unknown_command(&mut out, &req),
//!         },
//!     },
//!     BinParsed::Incomplete => { /* read more */ }
//!     BinParsed::Error(bytes) => out.extend_from_slice(&bytes),
//!     BinParsed::ErrorClose(bytes) => { out.extend_from_slice(&bytes); /* write, then close */ }
//! }
//! ```

pub mod encode;
pub mod header;
pub mod opcode;
pub mod parse;
pub mod request;
pub mod status;

pub use header::{Header, HEADER_LEN, REQ_MAGIC, RES_MAGIC};
pub use parse::{BinParsed, BinaryParser, KEY_MAX_LENGTH, MAX_BODY_LEN};
pub use request::{BinCommand, BinRequest};
pub use status::Status;
