//! SASL PLAIN for the binary protocol, through `rsasl` (design.md §1.5).
//!
//! rsasl parses the client's message (`authzid \0 authcid \0 password`,
//! SASLprep on authcid and UTF-8 passwords) and hands the fields to our
//! callback. The callback must be `Send + Sync` and is shared by every
//! connection, so it does not look anything up: it only passes the offered
//! identity out as the validation value, and [`authenticate_plain`] checks it
//! against the caller's [`Registry`] snapshot. The wire glue (LIST_MECHS,
//! AUTH, STEP, status 0x20 `Auth failure.`) lives in the binary front end.

use std::sync::{Arc, OnceLock};

use rsasl::callback::{Context, SessionCallback, SessionData};
use rsasl::mechname::Mechname;
use rsasl::prelude::{MessageSent, SASLConfig, SASLServer, State};
use rsasl::property::{AuthId, AuthzId, Password};
use rsasl::validate::{Validate, Validation, ValidationError};

use super::{Registry, Session};

/// The mechanism list sent in reply to SASL_LIST_MECHS.
pub fn plain_mechs() -> &'static str {
    "PLAIN"
}

/// The identity a client offered; `None` when the authzid names someone else
/// (memcached clients send it empty; acting as another user is not offered).
struct Offered;

impl Validation for Offered {
    type Value = Option<(String, Vec<u8>)>;
}

struct PassThrough;

impl SessionCallback for PassThrough {
    fn validate(
        &self,
        session_data: &SessionData,
        context: &Context,
        validate: &mut Validate<'_>,
    ) -> Result<(), ValidationError> {
        if session_data.mechanism().mechanism != "PLAIN" {
            return Ok(());
        }
        let authcid = context.get_ref::<AuthId>();
        let password = context.get_ref::<Password>();
        let authzid = context.get_ref::<AuthzId>().unwrap_or("");
        let offered = match (authcid, password) {
            (Some(user), Some(pass)) if authzid.is_empty() || authzid == user => {
                Some((user.to_owned(), pass.to_vec()))
            }
            _ => None,
        };
        validate.with::<Offered, _>(|| Ok(offered))?;
        Ok(())
    }
}

fn config() -> Option<&'static Arc<SASLConfig>> {
    static CONFIG: OnceLock<Option<Arc<SASLConfig>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            SASLConfig::builder()
                .with_defaults()
                .with_callback(PassThrough)
                .ok()
        })
        .as_ref()
}

/// Runs an rsasl PLAIN server exchange on the client's initial response
/// (`authzid\0user\0pass`, authzid usually empty) and returns the session it
/// authenticates in `registry`, or `None` for bad credentials, a disabled
/// cache, or malformed input. PLAIN is single-step, so a SASL_STEP carrying
/// the same payload is handled by calling this again.
pub fn authenticate_plain(registry: &Registry, initial: &[u8]) -> Option<Session> {
    let (user, pass) = offered(initial)?;
    registry.authenticate(user.as_bytes(), &pass)
}

/// The cache whose credential a PLAIN message names (the authcid), whether
/// or not the password is right: a failed login counts in that cache's
/// `auth_errors`. None for malformed messages and unknown usernames.
pub fn plain_claimed_cache(registry: &Registry, initial: &[u8]) -> Option<u32> {
    let (user, _) = offered(initial)?;
    registry.cache_of(user.as_bytes())
}

/// The identity and password a PLAIN message offers, parsed by rsasl.
fn offered(initial: &[u8]) -> Option<(String, Vec<u8>)> {
    let mech = Mechname::parse(b"PLAIN").ok()?;
    let mut session = SASLServer::<Offered>::new(Arc::clone(config()?))
        .start_suggested(mech)
        .ok()?;
    let mut out = Vec::new();
    match session.step(Some(initial), &mut out) {
        Ok(State::Finished(MessageSent::No)) => {}
        _ => return None,
    }
    session.validation()?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy::{Cache, Caps, Credential};

    fn registry(enabled: bool) -> Registry {
        let cache = Cache {
            id: 3,
            name: "c".into(),
            memory_limit: 1 << 20,
            max_connections: 0,
            enabled,
            created: 0,
        };
        let cred = Credential {
            username: "15F38E".into(),
            password: "52353F9F1C4017CC16FD348B982ED47D".into(),
            cache_id: 3,
            caps: Caps::ALL,
            primary: true,
            created: 0,
            cert_fingerprints: Vec::new(),
        };
        Registry::build(1, &[cache], &[cred])
    }

    const GOOD: &[u8] = b"\x0015F38E\x0052353F9F1C4017CC16FD348B982ED47D";

    #[test]
    fn mechs() {
        assert_eq!(plain_mechs(), "PLAIN");
    }

    #[test]
    fn good_credentials() {
        let r = registry(true);
        let s = authenticate_plain(&r, GOOD).unwrap();
        assert_eq!(s.cache_id, 3);
        assert_eq!(s.username, "15F38E");
        assert_eq!(s.caps, Caps::ALL);
        // authzid equal to the authcid is accepted too.
        let with_authz = b"15F38E\x0015F38E\x0052353F9F1C4017CC16FD348B982ED47D";
        assert!(authenticate_plain(&r, with_authz).is_some());
    }

    #[test]
    fn bad_credentials() {
        let r = registry(true);
        assert!(authenticate_plain(&r, b"\x0015F38E\x00wrong").is_none());
        assert!(
            authenticate_plain(&r, b"\x00AAAAAA\x0052353F9F1C4017CC16FD348B982ED47D").is_none()
        );
        // Someone else's authzid.
        assert!(
            authenticate_plain(&r, b"other\x0015F38E\x0052353F9F1C4017CC16FD348B982ED47D")
                .is_none()
        );
        // Disabled cache.
        assert!(authenticate_plain(&registry(false), GOOD).is_none());
    }

    #[test]
    fn malformed_input_is_refused() {
        let r = registry(true);
        let cases: &[&[u8]] = &[
            b"",
            b"\0",
            b"\0\0",
            b"\0\0\0",
            b"abc",
            b"15F38E 52353F9F1C4017CC16FD348B982ED47D",
            b"\x0015F38E",
            b"\x0015F38E\x00",
            b"\x00\x0052353F9F1C4017CC16FD348B982ED47D",
            b"\x0015F38E\x0052353F9F1C4017CC16FD348B982ED47D\x00",
            b"\x00\xff\xfe\x00pw",
            b"\xff\x0015F38E\x0052353F9F1C4017CC16FD348B982ED47D",
            b"\x00\x0015F38E\x0052353F9F1C4017CC16FD348B982ED47D",
        ];
        for c in cases {
            assert!(authenticate_plain(&r, c).is_none(), "{c:?}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A tiny deterministic fuzz: xorshift over lengths 0..64 and NUL-heavy bytes.
        let r = registry(true);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| {
                    let b = (x >> ((i % 8) * 8)) as u8;
                    if b.is_multiple_of(5) {
                        0
                    } else {
                        b.wrapping_add(i as u8)
                    }
                })
                .collect();
            assert!(authenticate_plain(&r, &bytes).is_none());
        }
    }

    #[test]
    fn claimed_cache_is_the_authcid_s() {
        let r = registry(true);
        assert_eq!(plain_claimed_cache(&r, b"\x0015F38E\x00wrong"), Some(3));
        assert_eq!(plain_claimed_cache(&r, GOOD), Some(3));
        assert_eq!(plain_claimed_cache(&r, b"\x00AAAAAA\x00x"), None);
        assert_eq!(plain_claimed_cache(&r, b"garbage"), None);
    }
}
