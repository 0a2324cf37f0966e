//! Unit tests for binary execution: every opcode against a real shard,
//! checked against memcached 1.6.18 behaviour (protocol.md §1.7, B-*).

use super::*;
use crate::protocol::binary::{opcode as op, BinParsed, BinaryParser, Header, HEADER_LEN};
use bytes::{BufMut, Bytes};

const MAX: usize = 1024 * 1024;
const NOW: u32 = 1000;

fn shard_with(disable_cas: bool) -> Shard {
    Shard::standalone(64 << 20, MAX, disable_cas)
}

fn shard() -> Shard {
    shard_with(false)
}

/// A request as the parser produces it from a client frame.
fn req(opcode: u8, extras: &[u8], key: &[u8], value: &[u8], opaque: u32, cas: u64) -> BinRequest {
    let mut b = BytesMut::new();
    Header {
        magic: 0x80,
        opcode,
        keylen: key.len() as u16,
        extlen: extras.len() as u8,
        datatype: 0,
        status: 0,
        bodylen: (extras.len() + key.len() + value.len()) as u32,
        opaque,
        cas,
    }
    .encode(&mut b);
    b.put_slice(extras);
    b.put_slice(key);
    b.put_slice(value);
    match BinaryParser::new(MAX).parse(&mut b) {
        BinParsed::Request(r) => r,
        other => panic!("not a request: {other:?}"),
    }
}

fn set_extras(flags: u32, exptime: u32) -> Vec<u8> {
    [flags.to_be_bytes(), exptime.to_be_bytes()].concat()
}

fn arith_extras(delta: u64, initial: u64, exptime: u32) -> Vec<u8> {
    [
        &delta.to_be_bytes()[..],
        &initial.to_be_bytes(),
        &exptime.to_be_bytes(),
    ]
    .concat()
}

/// One decoded response.
#[derive(Debug)]
struct Resp {
    h: Header,
    extras: Bytes,
    key: Bytes,
    value: Bytes,
}

fn responses(out: &BytesMut) -> Vec<Resp> {
    let mut b = Bytes::copy_from_slice(out);
    let mut v = Vec::new();
    while !b.is_empty() {
        let h = Header::decode(&b).expect("whole header");
        assert_eq!(h.magic, 0x81);
        let body = b.slice(HEADER_LEN..HEADER_LEN + h.bodylen as usize);
        let (e, k) = (h.extlen as usize, h.keylen as usize);
        v.push(Resp {
            h,
            extras: body.slice(..e),
            key: body.slice(e..e + k),
            value: body.slice(e + k..),
        });
        b = b.slice(HEADER_LEN + h.bodylen as usize..);
    }
    v
}

/// Runs `r` and returns its single response (panics on none or more).
fn run1(s: &mut Shard, r: &BinRequest) -> Resp {
    let mut out = BytesMut::new();
    execute(s, r, NOW, &mut out);
    let mut v = responses(&out);
    assert_eq!(v.len(), 1, "{v:?}");
    v.pop().unwrap()
}

fn run_silent(s: &mut Shard, r: &BinRequest) {
    let mut out = BytesMut::new();
    execute(s, r, NOW, &mut out);
    assert!(
        out.is_empty(),
        "expected no response: {:?}",
        responses(&out)
    );
}

fn assert_error(r: &Resp, status: Status, opcode: u8, opaque: u32) {
    assert_eq!(
        (r.h.status, r.h.opcode, r.h.opaque, r.h.cas),
        (status.code(), opcode, opaque, 0)
    );
    assert_eq!((r.extras.len(), r.key.len()), (0, 0));
    assert_eq!(&r.value[..], status.message());
}

fn set(s: &mut Shard, key: &[u8], value: &[u8], flags: u32) -> u64 {
    let r = run1(s, &req(op::SET, &set_extras(flags, 0), key, value, 0, 0));
    assert_eq!(r.h.status, 0);
    r.h.cas
}

#[test]
fn get_variants_hit_and_miss_b5() {
    let mut s = shard();
    let cas = set(&mut s, b"k", b"hello", 19);
    for (code, with_key) in [
        (op::GET, false),
        (op::GETQ, false),
        (op::GETK, true),
        (op::GETKQ, true),
    ] {
        let r = run1(&mut s, &req(code, b"", b"k", b"", 7, 0));
        assert_eq!(
            (r.h.status, r.h.opcode, r.h.opaque, r.h.cas),
            (0, code, 7, cas)
        );
        assert_eq!(&r.extras[..], &19u32.to_be_bytes());
        assert_eq!(&r.key[..], if with_key { &b"k"[..] } else { b"" });
        assert_eq!(&r.value[..], b"hello");
    }
    assert_error(
        &run1(&mut s, &req(op::GET, b"", b"nx", b"", 8, 0)),
        Status::KeyNotFound,
        op::GET,
        8,
    );
    let r = run1(&mut s, &req(op::GETK, b"", b"nx", b"", 9, 0));
    assert_eq!((r.h.status, &r.key[..], r.value.len()), (1, &b"nx"[..], 0));
    run_silent(&mut s, &req(op::GETQ, b"", b"nx", b"", 0, 0));
    run_silent(&mut s, &req(op::GETKQ, b"", b"nx", b"", 0, 0));
    assert_eq!(s.stats.get_hits.get(), 4);
    assert_eq!(s.stats.get_misses.get(), 4);
}

#[test]
fn gat_and_touch() {
    let mut s = shard();
    let cas = set(&mut s, b"k", b"v", 3);
    let exp = 100u32.to_be_bytes();
    for code in [op::GAT, op::GATQ, op::GATK, op::GATKQ] {
        let r = run1(&mut s, &req(code, &exp, b"k", b"", 1, 0));
        assert_eq!((r.h.status, r.h.cas, &r.value[..]), (0, cas, &b"v"[..]));
    }
    assert_eq!(s.store.peek(b"k", NOW).unwrap().exptime, NOW + 100);
    let r = run1(
        &mut s,
        &req(op::TOUCH, &200u32.to_be_bytes(), b"k", b"", 2, 0),
    );
    assert_eq!(
        (
            r.h.status,
            r.h.cas,
            &r.extras[..],
            r.key.len(),
            r.value.len()
        ),
        (0, cas, &3u32.to_be_bytes()[..], 0, 0)
    );
    assert_eq!(s.store.peek(b"k", NOW).unwrap().exptime, NOW + 200);
    assert_error(
        &run1(&mut s, &req(op::TOUCH, &exp, b"nx", b"", 3, 0)),
        Status::KeyNotFound,
        op::TOUCH,
        3,
    );
    assert_error(
        &run1(&mut s, &req(op::GAT, &exp, b"nx", b"", 4, 0)),
        Status::KeyNotFound,
        op::GAT,
        4,
    );
    assert_eq!(
        run1(&mut s, &req(op::GATK, &exp, b"nx", b"", 5, 0))
            .h
            .status,
        1
    );
    run_silent(&mut s, &req(op::GATQ, &exp, b"nx", b"", 6, 0));
    run_silent(&mut s, &req(op::GATKQ, &exp, b"nx", b"", 6, 0));
    assert_eq!(
        (s.stats.touch_hits.get(), s.stats.touch_misses.get()),
        (5, 5)
    );
}

#[test]
fn add_replace_append_prepend_statuses() {
    let mut s = shard();
    let e = set_extras(0, 0);
    assert_eq!(
        run1(&mut s, &req(op::ADD, &e, b"a", b"1", 1, 0)).h.status,
        0
    );
    assert_error(
        &run1(&mut s, &req(op::ADD, &e, b"a", b"2", 2, 0)),
        Status::KeyExists,
        op::ADD,
        2,
    );
    assert_error(
        &run1(&mut s, &req(op::ADDQ, &e, b"a", b"2", 3, 0)),
        Status::KeyExists,
        op::ADDQ,
        3,
    );
    assert_error(
        &run1(&mut s, &req(op::REPLACE, &e, b"b", b"1", 4, 0)),
        Status::KeyNotFound,
        op::REPLACE,
        4,
    );
    assert_error(
        &run1(&mut s, &req(op::APPEND, b"", b"b", b"1", 5, 0)),
        Status::NotStored,
        op::APPEND,
        5,
    );
    assert_error(
        &run1(&mut s, &req(op::PREPENDQ, b"", b"b", b"1", 6, 0)),
        Status::NotStored,
        op::PREPENDQ,
        6,
    );
    // A CAS append on a missing key is NOT_STORED too (memcached).
    assert_error(
        &run1(&mut s, &req(op::APPEND, b"", b"b", b"1", 7, 5)),
        Status::NotStored,
        op::APPEND,
        7,
    );
    run_silent(&mut s, &req(op::APPENDQ, b"", b"a", b"-app", 8, 0));
    run_silent(&mut s, &req(op::PREPENDQ, b"", b"a", b"pre-", 9, 0));
    run_silent(
        &mut s,
        &req(op::REPLACEQ, &set_extras(4, 0), b"a", b"new", 10, 0),
    );
    let it = s.store.peek(b"a", NOW).unwrap();
    assert_eq!((it.value, it.flags), (&b"new"[..], 4));
    let r = run1(&mut s, &req(op::APPEND, b"", b"a", b"!", 11, 0));
    assert_eq!(
        r.h.cas,
        s.store.peek(b"a", NOW).unwrap().cas,
        "success carries the new CAS"
    );
    assert_eq!(s.store.peek(b"a", NOW).unwrap().value, b"new!");
}

#[test]
fn header_cas_on_stores_b_set() {
    let mut s = shard();
    let e = set_extras(0, 0);
    // CAS on a missing key: not found (binary.t "CAS").
    assert_error(
        &run1(&mut s, &req(op::SET, &e, b"x", b"bad", 1, 0x7ffffff)),
        Status::KeyNotFound,
        op::SET,
        1,
    );
    let c1 = run1(&mut s, &req(op::ADD, &e, b"x", b"orig", 2, 0)).h.cas;
    assert_error(
        &run1(&mut s, &req(op::SET, &e, b"x", b"broken", 3, c1 + 1)),
        Status::KeyExists,
        op::SET,
        3,
    );
    let c2 = run1(&mut s, &req(op::SET, &e, b"x", b"new", 4, c1)).h.cas;
    assert_ne!(c2, c1);
    assert_error(
        &run1(&mut s, &req(op::SET, &e, b"x", b"replay", 5, c1)),
        Status::KeyExists,
        op::SET,
        5,
    );
    // Add and Replace with a CAS are CAS stores (memcached NREAD_CAS).
    let c3 = run1(&mut s, &req(op::ADD, &e, b"x", b"add-cas", 6, c2))
        .h
        .cas;
    assert_eq!(s.store.peek(b"x", NOW).unwrap().value, b"add-cas");
    assert_error(
        &run1(&mut s, &req(op::REPLACEQ, &e, b"x", b"r", 7, c3 + 9)),
        Status::KeyExists,
        op::REPLACEQ,
        7,
    );
    assert_error(
        &run1(&mut s, &req(op::APPEND, b"", b"x", b"r", 8, c3 + 9)),
        Status::KeyExists,
        op::APPEND,
        8,
    );
    run_silent(&mut s, &req(op::SETQ, &e, b"x", b"quiet", 9, c3));
    assert_eq!(
        (
            s.stats.cas_hits.get(),
            s.stats.cas_badval.get(),
            s.stats.cas_misses.get()
        ),
        (3, 3, 1)
    );
}

#[test]
fn too_large_answers_0x03_and_set_unlinks_the_old_value() {
    let mut s = shard();
    set(&mut s, b"k", b"small", 0);
    let mut p = BinaryParser::new(MAX);
    let mut b = BytesMut::new();
    let big = vec![b'x'; MAX + 1];
    Header {
        magic: 0x80,
        opcode: op::SETQ,
        keylen: 1,
        extlen: 8,
        datatype: 0,
        status: 0,
        bodylen: (9 + big.len()) as u32,
        opaque: 5,
        cas: 0,
    }
    .encode(&mut b);
    b.put_slice(&set_extras(0, 0));
    b.put_slice(b"k");
    b.put_slice(&big);
    let BinParsed::Request(r) = p.parse(&mut b) else {
        panic!()
    };
    assert_eq!(
        r.cmd,
        BinCommand::TooLarge {
            mode: StoreMode::Set
        }
    );
    assert_error(&run1(&mut s, &r), Status::TooLarge, op::SETQ, 5);
    assert!(s.store.peek(b"k", NOW).is_none(), "the stale value is gone");

    // Too large for the shard although small enough to buffer: same answer.
    let c = set(&mut s, b"k", b"small", 0);
    let v = vec![b'y'; MAX - 10];
    assert_error(
        &run1(&mut s, &req(op::SET, &set_extras(0, 0), b"k", &v, 6, c)),
        Status::TooLarge,
        op::SET,
        6,
    );
    assert!(s.store.peek(b"k", NOW).is_none(), "a CAS set unlinks too");
    set(&mut s, b"k", b"small", 0);
    assert_error(
        &run1(&mut s, &req(op::APPEND, b"", b"k", &v, 7, 0)),
        Status::TooLarge,
        op::APPEND,
        7,
    );
    assert_error(
        &run1(&mut s, &req(op::ADD, &set_extras(0, 0), b"k", &v, 8, 0)),
        Status::TooLarge,
        op::ADD,
        8,
    );
    assert_eq!(
        s.store.peek(b"k", NOW).unwrap().value,
        b"small",
        "append/add keep it"
    );
}

#[test]
fn delete_with_and_without_cas() {
    let mut s = shard();
    let c = set(&mut s, b"d", b"v", 0);
    assert_error(
        &run1(&mut s, &req(op::DELETE, b"", b"d", b"", 1, c + 1)),
        Status::KeyExists,
        op::DELETE,
        1,
    );
    let r = run1(&mut s, &req(op::DELETE, b"", b"d", b"", 2, c));
    assert_eq!((r.h.status, r.h.cas, r.h.bodylen), (0, 0, 0));
    assert_error(
        &run1(&mut s, &req(op::DELETE, b"", b"d", b"", 3, 0)),
        Status::KeyNotFound,
        op::DELETE,
        3,
    );
    assert_error(
        &run1(&mut s, &req(op::DELETEQ, b"", b"d", b"", 4, 7)),
        Status::KeyNotFound,
        op::DELETEQ,
        4,
    );
    set(&mut s, b"d", b"v", 0);
    run_silent(&mut s, &req(op::DELETEQ, b"", b"d", b"", 5, 0));
}

fn counter(r: &Resp) -> u64 {
    assert_eq!((r.h.status, r.h.extlen, r.h.bodylen), (0, 0, 8), "{r:?}");
    u64::from_be_bytes(r.value[..].try_into().unwrap())
}

#[test]
fn incr_decr_create_wrap_floor_and_errors() {
    let mut s = shard();
    let r = run1(
        &mut s,
        &req(op::INCREMENT, &arith_extras(1, 0, 0), b"x", b"", 1, 0),
    );
    assert_eq!(counter(&r), 0, "created with the initial value");
    assert_eq!(r.h.cas, s.store.peek(b"x", NOW).unwrap().cas);
    assert_eq!(
        counter(&run1(
            &mut s,
            &req(op::INCREMENT, &arith_extras(1, 0, 0), b"x", b"", 2, 0)
        )),
        1
    );
    assert_eq!(
        counter(&run1(
            &mut s,
            &req(op::INCREMENT, &arith_extras(1 << 33, 0, 0), b"x", b"", 3, 0)
        )),
        (1 << 33) + 1
    );
    assert_eq!(
        counter(&run1(
            &mut s,
            &req(
                op::DECREMENT,
                &arith_extras(u64::MAX, 0, 0),
                b"x",
                b"",
                4,
                0
            )
        )),
        0
    );
    // issue 320: the created value is the decimal initial value.
    assert_eq!(
        counter(&run1(
            &mut s,
            &req(op::INCREMENT, &arith_extras(1, 1, 0), b"i320", b"", 5, 0)
        )),
        1
    );
    assert_eq!(s.store.peek(b"i320", NOW).unwrap().value, b"1");
    // 0xffffffff: no auto-create.
    let e = arith_extras(1, 5, NO_AUTO_CREATE);
    assert_error(
        &run1(&mut s, &req(op::DECREMENT, &e, b"nx", b"", 6, 0)),
        Status::KeyNotFound,
        op::DECREMENT,
        6,
    );
    assert_error(
        &run1(&mut s, &req(op::INCREMENTQ, &e, b"nx", b"", 7, 0)),
        Status::KeyNotFound,
        op::INCREMENTQ,
        7,
    );
    assert_eq!(s.stats.decr_misses.get() + s.stats.incr_misses.get(), 2);
    // Non-numeric and empty values.
    set(&mut s, b"t", b"text", 0);
    assert_error(
        &run1(
            &mut s,
            &req(op::INCREMENT, &arith_extras(1, 0, 0), b"t", b"", 8, 0),
        ),
        Status::DeltaBadValue,
        op::INCREMENT,
        8,
    );
    set(&mut s, b"e", b"", 0);
    assert_error(
        &run1(
            &mut s,
            &req(op::DECREMENT, &arith_extras(1, 0, 0), b"e", b"", 9, 1),
        ),
        Status::DeltaBadValue,
        op::DECREMENT,
        9,
    );
    // Header CAS.
    let c = set(&mut s, b"n", b"100", 0);
    assert_error(
        &run1(
            &mut s,
            &req(op::INCREMENT, &arith_extras(1, 0, 0), b"n", b"", 10, c + 1),
        ),
        Status::KeyExists,
        op::INCREMENT,
        10,
    );
    let r = run1(
        &mut s,
        &req(op::INCREMENT, &arith_extras(999, 0, 0), b"n", b"", 11, c),
    );
    assert_eq!(counter(&r), 1099);
    assert_ne!(r.h.cas, c, "bug220: incr returns the new CAS");
    assert_eq!(r.h.cas, s.store.peek(b"n", NOW).unwrap().cas);
    // Quiet success is silent, the value still changes.
    run_silent(
        &mut s,
        &req(op::DECREMENTQ, &arith_extras(99, 0, 0), b"n", b"", 12, 0),
    );
    run_silent(
        &mut s,
        &req(op::INCREMENTQ, &arith_extras(1, 42, 0), b"new", b"", 13, 0),
    );
    assert_eq!(s.store.peek(b"n", NOW).unwrap().value, b"1000");
    assert_eq!(s.store.peek(b"new", NOW).unwrap().value, b"42");
}

#[test]
fn disabled_cas_shows_zero_and_ignores_store_cas() {
    let mut s = shard_with(true);
    let r = run1(&mut s, &req(op::SET, &set_extras(0, 0), b"k", b"1", 1, 0));
    assert_eq!((r.h.status, r.h.cas), (0, 0));
    assert_eq!(
        run1(
            &mut s,
            &req(op::SET, &set_extras(0, 0), b"k", b"2", 2, 12345)
        )
        .h
        .status,
        0
    );
    assert_eq!(run1(&mut s, &req(op::GET, b"", b"k", b"", 3, 0)).h.cas, 0);
    assert_eq!(
        run1(
            &mut s,
            &req(op::INCREMENT, &arith_extras(1, 0, 0), b"k", b"", 4, 0)
        )
        .h
        .cas,
        0
    );
    // memcached compares against the item's CAS, which is 0.
    assert_eq!(
        run1(&mut s, &req(op::DELETE, b"", b"k", b"", 5, 9))
            .h
            .status,
        Status::KeyExists.code()
    );
}

#[test]
fn server_wide_requests_are_not_executed_on_a_shard() {
    let mut s = shard();
    let r = req(op::NOOP, b"", b"", b"", 1, 0);
    assert!(r.is_server_wide());
    assert_error(&run1(&mut s, &r), Status::UnknownCommand, op::NOOP, 1);
}

fn stat_responses(key: &[u8]) -> Vec<Resp> {
    crate::stats::init(1);
    let config = crate::config::Config::default();
    let mut out = BytesMut::new();
    let scope = crate::exec::stats_cmd::Scope {
        config: &config,
        stats: crate::stats::registry(),
        cache: None,
        cache_conns: 0,
        tls: None,
    };
    stat(&scope, &req(op::STAT, b"", key, b"", 77, 0), &mut out);
    responses(&out)
}

#[test]
fn stat_groups_and_terminator() {
    for key in [
        &b""[..],
        b"settings",
        b"items",
        b"slabs",
        b"sizes",
        b"detail on",
        b"detail off",
        b"detail dump",
        b"reset",
    ] {
        let v = stat_responses(key);
        let last = v.last().unwrap();
        assert_eq!(
            (
                last.h.opcode,
                last.h.status,
                last.h.keylen,
                last.h.bodylen,
                last.h.opaque
            ),
            (op::STAT, 0, 0, 0, 77)
        );
        for r in &v {
            assert_eq!(
                (r.h.opcode, r.h.status, r.h.opaque, r.h.cas, r.h.extlen),
                (op::STAT, 0, 77, 0, 0)
            );
        }
    }
    let general = stat_responses(b"");
    assert!(general.iter().any(|r| &r.key[..] == b"cmd_flush"));
    let stat = |name: &[u8]| {
        general
            .iter()
            .find(|r| &r.key[..] == name)
            .map(|r| r.value.clone())
    };
    // memcached's version for clients that parse it; shoal's own beside it.
    assert_eq!(stat(b"version").as_deref(), Some(&b"1.6.18"[..]));
    assert_eq!(
        stat(b"shoal_version").as_deref(),
        Some(env!("CARGO_PKG_VERSION").as_bytes())
    );
    let settings = stat_responses(b"settings");
    let get = |name: &[u8]| {
        settings
            .iter()
            .find(|r| &r.key[..] == name)
            .map(|r| r.value.clone())
    };
    assert_eq!(get(b"cas_enabled").as_deref(), Some(&b"yes"[..]));
    assert_eq!(get(b"flush_enabled").as_deref(), Some(&b"yes"[..]));
    assert_eq!(get(b"evictions").as_deref(), Some(&b"on"[..]));
    assert_eq!(stat_responses(b"reset").len(), 1);
    assert_eq!(stat_responses(b"detail on").len(), 1);
    stat_responses(b"detail off");
    let dump = stat_responses(b"detail dump");
    assert_eq!(&dump[0].key[..], b"detailed");
    assert!(dump[0].value.ends_with(b"END\r\n"));
    for unknown in [
        &b"conns"[..],
        b"bogus",
        b"detail",
        b"detail bogus",
        b"items ",
    ] {
        let v = stat_responses(unknown);
        assert_eq!(v.len(), 1);
        assert_error(&v[0], Status::KeyNotFound, op::STAT, 77);
    }
}

#[test]
fn introspection_records_each_binary_request_once() {
    let mut s = shard();
    s.enable_introspection(1);
    set(&mut s, b"k", b"hello", 0);
    let exp = 100u32.to_be_bytes();
    for code in [op::GET, op::GETK] {
        run1(&mut s, &req(code, b"", b"k", b"", 0, 0));
    }
    run_silent(&mut s, &req(op::GETQ, b"", b"nx", b"", 0, 0));
    run1(&mut s, &req(op::GAT, &exp, b"k", b"", 0, 0));
    run1(&mut s, &req(op::TOUCH, &exp, b"k", b"", 0, 0));
    run1(&mut s, &req(op::TOUCH, &exp, b"nx", b"", 0, 0));
    // Add on a present key, CAS mismatch on delete and incr.
    run1(&mut s, &req(op::ADD, &set_extras(0, 0), b"k", b"v", 0, 0));
    run1(&mut s, &req(op::DELETE, b"", b"k", b"", 0, 999));
    run1(&mut s, &req(op::SET, &set_extras(0, 0), b"n", b"5", 0, 0));
    run1(
        &mut s,
        &req(op::INCREMENT, &arith_extras(1, 0, 0), b"n", b"", 0, 999),
    );
    run1(
        &mut s,
        &req(op::INCREMENT, &arith_extras(1, 0, 0), b"n", b"", 0, 0),
    );
    // A missing counter created with its initial value: an incr miss.
    run1(
        &mut s,
        &req(op::DECREMENT, &arith_extras(1, 42, 0), b"c", b"", 0, 0),
    );
    run1(&mut s, &req(op::DELETE, b"", b"k", b"", 0, 0));
    let log: Vec<(Vec<u8>, &str, &str, u32)> = s
        .introspect
        .as_ref()
        .unwrap()
        .report()
        .log
        .into_iter()
        .map(|e| (e.key, e.cmd, e.status, e.size))
        .collect();
    let want: Vec<(Vec<u8>, &str, &str, u32)> = [
        (&b"k"[..], "SET", "STORED", 5),
        (b"k", "GET", "HIT", 5),
        (b"k", "GET", "HIT", 5),
        (b"nx", "GET", "MISS", 0),
        (b"k", "GAT", "HIT", 5),
        (b"k", "TOUCH", "TOUCHED", 5),
        (b"nx", "TOUCH", "NOT_FOUND", 0),
        (b"k", "ADD", "NOT_STORED", 1),
        (b"k", "DELETE", "EXISTS", 0),
        (b"n", "SET", "STORED", 1),
        (b"n", "INCR", "EXISTS", 0),
        (b"n", "INCR", "HIT", 1),
        (b"c", "DECR", "MISS", 2),
        (b"k", "DELETE", "DELETED", 0),
    ]
    .into_iter()
    .map(|(k, c, st, n)| (k.to_vec(), c, st, n))
    .collect();
    assert_eq!(log, want);
}
