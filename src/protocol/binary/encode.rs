//! Response encoders. Every function appends complete response packets to
//! `out` (reserving once) and never fails. Layouts follow memcached 1.6.18
//! `proto_bin.c`: errors carry their text as the value, no extras, no key
//! and CAS 0; the opcode and opaque of the request are echoed.

use super::header::{Header, HEADER_LEN};
use super::opcode;
use super::request::BinRequest;
use super::status::Status;
use bytes::{BufMut, BytesMut};

/// One response packet: header + extras + key + value.
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn response(
    out: &mut BytesMut,
    opcode: u8,
    opaque: u32,
    status: Status,
    cas: u64,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) {
    let body = extras.len() + key.len() + value.len();
    out.reserve(HEADER_LEN + body);
    Header::response(
        opcode,
        status.code(),
        extras.len() as u8,
        key.len() as u16,
        body as u32,
        opaque,
        cas,
    )
    .encode(out);
    out.put_slice(extras);
    out.put_slice(key);
    out.put_slice(value);
}

/// An error response with memcached's default text for `status`
/// (`write_bin_error(c, status, NULL, …)`). Used by the parser, which has no
/// request yet.
#[inline]
pub fn error_raw(out: &mut BytesMut, opcode: u8, opaque: u32, status: Status) {
    response(out, opcode, opaque, status, 0, b"", b"", status.message());
}

/// An error response to `req` with the default text. Errors are sent even
/// for quiet requests.
#[inline]
pub fn error(out: &mut BytesMut, req: &BinRequest, status: Status) {
    error_raw(out, req.opcode, req.opaque, status);
}

/// An error response to `req` with a specific text (the ENOMEM variants).
#[inline]
pub fn error_msg(out: &mut BytesMut, req: &BinRequest, status: Status, msg: &[u8]) {
    response(out, req.opcode, req.opaque, status, 0, b"", b"", msg);
}

/// An empty success (stores, delete, flush, quit, noop) carrying `cas`;
/// nothing for a quiet request.
#[inline]
pub fn success(out: &mut BytesMut, req: &BinRequest, cas: u64) {
    if !req.quiet {
        response(
            out,
            req.opcode,
            req.opaque,
            Status::Success,
            cas,
            b"",
            b"",
            b"",
        );
    }
}

/// Noop: an empty success, never suppressed.
#[inline]
pub fn noop(out: &mut BytesMut, req: &BinRequest) {
    success_value(out, req, b"");
}

/// A success carrying only a value (SASL answers: the mechanism list,
/// `Authenticated`), never suppressed.
#[inline]
pub fn success_value(out: &mut BytesMut, req: &BinRequest, value: &[u8]) {
    response(
        out,
        req.opcode,
        req.opaque,
        Status::Success,
        0,
        b"",
        b"",
        value,
    );
}

/// Quit: an empty success (nothing for QuitQ); the caller then closes the
/// connection after writing.
#[inline]
pub fn quit(out: &mut BytesMut, req: &BinRequest) {
    success(out, req, 0);
}

/// Flush: an empty success (nothing for FlushQ).
#[inline]
pub fn flush(out: &mut BytesMut, req: &BinRequest) {
    success(out, req, 0);
}

/// Flush while flush is disabled (memcached `-F`): 0x20 `Auth failure.`,
/// not counted in `cmd_flush`.
#[inline]
pub fn flush_disabled(out: &mut BytesMut, req: &BinRequest) {
    error(out, req, Status::AuthError);
}

/// Version: the version string as the value.
#[inline]
pub fn version(out: &mut BytesMut, req: &BinRequest, version: &str) {
    response(
        out,
        req.opcode,
        req.opaque,
        Status::Success,
        0,
        b"",
        b"",
        version.as_bytes(),
    );
}

/// ElastiCache `config get` (opcode 0x60) success: 4-byte flags extras and
/// the configuration text as the value, no key, CAS 0 — the layout of a Get
/// hit, which is how the AWS cluster clients decode it (their
/// `GetConfigOperationImpl` reads the flags, then the data). Never quiet.
#[inline]
pub fn config(out: &mut BytesMut, req: &BinRequest, flags: u32, value: &[u8]) {
    response(
        out,
        req.opcode,
        req.opaque,
        Status::Success,
        0,
        &flags.to_be_bytes(),
        b"",
        value,
    );
}

/// 0x81 `Unknown command`: what memcached built without SASL answers to
/// the SASL opcodes (clients such as Dalli read it as "no auth needed").
#[inline]
pub fn unknown_command(out: &mut BytesMut, req: &BinRequest) {
    error(out, req, Status::UnknownCommand);
}

/// A get/gat hit: 4-byte flags extras, the key for GetK/GATK, the value,
/// the item's CAS in the header. Sent for quiet gets too.
#[inline]
pub fn get_hit(
    out: &mut BytesMut,
    req: &BinRequest,
    with_key: bool,
    flags: u32,
    cas: u64,
    value: &[u8],
) {
    let key: &[u8] = if with_key { &req.key } else { b"" };
    response(
        out,
        req.opcode,
        req.opaque,
        Status::Success,
        cas,
        &flags.to_be_bytes(),
        key,
        value,
    );
}

/// A get/gat miss: GetK/GATK answer 0x01 with the key as key and no text,
/// the others 0x01 `Not found`; nothing for the quiet variants.
#[inline]
pub fn get_miss(out: &mut BytesMut, req: &BinRequest, with_key: bool) {
    if req.quiet {
        return;
    }
    if with_key {
        response(
            out,
            req.opcode,
            req.opaque,
            Status::KeyNotFound,
            0,
            b"",
            &req.key,
            b"",
        );
    } else {
        error(out, req, Status::KeyNotFound);
    }
}

/// A touch hit: flags extras and CAS, no value.
#[inline]
pub fn touch_hit(out: &mut BytesMut, req: &BinRequest, flags: u32, cas: u64) {
    response(
        out,
        req.opcode,
        req.opaque,
        Status::Success,
        cas,
        &flags.to_be_bytes(),
        b"",
        b"",
    );
}

/// Incr/decr success: the new value as an 8-byte big-endian body, the new
/// CAS in the header; nothing for the quiet variants.
#[inline]
pub fn arith(out: &mut BytesMut, req: &BinRequest, value: u64, cas: u64) {
    if !req.quiet {
        response(
            out,
            req.opcode,
            req.opaque,
            Status::Success,
            cas,
            b"",
            b"",
            &value.to_be_bytes(),
        );
    }
}

/// One Stat response: key = stat name, value = its value. Always opcode
/// 0x10, status 0, CAS 0 (memcached `append_bin_stats`).
#[inline]
pub fn stat(out: &mut BytesMut, opaque: u32, name: &[u8], value: &[u8]) {
    response(
        out,
        opcode::STAT,
        opaque,
        Status::Success,
        0,
        b"",
        name,
        value,
    );
}

/// The empty-key response that ends a Stat answer.
#[inline]
pub fn stats_end(out: &mut BytesMut, opaque: u32) {
    stat(out, opaque, b"", b"");
}

/// A complete Stat answer: one response per pair, then the terminator.
pub fn encode_stats<N: AsRef<[u8]>, V: AsRef<[u8]>>(
    out: &mut BytesMut,
    opaque: u32,
    stats: &[(N, V)],
) {
    for (name, value) in stats {
        stat(out, opaque, name.as_ref(), value.as_ref());
    }
    stats_end(out, opaque);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::binary::BinCommand;
    use bytes::Bytes;

    fn req(opcode: u8, quiet: bool, key: &'static [u8]) -> BinRequest {
        BinRequest {
            opcode,
            quiet,
            opaque: 0x01020304,
            cas: 0,
            key: Bytes::from_static(key),
            value: Bytes::new(),
            cmd: BinCommand::Get {
                with_key: true,
                touch: None,
            },
        }
    }

    #[test]
    fn error_layout_matches_write_bin_error() {
        let mut out = BytesMut::new();
        error(&mut out, &req(opcode::GETQ, true, b"k"), Status::KeyExists);
        let mut want =
            b"\x81\x09\x00\x00\x00\x00\x00\x02\x00\x00\x00\x14\x01\x02\x03\x04\0\0\0\0\0\0\0\0"
                .to_vec();
        want.extend_from_slice(b"Data exists for key.");
        assert_eq!(&out[..], &want[..]);
    }

    #[test]
    fn getk_hit_and_miss_layouts() {
        let r = req(opcode::GETK, false, b"key");
        let mut out = BytesMut::new();
        get_hit(&mut out, &r, true, 0xdeadbeef, 7, b"val");
        let h = Header::decode(&out).unwrap();
        assert_eq!(
            (h.magic, h.opcode, h.keylen, h.extlen, h.bodylen, h.cas),
            (0x81, 0x0c, 3, 4, 10, 7)
        );
        assert_eq!(&out[24..], b"\xde\xad\xbe\xefkeyval");

        out.clear();
        get_miss(&mut out, &r, true);
        let h = Header::decode(&out).unwrap();
        assert_eq!((h.status, h.keylen, h.extlen, h.bodylen), (1, 3, 0, 3));
        assert_eq!(&out[24..], b"key");

        out.clear();
        get_miss(&mut out, &req(opcode::GETKQ, true, b"key"), true);
        assert!(out.is_empty(), "B-5: a quiet miss is silent");
    }

    #[test]
    fn config_get_layout() {
        let mut out = BytesMut::new();
        config(
            &mut out,
            &req(opcode::CONFIG_GET, false, b"cluster"),
            0,
            b"1\nh|i|1\n",
        );
        let mut want =
            b"\x81\x60\x00\x00\x04\x00\x00\x00\x00\x00\x00\x0c\x01\x02\x03\x04\0\0\0\0\0\0\0\0"
                .to_vec();
        want.extend_from_slice(b"\0\0\0\0");
        want.extend_from_slice(b"1\nh|i|1\n");
        assert_eq!(&out[..], &want[..]);
    }

    #[test]
    fn stats_terminator() {
        let mut out = BytesMut::new();
        encode_stats(&mut out, 9, &[("pid", b"1".to_vec())]);
        let h = Header::decode(&out).unwrap();
        assert_eq!((h.opcode, h.keylen, h.bodylen, h.opaque), (0x10, 3, 4, 9));
        assert_eq!(&out[24..28], b"pid1");
        let t = Header::decode(&out[28..]).unwrap();
        assert_eq!((t.opcode, t.keylen, t.bodylen, t.opaque), (0x10, 0, 0, 9));
        assert_eq!(out.len(), 28 + 24);
    }
}
