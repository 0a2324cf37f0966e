//! Unit tests for the binary parser (protocol.md §1.7: B-1, B-2, B-4, X-1).

use super::*;
use bytes::{BufMut, Bytes};

const MAX: usize = 1024 * 1024;

/// A request frame as a client would send it.
fn frame(opcode: u8, extras: &[u8], key: &[u8], value: &[u8], opaque: u32, cas: u64) -> Vec<u8> {
    let mut b = BytesMut::new();
    Header {
        magic: REQ_MAGIC,
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

fn parse_all(bytes: &[u8]) -> (BinParsed, BytesMut) {
    let mut buf = BytesMut::from(bytes);
    let r = BinaryParser::new(MAX).parse(&mut buf);
    (r, buf)
}

fn request(bytes: &[u8]) -> BinRequest {
    match parse_all(bytes) {
        (BinParsed::Request(r), rest) => {
            assert!(rest.is_empty(), "the whole frame is consumed");
            r
        }
        (other, _) => panic!("expected a request, got {other:?}"),
    }
}

/// The status and body text of a single response.
fn status_of(out: &[u8]) -> (u8, u16, u32, &[u8]) {
    let h = Header::decode(out).unwrap();
    assert_eq!(h.magic, 0x81);
    assert_eq!(out.len(), HEADER_LEN + h.bodylen as usize);
    (h.opcode, h.status, h.opaque, &out[HEADER_LEN..])
}

#[test]
fn set_with_extras_cas_and_value() {
    let mut ext = Vec::new();
    ext.extend_from_slice(&19u32.to_be_bytes());
    ext.extend_from_slice(&300u32.to_be_bytes());
    let r = request(&frame(op::SETQ, &ext, b"key", b"value", 77, 5));
    assert_eq!(r.opcode, op::SETQ);
    assert!(r.quiet);
    assert_eq!((r.opaque, r.cas), (77, 5));
    assert_eq!(&r.key[..], b"key");
    assert_eq!(&r.value[..], b"value");
    assert_eq!(
        r.cmd,
        BinCommand::Store {
            mode: StoreMode::Set,
            flags: 19,
            exptime: 300
        }
    );
    assert_eq!(r.key_for_routing(), Some(&b"key"[..]));
    assert!(!r.is_server_wide());
}

#[test]
fn every_opcode_decodes() {
    let arith = [1u64.to_be_bytes(), 2u64.to_be_bytes()].concat();
    let arith = [&arith[..], &0xffff_ffffu32.to_be_bytes()].concat();
    let exp = 9u32.to_be_bytes();
    let cases: Vec<(Vec<u8>, BinCommand, bool)> = vec![
        (
            frame(op::GET, b"", b"k", b"", 0, 0),
            BinCommand::Get {
                with_key: false,
                touch: None,
            },
            false,
        ),
        (
            frame(op::GETQ, b"", b"k", b"", 0, 0),
            BinCommand::Get {
                with_key: false,
                touch: None,
            },
            true,
        ),
        (
            frame(op::GETK, b"", b"k", b"", 0, 0),
            BinCommand::Get {
                with_key: true,
                touch: None,
            },
            false,
        ),
        (
            frame(op::GETKQ, b"", b"k", b"", 0, 0),
            BinCommand::Get {
                with_key: true,
                touch: None,
            },
            true,
        ),
        (
            frame(op::GAT, &exp, b"k", b"", 0, 0),
            BinCommand::Get {
                with_key: false,
                touch: Some(9),
            },
            false,
        ),
        (
            frame(op::GATQ, &exp, b"k", b"", 0, 0),
            BinCommand::Get {
                with_key: false,
                touch: Some(9),
            },
            true,
        ),
        (
            frame(op::GATK, &exp, b"k", b"", 0, 0),
            BinCommand::Get {
                with_key: true,
                touch: Some(9),
            },
            false,
        ),
        (
            frame(op::GATKQ, &exp, b"k", b"", 0, 0),
            BinCommand::Get {
                with_key: true,
                touch: Some(9),
            },
            true,
        ),
        (
            frame(op::TOUCH, &exp, b"k", b"", 0, 0),
            BinCommand::Touch { exptime: 9 },
            false,
        ),
        (
            frame(op::DELETE, b"", b"k", b"", 0, 0),
            BinCommand::Delete,
            false,
        ),
        (
            frame(op::DELETEQ, b"", b"k", b"", 0, 0),
            BinCommand::Delete,
            true,
        ),
        (
            frame(op::INCREMENT, &arith, b"k", b"", 0, 0),
            BinCommand::Arith {
                incr: true,
                delta: 1,
                initial: 2,
                exptime: u32::MAX,
            },
            false,
        ),
        (
            frame(op::DECREMENTQ, &arith, b"k", b"", 0, 0),
            BinCommand::Arith {
                incr: false,
                delta: 1,
                initial: 2,
                exptime: u32::MAX,
            },
            true,
        ),
        (
            frame(op::APPEND, b"", b"k", b"v", 0, 0),
            BinCommand::Store {
                mode: StoreMode::Append,
                flags: 0,
                exptime: 0,
            },
            false,
        ),
        (
            frame(op::PREPENDQ, b"", b"k", b"v", 0, 0),
            BinCommand::Store {
                mode: StoreMode::Prepend,
                flags: 0,
                exptime: 0,
            },
            true,
        ),
        (
            frame(op::ADDQ, &[0; 8], b"k", b"v", 0, 0),
            BinCommand::Store {
                mode: StoreMode::Add,
                flags: 0,
                exptime: 0,
            },
            true,
        ),
        (
            frame(op::REPLACE, &[0; 8], b"k", b"", 0, 0),
            BinCommand::Store {
                mode: StoreMode::Replace,
                flags: 0,
                exptime: 0,
            },
            false,
        ),
        (
            frame(op::QUIT, b"", b"", b"", 0, 0),
            BinCommand::Quit,
            false,
        ),
        (
            frame(op::QUITQ, b"", b"", b"", 0, 0),
            BinCommand::Quit,
            true,
        ),
        (
            frame(op::FLUSH, b"", b"", b"", 0, 0),
            BinCommand::Flush { delay: 0 },
            false,
        ),
        (
            frame(op::FLUSHQ, &exp, b"", b"", 0, 0),
            BinCommand::Flush { delay: 9 },
            true,
        ),
        (
            frame(op::NOOP, b"", b"", b"", 0, 0),
            BinCommand::Noop,
            false,
        ),
        (
            frame(op::VERSION, b"", b"", b"", 0, 0),
            BinCommand::Version,
            false,
        ),
        (
            frame(op::STAT, b"", b"", b"", 0, 0),
            BinCommand::Stat,
            false,
        ),
        (
            frame(op::STAT, b"", b"settings", b"", 0, 0),
            BinCommand::Stat,
            false,
        ),
        (
            frame(op::SASL_LIST_MECHS, b"", b"", b"", 0, 0),
            BinCommand::SaslListMechs,
            false,
        ),
        (
            frame(op::SASL_AUTH, b"", b"PLAIN", b"\0u\0p", 0, 0),
            BinCommand::SaslAuth,
            false,
        ),
        (
            frame(op::SASL_STEP, b"", b"PLAIN", b"", 0, 0),
            BinCommand::SaslStep,
            false,
        ),
    ];
    for (bytes, cmd, quiet) in cases {
        let r = request(&bytes);
        assert_eq!(r.cmd, cmd, "opcode {:#04x}", bytes[1]);
        assert_eq!(r.quiet, quiet, "opcode {:#04x}", bytes[1]);
        let wide = matches!(
            cmd,
            BinCommand::Quit
                | BinCommand::Flush { .. }
                | BinCommand::Noop
                | BinCommand::Version
                | BinCommand::Stat
                | BinCommand::SaslListMechs
                | BinCommand::SaslAuth
                | BinCommand::SaslStep
        );
        assert_eq!(r.is_server_wide(), wide);
    }
}

#[test]
fn b1_bad_magic_closes_silently() {
    let mut f = frame(op::NOOP, b"", b"", b"", 0, 0);
    f[0] = 0x81;
    assert_eq!(parse_all(&f).0, BinParsed::ErrorClose(BytesMut::new()));
}

#[test]
fn b1_wrong_shape_is_einval_and_close() {
    let bad = [
        frame(op::GET, &[0; 4], b"k", b"", 1, 0),  // get with extras
        frame(op::GET, b"", b"", b"", 1, 0),       // get without key
        frame(op::GET, b"", b"k", b"v", 1, 0),     // get with a value
        frame(op::SET, &[0; 4], b"k", b"v", 1, 0), // set with 4-byte extras
        frame(op::SET, &[0; 8], b"", b"v", 1, 0),  // set without key
        frame(op::DELETE, b"", b"k", b"v", 1, 0),  // delete with a value
        frame(op::INCREMENT, &[0; 8], b"k", b"", 1, 0), // short incr extras
        frame(op::NOOP, b"", b"k", b"", 1, 0),     // noop with a key
        frame(op::VERSION, b"", b"", b"x", 1, 0),  // version with a body
        frame(op::FLUSH, &[0; 8], b"", b"", 1, 0), // flush with 8-byte extras
        frame(op::QUITQ, b"", b"", b"x", 1, 0),    // quitq with a body
        frame(op::STAT, &[0; 4], b"", b"", 1, 0),  // stat with extras
        frame(op::TOUCH, b"", b"k", b"", 1, 0),    // touch without exptime
        frame(op::GATQ, &[0; 4], b"", b"", 1, 0),  // gat without key
        frame(op::APPEND, &[0; 8], b"k", b"v", 1, 0), // append with extras
        frame(op::SASL_AUTH, b"", b"", b"x", 1, 0), // sasl auth without mech
    ];
    for f in bad {
        match parse_all(&f).0 {
            BinParsed::ErrorClose(out) => {
                let (opcode, status, opaque, body) = status_of(&out);
                assert_eq!(
                    (opcode, status, opaque, body),
                    (f[1], 0x04, 1, &b"Invalid arguments"[..]),
                    "opcode {:#04x}",
                    f[1]
                );
            }
            other => panic!("opcode {:#04x}: {other:?}", f[1]),
        }
    }
}

#[test]
fn b1_key_and_extras_longer_than_body_is_unknown_command_and_close() {
    let mut f = frame(op::GET, b"", b"key", b"", 3, 0);
    f[11] = 2; // bodylen 2 < keylen 3
    match parse_all(&f[..24]).0 {
        BinParsed::ErrorClose(out) => {
            assert_eq!(status_of(&out), (op::GET, 0x81, 3, &b"Unknown command"[..]))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn b2_body_over_1gib_is_einval_and_close() {
    // issue_192.t: AddQ with keylen 1, extlen 8 and bodylen 0xffffffe8.
    let f = b"\x80\x12\x00\x01\x08\x00\x00\x00\xff\xff\xff\xe8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    match parse_all(f).0 {
        BinParsed::ErrorClose(out) => assert_eq!(
            status_of(&out),
            (op::ADDQ, 0x04, 0, &b"Invalid arguments"[..])
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn x1_key_over_250_is_einval_and_close() {
    let key = vec![b'x'; 251];
    match parse_all(&frame(op::GET, b"", &key, b"", 0, 0)).0 {
        BinParsed::ErrorClose(out) => assert_eq!(status_of(&out).1, 0x04),
        other => panic!("{other:?}"),
    }
    // Decided from the header alone: the key bytes need not arrive.
    match parse_all(&frame(op::GET, b"", &key, b"", 0, 0)[..24]).0 {
        BinParsed::ErrorClose(_) => {}
        other => panic!("{other:?}"),
    }
    let key = vec![b'x'; 250];
    assert_eq!(
        request(&frame(op::GET, b"", &key, b"", 0, 0)).key.len(),
        250
    );
}

#[test]
fn b4_unknown_opcode_swallows_its_body_and_continues() {
    for code in [
        op::VERBOSITY,
        op::RGET,
        op::RDECRQ,
        0x1f,
        0x25,
        0x2f,
        0x40,
        0xff,
    ] {
        let mut bytes = frame(code, &[1, 2, 3, 4], b"kk", b"some value", 42, 0);
        bytes.extend_from_slice(&frame(op::NOOP, b"", b"", b"", 43, 0));
        let mut buf = BytesMut::from(&bytes[..]);
        let mut p = BinaryParser::new(MAX);
        match p.parse(&mut buf) {
            BinParsed::Error(out) => {
                assert_eq!(status_of(&out), (code, 0x81, 42, &b"Unknown command"[..]))
            }
            other => panic!("{other:?}"),
        }
        match p.parse(&mut buf) {
            BinParsed::Request(r) => assert_eq!((r.cmd, r.opaque), (BinCommand::Noop, 43)),
            other => panic!("{other:?}"),
        }
        assert!(buf.is_empty());
    }
}

#[test]
fn b4_unknown_body_is_swallowed_as_it_arrives() {
    let bytes = frame(0x50, b"", b"", &[7u8; 1000], 1, 0);
    let mut p = BinaryParser::new(MAX);
    let mut buf = BytesMut::from(&bytes[..100]);
    assert!(matches!(p.parse(&mut buf), BinParsed::Error(_)));
    assert!(buf.is_empty(), "swallowed bytes are dropped, not kept");
    buf.extend_from_slice(&bytes[100..600]);
    assert_eq!(p.parse(&mut buf), BinParsed::Incomplete);
    assert!(buf.is_empty());
    buf.extend_from_slice(&bytes[600..]);
    buf.extend_from_slice(&frame(op::NOOP, b"", b"", b"", 2, 0));
    assert!(matches!(
        p.parse(&mut buf),
        BinParsed::Request(BinRequest {
            cmd: BinCommand::Noop,
            ..
        })
    ));
}

#[test]
fn too_large_value_is_swallowed_not_buffered() {
    let value = vec![b'v'; 2000];
    let mut bytes = frame(op::SET, &[0; 8], b"big", &value, 5, 0);
    bytes.extend_from_slice(&frame(op::NOOP, b"", b"", b"", 6, 0));
    let mut p = BinaryParser::new(1000);
    let mut buf = BytesMut::from(&bytes[..40]);
    match p.parse(&mut buf) {
        BinParsed::Request(r) => {
            assert_eq!(
                r.cmd,
                BinCommand::TooLarge {
                    mode: StoreMode::Set
                }
            );
            assert_eq!(&r.key[..], b"big");
            assert!(r.value.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.parse(&mut buf), BinParsed::Incomplete);
    assert!(buf.is_empty());
    buf.extend_from_slice(&bytes[40..]);
    assert!(matches!(
        p.parse(&mut buf),
        BinParsed::Request(BinRequest {
            cmd: BinCommand::Noop,
            opaque: 6,
            ..
        })
    ));
}

#[test]
fn append_too_large_keeps_its_mode() {
    let r = match BinaryParser::new(3).parse(&mut BytesMut::from(
        &frame(op::APPENDQ, b"", b"k", b"four", 0, 0)[..],
    )) {
        BinParsed::Request(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        r.cmd,
        BinCommand::TooLarge {
            mode: StoreMode::Append
        }
    );
    assert!(r.quiet);
}

#[test]
fn stat_and_touch_values_are_ignored() {
    let mut bytes = frame(op::STAT, b"", b"items", b"junk", 1, 0);
    bytes.extend_from_slice(&frame(op::TOUCH, &[0, 0, 0, 5], b"k", b"junk", 2, 0));
    bytes.extend_from_slice(&frame(op::NOOP, b"", b"", b"", 3, 0));
    let mut buf = BytesMut::from(&bytes[..]);
    let mut p = BinaryParser::new(MAX);
    let mut got = Vec::new();
    while let BinParsed::Request(r) = p.parse(&mut buf) {
        got.push((r.cmd, r.key, r.value));
    }
    assert_eq!(
        got,
        vec![
            (BinCommand::Stat, Bytes::from_static(b"items"), Bytes::new()),
            (
                BinCommand::Touch { exptime: 5 },
                Bytes::from_static(b"k"),
                Bytes::new()
            ),
            (BinCommand::Noop, Bytes::new(), Bytes::new()),
        ]
    );
}

#[test]
fn incomplete_until_the_frame_arrives_and_pending_len_says_how_much() {
    let bytes = frame(op::SET, &[0; 8], b"key", &[b'x'; 100], 0, 0);
    let mut p = BinaryParser::new(MAX);
    let mut buf = BytesMut::new();
    for (i, b) in bytes.iter().enumerate() {
        assert_eq!(p.parse(&mut buf), BinParsed::Incomplete, "at {i}");
        assert_eq!(p.pending_len(), (i >= HEADER_LEN).then_some(bytes.len()));
        assert_eq!(buf.len(), i, "nothing consumed while waiting");
        buf.put_u8(*b);
    }
    assert!(matches!(p.parse(&mut buf), BinParsed::Request(_)));
    assert_eq!(p.pending_len(), None);
}

#[test]
fn oversized_sasl_payload_is_unknown_command() {
    let bytes = frame(op::SASL_AUTH, b"", b"PLAIN", &[0; 64], 1, 0);
    let mut p = BinaryParser::new(16);
    let mut buf = BytesMut::from(&bytes[..]);
    match p.parse(&mut buf) {
        BinParsed::Error(out) => assert_eq!(status_of(&out).1, 0x81),
        other => panic!("{other:?}"),
    }
    assert_eq!(p.parse(&mut buf), BinParsed::Incomplete);
    assert!(buf.is_empty());
}

#[test]
fn config_get_is_server_wide_with_its_key() {
    let r = request(&frame(op::CONFIG_GET, b"", b"cluster", b"", 5, 0));
    assert_eq!(r.cmd, BinCommand::ConfigGet);
    assert_eq!((&r.key[..], r.opaque, r.quiet), (&b"cluster"[..], 5, false));
    assert!(r.is_server_wide());
    // An empty key is an unknown configuration, not a bad frame.
    assert_eq!(
        request(&frame(op::CONFIG_GET, b"", b"", b"", 6, 0)).cmd,
        BinCommand::ConfigGet
    );
    // Extras or a value: malformed (0x04 and close).
    for f in [
        frame(op::CONFIG_GET, &[0; 4], b"cluster", b"", 1, 0),
        frame(op::CONFIG_GET, b"", b"cluster", b"x", 1, 0),
    ] {
        match parse_all(&f).0 {
            BinParsed::ErrorClose(out) => assert_eq!(status_of(&out).1, 0x04),
            other => panic!("{other:?}"),
        }
    }
}
