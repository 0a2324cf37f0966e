//! Carrying out what the session decided: a key's request runs on this
//! core's shard or is queued for its owner; server-wide commands run here,
//! one place each whatever the wire, and answer in the request's wire.

use super::conn::{Conn, Flow};
use super::mesh::RemoteOp;
use crate::exec::binary as run_binary;
use crate::exec::stats_cmd::Scope;
use crate::exec::{self, ascii as run};
use crate::protocol::ascii::encode;
use crate::protocol::binary::{self as bin, BinRequest, Status};
use crate::protocol::{reply, Command, Request};
use crate::session::{self, AsciiLogin, Control};
use crate::tenancy;
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::atomic::Ordering;

/// The body of a binary refusal at a cache's connection limit.
const TOO_MANY: &[u8] = b"Too many open connections";

/// The request a server-wide command answers, in its wire.
#[derive(Clone, Copy)]
enum Asker<'a> {
    Ascii(&'a Request),
    Binary(&'a BinRequest),
}

impl Conn {
    /// A multi-key get (A-get, A-gets, A-gat): each key runs on its owner,
    /// and the replies are written whenever they fill what a connection
    /// may hold, so a get of many large values costs bounded memory
    /// however slowly the client reads. `next` keys already ran (see
    /// `get_keys`).
    pub async fn multi_get(&mut self, mut req: Request, mut next: usize, now: u32) -> Flow {
        let Command::Get {
            keys,
            with_cas,
            touch,
        } = &mut req.cmd
        else {
            return Flow::Continue;
        };
        while !self.get_keys(keys, &mut next, *with_cas, *touch, now) {
            if self.flush().await == Flow::Close {
                return Flow::Close;
            }
            // A long get shares the core with the other connections.
            glommio::yield_if_needed().await;
        }
        Flow::Continue
    }

    /// Runs a get's keys from `*next` on, each on its owner, until all
    /// ran (true: END written) or the replies are full with keys left
    /// (false: write them, then call again).
    pub fn get_keys(
        &mut self,
        keys: &mut [Bytes],
        next: &mut usize,
        with_cas: bool,
        touch: Option<i64>,
        now: u32,
    ) -> bool {
        let core = self.core.clone();
        let cache = self.session.cache;
        while *next < keys.len() {
            let key = std::mem::take(&mut keys[*next]);
            *next += 1;
            let owner = core.owner(cache, &key);
            if owner == core.id {
                run::get_key(
                    &mut core.shard(cache),
                    &key,
                    with_cas,
                    touch,
                    now,
                    &mut self.out,
                );
            } else {
                let op = RemoteOp::GetKey {
                    key,
                    with_cas,
                    touch,
                };
                self.forward(owner, op);
            }
            if self.replies_full() && *next < keys.len() {
                return false;
            }
        }
        self.out.put_slice(reply::END);
        true
    }

    /// A text request past the gate; `control` is None for a single key
    /// (a multi-key get goes through `multi_get`).
    pub fn run_ascii(&mut self, req: Request, control: Option<Control>, now: u32) -> Flow {
        let core = self.core.clone();
        let cache = self.session.cache;
        match control {
            None => {
                let Some(key) = req.cmd.single_key() else {
                    return Flow::Continue;
                };
                let owner = core.owner(cache, key);
                if owner == core.id {
                    run::execute(&mut core.shard(cache), &req, now, &mut self.out);
                } else {
                    self.forward(owner, RemoteOp::Single(req));
                }
                Flow::Continue
            }
            Some(c) => self.control(c, Asker::Ascii(&req), now),
        }
    }

    /// A binary request past the gate; `control` is None for a keyed one.
    pub fn run_binary(&mut self, req: BinRequest, control: Option<Control>, now: u32) -> Flow {
        let core = self.core.clone();
        let cache = self.session.cache;
        match control {
            None => {
                let Some(key) = req.key_for_routing() else {
                    return Flow::Continue;
                };
                let owner = core.owner(cache, key);
                if owner == core.id {
                    run_binary::execute(&mut core.shard(cache), &req, now, &mut self.out);
                } else {
                    self.forward(owner, RemoteOp::Binary(req));
                }
                Flow::Continue
            }
            Some(c) => self.control(c, Asker::Binary(&req), now),
        }
    }

    /// The server-wide commands (protocol.md §1.7 for binary).
    fn control(&mut self, c: Control, asker: Asker<'_>, now: u32) -> Flow {
        let core = self.core.clone();
        let settings = &core.server.settings;
        let noreply = matches!(asker, Asker::Ascii(r) if r.noreply);
        match (c, asker) {
            (Control::Flush { delay }, _) => {
                // T-4: a credential without flush gets memcached's -F answer.
                let allowed = !settings.disable_flush_all && self.session.may_flush();
                match asker {
                    Asker::Ascii(_) => {
                        if allowed {
                            self.flush_all(delay, now);
                        } else {
                            // memcached counts a refused flush_all too.
                            self.session.stats.cmd_flush.incr();
                        }
                        if !noreply {
                            self.out.put_slice(if allowed {
                                reply::OK
                            } else {
                                reply::CLIENT_ERROR_FLUSH_NOT_ALLOWED
                            });
                        }
                    }
                    Asker::Binary(req) if allowed => {
                        self.flush_all(delay, now);
                        bin::encode::flush(&mut self.out, req);
                    }
                    Asker::Binary(req) => bin::encode::flush_disabled(&mut self.out, req),
                }
            }
            (Control::Version, Asker::Ascii(_)) => {
                encode::version(&mut self.out, crate::protocol::MEMCACHED_VERSION)
            }
            (Control::Version, Asker::Binary(req)) => {
                bin::encode::version(&mut self.out, req, crate::protocol::MEMCACHED_VERSION)
            }
            (Control::Verbosity { level }, _) => {
                // memcached's verbosity is server-wide: a tenant's would
                // replace the operator's -v and show in every other
                // tenant's `stats settings`. A tenant gets memcached's OK
                // and changes nothing.
                if !self.session.multi_tenant() {
                    exec::VERBOSITY.store(level.min(2) as u8, Ordering::Relaxed);
                }
                if !noreply {
                    self.out.put_slice(reply::OK);
                }
            }
            (Control::Quit, Asker::Ascii(_)) => return Flow::Close,
            (Control::Quit, Asker::Binary(req)) => {
                bin::encode::quit(&mut self.out, req);
                return Flow::Close;
            }
            // mn has no key: answered here, after every earlier reply (M-mn).
            (Control::Noop, Asker::Ascii(_)) => self.out.put_slice(reply::META_MN),
            (Control::Noop, Asker::Binary(req)) => bin::encode::noop(&mut self.out, req),
            // Earlier forwarded ops have landed (Control::needs_round).
            (Control::Stats, Asker::Ascii(req)) => {
                if let Command::Stats { args } = &req.cmd {
                    self.with_scope(|scope, out| exec::stats_cmd::stats(scope, args, out));
                }
            }
            (Control::Stats, Asker::Binary(req)) => {
                self.with_scope(|scope, out| run_binary::stat(scope, req, out))
            }
            // Auto-discovery: the process-wide node list, answered here.
            (Control::ConfigGet, Asker::Ascii(req)) => {
                if let Command::ConfigGet { key } = &req.cmd {
                    exec::config_cmd::ascii(key, &mut self.out);
                }
            }
            (Control::ConfigGet, Asker::Binary(req)) => {
                exec::config_cmd::binary(req, &mut self.out)
            }
            (Control::CacheMemlimit { megabytes }, _) => {
                let line = if self.session.multi_tenant() {
                    self.tenant_memlimit(megabytes)
                } else {
                    self.memlimit(megabytes)
                };
                if !noreply {
                    self.out.put_slice(line);
                }
            }
            (Control::Shutdown, _) => {
                // A tenant never stops the server, whatever -A says.
                if !settings.enable_shutdown || self.session.multi_tenant() {
                    // memcached 1.6.18's wording (t/shutdown.t).
                    self.out.put_slice(reply::ERROR_SHUTDOWN_NOT_ENABLED);
                    return Flow::Continue;
                }
                core.server.shutdown.store(true, Ordering::Release);
                return Flow::Close;
            }
            // A tenant reloads nothing server-wide: it gets the answer of a
            // memcached built without TLS (operators have SIGHUP and the
            // admin route).
            (Control::RefreshCerts, Asker::Ascii(_)) if !self.session.multi_tenant() => {
                let answer = super::tls::refresh(&core.server);
                if !noreply {
                    self.out.put_slice(&answer);
                }
            }
            // No authentication in open mode: memcached built without SASL
            // answers these as unknown commands.
            (
                Control::SaslListMechs | Control::SaslAuth | Control::SaslStep,
                Asker::Binary(req),
            ) if self.session.multi_tenant() => return self.sasl(c, req),
            (_, Asker::Binary(req)) => bin::encode::unknown_command(&mut self.out, req),
            (_, Asker::Ascii(_)) => self.out.put_slice(reply::ERROR),
        }
        Flow::Continue
    }

    /// Runs `f` with the stats scope of this connection (its cache's
    /// counters and plan in multi-tenant mode, the server's in open mode)
    /// and the reply buffer.
    fn with_scope(&mut self, f: impl FnOnce(&Scope<'_>, &mut BytesMut)) {
        let registry = crate::stats::cache(self.session.cache);
        let cache_conns = self
            .core
            .registry
            .borrow()
            .cache(self.session.cache)
            .map_or(0, |c| c.max_connections);
        let scope = Scope {
            config: &self.core.server.config,
            stats: &registry,
            cache: self
                .session
                .login()
                .map(|s| (s.cache_id, self.core.plan(s.cache_id))),
            cache_conns,
            tls: self.core.server.tls.as_deref(),
        };
        f(&scope, &mut self.out);
    }

    /// Queues `op` for `dest`; its reply will be spliced in at the current
    /// end of the replies.
    fn forward(&mut self, dest: usize, op: RemoteOp) {
        let core = &self.core;
        let fwd = self
            .fwd
            .get_or_insert_with(|| core.forwardings.borrow_mut().pop().unwrap_or_default());
        fwd.push(core.n, dest, op, self.out.len());
    }

    /// Queues a server-wide op for every other core (this one applied it inline).
    fn forward_to_others(&mut self, op: impl Fn() -> RemoteOp) {
        let (me, n) = (self.core.id, self.core.n);
        for dest in (0..n).filter(|d| *d != me) {
            self.forward(dest, op());
        }
    }

    /// flush_all on every core: here at once, on the others in order behind
    /// this connection's earlier forwarded ops.
    fn flush_all(&mut self, delay: i64, now: u32) {
        let core = self.core.clone();
        self.session.stats.cmd_flush.incr();
        let at = exec::flush_time(delay, now);
        core.shard(self.session.cache).flush(at, now);
        self.forward_to_others(|| RemoteOp::Flush { at });
    }

    /// Binds the connection to a login (and its cache) if the cache's
    /// connection limit has room; false, the refusal counted in the
    /// cache's `rejected_connections`, if not. The core's registry copy is
    /// current here: both logins refresh it first.
    pub(super) fn log_in(&mut self, login: tenancy::Session) -> bool {
        self.log_out();
        let core = self.core.clone();
        let registry = crate::stats::cache(login.cache_id);
        let stats = registry.core(core.id);
        let limit = core
            .registry
            .borrow()
            .cache(login.cache_id)
            .map_or(0, |c| c.max_connections);
        let Some(seat) = registry.take_seat(limit) else {
            stats.rejected_connections.incr();
            return false;
        };
        self.activity.cache.store(login.cache_id, Ordering::Relaxed);
        core.sessions.borrow_mut().insert(self.fd, login.clone());
        let version = core.registry.borrow().version();
        self.session.log_in(login, seat, stats, version);
        true
    }

    pub fn log_out(&mut self) {
        if self.session.log_out(&self.core.stats) {
            self.core.sessions.borrow_mut().remove(&self.fd);
            self.activity.cache.store(0, Ordering::Relaxed);
        }
    }

    /// The first command of a multi-tenant text connection (protocol.md
    /// §1.5).
    pub fn ascii_auth(&mut self, req: &Request) -> Flow {
        let core = self.core.clone();
        // A credential created a moment ago may not have reached this
        // core's tick yet: look for a newer snapshot first.
        if !matches!(req.cmd, Command::Store { .. } | Command::TooLarge { .. }) {
            self.out.put_slice(reply::CLIENT_ERROR_UNAUTHENTICATED);
            return Flow::Continue;
        }
        core.refresh_registry();
        let line = match session::ascii_login(&core.registry.borrow(), req) {
            AsciiLogin::Attempt(result) => {
                core.stats.auth_cmds.incr();
                match result {
                    Ok(login) => {
                        count_auth(core.id, Some(login.cache_id), false);
                        if !self.log_in(login) {
                            // The cache is at its connection limit:
                            // memcached's answer at -c, then hang up.
                            self.out.put_slice(reply::ERROR_TOO_MANY_CONNECTIONS);
                            return Flow::Close;
                        }
                        reply::STORED
                    }
                    Err((line, cache)) => {
                        core.stats.auth_errors.incr();
                        count_auth(core.id, cache, true);
                        line
                    }
                }
            }
            AsciiLogin::TooLong(cache) => {
                core.stats.auth_cmds.incr();
                core.stats.auth_errors.incr();
                count_auth(core.id, cache, true);
                reply::CLIENT_ERROR_AUTH_TOKEN_TOO_LONG
            }
            AsciiLogin::NotLogin => reply::CLIENT_ERROR_UNAUTHENTICATED,
        };
        self.out.put_slice(line);
        Flow::Continue
    }

    /// Binary SASL (protocol.md §1.7): LIST_MECHS answers `PLAIN`; AUTH
    /// checks a PLAIN message; STEP has nothing to continue (PLAIN is one
    /// step). A failure keeps the connection open, as memcached does, so a
    /// client may retry. Earlier forwarded ops went out before an AUTH
    /// (Control::needs_round), so none are left for the previous cache.
    ///
    /// Valid credentials of a cache at its connection limit get an auth
    /// error saying `Too many open connections` and the connection is
    /// closed: memcached has no binary status for it (it writes its ASCII
    /// line before reading anything), and a binary client reads a reply to
    /// its AUTH as a binary frame, so the refusal is the one every client
    /// already handles there.
    fn sasl(&mut self, c: Control, req: &BinRequest) -> Flow {
        let core = self.core.clone();
        match c {
            Control::SaslListMechs => {
                bin::encode::success_value(&mut self.out, req, tenancy::plain_mechs().as_bytes())
            }
            Control::SaslAuth => {
                core.stats.auth_cmds.incr();
                core.refresh_registry();
                let login = session::sasl_login(&core.registry.borrow(), req);
                match login {
                    Ok(login) => {
                        count_auth(core.id, Some(login.cache_id), false);
                        if !self.log_in(login) {
                            bin::encode::error_msg(&mut self.out, req, Status::AuthError, TOO_MANY);
                            return Flow::Close;
                        }
                        bin::encode::success_value(&mut self.out, req, b"Authenticated");
                    }
                    Err(cache) => {
                        core.stats.auth_errors.incr();
                        count_auth(core.id, cache, true);
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
        Flow::Continue
    }

    /// cache_memlimit on a hosted cache: lowers (or restores) the cache's own
    /// limit, never above the plan the operator gave it.
    fn tenant_memlimit(&mut self, megabytes: u64) -> &'static [u8] {
        if megabytes < 8 {
            return reply::MEMLIMIT_TOO_SMALL;
        }
        if !self.session.may_write() {
            return reply::NOT_STORED;
        }
        let core = self.core.clone();
        let cache = self.session.cache;
        let plan = core
            .registry
            .borrow()
            .cache(cache)
            .map_or(0, |c| c.memory_limit);
        let want = megabytes.saturating_mul(1 << 20);
        if want > plan {
            return reply::CLIENT_ERROR_MEMLIMIT_ABOVE_PLAN;
        }
        if let Some(t) = &core.server.tenants {
            t.set_own_limit(cache, want);
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

/// Counts a login attempt (and, when it failed, an auth error) in the
/// stats of the cache whose credential it named, on core `core`; the
/// server-wide counters are kept by the caller. Attempts naming no known
/// credential count server-wide only.
fn count_auth(core: usize, cache: Option<u32>, failed: bool) {
    let Some(id) = cache else {
        return;
    };
    let stats = crate::stats::cache(id).core(core);
    stats.auth_cmds.incr();
    if failed {
        stats.auth_errors.incr();
    }
}
