//! The owner side of forwarding: execute other cores' batches on this core's
//! shard and send each batch's replies back in one message; and route
//! replies that arrive for this core's connections.

use super::core::Core;
use super::mesh::{Batch, RemoteOp, Replies};
use crate::exec::ascii;
use glommio::channels::channel_mesh::{Receivers, Senders};
use std::rc::Rc;

/// One task per peer core draining its batches.
pub fn spawn_servers(core: Rc<Core>, mut rx: Receivers<Batch>, tx: Senders<Replies>) {
    let tx = Rc::new(tx);
    for (_, stream) in rx.streams() {
        let (core, tx) = (core.clone(), tx.clone());
        glommio::spawn_local(async move {
            while let Some(batch) = stream.recv().await {
                let reply_to = batch.reply_to;
                let replies = execute(&core, batch);
                // The reply router on the other side never blocks, so this
                // send always drains: no cycle between two shards.
                if tx.send_to(reply_to, replies).await.is_err() {
                    break;
                }
            }
        })
        .detach();
    }
}

fn execute(core: &Core, mut batch: Batch) -> Replies {
    let now = crate::clock::now();
    let mut data = batch.data;
    let mut ends = batch.ends;
    data.clear();
    ends.clear();
    core.stats.forwarded_batches.incr();
    core.stats.forwarded_ops.add(batch.ops.len() as u64);
    let mut shard = core.shard(batch.cache);
    for op in batch.ops.drain(..) {
        match op {
            RemoteOp::Single(req) => ascii::execute(&mut shard, &req, now, &mut data),
            RemoteOp::Binary(req) => crate::exec::binary::execute(&mut shard, &req, now, &mut data),
            RemoteOp::GetKey {
                key,
                with_cas,
                touch,
            } => ascii::get_key(&mut shard, &key, with_cas, touch, now, &mut data),
            RemoteOp::Flush { at } => shard.flush(at, now),
            RemoteOp::MemLimit { bytes } => {
                shard.store.set_memory_limit(bytes);
                shard.publish();
            }
        }
        ends.push(data.len() as u32);
    }
    Replies {
        slot: batch.slot,
        round: batch.round,
        from: core.id,
        data,
        ends,
        ops: batch.ops,
    }
}

/// One task per peer core handing replies to the waiting connection.
pub fn spawn_reply_routers(core: Rc<Core>, mut rx: Receivers<Replies>) {
    for (_, stream) in rx.streams() {
        let core = core.clone();
        glommio::spawn_local(async move {
            while let Some(r) = stream.recv().await {
                super::forward::deliver(&core, r);
            }
        })
        .detach();
    }
}
