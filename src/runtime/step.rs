//! One parsed request's way through a batch: `step` runs it at once
//! when nothing has to wait (the common case, which `Conn::drain_now`
//! finishes without leaving its call), or hands it back as `Pending` for
//! `step_wait`, which first completes the forwarding round the request
//! must follow, or runs a request that spans cores.

use super::conn::{Conn, Flow};
use crate::protocol::Command;
use crate::session::{self, view, Gate, Next, Reply};
use bytes::BufMut;

/// A parsed request that must wait before it runs.
pub(super) enum Pending {
    Ascii(crate::protocol::Request, Option<session::Control>),
    /// A multi-key get whose replies filled up after its first `.1` keys.
    Get(crate::protocol::Request, usize),
    Binary(
        crate::protocol::binary::BinRequest,
        Option<session::Control>,
    ),
}

/// What `Conn::step` did with a request.
pub(super) enum Step {
    Done(Flow),
    Wait(Pending),
}

impl Conn {
    /// Runs one parsed request if it needs no waiting; otherwise hands it
    /// back to run where waiting is possible.
    pub(super) fn step(&mut self, next: Next, now: u32) -> Step {
        Step::Done(match next {
            Next::Ascii(mut req) => {
                let v = view::ascii(&req.cmd);
                self.session.count(&v);
                match self.session.gate_ascii(&mut req, &v) {
                    Gate::Pass => {
                        let control = req
                            .cmd
                            .single_key()
                            .is_none()
                            .then(|| view::ascii_control(&req));
                        if control.is_some_and(|c| c.needs_round()) {
                            return Step::Wait(Pending::Ascii(req, control));
                        }
                        if matches!(control, Some(session::Control::MultiGet)) {
                            // Its keys run here until the replies are full.
                            let mut next = 0;
                            if let Command::Get {
                                keys,
                                with_cas,
                                touch,
                            } = &mut req.cmd
                            {
                                if !self.get_keys(keys, &mut next, *with_cas, *touch, now) {
                                    return Step::Wait(Pending::Get(req, next));
                                }
                            }
                            return Step::Done(Flow::Continue);
                        }
                        self.run_ascii(req, control, now)
                    }
                    Gate::Authenticate => self.ascii_auth(&req),
                    Gate::Refuse(bytes) => {
                        self.out.put_slice(bytes);
                        Flow::Continue
                    }
                    Gate::RefuseBinary { .. } => Flow::Continue,
                }
            }
            Next::Binary(req) => {
                let v = view::binary(&req.cmd);
                self.session.count(&v);
                let control = view::binary_route(&req);
                match self.session.gate_binary(control, &v) {
                    Gate::RefuseBinary { status, close } => {
                        crate::protocol::binary::encode::error(&mut self.out, &req, status);
                        if close {
                            Flow::Close
                        } else {
                            Flow::Continue
                        }
                    }
                    _ => {
                        if control.is_some_and(|c| c.needs_round()) {
                            return Step::Wait(Pending::Binary(req, control));
                        }
                        self.run_binary(req, control, now)
                    }
                }
            }
            // Not passed here: the callers stop at it.
            Next::Incomplete => Flow::Continue,
            Next::Reply { bytes, close } => {
                match bytes {
                    Reply::Static(b) => self.out.put_slice(b),
                    Reply::Owned(b) => self.out.put_slice(&b),
                }
                if close {
                    Flow::Close
                } else {
                    Flow::Continue
                }
            }
            Next::Silent => Flow::Continue,
            Next::Close => Flow::Close,
        })
    }

    /// Runs a request `step` handed back: the forwarding round before it
    /// completes first, or it spans cores itself.
    pub(super) async fn step_wait(&mut self, pending: Pending, now: u32) -> Flow {
        match pending {
            Pending::Ascii(req, control) => {
                if control.is_some_and(|c| c.needs_round()) {
                    self.round().await;
                }
                if matches!(control, Some(session::Control::MultiGet)) {
                    self.multi_get(req, 0, now).await
                } else {
                    self.run_ascii(req, control, now)
                }
            }
            Pending::Get(req, next) => {
                // The replies filled up partway: written before the rest.
                if self.flush().await == Flow::Close {
                    return Flow::Close;
                }
                glommio::yield_if_needed().await;
                self.multi_get(req, next, now).await
            }
            Pending::Binary(req, control) => {
                self.round().await;
                self.run_binary(req, control, now)
            }
        }
    }
}
