//! Request opcodes (memcached 1.6.18 `protocol_binary.h`, protocol.md §1.7).
//!
//! Quiet variants ("…Q") suppress the nominal reply (B-5): a get miss, or
//! the success of a mutation. Errors are always answered. Responses carry
//! the opcode exactly as it was received.

pub const GET: u8 = 0x00;
pub const SET: u8 = 0x01;
pub const ADD: u8 = 0x02;
pub const REPLACE: u8 = 0x03;
pub const DELETE: u8 = 0x04;
pub const INCREMENT: u8 = 0x05;
pub const DECREMENT: u8 = 0x06;
pub const QUIT: u8 = 0x07;
pub const FLUSH: u8 = 0x08;
pub const GETQ: u8 = 0x09;
pub const NOOP: u8 = 0x0a;
pub const VERSION: u8 = 0x0b;
pub const GETK: u8 = 0x0c;
pub const GETKQ: u8 = 0x0d;
pub const APPEND: u8 = 0x0e;
pub const PREPEND: u8 = 0x0f;
pub const STAT: u8 = 0x10;
pub const SETQ: u8 = 0x11;
pub const ADDQ: u8 = 0x12;
pub const REPLACEQ: u8 = 0x13;
pub const DELETEQ: u8 = 0x14;
pub const INCREMENTQ: u8 = 0x15;
pub const DECREMENTQ: u8 = 0x16;
pub const QUITQ: u8 = 0x17;
pub const FLUSHQ: u8 = 0x18;
pub const APPENDQ: u8 = 0x19;
pub const PREPENDQ: u8 = 0x1a;
/// In the spec, but memcached 1.6 does not implement it: answered 0x81.
pub const VERBOSITY: u8 = 0x1b;
pub const TOUCH: u8 = 0x1c;
pub const GAT: u8 = 0x1d;
pub const GATQ: u8 = 0x1e;
pub const SASL_LIST_MECHS: u8 = 0x20;
pub const SASL_AUTH: u8 = 0x21;
pub const SASL_STEP: u8 = 0x22;
pub const GATK: u8 = 0x23;
pub const GATKQ: u8 = 0x24;
/// First and last of the range operations (RGet … RDecrQ): not implemented
/// by memcached, answered 0x81.
pub const RGET: u8 = 0x30;
pub const RDECRQ: u8 = 0x3c;
/// ElastiCache's `config get <key>` (cluster auto-discovery; key
/// `cluster`), not in memcached: the AWS cluster clients send it.
pub const CONFIG_GET: u8 = 0x60;

/// The loud opcode of a quiet one and whether it was quiet
/// (memcached `dispatch_bin_command` folds them the same way).
#[inline]
pub fn unquiet(op: u8) -> (u8, bool) {
    let loud = match op {
        SETQ => SET,
        ADDQ => ADD,
        REPLACEQ => REPLACE,
        DELETEQ => DELETE,
        INCREMENTQ => INCREMENT,
        DECREMENTQ => DECREMENT,
        QUITQ => QUIT,
        FLUSHQ => FLUSH,
        APPENDQ => APPEND,
        PREPENDQ => PREPEND,
        GETQ => GET,
        GETKQ => GETK,
        GATQ => GAT,
        GATKQ => GATK,
        _ => return (op, false),
    };
    (loud, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_variants_fold_to_their_loud_opcode() {
        for (q, l) in [
            (SETQ, SET),
            (ADDQ, ADD),
            (REPLACEQ, REPLACE),
            (DELETEQ, DELETE),
            (INCREMENTQ, INCREMENT),
            (DECREMENTQ, DECREMENT),
            (QUITQ, QUIT),
            (FLUSHQ, FLUSH),
            (APPENDQ, APPEND),
            (PREPENDQ, PREPEND),
            (GETQ, GET),
            (GETKQ, GETK),
            (GATQ, GAT),
            (GATKQ, GATK),
        ] {
            assert_eq!(unquiet(q), (l, true));
            assert_eq!(unquiet(l), (l, false));
        }
        assert_eq!(unquiet(TOUCH), (TOUCH, false));
        assert_eq!(unquiet(0xff), (0xff, false));
    }
}
