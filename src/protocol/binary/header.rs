//! The 24-byte packet header shared by requests and responses (protocol.md
//! §1.7), all fields in network byte order:
//!
//! ```text
//! byte  0      1       2..4    4       5         6..8            8..12    12..16  16..24
//!       magic  opcode  keylen  extlen  datatype  vbucket/status  bodylen  opaque  cas
//! ```
//!
//! `bodylen` counts extras + key + value. The opaque is echoed verbatim.

use bytes::{BufMut, BytesMut};

/// Length of every request and response header.
pub const HEADER_LEN: usize = 24;
/// Magic byte of a request.
pub const REQ_MAGIC: u8 = 0x80;
/// Magic byte of a response.
pub const RES_MAGIC: u8 = 0x81;

/// A decoded header (request or response; `status` is the request's
/// vbucket/reserved field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub magic: u8,
    pub opcode: u8,
    pub keylen: u16,
    pub extlen: u8,
    pub datatype: u8,
    pub status: u16,
    pub bodylen: u32,
    pub opaque: u32,
    pub cas: u64,
}

impl Header {
    /// Decodes the first [`HEADER_LEN`] bytes of `b`; `None` if there are fewer.
    #[inline]
    pub fn decode(b: &[u8]) -> Option<Header> {
        let b: &[u8; HEADER_LEN] = b.get(..HEADER_LEN)?.try_into().ok()?;
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Some(Header {
            magic: b[0],
            opcode: b[1],
            keylen: u16_at(2),
            extlen: b[4],
            datatype: b[5],
            status: u16_at(6),
            bodylen: u32_at(8),
            opaque: u32_at(12),
            cas: (u32_at(16) as u64) << 32 | u32_at(20) as u64,
        })
    }

    /// Appends the 24 encoded bytes.
    #[inline]
    pub fn encode(&self, out: &mut BytesMut) {
        out.reserve(HEADER_LEN);
        out.put_u8(self.magic);
        out.put_u8(self.opcode);
        out.put_u16(self.keylen);
        out.put_u8(self.extlen);
        out.put_u8(self.datatype);
        out.put_u16(self.status);
        out.put_u32(self.bodylen);
        out.put_u32(self.opaque);
        out.put_u64(self.cas);
    }

    /// A response header (magic 0x81, datatype 0).
    #[inline]
    pub fn response(
        opcode: u8,
        status: u16,
        extlen: u8,
        keylen: u16,
        bodylen: u32,
        opaque: u32,
        cas: u64,
    ) -> Header {
        Header {
            magic: RES_MAGIC,
            opcode,
            keylen,
            extlen,
            datatype: 0,
            status,
            bodylen,
            opaque,
            cas,
        }
    }

    /// Bytes of value in the body: `bodylen - extlen - keylen`, 0 when the
    /// header is inconsistent.
    #[inline]
    pub fn value_len(&self) -> usize {
        (self.bodylen as usize).saturating_sub(self.extlen as usize + self.keylen as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = Header {
            magic: REQ_MAGIC,
            opcode: 0x01,
            keylen: 0x0102,
            extlen: 8,
            datatype: 0,
            status: 0xbeef,
            bodylen: 0x0a0b0c0d,
            opaque: 0xdeadbeef,
            cas: 0x0102030405060708,
        };
        let mut out = BytesMut::new();
        h.encode(&mut out);
        assert_eq!(out.len(), HEADER_LEN);
        assert_eq!(&out[..], b"\x80\x01\x01\x02\x08\x00\xbe\xef\x0a\x0b\x0c\x0d\xde\xad\xbe\xef\x01\x02\x03\x04\x05\x06\x07\x08");
        assert_eq!(Header::decode(&out), Some(h));
        assert_eq!(Header::decode(&out[..23]), None);
    }

    #[test]
    fn value_len_saturates() {
        let mut h = Header::response(0, 0, 8, 3, 20, 0, 0);
        assert_eq!(h.value_len(), 9);
        h.bodylen = 2;
        assert_eq!(h.value_len(), 0);
    }
}
