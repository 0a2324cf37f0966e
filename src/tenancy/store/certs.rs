//! Client-certificate fingerprints on credentials: a TLS client presenting
//! a certificate whose SHA-256 fingerprint a credential carries is logged
//! in as that credential (`Registry::authenticate_cert`).
//!
//! Fingerprints are accepted as 64 hex digits in either case, with or
//! without colons ([`parse_fingerprint`]), and stored in one canonical form
//! (64 lowercase digits, [`fingerprint_hex`]) so the uniqueness check and
//! the removal compare like with like. A fingerprint belongs to at most one
//! credential across all caches: otherwise a certificate would not say who
//! logs in. Changes commit like every other change (the file, or the
//! cluster's document), so the registry snapshot that follows ends the
//! sessions of a removed fingerprint.

use std::collections::HashSet;

use super::{ControlStore, State};
use crate::tenancy::registry::{fingerprint_hex, parse_fingerprint};
use crate::tenancy::{ControlError, Credential};

/// Fingerprints one credential may carry: bounds what a holder of a cache's
/// API capability can make the server keep, and leaves room to rotate
/// certificates (add the new one, then remove the old).
pub const MAX_CERTS_PER_CREDENTIAL: usize = 10;

/// The canonical form of a fingerprint given as text, or `Invalid`.
pub fn canonical_fingerprint(text: &str) -> Result<String, ControlError> {
    parse_fingerprint(text.trim())
        .map(|f| fingerprint_hex(&f))
        .ok_or_else(|| {
            ControlError::Invalid(
                "a certificate fingerprint is a SHA-256 digest: 64 hex digits, \
                 optionally in colon-separated pairs"
                    .into(),
            )
        })
}

impl State {
    /// Every fingerprint canonical, unique across all credentials, and at
    /// most [`MAX_CERTS_PER_CREDENTIAL`] per credential.
    pub(super) fn check_certs(&self) -> Result<(), String> {
        let mut seen = HashSet::new();
        for cr in &self.credentials {
            if cr.cert_fingerprints.len() > MAX_CERTS_PER_CREDENTIAL {
                return Err(format!(
                    "credential {} has more than {MAX_CERTS_PER_CREDENTIAL} certificate fingerprints",
                    cr.username
                ));
            }
            for f in &cr.cert_fingerprints {
                if canonical_fingerprint(f).ok().as_ref() != Some(f) {
                    return Err(format!(
                        "credential {} has a malformed certificate fingerprint {f:?}",
                        cr.username
                    ));
                }
                if !seen.insert(f.as_str()) {
                    return Err(format!("certificate fingerprint {f} duplicated"));
                }
            }
        }
        Ok(())
    }
}

impl ControlStore {
    /// A credential's certificate fingerprints (`NotFound`: no such cache
    /// or credential).
    pub fn cert_fingerprints(
        &self,
        cache_id: u32,
        username: &str,
    ) -> Result<Vec<String>, ControlError> {
        let i = self.state.credential_index(cache_id, username)?;
        Ok(self.state.credentials[i].cert_fingerprints.clone())
    }

    /// Adds a certificate fingerprint to a credential and returns the
    /// credential. `Invalid`: not a SHA-256 fingerprint; `NotFound`: no
    /// such credential; `Conflict`: a credential (this one or any other, in
    /// any cache) already carries it, or this one has
    /// [`MAX_CERTS_PER_CREDENTIAL`].
    pub fn add_cert(
        &mut self,
        cache_id: u32,
        username: &str,
        fingerprint: &str,
    ) -> Result<Credential, ControlError> {
        let f = canonical_fingerprint(fingerprint)?;
        let i = self.state.credential_index(cache_id, username)?;
        if let Some(owner) = self
            .state
            .credentials
            .iter()
            .find(|c| c.cert_fingerprints.contains(&f))
        {
            // Name the owner only within the cache: an API v2 caller must
            // not learn another cache's usernames.
            return Err(ControlError::Conflict(if owner.cache_id == cache_id {
                format!(
                    "credential {} already carries this certificate",
                    owner.username
                )
            } else {
                "another credential already carries this certificate".into()
            }));
        }
        if self.state.credentials[i].cert_fingerprints.len() >= MAX_CERTS_PER_CREDENTIAL {
            return Err(ControlError::Conflict(format!(
                "credential {username} already has {MAX_CERTS_PER_CREDENTIAL} certificate fingerprints"
            )));
        }
        let mut next = self.state.clone();
        next.credentials[i].cert_fingerprints.push(f);
        self.commit(next)?;
        Ok(self.state.credentials[i].clone())
    }

    /// Removes a certificate fingerprint from a credential; sessions logged
    /// in with that certificate end with the next registry. `Invalid`: not
    /// a SHA-256 fingerprint; `NotFound`: no such credential, or it does
    /// not carry the fingerprint.
    pub fn remove_cert(
        &mut self,
        cache_id: u32,
        username: &str,
        fingerprint: &str,
    ) -> Result<(), ControlError> {
        let f = canonical_fingerprint(fingerprint)?;
        let i = self.state.credential_index(cache_id, username)?;
        let mut next = self.state.clone();
        let certs = &mut next.credentials[i].cert_fingerprints;
        let before = certs.len();
        certs.retain(|c| *c != f);
        if certs.len() == before {
            return Err(ControlError::NotFound);
        }
        self.commit(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy::Caps;

    const F1: &str = "3f1c0a9b8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170605f4e3";

    /// `F1` as `openssl x509 -fingerprint -sha256` prints it.
    fn colons(f: &str) -> String {
        let pairs: Vec<String> = f
            .as_bytes()
            .chunks(2)
            .map(|p| String::from_utf8_lossy(p).to_uppercase())
            .collect();
        pairs.join(":")
    }

    fn fp(n: u8) -> String {
        fingerprint_hex(&[n; 32])
    }

    #[test]
    fn add_list_remove_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ControlStore::open(dir.path()).unwrap();
        let (a, a1) = store.create_cache("a", 1 << 20).unwrap();
        let (b, b1) = store.create_cache("b", 1 << 20).unwrap();
        let a2 = store.add_credential(a.id, Caps::ALL).unwrap();

        // Any accepted spelling is stored canonically and logs in.
        let cred = store.add_cert(a.id, &a1.username, &colons(F1)).unwrap();
        assert_eq!(cred.cert_fingerprints, vec![F1.to_string()]);
        let f1 = parse_fingerprint(F1).unwrap();
        let session = store.registry().authenticate_cert(&f1).unwrap();
        assert_eq!(
            (session.cache_id, session.username.as_str()),
            (a.id, a1.username.as_str())
        );

        // One owner per fingerprint, whatever the spelling or the cache.
        for (cache, user) in [
            (a.id, &a1.username),
            (a.id, &a2.username),
            (b.id, &b1.username),
        ] {
            let r = store.add_cert(cache, user, &F1.to_uppercase());
            assert!(matches!(r, Err(ControlError::Conflict(_))), "{r:?}");
        }
        // Another cache's conflict does not name the owner.
        let Err(ControlError::Conflict(m)) = store.add_cert(b.id, &b1.username, F1) else {
            panic!("conflict expected");
        };
        assert!(!m.contains(&a1.username), "{m}");

        // Bad input and unknown credentials.
        for bad in ["", "zz", &F1[1..], &format!("{F1}00"), &"g".repeat(64)] {
            let r = store.add_cert(a.id, &a1.username, bad);
            assert!(matches!(r, Err(ControlError::Invalid(_))), "{bad:?}: {r:?}");
        }
        assert!(matches!(
            store.add_cert(a.id, &b1.username, &fp(1)),
            Err(ControlError::NotFound)
        ));
        assert!(matches!(
            store.add_cert(99, &a1.username, &fp(1)),
            Err(ControlError::NotFound)
        ));
        assert!(matches!(
            store.cert_fingerprints(b.id, &a1.username),
            Err(ControlError::NotFound)
        ));

        // The per-credential bound.
        for n in 1..MAX_CERTS_PER_CREDENTIAL as u8 {
            store.add_cert(a.id, &a2.username, &fp(n)).unwrap();
        }
        store.add_cert(a.id, &a2.username, &fp(200)).unwrap();
        assert!(matches!(
            store.add_cert(a.id, &a2.username, &fp(201)),
            Err(ControlError::Conflict(_))
        ));

        // Removal: absent is NotFound, and the login ends with it.
        assert!(matches!(
            store.remove_cert(a.id, &a1.username, &fp(1)),
            Err(ControlError::NotFound)
        ));
        assert!(matches!(
            store.remove_cert(a.id, &a1.username, "nope"),
            Err(ControlError::Invalid(_))
        ));
        let v = store.registry().version();
        store
            .remove_cert(a.id, &a2.username, &colons(&fp(200)))
            .unwrap();
        assert!(store.registry().version() > v);
        assert!(store.registry().authenticate_cert(&[200; 32]).is_none());

        // Across a restart.
        drop(store);
        let store = ControlStore::open(dir.path()).unwrap();
        assert_eq!(
            store.cert_fingerprints(a.id, &a1.username).unwrap(),
            vec![F1.to_string()]
        );
        assert_eq!(
            store.cert_fingerprints(a.id, &a2.username).unwrap().len(),
            MAX_CERTS_PER_CREDENTIAL - 1
        );
        assert!(store.registry().authenticate_cert(&f1).is_some());
        assert!(store.registry().authenticate_cert(&[1; 32]).is_some());
    }

    #[test]
    fn removing_the_credential_ends_its_certificate_login() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ControlStore::open(dir.path()).unwrap();
        let (a, _) = store.create_cache("a", 1 << 20).unwrap();
        let a2 = store.add_credential(a.id, Caps::ALL).unwrap();
        store.add_cert(a.id, &a2.username, F1).unwrap();
        let session = store
            .registry()
            .authenticate_cert(&parse_fingerprint(F1).unwrap())
            .unwrap();
        assert!(store.registry().still_valid(&session));
        store.remove_credential(a.id, &a2.username).unwrap();
        assert!(!store.registry().still_valid(&session));
        // Its fingerprint is free for another credential.
        let a3 = store.add_credential(a.id, Caps::ALL).unwrap();
        store.add_cert(a.id, &a3.username, F1).unwrap();
    }

    #[test]
    fn check_rejects_broken_fingerprints() {
        let mut s = State::fresh();
        s.caches.push(crate::tenancy::Cache {
            id: 1,
            name: "a".into(),
            memory_limit: 1 << 20,
            max_connections: 0,
            enabled: true,
            created: 0,
        });
        s.next_cache_id = 2;
        let mut one = s.new_credential(1, Caps::ALL, true).unwrap();
        one.cert_fingerprints = vec![F1.into()];
        let mut two = s.new_credential(1, Caps::ALL, false).unwrap();
        two.username = format!("{}X", one.username);
        s.credentials = vec![one.clone(), two.clone()];
        assert_eq!(s.check(), Ok(()));

        let with = |fps: Vec<String>| {
            let mut t = s.clone();
            t.credentials[1].cert_fingerprints = fps;
            t.check()
        };
        assert!(
            with(vec![F1.into()]).is_err(),
            "shared with another credential"
        );
        assert!(with(vec![fp(1), fp(1)]).is_err(), "twice on one");
        assert!(with(vec![F1.to_uppercase()]).is_err(), "not canonical");
        assert!(with(vec![colons(&fp(2))]).is_err(), "not canonical");
        assert!(with(vec!["00".into()]).is_err(), "not a digest");
        let many = (0..=MAX_CERTS_PER_CREDENTIAL as u8).map(fp).collect();
        assert!(with(many).is_err(), "over the bound");
        assert_eq!(with(vec![fp(1), fp(2)]), Ok(()));
    }
}
