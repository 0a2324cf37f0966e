//! What a client connection's requests mean, whatever the wire: protocol
//! detection and parsing, the multi-tenant authentication gate, credential
//! capabilities and the login state. Plain Rust with no I/O: the runtime
//! moves bytes and batches and carries out what the session decides.

pub mod view;

use crate::latency::{Class, CLASSES};
use crate::protocol::ascii::{AsciiParser, Parsed};
use crate::protocol::binary::{self as bin, BinParsed, BinRequest, BinaryParser, Status};
use crate::protocol::{reply, Command, Request, StoreMode};
use crate::stats::{CoreStats, Seat};
use crate::tenancy::{self, Registry};
use bytes::BytesMut;
use std::sync::Arc;
pub use view::{Control, View};

/// The most an unauthenticated connection may have buffered: the longest
/// ASCII login (its token, `MAX_AUTH_TOKEN_LEN`) plus its command
/// line; binary SASL PLAIN messages are far smaller.
pub const PREAUTH_BYTES: usize = tenancy::ascii_auth::MAX_AUTH_TOKEN_LEN + 1024;

/// The connection's protocol, chosen by its first byte (X-11: 0x80 = binary).
enum Wire {
    Undetected,
    Ascii(AsciiParser),
    Binary(BinaryParser),
}

/// One step of parsing, whatever the protocol.
pub enum Next {
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

pub enum Reply {
    Static(&'static [u8]),
    Owned(BytesMut),
}

/// What the gate decided about a request before it runs.
pub enum Gate {
    /// Run it.
    Pass,
    /// A multi-tenant text connection's first command: it must log in.
    Authenticate,
    /// Refused; the bytes (if any) are the whole reply.
    Refuse(&'static [u8]),
    /// Binary refusal with this status; `close` hangs up afterwards (B-3).
    RefuseBinary { status: Status, close: bool },
}

/// Server-wide settings the session needs to parse and gate requests.
#[derive(Clone, Copy)]
pub struct Limits {
    pub item_size_max: usize,
    pub shutdown_enabled: bool,
}

/// One connection's protocol and login state.
pub struct Session {
    multi_tenant: bool,
    limits: Limits,
    wire: Wire,
    /// Who authenticated (multi-tenant mode); None before that.
    login: Option<tenancy::Session>,
    /// The cache this connection's keys live in (0 in open mode).
    pub cache: u32,
    /// Counters this connection's traffic goes to: the server's before
    /// authentication, its cache's after.
    pub stats: Arc<CoreStats>,
    /// The login's place in its cache's connection limit (given back when
    /// the login ends).
    seat: Option<Seat>,
    /// Registry version `login` was last checked against.
    seen_version: u64,
    /// Requests of each latency class since the last `take_classes`.
    classes: [u32; 7],
}

impl Session {
    pub fn new(multi_tenant: bool, limits: Limits, server_stats: Arc<CoreStats>) -> Self {
        Session {
            multi_tenant,
            limits,
            wire: Wire::Undetected,
            login: None,
            cache: 0,
            stats: server_stats,
            seat: None,
            seen_version: 0,
            classes: [0; 7],
        }
    }

    pub fn multi_tenant(&self) -> bool {
        self.multi_tenant
    }

    pub fn login(&self) -> Option<&tenancy::Session> {
        self.login.as_ref()
    }

    pub fn authenticated(&self) -> bool {
        self.login.is_some()
    }

    /// Multi-tenant mode, before authentication: what to answer (then
    /// hang up) when `buffered` bytes of an unfinished request are waiting.
    /// A login fits in `PREAUTH_BYTES`; anything bigger is not one, and a
    /// stranger does not get to make the server hold an item-sized buffer.
    pub fn preauth_overflow(&self, buffered: usize) -> Option<Next> {
        if !self.multi_tenant || self.authenticated() || buffered <= PREAUTH_BYTES {
            return None;
        }
        Some(match self.wire {
            Wire::Binary(_) => Next::Close,
            _ => Next::Reply {
                bytes: Reply::Static(reply::CLIENT_ERROR_AUTH_TOKEN_TOO_LONG),
                close: true,
            },
        })
    }

    /// Open mode has no credentials: everything is allowed.
    pub fn may_write(&self) -> bool {
        self.login.as_ref().is_none_or(|s| s.caps.write)
    }

    pub fn may_flush(&self) -> bool {
        self.login.as_ref().is_none_or(|s| s.caps.flush)
    }

    /// Parses the next request, detecting the protocol on the first byte.
    pub fn next(&mut self, rbuf: &mut BytesMut) -> Next {
        if let Wire::Undetected = self.wire {
            let Some(&first) = rbuf.first() else {
                return Next::Incomplete;
            };
            let max = self.limits.item_size_max;
            self.wire = if first == bin::header::REQ_MAGIC {
                Wire::Binary(BinaryParser::new(max))
            } else {
                let mut p = AsciiParser::new(max);
                p.set_shutdown_enabled(self.limits.shutdown_enabled);
                Wire::Ascii(p)
            };
        }
        let unauthenticated = self.multi_tenant && self.login.is_none();
        match &mut self.wire {
            Wire::Undetected => Next::Incomplete,
            Wire::Ascii(p) => match p.parse(rbuf) {
                Parsed::Request(r) => Next::Ascii(r),
                Parsed::Incomplete => Next::Incomplete,
                // Before authentication an unknown command is just another
                // command that needs a session (T-1).
                Parsed::Error(line) if unauthenticated && line.starts_with(b"ERROR") => {
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

    /// Counts a request in its latency class; authentication is not a
    /// store, whatever it looks like.
    pub fn count(&mut self, view: &View) {
        let class = if self.multi_tenant && self.login.is_none() {
            Class::Other
        } else {
            view.class
        };
        self.classes[class as usize] += 1;
    }

    /// The per-class request counts since the last call, reset.
    pub fn take_classes(&mut self) -> impl Iterator<Item = (Class, u64)> + '_ {
        CLASSES
            .into_iter()
            .map(|c| (c, u64::from(std::mem::take(&mut self.classes[c as usize]))))
            .filter(|(_, n)| *n > 0)
    }

    /// Multi-tenant gate of a text request: log in first, then the
    /// credential's capabilities (T-1, T-3). A read-only credential's
    /// gat/gats still reads, without extending the item's life.
    pub fn gate_ascii(&self, req: &mut Request, view: &View) -> Gate {
        if !self.multi_tenant {
            return Gate::Pass;
        }
        if self.login.is_none() {
            // Auto-discovery comes before login (clients find the nodes,
            // then log in to one) and reads no cache: any connection may ask.
            if matches!(req.cmd, Command::ConfigGet { .. }) {
                return Gate::Pass;
            }
            return Gate::Authenticate;
        }
        if self.may_write() {
            return Gate::Pass;
        }
        if view.writes {
            let refusal = match req.cmd {
                Command::Meta(_) => reply::META_NS,
                _ => reply::NOT_STORED,
            };
            return Gate::Refuse(if req.noreply { b"" } else { refusal });
        }
        if view.touches {
            if let Command::Get { touch, .. } = &mut req.cmd {
                *touch = None;
            }
        }
        Gate::Pass
    }

    /// Multi-tenant gate of a binary request: SASL and Version pass,
    /// anything else needs a session (B-3 / T-1), writes need the write
    /// capability (T-3).
    pub fn gate_binary(&self, control: Option<Control>, view: &View) -> Gate {
        if !self.multi_tenant {
            return Gate::Pass;
        }
        match control {
            Some(Control::SaslListMechs | Control::SaslAuth | Control::SaslStep) => {
                return Gate::Pass
            }
            // memcached answers Version before authentication too, and
            // auto-discovery (config get) comes before login.
            Some(Control::Version | Control::ConfigGet) => {}
            _ if self.login.is_none() => {
                return Gate::RefuseBinary {
                    status: Status::AuthError,
                    close: true,
                }
            }
            _ => {}
        }
        if !self.may_write() && view.writes {
            return Gate::RefuseBinary {
                status: Status::NotStored,
                close: false,
            };
        }
        Gate::Pass
    }

    /// Binds the connection to a login, its seat in the cache's connection
    /// limit and the cache's counters.
    pub fn log_in(
        &mut self,
        login: tenancy::Session,
        seat: Seat,
        stats: Arc<CoreStats>,
        version: u64,
    ) {
        self.cache = login.cache_id;
        self.seat = Some(seat);
        self.stats = stats;
        self.stats.curr_connections.incr();
        self.stats.total_connections.incr();
        self.seen_version = version;
        self.login = Some(login);
    }

    /// Drops the login (if any); traffic counts for the server again.
    /// Returns whether there was one.
    pub fn log_out(&mut self, server_stats: &Arc<CoreStats>) -> bool {
        if self.login.take().is_none() {
            return false;
        }
        self.seat = None;
        let c = &self.stats.curr_connections;
        c.set(c.get().saturating_sub(1));
        self.stats = server_stats.clone();
        self.cache = 0;
        true
    }

    /// Re-checks the login against a newer registry: `Revoked` when its
    /// credential was revoked or its cache disabled or deleted (the
    /// connection is then closed); `Refreshed` with the new login when its
    /// capabilities may have changed. Comparing versions first keeps the
    /// registry's shared refcount off the per-request path.
    pub fn recheck(
        &mut self,
        version: u64,
        registry: impl FnOnce() -> Arc<Registry>,
    ) -> Recheck<'_> {
        let Some(login) = &self.login else {
            return Recheck::Same;
        };
        if version == self.seen_version {
            return Recheck::Same;
        }
        self.seen_version = version;
        match registry().refresh(login) {
            Some(next) => Recheck::Refreshed(self.login.insert(next)),
            None => Recheck::Revoked,
        }
    }
}

/// What a newer registry says of a connection's login.
pub enum Recheck<'a> {
    Same,
    Refreshed(&'a tenancy::Session),
    Revoked,
}

/// The outcome of a text login attempt (protocol.md §1.5): a `set`
/// carrying the credentials; anything else is T-1.
pub enum AsciiLogin {
    /// Counted as an auth command; `Ok` logs in. `Err` names the cache
    /// whose credential the attempt named, if any (its `auth_errors`).
    Attempt(Result<tenancy::Session, (&'static [u8], Option<u32>)>),
    /// Counted as a failed auth command (of the cache the key names).
    TooLong(Option<u32>),
    /// Not a login at all.
    NotLogin,
}

pub fn ascii_login(registry: &Registry, req: &Request) -> AsciiLogin {
    match &req.cmd {
        Command::Store {
            mode: StoreMode::Set,
            key,
            data,
            ..
        } => AsciiLogin::Attempt(
            tenancy::authenticate_ascii(registry, key, data)
                .map_err(|line| (line, tenancy::ascii_claimed_cache(registry, key, data))),
        ),
        Command::TooLarge {
            mode: StoreMode::Set,
            key,
        } => AsciiLogin::TooLong(registry.cache_of(key)),
        _ => AsciiLogin::NotLogin,
    }
}

/// Binary SASL AUTH (protocol.md §1.7): PLAIN through rsasl; any other
/// mechanism fails. `Err` names the cache whose credential a failed PLAIN
/// message named, if any.
pub fn sasl_login(registry: &Registry, req: &BinRequest) -> Result<tenancy::Session, Option<u32>> {
    if &req.key[..] != b"PLAIN" {
        return Err(None);
    }
    tenancy::authenticate_plain(registry, &req.value)
        .ok_or_else(|| tenancy::plain_claimed_cache(registry, &req.value))
}
