//! Incremental parser for binary requests, following memcached 1.6.18
//! `try_read_command_binary` and `dispatch_bin_command` (proto_bin.c).
//!
//! The length of a request is known from its header, so nothing is ever
//! rescanned: each call decodes the 24-byte header, checks it, and either
//! waits for the bytes the request needs or splits them off the buffer as
//! one frozen frame whose slices become the key and value. Bytes that are
//! not needed (a too-large value, the body of an unknown opcode) are
//! swallowed as they arrive, never buffered.
//!
//! Checks, in memcached's order (first failure wins):
//! 1. magic ≠ 0x80 → close without a reply (B-1);
//! 2. bodylen > 1 GiB → 0x04 and close (B-2; newer memcached, 1.6.18 would
//!    try to swallow it);
//! 3. keylen + extlen > bodylen → 0x81 `Unknown command` and close (B-1);
//! 4. keylen > 250 → 0x04 and close;
//! 5. the per-opcode shape (extlen, keylen, bodylen) of
//!    `dispatch_bin_command` → 0x04 and close (B-1);
//! 6. unknown opcode (also Verbosity and the range ops, which memcached 1.6
//!    does not implement) → 0x81 `Unknown command`, body swallowed, the
//!    connection continues (B-4).
//!
//! Where memcached misframes, shoal follows the header instead (no reply
//! differs for a well-formed client): memcached leaves the value bytes of a
//! Stat/Touch/GAT request in the stream to be parsed as the next header,
//! and for an unknown opcode it swallows `bodylen` bytes *after* the extras
//! and key; shoal always consumes exactly `24 + bodylen` bytes.

use super::encode;
use super::header::{Header, HEADER_LEN, REQ_MAGIC};
use super::opcode as op;
use super::request::{BinCommand, BinRequest};
use super::status::Status;
use crate::protocol::StoreMode;
use bytes::{Buf, BytesMut};

pub use crate::protocol::KEY_MAX_LENGTH;
/// B-2: a body longer than this is refused (0x04) and the connection closed.
pub const MAX_BODY_LEN: u32 = 1 << 30;

/// Result of one [`BinaryParser::parse`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinParsed {
    /// One complete request; its bytes were removed from the buffer (a
    /// value being swallowed may still be arriving).
    Request(BinRequest),
    /// More bytes are needed. Only bytes being swallowed may have been
    /// removed from the buffer.
    Incomplete,
    /// Write these bytes (possibly none), then close the connection: a
    /// malformed frame (B-1, B-2, X-1). The buffer is left as it was.
    ErrorClose(BytesMut),
    /// Write these bytes and keep serving: an unknown opcode (B-4); the
    /// request's body is being swallowed.
    Error(BytesMut),
}

/// What a valid opcode does with the parts of its body.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Extras and key only (`bodylen == extlen + keylen` was checked).
    Exact,
    /// The value is the request's payload and is buffered (stores, SASL).
    Value,
    /// memcached ignores any value (Stat, Touch, GAT): it is swallowed.
    Ignored,
}

/// Parser state of one binary connection.
#[derive(Debug, Clone)]
pub struct BinaryParser {
    item_size_max: usize,
    /// Bytes still to discard (memcached `conn_swallow`).
    swallow: usize,
    /// Total bytes the buffer must hold for the request under way, once its
    /// header has been seen.
    pending: Option<usize>,
}

impl BinaryParser {
    /// A parser for a server whose largest item is `item_size_max` bytes: a
    /// store whose value is longer becomes [`BinCommand::TooLarge`] and the
    /// value is swallowed unbuffered.
    pub fn new(item_size_max: usize) -> Self {
        BinaryParser {
            item_size_max,
            swallow: 0,
            pending: None,
        }
    }

    /// While a request's body is arriving: the number of bytes the buffer
    /// must hold for it to complete (lets the caller reserve once for a
    /// large value). `None` otherwise.
    pub fn pending_len(&self) -> Option<usize> {
        self.pending
    }

    /// Parses at most one request from the front of `buf`, removing the
    /// bytes it consumes. Never panics.
    pub fn parse(&mut self, buf: &mut BytesMut) -> BinParsed {
        if self.swallow > 0 {
            self.swallow_from(buf);
            if self.swallow > 0 {
                return BinParsed::Incomplete;
            }
        }
        let Some(h) = Header::decode(buf) else {
            return BinParsed::Incomplete;
        };
        if h.magic != REQ_MAGIC {
            // B-1: memcached drops the connection without a word.
            return BinParsed::ErrorClose(BytesMut::new());
        }
        let close = |status| {
            let mut out = BytesMut::new();
            encode::error_raw(&mut out, h.opcode, h.opaque, status);
            BinParsed::ErrorClose(out)
        };
        if h.bodylen > MAX_BODY_LEN {
            return close(Status::Invalid); // B-2
        }
        let (extlen, keylen, body) = (h.extlen as usize, h.keylen as usize, h.bodylen as usize);
        if extlen + keylen > body {
            return close(Status::UnknownCommand); // B-1, memcached's status for this case
        }
        if keylen > KEY_MAX_LENGTH {
            return close(Status::Invalid);
        }
        let (base, quiet) = op::unquiet(h.opcode);
        let shape = match shape(base, extlen, keylen, body) {
            Shape::Valid(b) => b,
            Shape::Malformed => return close(Status::Invalid), // B-1
            Shape::Unknown => return self.unknown(buf, &h),    // B-4
        };
        let key_end = HEADER_LEN + extlen + keylen;
        let too_large = shape == Body::Value && body - extlen - keylen > self.item_size_max;
        if too_large && matches!(base, op::SASL_AUTH | op::SASL_STEP) {
            // Without SASL memcached answers 0x81 and swallows the data; a
            // payload this big is never a real SASL message.
            return self.unknown(buf, &h);
        }
        // The bytes to buffer; the rest of the body is swallowed.
        let keep = if shape == Body::Value && !too_large {
            HEADER_LEN + body
        } else {
            key_end
        };
        if buf.len() < keep {
            self.pending = Some(keep);
            return BinParsed::Incomplete;
        }
        self.pending = None;
        let frame = buf.split_to(keep).freeze();
        self.swallow = HEADER_LEN + body - keep;
        self.swallow_from(buf);
        BinParsed::Request(BinRequest {
            opcode: h.opcode,
            quiet,
            opaque: h.opaque,
            cas: h.cas,
            key: frame.slice(HEADER_LEN + extlen..key_end),
            value: frame.slice(key_end..),
            cmd: command(base, &frame[HEADER_LEN..HEADER_LEN + extlen], too_large),
        })
    }

    /// Drops as much of the pending swallow as `buf` holds.
    fn swallow_from(&mut self, buf: &mut BytesMut) {
        let n = self.swallow.min(buf.len());
        buf.advance(n);
        self.swallow -= n;
    }

    /// 0x81 `Unknown command` now; the request's body is swallowed.
    fn unknown(&mut self, buf: &mut BytesMut, h: &Header) -> BinParsed {
        buf.advance(HEADER_LEN);
        self.swallow = h.bodylen as usize;
        self.pending = None;
        self.swallow_from(buf);
        let mut out = BytesMut::new();
        encode::error_raw(&mut out, h.opcode, h.opaque, Status::UnknownCommand);
        BinParsed::Error(out)
    }
}

enum Shape {
    Valid(Body),
    Malformed,
    Unknown,
}

/// memcached `dispatch_bin_command`: the extras/key/body lengths each
/// (loud) opcode accepts.
fn shape(base: u8, ext: usize, key: usize, body: usize) -> Shape {
    let check = |ok: bool, b: Body| {
        if ok {
            Shape::Valid(b)
        } else {
            Shape::Malformed
        }
    };
    match base {
        op::VERSION | op::NOOP | op::QUIT | op::SASL_LIST_MECHS => {
            check(ext == 0 && key == 0 && body == 0, Body::Exact)
        }
        op::FLUSH => check(
            key == 0 && body == ext && (ext == 0 || ext == 4),
            Body::Exact,
        ),
        op::SET | op::ADD | op::REPLACE => check(ext == 8 && key != 0, Body::Value),
        op::GET | op::GETK => check(ext == 0 && key > 0 && body == key, Body::Exact),
        op::DELETE => check(ext == 0 && key > 0 && body == key, Body::Exact),
        op::INCREMENT | op::DECREMENT => {
            check(ext == 20 && key > 0 && body == key + 20, Body::Exact)
        }
        op::APPEND | op::PREPEND => check(ext == 0 && key > 0, Body::Value),
        op::STAT => check(ext == 0, Body::Ignored),
        op::SASL_AUTH | op::SASL_STEP => check(ext == 0 && key != 0, Body::Value),
        op::TOUCH | op::GAT | op::GATK => check(ext == 4 && key != 0, Body::Ignored),
        // The key is the configuration's name; an empty one is an unknown
        // configuration (the executor's KEY_ENOENT), not a bad frame.
        op::CONFIG_GET => check(ext == 0 && body == key, Body::Exact),
        _ => Shape::Unknown,
    }
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn be64(b: &[u8], at: usize) -> u64 {
    (be32(b, at) as u64) << 32 | be32(b, at + 4) as u64
}

/// Decodes the extras of a request whose shape was validated by [`shape`].
fn command(base: u8, extras: &[u8], too_large: bool) -> BinCommand {
    let store_mode = match base {
        op::SET => Some(StoreMode::Set),
        op::ADD => Some(StoreMode::Add),
        op::REPLACE => Some(StoreMode::Replace),
        op::APPEND => Some(StoreMode::Append),
        op::PREPEND => Some(StoreMode::Prepend),
        _ => None,
    };
    if let Some(mode) = store_mode {
        if too_large {
            return BinCommand::TooLarge { mode };
        }
        let (flags, exptime) = if extras.len() == 8 {
            (be32(extras, 0), be32(extras, 4))
        } else {
            (0, 0)
        };
        return BinCommand::Store {
            mode,
            flags,
            exptime,
        };
    }
    match base {
        op::GET => BinCommand::Get {
            with_key: false,
            touch: None,
        },
        op::GETK => BinCommand::Get {
            with_key: true,
            touch: None,
        },
        op::GAT => BinCommand::Get {
            with_key: false,
            touch: Some(be32(extras, 0)),
        },
        op::GATK => BinCommand::Get {
            with_key: true,
            touch: Some(be32(extras, 0)),
        },
        op::TOUCH => BinCommand::Touch {
            exptime: be32(extras, 0),
        },
        op::DELETE => BinCommand::Delete,
        op::INCREMENT | op::DECREMENT => BinCommand::Arith {
            incr: base == op::INCREMENT,
            delta: be64(extras, 0),
            initial: be64(extras, 8),
            exptime: be32(extras, 16),
        },
        op::QUIT => BinCommand::Quit,
        op::FLUSH => BinCommand::Flush {
            delay: if extras.len() == 4 {
                be32(extras, 0)
            } else {
                0
            },
        },
        op::NOOP => BinCommand::Noop,
        op::VERSION => BinCommand::Version,
        op::STAT => BinCommand::Stat,
        op::SASL_LIST_MECHS => BinCommand::SaslListMechs,
        op::SASL_AUTH => BinCommand::SaslAuth,
        op::CONFIG_GET => BinCommand::ConfigGet,
        // `shape` admits nothing else.
        _ => BinCommand::SaslStep,
    }
}

#[cfg(test)]
mod tests;
