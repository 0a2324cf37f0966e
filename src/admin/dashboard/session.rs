//! Dashboard sessions: signed cookies, their CSRF tokens and the checks a
//! request passes before a page or an action runs.
//!
//! Nothing is kept on the server. A session is a cookie whose value is
//! `payload.mac`, the MAC an HMAC-SHA256 under a key derived from the
//! operator token (so the sessions of a data dir survive a restart, and
//! none survives a new token):
//! - `shoal_op` (operator, from the login form): `o.EXPIRES`;
//! - `shoal_sso` (one cache, from its `/sso/ID?token=` link): `c.ID.EXPIRES`,
//!   MACed together with the cache's current SSO secret, so `rotate_sso`
//!   ends every session opened from an earlier link (the session that
//!   rotates gets a new cookie).
//!
//! Both cookies are `HttpOnly; SameSite=Strict; Path=/dashboard`, and
//! `Secure` when the endpoint serves HTTPS. The CSRF
//! token of a session is another MAC of its cookie value: every
//! state-changing request carries it (`X-CSRF-Token` from the pages'
//! script, a `csrf` field from the plain forms), and its `Origin`, when
//! sent, must be the server's own.

use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AdminState;

pub(super) const OP_COOKIE: &str = "shoal_op";
pub(super) const SSO_COOKIE: &str = "shoal_sso";
/// How long a session lasts after login or after opening a link.
const LIFETIME_SECS: i64 = 12 * 3600;

fn hmac(key: &[u8; 32], msg: &[u8]) -> [u8; 32] {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The MAC key: derived from the operator token, never sent anywhere.
fn key(state: &AdminState) -> [u8; 32] {
    let store = state.lock();
    Sha256::new()
        .chain_update(b"shoal dashboard sessions\0")
        .chain_update(store.operator_token().as_bytes())
        .finalize()
        .into()
}

fn sign(state: &AdminState, payload: &str, bound: &str) -> String {
    let msg = format!("{payload}\0{bound}");
    format!("{payload}.{}", hex(&hmac(&key(state), msg.as_bytes())))
}

fn verify(state: &AdminState, value: &str, bound: &str) -> Option<String> {
    let (payload, _) = value.rsplit_once('.')?;
    let expected = sign(state, payload, bound);
    bool::from(expected.as_bytes().ct_eq(value.as_bytes())).then(|| payload.to_string())
}

fn expires_ok(raw: &str) -> bool {
    raw.parse::<i64>()
        .is_ok_and(|t| t > crate::clock::unix_now())
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` value for `name`; an empty `value` clears it. Over HTTPS
/// (`--admin-tls-cert`) the cookie is `Secure`: a browser never sends it
/// over plain HTTP.
pub(super) fn set_cookie(state: &AdminState, name: &str, value: &str) -> String {
    let age = if value.is_empty() { 0 } else { LIFETIME_SECS };
    let secure = if state.tls.is_some() { "; Secure" } else { "" };
    format!("{name}={value}; Path=/dashboard; Max-Age={age}; HttpOnly; SameSite=Strict{secure}")
}

/// A new operator session cookie value.
pub(super) fn operator_cookie(state: &AdminState) -> String {
    let expires = crate::clock::unix_now() + LIFETIME_SECS;
    sign(state, &format!("o.{expires}"), "")
}

/// A new session for `cache`, bound to its current SSO `secret`.
pub(super) fn sso_cookie(state: &AdminState, cache: u32, secret: &str) -> String {
    let expires = crate::clock::unix_now() + LIFETIME_SECS;
    sign(state, &format!("c.{cache}.{expires}"), secret)
}

/// Who a request is: the session that lets it in, and that session's CSRF
/// token.
#[derive(Clone, Debug)]
pub(super) struct Access {
    /// The operator (every cache, the operator pages).
    pub operator: bool,
    /// The cache an SSO session is for (None for the operator).
    pub cache: Option<u32>,
    pub csrf: String,
}

fn csrf_of(state: &AdminState, cookie_value: &str) -> String {
    let msg = format!("csrf\0{cookie_value}");
    hex(&hmac(&key(state), msg.as_bytes()))
}

/// The operator session of `headers`, if valid.
pub(super) fn operator(state: &AdminState, headers: &HeaderMap) -> Option<Access> {
    let value = cookie(headers, OP_COOKIE)?;
    let payload = verify(state, value, "")?;
    let expires = payload.strip_prefix("o.")?;
    expires_ok(expires).then(|| Access {
        operator: true,
        cache: None,
        csrf: csrf_of(state, value),
    })
}

/// The SSO session of `headers` for `cache`, if valid (its link not
/// rotated away since).
fn sso(state: &AdminState, headers: &HeaderMap, cache: u32) -> Option<Access> {
    let value = cookie(headers, SSO_COOKIE)?;
    let rest = value.strip_prefix("c.")?;
    let (id, _) = rest.split_once('.')?;
    if id.parse::<u32>().ok()? != cache {
        return None;
    }
    let secret = state.lock().sso_secret(cache).unwrap_or_default();
    if secret.is_empty() {
        return None;
    }
    let payload = verify(state, value, &secret)?;
    let (_, expires) = payload.strip_prefix("c.")?.split_once('.')?;
    expires_ok(expires).then(|| Access {
        operator: false,
        cache: Some(cache),
        csrf: csrf_of(state, value),
    })
}

/// The browser's cache session, whichever cache it is for.
pub(super) fn any_sso(state: &AdminState, headers: &HeaderMap) -> Option<Access> {
    let value = cookie(headers, SSO_COOKIE)?;
    let (id, _) = value.strip_prefix("c.")?.split_once('.')?;
    sso(state, headers, id.parse().ok()?)
}

/// The session that may see `cache`: the operator's, else the cache's own.
pub(super) fn for_cache(state: &AdminState, headers: &HeaderMap, cache: u32) -> Option<Access> {
    operator(state, headers).or_else(|| sso(state, headers, cache))
}

/// Is a state-changing request really from our pages? Its CSRF token
/// (header, or `form_token` from a plain form) matches the session's, and
/// its Origin, when the browser sends one, is this server.
pub(super) fn csrf_ok(access: &Access, headers: &HeaderMap, form_token: Option<&str>) -> bool {
    let offered = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .or(form_token)
        .unwrap_or("");
    let token_ok: bool = access.csrf.as_bytes().ct_eq(offered.as_bytes()).into();
    token_ok && same_origin(headers)
}

/// No `Origin` (not sent) or `Origin` equal to `http://` + `Host`.
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    !host.is_empty() && (origin == format!("http://{host}") || origin == format!("https://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_shape() {
        // RFC 4231 test case 2 uses a short key; ours are always 32 bytes,
        // so check test case 1 with its key padded as HMAC pads it.
        let mut k = [0u8; 32];
        k[..20].copy_from_slice(&[0x0b; 20]);
        // HMAC pads keys shorter than the block with zeros: a 20-byte key
        // and the same key zero-padded to 32 bytes give the same MAC.
        assert_eq!(
            hex(&hmac(&k, b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn cookies_parse() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, "a=1; shoal_op=o.5.ab ; b=2".parse().unwrap());
        assert_eq!(cookie(&h, OP_COOKIE), Some("o.5.ab"));
        assert_eq!(cookie(&h, SSO_COOKIE), None);
    }

    #[test]
    fn origins() {
        let mut h = HeaderMap::new();
        h.insert(HOST, "127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!same_origin(&h));
    }
}
