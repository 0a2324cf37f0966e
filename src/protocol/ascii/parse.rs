//! Incremental parser for classic ASCII requests, byte-exact with memcached
//! 1.6.18 (`proto_text.c`: `try_read_command_ascii`, `tokenize_command`,
//! `process_command_ascii` and the `process_*_command` functions;
//! `memcached.c`: `conn_nread`, `conn_swallow`, `complete_nread_ascii`).
//!
//! The parser never copies: a complete request's bytes are split off the
//! connection's read buffer as one frozen frame and keys/values are `Bytes`
//! slices of it. State kept between calls:
//! * how far the current (incomplete) line has been scanned for `\n`, so a
//!   large multiget arriving in pieces is not rescanned;
//! * a storage command's parsed header while its data block arrives;
//! * the number of bytes still to swallow after a too-large storage command.
//!
//! Rules reproduced from memcached 1.6.18 (rule IDs from protocol.md):
//! * X-2 a command line ends at `\n`; one `\r` before it is dropped unless the
//!   line is just `\r\n`; the line is cut at its first NUL byte (memcached
//!   uses C strings). Tokens are separated by spaces only. Empty lines,
//!   blank lines and one-character commands answer `ERROR`.
//! * Only the first 23 tokens of a line are looked at (`MAX_TOKENS` 24),
//!   except by get/gets/gat/gats/bget, which take every key on the line.
//! * Numbers follow memcached's `safe_strto*` over C `strtol`/`strtoul`:
//!   leading whitespace and a sign are accepted, the number may be followed
//!   by a whitespace character (tab, `\r`, …) and anything after it; 32-bit
//!   fields (flags, exptime, bytes, verbosity, memlimit) keep the low 32 bits
//!   of the 64-bit value (so `set k 0 0 4294967295` is length -1 → error).
//! * X-9 `noreply` is recognised only as the exact last token, and it also
//!   silences the errors of the command that carries it (out_string).
//! * X-6 / X-7 hang-up rules.

use bytes::{Buf, Bytes, BytesMut};

use crate::protocol::command::{Command, Request, StoreMode};
use crate::protocol::meta::parse::{self as meta, MetaPending};
use crate::protocol::reply;

/// X-1: longest key accepted (`KEY_MAX_LENGTH`).
pub const KEY_MAX_LENGTH: usize = 250;
/// memcached's `MAX_TOKENS`: at most this many tokens minus one are parsed.
const MAX_TOKENS: usize = 24;
/// X-6: a partial line longer than this that is not a multiget closes the connection.
const MAX_PARTIAL_LINE: usize = 2048;

/// Result of one [`AsciiParser::parse`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// One complete request; its bytes were removed from the buffer.
    Request(Request),
    /// More bytes are needed. The buffer is untouched, except that bytes
    /// being swallowed after a too-large storage command may have been removed.
    Incomplete,
    /// Bytes were consumed and this reply line (with `\r\n`) must be sent; the
    /// connection keeps serving. Always one of the [`reply`] constants.
    Error(&'static [u8]),
    /// Bytes were consumed and nothing is to be sent (an error silenced by
    /// `noreply`, the end of a swallowed data block).
    Silent,
    /// Hang up without a reply (X-6 long line, X-7 HTTP request).
    Close,
}

/// The header of a storage command whose data block has not fully arrived.
#[derive(Debug, Clone, Copy)]
struct Pending {
    mode: StoreMode,
    /// Length of the command line including its `\n`; the data follows it.
    line_len: usize,
    key_start: usize,
    key_end: usize,
    flags: u32,
    exptime: i64,
    cas: u64,
    /// Declared data length (without the trailing `\r\n`).
    len: usize,
    noreply: bool,
}

impl Pending {
    /// Bytes the frame spans: command line, data and its `\r\n`.
    fn frame_len(&self) -> usize {
        self.line_len + self.len + 2
    }
}

#[derive(Debug, Clone)]
enum State {
    /// Expecting a command line.
    Line,
    /// A storage command line was parsed; waiting for its data block.
    Data(Pending),
    /// Discarding this many bytes (the data block of a too-large set).
    Swallow(usize),
    /// An `ms` line was parsed; waiting for its data block (M-ms).
    MetaData(MetaPending),
}

/// Incremental parser for one connection. Call [`parse`](Self::parse)
/// repeatedly on the connection's read buffer until it returns
/// [`Parsed::Incomplete`] (or [`Parsed::Close`]); between calls the buffer may
/// only be appended to.
#[derive(Debug, Clone)]
pub struct AsciiParser {
    item_size_max: usize,
    shutdown_enabled: bool,
    state: State,
    /// Leading bytes of the buffer already known to contain no `\n`.
    scanned: usize,
}

impl AsciiParser {
    /// A parser for a server whose largest item is `item_size_max` bytes:
    /// storage commands declaring more data than that become
    /// [`Command::TooLarge`] and their data block is swallowed unbuffered.
    pub fn new(item_size_max: usize) -> Self {
        AsciiParser {
            item_size_max,
            shutdown_enabled: true,
            state: State::Line,
            scanned: 0,
        }
    }

    /// Tells the parser whether `shutdown` is enabled (memcached `-A`;
    /// default: enabled). memcached checks this before the argument: with
    /// shutdown disabled every `shutdown …` line, even `shutdown foo`, becomes
    /// [`Command::Shutdown`] so the executor answers
    /// [`reply::ERROR_SHUTDOWN_NOT_ENABLED`]; with it enabled a bad mode is
    /// answered [`reply::CLIENT_ERROR_INVALID_SHUTDOWN_MODE`] here.
    pub fn set_shutdown_enabled(&mut self, enabled: bool) {
        self.shutdown_enabled = enabled;
    }

    /// While a storage command's data block is arriving: the total number of
    /// bytes the buffer must hold for the request to complete (lets the
    /// caller reserve once for a large value). `None` otherwise.
    pub fn pending_len(&self) -> Option<usize> {
        match &self.state {
            State::Data(p) => Some(p.frame_len()),
            State::MetaData(p) => Some(p.frame_len()),
            _ => None,
        }
    }

    /// Parses at most one request from the front of `buf`, removing the bytes
    /// it consumes. Never panics; every call either consumes bytes or returns
    /// `Incomplete`/`Close`.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Parsed {
        match &mut self.state {
            State::Swallow(left) => {
                // conn_swallow: discard without buffering.
                let n = (*left).min(buf.len());
                buf.advance(n);
                *left -= n;
                if *left == 0 {
                    self.state = State::Line;
                    Parsed::Silent
                } else {
                    Parsed::Incomplete
                }
            }
            State::Data(p) => {
                if buf.len() < p.frame_len() {
                    return Parsed::Incomplete;
                }
                let p = *p;
                self.state = State::Line;
                finish_store(buf, &p)
            }
            State::MetaData(p) => {
                if !p.ready(buf) {
                    return Parsed::Incomplete;
                }
                match std::mem::replace(&mut self.state, State::Line) {
                    State::MetaData(p) => p.finish(buf),
                    _ => Parsed::Incomplete,
                }
            }
            State::Line => self.parse_line(buf),
        }
    }

    fn parse_line(&mut self, buf: &mut BytesMut) -> Parsed {
        if buf.is_empty() {
            return Parsed::Incomplete;
        }
        let from = self.scanned.min(buf.len());
        let nl = match memchr::memchr(b'\n', &buf[from..]) {
            Some(i) => from + i,
            None => {
                self.scanned = buf.len();
                return if buf.len() > MAX_PARTIAL_LINE && !partial_line_may_grow(buf) {
                    Parsed::Close // X-6
                } else {
                    Parsed::Incomplete
                };
            }
        };
        self.scanned = 0;
        let frame_len = nl + 1;
        // try_read_command_ascii: strip one '\r' unless the line is "\r\n".
        let mut end = if nl > 1 && buf[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        // C strings: the line ends at its first NUL.
        if let Some(z) = memchr::memchr(0, &buf[..end]) {
            end = z;
        }
        let toks = Tokens::new(&buf[..end]);
        self.dispatch(buf, frame_len, end, &toks)
    }

    /// process_command_ascii.
    fn dispatch(&mut self, buf: &mut BytesMut, frame_len: usize, end: usize, t: &Tokens) -> Parsed {
        let line = &buf[..end];
        // memcached's ntokens counts a terminal token.
        let ntok = t.n + 1;
        if t.n == 0 || t.len(0) < 2 {
            return consume_err(buf, frame_len, reply::ERROR);
        }
        let cmd = t.get(line, 0);
        let err = |buf: &mut BytesMut| consume_err(buf, frame_len, reply::ERROR);
        match cmd[0] {
            // Meta commands (mg, ms, md, mn, ma, me; M-*).
            b'm' if cmd.len() == 2 => self.meta(buf, frame_len, t),
            b'g' => {
                if ntok < 3 {
                    return err(buf);
                }
                match cmd {
                    b"get" => get(buf, frame_len, end, t, false, false),
                    b"gets" => get(buf, frame_len, end, t, true, false),
                    b"gat" => get(buf, frame_len, end, t, false, true),
                    b"gats" => get(buf, frame_len, end, t, true, true),
                    _ => err(buf),
                }
            }
            b's' => match cmd {
                b"set" => self.store(buf, frame_len, t, StoreMode::Set),
                b"stats" => {
                    let frame = buf.split_to(frame_len).freeze();
                    let args = (1..t.n).map(|i| frame.slice(t.t[i].0..t.t[i].1)).collect();
                    request(Command::Stats { args }, false)
                }
                b"shutdown" => self.shutdown(buf, frame_len, t),
                // "slabs" and anything else starting with 's'.
                _ => err(buf),
            },
            b'a' => match cmd {
                b"add" => self.store(buf, frame_len, t, StoreMode::Add),
                b"append" => self.store(buf, frame_len, t, StoreMode::Append),
                _ => err(buf),
            },
            b'c' => match cmd {
                b"cas" => self.store(buf, frame_len, t, StoreMode::Cas),
                b"cache_memlimit" => memlimit(buf, frame_len, t),
                _ => err(buf),
            },
            b'i' => match cmd {
                b"incr" => arith(buf, frame_len, t, true),
                _ => err(buf),
            },
            b'd' => match cmd {
                b"delete" => delete(buf, frame_len, t),
                b"decr" => arith(buf, frame_len, t, false),
                _ => err(buf),
            },
            b't' => match cmd {
                b"touch" => touch(buf, frame_len, t),
                _ => err(buf),
            },
            _ => match cmd {
                b"replace" => self.store(buf, frame_len, t, StoreMode::Replace),
                b"prepend" => self.store(buf, frame_len, t, StoreMode::Prepend),
                // Ancient alias of get, still accepted by 1.6.18.
                b"bget" if ntok >= 3 => get(buf, frame_len, end, t, false, false),
                b"bget" => err(buf),
                b"flush_all" => flush_all(buf, frame_len, t),
                b"version" => {
                    buf.advance(frame_len);
                    request(Command::Version, false)
                }
                b"quit" => {
                    buf.advance(frame_len);
                    request(Command::Quit, false)
                }
                b"verbosity" => verbosity(buf, frame_len, t),
                // Operator commands memcached knows but shoal does not offer.
                b"lru_crawler" | b"watch" | b"lru" | b"extstore" => err(buf),
                _ => {
                    // X-7: the last parsed token starting "HTTP/" means a web
                    // client; hang up.
                    if t.get(line, t.n - 1).starts_with(b"HTTP/") {
                        buf.advance(frame_len);
                        Parsed::Close
                    } else {
                        err(buf)
                    }
                }
            },
        }
    }

    /// process_update_command: set/add/replace/append/prepend/cas.
    fn store(
        &mut self,
        buf: &mut BytesMut,
        frame_len: usize,
        t: &Tokens,
        mode: StoreMode,
    ) -> Parsed {
        let line = &buf[..];
        let ntok = t.n + 1;
        let handle_cas = mode == StoreMode::Cas;
        let ok_count = if handle_cas {
            ntok == 7 || ntok == 8
        } else {
            ntok == 6 || ntok == 7
        };
        if !ok_count {
            return consume_err(buf, frame_len, reply::ERROR);
        }
        let noreply = t.noreply(line);
        let fail = |buf: &mut BytesMut| {
            consume_fail(
                buf,
                frame_len,
                noreply,
                reply::CLIENT_ERROR_BAD_COMMAND_LINE_FORMAT,
            )
        };
        if t.len(1) > KEY_MAX_LENGTH {
            return fail(buf);
        }
        let (Some(flags), Some(exptime), Some(vlen)) = (
            safe_strtoul(t.get(line, 2)),
            safe_strtol(t.get(line, 3)),
            safe_strtol(t.get(line, 4)),
        ) else {
            return fail(buf);
        };
        let cas = if handle_cas {
            match safe_strtoull(t.get(line, 5)) {
                Some(c) => c,
                None => return fail(buf),
            }
        } else {
            0
        };
        if !(0..=i32::MAX - 2).contains(&vlen) {
            return fail(buf);
        }
        let len = vlen as usize;
        let (key_start, key_end) = t.t[1];
        if len > self.item_size_max {
            // X-5: answer now, swallow the data block (and its \r\n) unbuffered.
            let key = take_range(buf, frame_len, key_start, key_end);
            self.state = State::Swallow(len + 2);
            return request(Command::TooLarge { mode, key }, noreply);
        }
        let p = Pending {
            mode,
            line_len: frame_len,
            key_start,
            key_end,
            flags,
            exptime: i64::from(exptime),
            cas,
            len,
            noreply,
        };
        if buf.len() >= p.frame_len() {
            finish_store(buf, &p)
        } else {
            self.state = State::Data(p);
            Parsed::Incomplete
        }
    }

    /// Meta commands: the meta parser consumes the line and says what comes next.
    fn meta(&mut self, buf: &mut BytesMut, frame_len: usize, t: &Tokens) -> Parsed {
        let (parsed, next) = meta::parse_line(buf, frame_len, &t.t[..t.n], self.item_size_max);
        self.state = match next {
            meta::Next::Line => State::Line,
            meta::Next::Swallow(n) => State::Swallow(n),
            meta::Next::Data(p) => State::MetaData(p),
        };
        parsed
    }

    /// process_shutdown_command.
    fn shutdown(&mut self, buf: &mut BytesMut, frame_len: usize, t: &Tokens) -> Parsed {
        let graceful = t.n == 2 && t.get(buf, 1) == b"graceful";
        if self.shutdown_enabled && t.n != 1 && !graceful {
            return consume_err(buf, frame_len, reply::CLIENT_ERROR_INVALID_SHUTDOWN_MODE);
        }
        buf.advance(frame_len);
        request(Command::Shutdown { graceful }, false)
    }
}

impl Default for AsciiParser {
    /// A parser with memcached's default 1 MiB item size limit.
    fn default() -> Self {
        AsciiParser::new(1024 * 1024)
    }
}

/// X-6: a partial line over 2048 bytes may keep growing only if (after at
/// most 100 leading spaces) it starts with `get ` or `gets `.
fn partial_line_may_grow(buf: &[u8]) -> bool {
    let spaces = buf.iter().take_while(|&&b| b == b' ').count();
    if spaces > 100 {
        return false;
    }
    let rest = &buf[spaces..];
    rest.starts_with(b"get ") || rest.starts_with(b"gets ")
}

fn request(cmd: Command, noreply: bool) -> Parsed {
    Parsed::Request(Request { cmd, noreply })
}

/// Consumes the line and answers `msg` (an error noreply cannot silence).
fn consume_err(buf: &mut BytesMut, frame_len: usize, msg: &'static [u8]) -> Parsed {
    buf.advance(frame_len);
    Parsed::Error(msg)
}

/// Consumes the line and answers `msg` unless `noreply` (X-9: out_string
/// skips the reply when the command carried noreply).
fn consume_fail(buf: &mut BytesMut, frame_len: usize, noreply: bool, msg: &'static [u8]) -> Parsed {
    buf.advance(frame_len);
    if noreply {
        Parsed::Silent
    } else {
        Parsed::Error(msg)
    }
}

/// complete_nread_ascii: the frame (line + data + 2) is in `buf`.
fn finish_store(buf: &mut BytesMut, p: &Pending) -> Parsed {
    let total = p.frame_len();
    if &buf[total - 2..total] != b"\r\n" {
        // All len+2 bytes are consumed; what follows is parsed as a new
        // command (1.6.18 does not swallow the rest of a bad chunk).
        buf.advance(total);
        return if p.noreply {
            Parsed::Silent
        } else {
            Parsed::Error(reply::CLIENT_ERROR_BAD_DATA_CHUNK)
        };
    }
    // Split without extra reference-count traffic: [line | data | \r\n].
    let mut data = buf.split_to(total);
    let mut key = data.split_to(p.key_end);
    key.advance(p.key_start);
    data.advance(p.line_len - p.key_end);
    data.truncate(p.len);
    request(
        Command::Store {
            mode: p.mode,
            key: key.freeze(),
            flags: p.flags,
            exptime: p.exptime,
            data: data.freeze(),
            cas: p.cas,
        },
        p.noreply,
    )
}

/// process_get_command: get/gets/gat/gats/bget (A-get, A-gets, A-gat).
fn get(
    buf: &mut BytesMut,
    frame_len: usize,
    end: usize,
    t: &Tokens,
    with_cas: bool,
    touch: bool,
) -> Parsed {
    let line = &buf[..end];
    let mut first = 1;
    let exptime = if touch {
        first = 2;
        match safe_strtol(t.get(line, 1)) {
            Some(e) => Some(i64::from(e)),
            None => return consume_err(buf, frame_len, reply::CLIENT_ERROR_INVALID_EXPTIME),
        }
    } else {
        None
    };
    let frame_keys = &t.t[first.min(t.n)..t.n];
    if t.rest >= end {
        // Common case: every key is among the first 23 tokens.
        if frame_keys.iter().any(|&(s, e)| e - s > KEY_MAX_LENGTH) {
            return consume_err(buf, frame_len, reply::CLIENT_ERROR_BAD_COMMAND_LINE_FORMAT);
        }
        let keys = if let [(s, e)] = *frame_keys {
            vec![take_range(buf, frame_len, s, e)]
        } else {
            let frame = buf.split_to(frame_len).freeze();
            frame_keys.iter().map(|&(s, e)| frame.slice(s..e)).collect()
        };
        return request(
            Command::Get {
                keys,
                with_cas,
                touch: exptime,
            },
            false,
        );
    }
    let mut count = 0usize;
    let mut too_long = false;
    for (s, e) in t.keys(line, first) {
        if e - s > KEY_MAX_LENGTH {
            too_long = true;
            break;
        }
        count += 1;
    }
    if too_long {
        // The whole reply is replaced by the error (keys before it are dropped).
        return consume_err(buf, frame_len, reply::CLIENT_ERROR_BAD_COMMAND_LINE_FORMAT);
    }
    let frame = buf.split_to(frame_len).freeze();
    let mut keys = Vec::with_capacity(count);
    keys.extend(t.keys(&frame[..end], first).map(|(s, e)| frame.slice(s..e)));
    request(
        Command::Get {
            keys,
            with_cas,
            touch: exptime,
        },
        false,
    )
}

/// `CLIENT_ERROR bad command line format` for a key-addressed command whose
/// key is too long (X-1), consuming its line.
fn bad_format(buf: &mut BytesMut, frame_len: usize, noreply: bool) -> Parsed {
    consume_fail(
        buf,
        frame_len,
        noreply,
        reply::CLIENT_ERROR_BAD_COMMAND_LINE_FORMAT,
    )
}

/// process_arithmetic_command: incr/decr (A-incr, A-decr).
fn arith(buf: &mut BytesMut, frame_len: usize, t: &Tokens, incr: bool) -> Parsed {
    let ntok = t.n + 1;
    if ntok != 4 && ntok != 5 {
        return consume_err(buf, frame_len, reply::ERROR);
    }
    let noreply = t.noreply(buf);
    if t.len(1) > KEY_MAX_LENGTH {
        return bad_format(buf, frame_len, noreply);
    }
    let Some(delta) = safe_strtoull(t.get(buf, 2)) else {
        return consume_fail(buf, frame_len, noreply, reply::CLIENT_ERROR_INVALID_DELTA);
    };
    let key = key_of(buf, frame_len, t);
    request(Command::Arith { key, incr, delta }, noreply)
}

/// process_touch_command (A-touch).
fn touch(buf: &mut BytesMut, frame_len: usize, t: &Tokens) -> Parsed {
    let ntok = t.n + 1;
    if ntok != 4 && ntok != 5 {
        return consume_err(buf, frame_len, reply::ERROR);
    }
    let noreply = t.noreply(buf);
    if t.len(1) > KEY_MAX_LENGTH {
        return bad_format(buf, frame_len, noreply);
    }
    let Some(exptime) = safe_strtol(t.get(buf, 2)) else {
        return consume_fail(buf, frame_len, noreply, reply::CLIENT_ERROR_INVALID_EXPTIME);
    };
    let key = key_of(buf, frame_len, t);
    request(
        Command::Touch {
            key,
            exptime: i64::from(exptime),
        },
        noreply,
    )
}

/// process_delete_command (A-delete): `delete <key> [0] [noreply]`.
fn delete(buf: &mut BytesMut, frame_len: usize, t: &Tokens) -> Parsed {
    let ntok = t.n + 1;
    if !(3..=5).contains(&ntok) {
        return consume_err(buf, frame_len, reply::ERROR);
    }
    let mut noreply = false;
    if ntok > 3 {
        let hold_is_zero = t.get(buf, 2) == b"0";
        noreply = t.noreply(buf);
        let valid =
            (ntok == 4 && (hold_is_zero || noreply)) || (ntok == 5 && hold_is_zero && noreply);
        if !valid {
            return consume_fail(buf, frame_len, noreply, reply::CLIENT_ERROR_DELETE_USAGE);
        }
    }
    if t.len(1) > KEY_MAX_LENGTH {
        return bad_format(buf, frame_len, noreply);
    }
    let key = key_of(buf, frame_len, t);
    request(Command::Delete { key }, noreply)
}

/// process_flush_all_command (A-flush): `flush_all [delay] [noreply]`.
fn flush_all(buf: &mut BytesMut, frame_len: usize, t: &Tokens) -> Parsed {
    let ntok = t.n + 1;
    if !(2..=4).contains(&ntok) {
        return consume_err(buf, frame_len, reply::ERROR);
    }
    let noreply = t.noreply(buf);
    let mut delay = 0i32;
    if ntok != if noreply { 3 } else { 2 } {
        match safe_strtol(t.get(buf, 1)) {
            Some(d) => delay = d,
            None => {
                // NB memcached also counts this in cmd_flush, and with -F answers
                // "flush_all not allowed" instead; neither is visible from here.
                return consume_fail(buf, frame_len, noreply, reply::CLIENT_ERROR_INVALID_EXPTIME);
            }
        }
    }
    buf.advance(frame_len);
    // memcached treats a negative delay exactly like 0 (flush now).
    request(
        Command::FlushAll {
            delay: i64::from(delay.max(0)),
        },
        noreply,
    )
}

/// process_verbosity_command (A-verbosity). The level is passed unclamped.
fn verbosity(buf: &mut BytesMut, frame_len: usize, t: &Tokens) -> Parsed {
    let ntok = t.n + 1;
    if ntok != 3 && ntok != 4 {
        return consume_err(buf, frame_len, reply::ERROR);
    }
    let noreply = t.noreply(buf);
    let Some(level) = safe_strtoul(t.get(buf, 1)) else {
        return bad_format(buf, frame_len, noreply);
    };
    buf.advance(frame_len);
    request(Command::Verbosity { level }, noreply)
}

/// process_memlimit_command (A-memlimit): a non-numeric argument is `ERROR`
/// (silenced by noreply); range errors are the executor's.
fn memlimit(buf: &mut BytesMut, frame_len: usize, t: &Tokens) -> Parsed {
    let ntok = t.n + 1;
    if ntok != 3 && ntok != 4 {
        return consume_err(buf, frame_len, reply::ERROR);
    }
    let noreply = t.noreply(buf);
    let Some(mb) = safe_strtoul(t.get(buf, 1)) else {
        return consume_fail(buf, frame_len, noreply, reply::ERROR);
    };
    buf.advance(frame_len);
    request(
        Command::CacheMemlimit {
            megabytes: u64::from(mb),
        },
        noreply,
    )
}

/// Splits the line off `buf` and returns token 1 (the key) as a slice of it.
fn key_of(buf: &mut BytesMut, frame_len: usize, t: &Tokens) -> Bytes {
    take_range(buf, frame_len, t.t[1].0, t.t[1].1)
}

/// Consumes `frame_len` bytes of `buf` and returns bytes `s..e` of them,
/// zero-copy.
#[inline]
fn take_range(buf: &mut BytesMut, frame_len: usize, s: usize, e: usize) -> Bytes {
    let mut f = buf.split_to(frame_len);
    f.truncate(e);
    f.advance(s);
    f.freeze()
}

// ---------------------------------------------------------------------------
// Tokenizer.

/// tokenize_command(…, MAX_TOKENS): up to 23 space-separated tokens as
/// offsets into the line; `rest` is where tokenizing stopped (the line's end
/// unless the 23-token limit was hit).
struct Tokens {
    t: [(usize, usize); MAX_TOKENS - 1],
    n: usize,
    rest: usize,
}

impl Tokens {
    #[inline(always)]
    fn new(line: &[u8]) -> Tokens {
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
    fn get<'a>(&self, line: &'a [u8], i: usize) -> &'a [u8] {
        let (s, e) = self.t[i];
        &line[s..e]
    }

    #[inline]
    fn len(&self, i: usize) -> usize {
        self.t[i].1 - self.t[i].0
    }

    /// set_noreply_maybe: the last parsed token is exactly `noreply`.
    #[inline]
    fn noreply(&self, line: &[u8]) -> bool {
        self.n > 0 && self.get(line, self.n - 1) == b"noreply"
    }

    /// Every token from index `first` to the end of the line, past the
    /// 23-token limit (process_get_command re-tokenizes the remainder).
    fn keys<'a>(
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

// ---------------------------------------------------------------------------
// Numbers: memcached's util.c safe_strto* over glibc strto* (base 10).

/// C `isspace` in the "C" locale.
#[inline]
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The strto* scan plus safe_strto*'s end check: optional whitespace, sign,
/// at least one digit, then end of token or a whitespace character.
/// Returns (negative, magnitude or None if it exceeds u64).
#[inline]
fn scan_number(tok: &[u8]) -> Option<(bool, Option<u64>)> {
    let mut i = 0;
    while i < tok.len() && is_c_space(tok[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < tok.len() && (tok[i] == b'+' || tok[i] == b'-') {
        neg = tok[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut mag = Some(0u64);
    while i < tok.len() && tok[i].is_ascii_digit() {
        let d = u64::from(tok[i] - b'0');
        mag = mag
            .and_then(|m| m.checked_mul(10))
            .and_then(|m| m.checked_add(d));
        i += 1;
    }
    if i == start || (i < tok.len() && !is_c_space(tok[i])) {
        return None;
    }
    Some((neg, mag))
}

/// safe_strtoull: strtoull (a `-` negates modulo 2^64) rejecting results that
/// are negative as i64 when the token holds a `-`.
#[inline]
pub(crate) fn safe_strtoull(tok: &[u8]) -> Option<u64> {
    let (neg, mag) = scan_number(tok)?;
    let v = mag?; // ERANGE
    let v = if neg { v.wrapping_neg() } else { v };
    if (v as i64) < 0 && tok.contains(&b'-') {
        return None;
    }
    Some(v)
}

/// safe_strtoul into a `uint32_t`: the same as [`safe_strtoull`] (unsigned
/// long is 64-bit), then truncated to the low 32 bits.
#[inline]
pub(crate) fn safe_strtoul(tok: &[u8]) -> Option<u32> {
    safe_strtoull(tok).map(|v| v as u32)
}

/// safe_strtol into an `int32_t`: strtol (64-bit long, ERANGE outside i64),
/// then truncated to the low 32 bits.
#[inline]
pub(crate) fn safe_strtol(tok: &[u8]) -> Option<i32> {
    let (neg, mag) = scan_number(tok)?;
    let m = mag?;
    let v: i64 = if neg {
        if m > 1u64 << 63 {
            return None;
        }
        (m as i64).wrapping_neg()
    } else {
        i64::try_from(m).ok()?
    };
    Some(v as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    const MAX: usize = 1024 * 1024;

    /// Feeds `input` whole and returns every non-Incomplete outcome.
    fn all(input: &[u8]) -> Vec<Parsed> {
        let mut p = AsciiParser::new(MAX);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        for _ in 0..10_000 {
            match p.parse(&mut buf) {
                Parsed::Incomplete => break,
                Parsed::Close => {
                    out.push(Parsed::Close);
                    break;
                }
                r => out.push(r),
            }
        }
        out
    }

    fn one(input: &[u8]) -> Parsed {
        let mut v = all(input);
        assert_eq!(
            v.len(),
            1,
            "{:?} -> {:?}",
            String::from_utf8_lossy(input),
            v
        );
        v.pop().unwrap()
    }

    fn req(cmd: Command) -> Parsed {
        Parsed::Request(Request {
            cmd,
            noreply: false,
        })
    }

    fn req_nr(cmd: Command) -> Parsed {
        Parsed::Request(Request { cmd, noreply: true })
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn store(
        mode: StoreMode,
        key: &str,
        flags: u32,
        exptime: i64,
        data: &str,
        cas: u64,
    ) -> Command {
        Command::Store {
            mode,
            key: b(key),
            flags,
            exptime,
            data: b(data),
            cas,
        }
    }

    fn get(keys: &[&str], with_cas: bool, touch: Option<i64>) -> Command {
        Command::Get {
            keys: keys.iter().map(|k| b(k)).collect(),
            with_cas,
            touch,
        }
    }

    const E: Parsed = Parsed::Error(reply::ERROR);
    const BAD: Parsed = Parsed::Error(reply::CLIENT_ERROR_BAD_COMMAND_LINE_FORMAT);
    const CHUNK: Parsed = Parsed::Error(reply::CLIENT_ERROR_BAD_DATA_CHUNK);
    const EXP: Parsed = Parsed::Error(reply::CLIENT_ERROR_INVALID_EXPTIME);
    const DELTA: Parsed = Parsed::Error(reply::CLIENT_ERROR_INVALID_DELTA);

    // ---- A-set family ------------------------------------------------------

    #[test]
    fn a_set_add_replace_append_prepend() {
        assert_eq!(
            one(b"set foo 0 0 6\r\nfooval\r\n"),
            req(store(StoreMode::Set, "foo", 0, 0, "fooval", 0))
        );
        assert_eq!(
            one(b"add bar 5 10 3\r\nabc\r\n"),
            req(store(StoreMode::Add, "bar", 5, 10, "abc", 0))
        );
        assert_eq!(
            one(b"replace b 0 0 1\r\nx\r\n"),
            req(store(StoreMode::Replace, "b", 0, 0, "x", 0))
        );
        assert_eq!(
            one(b"append b 0 0 1\r\nx\r\n"),
            req(store(StoreMode::Append, "b", 0, 0, "x", 0))
        );
        assert_eq!(
            one(b"prepend b 0 0 1\r\nx\r\n"),
            req(store(StoreMode::Prepend, "b", 0, 0, "x", 0))
        );
    }

    #[test]
    fn a_set_zero_length_issue_70() {
        assert_eq!(
            one(b"set issue70 0 0 0\r\n\r\n"),
            req(store(StoreMode::Set, "issue70", 0, 0, "", 0))
        );
    }

    #[test]
    fn a_set_data_may_contain_crlf_and_nul() {
        assert_eq!(
            one(b"set k 0 0 4\r\n\r\n\0\n\r\n"),
            req(store(StoreMode::Set, "k", 0, 0, "\r\n\0\n", 0))
        );
    }

    #[test]
    fn x2_bare_newline_command_line() {
        assert_eq!(
            one(b"set k 1 2 3\nabc\r\n"),
            req(store(StoreMode::Set, "k", 1, 2, "abc", 0))
        );
        assert_eq!(one(b"get k\n"), req(get(&["k"], false, None)));
    }

    #[test]
    fn x2_data_block_must_end_crlf() {
        // memcached consumes len+2 bytes, then parses the rest as commands.
        assert_eq!(all(b"set k 0 0 3\r\nabcde\r\n"), vec![CHUNK, E]);
        assert_eq!(
            all(b"set k 0 0 3\r\nabc\n\r\nget k\r\n"),
            vec![CHUNK, E, req(get(&["k"], false, None))]
        );
        // noreply silences the bad-chunk error too (out_string).
        assert_eq!(
            all(b"set k 0 0 3 noreply\r\nabcde\r\n"),
            vec![Parsed::Silent, E]
        );
    }

    #[test]
    fn a_cas() {
        assert_eq!(
            one(b"cas moo 0 0 6 12345\r\nMOOVAL\r\n"),
            req(store(StoreMode::Cas, "moo", 0, 0, "MOOVAL", 12345))
        );
        assert_eq!(
            one(b"cas k 1 2 1 18446744073709551615 noreply\r\nx\r\n"),
            req_nr(store(StoreMode::Cas, "k", 1, 2, "x", u64::MAX))
        );
    }

    #[test]
    fn a_cas_bad_args_cas_t() {
        // cas.t check_args: each answers exactly the format error.
        for l in [
            &b"cas bad blah 0 0 0\r\n\r\n"[..],
            b"cas bad 0 blah 0 0\r\n\r\n",
            b"cas bad 0 0 blah 0\r\n\r\n",
            b"cas bad 0 0 0 blah\r\n\r\n",
        ] {
            assert_eq!(all(l)[0], BAD);
            // ... and the data line is then parsed as a command.
            assert_eq!(all(l), vec![BAD, E]);
        }
        // cas.t "cas empty": too few tokens, then the data is a bogus command.
        assert_eq!(all(b"cas foo 0 0 6 \r\nbarva2\r\n"), vec![E, E]);
    }

    #[test]
    fn a_set_token_count() {
        assert_eq!(one(b"set k 0 0\r\n"), E);
        assert_eq!(all(b"set k 0 0 1 noreply extra\r\nx\r\n"), vec![E, E]);
        // A 7th token that is not "noreply" is ignored.
        assert_eq!(
            one(b"set k 0 0 1 junk\r\nx\r\n"),
            req(store(StoreMode::Set, "k", 0, 0, "x", 0))
        );
    }

    #[test]
    fn a_set_bad_length_issue_70() {
        assert_eq!(one(b"set issue70 0 0 -1\r\n"), BAD);
        // 4294967295 keeps its low 32 bits: -1.
        assert_eq!(one(b"set issue70 0 0 4294967295\r\n"), BAD);
        // INT_MAX - 2 < 2147483647: rejected, the data is left for the next line.
        let mut p = AsciiParser::new(MAX);
        let mut buf = BytesMut::from(&b"set issue70 0 0 2147483647\r\nscoobyscoobydoo"[..]);
        assert_eq!(p.parse(&mut buf), BAD);
        assert_eq!(p.parse(&mut buf), Parsed::Incomplete);
        assert_eq!(&buf[..], b"scoobyscoobydoo");
    }

    #[test]
    fn a_set_32bit_truncation_like_memcached() {
        // 4294967301 = 2^32 + 5 → length 5.
        assert_eq!(
            one(b"set k 0 0 4294967301\r\nhello\r\n"),
            req(store(StoreMode::Set, "k", 0, 0, "hello", 0))
        );
        // flags 2^32 → 0; exptime 2^32 + 7 → 7.
        assert_eq!(
            one(b"set k 4294967296 4294967303 1\r\nx\r\n"),
            req(store(StoreMode::Set, "k", 0, 7, "x", 0))
        );
        // X-3 flags up to 2^32-1 and 2^31 (flags.t).
        assert_eq!(
            one(b"set k 2147483648 0 1\r\nx\r\n"),
            req(store(StoreMode::Set, "k", 2147483648, 0, "x", 0))
        );
        assert_eq!(
            one(b"set k 4294967295 -1 1\r\nx\r\n"),
            req(store(StoreMode::Set, "k", u32::MAX, -1, "x", 0))
        );
    }

    #[test]
    fn a_set_bad_numbers() {
        assert_eq!(all(b"set k -1 0 1\r\nx\r\n"), vec![BAD, E]);
        assert_eq!(all(b"set k 1x 0 1\r\nx\r\n"), vec![BAD, E]);
        assert_eq!(all(b"set k 0 x 1\r\nx\r\n"), vec![BAD, E]);
        assert_eq!(all(b"set k 0 0 1x\r\nx\r\n"), vec![BAD, E]);
        // beyond i64: ERANGE
        assert_eq!(
            all(b"set k 0 99999999999999999999 1\r\nx\r\n"),
            vec![BAD, E]
        );
    }

    #[test]
    fn a_set_numbers_with_c_whitespace() {
        // strtol skips leading whitespace and stops at trailing whitespace.
        assert_eq!(
            one(b"set k +1 \t2 3\t\r\nabc\r\n"),
            req(store(StoreMode::Set, "k", 1, 2, "abc", 0))
        );
        // "\r\r\n": one \r is stripped, the other ends the number token.
        assert_eq!(
            one(b"set k 0 0 3\r\r\nabc\r\n"),
            req(store(StoreMode::Set, "k", 0, 0, "abc", 0))
        );
    }

    #[test]
    fn x1_storage_key_too_long() {
        let k = "a".repeat(251);
        let line = format!("set {k} 0 0 1\r\nx\r\n");
        // The data line is then parsed as a command (A-set).
        assert_eq!(all(line.as_bytes()), vec![BAD, E]);
        let k = "a".repeat(250);
        let line = format!("set {k} 0 0 1\r\nx\r\n");
        assert_eq!(
            one(line.as_bytes()),
            req(store(StoreMode::Set, &k, 0, 0, "x", 0))
        );
    }

    #[test]
    fn x9_storage_noreply() {
        assert_eq!(
            one(b"set k 0 0 1 noreply\r\nx\r\n"),
            req_nr(store(StoreMode::Set, "k", 0, 0, "x", 0))
        );
        // Errors of a noreply command are silent.
        let k = "a".repeat(251);
        assert_eq!(
            all(format!("set {k} 0 0 1 noreply\r\nx\r\n").as_bytes()),
            vec![Parsed::Silent, E]
        );
        assert_eq!(all(b"set k 0 0 -1 noreply\r\n"), vec![Parsed::Silent]);
        // "noreply" in the bytes position: set_noreply_maybe fires, the length fails.
        assert_eq!(all(b"set k 0 0 noreply\r\n"), vec![Parsed::Silent]);
        // Token-count errors are answered even with noreply (WANT_TOKENS runs first).
        assert_eq!(all(b"set k 0 noreply\r\n"), vec![E]);
    }

    #[test]
    fn x5_too_large_is_swallowed() {
        let mut p = AsciiParser::new(10);
        let mut buf = BytesMut::from(&b"set k 0 0 11\r\n01234"[..]);
        assert_eq!(
            p.parse(&mut buf),
            req(Command::TooLarge {
                mode: StoreMode::Set,
                key: b("k")
            })
        );
        assert_eq!(p.parse(&mut buf), Parsed::Incomplete);
        assert!(buf.is_empty(), "swallowed bytes are dropped, not buffered");
        buf.put_slice(b"567890\r\nget k\r\n");
        assert_eq!(p.parse(&mut buf), Parsed::Silent);
        assert_eq!(p.parse(&mut buf), req(get(&["k"], false, None)));
        // noreply is carried so the executor suppresses the SERVER_ERROR.
        let mut buf = BytesMut::from(&b"cas k 0 0 11 5 noreply\r\n01234567890\r\n"[..]);
        assert_eq!(
            p.parse(&mut buf),
            req_nr(Command::TooLarge {
                mode: StoreMode::Cas,
                key: b("k")
            })
        );
        assert_eq!(p.parse(&mut buf), Parsed::Silent);
        assert_eq!(p.parse(&mut buf), Parsed::Incomplete);
        // Exactly the limit is not too large.
        let mut buf = BytesMut::from(&b"set k 0 0 10\r\n0123456789\r\n"[..]);
        assert_eq!(
            p.parse(&mut buf),
            req(store(StoreMode::Set, "k", 0, 0, "0123456789", 0))
        );
    }

    #[test]
    fn data_block_waits_without_rescanning() {
        let mut p = AsciiParser::new(MAX);
        let mut buf = BytesMut::from(&b"set k 0 0 5\r\nab"[..]);
        assert_eq!(p.parse(&mut buf), Parsed::Incomplete);
        assert_eq!(p.pending_len(), Some(13 + 5 + 2));
        assert_eq!(buf.len(), 15, "incomplete leaves the buffer untouched");
        buf.put_slice(b"cde\r");
        assert_eq!(p.parse(&mut buf), Parsed::Incomplete);
        buf.put_slice(b"\n");
        assert_eq!(
            p.parse(&mut buf),
            req(store(StoreMode::Set, "k", 0, 0, "abcde", 0))
        );
        assert_eq!(p.pending_len(), None);
        assert!(buf.is_empty());
    }

    #[test]
    fn pipelined_getset_t() {
        let r = all(
            b"set foo 0 0 6\r\nfooval\r\ndelete foo\r\nset foo 0 0 6\r\nfooval\r\ndelete foo\r\n",
        );
        let s = req(store(StoreMode::Set, "foo", 0, 0, "fooval", 0));
        let d = req(Command::Delete { key: b("foo") });
        assert_eq!(r, vec![s.clone(), d.clone(), s, d]);
    }

    // ---- A-get family ------------------------------------------------------

    #[test]
    fn a_get_gets() {
        assert_eq!(one(b"get foo\r\n"), req(get(&["foo"], false, None)));
        assert_eq!(
            one(b"gets a b  c \r\n"),
            req(get(&["a", "b", "c"], true, None))
        );
        assert_eq!(one(b"bget a\r\n"), req(get(&["a"], false, None)));
        // get has no noreply: it is a key.
        assert_eq!(
            one(b"get a noreply\r\n"),
            req(get(&["a", "noreply"], false, None))
        );
        assert_eq!(one(b"get\r\n"), E);
        assert_eq!(one(b"get   \r\n"), E);
        assert_eq!(one(b"gets\r\n"), E);
        assert_eq!(one(b"bget\r\n"), E);
        assert_eq!(one(b"getx a\r\n"), E);
    }

    #[test]
    fn a_get_many_keys_past_token_limit() {
        let keys: Vec<String> = (0..100).map(|i| format!("key{i}")).collect();
        let line = format!("get {}\r\n", keys.join(" "));
        let ks: Vec<&str> = keys.iter().map(|s| s.as_str()).collect();
        assert_eq!(one(line.as_bytes()), req(get(&ks, false, None)));
        // Exactly 22 and 23 keys around the tokenizer boundary, with odd spacing.
        for n in [21, 22, 23, 24] {
            let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
            let line = format!("gets  {}  \r\n", keys.join("   "));
            let ks: Vec<&str> = keys.iter().map(|s| s.as_str()).collect();
            assert_eq!(one(line.as_bytes()), req(get(&ks, true, None)));
        }
    }

    #[test]
    fn x1_get_key_too_long_issue_41() {
        let k = "a".repeat(251);
        assert_eq!(one(format!("get a {k}\r\n").as_bytes()), BAD);
        // ... even far past the 23-token limit.
        let many = "k ".repeat(40);
        assert_eq!(one(format!("get {many}{k}\r\n").as_bytes()), BAD);
    }

    #[test]
    fn a_gat_gats() {
        assert_eq!(
            one(b"gat 10 foo1\r\n"),
            req(get(&["foo1"], false, Some(10)))
        );
        assert_eq!(
            one(b"gats -1 a b\r\n"),
            req(get(&["a", "b"], true, Some(-1)))
        );
        // No keys: memcached answers just END.
        assert_eq!(one(b"gat 10\r\n"), req(get(&[], false, Some(10))));
        assert_eq!(one(b"gat x foo\r\n"), EXP);
        assert_eq!(one(b"gat\r\n"), E);
        let k = "a".repeat(251);
        assert_eq!(one(format!("gat 1 {k}\r\n").as_bytes()), BAD);
    }

    #[test]
    fn x6_large_multiget_allowed() {
        let mut p = AsciiParser::new(MAX);
        let mut buf = BytesMut::new();
        buf.put_slice(b"  get ");
        for _ in 0..2000 {
            buf.put_slice(b"foobarbaz ");
            assert_eq!(p.parse(&mut buf), Parsed::Incomplete);
        }
        buf.put_slice(b"\r\n");
        match p.parse(&mut buf) {
            Parsed::Request(Request {
                cmd: Command::Get { keys, .. },
                ..
            }) => {
                assert_eq!(keys.len(), 2000);
                assert!(keys.iter().all(|k| &k[..] == b"foobarbaz"));
            }
            r => panic!("{r:?}"),
        }
    }

    // ---- X-6 / X-7 ---------------------------------------------------------

    #[test]
    fn x6_long_partial_line_closes() {
        let mut p = AsciiParser::new(MAX);
        let mut buf = BytesMut::from(&b"set "[..]);
        buf.put_slice(&[b'a'; 2044]);
        assert_eq!(
            p.parse(&mut buf),
            Parsed::Incomplete,
            "2048 bytes is still fine"
        );
        buf.put_slice(b"a");
        assert_eq!(p.parse(&mut buf), Parsed::Close);
        // More than 100 leading spaces before "get " also closes.
        let mut p = AsciiParser::new(MAX);
        let mut buf = BytesMut::from(&[b' '; 101][..]);
        buf.put_slice(b"get ");
        buf.put_slice(&[b'k'; 2000]);
        assert_eq!(p.parse(&mut buf), Parsed::Close);
        // "gets " is allowed, "get" without the space is not.
        let mut buf = BytesMut::from(&b"gets "[..]);
        buf.put_slice(&[b'k'; 2100]);
        assert_eq!(AsciiParser::new(MAX).parse(&mut buf), Parsed::Incomplete);
        let mut buf = BytesMut::from(&b"getx"[..]);
        buf.put_slice(&[b'k'; 2100]);
        assert_eq!(AsciiParser::new(MAX).parse(&mut buf), Parsed::Close);
    }

    #[test]
    fn x6_long_complete_line_is_parsed() {
        // A long line that arrives with its '\n' is processed normally.
        let line = format!("bogus {}\r\n", "x".repeat(5000));
        assert_eq!(one(line.as_bytes()), E);
    }

    #[test]
    fn x7_http_closes_malicious_commands_t() {
        assert_eq!(one(b"GET / HTTP/1.0\r\n"), Parsed::Close);
        assert_eq!(
            one(b"PUT /asdf/asd/fasdfasdf/sadf HTTP/1.1\r\n"),
            Parsed::Close
        );
        assert_eq!(one(b"DELETE HTTP/1.1\r\n"), Parsed::Close);
        assert_eq!(one(b"HTTP/1.1\r\n"), Parsed::Close);
        // Only the last (parsed) token counts.
        assert_eq!(one(b"GET HTTP/1.1 x\r\n"), E);
        // Lower-case get is a multiget of "/" and "HTTP/1.0".
        assert_eq!(
            one(b"get / HTTP/1.0\r\n"),
            req(get(&["/", "HTTP/1.0"], false, None))
        );
        // Names starting like known commands answer ERROR, no hang-up.
        assert_eq!(one(b"sget / HTTP/1.0\r\n"), E);
        // One-character command: ERROR before the HTTP check.
        assert_eq!(one(b"G HTTP/1.0\r\n"), E);
    }

    #[test]
    fn a_unknown_bogus_commands_t() {
        assert_eq!(one(b"boguscommand slkdsldkfjsd\r\n"), E);
        assert_eq!(
            one(b"SET k 0 0 1\r\n"),
            E,
            "commands are case-sensitive (X-2)"
        );
        assert_eq!(one(b"mx foo v\r\n"), E, "unknown meta command");
        assert_eq!(one(b"slabs automove 1\r\n"), E);
        assert_eq!(one(b"lru_crawler HTTP/1.1\r\n"), E);
    }

    #[test]
    fn x2_empty_and_short_lines_answer_error() {
        assert_eq!(all(b"\r\n\n \r\nx\r\n\r\r\n"), vec![E, E, E, E, E]);
    }

    #[test]
    fn x2_nul_truncates_line() {
        assert_eq!(one(b"get foo\0bar\r\n"), req(get(&["foo"], false, None)));
        assert_eq!(one(b"\0get foo\r\n"), E);
    }

    // ---- A-delete ----------------------------------------------------------

    #[test]
    fn a_delete_issue_108_and_3() {
        assert_eq!(one(b"delete k\r\n"), req(Command::Delete { key: b("k") }));
        assert_eq!(
            one(b"delete k noreply\r\n"),
            req_nr(Command::Delete { key: b("k") })
        );
        assert_eq!(one(b"delete k 0\r\n"), req(Command::Delete { key: b("k") }));
        assert_eq!(
            one(b"delete k 0 noreply\r\n"),
            req_nr(Command::Delete { key: b("k") })
        );
        assert_eq!(
            one(b"delete k 10\r\n"),
            Parsed::Error(reply::CLIENT_ERROR_DELETE_USAGE)
        );
        assert_eq!(one(b"delete k 10 noreply\r\n"), Parsed::Silent);
        assert_eq!(
            one(b"delete k 0 x\r\n"),
            Parsed::Error(reply::CLIENT_ERROR_DELETE_USAGE)
        );
        assert_eq!(one(b"delete k 0 0 noreply\r\n"), E);
        assert_eq!(one(b"delete\r\n"), E);
        // "delete noreply" deletes the key "noreply" (ntokens == 3).
        assert_eq!(
            one(b"delete noreply\r\n"),
            req(Command::Delete { key: b("noreply") })
        );
        let k = "a".repeat(251);
        assert_eq!(one(format!("delete {k}\r\n").as_bytes()), BAD);
        assert_eq!(
            one(format!("delete {k} noreply\r\n").as_bytes()),
            Parsed::Silent
        );
    }

    // ---- A-incr / A-decr ---------------------------------------------------

    #[test]
    fn a_incr_decr() {
        assert_eq!(
            one(b"incr num 1\r\n"),
            req(Command::Arith {
                key: b("num"),
                incr: true,
                delta: 1
            })
        );
        assert_eq!(
            one(b"decr num 18446744073709551615 noreply\r\n"),
            req_nr(Command::Arith {
                key: b("num"),
                incr: false,
                delta: u64::MAX
            })
        );
        assert_eq!(one(b"incr num -1\r\n"), DELTA);
        assert_eq!(one(b"incr num 18446744073709551616\r\n"), DELTA);
        assert_eq!(one(b"incr num x\r\n"), DELTA);
        assert_eq!(one(b"incr num x noreply\r\n"), Parsed::Silent);
        assert_eq!(one(b"incr num noreply\r\n"), Parsed::Silent);
        assert_eq!(one(b"incr num\r\n"), E);
        assert_eq!(one(b"incr num 1 2 3\r\n"), E);
        // A 5th token that is not noreply is ignored.
        assert_eq!(
            one(b"incr num 1 x\r\n"),
            req(Command::Arith {
                key: b("num"),
                incr: true,
                delta: 1
            })
        );
        let k = "a".repeat(251);
        assert_eq!(one(format!("incr {k} 1\r\n").as_bytes()), BAD);
    }

    #[test]
    fn safe_strtoull_matches_glibc() {
        assert_eq!(safe_strtoull(b"0"), Some(0));
        assert_eq!(safe_strtoull(b"+7"), Some(7));
        assert_eq!(safe_strtoull(b"-0"), Some(0));
        assert_eq!(safe_strtoull(b"-1"), None);
        // strtoull negates modulo 2^64; a small result passes the sign check.
        assert_eq!(safe_strtoull(b"-18446744073709551615"), Some(1));
        assert_eq!(
            safe_strtoull(b"-9223372036854775809"),
            Some(9223372036854775807)
        );
        assert_eq!(safe_strtoull(b"18446744073709551616"), None);
        assert_eq!(safe_strtoull(b""), None);
        assert_eq!(safe_strtoull(b"+"), None);
        assert_eq!(safe_strtoull(b" \t5\rjunk"), Some(5));
        assert_eq!(safe_strtoull(b"5junk"), None);
        assert_eq!(safe_strtoull(b"18446744073709551615\t-"), None);
        assert_eq!(safe_strtol(b"-2147483649"), Some(i32::MAX));
        assert_eq!(safe_strtol(b"-9223372036854775808"), Some(0));
        assert_eq!(safe_strtol(b"-9223372036854775809"), None);
        assert_eq!(safe_strtol(b"9223372036854775808"), None);
        assert_eq!(safe_strtoul(b"4294967297"), Some(1));
    }

    // ---- A-touch -----------------------------------------------------------

    #[test]
    fn a_touch() {
        assert_eq!(
            one(b"touch foo 10\r\n"),
            req(Command::Touch {
                key: b("foo"),
                exptime: 10
            })
        );
        assert_eq!(
            one(b"touch foo -1 noreply\r\n"),
            req_nr(Command::Touch {
                key: b("foo"),
                exptime: -1
            })
        );
        assert_eq!(one(b"touch foo x\r\n"), EXP);
        assert_eq!(one(b"touch foo x noreply\r\n"), Parsed::Silent);
        assert_eq!(one(b"touch foo\r\n"), E);
        let k = "a".repeat(251);
        assert_eq!(one(format!("touch {k} 1\r\n").as_bytes()), BAD);
    }

    // ---- A-flush -----------------------------------------------------------

    #[test]
    fn a_flush_all() {
        assert_eq!(one(b"flush_all\r\n"), req(Command::FlushAll { delay: 0 }));
        assert_eq!(one(b"flush_all 0\r\n"), req(Command::FlushAll { delay: 0 }));
        assert_eq!(
            one(b"flush_all 86400\r\n"),
            req(Command::FlushAll { delay: 86400 })
        );
        assert_eq!(
            one(b"flush_all noreply\r\n"),
            req_nr(Command::FlushAll { delay: 0 })
        );
        assert_eq!(
            one(b"flush_all 5 noreply\r\n"),
            req_nr(Command::FlushAll { delay: 5 })
        );
        assert_eq!(
            one(b"flush_all -5\r\n"),
            req(Command::FlushAll { delay: 0 }),
            "negative = now"
        );
        assert_eq!(one(b"flush_all invalid\r\n"), EXP);
        assert_eq!(one(b"flush_all invalid noreply\r\n"), Parsed::Silent);
        assert_eq!(one(b"flush_all noreply 5\r\n"), EXP);
        assert_eq!(
            one(b"flush_all 1 2\r\n"),
            req(Command::FlushAll { delay: 1 })
        );
        assert_eq!(one(b"flush_all 1 2 3\r\n"), E);
    }

    // ---- misc --------------------------------------------------------------

    #[test]
    fn a_version_quit_stats() {
        assert_eq!(one(b"version\r\n"), req(Command::Version));
        assert_eq!(one(b"version x\r\n"), req(Command::Version));
        assert_eq!(one(b"quit\r\n"), req(Command::Quit));
        assert_eq!(one(b"stats\r\n"), req(Command::Stats { args: vec![] }));
        assert_eq!(
            one(b"stats  settings\r\n"),
            req(Command::Stats {
                args: vec![b("settings")]
            })
        );
        assert_eq!(
            one(b"stats cachedump 1 2\r\n"),
            req(Command::Stats {
                args: vec![b("cachedump"), b("1"), b("2")]
            })
        );
    }

    #[test]
    fn a_verbosity_strtol_testing_t() {
        assert_eq!(
            one(b"verbosity 1\r\n"),
            req(Command::Verbosity { level: 1 })
        );
        assert_eq!(
            one(b"verbosity 0 noreply\r\n"),
            req_nr(Command::Verbosity { level: 0 })
        );
        assert_eq!(one(b"verbosity invalid\r\n"), BAD);
        assert_eq!(one(b"verbosity noreply\r\n"), Parsed::Silent);
        assert_eq!(one(b"verbosity\r\n"), E);
        assert_eq!(one(b"verbosity 1 2 3\r\n"), E);
    }

    #[test]
    fn a_memlimit() {
        assert_eq!(
            one(b"cache_memlimit 100\r\n"),
            req(Command::CacheMemlimit { megabytes: 100 })
        );
        assert_eq!(
            one(b"cache_memlimit 100 noreply\r\n"),
            req_nr(Command::CacheMemlimit { megabytes: 100 })
        );
        assert_eq!(one(b"cache_memlimit abc\r\n"), E);
        assert_eq!(one(b"cache_memlimit abc noreply\r\n"), Parsed::Silent);
        assert_eq!(one(b"cache_memlimit\r\n"), E);
    }

    #[test]
    fn a_shutdown() {
        assert_eq!(
            one(b"shutdown\r\n"),
            req(Command::Shutdown { graceful: false })
        );
        assert_eq!(
            one(b"shutdown graceful\r\n"),
            req(Command::Shutdown { graceful: true })
        );
        assert_eq!(
            one(b"shutdown foo\r\n"),
            Parsed::Error(reply::CLIENT_ERROR_INVALID_SHUTDOWN_MODE)
        );
        assert_eq!(
            one(b"shutdown graceful x\r\n"),
            Parsed::Error(reply::CLIENT_ERROR_INVALID_SHUTDOWN_MODE)
        );
        // Disabled: memcached answers "not enabled" before looking at the mode.
        let mut p = AsciiParser::new(MAX);
        p.set_shutdown_enabled(false);
        let mut buf = BytesMut::from(&b"shutdown foo\r\n"[..]);
        assert_eq!(
            p.parse(&mut buf),
            req(Command::Shutdown { graceful: false })
        );
    }

    #[test]
    fn twenty_four_token_limit_for_other_commands() {
        // 23 parsed tokens max: a 30-token delete is a token-count ERROR.
        let line = format!("delete k {}\r\n", "0 ".repeat(28));
        assert_eq!(one(line.as_bytes()), E);
        // Unknown command: the 23rd token is the "last" one for X-7.
        let mut toks: Vec<&str> = vec!["x"; 22];
        toks.insert(0, "bogus");
        toks[22] = "HTTP/1.1";
        toks.push("y");
        assert_eq!(
            one(format!("{}\r\n", toks.join(" ")).as_bytes()),
            Parsed::Close
        );
    }

    #[test]
    fn keys_are_zero_copy_slices_of_the_frame() {
        let mut buf = BytesMut::from(&b"set key 0 0 3\r\nabc\r\n"[..]);
        let base = buf.as_ptr() as usize;
        match AsciiParser::new(MAX).parse(&mut buf) {
            Parsed::Request(Request {
                cmd: Command::Store { key, data, .. },
                ..
            }) => {
                assert_eq!(key.as_ptr() as usize, base + 4);
                assert_eq!(data.as_ptr() as usize, base + 15);
            }
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn split_anywhere_gives_same_results() {
        let input: &[u8] =
            b"set a 0 0 3\r\nabc\r\nget a b\r\nbogus\r\nset b 0 0 2 noreply\r\nxyz\r\n\
                             incr a 5\r\ndelete a 0\r\ngat 1 a\r\nflush_all 10\r\nversion\r\n";
        let whole = all(input);
        for cut in 0..=input.len() {
            let mut p = AsciiParser::new(MAX);
            let mut buf = BytesMut::from(&input[..cut]);
            let mut out = Vec::new();
            loop {
                match p.parse(&mut buf) {
                    Parsed::Incomplete => break,
                    r => out.push(r),
                }
            }
            buf.put_slice(&input[cut..]);
            loop {
                match p.parse(&mut buf) {
                    Parsed::Incomplete => break,
                    r => out.push(r),
                }
            }
            assert_eq!(out, whole, "cut at {cut}");
        }
    }
}
