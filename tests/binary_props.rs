//! Property tests for the binary protocol (protocol.md §1.7).
//!
//! 1. Generated streams of frames (every opcode, quiet variants, too-large
//!    values, ignored bodies, unknown opcodes, optionally a malformed frame
//!    last) parse to the expected requests and replies, and feeding them split
//!    at every byte boundary, byte by byte, or in random chunks gives the same
//!    sequence of outcomes as feeding them whole (B-1, B-4, B-5).
//! 2. Arbitrary bytes and mutated frames never panic, in the parser or when
//!    the requests they yield are executed on a shard; every call makes
//!    progress or returns `Incomplete`, and `Incomplete` is stable.

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use shoal::exec::{binary as exec_binary, Shard};
use shoal::protocol::binary::{
    opcode as op, BinCommand, BinParsed, BinRequest, BinaryParser, Header, Status,
};
use shoal::protocol::StoreMode;

/// Item size limit used by the stream tests, small so TooLarge shows up.
const ITEM_MAX: usize = 48;
/// Hard bound on parse calls per feed (no infinite loops).
const MAX_CALLS: usize = 100_000;

/// Feeds `chunks` one after another, parsing after each until `Incomplete`;
/// stops at `ErrorClose`. Returns every non-Incomplete outcome.
fn feed<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<BinParsed> {
    let mut p = BinaryParser::new(ITEM_MAX);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut calls = 0;
    for c in chunks {
        buf.put_slice(c);
        loop {
            calls += 1;
            assert!(calls < MAX_CALLS, "parser does not make progress");
            let before = buf.len();
            match p.parse(&mut buf) {
                BinParsed::Incomplete => {
                    assert!(buf.len() <= before);
                    let again = buf.len();
                    assert_eq!(
                        p.parse(&mut buf),
                        BinParsed::Incomplete,
                        "Incomplete is stable"
                    );
                    assert_eq!(buf.len(), again);
                    break;
                }
                r @ BinParsed::ErrorClose(_) => {
                    out.push(r);
                    return out;
                }
                r => {
                    assert!(buf.len() < before, "{r:?} consumed nothing");
                    out.push(r);
                }
            }
        }
    }
    out
}

fn whole(input: &[u8]) -> Vec<BinParsed> {
    feed([input])
}

/// A request frame as a client writes it.
fn frame(opcode: u8, extras: &[u8], key: &[u8], value: &[u8], opaque: u32, cas: u64) -> Vec<u8> {
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
    b.to_vec()
}

/// The response memcached sends for a parse-level error.
fn error_bytes(opcode: u8, opaque: u32, status: Status) -> BytesMut {
    let mut out = BytesMut::new();
    shoal::protocol::binary::encode::error_raw(&mut out, opcode, opaque, status);
    out
}

// ---------------------------------------------------------------------------
// Generators.

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 1..12),
        1 => proptest::collection::vec(any::<u8>(), 1..=250),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    // Up to ITEM_MAX + 16 so some stores are too large.
    proptest::collection::vec(any::<u8>(), 0..ITEM_MAX + 16)
}

/// One frame plus the outcome it must parse to.
#[derive(Debug, Clone)]
struct Case {
    bytes: Vec<u8>,
    expect: BinParsed,
}

fn request_case(
    opcode: u8,
    extras: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
    opaque: u32,
    cas: u64,
    cmd: BinCommand,
) -> Case {
    let (_, quiet) = op::unquiet(opcode);
    let kept_value = match cmd {
        BinCommand::Store { .. } | BinCommand::SaslAuth | BinCommand::SaslStep => {
            Bytes::from(value.clone())
        }
        _ => Bytes::new(),
    };
    Case {
        bytes: frame(opcode, &extras, &key, &value, opaque, cas),
        expect: BinParsed::Request(BinRequest {
            opcode,
            quiet,
            opaque,
            cas,
            key: Bytes::from(key),
            value: kept_value,
            cmd,
        }),
    }
}

fn be32(n: u32) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

/// A valid request (or an unknown opcode, answered 0x81).
fn case() -> impl Strategy<Value = Case> {
    let ids = (
        any::<u32>(),
        prop_oneof![3 => Just(0u64), 1 => any::<u64>()],
    );
    prop_oneof![
        // Get/GetQ/GetK/GetKQ
        (
            prop::sample::select(vec![op::GET, op::GETQ, op::GETK, op::GETKQ]),
            key(),
            ids.clone()
        )
            .prop_map(|(o, k, (opq, cas))| {
                let with_key = matches!(o, op::GETK | op::GETKQ);
                request_case(
                    o,
                    vec![],
                    k,
                    vec![],
                    opq,
                    cas,
                    BinCommand::Get {
                        with_key,
                        touch: None,
                    },
                )
            }),
        // GAT family and Touch, sometimes with a value memcached ignores
        (
            prop::sample::select(vec![op::GAT, op::GATQ, op::GATK, op::GATKQ, op::TOUCH]),
            key(),
            any::<u32>(),
            prop_oneof![3 => Just(vec![]), 1 => value()],
            ids.clone()
        )
            .prop_map(|(o, k, exp, junk, (opq, cas))| {
                let cmd = match o {
                    op::TOUCH => BinCommand::Touch { exptime: exp },
                    op::GATK | op::GATKQ => BinCommand::Get {
                        with_key: true,
                        touch: Some(exp),
                    },
                    _ => BinCommand::Get {
                        with_key: false,
                        touch: Some(exp),
                    },
                };
                request_case(o, be32(exp), k, junk, opq, cas, cmd)
            }),
        // Set/Add/Replace(Q)
        (
            prop::sample::select(vec![
                op::SET,
                op::SETQ,
                op::ADD,
                op::ADDQ,
                op::REPLACE,
                op::REPLACEQ
            ]),
            key(),
            value(),
            any::<u32>(),
            any::<u32>(),
            ids.clone()
        )
            .prop_map(|(o, k, v, flags, exp, (opq, cas))| {
                let mode = match op::unquiet(o).0 {
                    op::SET => StoreMode::Set,
                    op::ADD => StoreMode::Add,
                    _ => StoreMode::Replace,
                };
                let cmd = if v.len() > ITEM_MAX {
                    BinCommand::TooLarge { mode }
                } else {
                    BinCommand::Store {
                        mode,
                        flags,
                        exptime: exp,
                    }
                };
                let mut c = request_case(
                    o,
                    [be32(flags), be32(exp)].concat(),
                    k,
                    v.clone(),
                    opq,
                    cas,
                    cmd,
                );
                if v.len() > ITEM_MAX {
                    if let BinParsed::Request(r) = &mut c.expect {
                        r.value = Bytes::new();
                    }
                }
                c
            }),
        // Append/Prepend(Q)
        (
            prop::sample::select(vec![op::APPEND, op::APPENDQ, op::PREPEND, op::PREPENDQ]),
            key(),
            value(),
            ids.clone()
        )
            .prop_map(|(o, k, v, (opq, cas))| {
                let mode = if op::unquiet(o).0 == op::APPEND {
                    StoreMode::Append
                } else {
                    StoreMode::Prepend
                };
                let big = v.len() > ITEM_MAX;
                let cmd = if big {
                    BinCommand::TooLarge { mode }
                } else {
                    BinCommand::Store {
                        mode,
                        flags: 0,
                        exptime: 0,
                    }
                };
                let mut c = request_case(o, vec![], k, v, opq, cas, cmd);
                if big {
                    if let BinParsed::Request(r) = &mut c.expect {
                        r.value = Bytes::new();
                    }
                }
                c
            }),
        // Delete(Q)
        (
            prop::sample::select(vec![op::DELETE, op::DELETEQ]),
            key(),
            ids.clone()
        )
            .prop_map(|(o, k, (opq, cas))| request_case(
                o,
                vec![],
                k,
                vec![],
                opq,
                cas,
                BinCommand::Delete
            )),
        // Incr/Decr(Q)
        (
            prop::sample::select(vec![
                op::INCREMENT,
                op::INCREMENTQ,
                op::DECREMENT,
                op::DECREMENTQ
            ]),
            key(),
            any::<u64>(),
            any::<u64>(),
            prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()],
            ids.clone()
        )
            .prop_map(|(o, k, delta, initial, exptime, (opq, cas))| {
                let incr = op::unquiet(o).0 == op::INCREMENT;
                let ext = [
                    &delta.to_be_bytes()[..],
                    &initial.to_be_bytes(),
                    &exptime.to_be_bytes(),
                ]
                .concat();
                request_case(
                    o,
                    ext,
                    k,
                    vec![],
                    opq,
                    cas,
                    BinCommand::Arith {
                        incr,
                        delta,
                        initial,
                        exptime,
                    },
                )
            }),
        // Flush(Q) with or without a delay
        (
            prop::sample::select(vec![op::FLUSH, op::FLUSHQ]),
            proptest::option::of(any::<u32>()),
            ids.clone()
        )
            .prop_map(|(o, delay, (opq, cas))| {
                let ext = delay.map(be32).unwrap_or_default();
                request_case(
                    o,
                    ext,
                    vec![],
                    vec![],
                    opq,
                    cas,
                    BinCommand::Flush {
                        delay: delay.unwrap_or(0),
                    },
                )
            }),
        // Bodyless server-wide requests
        (
            prop::sample::select(vec![
                op::NOOP,
                op::VERSION,
                op::QUIT,
                op::QUITQ,
                op::SASL_LIST_MECHS
            ]),
            ids.clone()
        )
            .prop_map(|(o, (opq, cas))| {
                let cmd = match op::unquiet(o).0 {
                    op::NOOP => BinCommand::Noop,
                    op::VERSION => BinCommand::Version,
                    op::QUIT => BinCommand::Quit,
                    _ => BinCommand::SaslListMechs,
                };
                request_case(o, vec![], vec![], vec![], opq, cas, cmd)
            }),
        // Stat, sometimes with an ignored value
        (
            prop::sample::select(vec![
                &b""[..],
                b"settings",
                b"items",
                b"detail dump",
                b"bogus"
            ]),
            prop_oneof![3 => Just(vec![]), 1 => value()],
            ids.clone()
        )
            .prop_map(|(k, junk, (opq, cas))| request_case(
                op::STAT,
                vec![],
                k.to_vec(),
                junk,
                opq,
                cas,
                BinCommand::Stat
            )),
        // SASL auth/step (small payloads are buffered)
        (
            prop::sample::select(vec![op::SASL_AUTH, op::SASL_STEP]),
            proptest::collection::vec(any::<u8>(), 0..ITEM_MAX),
            ids.clone()
        )
            .prop_map(|(o, v, (opq, cas))| {
                let cmd = if o == op::SASL_AUTH {
                    BinCommand::SaslAuth
                } else {
                    BinCommand::SaslStep
                };
                request_case(o, vec![], b"PLAIN".to_vec(), v, opq, cas, cmd)
            }),
        // Unknown opcodes (B-4): 0x81, body swallowed
        (
            prop::sample::select(vec![
                op::VERBOSITY,
                0x1f,
                0x25,
                op::RGET,
                0x35,
                op::RDECRQ,
                0x40,
                0x9a,
                0xff
            ]),
            proptest::collection::vec(any::<u8>(), 0..8),
            proptest::collection::vec(any::<u8>(), 0..8),
            proptest::collection::vec(any::<u8>(), 0..80),
            any::<u32>()
        )
            .prop_map(|(o, e, k, v, opq)| Case {
                bytes: frame(o, &e, &k, &v, opq, 0),
                expect: BinParsed::Error(error_bytes(o, opq, Status::UnknownCommand)),
            }),
    ]
}

/// A frame that ends the connection (B-1, B-2, X-1).
fn closing_case() -> impl Strategy<Value = Case> {
    prop_oneof![
        // bad magic: silent close
        (
            prop_oneof![0u8..0x80, 0x81u8..=0xff],
            proptest::collection::vec(any::<u8>(), 23..40)
        )
            .prop_map(|(m, rest)| {
                let mut bytes = vec![m];
                bytes.extend_from_slice(&rest);
                Case {
                    bytes,
                    expect: BinParsed::ErrorClose(BytesMut::new()),
                }
            }),
        // get with a value: EINVAL
        (key(), any::<u32>()).prop_map(|(k, opq)| Case {
            bytes: frame(op::GET, b"", &k, b"x", opq, 0),
            expect: BinParsed::ErrorClose(error_bytes(op::GET, opq, Status::Invalid)),
        }),
        // key longer than 250: EINVAL
        (251usize..400, any::<u32>()).prop_map(|(n, opq)| Case {
            bytes: frame(op::SET, &[0; 8], &vec![b'k'; n], b"v", opq, 0),
            expect: BinParsed::ErrorClose(error_bytes(op::SET, opq, Status::Invalid)),
        }),
        // body over 1 GiB: EINVAL, decided from the header alone
        (any::<u32>(), (1u32 << 30) + 1..=u32::MAX).prop_map(|(opq, bodylen)| {
            let mut b = BytesMut::new();
            Header {
                magic: 0x80,
                opcode: op::ADDQ,
                keylen: 1,
                extlen: 8,
                datatype: 0,
                status: 0,
                bodylen,
                opaque: opq,
                cas: 0,
            }
            .encode(&mut b);
            Case {
                bytes: b.to_vec(),
                expect: BinParsed::ErrorClose(error_bytes(op::ADDQ, opq, Status::Invalid)),
            }
        }),
    ]
}

fn stream() -> impl Strategy<Value = (Vec<u8>, Vec<BinParsed>)> {
    (
        proptest::collection::vec(case(), 1..8),
        proptest::option::weighted(0.3, closing_case()),
    )
        .prop_map(|(cases, last)| {
            let mut bytes = Vec::new();
            let mut expect = Vec::new();
            for c in cases.into_iter().chain(last) {
                bytes.extend_from_slice(&c.bytes);
                expect.push(c.expect);
            }
            (bytes, expect)
        })
}

fn test_shard() -> Shard {
    Shard::standalone(8 << 20, ITEM_MAX, false)
}

/// Parses `input` whole and executes every key-addressed request it yields.
fn parse_and_execute(input: &[u8]) {
    let mut shard = test_shard();
    let mut out = BytesMut::new();
    for r in whole(input) {
        if let BinParsed::Request(req) = r {
            if req.key_for_routing().is_some() {
                exec_binary::execute(&mut shard, &req, 100, &mut out);
            } else {
                assert!(req.is_server_wide());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// (1) Generated streams parse to their expected outcomes.
    #[test]
    fn streams_parse_as_expected((input, expect) in stream()) {
        prop_assert_eq!(whole(&input), expect);
    }

    /// (1) Split at every byte boundary: same outcomes as whole.
    #[test]
    fn split_anywhere_is_the_same((input, _) in stream()) {
        let want = whole(&input);
        for i in 0..=input.len() {
            prop_assert_eq!(feed([&input[..i], &input[i..]]), want.clone(), "split at {}", i);
        }
    }

    /// (1) Byte by byte and random chunks: same outcomes as whole.
    #[test]
    fn byte_by_byte_and_chunks_are_the_same((input, _) in stream(), sizes in proptest::collection::vec(1usize..40, 1..50)) {
        let want = whole(&input);
        prop_assert_eq!(feed(input.chunks(1)), want.clone());
        let mut chunks = Vec::new();
        let mut at = 0;
        for s in sizes.iter().cycle() {
            if at >= input.len() {
                break;
            }
            let end = (at + s).min(input.len());
            chunks.push(&input[at..end]);
            at = end;
        }
        prop_assert_eq!(feed(chunks), want);
    }

    /// (2) Arbitrary bytes never panic (parse and execute).
    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..600)) {
        parse_and_execute(&input);
        feed(input.chunks(7));
    }

    /// (2) Frames with a request magic and random fields never panic.
    #[test]
    fn random_headers_never_panic(
        opcode in any::<u8>(),
        keylen in prop_oneof![0u16..300, any::<u16>()],
        extlen in prop_oneof![Just(0u8), Just(4u8), Just(8u8), Just(20u8), any::<u8>()],
        bodylen in prop_oneof![0u32..400, any::<u32>()],
        cas in any::<u64>(),
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut b = BytesMut::new();
        Header { magic: 0x80, opcode, keylen, extlen, datatype: 0, status: 0, bodylen, opaque: 1, cas }.encode(&mut b);
        b.put_slice(&body);
        parse_and_execute(&b);
        feed(b.chunks(5));
    }

    /// (2) Valid streams with a few bytes flipped never panic.
    #[test]
    fn mutated_frames_never_panic((input, _) in stream(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut input = input;
        for (i, b) in flips {
            let i = i.index(input.len());
            input[i] = b;
        }
        parse_and_execute(&input);
    }

    /// Valid requests execute without panicking and answer opaque-echoing
    /// responses (B-5).
    #[test]
    fn executing_valid_requests_echoes_opaque((input, _) in stream()) {
        let mut shard = test_shard();
        for r in whole(&input) {
            if let BinParsed::Request(req) = r {
                if req.key_for_routing().is_some() {
                    let mut out = BytesMut::new();
                    exec_binary::execute(&mut shard, &req, 100, &mut out);
                    let mut rest = &out[..];
                    while !rest.is_empty() {
                        let h = Header::decode(rest).expect("whole response");
                        prop_assert_eq!((h.magic, h.opcode, h.opaque), (0x81, req.opcode, req.opaque));
                        rest = &rest[24 + h.bodylen as usize..];
                    }
                }
            }
        }
    }
}
