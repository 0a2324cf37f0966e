//! The connection side of forwarding: requests for keys another core owns
//! are queued per owner while a read's requests are parsed, sent as one
//! batch per owner, and their replies spliced back in request order.
//!
//! The queues live in a `Forwarding` taken from the core's pool on the first
//! forward of a read and given back after the round, and replies are
//! collected in the core's `waiters` slab only while a round is out: an idle
//! connection holds none of it.

use super::core::Core;
use super::mesh::{Batch, RemoteOp, Replies};
use bytes::{BufMut, BytesMut};
use std::cell::Cell;
use std::task::{Poll, Waker};

/// Where a forwarded op's reply goes: at byte `pos` of the reply buffer.
struct Splice {
    pos: usize,
    dest: usize,
    index: usize,
}

/// One read's forwarded ops, per owner core, and where their replies go.
#[derive(Default)]
pub struct Forwarding {
    batches: Vec<Vec<RemoteOp>>,
    splices: Vec<Splice>,
    got: Vec<Replies>,
    merged: BytesMut,
    /// Reply buffers that came back, for the next batches.
    bufs: Vec<(BytesMut, Vec<u32>)>,
    /// Ops queued for this round whose reply may carry a value.
    value_ops: usize,
}

/// A round in flight: the replies that have come back for it.
pub struct Waiting {
    round: u64,
    expected: usize,
    got: Vec<Replies>,
    waker: Option<Waker>,
}

thread_local! {
    /// Round numbers: a reply for a round that was abandoned never lands in
    /// a later round that reuses its slot.
    static ROUNDS: Cell<u64> = const { Cell::new(0) };
}

/// Hands a reply to the round waiting for it (called by the reply router).
pub fn deliver(core: &Core, r: Replies) {
    let mut waiters = core.waiters.borrow_mut();
    if let Some(w) = waiters.get_mut(r.slot) {
        if w.round == r.round {
            w.got.push(r);
            if w.got.len() >= w.expected {
                if let Some(waker) = w.waker.take() {
                    waker.wake();
                }
            }
        }
    }
}

impl Forwarding {
    /// Queues `op` for `dest`; its reply goes at byte `pos` of the replies.
    pub fn push(&mut self, n: usize, dest: usize, op: RemoteOp, pos: usize) {
        if self.batches.len() < n {
            self.batches.resize_with(n, Vec::new);
        }
        let index = self.batches[dest].len();
        self.value_ops += usize::from(op.may_carry_value());
        self.batches[dest].push(op);
        self.splices.push(Splice { pos, dest, index });
    }

    /// Ops queued so far whose replies may carry values.
    pub fn value_ops(&self) -> usize {
        self.value_ops
    }

    /// Sends the queued batches, waits for every reply and splices them into
    /// `out` in request order.
    pub async fn round(&mut self, core: &Core, cache: u32, out: &mut BytesMut) {
        self.value_ops = 0;
        if self.splices.is_empty() {
            return;
        }
        let Some(senders) = core.requests.as_ref() else {
            self.splices.clear();
            return;
        };
        let round = ROUNDS.with(|r| {
            r.set(r.get() + 1);
            r.get()
        });
        let slot = core.waiters.borrow_mut().insert(Waiting {
            round,
            expected: usize::MAX,
            got: std::mem::take(&mut self.got),
            waker: None,
        });
        let mut expected = 0;
        for dest in 0..self.batches.len() {
            if self.batches[dest].is_empty() {
                continue;
            }
            let ops = std::mem::take(&mut self.batches[dest]);
            let (data, ends) = self.bufs.pop().unwrap_or_default();
            let batch = Batch {
                reply_to: core.reply_id,
                slot,
                round,
                cache,
                ops,
                data,
                ends,
            };
            if senders.send_to(dest, batch).await.is_ok() {
                expected += 1;
            }
        }
        core.waiters.borrow_mut()[slot].expected = expected;
        std::future::poll_fn(|cx| {
            let mut waiters = core.waiters.borrow_mut();
            let w = &mut waiters[slot];
            if w.got.len() >= w.expected {
                Poll::Ready(())
            } else {
                w.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        self.got = core.waiters.borrow_mut().remove(slot).got;
        self.splice(out);
    }

    fn splice(&mut self, out: &mut BytesMut) {
        let extra: usize = self.got.iter().map(|r| r.data.len()).sum();
        let mut merged = std::mem::take(&mut self.merged);
        merged.clear();
        merged.reserve(out.len() + extra);
        let mut last = 0;
        for s in self.splices.drain(..) {
            merged.put_slice(&out[last..s.pos]);
            last = s.pos;
            if let Some(r) = self.got.iter().find(|r| r.from == s.dest) {
                let start = if s.index == 0 {
                    0
                } else {
                    r.ends[s.index - 1] as usize
                };
                let end = r.ends.get(s.index).map_or(start, |e| *e as usize);
                merged.put_slice(&r.data[start..end]);
            }
        }
        merged.put_slice(&out[last..]);
        std::mem::swap(out, &mut merged);
        merged.clear();
        self.merged = merged;
        // The batches' queues and reply buffers come home for reuse.
        for r in self.got.drain(..) {
            if self.batches[r.from].capacity() == 0 {
                self.batches[r.from] = r.ops;
            }
            // A buffer a huge reply grew is not kept.
            if r.data.capacity() <= 64 * 1024 {
                self.bufs.push((r.data, r.ends));
            }
        }
    }
}
