//! Executes classic ASCII requests against a shard and encodes the replies
//! (protocol.md §1.2). Key-addressed commands only: the runtime routes each to
//! its owner core; server-wide commands (stats, flush_all, version, …) are
//! handled by the connection, which can see every core.

use super::{ArithOutcome, Shard, StoreOutcome};
use crate::protocol::ascii::encode;
use crate::protocol::reply;
use crate::protocol::{Command, Request};
use bytes::{BufMut, BytesMut};

/// Runs one single-key request (`Command::single_key` is Some) and appends its
/// reply to `out` unless `noreply`.
pub fn execute(shard: &mut Shard, req: &Request, now: u32, out: &mut BytesMut) {
    let line: &[u8] = match &req.cmd {
        Command::Store {
            mode,
            key,
            flags,
            exptime,
            data,
            cas,
        } => match shard.store(*mode, key, *flags, *exptime, data, *cas, now).0 {
            StoreOutcome::Stored => reply::STORED,
            StoreOutcome::NotStored => reply::NOT_STORED,
            StoreOutcome::Exists => reply::EXISTS,
            StoreOutcome::NotFound => reply::NOT_FOUND,
            StoreOutcome::TooLarge => reply::SERVER_ERROR_OBJECT_TOO_LARGE,
            StoreOutcome::NoMemory => reply::SERVER_ERROR_OUT_OF_MEMORY_STORING,
        },
        Command::TooLarge { mode, key } => {
            shard.store_too_large(*mode, key, now);
            reply::SERVER_ERROR_OBJECT_TOO_LARGE
        }
        Command::Delete { key } => {
            if shard.delete(key, now) {
                reply::DELETED
            } else {
                reply::NOT_FOUND
            }
        }
        Command::Touch { key, exptime } => {
            if shard.touch(key, *exptime, now) {
                reply::TOUCHED
            } else {
                reply::NOT_FOUND
            }
        }
        Command::Arith { key, incr, delta } => match shard.arith(key, *incr, *delta, now) {
            ArithOutcome::Value(v) => {
                if !req.noreply {
                    encode::number(out, v);
                }
                return;
            }
            ArithOutcome::NotFound => reply::NOT_FOUND,
            ArithOutcome::NonNumeric => reply::CLIENT_ERROR_NON_NUMERIC,
            ArithOutcome::NoMemory => reply::SERVER_ERROR_OUT_OF_MEMORY,
        },
        // Meta requests write their own (possibly empty) reply.
        Command::Meta(m) => return super::meta::execute(shard, m, now, out),
        // Not key-addressed: the runtime never routes these here.
        _ => reply::ERROR,
    };
    if !req.noreply {
        out.put_slice(line);
    }
}

/// One key of a get/gets/gat/gats: appends its `VALUE` block on a hit
/// (misses are silent, A-get). The caller writes the final `END`.
pub fn get_key(
    shard: &mut Shard,
    key: &[u8],
    with_cas: bool,
    touch: Option<i64>,
    now: u32,
    out: &mut BytesMut,
) {
    let disable_cas = shard.settings.disable_cas;
    shard.get_with(key, touch, now, |it| {
        let cas = with_cas.then_some(if disable_cas { 0 } else { it.cas });
        encode::value(out, it.key, it.flags, it.value, cas);
    });
}
