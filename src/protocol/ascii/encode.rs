//! Encoders for the variable ASCII reply lines (A-get, A-incr, A-stats,
//! A-version). Fixed lines live in [`crate::protocol::reply`]. Every function
//! appends to `out` (reserving once) and never fails.

use bytes::{BufMut, BytesMut};

use crate::protocol::reply;

/// A-get / A-gets hit: `VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n`.
/// `cas` is `Some` for gets/gats.
#[inline]
pub fn value(out: &mut BytesMut, key: &[u8], flags: u32, data: &[u8], cas: Option<u64>) {
    item(out, b"VALUE ", key, flags, data, cas);
}

/// `<head><key> <flags> <bytes>[ <cas>]\r\n<data>\r\n`: a get hit's item,
/// or under another head (`CONFIG `) the same shape.
#[inline]
fn item(out: &mut BytesMut, head: &[u8], key: &[u8], flags: u32, data: &[u8], cas: Option<u64>) {
    let mut fl = itoa::Buffer::new();
    let fl = fl.format(flags).as_bytes();
    let mut ln = itoa::Buffer::new();
    let ln = ln.format(data.len()).as_bytes();
    let mut cb = itoa::Buffer::new();
    let cs: &[u8] = match cas {
        Some(c) => cb.format(c).as_bytes(),
        None => b"",
    };
    // head key ' ' flags ' ' len [' ' cas] "\r\n" data "\r\n"
    let total = head.len()
        + key.len()
        + 1
        + fl.len()
        + 1
        + ln.len()
        + cas.map_or(0, |_| 1 + cs.len())
        + 2
        + data.len()
        + 2;
    out.reserve(total);
    out.put_slice(head);
    out.put_slice(key);
    out.put_u8(b' ');
    out.put_slice(fl);
    out.put_u8(b' ');
    out.put_slice(ln);
    if cas.is_some() {
        out.put_u8(b' ');
        out.put_slice(cs);
    }
    out.put_slice(b"\r\n");
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// `END\r\n`, the terminator of get/gets/gat/gats and stats output.
#[inline]
pub fn end(out: &mut BytesMut) {
    out.put_slice(reply::END);
}

/// A-incr / A-decr result: `<n>\r\n`.
#[inline]
pub fn number(out: &mut BytesMut, n: u64) {
    let mut b = itoa::Buffer::new();
    let s = b.format(n).as_bytes();
    out.reserve(s.len() + 2);
    out.put_slice(s);
    out.put_slice(b"\r\n");
}

/// A-stats line: `STAT <name> <value>\r\n`.
#[inline]
pub fn stat(out: &mut BytesMut, name: &str, value: &[u8]) {
    out.reserve(5 + name.len() + 1 + value.len() + 2);
    out.put_slice(b"STAT ");
    out.put_slice(name.as_bytes());
    out.put_u8(b' ');
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// A-stats line with a decimal value: `STAT <name> <n>\r\n`.
#[inline]
pub fn stat_u64(out: &mut BytesMut, name: &str, n: u64) {
    let mut b = itoa::Buffer::new();
    stat(out, name, b.format(n).as_bytes());
}

/// A-version: `VERSION <version>\r\n`.
#[inline]
pub fn version(out: &mut BytesMut, version: &str) {
    out.reserve(8 + version.len() + 2);
    out.put_slice(b"VERSION ");
    out.put_slice(version.as_bytes());
    out.put_slice(b"\r\n");
}

/// `config get <key>` (ElastiCache auto-discovery):
/// `CONFIG <key> <flags> <bytes>\r\n<data>\r\nEND\r\n`, a one-value get
/// reply under another name.
#[inline]
pub fn config(out: &mut BytesMut, key: &[u8], flags: u32, data: &[u8]) {
    item(out, b"CONFIG ", key, flags, data, None);
    out.put_slice(reply::END);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut b = BytesMut::new();
        f(&mut b);
        b.to_vec()
    }

    #[test]
    fn a_get_value_line() {
        assert_eq!(
            enc(|o| value(o, b"foo", 0, b"fooval", None)),
            b"VALUE foo 0 6\r\nfooval\r\n"
        );
        assert_eq!(
            enc(|o| value(o, b"k", u32::MAX, b"", Some(u64::MAX))),
            b"VALUE k 4294967295 0 18446744073709551615\r\n\r\n"
        );
        assert_eq!(
            enc(|o| value(o, b"k", 2147483648, b"x", Some(0))),
            b"VALUE k 2147483648 1 0\r\nx\r\n"
        );
    }

    #[test]
    fn end_number_stat_version() {
        assert_eq!(enc(end), b"END\r\n");
        assert_eq!(enc(|o| number(o, 0)), b"0\r\n");
        assert_eq!(
            enc(|o| number(o, 9223372036854775808)),
            b"9223372036854775808\r\n"
        );
        assert_eq!(enc(|o| stat(o, "pid", b"42")), b"STAT pid 42\r\n");
        assert_eq!(
            enc(|o| stat_u64(o, "curr_items", 7)),
            b"STAT curr_items 7\r\n"
        );
        assert_eq!(enc(|o| version(o, "1.6.18")), b"VERSION 1.6.18\r\n");
    }

    #[test]
    fn a_config_value() {
        assert_eq!(
            enc(|o| config(o, b"cluster", 0, b"1\nh|10.0.0.1|11211\n")),
            b"CONFIG cluster 0 19\r\n1\nh|10.0.0.1|11211\n\r\nEND\r\n"
        );
        assert_eq!(
            enc(|o| config(o, b"cluster", 0, b"")),
            b"CONFIG cluster 0 0\r\n\r\nEND\r\n"
        );
    }
}
