//! A client connection as the runtime serves one (`runtime/conn.rs`,
//! `runtime/dispatch.rs`), minus the sockets and the other cores: the
//! session detects the protocol, parses and gates each request, logs in
//! through ASCII auth or SASL PLAIN against a registry of fixed caches,
//! and what passes the gate runs on the logged-in cache's shard.
//!
//! Checked on every request: before login, only what the gate lets a
//! stranger do (config get, version, SASL) runs; a credential without the
//! write capability never runs a write; an unauthenticated connection
//! never holds more than a login's worth of bytes; every binary answer is
//! whole frames.

use std::collections::HashMap;
use std::sync::{Arc, Once};

use bytes::{BufMut, BytesMut};

use super::{binary as bin_target, text, ITEM_SIZE_MAX, SHARD_MEMORY};
use crate::exec::Shard;
use crate::protocol::binary::{encode, BinCommand, BinRequest, Status};
use crate::protocol::{reply, Command, Request};
use crate::session::{
    self, view, AsciiLogin, Control, Gate, Limits, Next, Recheck, Reply, Session, PREAUTH_BYTES,
};
use crate::stats::CoreStats;
use crate::tenancy::{self, Cache, Caps, Credential, Registry};

/// The credentials the fuzzer logs in with (seeds hold them): cache 1's
/// full and read-only ones, cache 2's (one connection at a time) and
/// disabled cache 3's.
pub const FULL: (&str, &str) = ("F0221A", "00112233445566778899AABBCCDDEEFF");
pub const READ_ONLY: (&str, &str) = ("F0221B", "0123456789ABCDEF0123456789ABCDEF");
pub const ONE_CONN: (&str, &str) = ("F0221C", "FEDCBA9876543210FEDCBA9876543210");
pub const DISABLED: (&str, &str) = ("F0221D", "AAAABBBBCCCCDDDDEEEEFFFF00001111");

/// The caches and credentials at `version`. From version 2 on (the
/// operator's changes while the connection is open) the full credential
/// is removed and the read-only one may write.
fn registry(version: u64) -> Registry {
    let cache = |id, max_connections, enabled| Cache {
        id,
        name: format!("c{id}"),
        memory_limit: SHARD_MEMORY as u64,
        max_connections,
        enabled,
        created: 0,
    };
    let cred = |(username, password): (&str, &str), cache_id, caps| Credential {
        username: username.into(),
        password: password.into(),
        cache_id,
        caps,
        primary: false,
        created: 0,
        cert_fingerprints: Vec::new(),
    };
    let read_only = Caps {
        write: version > 1,
        flush: false,
        api: false,
    };
    let mut creds = vec![
        cred(READ_ONLY, 1, read_only),
        cred(ONE_CONN, 2, Caps::ALL),
        cred(DISABLED, 3, Caps::ALL),
    ];
    if version == 1 {
        creds.push(cred(FULL, 1, Caps::ALL));
    }
    let caches = [cache(1, 0, true), cache(2, 1, true), cache(3, 0, false)];
    Registry::build(version, &caches, &creds)
}

/// The first byte: bit 0 multi-tenant mode, bit 1 the registry changes
/// after the first read, the other bits where the first read ends; the
/// rest is what the client sent.
pub fn session(data: &[u8]) {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        crate::stats::init(1);
    });
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let multi_tenant = first & 1 == 1;
    let change = first & 2 == 2;
    let split = (usize::from(first >> 2) * 16).min(rest.len());
    let mut conn = Conn::new(multi_tenant);
    let mut buf = BytesMut::from(&rest[..split]);
    if !conn.drain(&mut buf) {
        return;
    }
    if change {
        conn.registry = Arc::new(registry(2));
        let version = conn.registry.version();
        let registry = conn.registry.clone();
        match conn.session.recheck(version, || registry) {
            Recheck::Revoked => return,
            // Every credential left may write from version 2 on.
            Recheck::Refreshed(login) => assert!(login.caps.write, "{login:?}"),
            Recheck::Same => {}
        }
    }
    buf.extend_from_slice(&rest[split..]);
    conn.drain(&mut buf);
}

struct Conn {
    session: Session,
    registry: Arc<Registry>,
    server_stats: Arc<CoreStats>,
    shards: HashMap<u32, Shard>,
    now: u32,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Gives the login's seat back (the cache's connection limit).
        self.session.log_out(&self.server_stats);
    }
}

impl Conn {
    fn new(multi_tenant: bool) -> Conn {
        let limits = Limits {
            item_size_max: ITEM_SIZE_MAX,
            shutdown_enabled: false,
        };
        let server_stats = crate::stats::cache(0).core(0);
        Conn {
            session: Session::new(multi_tenant, limits, server_stats.clone()),
            registry: Arc::new(registry(1)),
            server_stats,
            shards: HashMap::new(),
            now: crate::clock::now(),
        }
    }

    fn shard(&mut self) -> &mut Shard {
        self.shards
            .entry(self.session.cache)
            .or_insert_with(|| Shard::standalone(SHARD_MEMORY, ITEM_SIZE_MAX, false))
    }

    /// Answers every complete request in `buf`, as one read's batch;
    /// false once the connection is closed.
    fn drain(&mut self, buf: &mut BytesMut) -> bool {
        loop {
            let before = buf.len();
            let mut out = BytesMut::new();
            let open = match self.session.next(buf) {
                Next::Ascii(mut req) => {
                    let v = view::ascii(&req.cmd);
                    self.session.count(&v);
                    match self.session.gate_ascii(&mut req, &v) {
                        Gate::Pass => {
                            assert!(!v.writes || self.session.may_write(), "{req:?} passed");
                            if self.session.multi_tenant() && !self.session.authenticated() {
                                assert!(matches!(req.cmd, Command::ConfigGet { .. }), "{req:?}");
                            }
                            match req.cmd {
                                Command::Quit => return false,
                                Command::FlushAll { .. } if !self.session.may_flush() => {
                                    out.put_slice(reply::CLIENT_ERROR_FLUSH_NOT_ALLOWED)
                                }
                                _ => {
                                    let now = self.now;
                                    text::execute(self.shard(), &req, now, &mut out);
                                }
                            }
                            true
                        }
                        Gate::Authenticate => self.ascii_auth(&req, &mut out),
                        Gate::Refuse(bytes) => {
                            assert!(v.writes && !self.session.may_write());
                            out.put_slice(bytes);
                            true
                        }
                        Gate::RefuseBinary { .. } => unreachable!("a text request"),
                    }
                }
                Next::Binary(req) => {
                    let v = view::binary(&req.cmd);
                    self.session.count(&v);
                    let control = view::binary_route(&req);
                    let open = match self.session.gate_binary(control, &v) {
                        Gate::RefuseBinary { status, close } => {
                            encode::error(&mut out, &req, status);
                            !close
                        }
                        _ => {
                            assert!(!v.writes || self.session.may_write(), "{req:?} passed");
                            if self.session.multi_tenant() && !self.session.authenticated() {
                                assert!(control.is_some_and(stranger_may), "{req:?} passed");
                            }
                            self.run_binary(&req, control, &mut out)
                        }
                    };
                    bin_target::check_frames(&out, &req);
                    open
                }
                Next::Incomplete => {
                    if let Some(step) = self.session.preauth_overflow(buf.len()) {
                        assert!(matches!(
                            step,
                            Next::Close | Next::Reply { close: true, .. }
                        ));
                        return false;
                    }
                    assert!(
                        !self.session.multi_tenant()
                            || self.session.authenticated()
                            || buf.len() <= PREAUTH_BYTES
                    );
                    return true;
                }
                Next::Reply { bytes, close } => {
                    match bytes {
                        Reply::Static(b) => out.put_slice(b),
                        Reply::Owned(b) => out.put_slice(&b),
                    }
                    !close
                }
                Next::Silent => true,
                Next::Close => false,
            };
            if !open {
                return false;
            }
            assert!(buf.len() < before, "a request consumed nothing");
        }
    }

    /// `Conn::ascii_auth` (runtime/dispatch.rs): a text connection's first
    /// command must be a login.
    fn ascii_auth(&mut self, req: &Request, out: &mut BytesMut) -> bool {
        if !matches!(req.cmd, Command::Store { .. } | Command::TooLarge { .. }) {
            out.put_slice(reply::CLIENT_ERROR_UNAUTHENTICATED);
            return true;
        }
        match session::ascii_login(&self.registry, req) {
            AsciiLogin::Attempt(Ok(login)) => {
                if !self.log_in(login) {
                    return false;
                }
                out.put_slice(reply::STORED);
            }
            AsciiLogin::Attempt(Err((line, _))) => out.put_slice(line),
            AsciiLogin::TooLong(_) => out.put_slice(reply::CLIENT_ERROR_AUTH_TOKEN_TOO_LONG),
            AsciiLogin::NotLogin => out.put_slice(reply::CLIENT_ERROR_UNAUTHENTICATED),
        }
        true
    }

    /// `Conn::log_in`: a seat in the cache's connection limit, then the
    /// login; false (the connection closes) when the cache is full.
    fn log_in(&mut self, login: tenancy::Session) -> bool {
        assert!(self
            .registry
            .cache(login.cache_id)
            .is_some_and(|c| c.enabled));
        self.session.log_out(&self.server_stats);
        let stats = crate::stats::cache(login.cache_id);
        let limit = self
            .registry
            .cache(login.cache_id)
            .map_or(0, |c| c.max_connections);
        let Some(seat) = stats.take_seat(limit) else {
            return false;
        };
        let version = self.registry.version();
        self.session.log_in(login, seat, stats.core(0), version);
        true
    }

    /// A binary request past the gate (`Conn::run_binary`, `Conn::sasl`).
    fn run_binary(
        &mut self,
        req: &BinRequest,
        control: Option<Control>,
        out: &mut BytesMut,
    ) -> bool {
        match (control, &req.cmd) {
            (Some(Control::SaslAuth), _) if self.session.multi_tenant() => {
                match session::sasl_login(&self.registry, req) {
                    Ok(login) => {
                        if !self.log_in(login) {
                            encode::error_msg(
                                out,
                                req,
                                Status::AuthError,
                                b"Too many open connections",
                            );
                            return false;
                        }
                        encode::success_value(out, req, b"Authenticated");
                    }
                    Err(_) => encode::error(out, req, Status::AuthError),
                }
            }
            (Some(Control::SaslListMechs), _) if self.session.multi_tenant() => {
                encode::success_value(out, req, tenancy::plain_mechs().as_bytes())
            }
            (Some(Control::Quit), _) => {
                encode::quit(out, req);
                return false;
            }
            (_, BinCommand::Flush { .. }) if !self.session.may_flush() => {
                encode::flush_disabled(out, req)
            }
            (Some(Control::Flush { .. }) | None, _) => {
                let now = self.now;
                bin_target::execute(self.shard(), req, now, out);
            }
            _ => {}
        }
        true
    }
}

/// What an unauthenticated binary connection may ask (`gate_binary`).
fn stranger_may(c: Control) -> bool {
    matches!(
        c,
        Control::SaslListMechs
            | Control::SaslAuth
            | Control::SaslStep
            | Control::Version
            | Control::ConfigGet
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds' logins work: the fuzzer starts past the gate.
    #[test]
    fn fixture_credentials_log_in() {
        crate::stats::init(1);
        let text = |(user, pass): (&str, &str)| {
            format!("set {user} 0 0 {}\r\n{pass}\r\n", pass.len()).into_bytes()
        };
        let plain = |(user, pass): (&str, &str)| {
            let msg = format!("\0{user}\0{pass}");
            let mut frame = vec![0x80, 0x21, 0, 5, 0, 0, 0, 0];
            frame.extend_from_slice(&(5 + msg.len() as u32).to_be_bytes());
            frame.extend_from_slice(&[0; 12]);
            frame.extend_from_slice(b"PLAIN");
            frame.extend_from_slice(msg.as_bytes());
            frame
        };
        for (login, writes) in [
            (text(FULL), true),
            (text(READ_ONLY), false),
            (plain(FULL), true),
            (plain(ONE_CONN), true),
        ] {
            let mut conn = Conn::new(true);
            assert!(conn.drain(&mut BytesMut::from(&login[..])));
            assert!(conn.session.authenticated());
            assert_eq!(conn.session.may_write(), writes);
        }
        let mut conn = Conn::new(true);
        assert!(conn.drain(&mut BytesMut::from(&text(DISABLED)[..])));
        assert!(!conn.session.authenticated());
    }
}
