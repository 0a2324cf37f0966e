//! Response status codes and the exact error bodies memcached 1.6.18 sends
//! with them (`write_bin_error` in proto_bin.c; protocol.md §1.7 status
//! table). Every error response is `status` + this text as the value, with
//! no extras, no key and CAS 0.

/// A response status (protocol.md §1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Status {
    Success = 0x00,
    /// Key not found.
    KeyNotFound = 0x01,
    /// Key exists (add on a present key, CAS mismatch).
    KeyExists = 0x02,
    /// Value too large.
    TooLarge = 0x03,
    /// Invalid arguments (malformed frame: B-1, B-2, X-1).
    Invalid = 0x04,
    /// Item not stored (append/prepend on a missing key).
    NotStored = 0x05,
    /// Incr/decr on a non-numeric value.
    DeltaBadValue = 0x06,
    /// Authentication required / failed; also `flush` when flush is disabled.
    AuthError = 0x20,
    /// SASL: authentication continues.
    AuthContinue = 0x21,
    /// Unknown command (B-4, disabled SASL, verbosity, range ops).
    UnknownCommand = 0x81,
    /// Out of memory.
    NoMemory = 0x82,
}

impl Status {
    /// The wire value.
    #[inline]
    pub fn code(self) -> u16 {
        self as u16
    }

    /// memcached's default error body for this status (`write_bin_error`
    /// with `errstr == NULL`). Empty for the non-error statuses.
    pub fn message(self) -> &'static [u8] {
        match self {
            Status::Success | Status::AuthContinue => b"",
            Status::KeyNotFound => b"Not found",
            Status::KeyExists => b"Data exists for key.",
            Status::TooLarge => b"Too large.",
            Status::Invalid => b"Invalid arguments",
            Status::NotStored => b"Not stored.",
            Status::DeltaBadValue => b"Non-numeric server-side value for incr or decr",
            Status::AuthError => b"Auth failure.",
            Status::UnknownCommand => b"Unknown command",
            Status::NoMemory => b"Out of memory",
        }
    }
}

/// ENOMEM bodies memcached uses instead of the default one (its
/// `out_of_memory()` strips the ASCII `SERVER_ERROR ` prefix in binary).
pub const NOMEM_ALLOCATING_ITEM: &[u8] = b"Out of memory allocating item";
/// Incr/decr could not store the new value.
pub const NOMEM_INCREMENTING: &[u8] = b"Out of memory incrementing value";
/// Incr/decr could not create the item with its initial value.
pub const NOMEM_NEW_ITEM: &[u8] = b"Out of memory allocating new item";
