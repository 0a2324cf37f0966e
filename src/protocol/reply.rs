//! Every fixed reply line of the classic ASCII protocol, byte-exact as
//! memcached 1.6.18 sends them (protocol.md §1.2–1.3), each including its
//! trailing `\r\n`. Parsers, executors and the runtime all write these
//! constants; nothing else in the crate spells a reply string by hand.
//!
//! Where memcached 1.6.18 (the compatibility bar: its `t/*.t` suite) differs
//! from the 1.6.45 text in protocol.md, the 1.6.18 bytes are given and the
//! difference is noted.

// ---------------------------------------------------------------------------
// Nominal replies (A-set … A-delete, A-touch, A-flush, A-stats).

/// A-set / A-add / A-replace / A-append / A-prepend / A-cas success.
pub const STORED: &[u8] = b"STORED\r\n";
/// A-add on an existing key, A-replace / A-append / A-prepend on a missing one.
pub const NOT_STORED: &[u8] = b"NOT_STORED\r\n";
/// A-cas: the item was modified since the client's `gets`.
pub const EXISTS: &[u8] = b"EXISTS\r\n";
/// A-cas / A-delete / A-incr / A-touch on a missing key.
pub const NOT_FOUND: &[u8] = b"NOT_FOUND\r\n";
/// A-delete success.
pub const DELETED: &[u8] = b"DELETED\r\n";
/// A-touch success.
pub const TOUCHED: &[u8] = b"TOUCHED\r\n";
/// A-flush, A-verbosity, A-memlimit, `stats detail on|off` success.
pub const OK: &[u8] = b"OK\r\n";
/// Terminates A-get / A-gets / A-gat / A-stats output.
pub const END: &[u8] = b"END\r\n";
/// `stats reset` (§1.4).
pub const RESET: &[u8] = b"RESET\r\n";

// ---------------------------------------------------------------------------
// Generic errors (A-unknown, X-7, X-8).

/// A-unknown / X-7: unknown command, wrong token count, unknown `stats`
/// subcommand, non-numeric `cache_memlimit` argument.
pub const ERROR: &[u8] = b"ERROR\r\n";
/// sent (then the connection is closed) when `maxconns` is reached.
pub const ERROR_TOO_MANY_CONNECTIONS: &[u8] = b"ERROR Too many open connections\r\n";

// ---------------------------------------------------------------------------
// CLIENT_ERROR (§1.3).

/// X-1 key > 250 bytes; malformed storage line (flags/exptime/bytes/cas not
/// numeric, negative bytes); bad `verbosity` argument.
pub const CLIENT_ERROR_BAD_COMMAND_LINE_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format\r\n";
/// A-set family: data block not followed by exactly `\r\n`.
pub const CLIENT_ERROR_BAD_DATA_CHUNK: &[u8] = b"CLIENT_ERROR bad data chunk\r\n";
/// A-touch / A-gat / A-gats / A-flush: exptime (delay) not a number.
pub const CLIENT_ERROR_INVALID_EXPTIME: &[u8] = b"CLIENT_ERROR invalid exptime argument\r\n";
/// A-incr / A-decr: delta is not an unsigned 64-bit number.
pub const CLIENT_ERROR_INVALID_DELTA: &[u8] = b"CLIENT_ERROR invalid numeric delta argument\r\n";
/// A-incr / A-decr on a value that is not a decimal number.
pub const CLIENT_ERROR_NON_NUMERIC: &[u8] =
    b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
/// A-flush when flush is disabled (`-F`, or a credential without flush capability).
pub const CLIENT_ERROR_FLUSH_NOT_ALLOWED: &[u8] = b"CLIENT_ERROR flush_all not allowed\r\n";
/// A-delete (≤ 1.6.21) with extra arguments other than the legacy `0` (two spaces after the dot).
pub const CLIENT_ERROR_DELETE_USAGE: &[u8] =
    b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
/// §1.5: any command before ASCII authentication when auth is required.
pub const CLIENT_ERROR_UNAUTHENTICATED: &[u8] = b"CLIENT_ERROR unauthenticated\r\n";
/// §1.5: ASCII auth rejected.
pub const CLIENT_ERROR_AUTH_FAILURE: &[u8] = b"CLIENT_ERROR authentication failure\r\n";
/// §1.5: auth payload without a space (memcached `-Y` form).
pub const CLIENT_ERROR_BAD_AUTH_TOKEN_FORMAT: &[u8] =
    b"CLIENT_ERROR bad authentication token format\r\n";
/// §1.5: auth payload not terminated by `\r\n`.
pub const CLIENT_ERROR_BAD_COMMAND_LINE_TERMINATION: &[u8] =
    b"CLIENT_ERROR bad command line termination\r\n";
/// §1.5: auth payload longer than 16384 bytes.
pub const CLIENT_ERROR_AUTH_TOKEN_TOO_LONG: &[u8] = b"CLIENT_ERROR auth token too long\r\n";
/// shoal, multi-tenant mode: `cache_memlimit` may not raise a hosted cache
/// above the memory plan the operator gave it.
pub const CLIENT_ERROR_MEMLIMIT_ABOVE_PLAN: &[u8] =
    b"CLIENT_ERROR cache_memlimit above the cache's plan\r\n";
/// §1.4: bad `stats detail` argument.
pub const CLIENT_ERROR_STATS_DETAIL_USAGE: &[u8] =
    b"CLIENT_ERROR usage: stats detail on|off|dump\r\n";
/// §1.4: `stats cachedump` disabled (`-X`).
pub const CLIENT_ERROR_CACHEDUMP_NOT_ALLOWED: &[u8] =
    b"CLIENT_ERROR stats cachedump not allowed\r\n";
/// §1.4: `stats detail` disabled (`-X`).
pub const CLIENT_ERROR_DETAIL_NOT_ALLOWED: &[u8] = b"CLIENT_ERROR stats detail not allowed\r\n";
/// §1.4: `stats cachedump` with too few arguments.
pub const CLIENT_ERROR_BAD_COMMAND_LINE: &[u8] = b"CLIENT_ERROR bad command line\r\n";
/// §1.4: `stats cachedump` with a class id ≥ 64.
pub const CLIENT_ERROR_ILLEGAL_SLAB_ID: &[u8] = b"CLIENT_ERROR Illegal slab id\r\n";
/// A-shutdown (enabled) with an argument other than `graceful`.
pub const CLIENT_ERROR_INVALID_SHUTDOWN_MODE: &[u8] = b"CLIENT_ERROR invalid shutdown mode\r\n";

// ---------------------------------------------------------------------------
// SERVER_ERROR (§1.3).

/// A-shutdown without `-A`, **memcached 1.6.18 spelling** (`t/shutdown.t`
/// checks exactly `ERROR: shutdown not enabled`). Use this one.
pub const ERROR_SHUTDOWN_NOT_ENABLED: &[u8] = b"ERROR: shutdown not enabled\r\n";
/// A-shutdown without `-A`, memcached ≥ 1.6.2x spelling (protocol.md, from
/// 1.6.45). NOT what 1.6.18 sends — prefer [`ERROR_SHUTDOWN_NOT_ENABLED`].
pub const SERVER_ERROR_SHUTDOWN_NOT_ENABLED: &[u8] = b"SERVER_ERROR: shutdown not enabled\r\n";
/// A-set: declared length exceeds the item size limit; data swallowed.
pub const SERVER_ERROR_OBJECT_TOO_LARGE: &[u8] = b"SERVER_ERROR object too large for cache\r\n";
/// A-set: allocation failed (old value of a `set` is unlinked).
pub const SERVER_ERROR_OUT_OF_MEMORY_STORING: &[u8] =
    b"SERVER_ERROR out of memory storing object\r\n";
/// A-incr / A-decr: allocation failure.
pub const SERVER_ERROR_OUT_OF_MEMORY: &[u8] = b"SERVER_ERROR out of memory\r\n";
/// A-get: response buffer allocation failed.
pub const SERVER_ERROR_OUT_OF_MEMORY_GET: &[u8] =
    b"SERVER_ERROR out of memory writing get response\r\n";
/// A-stats: response buffer allocation failed.
pub const SERVER_ERROR_OUT_OF_MEMORY_STATS: &[u8] = b"SERVER_ERROR out of memory writing stats\r\n";
/// Read buffer allocation failed.
pub const SERVER_ERROR_OUT_OF_MEMORY_READING: &[u8] =
    b"SERVER_ERROR out of memory reading request\r\n";
/// Read buffer allocation failed while reading a data block (note the capital `O`).
pub const SERVER_ERROR_OUT_OF_MEMORY_DURING_READ: &[u8] =
    b"SERVER_ERROR Out of memory during read\r\n";
/// A reply line longer than the write buffer.
pub const SERVER_ERROR_OUTPUT_LINE_TOO_LONG: &[u8] = b"SERVER_ERROR output line too long\r\n";
/// Internal: a store outcome with no ASCII spelling.
pub const SERVER_ERROR_UNHANDLED_STORAGE_TYPE: &[u8] = b"SERVER_ERROR Unhandled storage type.\r\n";

// ---------------------------------------------------------------------------
// A-memlimit.

/// A-memlimit: argument < 8.
pub const MEMLIMIT_TOO_SMALL: &[u8] = b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n";
/// A-memlimit: argument > 1e9 (looks like bytes, not megabytes).
pub const MEMLIMIT_ADJUST_FAILED_MEGABYTES: &[u8] =
    b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n";
/// A-memlimit: the new limit could not be applied.
pub const MEMLIMIT_ADJUST_FAILED_BOUNDS: &[u8] =
    b"MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust\r\n";

// ---------------------------------------------------------------------------
// Meta protocol (M-*), for the meta parser.

/// M-mg miss.
pub const META_EN: &[u8] = b"EN\r\n";
/// M-mn.
pub const META_MN: &[u8] = b"MN\r\n";
/// Meta "not stored": also a read-only credential's answer to ms/md/ma (T-3).
pub const META_NS: &[u8] = b"NS\r\n";
/// M-*: bad token.
pub const CLIENT_ERROR_BAD_TOKEN: &[u8] = b"CLIENT_ERROR bad token in command line format\r\n";
/// M-*: unknown flag.
pub const CLIENT_ERROR_INVALID_FLAG: &[u8] = b"CLIENT_ERROR invalid flag\r\n";
/// M-*: repeated flag.
pub const CLIENT_ERROR_DUPLICATE_FLAG: &[u8] = b"CLIENT_ERROR duplicate flag\r\n";
/// M-md / M-ms: bad or repeated flag.
pub const CLIENT_ERROR_INVALID_OR_DUPLICATE_FLAG: &[u8] =
    b"CLIENT_ERROR invalid or duplicate flag\r\n";
/// M-*: more than 20 flag tokens.
pub const CLIENT_ERROR_OPTIONS_FLAGS_TOO_LONG: &[u8] =
    b"CLIENT_ERROR options flags are too long\r\n";
/// M-ms (1.6.18 spelling of the same condition).
pub const CLIENT_ERROR_OPTIONS_FLAGS_TOO_LONG_MS: &[u8] =
    b"CLIENT_ERROR options flags too long\r\n";
/// M-*: opaque > 32 bytes.
pub const CLIENT_ERROR_OPAQUE_TOO_LONG: &[u8] = b"CLIENT_ERROR opaque token too long\r\n";
/// M-*: `b` flag with invalid base64 key.
pub const CLIENT_ERROR_DECODING_KEY: &[u8] = b"CLIENT_ERROR error decoding key\r\n";
/// M-ms: bad `M` mode.
pub const CLIENT_ERROR_INVALID_MS_MODE: &[u8] = b"CLIENT_ERROR invalid mode for ms M token\r\n";
/// M-ma: bad `M` mode.
pub const CLIENT_ERROR_INVALID_MA_MODE: &[u8] = b"CLIENT_ERROR invalid mode for ma M token\r\n";
/// M-ma: bad `J` token.
pub const CLIENT_ERROR_INVALID_INITIAL: &[u8] = b"CLIENT_ERROR invalid numeric initial value\r\n";
/// M-ma: bad `D` token.
pub const CLIENT_ERROR_INVALID_DELTA_VALUE: &[u8] = b"CLIENT_ERROR invalid numeric delta value\r\n";
/// M-ms: allocation failure.
pub const SERVER_ERROR_OOM_NEW_ITEM: &[u8] = b"SERVER_ERROR Out of memory allocating new item\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reply_is_one_crlf_terminated_line() {
        let all: &[&[u8]] = &[
            STORED,
            NOT_STORED,
            EXISTS,
            NOT_FOUND,
            DELETED,
            TOUCHED,
            OK,
            END,
            RESET,
            ERROR,
            ERROR_TOO_MANY_CONNECTIONS,
            CLIENT_ERROR_BAD_COMMAND_LINE_FORMAT,
            CLIENT_ERROR_BAD_DATA_CHUNK,
            CLIENT_ERROR_INVALID_EXPTIME,
            CLIENT_ERROR_INVALID_DELTA,
            CLIENT_ERROR_NON_NUMERIC,
            CLIENT_ERROR_FLUSH_NOT_ALLOWED,
            CLIENT_ERROR_DELETE_USAGE,
            CLIENT_ERROR_UNAUTHENTICATED,
            CLIENT_ERROR_AUTH_FAILURE,
            CLIENT_ERROR_BAD_AUTH_TOKEN_FORMAT,
            CLIENT_ERROR_BAD_COMMAND_LINE_TERMINATION,
            CLIENT_ERROR_AUTH_TOKEN_TOO_LONG,
            CLIENT_ERROR_MEMLIMIT_ABOVE_PLAN,
            CLIENT_ERROR_STATS_DETAIL_USAGE,
            CLIENT_ERROR_CACHEDUMP_NOT_ALLOWED,
            CLIENT_ERROR_DETAIL_NOT_ALLOWED,
            CLIENT_ERROR_BAD_COMMAND_LINE,
            CLIENT_ERROR_ILLEGAL_SLAB_ID,
            CLIENT_ERROR_INVALID_SHUTDOWN_MODE,
            ERROR_SHUTDOWN_NOT_ENABLED,
            SERVER_ERROR_SHUTDOWN_NOT_ENABLED,
            SERVER_ERROR_OBJECT_TOO_LARGE,
            SERVER_ERROR_OUT_OF_MEMORY_STORING,
            SERVER_ERROR_OUT_OF_MEMORY,
            SERVER_ERROR_OUT_OF_MEMORY_GET,
            SERVER_ERROR_OUT_OF_MEMORY_STATS,
            SERVER_ERROR_OUT_OF_MEMORY_READING,
            SERVER_ERROR_OUT_OF_MEMORY_DURING_READ,
            SERVER_ERROR_OUTPUT_LINE_TOO_LONG,
            SERVER_ERROR_UNHANDLED_STORAGE_TYPE,
            MEMLIMIT_TOO_SMALL,
            MEMLIMIT_ADJUST_FAILED_MEGABYTES,
            MEMLIMIT_ADJUST_FAILED_BOUNDS,
            META_EN,
            META_MN,
            META_NS,
            CLIENT_ERROR_BAD_TOKEN,
            CLIENT_ERROR_INVALID_FLAG,
            CLIENT_ERROR_DUPLICATE_FLAG,
            CLIENT_ERROR_INVALID_OR_DUPLICATE_FLAG,
            CLIENT_ERROR_OPTIONS_FLAGS_TOO_LONG,
            CLIENT_ERROR_OPTIONS_FLAGS_TOO_LONG_MS,
            CLIENT_ERROR_OPAQUE_TOO_LONG,
            CLIENT_ERROR_DECODING_KEY,
            CLIENT_ERROR_INVALID_MS_MODE,
            CLIENT_ERROR_INVALID_MA_MODE,
            CLIENT_ERROR_INVALID_INITIAL,
            CLIENT_ERROR_INVALID_DELTA_VALUE,
            SERVER_ERROR_OOM_NEW_ITEM,
        ];
        for r in all {
            assert!(r.ends_with(b"\r\n"), "{:?}", String::from_utf8_lossy(r));
            assert_eq!(memchr::memchr(b'\n', r), Some(r.len() - 1));
            assert_eq!(memchr::memchr(b'\r', r), Some(r.len() - 2));
        }
    }

    /// §1.3 strings that `t/*.t` compares byte for byte.
    #[test]
    fn exact_strings_checked_by_memcached_suite() {
        assert_eq!(
            CLIENT_ERROR_DELETE_USAGE,
            b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
        );
        assert_eq!(
            ERROR_SHUTDOWN_NOT_ENABLED,
            b"ERROR: shutdown not enabled\r\n"
        );
        assert_eq!(
            SERVER_ERROR_OBJECT_TOO_LARGE,
            b"SERVER_ERROR object too large for cache\r\n"
        );
    }
}
