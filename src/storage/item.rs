//! The packed item header: how one item is laid out in segment memory.
//!
//! Per-item overhead is the point of this engine, so the header is variable-length and most
//! items pay 6 bytes (memcached pays 48–56):
//!
//! ```text
//! [bits u8][key_len u8][access u16 LE][exptime u32 LE, only if HAS_EXP][key]
//! [value_len varint][cas varint][flags varint, only if HAS_FLAGS][value]
//! ```
//!
//! * `bits` holds the per-item meta-protocol state (fetched, stale, win-token sent), the `DEAD`
//!   mark that lets segment scans skip overwritten/deleted items without an index lookup, and the
//!   presence bits for the optional fields.
//! * The fixed-size fields (`bits`, `access`, `exptime`) come first so they can be rewritten in
//!   place (get, touch, stale/win); the varints never change after the item is written, except
//!   when compaction re-encodes the CAS field while moving the item (see `evict.rs`).
//! * The key sits right after the fixed part so a lookup can compare it without decoding varints.
//! * `cas` is normally the delta of the item's CAS *counter* against the base counter of its
//!   4 KiB page, kept by the segment: the first item stored in a page sets the base and
//!   consecutive stores land in the same page, so the delta is usually < 128 and takes one byte.
//!   A CAS that can't be expressed that way (caller-supplied and outside this shard's sequence,
//!   or older than the page base because the item was moved) is stored absolute (`CAS_ABS`).
//! * `access` is the last access time in seconds relative to the segment's `time_base`,
//!   saturating; memcached's `mg ... l`/`h` need only approximate values.

/// Item has been read by `get` since it was stored (memcached `ITEM_FETCHED`).
pub(crate) const FETCHED: u8 = 1 << 0;
/// Meta-protocol stale flag (`md ... I`, `mg` returns `X`).
pub(crate) const STALE: u8 = 1 << 1;
/// Meta-protocol "win token already sent" flag (`mg` returns `W` once, then `Z`).
pub(crate) const WIN: u8 = 1 << 2;
/// Item was overwritten, deleted, expired or evicted; its bytes are garbage until compaction.
pub(crate) const DEAD: u8 = 1 << 3;
/// A flags varint follows the CAS varint (absent means flags == 0).
pub(crate) const HAS_FLAGS: u8 = 1 << 4;
/// A 4-byte exptime follows the fixed part (absent means exptime == 0, never expires).
pub(crate) const HAS_EXP: u8 = 1 << 5;
/// The CAS varint is the absolute CAS value, not a delta against the page base counter.
pub(crate) const CAS_ABS: u8 = 1 << 6;

/// Bits that describe the item to the client and survive relocation.
pub(crate) const META_BITS: u8 = FETCHED | STALE | WIN;

/// `bits`, `key_len`, `access`.
pub(crate) const FIXED_LEN: usize = 4;
/// Longest u64 LEB128 varint.
pub(crate) const MAX_VARINT_LEN: usize = 10;
/// Worst-case header: fixed + exptime + value_len (u32) + cas (u64) + flags (u32).
pub(crate) const MAX_HEADER_LEN: usize = FIXED_LEN + 4 + 5 + MAX_VARINT_LEN + 5;
/// memcached charges 50 bytes of "item overhead" against `-I`; we mirror its size limit, so the
/// header must never be larger than that allowance or a max-size item would not fit a segment.
pub(crate) const ITEM_SIZE_ALLOWANCE: usize = 50;
/// Keys are at most 250 bytes in every memcached protocol; the length must fit `key_len: u8`.
pub(crate) const MAX_KEY_LEN: usize = 250;

const _: () = assert!(MAX_HEADER_LEN <= ITEM_SIZE_ALLOWANCE);
const _: () = assert!(MAX_KEY_LEN <= u8::MAX as usize);
const _: () = assert!(MAX_HEADER_LEN == 28);

/// How the CAS is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CasField {
    /// `counter - page_base` (never negative).
    Delta(u64),
    /// Absolute caller-supplied CAS.
    Abs(u64),
}

impl CasField {
    fn raw(self) -> u64 {
        match self {
            CasField::Delta(v) | CasField::Abs(v) => v,
        }
    }
}

#[inline]
pub(crate) fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Writes `v` as LEB128 at `buf[0..]`; returns bytes written. `buf` must hold `varint_len(v)`.
#[inline]
pub(crate) fn put_varint(buf: &mut [u8], mut v: u64) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        buf[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    buf[i] = v as u8;
    i + 1
}

/// Reads a LEB128 varint at `buf[*pos..]`, advancing `pos`. Input is always our own encoding;
/// a truncated varint (impossible unless memory is corrupt) reads as what was seen so far.
#[inline]
pub(crate) fn get_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0u32;
    while let Some(&b) = buf.get(*pos) {
        *pos += 1;
        v |= ((b & 0x7f) as u64) << (shift & 63);
        if b < 0x80 {
            break;
        }
        shift += 7;
    }
    v
}

/// Smallest filler item (see `write_filler`).
pub(crate) const MIN_FILLER: usize = FIXED_LEN + 2;

/// Writes a dead "filler" item of exactly `len` (≥ `MIN_FILLER`) bytes at `buf[0..]`, so a
/// segment region of garbage can still be walked item by item (a paused compaction leaves one).
pub(crate) fn write_filler(buf: &mut [u8], len: usize) {
    debug_assert!(len >= MIN_FILLER);
    buf[..FIXED_LEN].copy_from_slice(&[DEAD, 0, 0, 0]);
    // value_len varint, padded to a fixed width so the total comes out exact; then cas = 0.
    let (width, value_len) = if len - MIN_FILLER < 0x80 {
        (1, len - MIN_FILLER)
    } else {
        (5, len - FIXED_LEN - 6)
    };
    let mut v = value_len as u64;
    for b in &mut buf[FIXED_LEN..FIXED_LEN + width - 1] {
        *b = (v as u8 & 0x7f) | 0x80;
        v >>= 7;
    }
    buf[FIXED_LEN + width - 1] = v as u8;
    buf[FIXED_LEN + width] = 0;
}

/// Everything needed to write one item.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    /// Only `META_BITS` are taken from here; presence bits are derived.
    pub bits: u8,
    pub access: u16,
    pub exptime: u32,
    /// Store the exptime field even when it is 0, so a later touch can set one in place.
    pub force_exp: bool,
    pub key_len: usize,
    pub value_len: usize,
    pub cas: CasField,
    pub flags: u32,
}

impl Header {
    #[inline]
    fn bits(&self) -> u8 {
        let mut b = self.bits & META_BITS;
        if self.flags != 0 {
            b |= HAS_FLAGS;
        }
        if self.exptime != 0 || self.force_exp {
            b |= HAS_EXP;
        }
        if matches!(self.cas, CasField::Abs(_)) {
            b |= CAS_ABS;
        }
        b
    }

    /// Bytes before the key.
    #[inline]
    pub fn prefix_len(&self) -> usize {
        FIXED_LEN + if self.bits() & HAS_EXP != 0 { 4 } else { 0 }
    }

    /// Bytes between key and value.
    #[inline]
    pub fn suffix_len(&self) -> usize {
        varint_len(self.value_len as u64)
            + varint_len(self.cas.raw())
            + if self.flags != 0 {
                varint_len(self.flags as u64)
            } else {
                0
            }
    }

    /// Total item length: header + key + value.
    #[inline]
    pub fn item_len(&self) -> usize {
        self.prefix_len() + self.key_len + self.suffix_len() + self.value_len
    }

    /// Writes the part before the key into `buf`; returns its length.
    #[inline]
    pub fn write_prefix(&self, buf: &mut [u8]) -> usize {
        let bits = self.bits();
        buf[0] = bits;
        buf[1] = self.key_len as u8;
        buf[2..4].copy_from_slice(&self.access.to_le_bytes());
        if bits & HAS_EXP != 0 {
            buf[4..8].copy_from_slice(&self.exptime.to_le_bytes());
            8
        } else {
            FIXED_LEN
        }
    }

    /// Writes the part between key and value into `buf`; returns its length.
    #[inline]
    pub fn write_suffix(&self, buf: &mut [u8]) -> usize {
        let mut n = put_varint(buf, self.value_len as u64);
        n += put_varint(&mut buf[n..], self.cas.raw());
        if self.flags != 0 {
            n += put_varint(&mut buf[n..], self.flags as u64);
        }
        n
    }

    /// Writes a whole item (header, key, value parts) at `buf[0..]`; returns its length.
    pub fn write(&self, buf: &mut [u8], key: &[u8], value_parts: &[&[u8]]) -> usize {
        let mut n = self.write_prefix(buf);
        buf[n..n + key.len()].copy_from_slice(key);
        n += key.len();
        n += self.write_suffix(&mut buf[n..]);
        for part in value_parts {
            buf[n..n + part.len()].copy_from_slice(part);
            n += part.len();
        }
        n
    }
}

/// Offset of the key within an item, from its `bits` byte.
#[inline]
pub(crate) fn key_offset(bits: u8) -> usize {
    FIXED_LEN + if bits & HAS_EXP != 0 { 4 } else { 0 }
}

/// The key of the item starting at `item[0]` (cheap: no varints decoded).
#[cfg(test)]
pub(crate) fn key(item: &[u8]) -> &[u8] {
    let off = key_offset(item[0]);
    &item[off..off + item[1] as usize]
}

/// Whether the item starting at `item[0]` has key `key`. Keys are short, so compare inline
/// rather than calling `memcmp`.
#[inline]
pub(crate) fn key_eq(item: &[u8], key: &[u8]) -> bool {
    if item[1] as usize != key.len() {
        return false;
    }
    let off = key_offset(item[0]);
    let stored = &item[off..off + key.len()];
    let n = key.len();
    if n >= 8 {
        // Two overlapping 8-byte words cover keys of 8..=16 bytes; longer keys loop.
        let word =
            |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        let mut i = 0;
        while i + 8 < n {
            if word(stored, i) != word(key, i) {
                return false;
            }
            i += 8;
        }
        word(stored, n - 8) == word(key, n - 8)
    } else {
        stored == key
    }
}

/// A decoded item header (offsets relative to the item start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct View {
    pub bits: u8,
    pub access: u16,
    pub exptime: u32,
    pub key_off: usize,
    pub key_len: usize,
    pub cas: CasField,
    pub flags: u32,
    pub value_off: usize,
    pub value_len: usize,
}

impl View {
    /// Decodes the header of the item starting at `item[0]`.
    #[inline]
    pub fn decode(item: &[u8]) -> View {
        let bits = item[0];
        let key_len = item[1] as usize;
        let access = u16::from_le_bytes([item[2], item[3]]);
        let (exptime, key_off) = if bits & HAS_EXP != 0 {
            (u32::from_le_bytes([item[4], item[5], item[6], item[7]]), 8)
        } else {
            (0, FIXED_LEN)
        };
        let mut pos = key_off + key_len;
        let value_len = get_varint(item, &mut pos) as usize;
        let raw = get_varint(item, &mut pos);
        let cas = if bits & CAS_ABS != 0 {
            CasField::Abs(raw)
        } else {
            CasField::Delta(raw)
        };
        let flags = if bits & HAS_FLAGS != 0 {
            get_varint(item, &mut pos) as u32
        } else {
            0
        };
        View {
            bits,
            access,
            exptime,
            key_off,
            key_len,
            cas,
            flags,
            value_off: pos,
            value_len,
        }
    }

    /// Total length of the item in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.value_off + self.value_len
    }
}

/// Worst-case length of an item, before its final CAS encoding is known.
#[inline]
pub(crate) fn max_item_len(key_len: usize, value_len: usize, flags: u32, has_exp: bool) -> usize {
    FIXED_LEN
        + if has_exp { 4 } else { 0 }
        + key_len
        + varint_len(value_len as u64)
        + MAX_VARINT_LEN
        + if flags != 0 {
            varint_len(flags as u64)
        } else {
            0
        }
        + value_len
}

/// Offset of the `access` field within an item.
pub(crate) const ACCESS_OFF: usize = 2;
/// Offset of the `exptime` field within an item (only when `HAS_EXP`).
pub(crate) const EXPTIME_OFF: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_roundtrip() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16383,
            16384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut buf = [0u8; 10];
            let n = put_varint(&mut buf, v);
            assert_eq!(n, varint_len(v));
            let mut pos = 0;
            assert_eq!(get_varint(&buf, &mut pos), v);
            assert_eq!(pos, n);
        }
    }

    #[test]
    fn typical_item_header_is_six_bytes() {
        let h = Header {
            bits: 0,
            access: 0,
            exptime: 0,
            force_exp: false,
            key_len: 16,
            value_len: 32,
            cas: CasField::Delta(5),
            flags: 0,
        };
        assert_eq!(h.item_len() - 16 - 32, 6);
    }

    #[test]
    fn encode_decode_roundtrip() {
        let key = b"some-key";
        let parts: [&[u8]; 2] = [b"hello ", b"world"];
        for (flags, exptime, cas, bits) in [
            (0u32, 0u32, CasField::Delta(0), 0u8),
            (7, 1234, CasField::Delta(300), FETCHED | WIN),
            (u32::MAX, u32::MAX, CasField::Abs(u64::MAX), STALE),
        ] {
            let h = Header {
                bits,
                access: 77,
                exptime,
                force_exp: false,
                key_len: key.len(),
                value_len: 11,
                cas,
                flags,
            };
            let mut buf = vec![0u8; MAX_HEADER_LEN + 64];
            let n = h.write(&mut buf, key, &parts);
            assert_eq!(n, h.item_len());
            assert!(n <= max_item_len(key.len(), 11, flags, exptime != 0));
            let v = View::decode(&buf);
            assert_eq!(v.len(), n);
            assert_eq!(v.bits & META_BITS, bits);
            assert_eq!(v.access, 77);
            assert_eq!(v.exptime, exptime);
            assert_eq!(v.cas, cas);
            assert_eq!(v.flags, flags);
            assert_eq!(&buf[v.key_off..v.key_off + v.key_len], key);
            assert_eq!(&buf[v.value_off..v.value_off + v.value_len], b"hello world");
            assert_eq!(super::key(&buf), key);
            assert!(key_eq(&buf, key));
            assert!(!key_eq(&buf, b"some-kez"));
            assert!(!key_eq(&buf, b"some-ke"));
        }
    }

    #[test]
    fn filler_has_exact_length() {
        for len in [MIN_FILLER, 7, 133, 134, 135, 1000, 1 << 20] {
            let mut buf = vec![0xAAu8; len + 8];
            write_filler(&mut buf, len);
            let v = View::decode(&buf);
            assert_eq!(v.len(), len, "filler {len}");
            assert_ne!(v.bits & DEAD, 0);
        }
    }

    #[test]
    fn key_eq_all_lengths() {
        for len in 0..=250usize {
            let key: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
            let h = Header {
                bits: 0,
                access: 0,
                exptime: 0,
                force_exp: len % 2 == 0,
                key_len: len,
                value_len: 0,
                cas: CasField::Delta(0),
                flags: 0,
            };
            let mut buf = vec![0u8; 300];
            h.write(&mut buf, &key, &[]);
            assert!(key_eq(&buf, &key));
            for i in 0..len {
                let mut other = key.clone();
                other[i] ^= 0x40;
                assert!(!key_eq(&buf, &other), "len {len} differs at {i}");
            }
            if len > 0 {
                assert!(!key_eq(&buf, &key[..len - 1]));
            }
        }
    }

    #[test]
    fn forced_exptime_field_is_present_with_zero() {
        let h = Header {
            bits: 0,
            access: 0,
            exptime: 0,
            force_exp: true,
            key_len: 1,
            value_len: 0,
            cas: CasField::Delta(0),
            flags: 0,
        };
        let mut buf = [0u8; 64];
        h.write(&mut buf, b"k", &[]);
        let v = View::decode(&buf);
        assert_ne!(v.bits & HAS_EXP, 0);
        assert_eq!(v.exptime, 0);
        assert_eq!(key(&buf), b"k");
    }
}
