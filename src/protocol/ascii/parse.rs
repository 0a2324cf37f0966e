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
//! * hang-up rules.

use bytes::{Buf, BytesMut};

use super::line::{consume_err, consume_fail, key_of, request, take_range, Tokens};
use crate::protocol::command::{Command, StoreMode};
use crate::protocol::meta::parse::{self as meta, MetaPending};
use crate::protocol::reply;
use crate::protocol::text::{safe_strtol, safe_strtoul, safe_strtoull, Parsed};
use crate::protocol::KEY_MAX_LENGTH;
/// a partial line longer than this that is not a multiget closes the connection.
const MAX_PARTIAL_LINE: usize = 2048;

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
                    Parsed::Close
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
                b"config" => config::config_get(buf, frame_len, t),
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
                // Any arguments are ignored, a trailing noreply honoured
                // (memcached's process_refresh_certs_command).
                b"refresh_certs" => {
                    let noreply = t.noreply(buf);
                    buf.advance(frame_len);
                    request(Command::RefreshCerts, noreply)
                }
                // Operator commands memcached knows but shoal does not offer.
                b"lru_crawler" | b"watch" | b"lru" | b"extstore" => err(buf),
                _ => {
                    // the last parsed token starting "HTTP/" means a web
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
            // answer now, swallow the data block (and its \r\n) unbuffered.
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

/// a partial line over 2048 bytes may keep growing only if (after at
/// most 100 leading spaces) it starts with `get ` or `gets `.
fn partial_line_may_grow(buf: &[u8]) -> bool {
    let spaces = buf.iter().take_while(|&&b| b == b' ').count();
    if spaces > 100 {
        return false;
    }
    let rest = &buf[spaces..];
    rest.starts_with(b"get ") || rest.starts_with(b"gets ")
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
/// key is too long, consuming its line.
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

mod config;
#[cfg(test)]
mod tests;
