//! Executes binary requests (protocol.md §1.7) with the shared [`Shard`]
//! operations and encodes memcached 1.6.18's responses (`proto_bin.c`).
//!
//! [`execute`] runs the key-addressed requests on the owner shard; [`stat`]
//! answers Stat for the connection. The other server-wide requests (Noop,
//! Version, Quit, Flush, SASL) need no shard and are answered by the
//! runtime with the encoders in [`crate::protocol::binary::encode`].
//!
//! Binary-specific rules applied here, on top of the shared semantics:
//! * a header CAS on Set/Add/Replace makes the store a CAS store whatever
//!   the opcode (memcached switches to `NREAD_CAS`);
//! * Add on a present key answers 0x02, Replace on a missing one 0x01, and
//!   Append/Prepend on a missing key 0x05 even with a CAS;
//! * Delete and Incr/Decr honour a header CAS (mismatch → 0x02);
//! * Incr/Decr on a missing key create it with the initial value unless
//!   the exptime is 0xffffffff;
//! * with CAS disabled (`-C`) every CAS in a response is 0 and a request
//!   CAS is ignored by stores (memcached's `ITEM_set_cas` is a no-op then).

use super::{stats_cmd, ArithOutcome, Shard, StoreOutcome};
use crate::introspect::{Cmd, Status as Op};

use crate::protocol::binary::status::{NOMEM_ALLOCATING_ITEM, NOMEM_INCREMENTING, NOMEM_NEW_ITEM};
use crate::protocol::binary::{encode, BinCommand, BinRequest, Status};
use crate::protocol::StoreMode;
use bytes::BytesMut;

/// Incr/decr with this exptime never create a missing key.
pub const NO_AUTO_CREATE: u32 = 0xffff_ffff;

/// Runs one key-addressed request (`req.key_for_routing()` is Some) on its
/// owner shard and appends its response to `out`: nothing for a quiet
/// success or a quiet get miss.
pub fn execute(shard: &mut Shard, req: &BinRequest, now: u32, out: &mut BytesMut) {
    match req.cmd {
        BinCommand::Get { with_key, touch } => {
            let disable_cas = shard.settings.disable_cas;
            let hit = shard.get_with(&req.key, touch.map(i64::from), now, |it| {
                encode::get_hit(
                    out,
                    req,
                    with_key,
                    it.flags,
                    if disable_cas { 0 } else { it.cas },
                    it.value,
                )
            });
            if hit.is_none() {
                encode::get_miss(out, req, with_key);
            }
        }
        BinCommand::Touch { exptime } => {
            // memcached's binary touch is a get that sets the exptime
            // (item_touch): same counters, and the reply carries the flags.
            // Introspection logs it as the TOUCH it is.
            let disable_cas = shard.settings.disable_cas;
            let hit = shard.get_as(&req.key, Some(exptime as i64), Cmd::Touch, now, |it| {
                encode::touch_hit(out, req, it.flags, if disable_cas { 0 } else { it.cas })
            });
            if hit.is_none() {
                encode::get_miss(out, req, false);
            }
        }
        BinCommand::Store {
            mode,
            flags,
            exptime,
        } => store(shard, req, mode, flags, exptime, now, out),
        BinCommand::TooLarge { mode } => {
            shard.store_too_large(mode, &req.key, now);
            encode::error(out, req, Status::TooLarge);
        }
        BinCommand::Delete => delete(shard, req, now, out),
        BinCommand::Arith {
            incr,
            delta,
            initial,
            exptime,
        } => arith(shard, req, incr, delta, initial, exptime, now, out),
        // Server-wide requests are answered by the connection and never
        // routed to a shard.
        _ => encode::unknown_command(out, req),
    }
}

/// The CAS a response shows for an item (0 with CAS disabled).
fn shown_cas(shard: &Shard, cas: u64) -> u64 {
    if shard.settings.disable_cas {
        0
    } else {
        cas
    }
}

/// Set/Add/Replace/Append/Prepend (`process_bin_update`,
/// `process_bin_append_prepend`, `complete_update_bin`).
#[allow(clippy::too_many_arguments)]
fn store(
    shard: &mut Shard,
    req: &BinRequest,
    mode: StoreMode,
    flags: u32,
    exptime: u32,
    now: u32,
    out: &mut BytesMut,
) {
    let cas = shown_cas(shard, req.cas);
    let effective = match mode {
        StoreMode::Set | StoreMode::Add | StoreMode::Replace if cas != 0 => StoreMode::Cas,
        m => m,
    };
    let (outcome, new_cas) = shard.store(
        effective,
        &req.key,
        flags,
        exptime as i64,
        &req.value,
        cas,
        now,
    );
    let status = match outcome {
        StoreOutcome::Stored => {
            let c = shown_cas(shard, new_cas);
            return encode::success(out, req, c);
        }
        StoreOutcome::Exists => Status::KeyExists,
        StoreOutcome::NotFound => Status::KeyNotFound,
        StoreOutcome::NotStored => match mode {
            StoreMode::Add => Status::KeyExists,
            StoreMode::Replace => Status::KeyNotFound,
            _ => Status::NotStored,
        },
        StoreOutcome::TooLarge => {
            if mode == StoreMode::Set && effective == StoreMode::Cas {
                // The shard unlinks the old value of a too-large plain set;
                // memcached does it for a set with a CAS too.
                if shard.store.delete(&req.key, now) {
                    shard.publish();
                }
            }
            Status::TooLarge
        }
        StoreOutcome::NoMemory => {
            return encode::error_msg(out, req, Status::NoMemory, NOMEM_ALLOCATING_ITEM)
        }
    };
    encode::error(out, req, status);
}

/// Delete(Q) with an optional CAS (`process_bin_delete`).
fn delete(shard: &mut Shard, req: &BinRequest, now: u32, out: &mut BytesMut) {
    if req.cas != 0 {
        let disable_cas = shard.settings.disable_cas;
        let current = shard
            .store
            .peek(&req.key, now)
            .map(|it| if disable_cas { 0 } else { it.cas });
        if current.is_some_and(|c| c != req.cas) {
            shard.note(now, Cmd::Delete, Op::Exists, &req.key, 0);
            return encode::error(out, req, Status::KeyExists);
        }
    }
    if shard.delete(&req.key, now) {
        encode::success(out, req, 0);
    } else {
        encode::error(out, req, Status::KeyNotFound);
    }
}

/// Increment/Decrement(Q) (`complete_incr_bin`, `do_add_delta`).
#[allow(clippy::too_many_arguments)]
fn arith(
    shard: &mut Shard,
    req: &BinRequest,
    incr: bool,
    delta: u64,
    initial: u64,
    exptime: u32,
    now: u32,
    out: &mut BytesMut,
) {
    let disable_cas = shard.settings.disable_cas;
    let current = shard
        .store
        .peek(&req.key, now)
        .map(|it| (it.value.is_empty(), if disable_cas { 0 } else { it.cas }));
    match current {
        None if exptime != NO_AUTO_CREATE => {
            // Create the counter with its initial value (an add, as memcached).
            let mut b = itoa::Buffer::new();
            let digits = b.format(initial).as_bytes();
            // Introspection logs the request as the incr/decr miss it is (as
            // meta `ma N` does), not as the add that creates the counter.
            let introspect = shard.introspect.take();
            let r = shard.store(StoreMode::Add, &req.key, 0, exptime as i64, digits, 0, now);
            shard.introspect = introspect;
            let cmd = if incr { Cmd::Incr } else { Cmd::Decr };
            shard.note(now, cmd, Op::Miss, &req.key, digits.len());
            match r {
                (StoreOutcome::Stored, c) => {
                    let c = shown_cas(shard, c);
                    encode::arith(out, req, initial, c);
                }
                (StoreOutcome::TooLarge | StoreOutcome::NoMemory, _) => {
                    encode::error_msg(out, req, Status::NoMemory, NOMEM_NEW_ITEM)
                }
                _ => encode::error(out, req, Status::NotStored),
            }
        }
        // memcached checks for an empty value before the CAS.
        Some((false, c)) if req.cas != 0 && c != req.cas => {
            let cmd = if incr { Cmd::Incr } else { Cmd::Decr };
            shard.note(now, cmd, Op::Exists, &req.key, 0);
            encode::error(out, req, Status::KeyExists)
        }
        _ => match shard.arith(&req.key, incr, delta, now) {
            ArithOutcome::Value(v) => {
                let c = shard.store.peek(&req.key, now).map_or(0, |it| it.cas);
                let c = shown_cas(shard, c);
                encode::arith(out, req, v, c);
            }
            ArithOutcome::NotFound => encode::error(out, req, Status::KeyNotFound),
            ArithOutcome::NonNumeric => encode::error(out, req, Status::DeltaBadValue),
            ArithOutcome::NoMemory => {
                encode::error_msg(out, req, Status::NoMemory, NOMEM_INCREMENTING)
            }
        },
    }
}

/// Answers Stat (`process_bin_stat`): one response per stat, then the
/// empty-key terminator; 0x01 `Not found` for an unknown group. The group
/// is the key, matched as memcached does: `reset`, `settings` and `detail`
/// by prefix (`detail on`, `detail off`, `detail dump`), `items`, `slabs`
/// and `sizes` exactly. `reset` and `detail on|off` answer just the
/// terminator; `detail dump` sends its text as one stat named `detailed`.
pub fn stat(scope: &stats_cmd::Scope<'_>, req: &BinRequest, out: &mut BytesMut) {
    let key: &[u8] = &req.key;
    let opaque = req.opaque;
    let mut emit = |name: &str, value: &[u8]| encode::stat(out, opaque, name.as_bytes(), value);
    let known = if key.is_empty() {
        stats_cmd::general(scope, &mut emit);
        true
    } else if key.starts_with(b"reset") {
        stats_cmd::reset(scope);
        true
    } else if key.starts_with(b"settings") {
        stats_cmd::settings(scope, &mut emit);
        true
    } else if let Some(sub) = key
        .strip_prefix(b"detail")
        .filter(|_| scope.cache.is_none())
    {
        if sub.starts_with(b" dump") {
            emit("detailed", &stats_cmd::detail_dump());
            true
        } else if sub.starts_with(b" on") {
            stats_cmd::set_detail(true);
            true
        } else if sub.starts_with(b" off") {
            stats_cmd::set_detail(false);
            true
        } else {
            false
        }
    } else {
        match key {
            b"items" => stats_cmd::items(scope, &mut emit),
            b"slabs" => stats_cmd::slabs(scope, &mut emit),
            b"sizes" => stats_cmd::sizes(&mut emit),
            _ => {}
        }
        matches!(key, b"items" | b"slabs" | b"sizes")
    };
    if known {
        encode::stats_end(out, opaque);
    } else {
        encode::error(out, req, Status::KeyNotFound);
    }
}

#[cfg(test)]
mod tests;
