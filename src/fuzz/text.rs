//! The text protocol: classic and meta commands share one parser
//! (`AsciiParser`), so both targets parse the same way and differ in what
//! they start from. Each input is parsed whole and in pieces (the results
//! must agree), and the requests run on a shard as the server runs them
//! (every reply ends its line).

use bytes::{BufMut, BytesMut};

use super::{chunk_size, whole_and_chunked, ITEM_SIZE_MAX, SHARD_MEMORY};
use crate::exec::{self, ascii as run, Shard};
use crate::protocol::ascii::{AsciiParser, Parsed};
use crate::protocol::meta::base64;
use crate::protocol::{reply, Command, Request};

/// Longest input compared whole against in pieces: a line longer than
/// the parser's partial-line limit closes the connection when it arrives
/// in pieces but not when it arrives whole (memcached's X-6 rule).
const COMPARE_UP_TO: usize = 2048;

/// Classic text commands (get, set, cas, incr, touch, flush_all, ...):
/// the first byte picks the piece size, the rest is what the client sent.
pub fn ascii(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    text(rest, chunk_size(first));
}

/// Meta commands (mg, ms, md, ma, me, mn): the connection's bytes start
/// with `m` (the input is the rest of the first command, and whatever
/// follows), and base64 keys must survive a round trip.
pub fn meta(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let mut conn = Vec::with_capacity(rest.len() + 1);
    conn.push(b'm');
    conn.extend_from_slice(rest);
    text(&conn, chunk_size(first));
    if let Some(decoded) = base64::decode(rest) {
        let mut encoded = BytesMut::new();
        base64::encode_into(&decoded, &mut encoded);
        assert_eq!(encoded.len(), base64::encoded_len(decoded.len()));
        assert_eq!(base64::decode(&encoded).as_deref(), Some(&decoded[..]));
    }
}

fn text(conn: &[u8], chunk: usize) {
    let [(whole, left_whole), (pieces, left_pieces)] = whole_and_chunked(
        conn,
        chunk,
        || AsciiParser::new(ITEM_SIZE_MAX),
        |p, buf| p.parse(buf),
        |r| *r == Parsed::Incomplete,
        |r| *r == Parsed::Close,
    );
    if conn.len() <= COMPARE_UP_TO {
        assert_eq!(whole, pieces, "parsed whole and in pieces of {chunk}");
        assert_eq!(left_whole, left_pieces);
    }
    let mut shard = Shard::standalone(SHARD_MEMORY, ITEM_SIZE_MAX, false);
    shard.enable_introspection(1);
    let now = crate::clock::now();
    for r in whole {
        let Parsed::Request(req) = r else {
            continue;
        };
        let mut out = BytesMut::new();
        execute(&mut shard, &req, now, &mut out);
        assert!(
            out.is_empty() || out.ends_with(b"\r\n"),
            "{req:?} answered a partial line: {out:?}"
        );
    }
}

/// What the connection and the key's owner core do with a text request,
/// on one shard; server-wide commands other than flush_all answer
/// without touching a shard and are left out.
pub(super) fn execute(shard: &mut Shard, req: &Request, now: u32, out: &mut BytesMut) {
    match &req.cmd {
        Command::Get {
            keys,
            with_cas,
            touch,
        } => {
            for key in keys {
                run::get_key(shard, key, *with_cas, *touch, now, out);
            }
            out.put_slice(reply::END);
        }
        Command::FlushAll { delay } => shard.flush(exec::flush_time(*delay, now), now),
        cmd if cmd.single_key().is_some() => run::execute(shard, req, now, out),
        _ => {}
    }
}
