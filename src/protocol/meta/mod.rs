//! The meta protocol (protocol.md §1.6): `mg`, `ms`, `md`, `ma`, `mn`, `me`,
//! byte-exact with memcached 1.6.18 (`proto_text.c`: `_meta_flag_preparse`,
//! `process_mget_command`, `process_mset_command`, `process_mdelete_command`,
//! `process_marithmetic_command`, `process_meta_command`), plus the later
//! additions protocol.md lists (`E`, `x`, `N` with append, `s` on `ms`; taken
//! from memcached 1.6.4x, where 1.6.18 rejects or ignores them).
//!
//! Meta lines arrive through the ASCII parser ([`crate::protocol::ascii`]),
//! which hands every line whose command is `m?` to [`parse`]. A parsed meta
//! request is a protocol-neutral [`MetaRequest`] inside
//! [`Command::Meta`](crate::protocol::Command::Meta); `crate::exec::meta`
//! executes it and writes the whole reply.

pub mod base64;
pub mod encode;
pub mod parse;

use bytes::Bytes;

/// Longest `O` token, including the `O` (`MFLAG_MAX_OPAQUE_LENGTH`).
pub const MAX_OPAQUE_LEN: usize = 32;
/// memcached's `MFLAG_MAX_OPT_LENGTH`: more tokens than this (counting the
/// command, the key, the flags and the terminal token) is an error.
pub const MAX_OPT_TOKENS: usize = 20;

/// Meta reply pieces that `crate::protocol::reply` does not carry (yet):
/// one error line (with its `\r\n`, as memcached 1.6.18 spells it) and the
/// two-letter return codes (flags and `\r\n` follow them).
pub mod reply_extra {
    /// M-err: an `M` token that is not exactly one mode character
    /// (1.6.18 `_meta_flag_preparse`; seen by `ms` only, `md`/`ma` answer
    /// "invalid or duplicate flag").
    pub const CLIENT_ERROR_M_TOKEN_LENGTH: &[u8] = b"CLIENT_ERROR incorrect length for M token\r\n";
    /// M-me reply prefix.
    pub const ME_PREFIX: &[u8] = b"ME ";
    /// M-mg hit without `v`, M-ms/M-md/M-ma success.
    pub const HD: &[u8] = b"HD";
    /// M-mg / M-me miss.
    pub const EN: &[u8] = b"EN";
    /// M-ms not stored.
    pub const NS: &[u8] = b"NS";
    /// M-ms / M-md / M-ma CAS mismatch.
    pub const EX: &[u8] = b"EX";
    /// M-ms / M-md / M-ma not found.
    pub const NF: &[u8] = b"NF";
}

/// Which meta command a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaCmd {
    /// `mg <key> <flags>*` (M-mg).
    Get,
    /// `ms <key> <datalen> <flags>*` + data (M-ms).
    Set,
    /// `md <key> <flags>*` (M-md).
    Delete,
    /// `ma <key> <flags>*` (M-ma).
    Arith,
    /// `me <key> [b]` (M-me).
    Debug,
    /// `mn` (M-mn): answered `MN` by the connection itself.
    Noop,
}

/// The flag characters of a request, in request order (memcached echoes
/// return flags in this order). Each character appears at most once
/// (a repeat is `CLIENT_ERROR duplicate flag`).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct FlagOrder {
    len: u8,
    chars: [u8; MAX_OPT_TOKENS],
}

impl FlagOrder {
    /// The flags, first to last.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        &self.chars[..self.len as usize]
    }

    /// Appends a flag; ignored past capacity (the parser rejects longer lines).
    #[inline]
    pub fn push(&mut self, c: u8) {
        if (self.len as usize) < self.chars.len() {
            self.chars[self.len as usize] = c;
            self.len += 1;
        }
    }

    /// Whether `c` was given.
    #[inline]
    pub fn has(&self, c: u8) -> bool {
        self.as_slice().contains(&c)
    }
}

impl std::fmt::Debug for FlagOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FlagOrder({:?})",
            String::from_utf8_lossy(self.as_slice())
        )
    }
}

/// One parsed meta request. Exptimes are the client's raw numbers (converted
/// with [`crate::clock::realtime`] when executed, X-4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaRequest {
    pub cmd: MetaCmd,
    /// The key the item lives under: base64-decoded when `base64` (M-*: `b`).
    /// Empty for `mn`.
    pub key: Bytes,
    /// `b`: the key was sent base64-encoded; `k` echoes it encoded, plus ` b`.
    pub base64: bool,
    /// Every flag character in request order.
    pub order: FlagOrder,
    /// The whole `O` token, `O` included (echoed verbatim), or empty.
    /// Not yet length-checked for `mg`/`ma` (memcached checks while building
    /// the reply, after the item was fetched or changed).
    pub opaque: Bytes,
    /// `q`: suppress the nominal reply (M-q).
    pub quiet: bool,
    /// `v`: return the value.
    pub value: bool,
    /// `u`: no LRU bump / fetched marking.
    pub no_update: bool,
    /// `I`: invalidate — md marks stale; ms with `C` accepts a lower CAS and
    /// stores the item stale.
    pub invalidate: bool,
    /// `x` (md): drop the value, keep the item.
    pub remove_value: bool,
    /// `T<ttl>`: new TTL.
    pub ttl: Option<i32>,
    /// `N<ttl>`: vivify on miss with this TTL.
    pub vivify: Option<i32>,
    /// `R<ttl>`: win the recache token if the TTL left is below this.
    pub recache: Option<i32>,
    /// `F<flags>` (ms, md x): client flags.
    pub client_flags: u32,
    /// `C<cas>`: compare CAS.
    pub compare_cas: Option<u64>,
    /// `E<cas>`: the CAS value to give the new or changed item.
    pub new_cas: Option<u64>,
    /// `M<mode>` character; 0 when absent. Validated by the parser.
    pub mode: u8,
    /// `D<delta>` (ma), default 1.
    pub delta: u64,
    /// `J<initial>` (ma), default 0.
    pub initial: u64,
    /// ms: the data block (without its `\r\n`).
    pub data: Bytes,
    /// ms: the declared length exceeds the item size limit; the data block
    /// was swallowed unbuffered. Executing answers
    /// `SERVER_ERROR object too large for cache` and unlinks the key.
    pub too_large: bool,
}

impl MetaRequest {
    /// A request with no flags.
    pub fn new(cmd: MetaCmd, key: Bytes) -> MetaRequest {
        MetaRequest {
            cmd,
            key,
            base64: false,
            order: FlagOrder::default(),
            opaque: Bytes::new(),
            quiet: false,
            value: false,
            no_update: false,
            invalidate: false,
            remove_value: false,
            ttl: None,
            vivify: None,
            recache: None,
            client_flags: 0,
            compare_cas: None,
            new_cas: None,
            mode: 0,
            delta: 1,
            initial: 0,
            data: Bytes::new(),
            too_large: false,
        }
    }

    /// The key that decides which shard owns this request (`None` for `mn`).
    #[inline]
    pub fn routing_key(&self) -> Option<&Bytes> {
        match self.cmd {
            MetaCmd::Noop => None,
            _ => Some(&self.key),
        }
    }
}
