//! A parsed binary request: the header fields a reply needs (opcode, opaque)
//! plus the decoded operation. Key and value are `Bytes` slices of the
//! connection's read buffer (no copy), so a request can be forwarded to its
//! owner core as is.

use super::opcode;
use crate::protocol::StoreMode;
use bytes::Bytes;

/// What a request asks for, with its extras decoded (memcached's
/// `protocol_binary_request_*` bodies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinCommand {
    /// Get/GetQ/GetK/GetKQ (`touch` None) and GAT/GATQ/GATK/GATKQ (`touch` =
    /// the new raw exptime). `with_key`: the K variants echo the key in the
    /// response, on a miss too.
    Get { with_key: bool, touch: Option<u32> },
    /// Touch: sets a new exptime; a hit is answered with the flags and CAS
    /// but no value.
    Touch { exptime: u32 },
    /// Set/Add/Replace (extras: flags, exptime) and Append/Prepend (no
    /// extras: flags and exptime are 0 and ignored) with their quiet forms.
    /// A non-zero header CAS asks for a CAS match.
    Store {
        mode: StoreMode,
        flags: u32,
        exptime: u32,
    },
    /// A store whose value exceeds the item size limit. Its value is
    /// swallowed by the parser, never buffered (`value` is empty); the
    /// answer is 0x03 `Too large.` and a Set also unlinks the old value, as
    /// memcached does (`process_bin_update`).
    TooLarge { mode: StoreMode },
    /// Delete/DeleteQ; a non-zero header CAS must match.
    Delete,
    /// Increment/Decrement(Q). A missing key is created with `initial`
    /// unless `exptime` is 0xffffffff (then it is a miss).
    Arith {
        incr: bool,
        delta: u64,
        initial: u64,
        exptime: u32,
    },
    /// Quit/QuitQ: answer (unless quiet), then close.
    Quit,
    /// Flush/FlushQ with an optional delay (raw exptime, 0 = now).
    Flush { delay: u32 },
    /// Noop: empty success; the pipeline terminator clients send after quiet ops.
    Noop,
    /// Version: the version string as the value.
    Version,
    /// Stat: `key` names the group ("" = general); one response per stat,
    /// then an empty-key terminator.
    Stat,
    /// SASL list mechanisms.
    SaslListMechs,
    /// SASL auth: `key` = mechanism, `value` = the client's first message.
    SaslAuth,
    /// SASL step: `key` = mechanism, `value` = the client's response.
    SaslStep,
    /// ElastiCache `config get`: `key` names the configuration (`cluster`
    /// for auto-discovery); no extras, no value.
    ConfigGet,
}

/// One complete, validated binary request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinRequest {
    /// The opcode as received (quiet variants included): echoed in every
    /// response header, as memcached does.
    pub opcode: u8,
    /// A quiet variant: the nominal reply (a get miss, a mutation's
    /// success) is not sent; errors are (B-5).
    pub quiet: bool,
    /// Echoed verbatim in every response (B-5).
    pub opaque: u32,
    /// Header CAS: 0 = none, otherwise a compare-and-swap condition for
    /// stores, delete and incr/decr.
    pub cas: u64,
    pub key: Bytes,
    /// The value of a store or SASL request; empty otherwise.
    pub value: Bytes,
    pub cmd: BinCommand,
}

impl BinRequest {
    /// The key that decides the owner shard, for key-addressed requests
    /// (get/gat/touch, stores, delete, incr/decr). `None` for the
    /// server-wide ones the connection answers itself.
    #[inline]
    pub fn key_for_routing(&self) -> Option<&[u8]> {
        match self.cmd {
            BinCommand::Get { .. }
            | BinCommand::Touch { .. }
            | BinCommand::Store { .. }
            | BinCommand::TooLarge { .. }
            | BinCommand::Delete
            | BinCommand::Arith { .. } => Some(&self.key),
            _ => None,
        }
    }

    /// Stat, Flush, Version, Noop, Quit, ConfigGet and the SASL requests:
    /// answered by the connection (which can see every core), never routed
    /// to a shard.
    #[inline]
    pub fn is_server_wide(&self) -> bool {
        self.key_for_routing().is_none()
    }

    /// The loud opcode (quiet variants folded), e.g. `SET` for `SETQ`.
    #[inline]
    pub fn base_opcode(&self) -> u8 {
        opcode::unquiet(self.opcode).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_can_be_forwarded_to_another_core() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<BinRequest>();
    }
}
