//! The immutable snapshot of caches and credentials that every core reads.
//!
//! The [`ControlStore`](super::ControlStore) builds a new `Registry` after
//! each committed change and publishes it as an `Arc`; cores swap their
//! pointer and keep reading without a lock. Each snapshot carries a
//! `version` so a connection can tell, cheaply, that the world changed and
//! it must re-check its [`Session`] with [`Registry::still_valid`].
//!
//! Only SHA-256 digests of passwords are kept here: the passwords are
//! 128-bit random tokens, so a fast digest is enough (no per-connect KDF that
//! would turn a reconnect storm into a CPU DoS, design.md §1.5), and the
//! digest comparison is constant-time (`subtle`).

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Cache, Caps, Credential, WatchedPrefix};

/// What an authenticated connection is allowed to touch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub cache_id: u32,
    pub username: String,
    pub caps: Caps,
    /// The client certificate's fingerprint when the login came from one
    /// (TLS client-certificate login): removing the fingerprint from the
    /// credential ends the session like revoking the credential.
    pub cert: Option<[u8; 32]>,
}

struct CredEntry {
    cache_id: u32,
    caps: Caps,
    digest: [u8; 32],
}

/// Immutable snapshot of the control state, shared by all cores (`Arc`).
pub struct Registry {
    version: u64,
    caches: HashMap<u32, Cache>,
    creds: HashMap<Vec<u8>, CredEntry>,
    /// Client-certificate fingerprints -> the username they log in as.
    certs: HashMap<[u8; 32], Vec<u8>>,
    /// Each cache's watched prefixes: (prefix id, key prefix bytes).
    watched: HashMap<u32, Vec<(u64, Vec<u8>)>>,
}

fn digest(password: &[u8]) -> [u8; 32] {
    Sha256::digest(password).into()
}

/// A SHA-256 fingerprint from its text form: 64 hex digits, upper or lower
/// case, optionally in colon-separated pairs (as `openssl x509
/// -fingerprint -sha256` prints it). `None` for anything else.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hex: Vec<u8> = text.bytes().filter(|&b| b != b':').collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// The canonical text form of a fingerprint: 64 lowercase hex digits.
pub fn fingerprint_hex(f: &[u8; 32]) -> String {
    f.iter().map(|b| format!("{b:02x}")).collect()
}

impl Registry {
    /// A registry with no caches (version 0): every authentication fails.
    pub fn empty() -> Registry {
        Registry {
            version: 0,
            caches: HashMap::new(),
            creds: HashMap::new(),
            certs: HashMap::new(),
            watched: HashMap::new(),
        }
    }

    pub(crate) fn build(version: u64, caches: &[Cache], creds: &[Credential]) -> Registry {
        Registry {
            version,
            caches: caches.iter().map(|c| (c.id, c.clone())).collect(),
            creds: creds
                .iter()
                .map(|c| {
                    let entry = CredEntry {
                        cache_id: c.cache_id,
                        caps: c.caps,
                        digest: digest(c.password.as_bytes()),
                    };
                    (c.username.as_bytes().to_vec(), entry)
                })
                .collect(),
            certs: creds
                .iter()
                .flat_map(|c| {
                    c.cert_fingerprints
                        .iter()
                        .filter_map(|f| parse_fingerprint(f))
                        .map(|f| (f, c.username.as_bytes().to_vec()))
                })
                .collect(),
            watched: HashMap::new(),
        }
    }

    /// This snapshot with `prefixes` as the caches' watched prefixes (in
    /// the given order within each cache).
    pub(crate) fn with_watched(mut self, prefixes: &[WatchedPrefix]) -> Registry {
        self.watched.clear();
        for p in prefixes {
            self.watched
                .entry(p.cache_id)
                .or_default()
                .push((p.id, p.name.as_bytes().to_vec()));
        }
        self
    }

    /// The key prefixes `cache` watches, as (prefix id, prefix bytes);
    /// empty when it watches none (or does not exist).
    pub fn watched(&self, cache: u32) -> &[(u64, Vec<u8>)] {
        self.watched.get(&cache).map_or(&[], Vec::as_slice)
    }

    /// Increases by at least one with every committed change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Constant-time password check. `None` for an unknown user, a wrong
    /// password, or a disabled cache — deliberately indistinguishable.
    pub fn authenticate(&self, username: &[u8], password: &[u8]) -> Option<Session> {
        let offered = digest(password);
        let Some(entry) = self.creds.get(username) else {
            // Spend the same comparison on a miss, so a miss does not answer
            // measurably faster than a wrong password.
            let _ = offered.ct_eq(&[0u8; 32]);
            return None;
        };
        let password_ok: bool = entry.digest.ct_eq(&offered).into();
        let enabled = self.caches.get(&entry.cache_id).is_some_and(|c| c.enabled);
        if !(password_ok && enabled) {
            return None;
        }
        Some(Session {
            cache_id: entry.cache_id,
            // The map key is the username's bytes, which came from a String.
            username: String::from_utf8_lossy(username).into_owned(),
            caps: entry.caps,
            cert: None,
        })
    }

    /// The login a TLS client certificate with this SHA-256 fingerprint
    /// gives: `None` when no credential carries it or its cache is
    /// disabled. The handshake proved the client holds the certificate's
    /// key, so the fingerprint is the credential.
    pub fn authenticate_cert(&self, fingerprint: &[u8; 32]) -> Option<Session> {
        let username = self.certs.get(fingerprint)?;
        let entry = self.creds.get(username)?;
        if !self.caches.get(&entry.cache_id)?.enabled {
            return None;
        }
        Some(Session {
            cache_id: entry.cache_id,
            username: String::from_utf8_lossy(username).into_owned(),
            caps: entry.caps,
            cert: Some(*fingerprint),
        })
    }

    /// Does some credential carry this client-certificate fingerprint?
    pub fn knows_cert(&self, fingerprint: &[u8; 32]) -> bool {
        self.certs.contains_key(fingerprint)
    }

    /// A cache by id, enabled or not.
    pub fn cache(&self, id: u32) -> Option<&Cache> {
        self.caches.get(&id)
    }

    /// All caches, in no particular order.
    pub fn caches(&self) -> impl Iterator<Item = &Cache> + '_ {
        self.caches.values()
    }

    /// Is this session still allowed in this snapshot: its credential still
    /// exists, still belongs to the same cache, and the cache is enabled?
    /// A connection for which this turns false is closed.
    pub fn still_valid(&self, s: &Session) -> bool {
        self.refresh(s).is_some()
    }

    /// `s` as of this snapshot (capabilities may have changed), or `None`
    /// when it is no longer valid (see [`Registry::still_valid`]).
    pub fn refresh(&self, s: &Session) -> Option<Session> {
        let entry = self.creds.get(s.username.as_bytes())?;
        if entry.cache_id != s.cache_id || !self.caches.get(&entry.cache_id)?.enabled {
            return None;
        }
        if let Some(f) = &s.cert {
            if self.certs.get(f).map(Vec::as_slice) != Some(s.username.as_bytes()) {
                return None;
            }
        }
        Some(Session {
            cache_id: s.cache_id,
            username: s.username.clone(),
            caps: entry.caps,
            cert: s.cert,
        })
    }

    /// Is `username` a credential in this snapshot (any cache, enabled or not)?
    pub fn has_username(&self, username: &[u8]) -> bool {
        self.creds.contains_key(username)
    }

    /// The cache `username` belongs to (enabled or not), if it is a
    /// credential in this snapshot.
    pub fn cache_of(&self, username: &[u8]) -> Option<u32> {
        self.creds.get(username).map(|e| e.cache_id)
    }
}

impl std::fmt::Debug for Registry {
    // No digests in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("version", &self.version)
            .field("caches", &self.caches.len())
            .field("credentials", &self.creds.len())
            .field(
                "watched_prefixes",
                &self.watched.values().map(Vec::len).sum::<usize>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Registry {
        let caches = vec![
            Cache {
                id: 1,
                name: "one".into(),
                memory_limit: 1 << 20,
                max_connections: 0,
                enabled: true,
                created: 0,
            },
            Cache {
                id: 2,
                name: "two".into(),
                memory_limit: 1 << 20,
                max_connections: 0,
                enabled: false,
                created: 0,
            },
        ];
        let cred = |u: &str, p: &str, id, primary| Credential {
            username: u.into(),
            password: p.into(),
            cache_id: id,
            caps: Caps {
                write: primary,
                flush: false,
                api: true,
            },
            primary,
            created: 0,
            cert_fingerprints: Vec::new(),
        };
        let creds = vec![
            cred("AAAAAA", "pw-a", 1, true),
            cred("BBBBBB", "pw-b", 1, false),
            cred("CCCCCC", "pw-c", 2, true),
        ];
        Registry::build(7, &caches, &creds)
    }

    #[test]
    fn authenticate_outcomes() {
        let r = fixture();
        assert_eq!(r.version(), 7);
        let s = r.authenticate(b"AAAAAA", b"pw-a").unwrap();
        assert_eq!(s.cache_id, 1);
        assert_eq!(s.username, "AAAAAA");
        assert!(s.caps.write && s.caps.api && !s.caps.flush);
        assert!(!r.authenticate(b"BBBBBB", b"pw-b").unwrap().caps.write);
        assert_eq!(r.authenticate(b"AAAAAA", b"pw-b"), None);
        assert_eq!(r.authenticate(b"AAAAAA", b""), None);
        assert_eq!(r.authenticate(b"ZZZZZZ", b"pw-a"), None);
        assert_eq!(r.authenticate(b"", b""), None);
        // Disabled cache: right password still fails.
        assert_eq!(r.authenticate(b"CCCCCC", b"pw-c"), None);
    }

    #[test]
    fn still_valid_and_refresh() {
        let r = fixture();
        let s = r.authenticate(b"AAAAAA", b"pw-a").unwrap();
        assert!(r.still_valid(&s));
        let moved = Session {
            cache_id: 2,
            ..s.clone()
        };
        assert!(!r.still_valid(&moved));
        let gone = Session {
            username: "DDDDDD".into(),
            ..s.clone()
        };
        assert!(!r.still_valid(&gone));
        let disabled = Session {
            cache_id: 2,
            username: "CCCCCC".into(),
            caps: Caps::ALL,
            cert: None,
        };
        assert!(!r.still_valid(&disabled));
        let stale_caps = Session {
            caps: Caps::default(),
            ..s.clone()
        };
        assert_eq!(r.refresh(&stale_caps), Some(s));
    }

    #[test]
    fn certificate_login_and_revocation() {
        let f = [7u8; 32];
        let text = fingerprint_hex(&f);
        assert_eq!(parse_fingerprint(&text), Some(f));
        let colons: Vec<String> = f.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(parse_fingerprint(&colons.join(":")), Some(f));
        assert_eq!(parse_fingerprint(&text[1..]), None);
        assert_eq!(parse_fingerprint(&"zz".repeat(32)), None);

        let cache = |id, enabled| Cache {
            id,
            name: "c".into(),
            memory_limit: 1 << 20,
            max_connections: 0,
            enabled,
            created: 0,
        };
        let cred = |u: &str, id, fps: Vec<String>| Credential {
            username: u.into(),
            password: "pw".into(),
            cache_id: id,
            caps: Caps::ALL,
            primary: true,
            created: 0,
            cert_fingerprints: fps,
        };
        let other = fingerprint_hex(&[9u8; 32]);
        let r = Registry::build(
            1,
            &[cache(1, true), cache(2, false)],
            &[
                cred("AAAAAA", 1, vec![text.clone()]),
                cred("BBBBBB", 2, vec![other]),
            ],
        );
        let s = r.authenticate_cert(&f).unwrap();
        assert_eq!((s.cache_id, s.username.as_str()), (1, "AAAAAA"));
        assert_eq!(s.cert, Some(f));
        assert!(r.knows_cert(&[9u8; 32]));
        // A disabled cache's certificate, and an unknown one, log in nobody.
        assert_eq!(r.authenticate_cert(&[9u8; 32]), None);
        assert_eq!(r.authenticate_cert(&[1u8; 32]), None);
        // The fingerprint removed (or moved to another credential): the
        // session ends; a password login of the same credential does not.
        let without = Registry::build(2, &[cache(1, true)], &[cred("AAAAAA", 1, vec![])]);
        assert!(!without.still_valid(&s));
        let password = r.authenticate(b"AAAAAA", b"pw").unwrap();
        assert!(without.still_valid(&password));
    }

    #[test]
    fn empty_registry() {
        let r = Registry::empty();
        assert_eq!(r.version(), 0);
        assert_eq!(r.authenticate(b"AAAAAA", b"pw-a"), None);
        assert!(r.cache(1).is_none());
        assert_eq!(r.caches().count(), 0);
        assert!(r.watched(1).is_empty());
    }

    #[test]
    fn watched_prefixes_per_cache() {
        let p = |id, cache_id, name: &str| WatchedPrefix {
            id,
            cache_id,
            name: name.into(),
        };
        let r = fixture().with_watched(&[p(3, 1, "user:"), p(4, 2, "x"), p(9, 1, "sess:")]);
        assert_eq!(
            r.watched(1),
            &[(3, b"user:".to_vec()), (9, b"sess:".to_vec())]
        );
        assert_eq!(r.watched(2), &[(4, b"x".to_vec())]);
        assert!(r.watched(7).is_empty());
        assert!(fixture().watched(1).is_empty());
        assert_eq!(r.version(), 7);
    }
}
