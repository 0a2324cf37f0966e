//! Base64 for meta `b` keys, behaving exactly like memcached's `base64.c`
//! (RFC 1341 alphabet, `=` padding, no line breaks).
//!
//! Decoding quirks kept from memcached: bytes outside the alphabet are
//! skipped rather than rejected; the number of alphabet bytes must be a
//! non-zero multiple of 4; the first 4-byte block holding `=` ends the input
//! (one `=` drops one byte, two drop two, more is an error). A result of 0
//! bytes is a failure.

const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// memcached's `dtable`: 0x80 marks a byte outside the alphabet; `=` is 0.
const fn decode_table() -> [u8; 256] {
    let mut t = [0x80u8; 256];
    let mut i = 0;
    while i < 64 {
        t[TABLE[i] as usize] = i as u8;
        i += 1;
    }
    t[b'=' as usize] = 0;
    t
}

static DTABLE: [u8; 256] = decode_table();

/// Length of the encoding of `n` bytes.
#[inline]
pub fn encoded_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Appends the base64 encoding of `src` to `out` (memcached `base64_encode`).
pub fn encode_into(src: &[u8], out: &mut impl bytes::BufMut) {
    let mut chunks = src.chunks_exact(3);
    for c in &mut chunks {
        out.put_slice(&[
            TABLE[(c[0] >> 2) as usize],
            TABLE[(((c[0] & 0x03) << 4) | (c[1] >> 4)) as usize],
            TABLE[(((c[1] & 0x0f) << 2) | (c[2] >> 6)) as usize],
            TABLE[(c[2] & 0x3f) as usize],
        ]);
    }
    match *chunks.remainder() {
        [a] => out.put_slice(&[
            TABLE[(a >> 2) as usize],
            TABLE[((a & 0x03) << 4) as usize],
            b'=',
            b'=',
        ]),
        [a, b] => out.put_slice(&[
            TABLE[(a >> 2) as usize],
            TABLE[(((a & 0x03) << 4) | (b >> 4)) as usize],
            TABLE[((b & 0x0f) << 2) as usize],
            b'=',
        ]),
        _ => {}
    }
}

/// Decodes `src` (memcached `base64_decode`); `None` where memcached returns 0.
pub fn decode(src: &[u8]) -> Option<Vec<u8>> {
    let count = src.iter().filter(|&&b| DTABLE[b as usize] != 0x80).count();
    if count == 0 || !count.is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(count / 4 * 3);
    let mut block = [0u8; 4];
    let mut n = 0;
    let mut pad = 0;
    for &b in src {
        let v = DTABLE[b as usize];
        if v == 0x80 {
            continue;
        }
        if b == b'=' {
            pad += 1;
        }
        block[n] = v;
        n += 1;
        if n == 4 {
            out.push((block[0] << 2) | (block[1] >> 4));
            out.push((block[1] << 4) | (block[2] >> 2));
            out.push((block[2] << 6) | block[3]);
            n = 0;
            if pad > 0 {
                match pad {
                    1 => out.truncate(out.len() - 1),
                    2 => out.truncate(out.len() - 2),
                    _ => return None, // invalid padding
                }
                break;
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_into(s, &mut v);
        assert_eq!(v.len(), encoded_len(s.len()));
        v
    }

    #[test]
    fn rfc4648_vectors() {
        for (plain, coded) in [
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(enc(plain.as_bytes()), coded.as_bytes());
            assert_eq!(decode(coded.as_bytes()).unwrap(), plain.as_bytes());
        }
        assert_eq!(enc(b""), b"");
    }

    /// metaget.t "encoded binary keys": "tesuto" in katakana.
    #[test]
    fn m_b_metaget_tesuto() {
        let k = decode(b"44OG44K544OI").unwrap();
        assert_eq!(k, "テスト".as_bytes());
        assert_eq!(enc(&k), b"44OG44K544OI");
    }

    #[test]
    fn memcached_decode_quirks() {
        assert_eq!(decode(b""), None);
        assert_eq!(decode(b"abc"), None, "not a multiple of 4");
        assert_eq!(decode(b"===="), None, "4 pads");
        assert_eq!(decode(b"A==="), None, "3 pads");
        // Bytes outside the alphabet are skipped.
        assert_eq!(decode(b"Zm\x009v!").unwrap(), b"foo");
        // The first padded block ends decoding.
        assert_eq!(decode(b"Zg==Zm9v").unwrap(), b"f");
        // A pad in the middle of a block still drops a byte.
        assert_eq!(decode(b"Z=9v").unwrap().len(), 2);
    }

    #[test]
    fn round_trip_all_lengths() {
        for n in 0..300usize {
            let src: Vec<u8> = (0..n).map(|i| (i * 7 + n) as u8).collect();
            let e = enc(&src);
            if n == 0 {
                assert_eq!(decode(&e), None);
            } else {
                assert_eq!(decode(&e).unwrap(), src);
            }
        }
    }
}
