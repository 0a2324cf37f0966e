//! One client connection: read → parse everything that arrived → execute
//! local keys inline and batch remote ones per owner core → merge replies in
//! request order → one write.
//!
//! Back-pressure: at most `MAX_BATCH` requests or `OUT_HIGH_WATER` bytes of
//! replies are produced before they are written; while the client is not
//! reading our replies we stop parsing its requests, so a huge pipeline costs
//! bounded memory.

use super::core::Core;
use super::mesh::{Batch, RemoteOp, Replies};
use crate::exec::binary as run_binary;
use crate::exec::stats_cmd::Scope;
use crate::exec::{self, ascii as run};
use crate::latency::{self, Class};
use crate::protocol::ascii::{encode, AsciiParser, Parsed};
use crate::protocol::binary::Status;
use crate::protocol::binary::{self as bin, BinCommand, BinParsed, BinRequest, BinaryParser};
use crate::protocol::meta::MetaCmd;
use crate::protocol::{reply, Command, Request, StoreMode};
use crate::stats::CoreStats;
use crate::tenancy::{self, Session};
use bytes::{BufMut, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel::{self, LocalReceiver};
use glommio::net::TcpStream;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Requests parsed before the replies are written.
const MAX_BATCH: usize = 256;
/// Reply bytes produced before they are written.
const OUT_HIGH_WATER: usize = 1 << 20;
/// Reply buffer reserved when a batch starts.
const OUT_INITIAL: usize = 4096;
/// Read buffer: start small (idle connections are cheap), grow for big values.
const READ_CHUNK: usize = 16 * 1024;

/// Answers a connection over the limit and closes it.
pub async fn reject(mut stream: TcpStream) {
    let _ = stream.write_all(reply::ERROR_TOO_MANY_CONNECTIONS).await;
    let _ = stream.close().await;
}

/// What the connection does after a batch.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// The connection's protocol, chosen by its first byte (X-11: 0x80 = binary).
enum Wire {
    Undetected,
    Ascii(AsciiParser),
    Binary(BinaryParser),
}

/// One step of parsing, whatever the protocol.
enum Next {
    Ascii(Request),
    Binary(BinRequest),
    Incomplete,
    /// Bytes to send; `close` hangs up afterwards.
    Reply {
        bytes: Reply,
        close: bool,
    },
    Silent,
    Close,
}

enum Reply {
    Static(&'static [u8]),
    Owned(BytesMut),
}

/// Where a forwarded op's reply goes: at byte `pos` of `out`.
struct Splice {
    pos: usize,
    dest: usize,
    index: usize,
}

struct Conn {
    core: Rc<Core>,
    id: usize,
    /// Multi-tenant mode: every request needs a session first.
    multi_tenant: bool,
    /// Who authenticated (multi-tenant mode); None before that.
    session: Option<Session>,
    /// The cache this connection's keys live in (0 in open mode).
    cache: u32,
    /// Counters this connection's traffic goes to: the server's before
    /// authentication, its cache's after.
    stats: Arc<CoreStats>,
    fd: RawFd,
    /// Requests of each latency class in the current read's batches.
    classes: [u64; 7],
    /// Registry version `session` was last checked against.
    seen_version: u64,
    activity: Arc<crate::conns::Activity>,
    rx: LocalReceiver<Replies>,
    wire: Wire,
    out: BytesMut,
    /// Ops per destination core for the current batch.
    batches: Vec<Vec<RemoteOp>>,
    splices: Vec<Splice>,
}

pub async fn serve(core: Rc<Core>, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let registration = crate::conns::register(
        std::os::fd::AsRawFd::as_raw_fd(&stream),
        stream.peer_addr().ok(),
        stream.local_addr().ok(),
        crate::clock::now(),
    );
    let (tx, rx) = local_channel::new_unbounded();
    let id = core.waiters.borrow_mut().insert(tx);
    let multi_tenant = core.server.tenants.is_some();
    if let Some(t) = &core.server.tenants {
        // T-7: the whole authentication must fit in the deadline.
        let _ = stream.set_read_timeout(Some(t.auth_timeout));
    }
    let mut conn = Conn {
        multi_tenant,
        session: None,
        cache: 0,
        stats: core.stats.clone(),
        fd: std::os::fd::AsRawFd::as_raw_fd(&stream),
        seen_version: 0,
        classes: [0; 7],
        activity: registration.activity.clone(),
        wire: Wire::Undetected,
        out: BytesMut::new(),
        batches: (0..core.n).map(|_| Vec::new()).collect(),
        splices: Vec::new(),
        core: core.clone(),
        id,
        rx,
    };
    let mut rbuf = BytesMut::new();
    let deadline = std::time::Instant::now()
        + core
            .server
            .tenants
            .as_ref()
            .map_or(std::time::Duration::ZERO, |t| t.auth_timeout);
    loop {
        let authenticated = conn.session.is_some();
        match read_more(&mut stream, &mut rbuf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => conn.stats.bytes_read.add(n as u64),
        }
        if conn.multi_tenant && !authenticated {
            // Each read gets only what is left of the deadline.
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let _ = stream.set_read_timeout(Some(left));
        }
        registration.activity.start_batch(crate::clock::now());
        if !conn.recheck_session() {
            break;
        }
        let flow = conn.drain(&mut stream, &mut rbuf).await;
        if conn.session.is_some() && !authenticated {
            let _ = stream.set_read_timeout(None);
        }
        registration.activity.end_batch();
        if flow == Flow::Close {
            break;
        }
        // An idle connection holds no buffers (memcached's rbuf_release):
        // with tens of thousands of mostly idle clients the buffers, not the
        // items, would dominate memory. Reallocating per batch costs far less
        // than the syscalls around it.
        if rbuf.is_empty() {
            rbuf = BytesMut::new();
        }
        conn.out = BytesMut::new();
    }
    core.waiters.borrow_mut().remove(id);
    conn.logout();
    let _ = stream.close().await;
}

/// Reads whatever is available into the spare capacity of `rbuf`.
async fn read_more(stream: &mut TcpStream, rbuf: &mut BytesMut) -> std::io::Result<usize> {
    if rbuf.capacity() - rbuf.len() < READ_CHUNK / 4 {
        rbuf.reserve(READ_CHUNK.max(rbuf.len()));
    }
    let len = rbuf.len();
    let spare = rbuf.spare_capacity_mut();
    // SAFETY: recv only writes into the slice; we expose exactly the bytes it
    // reports as written via set_len below.
    let slice =
        unsafe { std::slice::from_raw_parts_mut(spare.as_mut_ptr() as *mut u8, spare.len()) };
    let n = stream.read(slice).await?;
    unsafe { rbuf.set_len(len + n) };
    Ok(n)
}

impl Conn {
    /// Parses and answers every complete request in `rbuf`, writing replies
    /// after each bounded batch.
    async fn drain(&mut self, stream: &mut TcpStream, rbuf: &mut BytesMut) -> Flow {
        self.out.reserve(OUT_INITIAL);
        // Service time runs from the read that delivered the requests.
        let read_at = std::time::Instant::now();
        loop {
            let now = crate::clock::now();
            let mut flow = Flow::Continue;
            let mut more = false;
            let mut handled = 0;
            loop {
                let step = match self.next(rbuf) {
                    Next::Ascii(req) => {
                        // Authentication is not a store, whatever it looks like.
                        let class = if self.multi_tenant && self.session.is_none() {
                            Class::Other
                        } else {
                            ascii_class(&req.cmd)
                        };
                        self.classes[class as usize] += 1;
                        self.handle(req, now).await
                    }
                    Next::Binary(req) => {
                        self.classes[binary_class(&req.cmd) as usize] += 1;
                        self.handle_binary(req, now).await
                    }
                    Next::Incomplete => break,
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
                };
                handled += 1;
                if step == Flow::Close {
                    flow = Flow::Close;
                    break;
                }
                if handled >= MAX_BATCH || self.out.len() >= OUT_HIGH_WATER {
                    more = true;
                    break;
                }
            }
            self.round().await;
            if !self.out.is_empty() {
                let r = stream.write_all(&self.out).await;
                self.stats.bytes_written.add(self.out.len() as u64);
                self.out.clear();
                if r.is_err() {
                    return Flow::Close;
                }
            }
            // noreply requests count too, answered or not.
            self.record_latency(read_at);
            if flow == Flow::Close {
                return Flow::Close;
            }
            if !more {
                return Flow::Continue;
            }
            self.stats.conn_yields.incr();
            glommio::yield_if_needed().await;
        }
    }

    /// Records the batch's requests, answered now, in the core's histograms.
    fn record_latency(&mut self, read_at: std::time::Instant) {
        let us = read_at.elapsed().as_micros() as u64;
        let mut latency = self.core.latency.borrow_mut();
        for class in latency::CLASSES {
            let n = std::mem::take(&mut self.classes[class as usize]);
            latency.record(self.cache, class, us, n);
        }
    }

    /// Parses the next request with the connection's protocol, detecting it
    /// on the first byte.
    fn next(&mut self, rbuf: &mut BytesMut) -> Next {
        if let Wire::Undetected = self.wire {
            let Some(&first) = rbuf.first() else {
                return Next::Incomplete;
            };
            let max = self.core.server.config.item_size_max;
            self.wire = if first == bin::header::REQ_MAGIC {
                Wire::Binary(BinaryParser::new(max))
            } else {
                let mut p = AsciiParser::new(max);
                p.set_shutdown_enabled(self.core.server.settings.enable_shutdown);
                Wire::Ascii(p)
            };
        }
        match &mut self.wire {
            Wire::Undetected => Next::Incomplete,
            Wire::Ascii(p) => match p.parse(rbuf) {
                Parsed::Request(r) => Next::Ascii(r),
                Parsed::Incomplete => Next::Incomplete,
                // Before authentication an unknown command is just another
                // command that needs a session (T-1).
                Parsed::Error(line)
                    if self.multi_tenant
                        && self.session.is_none()
                        && line.starts_with(b"ERROR") =>
                {
                    Next::Reply {
                        bytes: Reply::Static(reply::CLIENT_ERROR_UNAUTHENTICATED),
                        close: false,
                    }
                }
                Parsed::Error(line) => Next::Reply {
                    bytes: Reply::Static(line),
                    close: false,
                },
                Parsed::Silent => Next::Silent,
                Parsed::Close => Next::Close,
            },
            Wire::Binary(p) => match p.parse(rbuf) {
                BinParsed::Request(r) => Next::Binary(r),
                BinParsed::Incomplete => Next::Incomplete,
                BinParsed::Error(b) => Next::Reply {
                    bytes: Reply::Owned(b),
                    close: false,
                },
                BinParsed::ErrorClose(b) => Next::Reply {
                    bytes: Reply::Owned(b),
                    close: true,
                },
            },
        }
    }

    /// One binary request: key-addressed ones run on their owner core,
    /// server-wide ones here (protocol.md §1.7).
    async fn handle_binary(&mut self, req: BinRequest, now: u32) -> Flow {
        let core = self.core.clone();
        if self.multi_tenant {
            match req.cmd {
                BinCommand::SaslListMechs | BinCommand::SaslAuth | BinCommand::SaslStep => {
                    self.sasl(&req).await;
                    return Flow::Continue;
                }
                // memcached answers Version before authentication too.
                BinCommand::Version => {}
                // B-3 / T-1: anything else first needs a session.
                _ if self.session.is_none() => {
                    bin::encode::error(&mut self.out, &req, Status::AuthError);
                    return Flow::Close;
                }
                _ => {}
            }
            if !self.may_write() && binary_writes(&req.cmd) {
                // T-3: a read-only credential.
                bin::encode::error(&mut self.out, &req, Status::NotStored);
                return Flow::Continue;
            }
        }
        if let Some(key) = req.key_for_routing() {
            let owner = core.owner(self.cache, key);
            if owner == core.id {
                run_binary::execute(&mut core.shard(self.cache), &req, now, &mut self.out);
            } else {
                self.forward(owner, RemoteOp::Binary(req));
            }
            return Flow::Continue;
        }
        match req.cmd {
            BinCommand::Quit => {
                bin::encode::quit(&mut self.out, &req);
                return Flow::Close;
            }
            BinCommand::Flush { delay } => {
                // T-4: a credential without flush gets memcached's -F answer.
                if core.server.settings.disable_flush_all || !self.may_flush() {
                    bin::encode::flush_disabled(&mut self.out, &req);
                } else {
                    self.flush_all(delay as i64, now);
                    bin::encode::flush(&mut self.out, &req);
                }
            }
            BinCommand::Noop => bin::encode::noop(&mut self.out, &req),
            BinCommand::Version => {
                bin::encode::version(&mut self.out, &req, crate::protocol::MEMCACHED_VERSION)
            }
            BinCommand::Stat => {
                // Earlier forwarded ops must land before we read the counters.
                self.round().await;
                self.with_scope(|scope, out| run_binary::stat(scope, &req, out));
            }
            // No authentication in open mode: memcached built without SASL
            // answers these as unknown commands.
            _ => bin::encode::unknown_command(&mut self.out, &req),
        }
        Flow::Continue
    }

    /// flush_all on every core: here at once, on the others in order behind
    /// this connection's earlier forwarded ops.
    fn flush_all(&mut self, delay: i64, now: u32) {
        let core = self.core.clone();
        self.stats.cmd_flush.incr();
        let at = exec::flush_time(delay, now);
        core.shard(self.cache).flush(at, now);
        self.forward_to_others(|| RemoteOp::Flush { at });
    }

    /// Queues `op` for `dest`; its reply will be spliced in at the current end of `out`.
    fn forward(&mut self, dest: usize, op: RemoteOp) {
        let index = self.batches[dest].len();
        self.batches[dest].push(op);
        self.splices.push(Splice {
            pos: self.out.len(),
            dest,
            index,
        });
    }

    /// Queues a server-wide op for every other core (this one applied it inline).
    fn forward_to_others(&mut self, op: impl Fn() -> RemoteOp) {
        let (me, n) = (self.core.id, self.core.n);
        for dest in (0..n).filter(|d| *d != me) {
            self.forward(dest, op());
        }
    }

    /// Sends the pending batches, waits for every reply and splices them into
    /// `out` in request order.
    async fn round(&mut self) {
        if self.splices.is_empty() {
            return;
        }
        let Some(senders) = self.core.requests.as_ref() else {
            return;
        };
        let mut expected = 0;
        for dest in 0..self.batches.len() {
            if self.batches[dest].is_empty() {
                continue;
            }
            let ops = std::mem::take(&mut self.batches[dest]);
            let batch = Batch {
                reply_to: self.core.reply_id,
                conn: self.id,
                cache: self.cache,
                ops,
            };
            if senders.send_to(dest, batch).await.is_ok() {
                expected += 1;
            }
        }
        let mut replies: Vec<Option<Replies>> = (0..self.core.n).map(|_| None).collect();
        for _ in 0..expected {
            match self.rx.recv().await {
                Some(r) => {
                    let from = r.from;
                    replies[from] = Some(r);
                }
                None => break,
            }
        }
        let extra: usize = replies.iter().flatten().map(|r| r.data.len()).sum();
        let mut merged = BytesMut::with_capacity(self.out.len() + extra);
        let mut last = 0;
        for s in self.splices.drain(..) {
            merged.put_slice(&self.out[last..s.pos]);
            last = s.pos;
            if let Some(r) = &replies[s.dest] {
                let start = if s.index == 0 {
                    0
                } else {
                    r.ends[s.index - 1] as usize
                };
                let end = r.ends.get(s.index).map_or(start, |e| *e as usize);
                merged.put_slice(&r.data[start..end]);
            }
        }
        merged.put_slice(&self.out[last..]);
        self.out = merged;
    }

    async fn handle(&mut self, mut req: Request, now: u32) -> Flow {
        let core = self.core.clone();
        if self.multi_tenant {
            if self.session.is_none() {
                self.ascii_auth(&req);
                return Flow::Continue;
            }
            if !self.may_write() {
                if ascii_writes(&req.cmd) {
                    // T-3: a read-only credential.
                    let refusal = match req.cmd {
                        Command::Meta(_) => reply::META_NS,
                        _ => reply::NOT_STORED,
                    };
                    if !req.noreply {
                        self.out.put_slice(refusal);
                    }
                    return Flow::Continue;
                }
                // gat/gats read, but may not extend the item's life.
                if let Command::Get { touch, .. } = &mut req.cmd {
                    *touch = None;
                }
            }
        }
        if let Some(key) = req.cmd.single_key() {
            let owner = core.owner(self.cache, key);
            if owner == core.id {
                run::execute(&mut core.shard(self.cache), &req, now, &mut self.out);
            } else {
                self.forward(owner, RemoteOp::Single(req));
            }
            return Flow::Continue;
        }
        match req.cmd {
            Command::Get {
                keys,
                with_cas,
                touch,
            } => {
                for key in keys {
                    let owner = core.owner(self.cache, &key);
                    if owner == core.id {
                        run::get_key(
                            &mut core.shard(self.cache),
                            &key,
                            with_cas,
                            touch,
                            now,
                            &mut self.out,
                        );
                    } else {
                        self.forward(
                            owner,
                            RemoteOp::GetKey {
                                key,
                                with_cas,
                                touch,
                            },
                        );
                    }
                }
                self.out.put_slice(reply::END);
            }
            Command::FlushAll { delay } => {
                if core.server.settings.disable_flush_all || !self.may_flush() {
                    // memcached counts a refused flush_all too.
                    self.stats.cmd_flush.incr();
                    if !req.noreply {
                        self.out.put_slice(reply::CLIENT_ERROR_FLUSH_NOT_ALLOWED);
                    }
                    return Flow::Continue;
                }
                self.flush_all(delay, now);
                if !req.noreply {
                    self.out.put_slice(reply::OK);
                }
            }
            Command::Version => encode::version(&mut self.out, crate::protocol::MEMCACHED_VERSION),
            Command::Verbosity { level } => {
                exec::VERBOSITY.store(level.min(2) as u8, Ordering::Relaxed);
                if !req.noreply {
                    self.out.put_slice(reply::OK);
                }
            }
            Command::Quit => return Flow::Close,
            // mn has no key: answered here, after every earlier reply (M-mn).
            Command::Meta(ref m) if m.cmd == MetaCmd::Noop => self.out.put_slice(reply::META_MN),
            Command::Stats { ref args } => {
                // Earlier forwarded ops must land before we read the counters.
                self.round().await;
                self.with_scope(|scope, out| crate::exec::stats_cmd::stats(scope, args, out));
            }
            Command::CacheMemlimit { megabytes } => {
                let line = if self.multi_tenant {
                    self.tenant_memlimit(megabytes)
                } else {
                    self.memlimit(megabytes)
                };
                if !req.noreply {
                    self.out.put_slice(line);
                }
            }
            Command::Shutdown { .. } => {
                // A tenant never stops the server, whatever -A says.
                if !core.server.settings.enable_shutdown || self.multi_tenant {
                    // memcached 1.6.18's wording (t/shutdown.t).
                    self.out.put_slice(reply::ERROR_SHUTDOWN_NOT_ENABLED);
                    return Flow::Continue;
                }
                core.server.shutdown.store(true, Ordering::Release);
                return Flow::Close;
            }
            // single_key() covered every key-addressed command above.
            _ => self.out.put_slice(reply::ERROR),
        }
        Flow::Continue
    }

    /// Runs `f` with the stats scope of this connection (its cache's
    /// counters and plan in multi-tenant mode, the server's in open mode)
    /// and the reply buffer.
    fn with_scope(&mut self, f: impl FnOnce(&Scope<'_>, &mut BytesMut)) {
        let registry = crate::stats::cache(self.cache);
        let mut out = std::mem::take(&mut self.out);
        let scope = Scope {
            config: &self.core.server.config,
            stats: &registry,
            cache: self
                .session
                .as_ref()
                .map(|s| (s.cache_id, self.core.plan(s.cache_id))),
        };
        f(&scope, &mut out);
        self.out = out;
    }

    /// Open mode has no credentials: everything is allowed.
    fn may_write(&self) -> bool {
        self.session.as_ref().is_none_or(|s| s.caps.write)
    }

    fn may_flush(&self) -> bool {
        self.session.as_ref().is_none_or(|s| s.caps.flush)
    }

    /// Re-checks the session when the core has a newer registry: false when
    /// its credential was revoked or its cache disabled or deleted (the
    /// connection is then closed). Capability changes apply from here on.
    fn recheck_session(&mut self) -> bool {
        let Some(session) = &self.session else {
            return true;
        };
        // Compare versions first: cloning the Arc on every batch would bounce
        // its shared refcount between cores.
        if self.core.registry.borrow().version() == self.seen_version {
            return true;
        }
        let registry = self.core.registry.borrow().clone();
        self.seen_version = registry.version();
        match registry.refresh(session) {
            Some(next) => {
                if let Some(entry) = self.core.sessions.borrow_mut().get_mut(&self.id) {
                    entry.1 = next.clone();
                }
                self.session = Some(next);
                true
            }
            None => false,
        }
    }

    /// Binds the connection to the session's cache.
    fn login(&mut self, session: Session) {
        self.logout();
        let core = self.core.clone();
        self.cache = session.cache_id;
        self.stats = crate::stats::cache(session.cache_id).core(core.id);
        self.stats.curr_connections.incr();
        self.stats.total_connections.incr();
        self.activity
            .cache
            .store(session.cache_id, Ordering::Relaxed);
        self.seen_version = core.registry.borrow().version();
        core.sessions
            .borrow_mut()
            .insert(self.id, (self.fd, session.clone()));
        self.session = Some(session);
    }

    fn logout(&mut self) {
        if self.session.take().is_some() {
            self.core.sessions.borrow_mut().remove(&self.id);
            let c = &self.stats.curr_connections;
            c.set(c.get().saturating_sub(1));
            self.stats = self.core.stats.clone();
            self.cache = 0;
            self.activity.cache.store(0, Ordering::Relaxed);
        }
    }

    /// The first command of a multi-tenant text connection (protocol.md
    /// §1.5): a `set` carrying the credentials; anything else is T-1.
    fn ascii_auth(&mut self, req: &Request) {
        let core = self.core.clone();
        let line = match &req.cmd {
            Command::Store {
                mode: StoreMode::Set,
                key,
                data,
                ..
            } => {
                core.stats.auth_cmds.incr();
                // A credential created a moment ago may not have reached this
                // core's tick yet: look for a newer snapshot first.
                core.refresh_registry();
                let result = tenancy::authenticate_ascii(&core.registry.borrow(), key, data);
                match result {
                    Ok(session) => {
                        self.login(session);
                        reply::STORED
                    }
                    Err(line) => {
                        core.stats.auth_errors.incr();
                        line
                    }
                }
            }
            Command::TooLarge {
                mode: StoreMode::Set,
                ..
            } => {
                core.stats.auth_cmds.incr();
                core.stats.auth_errors.incr();
                reply::CLIENT_ERROR_AUTH_TOKEN_TOO_LONG
            }
            _ => reply::CLIENT_ERROR_UNAUTHENTICATED,
        };
        self.out.put_slice(line);
    }

    /// Binary SASL (protocol.md §1.7): LIST_MECHS answers `PLAIN`; AUTH
    /// checks a PLAIN message through rsasl; STEP has nothing to continue
    /// (PLAIN is one step). A failure keeps the connection open, as memcached
    /// does, so a client may retry.
    async fn sasl(&mut self, req: &BinRequest) {
        let core = self.core.clone();
        match req.cmd {
            BinCommand::SaslListMechs => {
                bin::encode::success_value(&mut self.out, req, tenancy::plain_mechs().as_bytes())
            }
            BinCommand::SaslAuth => {
                core.stats.auth_cmds.incr();
                core.refresh_registry();
                let result = if &req.key[..] == b"PLAIN" {
                    tenancy::authenticate_plain(&core.registry.borrow(), &req.value)
                } else {
                    None
                };
                match result {
                    Some(session) => {
                        // Ops queued for the previous cache go out first.
                        self.round().await;
                        self.login(session);
                        bin::encode::success_value(&mut self.out, req, b"Authenticated");
                    }
                    None => {
                        core.stats.auth_errors.incr();
                        bin::encode::error(&mut self.out, req, Status::AuthError);
                    }
                }
            }
            _ => {
                core.stats.auth_cmds.incr();
                core.stats.auth_errors.incr();
                bin::encode::error(&mut self.out, req, Status::AuthError);
            }
        }
    }

    /// cache_memlimit on a hosted cache: lowers (or restores) the cache's own
    /// limit, never above the plan the operator gave it.
    fn tenant_memlimit(&mut self, megabytes: u64) -> &'static [u8] {
        if megabytes < 8 {
            return reply::MEMLIMIT_TOO_SMALL;
        }
        if !self.may_write() {
            return reply::NOT_STORED;
        }
        let core = self.core.clone();
        let plan = core
            .registry
            .borrow()
            .cache(self.cache)
            .map_or(0, |c| c.memory_limit);
        let want = megabytes.saturating_mul(1 << 20);
        if want > plan {
            return reply::CLIENT_ERROR_MEMLIMIT_ABOVE_PLAN;
        }
        if let Some(t) = &core.server.tenants {
            t.budget(self.cache).set_plan(want as usize);
        }
        reply::OK
    }

    /// cache_memlimit (A-memlimit): split the new limit across cores.
    fn memlimit(&mut self, megabytes: u64) -> &'static [u8] {
        if megabytes < 8 {
            return reply::MEMLIMIT_TOO_SMALL;
        }
        if megabytes > 1_000_000_000 {
            return reply::MEMLIMIT_ADJUST_FAILED_MEGABYTES;
        }
        let core = self.core.clone();
        let per_core = (megabytes as usize).saturating_mul(1 << 20) / core.n;
        {
            let mut shard = core.shard.borrow_mut();
            shard.store.set_memory_limit(per_core);
            shard.publish();
        }
        self.forward_to_others(|| RemoteOp::MemLimit { bytes: per_core });
        reply::OK
    }
}

/// Text commands that change data (refused for a read-only credential, T-3).
fn ascii_writes(cmd: &Command) -> bool {
    match cmd {
        Command::Store { .. }
        | Command::TooLarge { .. }
        | Command::Delete { .. }
        | Command::Arith { .. }
        | Command::Touch { .. } => true,
        Command::Meta(m) => matches!(m.cmd, MetaCmd::Set | MetaCmd::Delete | MetaCmd::Arith),
        _ => false,
    }
}

/// Binary commands that change data, GAT included (T-3).
fn binary_writes(cmd: &BinCommand) -> bool {
    matches!(
        cmd,
        BinCommand::Store { .. }
            | BinCommand::TooLarge { .. }
            | BinCommand::Delete
            | BinCommand::Arith { .. }
            | BinCommand::Touch { .. }
            | BinCommand::Get { touch: Some(_), .. }
    )
}

/// The latency class of a text request.
fn ascii_class(cmd: &Command) -> Class {
    match cmd {
        Command::Get { .. } => Class::Get,
        Command::Store { .. } | Command::TooLarge { .. } => Class::Set,
        Command::Delete { .. } => Class::Delete,
        Command::Arith { .. } => Class::IncrDecr,
        Command::Touch { .. } => Class::Touch,
        Command::FlushAll { .. } => Class::Flush,
        Command::Meta(m) => match m.cmd {
            MetaCmd::Get => Class::Get,
            MetaCmd::Set => Class::Set,
            MetaCmd::Delete => Class::Delete,
            MetaCmd::Arith => Class::IncrDecr,
            _ => Class::Other,
        },
        _ => Class::Other,
    }
}

/// The latency class of a binary request.
fn binary_class(cmd: &BinCommand) -> Class {
    match cmd {
        BinCommand::Get { .. } => Class::Get,
        BinCommand::Store { .. } | BinCommand::TooLarge { .. } => Class::Set,
        BinCommand::Delete => Class::Delete,
        BinCommand::Arith { .. } => Class::IncrDecr,
        BinCommand::Touch { .. } => Class::Touch,
        BinCommand::Flush { .. } => Class::Flush,
        _ => Class::Other,
    }
}
