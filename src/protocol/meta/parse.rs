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
use crate::protocol::ascii::parse::{safe_strtol, safe_strtoul, safe_strtoull, KEY_MAX_LENGTH};
use crate::protocol::ascii::Parsed;
use crate::protocol::command::{Command, Request};
use crate::protocol::reply;

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
        // X-5: refuse now, swallow the data unbuffered.
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
            b'x' => req.remove_value = true,
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
mod tests {
    //! Parser-level tests; execution is tested in `crate::exec::meta`.
    use super::*;
    use crate::protocol::ascii::AsciiParser;
    use bytes::BufMut;

    const MAX: usize = 1024 * 1024;

    fn all_with(max: usize, input: &[u8]) -> Vec<Parsed> {
        let mut p = AsciiParser::new(max);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        for _ in 0..10_000 {
            match p.parse(&mut buf) {
                Parsed::Incomplete => break,
                r => out.push(r),
            }
        }
        out
    }

    fn all(input: &[u8]) -> Vec<Parsed> {
        all_with(MAX, input)
    }

    fn one(input: &[u8]) -> Parsed {
        let v = all(input);
        assert_eq!(v.len(), 1, "{v:?}");
        v.into_iter().next().unwrap()
    }

    fn meta(p: Parsed) -> MetaRequest {
        match p {
            Parsed::Request(Request {
                cmd: Command::Meta(m),
                noreply: false,
            }) => *m,
            r => panic!("not a meta request: {r:?}"),
        }
    }

    fn err(msg: &'static [u8]) -> Parsed {
        Parsed::Error(msg)
    }

    const E: Parsed = Parsed::Error(reply::ERROR);
    const BAD: Parsed = Parsed::Error(reply::CLIENT_ERROR_BAD_COMMAND_LINE_FORMAT);

    #[test]
    fn m_mg_flags_in_order() {
        let m = meta(one(b"mg foo s v T30 N-1 R0 Oabc k q u h l t c f\r\n"));
        assert_eq!(m.cmd, MetaCmd::Get);
        assert_eq!(&m.key[..], b"foo");
        assert_eq!(m.order.as_slice(), b"svTNROkquhltcf");
        assert!(m.value && m.quiet && m.no_update);
        assert_eq!((m.ttl, m.vivify, m.recache), (Some(30), Some(-1), Some(0)));
        assert_eq!(&m.opaque[..], b"Oabc");
        assert!(!m.base64);
    }

    #[test]
    fn m_mg_errors() {
        assert_eq!(one(b"mg\r\n"), E);
        assert_eq!(one(b"mx foo\r\n"), E);
        assert_eq!(one(b"mgg foo\r\n"), E);
        // metaget.t "flag and token count errors".
        assert_eq!(
            one(b"mg foo m o o o o o o o o o\r\n"),
            err(reply::CLIENT_ERROR_INVALID_FLAG)
        );
        assert_eq!(
            one(b"mg foo s s\r\n"),
            err(reply::CLIENT_ERROR_DUPLICATE_FLAG)
        );
        assert_eq!(
            one(b"mg foo \xff\r\n"),
            err(reply::CLIENT_ERROR_DUPLICATE_FLAG)
        );
        assert_eq!(one(b"mg foo Tx\r\n"), err(reply::CLIENT_ERROR_BAD_TOKEN));
        assert_eq!(one(b"mg foo T\r\n"), err(reply::CLIENT_ERROR_BAD_TOKEN));
        assert_eq!(one(b"mg foo Fx\r\n"), BAD, "F sets no errstr");
        assert_eq!(one(b"mg foo Cx\r\n"), err(reply::CLIENT_ERROR_BAD_TOKEN));
        assert_eq!(one(b"mg foo Ex\r\n"), err(reply::CLIENT_ERROR_BAD_TOKEN));
        assert_eq!(
            one(b"mg foo Jx\r\n"),
            err(reply::CLIENT_ERROR_INVALID_INITIAL)
        );
        assert_eq!(
            one(b"mg foo Dx\r\n"),
            err(reply::CLIENT_ERROR_INVALID_DELTA_VALUE)
        );
        assert_eq!(
            one(b"mg foo MEE\r\n"),
            err(reply_extra::CLIENT_ERROR_M_TOKEN_LENGTH)
        );
        assert_eq!(one(b"mg !!! b\r\n"), err(reply::CLIENT_ERROR_DECODING_KEY));
        // The last errstr wins; invalid/duplicate flags stop at once.
        assert_eq!(one(b"mg !!! b Tx\r\n"), err(reply::CLIENT_ERROR_BAD_TOKEN));
        assert_eq!(
            one(b"mg foo Tx z\r\n"),
            err(reply::CLIENT_ERROR_INVALID_FLAG)
        );
        // Key length is checked on the encoded key, before flags.
        let k = "a".repeat(251);
        assert_eq!(one(format!("mg {k} zz\r\n").as_bytes()), BAD);
        assert_eq!(
            meta(one(format!("mg {} v\r\n", "a".repeat(250)).as_bytes()))
                .key
                .len(),
            250
        );
        // 17 flags are fine, 18 are too many (ntokens > 20).
        let ok = "P L k s t c f v h u q l O"
            .split(' ')
            .chain(["T1", "N1", "R1", "b"])
            .collect::<Vec<_>>();
        assert_eq!(ok.len(), 17);
        assert_eq!(
            meta(one(format!("mg Zm9v {}\r\n", ok.join(" ")).as_bytes()))
                .order
                .as_slice()
                .len(),
            17
        );
        assert_eq!(
            one(format!("mg foo {} I\r\n", ok.join(" ")).as_bytes()),
            err(reply::CLIENT_ERROR_OPTIONS_FLAGS_TOO_LONG)
        );
        // A long opaque is checked when the reply is built, not here.
        let o = format!("O{}", "x".repeat(40));
        assert_eq!(
            meta(one(format!("mg foo {o}\r\n").as_bytes())).opaque.len(),
            41
        );
    }

    #[test]
    fn m_b_base64_key_decoded() {
        let m = meta(one(b"mg 44OG44K544OI b v k\r\n"));
        assert_eq!(&m.key[..], "テスト".as_bytes());
        assert!(m.base64);
        let m = meta(one(b"ms 44OG44K544OI 2 b\r\npo\r\n"));
        assert_eq!(&m.key[..], "テスト".as_bytes());
        assert_eq!(&m.data[..], b"po");
    }

    #[test]
    fn m_ms_line_and_data() {
        let m = meta(one(b"ms k 3 T10 F5 C7 E9 I MA N30 q k c Oxy s\r\nabc\r\n"));
        assert_eq!(m.cmd, MetaCmd::Set);
        assert_eq!((&m.key[..], &m.data[..]), (&b"k"[..], &b"abc"[..]));
        assert_eq!(
            (m.ttl, m.client_flags, m.compare_cas, m.new_cas),
            (Some(10), 5, Some(7), Some(9))
        );
        assert!(m.invalidate && m.quiet);
        assert_eq!((m.mode, m.vivify), (b'A', Some(30)));
        assert_eq!(m.order.as_slice(), b"TFCEIMNqkcOs");
        // Zero-length value; bare \n ends the line.
        let m = meta(one(b"ms k 0\n\r\n"));
        assert_eq!(&m.data[..], b"");
    }

    #[test]
    fn m_ms_errors_and_swallow() {
        // metaget.t "testing quiet flag": no length.
        assert_eq!(one(b"ms quiet\r\n"), BAD);
        assert_eq!(one(b"ms\r\n"), E);
        // Bad length: the line alone is consumed, the data is a new command.
        assert_eq!(all(b"ms k x\r\nab\r\n"), vec![BAD, E]);
        assert_eq!(all(b"ms k -1\r\nab\r\n"), vec![BAD, E]);
        assert_eq!(all(b"ms k 2147483646\r\n"), vec![BAD]);
        // Flag errors swallow the declared data (even with q).
        assert_eq!(
            all(b"ms k 2 q zz\r\nab\r\nmn\r\n"),
            vec![
                err(reply::CLIENT_ERROR_INVALID_FLAG),
                Parsed::Silent,
                Parsed::Request(meta_noop())
            ]
        );
        // metaget.t "invalid mode".
        assert_eq!(
            all(b"ms modetest 2 T120 MZ\r\ntt\r\n"),
            vec![err(reply::CLIENT_ERROR_INVALID_MS_MODE), Parsed::Silent]
        );
        assert_eq!(
            all(b"ms k 2 MAA\r\ntt\r\n"),
            vec![
                err(reply_extra::CLIENT_ERROR_M_TOKEN_LENGTH),
                Parsed::Silent
            ]
        );
        let o = format!("O{}", "x".repeat(32));
        assert_eq!(
            all(format!("ms k 2 {o}\r\ntt\r\n").as_bytes()),
            vec![err(reply::CLIENT_ERROR_OPAQUE_TOO_LONG), Parsed::Silent]
        );
        // The mode error wins over the opaque error.
        assert_eq!(
            all(format!("ms k 2 {o} MZ\r\ntt\r\n").as_bytes()),
            vec![err(reply::CLIENT_ERROR_INVALID_MS_MODE), Parsed::Silent]
        );
        // 16 flags after the length are fine, 17 are too many; no swallow.
        let f = "a ".repeat(17);
        assert_eq!(
            all(format!("ms k 2 {f}\r\nab\r\n").as_bytes()),
            vec![err(reply::CLIENT_ERROR_OPTIONS_FLAGS_TOO_LONG_MS), E]
        );
        // Bad data chunk: len + 2 bytes consumed, reported even with q.
        assert_eq!(
            all(b"ms k 2 q\r\nabcd\r\n"),
            vec![err(reply::CLIENT_ERROR_BAD_DATA_CHUNK), E]
        );
        // Key too long: no swallow.
        let k = "a".repeat(251);
        assert_eq!(all(format!("ms {k} 2\r\nab\r\n").as_bytes()), vec![BAD, E]);
    }

    fn meta_noop() -> Request {
        Request {
            cmd: Command::Meta(Box::new(MetaRequest::new(MetaCmd::Noop, Bytes::new()))),
            noreply: false,
        }
    }

    #[test]
    fn m_ms_too_large_is_swallowed() {
        let r = all_with(4, b"ms k 5 T1\r\nabcde\r\nmn\r\n");
        assert_eq!(r.len(), 3, "{r:?}");
        let m = meta(r[0].clone());
        assert!(m.too_large);
        assert_eq!(&m.key[..], b"k");
        assert_eq!(r[1], Parsed::Silent);
        assert_eq!(r[2], Parsed::Request(meta_noop()));
    }

    #[test]
    fn m_ms_data_arrives_in_pieces() {
        let mut p = AsciiParser::new(MAX);
        let mut buf = BytesMut::from(&b"ms k 5 c\r\nab"[..]);
        assert_eq!(p.parse(&mut buf), Parsed::Incomplete);
        assert_eq!(p.pending_len(), Some(7));
        assert_eq!(&buf[..], b"ab", "line consumed once");
        buf.put_slice(b"cde\r");
        assert_eq!(p.parse(&mut buf), Parsed::Incomplete);
        buf.put_slice(b"\nmn\r\n");
        let m = meta(p.parse(&mut buf));
        assert_eq!(&m.data[..], b"abcde");
        assert_eq!(p.parse(&mut buf), Parsed::Request(meta_noop()));
    }

    #[test]
    fn m_md_ma_errors() {
        assert_eq!(one(b"md\r\n"), E);
        assert_eq!(
            one(b"md k zz\r\n"),
            err(reply::CLIENT_ERROR_INVALID_OR_DUPLICATE_FLAG)
        );
        assert_eq!(
            one(b"md k q q\r\n"),
            err(reply::CLIENT_ERROR_INVALID_OR_DUPLICATE_FLAG)
        );
        assert_eq!(
            one(b"md k Tx\r\n"),
            err(reply::CLIENT_ERROR_INVALID_OR_DUPLICATE_FLAG)
        );
        let o = format!("O{}", "x".repeat(32));
        assert_eq!(
            one(format!("md k {o}\r\n").as_bytes()),
            err(reply::CLIENT_ERROR_OPAQUE_TOO_LONG)
        );
        assert_eq!(
            one(format!("md k {}\r\n", "a ".repeat(18)).as_bytes()),
            err(reply::CLIENT_ERROR_OPTIONS_FLAGS_TOO_LONG_MS)
        );
        assert_eq!(
            one(b"ma k MX\r\n"),
            err(reply::CLIENT_ERROR_INVALID_MA_MODE)
        );
        assert_eq!(
            one(b"ma k Dx\r\n"),
            err(reply::CLIENT_ERROR_INVALID_OR_DUPLICATE_FLAG)
        );
        assert_eq!(
            one(format!("ma {} D1\r\n", "a".repeat(251)).as_bytes()),
            BAD
        );
        for mode in [b'I', b'+', b'D', b'-'] {
            let line = [&b"ma k M"[..], &[mode], b"\r\n"].concat();
            assert_eq!(meta(one(&line)).mode, mode);
        }
        let m = meta(one(b"ma k N0 J13 D30 MD q v t c k Oo\r\n"));
        assert_eq!(
            (m.initial, m.delta, m.vivify, m.mode),
            (13, 30, Some(0), b'D')
        );
        let m = meta(one(b"ma k\r\n"));
        assert_eq!((m.delta, m.initial), (1, 0), "defaults");
        let m = meta(one(b"md k I T30 C5 x q\r\n"));
        assert!(m.invalidate && m.remove_value && m.quiet);
        assert_eq!((m.ttl, m.compare_cas), (Some(30), Some(5)));
    }

    #[test]
    fn m_me_mn() {
        assert_eq!(one(b"me\r\n"), BAD);
        assert_eq!(one(format!("me {}\r\n", "a".repeat(251)).as_bytes()), BAD);
        assert_eq!(one(b"me !!!! b\r\n"), BAD);
        let m = meta(one(b"me Zm9v b\r\n"));
        assert_eq!(
            (m.cmd, &m.key[..], m.base64),
            (MetaCmd::Debug, &b"foo"[..], true)
        );
        // Other tokens are ignored; `b` only counts as the first flag.
        let m = meta(one(b"me Zm9v x b\r\n"));
        assert_eq!((&m.key[..], m.base64), (&b"Zm9v"[..], false));
        assert_eq!(one(b"mn\r\n"), Parsed::Request(meta_noop()));
        assert_eq!(one(b"mn extra tokens\r\n"), Parsed::Request(meta_noop()));
        assert_eq!(meta(one(b"mn\r\n")).routing_key(), None);
    }

    #[test]
    fn m_q_pipeline_of_lines() {
        // metaget.t quiet pipeline: five requests in one buffer.
        let r = all(
            b"ms quiet 2 q\r\nbo\r\nmg quiet v q\r\nmg quiet v q\r\nmg quietmiss v q\r\nmn\r\n",
        );
        assert_eq!(r.len(), 5);
        let cmds: Vec<MetaCmd> = r.into_iter().map(|p| meta(p).cmd).collect();
        assert_eq!(
            cmds,
            [
                MetaCmd::Set,
                MetaCmd::Get,
                MetaCmd::Get,
                MetaCmd::Get,
                MetaCmd::Noop
            ]
        );
    }

    #[test]
    fn keys_and_opaque_are_slices_of_the_frame() {
        let mut buf = BytesMut::from(&b"mg key Oab v\r\n"[..]);
        let base = buf.as_ptr() as usize;
        let m = meta(AsciiParser::new(MAX).parse(&mut buf));
        assert_eq!(m.key.as_ptr() as usize, base + 3);
        assert_eq!(m.opaque.as_ptr() as usize, base + 7);
    }
}
