//! One neutral view of a request, whatever wire it came on: its latency
//! class, whether it changes data, and, for requests that address no key,
//! which server-wide command it is. The runtime and the session decide from
//! this view instead of keeping a match table per wire.

use crate::latency::Class;
use crate::protocol::binary::{BinCommand, BinRequest};
use crate::protocol::meta::MetaCmd;
use crate::protocol::{Command, Request};

/// What a request is, as far as routing, capabilities and latency go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub class: Class,
    /// Changes data: refused for a read-only credential (T-3).
    pub writes: bool,
    /// Reads and extends an item's life (gat/gats, binary GAT): a
    /// read-only credential may read but not touch.
    pub touches: bool,
}

/// A command that addresses no key: answered by the core the connection
/// lives on (possibly after reaching every other core).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Flush {
        delay: i64,
    },
    Version,
    Verbosity {
        level: u32,
    },
    Quit,
    Noop,
    Stats,
    CacheMemlimit {
        megabytes: u64,
    },
    Shutdown,
    /// `refresh_certs`: reload the TLS certificate (ASCII).
    RefreshCerts,
    /// `config get <key>` (ElastiCache auto-discovery), both wires.
    ConfigGet,
    /// A multi-key get (text protocol): split per owner core.
    MultiGet,
    /// Binary SASL: LIST_MECHS, AUTH, STEP.
    SaslListMechs,
    SaslAuth,
    SaslStep,
    Unknown,
}

impl Control {
    /// Earlier forwarded requests must be answered before this one runs
    /// (counters are read, or the connection changes cache).
    pub fn needs_round(self) -> bool {
        matches!(self, Control::Stats | Control::SaslAuth)
    }
}

pub fn ascii(cmd: &Command) -> View {
    let (class, writes) = match cmd {
        Command::Get { .. } => (Class::Get, false),
        Command::Store { .. } | Command::TooLarge { .. } => (Class::Set, true),
        Command::Delete { .. } => (Class::Delete, true),
        Command::Arith { .. } => (Class::IncrDecr, true),
        Command::Touch { .. } => (Class::Touch, true),
        Command::FlushAll { .. } => (Class::Flush, false),
        Command::Meta(m) => match m.cmd {
            MetaCmd::Get => (Class::Get, false),
            MetaCmd::Set => (Class::Set, true),
            MetaCmd::Delete => (Class::Delete, true),
            MetaCmd::Arith => (Class::IncrDecr, true),
            _ => (Class::Other, false),
        },
        _ => (Class::Other, false),
    };
    let touches = matches!(cmd, Command::Get { touch: Some(_), .. });
    View {
        class,
        writes,
        touches,
    }
}

pub fn binary(cmd: &BinCommand) -> View {
    let (class, writes) = match cmd {
        // Binary GAT changes the item's life: a write for T-3.
        BinCommand::Get { touch, .. } => (Class::Get, touch.is_some()),
        BinCommand::Store { .. } | BinCommand::TooLarge { .. } => (Class::Set, true),
        BinCommand::Delete => (Class::Delete, true),
        BinCommand::Arith { .. } => (Class::IncrDecr, true),
        BinCommand::Touch { .. } => (Class::Touch, true),
        BinCommand::Flush { .. } => (Class::Flush, false),
        _ => (Class::Other, false),
    };
    View {
        class,
        writes,
        touches: matches!(cmd, BinCommand::Get { touch: Some(_), .. }),
    }
}

/// The server-wide command of a text request that has no single key.
pub fn ascii_control(req: &Request) -> Control {
    match &req.cmd {
        Command::Get { .. } => Control::MultiGet,
        Command::FlushAll { delay } => Control::Flush { delay: *delay },
        Command::Version => Control::Version,
        Command::Verbosity { level } => Control::Verbosity { level: *level },
        Command::Quit => Control::Quit,
        Command::Meta(m) if m.cmd == MetaCmd::Noop => Control::Noop,
        Command::Stats { .. } => Control::Stats,
        Command::CacheMemlimit { megabytes } => Control::CacheMemlimit {
            megabytes: *megabytes,
        },
        Command::Shutdown { .. } => Control::Shutdown,
        Command::RefreshCerts => Control::RefreshCerts,
        Command::ConfigGet { .. } => Control::ConfigGet,
        _ => Control::Unknown,
    }
}

/// A binary request's server-wide command, or None when it is
/// key-addressed (it runs on its key's owner).
pub fn binary_route(req: &BinRequest) -> Option<Control> {
    req.key_for_routing().is_none().then(|| binary_control(req))
}

/// The server-wide command of a binary request that has no key.
pub fn binary_control(req: &BinRequest) -> Control {
    match req.cmd {
        BinCommand::Flush { delay } => Control::Flush {
            delay: delay as i64,
        },
        BinCommand::Version => Control::Version,
        BinCommand::Quit => Control::Quit,
        BinCommand::Noop => Control::Noop,
        BinCommand::Stat => Control::Stats,
        BinCommand::SaslListMechs => Control::SaslListMechs,
        BinCommand::SaslAuth => Control::SaslAuth,
        BinCommand::SaslStep => Control::SaslStep,
        BinCommand::ConfigGet => Control::ConfigGet,
        _ => Control::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn gat_reads_but_touches() {
        let v = ascii(&Command::Get {
            keys: vec![Bytes::from_static(b"k")],
            with_cas: false,
            touch: Some(10),
        });
        assert_eq!((v.class, v.writes, v.touches), (Class::Get, false, true));
    }

    #[test]
    fn stores_write() {
        let v = ascii(&Command::Delete {
            key: Bytes::from_static(b"k"),
        });
        assert_eq!((v.class, v.writes), (Class::Delete, true));
        assert!(!ascii(&Command::Version).writes);
    }

    #[test]
    fn stats_and_auth_wait_for_a_round() {
        assert!(Control::Stats.needs_round());
        assert!(Control::SaslAuth.needs_round());
        assert!(!Control::Version.needs_round());
    }
}
