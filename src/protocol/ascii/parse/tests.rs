//! The classic parser, rule by rule (rule IDs from protocol.md).

use super::*;
use crate::protocol::command::Request;
use bytes::{BufMut, Bytes};

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

fn store(mode: StoreMode, key: &str, flags: u32, exptime: i64, data: &str, cas: u64) -> Command {
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
    let r =
        all(b"set foo 0 0 6\r\nfooval\r\ndelete foo\r\nset foo 0 0 6\r\nfooval\r\ndelete foo\r\n");
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
    let input: &[u8] = b"set a 0 0 3\r\nabc\r\nget a b\r\nbogus\r\nset b 0 0 2 noreply\r\nxyz\r\n\
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
