//! The binary protocol: each input is parsed whole and in pieces (the
//! results must agree), and the requests run on a shard as the server runs
//! them; every answer must be whole response frames echoing the request's
//! opcode and opaque.

use bytes::BytesMut;

use super::{chunk_size, whole_and_chunked, ITEM_SIZE_MAX, SHARD_MEMORY};
use crate::exec::{self, binary as run, Shard};
use crate::protocol::binary::{encode, BinCommand, BinParsed, BinRequest, BinaryParser};

/// The first byte picks the piece size, the rest is what the client sent.
pub fn binary(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let chunk = chunk_size(first);
    let [(whole, left_whole), (pieces, left_pieces)] = whole_and_chunked(
        rest,
        chunk,
        || BinaryParser::new(ITEM_SIZE_MAX),
        |p, buf| p.parse(buf),
        |r| *r == BinParsed::Incomplete,
        |r| matches!(r, BinParsed::ErrorClose(_)),
    );
    assert_eq!(whole, pieces, "parsed whole and in pieces of {chunk}");
    assert_eq!(left_whole, left_pieces);
    let mut shard = Shard::standalone(SHARD_MEMORY, ITEM_SIZE_MAX, false);
    shard.enable_introspection(1);
    let now = crate::clock::now();
    for r in whole {
        match r {
            BinParsed::Request(req) => {
                let mut out = BytesMut::new();
                execute(&mut shard, &req, now, &mut out);
                check_frames(&out, &req);
            }
            BinParsed::Error(out) | BinParsed::ErrorClose(out) => check_frames(&out, None),
            BinParsed::Incomplete => {}
        }
    }
}

/// What the key's owner core does with a request, on one shard; flush
/// empties it and the other server-wide requests are answered by the
/// connection without a shard (left out).
pub(super) fn execute(shard: &mut Shard, req: &BinRequest, now: u32, out: &mut BytesMut) {
    match req.cmd {
        BinCommand::Flush { delay } => {
            shard.flush(exec::flush_time(i64::from(delay), now), now);
            encode::flush(out, req);
        }
        _ if req.key_for_routing().is_some() => run::execute(shard, req, now, out),
        _ => {}
    }
}

/// `out` is zero or more whole response frames (magic 0x81, extras and key
/// within the body) answering `req` when one is given.
pub(super) fn check_frames<'a>(out: &[u8], req: impl Into<Option<&'a BinRequest>>) {
    let req = req.into();
    let mut rest = out;
    while !rest.is_empty() {
        assert!(
            rest.len() >= 24,
            "a response shorter than its header: {out:?}"
        );
        assert_eq!(rest[0], 0x81, "response magic: {out:?}");
        let keylen = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let extlen = usize::from(rest[4]);
        let body = u32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]) as usize;
        assert!(
            keylen + extlen <= body,
            "extras and key outside the body: {out:?}"
        );
        assert!(
            rest.len() >= 24 + body,
            "a response shorter than its body: {out:?}"
        );
        if let Some(req) = req {
            assert_eq!(rest[1], req.opcode, "opcode not echoed: {out:?}");
            assert_eq!(
                &rest[12..16],
                &req.opaque.to_be_bytes(),
                "opaque not echoed"
            );
        }
        rest = &rest[24 + body..];
    }
}
