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
    /// Each cache's watched prefixes: (prefix id, key prefix bytes).
    watched: HashMap<u32, Vec<(u64, Vec<u8>)>>,
}

fn digest(password: &[u8]) -> [u8; 32] {
    Sha256::digest(password).into()
}

impl Registry {
    /// A registry with no caches (version 0): every authentication fails.
    pub fn empty() -> Registry {
        Registry {
            version: 0,
            caches: HashMap::new(),
            creds: HashMap::new(),
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
        })
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
        Some(Session {
            cache_id: s.cache_id,
            username: s.username.clone(),
            caps: entry.caps,
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
        };
        assert!(!r.still_valid(&disabled));
        let stale_caps = Session {
            caps: Caps::default(),
            ..s.clone()
        };
        assert_eq!(r.refresh(&stale_caps), Some(s));
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
