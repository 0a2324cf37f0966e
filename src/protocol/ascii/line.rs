//! One classic command line: its tokens (memcached's `tokenize_command`)
//! and how a request, or an error, is cut from the read buffer.

use bytes::{Buf, Bytes, BytesMut};

use crate::protocol::command::{Command, Request};
use crate::protocol::text::Parsed;

/// memcached's `MAX_TOKENS`: at most this many tokens minus one are parsed.
const MAX_TOKENS: usize = 24;

pub(super) fn request(cmd: Command, noreply: bool) -> Parsed {
    Parsed::Request(Request { cmd, noreply })
}

/// Consumes the line and answers `msg` (an error noreply cannot silence).
pub(super) fn consume_err(buf: &mut BytesMut, frame_len: usize, msg: &'static [u8]) -> Parsed {
    buf.advance(frame_len);
    Parsed::Error(msg)
}

/// Consumes the line and answers `msg` unless `noreply` (X-9: out_string
/// skips the reply when the command carried noreply).
pub(super) fn consume_fail(
    buf: &mut BytesMut,
    frame_len: usize,
    noreply: bool,
    msg: &'static [u8],
) -> Parsed {
    buf.advance(frame_len);
    if noreply {
        Parsed::Silent
    } else {
        Parsed::Error(msg)
    }
}

/// Splits the line off `buf` and returns token 1 (the key) as a slice of it.
pub(super) fn key_of(buf: &mut BytesMut, frame_len: usize, t: &Tokens) -> Bytes {
    take_range(buf, frame_len, t.t[1].0, t.t[1].1)
}

/// Consumes `frame_len` bytes of `buf` and returns bytes `s..e` of them,
/// zero-copy.
#[inline]
pub(super) fn take_range(buf: &mut BytesMut, frame_len: usize, s: usize, e: usize) -> Bytes {
    let mut f = buf.split_to(frame_len);
    f.truncate(e);
    f.advance(s);
    f.freeze()
}

/// tokenize_command(…, MAX_TOKENS): up to 23 space-separated tokens as
/// offsets into the line; `rest` is where tokenizing stopped (the line's end
/// unless the 23-token limit was hit).
pub(super) struct Tokens {
    pub(super) t: [(usize, usize); MAX_TOKENS - 1],
    pub(super) n: usize,
    pub(super) rest: usize,
}

impl Tokens {
    #[inline(always)]
    pub(super) fn new(line: &[u8]) -> Tokens {
        let mut t = [(0usize, 0usize); MAX_TOKENS - 1];
        let mut n = 0;
        let mut s = 0;
        let mut i = 0;
        while i < line.len() {
            if line[i] == b' ' {
                if s != i {
                    t[n] = (s, i);
                    n += 1;
                    if n == MAX_TOKENS - 1 {
                        return Tokens { t, n, rest: i + 1 };
                    }
                }
                s = i + 1;
            }
            i += 1;
        }
        if s != i {
            t[n] = (s, i);
            n += 1;
        }
        Tokens {
            t,
            n,
            rest: line.len(),
        }
    }

    #[inline]
    pub(super) fn get<'a>(&self, line: &'a [u8], i: usize) -> &'a [u8] {
        let (s, e) = self.t[i];
        &line[s..e]
    }

    #[inline]
    pub(super) fn len(&self, i: usize) -> usize {
        self.t[i].1 - self.t[i].0
    }

    /// set_noreply_maybe: the last parsed token is exactly `noreply`.
    #[inline]
    pub(super) fn noreply(&self, line: &[u8]) -> bool {
        self.n > 0 && self.get(line, self.n - 1) == b"noreply"
    }

    /// Every token from index `first` to the end of the line, past the
    /// 23-token limit (process_get_command re-tokenizes the remainder).
    pub(super) fn keys<'a>(
        &'a self,
        line: &'a [u8],
        first: usize,
    ) -> impl Iterator<Item = (usize, usize)> + 'a {
        self.t[first.min(self.n)..self.n]
            .iter()
            .copied()
            .chain(SpaceSplit {
                line,
                pos: self.rest,
            })
    }
}

/// Space-separated tokens of `line` from `pos` on.
struct SpaceSplit<'a> {
    line: &'a [u8],
    pos: usize,
}

impl Iterator for SpaceSplit<'_> {
    type Item = (usize, usize);

    #[inline]
    fn next(&mut self) -> Option<(usize, usize)> {
        let line = self.line;
        let mut s = self.pos;
        while s < line.len() && line[s] == b' ' {
            s += 1;
        }
        if s >= line.len() {
            self.pos = line.len();
            return None;
        }
        let e = memchr::memchr(b' ', &line[s..]).map_or(line.len(), |i| s + i);
        self.pos = e;
        Some((s, e))
    }
}
