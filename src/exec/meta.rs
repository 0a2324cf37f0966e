//! Executes meta requests (protocol.md §1.6) against a shard and encodes
//! their replies byte-exact with memcached 1.6.18: return flags echo the
//! request's order; `T`, `N` and `R` act at their position in the flag list
//! (so `t T30` reports the TTL before the touch and `T30 t` after it, as
//! memcached's single reply-building loop does); `q` drops only the nominal
//! reply (M-q: mg `EN`, ms/md/ma `HD` — for ma also a `VA`), never an error.
//!
//! `mn` never gets here (the connection answers it; see
//! [`MetaRequest::routing_key`]); if it does, it is answered `MN`.

use bytes::{BufMut, BytesMut};

use super::meta_ops::{
    MetaArith, MetaArithOutcome, MetaDelete, MetaDeleteOutcome, MetaSet, MgCount, MgEffects, MgItem,
};
use super::{Shard, StoreOutcome};
use crate::clock;
use crate::protocol::meta::reply_extra::{EN, EX, HD, ME_PREFIX, NF, NS};
use crate::protocol::meta::{base64, encode, MetaCmd, MetaRequest, MAX_OPAQUE_LEN};
use crate::protocol::reply;
use crate::protocol::StoreMode;
use crate::storage::ItemRef;

/// Runs one meta request and appends its whole reply to `out` (nothing when
/// `q` suppresses it).
///
/// `cmd_meta` counts what memcached counts: only `me` requests (every
/// version's `process_meta_command` is the sole `meta_cmds++`); mg/ms/md/ma
/// show up in `cmd_get`, `cmd_set`, `delete_*`, `incr_*`, … instead.
pub fn execute(shard: &mut Shard, req: &MetaRequest, now: u32, out: &mut BytesMut) {
    match req.cmd {
        MetaCmd::Get => mg(shard, req, now, out),
        MetaCmd::Set => ms(shard, req, now, out),
        MetaCmd::Delete => md(shard, req, now, out),
        MetaCmd::Arith => ma(shard, req, now, out),
        MetaCmd::Debug => {
            shard.stats.cmd_meta.incr();
            me(shard, req, now, out)
        }
        MetaCmd::Noop => out.put_slice(reply::META_MN),
    }
}

/// A client TTL token in server time (X-4; negative = already expired).
#[inline]
fn exptime(raw: Option<i32>, now: u32) -> u32 {
    raw.map_or(0, |t| clock::realtime(i64::from(t), now))
}

/// ` t<ttl>`: -1 when immortal, else `exptime - now` as memcached's
/// `itoa_u32` prints it (unsigned).
#[inline]
fn ttl_flag(out: &mut BytesMut, exptime: u32, now: u32) {
    if exptime == 0 {
        encode::flag_i64(out, b't', -1);
    } else {
        encode::flag_u64(out, b't', u64::from(exptime.wrapping_sub(now)));
    }
}

/// M-*: an opaque longer than 32 bytes (`O` included) is an error.
#[inline]
fn opaque_too_long(req: &MetaRequest) -> bool {
    req.opaque.len() > MAX_OPAQUE_LEN
}

/// Replaces everything written since `start` by `line`.
#[inline]
fn error(out: &mut BytesMut, start: usize, line: &[u8]) {
    out.truncate(start);
    out.put_slice(line);
}

/// The `O` and `k` flags of a reply that has no item (EN, NF, EX, NS):
/// false if the opaque is too long.
fn key_and_opaque(out: &mut BytesMut, req: &MetaRequest) -> bool {
    for &f in req.order.as_slice() {
        match f {
            b'O' if opaque_too_long(req) => return false,
            b'O' => encode::opaque(out, &req.opaque),
            b'k' => encode::key(out, &req.key, req.base64),
            _ => {}
        }
    }
    true
}

// ---------------------------------------------------------------------------
// mg (M-mg).

fn mg(shard: &mut Shard, req: &MetaRequest, now: u32, out: &mut BytesMut) {
    let disable_cas = shard.settings.disable_cas;
    let vivify = req.vivify.map(|_| (exptime(req.vivify, now), req.new_cas));
    let start = out.len();
    shard.meta_get(&req.key, !req.no_update, vivify, now, |found| match found {
        Some(MgItem { item, created }) => mg_hit(req, &item, created, disable_cas, now, out, start),
        None => {
            encode::code(out, EN);
            if !key_and_opaque(out, req) {
                // Counted as a miss before the flags were looked at.
                error(out, start, reply::CLIENT_ERROR_OPAQUE_TOO_LONG);
            } else {
                encode::crlf(out);
                if req.quiet {
                    out.truncate(start);
                }
            }
            MgEffects {
                count: MgCount::Miss,
                ..MgEffects::default()
            }
        }
    });
}

/// The hit half of `process_mget_command`: one pass over the flags in
/// request order, then `Z`, `X`, `W`, then the value.
fn mg_hit(
    req: &MetaRequest,
    it: &ItemRef<'_>,
    created: bool,
    disable_cas: bool,
    now: u32,
    out: &mut BytesMut,
    start: usize,
) -> MgEffects {
    // A vivified item starts immortal; its `N` flag sets the TTL.
    let mut exp = if created { 0 } else { it.exptime };
    let mut won = false;
    let mut touched = false;
    if req.value {
        encode::va(out, it.value.len());
    } else {
        encode::code(out, HD);
    }
    for &f in req.order.as_slice() {
        match f {
            b'T' => {
                touched = true;
                exp = exptime(req.ttl, now);
            }
            // Only a vivified item takes the N TTL and wins.
            b'N' if created => {
                exp = exptime(req.vivify, now);
                won = true;
            }
            // Win the recache token if the TTL left is below R's.
            b'R' if !it.win && !created && exp != 0 && exp < exptime(req.recache, now) => {
                won = true
            }
            b's' => encode::flag_u64(out, b's', it.value.len() as u64),
            b't' => ttl_flag(out, exp, now),
            b'c' => encode::flag_u64(out, b'c', if disable_cas { 0 } else { it.cas }),
            b'f' => encode::flag_u64(out, b'f', u64::from(it.flags)),
            b'l' => encode::flag_u64(out, b'l', u64::from(now.saturating_sub(it.last_access))),
            b'h' => encode::flag_u64(out, b'h', u64::from(it.fetched)),
            b'O' if opaque_too_long(req) => {
                // The TTL changes made so far stay; no win, no stats.
                error(out, start, reply::CLIENT_ERROR_OPAQUE_TOO_LONG);
                return MgEffects {
                    exptime: (exp != it.exptime).then_some(exp),
                    ..MgEffects::default()
                };
            }
            b'O' => encode::opaque(out, &req.opaque),
            b'k' => encode::key(out, it.key, req.base64),
            _ => {}
        }
    }
    // Z before W so a client never sees both.
    if it.win {
        encode::flag(out, b'Z');
    }
    if it.stale {
        encode::flag(out, b'X');
        if !it.win {
            // Stale and nobody holds the token: this client wins it.
            won = true;
        }
    }
    if won {
        encode::flag(out, b'W');
    }
    encode::crlf(out);
    if req.value {
        encode::data(out, it.value);
    }
    MgEffects {
        exptime: (exp != it.exptime).then_some(exp),
        win: won,
        count: if touched {
            MgCount::TouchHit
        } else {
            MgCount::Hit
        },
    }
}

// ---------------------------------------------------------------------------
// ms (M-ms).

fn ms(shard: &mut Shard, req: &MetaRequest, now: u32, out: &mut BytesMut) {
    if req.too_large {
        shard.meta_set_too_large(&req.key, now);
        out.put_slice(reply::SERVER_ERROR_OBJECT_TOO_LARGE);
        return;
    }
    let mode = match req.mode {
        b'E' => StoreMode::Add,
        b'A' => StoreMode::Append,
        b'P' => StoreMode::Prepend,
        b'R' => StoreMode::Replace,
        _ => StoreMode::Set,
    };
    let r = shard.meta_set(
        &MetaSet {
            key: &req.key,
            data: &req.data,
            mode,
            flags: req.client_flags,
            exptime: exptime(req.ttl, now),
            compare_cas: req.compare_cas,
            new_cas: req.new_cas,
            invalidate: req.invalidate,
            vivify_exptime: req.vivify.map(|_| exptime(req.vivify, now)),
        },
        now,
    );
    let code = match r.outcome {
        StoreOutcome::Stored => HD,
        StoreOutcome::NotStored => NS,
        StoreOutcome::Exists => EX,
        StoreOutcome::NotFound => NF,
        StoreOutcome::TooLarge => return out.put_slice(reply::SERVER_ERROR_OBJECT_TOO_LARGE),
        StoreOutcome::NoMemory => return out.put_slice(reply::SERVER_ERROR_OUT_OF_MEMORY_STORING),
    };
    let start = out.len();
    encode::code(out, code);
    let cas = if shard.settings.disable_cas { 0 } else { r.cas };
    for &f in req.order.as_slice() {
        match f {
            // Length checked by the parser.
            b'O' => encode::opaque(out, &req.opaque),
            b'k' => encode::key(out, &req.key, req.base64),
            // 0 unless stored (metaget.t: "EX c0").
            b'c' => encode::flag_u64(out, b'c', cas),
            b's' => encode::flag_u64(out, b's', r.size as u64),
            _ => {}
        }
    }
    encode::crlf(out);
    if req.quiet && r.outcome == StoreOutcome::Stored {
        out.truncate(start);
    }
}

// ---------------------------------------------------------------------------
// md (M-md).

fn md(shard: &mut Shard, req: &MetaRequest, now: u32, out: &mut BytesMut) {
    let d = MetaDelete {
        compare_cas: req.compare_cas,
        invalidate: req.invalidate,
        ttl: req.ttl.map(|_| exptime(req.ttl, now)),
        remove_value: req.remove_value,
        client_flags: req.client_flags,
        new_cas: req.new_cas,
    };
    let code = match shard.meta_delete(&req.key, &d, now) {
        MetaDeleteOutcome::Done => HD,
        MetaDeleteOutcome::NotFound => NF,
        MetaDeleteOutcome::Exists => EX,
        MetaDeleteOutcome::NoMemory => return out.put_slice(reply::SERVER_ERROR_OUT_OF_MEMORY),
    };
    let start = out.len();
    encode::code(out, code);
    // The parser checked the opaque length.
    key_and_opaque(out, req);
    encode::crlf(out);
    if req.quiet && code == HD {
        out.truncate(start);
    }
}

// ---------------------------------------------------------------------------
// ma (M-ma).

fn ma(shard: &mut Shard, req: &MetaRequest, now: u32, out: &mut BytesMut) {
    let a = MetaArith {
        incr: !matches!(req.mode, b'D' | b'-'),
        delta: req.delta,
        compare_cas: req.compare_cas,
        new_cas: req.new_cas,
        vivify: req.vivify.is_some(),
        initial: req.initial,
    };
    // The TTL the item ends with once `T`/`N` are applied in order.
    let final_exptime = |base: u32, created: bool| {
        let mut e = base;
        for &f in req.order.as_slice() {
            match f {
                b'T' => e = exptime(req.ttl, now),
                b'N' if created => e = exptime(req.vivify, now),
                _ => {}
            }
        }
        e
    };
    let start = out.len();
    match shard.meta_arith(&req.key, &a, now, final_exptime) {
        MetaArithOutcome::Value {
            value,
            cas,
            base_exptime,
            created,
        } => {
            let mut digits = itoa::Buffer::new();
            let digits = digits.format(value).as_bytes();
            if req.value {
                encode::va(out, digits.len());
            } else {
                encode::code(out, HD);
            }
            let cas = if shard.settings.disable_cas { 0 } else { cas };
            let mut exp = base_exptime;
            for &f in req.order.as_slice() {
                match f {
                    b'c' => encode::flag_u64(out, b'c', cas),
                    b't' => ttl_flag(out, exp, now),
                    b'T' => exp = exptime(req.ttl, now),
                    b'N' if created => exp = exptime(req.vivify, now),
                    // memcached finds out after the update was made.
                    b'O' if opaque_too_long(req) => {
                        return error(out, start, reply::CLIENT_ERROR_OPAQUE_TOO_LONG)
                    }
                    b'O' => encode::opaque(out, &req.opaque),
                    b'k' => encode::key(out, &req.key, req.base64),
                    _ => {}
                }
            }
            encode::crlf(out);
            if req.value {
                encode::data(out, digits);
            }
            if req.quiet {
                out.truncate(start);
            }
        }
        o @ (MetaArithOutcome::NotFound | MetaArithOutcome::Exists) => {
            encode::code(
                out,
                if o == MetaArithOutcome::NotFound {
                    NF
                } else {
                    EX
                },
            );
            if !key_and_opaque(out, req) {
                return error(out, start, reply::CLIENT_ERROR_OPAQUE_TOO_LONG);
            }
            encode::crlf(out);
        }
        MetaArithOutcome::NonNumeric => out.put_slice(reply::CLIENT_ERROR_NON_NUMERIC),
        MetaArithOutcome::NoMemory => out.put_slice(reply::SERVER_ERROR_OUT_OF_MEMORY),
        MetaArithOutcome::VivifyNoMemory => out.put_slice(reply::SERVER_ERROR_OOM_NEW_ITEM),
    }
}

// ---------------------------------------------------------------------------
// me (M-me).

/// memcached's `sizeof(item)` on 64-bit builds.
const ITEM_HEADER: usize = 48;

/// `ITEM_ntotal`: header, key + NUL, value + `\r\n`, client flags when
/// non-zero, CAS unless disabled.
fn item_ntotal(it: &ItemRef<'_>, disable_cas: bool) -> usize {
    ITEM_HEADER
        + it.key.len()
        + 1
        + it.value.len()
        + 2
        + if it.flags != 0 { 4 } else { 0 }
        + if disable_cas { 0 } else { 8 }
}

/// The slab class memcached (default `-n 48 -f 1.25`, 512 KiB chunk max)
/// would store an item of `ntotal` bytes in. shoal has no slab classes; this
/// keeps `me` output familiar.
fn slab_class(ntotal: usize) -> u32 {
    const CHUNK_MAX: f64 = 512.0 * 1024.0;
    const FACTOR: f64 = 1.25;
    let mut size: u32 = 96;
    let mut class = 1;
    while class < 63 && f64::from(size) < CHUNK_MAX / FACTOR {
        if !size.is_multiple_of(8) {
            size += 8 - size % 8;
        }
        if ntotal <= size as usize {
            return class;
        }
        size = (f64::from(size) * FACTOR) as u32;
        class += 1;
    }
    class
}

/// `process_meta_command`: `ME <key> exp=<s> la=<s> cas=<n> fetch=<yes|no>
/// cls=<id> size=<bytes>` or `EN`. No access is recorded.
fn me(shard: &mut Shard, req: &MetaRequest, now: u32, out: &mut BytesMut) {
    let disable_cas = shard.settings.disable_cas;
    let Some(it) = shard.meta_peek(&req.key, now) else {
        encode::code(out, EN);
        encode::crlf(out);
        return;
    };
    out.put_slice(ME_PREFIX);
    if req.base64 {
        base64::encode_into(it.key, out);
    } else {
        out.put_slice(it.key);
    }
    // memcached prints `current_time - exptime` with %d: negative while the
    // item is alive (sic).
    let exp = if it.exptime == 0 {
        -1
    } else {
        now.wrapping_sub(it.exptime) as i32
    };
    let ntotal = item_ntotal(&it, disable_cas);
    let line = format!(
        " exp={exp} la={} cas={} fetch={} cls={} size={ntotal}\r\n",
        now.saturating_sub(it.last_access),
        if disable_cas { 0 } else { it.cas },
        if it.fetched { "yes" } else { "no" },
        slab_class(ntotal),
    );
    out.put_slice(line.as_bytes());
}

#[cfg(test)]
mod tests;
