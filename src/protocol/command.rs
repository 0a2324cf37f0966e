//! Protocol-neutral requests: what a client asked for, independent of the wire
//! format it arrived in. Parsers (ascii, later meta and binary) produce these;
//! `crate::exec` executes them against a shard's `Store`.
//!
//! Keys and values are `Bytes` slices of the connection's read buffer, so a
//! parsed request costs no copy until the single copy into storage, and can be
//! sent to another core (`Bytes` is `Send`).

use bytes::Bytes;

/// How a storage command treats an existing (or missing) item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// `set`: store unconditionally.
    Set,
    /// `add`: store only if the key is absent.
    Add,
    /// `replace`: store only if the key is present.
    Replace,
    /// `append`: add data after the existing value (flags/exptime ignored).
    Append,
    /// `prepend`: add data before the existing value (flags/exptime ignored).
    Prepend,
    /// `cas`: store only if the item's CAS unique equals `cas`.
    Cas,
}

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `get`/`gets`/`gat`/`gats` with one or more keys (A-get, A-gets, A-gat).
    /// `touch` holds the raw exptime of gat/gats.
    Get {
        keys: Vec<Bytes>,
        with_cas: bool,
        touch: Option<i64>,
    },
    /// `set`/`add`/`replace`/`append`/`prepend`/`cas` with its data block.
    /// `cas` is 0 unless `mode == Cas`.
    Store {
        mode: StoreMode,
        key: Bytes,
        flags: u32,
        exptime: i64,
        data: Bytes,
        cas: u64,
    },
    /// A storage command whose declared length exceeds the item size limit: the
    /// parser swallows the data block without buffering it. Execution answers
    /// `SERVER_ERROR object too large for cache` and, for `set`, unlinks the old
    /// value as memcached does.
    TooLarge { mode: StoreMode, key: Bytes },
    /// `delete <key>` (A-delete).
    Delete { key: Bytes },
    /// `incr`/`decr` (A-incr).
    Arith { key: Bytes, incr: bool, delta: u64 },
    /// `touch <key> <exptime>` (A-touch).
    Touch { key: Bytes, exptime: i64 },
    /// `flush_all [delay]` (A-flush); `delay` 0 = now.
    FlushAll { delay: i64 },
    /// `version`.
    Version,
    /// `verbosity <n>`.
    Verbosity { level: u32 },
    /// `quit`: close the connection without a reply.
    Quit,
    /// `stats [args...]`; args are the tokens after `stats`.
    Stats { args: Vec<Bytes> },
    /// `cache_memlimit <MB>`.
    CacheMemlimit { megabytes: u64 },
    /// `shutdown [graceful]` — answered `SERVER_ERROR: shutdown not enabled`
    /// unless enabled; `graceful` true for `shutdown graceful`.
    Shutdown { graceful: bool },
    /// `refresh_certs [noreply]`: reload the TLS certificate and key.
    RefreshCerts,
    /// `config get <key>`: ElastiCache's cluster auto-discovery (`key` is
    /// `cluster` for the node list; any other key is unknown). Answered by
    /// the connection's own core from [`crate::topology::view`].
    ConfigGet { key: Bytes },
    /// A meta command (M-mg, M-ms, M-md, M-ma, M-me, M-mn), boxed to keep
    /// `Command` small. `noreply` is always false: meta uses its `q` flag.
    Meta(Box<crate::protocol::meta::MetaRequest>),
}

/// A parsed request plus its reply-suppression flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub cmd: Command,
    /// `noreply` was the last token: the reply (success or most errors) is suppressed.
    pub noreply: bool,
}

impl Command {
    /// The key that decides which shard owns this request, if exactly one.
    /// `Get` is split per key by the router; broadcast commands return `None`.
    pub fn single_key(&self) -> Option<&Bytes> {
        match self {
            Command::Store { key, .. }
            | Command::TooLarge { key, .. }
            | Command::Delete { key }
            | Command::Arith { key, .. }
            | Command::Touch { key, .. } => Some(key),
            // `mn` has no key: the connection answers it.
            Command::Meta(m) => m.routing_key(),
            _ => None,
        }
    }
}
