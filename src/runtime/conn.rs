//! One client connection's I/O: wait for bytes, run everything that
//! arrived (the session decides what each request does; `dispatch` runs
//! it here or on its owner core), write the replies in one send.
//!
//! An idle connection holds no buffers: bytes are first read into the
//! core's scratch buffer, which the connection then keeps only until its
//! requests are answered (a partial request keeps it until complete).
//!
//! Back-pressure: at most `MAX_BATCH` requests, `OUT_HIGH_WATER` bytes of
//! replies or `forward_value_cap` forwarded reads are produced before the
//! replies are written, between requests and between the keys of one
//! multi-key get; while the client is not reading our replies we stop
//! producing them, so any request mix costs a connection bounded memory:
//! about `OUT_HIGH_WATER` plus one item here, plus the forwarded values
//! (`FORWARD_VALUE_BYTES` at most) of a round.

use super::core::Core;
use super::forward::Forwarding;
use super::pool::{ReadBuf, BUF_SIZE};
use super::socket::Socket;
use super::step::{Pending, Step};
use crate::conns::{Activity, Registration};
use crate::session::{self, Next, Recheck, Reply, Session};
use bytes::BytesMut;
use futures_lite::ready;
use glommio::timer::Timer;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// Requests parsed before the replies are written.
const MAX_BATCH: usize = 256;
/// Reply bytes produced before they are written.
const OUT_HIGH_WATER: usize = 1 << 20;
/// What the values of one forwarding round may add up to at most: a round
/// carries at most this over the item size limit reads (and at least 8).
const FORWARD_VALUE_BYTES: usize = 16 << 20;
/// Reads up to this size are copied out of the scratch buffer.
const SMALL_READ: usize = 1024;
/// Least room offered to a read that continues a partial request.
const READ_MIN: usize = BUF_SIZE / 4;

/// How many forwarded ops that may return a value one round carries: the
/// owners copy each value into the round's replies, so this bounds them.
pub fn forward_value_cap(item_size_max: usize) -> usize {
    (FORWARD_VALUE_BYTES / item_size_max.max(1)).clamp(8, MAX_BATCH)
}

/// A batch `drain_now` could not finish without waiting: its buffer, the
/// request it stopped at, and how far it got.
pub struct Rest {
    rbuf: ReadBuf,
    now: u32,
    read_at: Instant,
    pending: Option<Pending>,
    handled: usize,
    /// A request asked to close: only the replies so far remain to send.
    closing: bool,
}

/// What the connection does after a request or a batch.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum Flow {
    Continue,
    Close,
}

pub struct Conn {
    pub core: Rc<Core>,
    /// This connection's line in `stats conns`, keyed by its fd. Declared
    /// before `sock` so that it is removed before the fd is closed: fields
    /// drop in order, and once the fd is closed another core can accept a
    /// connection on the same number and register it, which a later
    /// removal by that number would take out of the table.
    _registration: Registration,
    pub(super) sock: Socket,
    pub session: Session,
    pub fd: RawFd,
    pub activity: Arc<Activity>,
    /// Replies of the current batch (from the core's pool while busy).
    pub out: BytesMut,
    /// Requests read but not yet complete (only while one is partial).
    rbuf: Option<ReadBuf>,
    /// This read's forwarded ops (from the core's pool while busy).
    pub fwd: Option<Box<Forwarding>>,
    /// Multi-tenant mode: when authentication must be complete (T-7),
    /// and the timer that ends a read still waiting then.
    pub(super) deadline: Option<(Instant, Pin<Box<Timer>>)>,
}

/// Serves one connection until it closes. The future is what an idle
/// connection costs, so it holds only the `Conn`; waiting for bytes is a
/// plain poll, and a batch in flight lives in its own boxed future.
///
/// Not an `async fn`: the future uses the `Conn` it captured in place, so
/// it holds one copy of it and nothing else an idle connection would pay
/// for (rebinding a captured value, or an argument, costs a second slot).
pub fn serve(core: Rc<Core>, sock: Socket, peer: Option<SocketAddr>) -> impl Future<Output = ()> {
    let mut conn = Conn::new(core, sock, peer);
    async move {
        // Boxed like the batch: the handshake's future is large and runs
        // once.
        if conn.sock.is_tls() && !Box::pin(conn.start_tls()).await {
            conn.close().await;
            return;
        }
        loop {
            let authenticated = conn.session.authenticated();
            match std::future::poll_fn(|cx| conn.poll_read(cx)).await {
                Ok(0) | Err(_) => break,
                Ok(n) => conn.session.stats.bytes_read.add(n as u64),
            }
            if !conn.within_deadline() || !conn.recheck_login() {
                conn.discard_unread();
                break;
            }
            // Most batches finish here without waiting. The rest is
            // boxed: the future of a batch in flight (forwarding rounds,
            // partial writes) is larger than everything else an idle
            // connection holds, so it is on the heap only while busy.
            let flow = match conn.drain_now() {
                Ok(flow) => flow,
                Err(rest) => rest.await,
            };
            if conn.session.authenticated() && !authenticated {
                conn.deadline = None;
                super::preauth::leave(conn.fd);
            }
            if flow == Flow::Close {
                break;
            }
            // Before authentication only a login's worth may wait.
            let buffered = conn.rbuf.as_ref().map_or(0, |b| b.len());
            // Only the line is kept across the send (the `Next` is consumed
            // inside the closure), and the send is boxed like the batch: a
            // `Next` or a send future held here would add ~200 bytes to
            // every idle connection's future.
            let refusal = conn
                .session
                .preauth_overflow(buffered)
                .map(|step| match step {
                    Next::Reply {
                        bytes: Reply::Static(line),
                        ..
                    } => Some(line),
                    _ => None,
                });
            if let Some(line) = refusal {
                if let Some(line) = line {
                    let _ = Box::pin(conn.sock.send_all(line)).await;
                }
                break;
            }
        }
        conn.close().await;
    }
}

impl Conn {
    /// The end of a connection: buffers back to the pools, out of its
    /// cache, the socket closed, and the server's connection counts.
    async fn close(&mut self) {
        self.release();
        if self.session.multi_tenant() && !self.session.authenticated() {
            super::preauth::leave(self.fd);
        }
        self.log_out();
        // Closing the fd (when the Conn drops) ends the connection.
        self.sock.close_tls();
        self.sock.deregister(&self.core.readiness);
        let stats = &self.core.stats;
        stats
            .curr_connections
            .set(stats.curr_connections.get().saturating_sub(1));
        self.core.server.conns.fetch_sub(1, Ordering::AcqRel);
    }

    fn new(core: Rc<Core>, sock: Socket, peer: Option<SocketAddr>) -> Conn {
        let fd = sock.raw();
        let registration = crate::conns::register(fd, peer, crate::clock::now());
        let multi_tenant = core.server.tenants.is_some();
        let deadline = core.server.tenants.as_ref().map(|t| {
            // T-7: the whole authentication must fit in the deadline.
            (
                Instant::now() + t.auth_timeout,
                Box::pin(Timer::new(t.auth_timeout)),
            )
        });
        let limits = session::Limits {
            item_size_max: core.server.config.item_size_max,
            shutdown_enabled: core.server.settings.enable_shutdown,
        };
        Conn {
            session: Session::new(multi_tenant, limits, core.stats.clone()),
            fd,
            activity: registration.activity.clone(),
            _registration: registration,
            out: BytesMut::new(),
            rbuf: None,
            fwd: None,
            deadline,
            sock,
            core,
        }
    }

    /// Before authentication, false once the deadline has passed.
    fn within_deadline(&self) -> bool {
        self.deadline
            .as_ref()
            .is_none_or(|(at, _)| Instant::now() < *at)
    }

    /// Reads whatever is available. A partial request continues in its
    /// own buffer; otherwise the bytes land in the core's scratch buffer,
    /// which this connection then takes (the core gets a fresh one from
    /// its pool), so waiting for bytes holds no buffer: the buffer is only
    /// touched by the `recv` inside this call.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if let Some((_, timer)) = self.deadline.as_mut() {
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(std::io::ErrorKind::TimedOut.into()));
            }
        }
        let core = &self.core;
        if let Some(rbuf) = self.rbuf.as_mut() {
            let n = ready!(self
                .sock
                .poll_recv(&core.readiness, cx, rbuf.spare(READ_MIN)))?;
            rbuf.commit(n);
            return Poll::Ready(Ok(n));
        }
        let mut scratch = core.scratch.borrow_mut();
        // Empty between reads (every batch takes or clears what it left);
        // never let one connection's bytes reach another's parse.
        if !scratch.is_empty() {
            debug_assert!(false, "bytes left in the scratch buffer");
            scratch.bytes().clear();
        }
        let n = ready!(self
            .sock
            .poll_recv(&core.readiness, cx, scratch.spare(BUF_SIZE)))?;
        if n > 0 {
            scratch.commit(n);
            if core.n == 1 && n <= SMALL_READ {
                // One core: every request runs here, so `drain_now`
                // parses them where they are (nothing parsed outlives
                // the batch unless it has to wait; then it takes the
                // buffer along).
                return Poll::Ready(Ok(n));
            }
            self.rbuf = Some(if n <= SMALL_READ {
                // A few requests: a copy sized to fit, so a connection
                // waiting on another core holds tens of bytes, not a
                // pooled buffer, and the scratch buffer stays here.
                let copy = ReadBuf::copy_of(scratch.bytes());
                scratch.bytes().clear();
                copy
            } else {
                std::mem::replace(&mut *scratch, core.pools.read_buf())
            });
        }
        Poll::Ready(Ok(n))
    }

    /// Gives the buffers back to the core's pools between batches; a
    /// partial request keeps its read buffer.
    fn release(&mut self) {
        if self.rbuf.as_ref().is_some_and(|b| b.is_empty()) {
            if let Some(buf) = self.rbuf.take() {
                self.core.pools.put_read_buf(buf);
            }
        }
        if self.out.capacity() > 0 {
            self.core.pools.put_out_buf(std::mem::take(&mut self.out));
        }
    }

    /// Drops what was read and will not be parsed. Bytes left in the
    /// core's scratch buffer (one core) must not reach the next
    /// connection that reads into it.
    fn discard_unread(&mut self) {
        if self.rbuf.is_none() {
            self.core.scratch.borrow_mut().bytes().clear();
        }
    }

    /// Starts a batch: a reply buffer from the pool and one clock read.
    /// Service time runs from the read that delivered the requests, and
    /// the server time comes from it too.
    fn begin_batch(&mut self) -> (u32, Instant) {
        if self.out.capacity() == 0 {
            self.out = self.core.pools.out_buf();
        }
        let read_at = Instant::now();
        let now = crate::clock::at(read_at);
        self.activity.start_batch(now);
        (now, read_at)
    }

    fn finish_batch(&mut self, rbuf: ReadBuf) {
        self.activity.end_batch();
        self.rbuf = Some(rbuf);
        self.release();
    }

    /// Answers every complete request read so far without waiting, when
    /// it can: each runs on this core and the replies fit in the socket at
    /// once, which at one request in flight per connection is nearly
    /// every batch. Otherwise returns the rest of the batch, boxed (the
    /// `Rest` moves straight into the box, so the connection's future
    /// holds only its pointer while it waits).
    fn drain_now(&mut self) -> Result<Flow, Pin<Box<impl Future<Output = Flow> + '_>>> {
        let (mut rbuf, scratch) = match self.rbuf.take() {
            Some(rbuf) => (rbuf, false),
            // Left in the scratch buffer by `poll_read` (one core).
            None => (
                std::mem::replace(&mut *self.core.scratch.borrow_mut(), ReadBuf::empty()),
                true,
            ),
        };
        let (now, read_at) = self.begin_batch();
        let mut handled = 0;
        let mut flow = Flow::Continue;
        let mut pending = None;
        let mut more = false;
        loop {
            if handled >= MAX_BATCH || self.replies_full() {
                more = true;
                break;
            }
            let next = self.session.next(rbuf.bytes());
            if matches!(next, Next::Incomplete) {
                break;
            }
            match self.step(next, now) {
                Step::Done(Flow::Close) => {
                    flow = Flow::Close;
                    break;
                }
                Step::Done(Flow::Continue) => handled += 1,
                Step::Wait(p) => {
                    pending = Some(p);
                    break;
                }
            }
        }
        if pending.is_none() && !more && self.fwd.is_none() && self.send_now() {
            self.record_latency(read_at);
            if scratch {
                rbuf = self.keep_partial(rbuf);
            }
            self.finish_batch(rbuf);
            return Ok(flow);
        }
        if scratch {
            // Parsed requests may hold the buffer: it goes with the batch
            // (back to the pool after it), and the core takes a fresh one.
            *self.core.scratch.borrow_mut() = self.core.pools.read_buf();
        }
        Err(Box::pin(self.drain_rest(Rest {
            rbuf,
            now,
            read_at,
            pending,
            handled,
            closing: flow == Flow::Close,
        })))
    }

    /// After `drain_now` answered everything complete in the scratch
    /// buffer: a partial request left in it moves to this connection's own
    /// buffer (a copy when small), and the scratch buffer comes back.
    fn keep_partial(&mut self, mut rbuf: ReadBuf) -> ReadBuf {
        if rbuf.is_empty() {
            *self.core.scratch.borrow_mut() = rbuf;
            return ReadBuf::empty();
        }
        if rbuf.len() <= SMALL_READ {
            let copy = ReadBuf::copy_of(rbuf.bytes());
            rbuf.bytes().clear();
            *self.core.scratch.borrow_mut() = rbuf;
            copy
        } else {
            *self.core.scratch.borrow_mut() = self.core.pools.read_buf();
            rbuf
        }
    }

    /// Writes the batch's replies if the socket takes them whole at once;
    /// false when some are left for the waiting `flush`.
    fn send_now(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        let Some(sent) = self.sock.send_now(&self.out) else {
            return false;
        };
        self.session.stats.bytes_written.add(sent as u64);
        if sent == self.out.len() {
            self.out.clear();
            return true;
        }
        bytes::Buf::advance(&mut self.out, sent);
        false
    }

    /// The rest of a batch `drain_now` could not finish without waiting.
    async fn drain_rest(&mut self, mut rest: Rest) -> Flow {
        let flow = self.run_batches(&mut rest).await;
        self.finish_batch(rest.rbuf);
        flow
    }

    async fn run_batches(&mut self, rest: &mut Rest) -> Flow {
        let now = rest.now;
        loop {
            let mut flow = Flow::Continue;
            let mut more = false;
            if rest.closing {
                flow = Flow::Close;
            } else {
                loop {
                    let step = match rest.pending.take() {
                        Some(p) => self.step_wait(p, now).await,
                        None => {
                            if rest.handled >= MAX_BATCH || self.replies_full() {
                                more = true;
                                break;
                            }
                            match self.session.next(rest.rbuf.bytes()) {
                                Next::Incomplete => break,
                                next => match self.step(next, now) {
                                    Step::Done(f) => f,
                                    Step::Wait(p) => self.step_wait(p, now).await,
                                },
                            }
                        }
                    };
                    rest.handled += 1;
                    if step == Flow::Close {
                        flow = Flow::Close;
                        break;
                    }
                }
            }
            if self.flush().await == Flow::Close {
                return Flow::Close;
            }
            // noreply requests count too, answered or not.
            self.record_latency(rest.read_at);
            if flow == Flow::Close || !more {
                return flow;
            }
            rest.handled = 0;
            self.session.stats.conn_yields.incr();
            glommio::yield_if_needed().await;
        }
    }

    /// True once the replies produced (here, or owed by a forwarding
    /// round) reach what a connection may hold before writing them.
    pub fn replies_full(&self) -> bool {
        self.out.len() >= OUT_HIGH_WATER
            || self.fwd.as_ref().is_some_and(|f| {
                f.value_ops() >= forward_value_cap(self.core.server.config.item_size_max)
            })
    }

    /// Completes the forwarding round and writes every reply so far; waits
    /// while the client is not reading. Close when the socket failed.
    pub async fn flush(&mut self) -> Flow {
        self.round().await;
        if !self.out.is_empty() {
            let r = self.sock.send_all(&self.out).await;
            self.session.stats.bytes_written.add(self.out.len() as u64);
            self.out.clear();
            if r.is_err() {
                return Flow::Close;
            }
        }
        Flow::Continue
    }

    /// Sends this read's forwarded ops and splices their replies in.
    pub async fn round(&mut self) {
        let Some(mut fwd) = self.fwd.take() else {
            return;
        };
        fwd.round(&self.core, self.session.cache, &mut self.out)
            .await;
        let mut pool = self.core.forwardings.borrow_mut();
        // Bounded like the buffer pools: a burst of rounds does not pin
        // its queues afterwards.
        if pool.len() < 32 {
            pool.push(fwd);
        }
    }

    /// Records the batch's requests, answered now, in the core's histograms.
    fn record_latency(&mut self, read_at: Instant) {
        let us = read_at.elapsed().as_micros() as u64;
        let mut latency = self.core.latency.borrow_mut();
        let cache = self.session.cache;
        for (class, n) in self.session.take_classes() {
            latency.record(cache, class, us, n);
        }
    }

    /// Re-checks the login when the core has a newer registry: false when
    /// its credential was revoked or its cache disabled or deleted.
    /// Capability changes apply from here on.
    fn recheck_login(&mut self) -> bool {
        let version = self.core.registry.borrow().version();
        let core = &self.core;
        match self
            .session
            .recheck(version, || core.registry.borrow().clone())
        {
            Recheck::Refreshed(login) => {
                if let Some(entry) = core.sessions.borrow_mut().get_mut(&self.fd) {
                    *entry = login.clone();
                }
                true
            }
            Recheck::Same => true,
            Recheck::Revoked => false,
        }
    }
}
