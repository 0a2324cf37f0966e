//! Messages between cores. A connection sends each owner core at most one
//! `Batch` per read of its socket; the owner answers with one `Replies`
//! holding every op's encoded reply back to back (`ends` marks the cuts), so
//! a cross-core hop is paid per batch, not per key.

use crate::protocol::Request;
use bytes::{Bytes, BytesMut};

/// One operation forwarded to its owner core.
#[derive(Debug)]
pub enum RemoteOp {
    /// A single-key request (set, delete, incr, …) executed as-is.
    Single(Request),
    /// A key-addressed binary request.
    Binary(crate::protocol::binary::BinRequest),
    /// One key of a multi-key get; the reply is its VALUE block or nothing.
    GetKey {
        key: Bytes,
        with_cas: bool,
        touch: Option<i64>,
    },
    /// flush_all reaching every core; `at` is absolute server time.
    Flush { at: u32 },
    /// cache_memlimit: this core's new share of the memory limit.
    MemLimit { bytes: usize },
}

impl RemoteOp {
    /// Whether the reply may carry a value (up to the item size limit). A
    /// round carries a bounded number of these, so what comes back from
    /// the owners is bounded too (see `conn::forward_value_cap`).
    pub fn may_carry_value(&self) -> bool {
        use crate::protocol::binary::opcode::{self, unquiet};
        use crate::protocol::Command;
        match self {
            RemoteOp::GetKey { .. } => true,
            RemoteOp::Single(r) => matches!(r.cmd, Command::Get { .. } | Command::Meta(_)),
            RemoteOp::Binary(r) => matches!(
                unquiet(r.opcode).0,
                opcode::GET | opcode::GETK | opcode::GAT | opcode::GATK
            ),
            RemoteOp::Flush { .. } | RemoteOp::MemLimit { .. } => false,
        }
    }
}

/// A batch of ops from one connection to one owner core.
#[derive(Debug)]
pub struct Batch {
    /// Index of the sending core on the reply mesh.
    pub reply_to: usize,
    /// The sender's `waiters` slot for this round (routes the reply back).
    pub slot: usize,
    /// The round's number: a stale reply never lands in a reused slot.
    pub round: u64,
    /// The connection's cache: every op runs on the owner's shard of it.
    pub cache: u32,
    pub ops: Vec<RemoteOp>,
    /// Where the owner writes the replies: the sender's own buffers, sent
    /// back in `Replies` and reused, so a forwarded batch allocates nothing
    /// and nothing is freed on the other core.
    pub data: BytesMut,
    pub ends: Vec<u32>,
}

/// Encoded replies for one `Batch`.
#[derive(Debug)]
pub struct Replies {
    pub slot: usize,
    pub round: u64,
    /// Owner index (request-mesh id) of the core that executed the batch.
    pub from: usize,
    pub data: BytesMut,
    /// `data[ends[i-1]..ends[i]]` is op i's reply.
    pub ends: Vec<u32>,
    /// The batch's op queue, emptied, back to the sender for reuse.
    pub ops: Vec<RemoteOp>,
}
