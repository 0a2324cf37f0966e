//! Pieces of meta reply lines (M-*): `<code>[ <size>]( <flag>)*\r\n`.
//! Every function appends to `out`; nothing here fails.

use bytes::{BufMut, BytesMut};

use super::base64;

/// The return code, e.g. `HD`, `EN`, `NF`.
#[inline]
pub fn code(out: &mut BytesMut, code: &[u8]) {
    out.put_slice(code);
}

/// `VA <size>` (the value follows the flags and `\r\n`).
#[inline]
pub fn va(out: &mut BytesMut, size: usize) {
    let mut b = itoa::Buffer::new();
    out.put_slice(b"VA ");
    out.put_slice(b.format(size).as_bytes());
}

/// ` <flag><n>`, e.g. ` s2`, ` c123`.
#[inline]
pub fn flag_u64(out: &mut BytesMut, flag: u8, n: u64) {
    let mut b = itoa::Buffer::new();
    out.put_slice(&[b' ', flag]);
    out.put_slice(b.format(n).as_bytes());
}

/// ` <flag><n>` for a signed number (` t-1`).
#[inline]
pub fn flag_i64(out: &mut BytesMut, flag: u8, n: i64) {
    let mut b = itoa::Buffer::new();
    out.put_slice(&[b' ', flag]);
    out.put_slice(b.format(n).as_bytes());
}

/// A bare one-character flag: ` W`, ` X`, ` Z`.
#[inline]
pub fn flag(out: &mut BytesMut, flag: u8) {
    out.put_slice(&[b' ', flag]);
}

/// `META_KEY`: ` k<key>`, or ` k<base64 key> b` for a binary (`b`) key.
#[inline]
pub fn key(out: &mut BytesMut, key: &[u8], base64: bool) {
    out.put_slice(b" k");
    if base64 {
        out.reserve(base64::encoded_len(key.len()) + 2);
        base64::encode_into(key, out);
        out.put_slice(b" b");
    } else {
        out.put_slice(key);
    }
}

/// The opaque token, echoed verbatim (`O` included): ` Oabc`.
#[inline]
pub fn opaque(out: &mut BytesMut, token: &[u8]) {
    out.put_u8(b' ');
    out.put_slice(token);
}

/// Line end.
#[inline]
pub fn crlf(out: &mut BytesMut) {
    out.put_slice(b"\r\n");
}

/// A value block: `<data>\r\n`.
#[inline]
pub fn data(out: &mut BytesMut, data: &[u8]) {
    out.reserve(data.len() + 2);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces() {
        let mut o = BytesMut::new();
        va(&mut o, 2);
        flag_u64(&mut o, b's', 2);
        flag_i64(&mut o, b't', -1);
        key(&mut o, "テスト".as_bytes(), true);
        key(&mut o, b"foo", false);
        opaque(&mut o, b"Oabc");
        flag(&mut o, b'W');
        crlf(&mut o);
        data(&mut o, b"hi");
        assert_eq!(&o[..], b"VA 2 s2 t-1 k44OG44K544OI b kfoo Oabc W\r\nhi\r\n");
        let mut o = BytesMut::new();
        code(&mut o, b"HD");
        crlf(&mut o);
        assert_eq!(&o[..], b"HD\r\n");
    }
}
