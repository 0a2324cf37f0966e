//! What the two text protocols share. Classic commands (`ascii/`) and meta
//! commands (`meta/`) arrive mixed on one connection, are cut from the same
//! lines and answer through the same [`Parsed`] result, and both read
//! numbers as memcached's `util.c` `safe_strto*` do over glibc's `strto*`
//! (base 10).

use crate::protocol::command::Request;

/// What parsing the front of a text connection's read buffer gives: the
/// result of one `AsciiParser::parse` call, whether the line was a classic
/// or a meta command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// One complete request; its bytes were removed from the buffer.
    Request(Request),
    /// More bytes are needed. The buffer is untouched, except that bytes
    /// being swallowed after a too-large storage command may have been removed.
    Incomplete,
    /// Bytes were consumed and this reply line (with `\r\n`) must be sent; the
    /// connection keeps serving. Always one of the [`reply`](crate::protocol::reply) constants.
    Error(&'static [u8]),
    /// Bytes were consumed and nothing is to be sent (an error silenced by
    /// `noreply`, the end of a swallowed data block).
    Silent,
    /// Hang up without a reply (X-6 long line, X-7 HTTP request).
    Close,
}

/// C `isspace` in the "C" locale.
#[inline]
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The strto* scan plus safe_strto*'s end check: optional whitespace, sign,
/// at least one digit, then end of token or a whitespace character.
/// Returns (negative, magnitude or None if it exceeds u64).
#[inline]
fn scan_number(tok: &[u8]) -> Option<(bool, Option<u64>)> {
    let mut i = 0;
    while i < tok.len() && is_c_space(tok[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < tok.len() && (tok[i] == b'+' || tok[i] == b'-') {
        neg = tok[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut mag = Some(0u64);
    while i < tok.len() && tok[i].is_ascii_digit() {
        let d = u64::from(tok[i] - b'0');
        mag = mag
            .and_then(|m| m.checked_mul(10))
            .and_then(|m| m.checked_add(d));
        i += 1;
    }
    if i == start || (i < tok.len() && !is_c_space(tok[i])) {
        return None;
    }
    Some((neg, mag))
}

/// safe_strtoull: strtoull (a `-` negates modulo 2^64) rejecting results that
/// are negative as i64 when the token holds a `-`.
#[inline]
pub fn safe_strtoull(tok: &[u8]) -> Option<u64> {
    let (neg, mag) = scan_number(tok)?;
    let v = mag?; // ERANGE
    let v = if neg { v.wrapping_neg() } else { v };
    if (v as i64) < 0 && tok.contains(&b'-') {
        return None;
    }
    Some(v)
}

/// safe_strtoul into a `uint32_t`: the same as [`safe_strtoull`] (unsigned
/// long is 64-bit), then truncated to the low 32 bits.
#[inline]
pub fn safe_strtoul(tok: &[u8]) -> Option<u32> {
    safe_strtoull(tok).map(|v| v as u32)
}

/// safe_strtol into an `int32_t`: strtol (64-bit long, ERANGE outside i64),
/// then truncated to the low 32 bits.
#[inline]
pub fn safe_strtol(tok: &[u8]) -> Option<i32> {
    let (neg, mag) = scan_number(tok)?;
    let m = mag?;
    let v: i64 = if neg {
        if m > 1u64 << 63 {
            return None;
        }
        (m as i64).wrapping_neg()
    } else {
        i64::try_from(m).ok()?
    };
    Some(v as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_strtoull_matches_glibc() {
        assert_eq!(safe_strtoull(b"0"), Some(0));
        assert_eq!(safe_strtoull(b"+7"), Some(7));
        assert_eq!(safe_strtoull(b"-0"), Some(0));
        assert_eq!(safe_strtoull(b"-1"), None);
        // strtoull negates modulo 2^64; a small result passes the sign check.
        assert_eq!(safe_strtoull(b"-18446744073709551615"), Some(1));
        assert_eq!(
            safe_strtoull(b"-9223372036854775809"),
            Some(9223372036854775807)
        );
        assert_eq!(safe_strtoull(b"18446744073709551616"), None);
        assert_eq!(safe_strtoull(b""), None);
        assert_eq!(safe_strtoull(b"+"), None);
        assert_eq!(safe_strtoull(b" \t5\rjunk"), Some(5));
        assert_eq!(safe_strtoull(b"5junk"), None);
        assert_eq!(safe_strtoull(b"18446744073709551615\t-"), None);
        assert_eq!(safe_strtol(b"-2147483649"), Some(i32::MAX));
        assert_eq!(safe_strtol(b"-9223372036854775808"), Some(0));
        assert_eq!(safe_strtol(b"-9223372036854775809"), None);
        assert_eq!(safe_strtol(b"9223372036854775808"), None);
        assert_eq!(safe_strtoul(b"4294967297"), Some(1));
    }

    // ---- A-touch -----------------------------------------------------------
}
