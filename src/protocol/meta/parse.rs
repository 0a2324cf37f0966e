//! Meta command lines, as memcached 1.6.18 parses them (`proto_text.c`).
//!
//! The ASCII parser finds the line, strips `\r`, cuts it at a NUL and
//! tokenizes it (at most 23 space-separated tokens, like memcached's
//! `tokenize_command`); it calls [`parse_line`] for every line whose command
//! is two bytes starting with `m`. Checks, in memcached's order:
//!
//! * `mg`/`ms`/`md`/`ma` with no key: `ERROR`; `me` with no key:
//!   `CLIENT_ERROR bad command line format`.
//! * key token longer than 250 bytes (before base64 decoding):
//!   `CLIENT_ERROR bad command line format`.
//! * `ms` without a data length: `CLIENT_ERROR bad command line format`.
//! * more than 20 tokens (command, key, [datalen,] flags, terminal):
//!   `CLIENT_ERROR options flags are too long` (mg) / `… flags too long`
//!   (ms, md, ma).
//! * `ms` data length not a number, negative or ≥ 2^31-2: `CLIENT_ERROR bad
//!   command line format` — the data block is *not* swallowed (it will be
//!   parsed as a command line, as in memcached).
//! * flags ([`preparse`]): unknown flag `CLIENT_ERROR invalid flag`, repeated
//!   flag (or a byte ≥ 127) `CLIENT_ERROR duplicate flag` (both stop at the
//!   first offender); bad numeric tokens, bad base64 and bad `M` tokens set
//!   an error and parsing goes on (the last message wins). `md`/`ma` answer
//!   every flag error with `CLIENT_ERROR invalid or duplicate flag`.
//! * `ms`: opaque > 32 bytes, invalid `M` mode; `md`: opaque > 32 bytes;
//!   `ma`: invalid `M` mode. `mg` and `ma` check the opaque length while
//!   building the reply (see `crate::exec::meta`).
//!
//! Errors after `ms` knows its data length swallow the data block (`len + 2`
//! bytes, unchecked, like memcached's `conn_swallow`). Every error is sent
//! even with `q`.

use bytes::{Buf, Bytes, BytesMut};

use super::{base64, reply_extra, MetaCmd, MetaRequest, MAX_OPAQUE_LEN, MAX_OPT_TOKENS};
use crate::protocol::command::{Command, Request};
use crate::protocol::reply;
use crate::protocol::text::{safe_strtol, safe_strtoul, safe_strtoull, Parsed};
use crate::protocol::KEY_MAX_LENGTH;

/// What the ASCII parser expects after a meta line.
#[derive(Debug, Clone)]
pub enum Next {
    /// The next command line.
    Line,
    /// Discard this many bytes (an `ms` data block after an error, or one
    /// too large to buffer), then answer nothing.
    Swallow(usize),
    /// `ms`: the data block of this request.
    Data(MetaPending),
}

/// An `ms` whose command line was consumed and whose data block has not fully
/// arrived. The line is never parsed again.
#[derive(Debug, Clone)]
pub struct MetaPending {
    req: Box<MetaRequest>,
    /// Declared data length (without `\r\n`).
    len: usize,
}

impl MetaPending {
    /// Bytes the buffer must hold (data and its `\r\n`) to finish.
    #[inline]
    pub fn frame_len(&self) -> usize {
        self.len + 2
    }

    /// Whether `buf` holds the whole data block.
    #[inline]
    pub fn ready(&self, buf: &BytesMut) -> bool {
        buf.len() >= self.frame_len()
    }

    /// complete_nread_ascii for ms: consumes `len + 2` bytes; data not
    /// followed by `\r\n` is `CLIENT_ERROR bad data chunk` (sent even with
    /// `q`) and what follows is parsed as a new command. Call only when
    /// [`ready`](Self::ready).
    pub fn finish(self, buf: &mut BytesMut) -> Parsed {
        let total = self.frame_len();
        if buf.len() < total {
            return Parsed::Incomplete;
        }
        if &buf[total - 2..total] != b"\r\n" {
            buf.advance(total);
            return Parsed::Error(reply::CLIENT_ERROR_BAD_DATA_CHUNK);
        }
        let mut data = buf.split_to(total);
        data.truncate(self.len);
        let mut req = self.req;
        req.data = data.freeze();
        meta_request(req)
    }
}

#[inline]
fn meta_request(req: Box<MetaRequest>) -> Parsed {
    Parsed::Request(Request {
        cmd: Command::Meta(req),
        noreply: false,
    })
}

/// Consumes the line and answers `msg`.
#[inline]
fn fail(buf: &mut BytesMut, frame_len: usize, msg: &'static [u8]) -> (Parsed, Next) {
    buf.advance(frame_len);
    (Parsed::Error(msg), Next::Line)
}

/// Parses one meta line. `buf[..end]` is the line (no `\r\n`),
/// `buf[..frame_len]` the bytes it spans, `toks` its tokens (offsets into
/// the line, at most 23; `toks[0]` is the two-byte command starting `m`).
/// Consumes the line (and, for `ms`, the data block when it is already
/// buffered).
pub fn parse_line(
    buf: &mut BytesMut,
    frame_len: usize,
    toks: &[(usize, usize)],
    item_size_max: usize,
) -> (Parsed, Next) {
    let Some(&(c0, _)) = toks.first() else {
        return fail(buf, frame_len, reply::ERROR);
    };
    let cmd = match buf.get(c0 + 1) {
        Some(b'g') => MetaCmd::Get,
        Some(b's') => MetaCmd::Set,
        Some(b'd') => MetaCmd::Delete,
        Some(b'a') => MetaCmd::Arith,
        Some(b'e') => MetaCmd::Debug,
        Some(b'n') => {
            // mn: out_string("MN") whatever follows.
            buf.advance(frame_len);
            let req = Box::new(MetaRequest::new(MetaCmd::Noop, Bytes::new()));
            return (meta_request(req), Next::Line);
        }
        _ => return fail(buf, frame_len, reply::ERROR),
    };
    // memcached's ntokens counts a terminal token.
    let ntokens = toks.len() + 1;
    match cmd {
        MetaCmd::Debug => debug(buf, frame_len, toks),
        MetaCmd::Set => set(buf, frame_len, toks, item_size_max),
        _ => {
            if ntokens < 3 {
                return fail(buf, frame_len, reply::ERROR);
            }
            if len(toks[1]) > KEY_MAX_LENGTH {
                return fail(buf, frame_len, reply::CLIENT_ERROR_BAD_COMMAND_LINE_FORMAT);
            }
            if ntokens > MAX_OPT_TOKENS {
                let msg = if cmd == MetaCmd::Get {
                    reply::CLIENT_ERROR_OPTIONS_FLAGS_TOO_LONG
                } else {
                    reply::CLIENT_ERROR_OPTIONS_FLAGS_TOO_LONG_MS
                };
                return fail(buf, frame_len, msg);
            }
            let mut req = MetaRequest::new(cmd, Bytes::new());
            let pre = match preparse(&buf[..], toks, 2, &mut req) {
                Ok(p) => p,
                Err(e) => {
                    let msg = if cmd == MetaCmd::Get {
                        e
                    } else {
                        // process_mdelete/marithmetic ignore the preparse errstr.
                        reply::CLIENT_ERROR_INVALID_OR_DUPLICATE_FLAG
                    };
                    return fail(buf, frame_len, msg);
                }
            };
            match cmd {
                MetaCmd::Delete if pre.opaque.is_some_and(|o| len(o) > MAX_OPAQUE_LEN) => {
                    return fail(buf, frame_len, reply::CLIENT_ERROR_OPAQUE_TOO_LONG);
                }
                MetaCmd::Arith if !matches!(req.mode, 0 | b'I' | b'+' | b'D' | b'-') => {
                    return fail(buf, frame_len, reply::CLIENT_ERROR_INVALID_MA_MODE);
                }
                _ => {}
            }
            let frame = buf.split_to(frame_len).freeze();
            pre.fill(&frame, toks[1], &mut req);
            (meta_request(Box::new(req)), Next::Line)
        }
    }
}

/// process_mset_command: `ms <key> <datalen> <flags>*`.
fn set(
    buf: &mut BytesMut,
    frame_len: usize,
    toks: &[(usize, usize)],
    item_size_max: usize,
) -> (Parsed, Next) {
    let ntokens = toks.len() + 1;
    if ntokens < 3 {
        return fail(buf, frame_len, reply::ERROR);
    }
    if len(toks[1]) > KEY_MAX_LENGTH || ntokens == 3 {
        return fail(buf, frame_len, reply::CLIENT_ERROR_BAD_COMMAND_LINE_FORMAT);
    }
    if ntokens > MAX_OPT_TOKENS {
        return fail(
            buf,
            frame_len,
            reply::CLIENT_ERROR_OPTIONS_FLAGS_TOO_LONG_MS,
        );
    }
    let vlen = match safe_strtol(tok(&buf[..], toks[2])) {
        Some(v) if (0..=i32::MAX - 2).contains(&v) => v as usize,
        _ => return fail(buf, frame_len, reply::CLIENT_ERROR_BAD_COMMAND_LINE_FORMAT),
    };
    // From here on an error swallows the data block.
    let swallow = |buf: &mut BytesMut, msg: &'static [u8]| {
        buf.advance(frame_len);
        (Parsed::Error(msg), Next::Swallow(vlen + 2))
    };
    let mut req = MetaRequest::new(MetaCmd::Set, Bytes::new());
    let pre = match preparse(&buf[..], toks, 3, &mut req) {
        Ok(p) => p,
        Err(e) => return swallow(buf, e),
    };
    let opaque_too_long = pre.opaque.is_some_and(|o| len(o) > MAX_OPAQUE_LEN);
    // The mode is checked before the opaque error is acted on.
    if !matches!(req.mode, 0 | b'E' | b'A' | b'P' | b'R' | b'S') {
        return swallow(buf, reply::CLIENT_ERROR_INVALID_MS_MODE);
    }
    if opaque_too_long {
        return swallow(buf, reply::CLIENT_ERROR_OPAQUE_TOO_LONG);
    }
    let frame = buf.split_to(frame_len).freeze();
    pre.fill(&frame, toks[1], &mut req);
    if vlen > item_size_max {
        // refuse now, swallow the data unbuffered.
        req.too_large = true;
        return (meta_request(Box::new(req)), Next::Swallow(vlen + 2));
    }
    let p = MetaPending {
        req: Box::new(req),
        len: vlen,
    };
    if p.ready(buf) {
        (p.finish(buf), Next::Line)
    } else {
        (Parsed::Incomplete, Next::Data(p))
    }
}

/// process_meta_command: `me <key> [b]`.
fn debug(buf: &mut BytesMut, frame_len: usize, toks: &[(usize, usize)]) -> (Parsed, Next) {
    let ntokens = toks.len() + 1;
    if ntokens < 3 || len(toks[1]) > KEY_MAX_LENGTH {
        return fail(buf, frame_len, reply::CLIENT_ERROR_BAD_COMMAND_LINE_FORMAT);
    }
    let b = ntokens >= 4 && tok(&buf[..], toks[2]) == b"b";
    let decoded = if b {
        match base64::decode(tok(&buf[..], toks[1])) {
            Some(k) => Some(k),
            None => return fail(buf, frame_len, reply::CLIENT_ERROR_BAD_COMMAND_LINE_FORMAT),
        }
    } else {
        None
    };
    let frame = buf.split_to(frame_len).freeze();
    let key = match decoded {
        Some(k) => Bytes::from(k),
        None => frame.slice(toks[1].0..toks[1].1),
    };
    let mut req = MetaRequest::new(MetaCmd::Debug, key);
    req.base64 = b;
    (meta_request(Box::new(req)), Next::Line)
}

#[inline]
fn len((s, e): (usize, usize)) -> usize {
    e - s
}

#[inline]
fn tok(line: &[u8], (s, e): (usize, usize)) -> &[u8] {
    &line[s..e]
}

/// What [`preparse`] found that refers to the line's bytes.
struct Pre {
    /// The base64-decoded key (`b`).
    decoded: Option<Vec<u8>>,
    /// The `O` token's range.
    opaque: Option<(usize, usize)>,
}

impl Pre {
    /// Sets the key and opaque of `req` as slices of the consumed `frame`.
    fn fill(self, frame: &Bytes, key: (usize, usize), req: &mut MetaRequest) {
        req.key = match self.decoded {
            Some(k) => Bytes::from(k),
            None => frame.slice(key.0..key.1),
        };
        if let Some((s, e)) = self.opaque {
            req.opaque = frame.slice(s..e);
        }
    }
}

/// `_meta_flag_preparse`: reads the flags from token `start` on into `req`.
/// The error is memcached's errstr for mg/ms (md/ma replace it).
fn preparse(
    line: &[u8],
    toks: &[(usize, usize)],
    start: usize,
    req: &mut MetaRequest,
) -> Result<Pre, &'static [u8]> {
    let mut seen = [false; 127];
    let mut errstr: &'static [u8] = reply::CLIENT_ERROR_BAD_COMMAND_LINE_FORMAT;
    let mut has_error = false;
    let mut pre = Pre {
        decoded: None,
        opaque: None,
    };
    for &(s, e) in toks.iter().skip(start) {
        let t = &line[s..e];
        let o = t[0];
        if o >= 127 || seen[o as usize] {
            return Err(reply::CLIENT_ERROR_DUPLICATE_FLAG);
        }
        seen[o as usize] = true;
        let arg = &t[1..];
        let mut bad_token = |ok: bool| {
            if !ok {
                errstr = reply::CLIENT_ERROR_BAD_TOKEN;
                has_error = true;
            }
        };
        match o {
            b'b' => {
                let key = &line[toks[1].0..toks[1].1];
                match base64::decode(key) {
                    Some(k) => pre.decoded = Some(k),
                    None => {
                        errstr = reply::CLIENT_ERROR_DECODING_KEY;
                        has_error = true;
                    }
                }
                req.base64 = true;
            }
            b'N' => {
                req.vivify = safe_strtol(arg);
                bad_token(req.vivify.is_some());
            }
            b'T' => {
                req.ttl = safe_strtol(arg);
                bad_token(req.ttl.is_some());
            }
            b'R' => {
                req.recache = safe_strtol(arg);
                bad_token(req.recache.is_some());
            }
            b'O' => pre.opaque = Some((s, e)),
            b'P' | b'L' | b'l' | b'h' | b'k' | b's' | b't' | b'c' | b'f' => {}
            b'v' => req.value = true,
            b'u' => req.no_update = true,
            b'q' => req.quiet = true,
            // md only (M-md): memcached 1.6.18 knows no `x` at all, so on
            // any other command it is an unknown flag.
            b'x' if req.cmd == MetaCmd::Delete => req.remove_value = true,
            b'I' => req.invalidate = true,
            b'F' => match safe_strtoul(arg) {
                Some(f) => req.client_flags = f,
                // memcached sets no errstr here.
                None => has_error = true,
            },
            b'C' => {
                req.compare_cas = safe_strtoull(arg);
                bad_token(req.compare_cas.is_some());
            }
            b'E' => {
                req.new_cas = safe_strtoull(arg);
                bad_token(req.new_cas.is_some());
            }
            b'M' => {
                if t.len() != 2 {
                    errstr = reply_extra::CLIENT_ERROR_M_TOKEN_LENGTH;
                    has_error = true;
                } else {
                    req.mode = t[1];
                }
            }
            b'J' => match safe_strtoull(arg) {
                Some(v) => req.initial = v,
                None => {
                    errstr = reply::CLIENT_ERROR_INVALID_INITIAL;
                    has_error = true;
                }
            },
            b'D' => match safe_strtoull(arg) {
                Some(v) => req.delta = v,
                None => {
                    errstr = reply::CLIENT_ERROR_INVALID_DELTA_VALUE;
                    has_error = true;
                }
            },
            _ => return Err(reply::CLIENT_ERROR_INVALID_FLAG),
        }
        req.order.push(o);
    }
    if has_error {
        Err(errstr)
    } else {
        Ok(pre)
    }
}

#[cfg(test)]
mod tests;
