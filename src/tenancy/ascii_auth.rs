//! Authentication on the text protocol (protocol.md §1.5): the first command
//! of a connection is a `set` whose key and value carry the credentials.
//!
//! - MemCachier form: `set <username> 0 0 <len>\r\n<password>\r\n`.
//! - memcached `-Y` form: `set <anykey> <flags> <exptime> <len>\r\n<user> <pass>\r\n`.
//!
//! Both answer `STORED` on success. The connection layer parses the `set`
//! line and the data block (and answers `CLIENT_ERROR bad command line
//! termination` / `CLIENT_ERROR unauthenticated` itself); this module only
//! decides who the key and value authenticate.

use crate::protocol::reply;

use super::{is_username_shaped, Registry, Session};

/// Longest auth payload memcached accepts (`MAX_AUTH_REQ_LEN`).
pub const MAX_AUTH_TOKEN_LEN: usize = 16384;

/// Authenticates the key and data block (without its `\r\n`) of an auth
/// `set`. The MemCachier form is tried first (the key is a known username and
/// the value its password), then the `-Y` form (the value is `<user> <pass>`,
/// split at the first space). On failure returns the reply line to send:
///
/// - `CLIENT_ERROR auth token too long`: value longer than 16384 bytes;
/// - `CLIENT_ERROR authentication failure`: wrong credentials, unknown user,
///   disabled cache;
/// - `CLIENT_ERROR bad authentication token format`: a value without a space
///   under a key that is not shaped like one of our usernames (a `-Y` client
///   that sent a malformed token). Under a username-shaped key the failure
///   reply is used instead, so the reply never tells whether a username exists.
pub fn authenticate_ascii(
    registry: &Registry,
    key: &[u8],
    value: &[u8],
) -> Result<Session, &'static [u8]> {
    if value.len() > MAX_AUTH_TOKEN_LEN {
        return Err(reply::CLIENT_ERROR_AUTH_TOKEN_TOO_LONG);
    }
    if registry.has_username(key) {
        if let Some(s) = registry.authenticate(key, value) {
            return Ok(s);
        }
    }
    match value.iter().position(|&b| b == b' ') {
        Some(i) => registry
            .authenticate(&value[..i], &value[i + 1..])
            .ok_or(reply::CLIENT_ERROR_AUTH_FAILURE),
        None if is_username_shaped(key) => Err(reply::CLIENT_ERROR_AUTH_FAILURE),
        None => Err(reply::CLIENT_ERROR_BAD_AUTH_TOKEN_FORMAT),
    }
}

/// The cache whose credential an auth `set` names, whether or not it
/// authenticates: the key when it is a known username (MemCachier form),
/// else the username before the value's first space (`-Y` form). A failed
/// login is counted in that cache's `auth_errors`, so a cache's own stats
/// show attempts on its credentials.
pub fn ascii_claimed_cache(registry: &Registry, key: &[u8], value: &[u8]) -> Option<u32> {
    if let Some(id) = registry.cache_of(key) {
        return Some(id);
    }
    let i = value.iter().position(|&b| b == b' ')?;
    registry.cache_of(&value[..i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy::{Cache, Caps, Credential};

    const PASS: &[u8] = b"52353F9F1C4017CC16FD348B982ED47D";

    fn registry(enabled: bool) -> Registry {
        let cache = Cache {
            id: 5,
            name: "c".into(),
            memory_limit: 1 << 20,
            max_connections: 0,
            enabled,
            created: 0,
        };
        let cred = Credential {
            username: "15F38E".into(),
            password: String::from_utf8(PASS.to_vec()).unwrap(),
            cache_id: 5,
            caps: Caps {
                write: true,
                flush: false,
                api: false,
            },
            primary: true,
            created: 0,
            cert_fingerprints: Vec::new(),
        };
        Registry::build(1, &[cache], &[cred])
    }

    #[test]
    fn memcachier_form() {
        let r = registry(true);
        let s = authenticate_ascii(&r, b"15F38E", PASS).unwrap();
        assert_eq!((s.cache_id, s.username.as_str()), (5, "15F38E"));
        assert!(s.caps.write && !s.caps.flush);
        assert_eq!(
            authenticate_ascii(&r, b"15F38E", b"00000000000000000000000000000000"),
            Err(reply::CLIENT_ERROR_AUTH_FAILURE)
        );
        // Unknown but username-shaped key: same reply as a wrong password.
        assert_eq!(
            authenticate_ascii(&r, b"ABCDEF", PASS),
            Err(reply::CLIENT_ERROR_AUTH_FAILURE)
        );
    }

    #[test]
    fn dash_y_form() {
        let r = registry(true);
        let mut v = b"15F38E ".to_vec();
        v.extend_from_slice(PASS);
        assert_eq!(authenticate_ascii(&r, b"auth", &v).unwrap().cache_id, 5);
        // The key is ignored in this form, even when it is a username.
        assert_eq!(authenticate_ascii(&r, b"15F38E", &v).unwrap().cache_id, 5);
        assert_eq!(
            authenticate_ascii(&r, b"auth", b"15F38E wrong"),
            Err(reply::CLIENT_ERROR_AUTH_FAILURE)
        );
        assert_eq!(
            authenticate_ascii(&r, b"auth", b" "),
            Err(reply::CLIENT_ERROR_AUTH_FAILURE)
        );
        assert_eq!(
            authenticate_ascii(&r, b"auth", b"nospace"),
            Err(reply::CLIENT_ERROR_BAD_AUTH_TOKEN_FORMAT)
        );
        assert_eq!(
            authenticate_ascii(&r, b"auth", b""),
            Err(reply::CLIENT_ERROR_BAD_AUTH_TOKEN_FORMAT)
        );
    }

    #[test]
    fn disabled_cache_fails_both_forms() {
        let r = registry(false);
        assert_eq!(
            authenticate_ascii(&r, b"15F38E", PASS),
            Err(reply::CLIENT_ERROR_AUTH_FAILURE)
        );
        let mut v = b"15F38E ".to_vec();
        v.extend_from_slice(PASS);
        assert_eq!(
            authenticate_ascii(&r, b"k", &v),
            Err(reply::CLIENT_ERROR_AUTH_FAILURE)
        );
    }

    #[test]
    fn too_long() {
        let r = registry(true);
        let v = vec![b'a'; MAX_AUTH_TOKEN_LEN + 1];
        assert_eq!(
            authenticate_ascii(&r, b"15F38E", &v),
            Err(reply::CLIENT_ERROR_AUTH_TOKEN_TOO_LONG)
        );
        let v = vec![b' '; MAX_AUTH_TOKEN_LEN];
        assert_eq!(
            authenticate_ascii(&r, b"k", &v),
            Err(reply::CLIENT_ERROR_AUTH_FAILURE)
        );
    }

    #[test]
    fn claimed_cache_names_the_credential_tried() {
        let r = registry(true);
        // MemCachier form: the key, whatever the value.
        assert_eq!(ascii_claimed_cache(&r, b"15F38E", b"wrong"), Some(5));
        // -Y form: the username before the first space.
        assert_eq!(ascii_claimed_cache(&r, b"k", b"15F38E wrong"), Some(5));
        // Nothing known.
        assert_eq!(ascii_claimed_cache(&r, b"ABCDEF", b"wrong"), None);
        assert_eq!(ascii_claimed_cache(&r, b"k", b"ABCDEF x"), None);
        assert_eq!(ascii_claimed_cache(&r, b"k", b""), None);
    }
}
