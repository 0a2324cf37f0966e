//! Who may call which route: the operator bearer token
//! (`Authorization: Bearer <token>`) on every `/admin/v1` route, and a cache
//! credential with the api capability (HTTP Basic, [`authorize`]) on the
//! MemCachier API v2 routes.
//!
//! Both the configured token and the offered one are hashed with SHA-256 and
//! the digests compared in constant time, so neither the position of the
//! first wrong byte nor the token's length shows in the response time.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::body::{canonical_id, ApiError};
use super::AdminState;
use crate::tenancy::Cache;

pub(crate) fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The token offered in an `Authorization: Bearer` header, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Does `headers` carry the operator token whose digest is `expected`?
pub(crate) fn is_operator(headers: &HeaderMap, expected: &[u8; 32]) -> bool {
    match bearer(headers) {
        Some(token) if !token.is_empty() => digest(token).ct_eq(expected).into(),
        _ => false,
    }
}

/// Middleware: 401 with a JSON error unless the request carries the token.
pub(crate) async fn require_operator(
    State(state): State<Arc<AdminState>>,
    req: Request,
    next: Next,
) -> Response {
    if is_operator(req.headers(), &state.token_digest) {
        return next.run(req).await;
    }
    let mut resp = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or wrong operator token",
    )
    .into_response();
    resp.headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Unauthorized to access cache with this ID.",
    )
}

fn forbidden() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "Forbidden to access cache with this ID.",
    )
}

/// `Authorization: Basic base64(user:pass)`.
fn basic(headers: &HeaderMap) -> Option<(String, Vec<u8>)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = crate::protocol::meta::base64::decode(b64.trim().as_bytes())?;
    let colon = raw.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(raw[..colon].to_vec()).ok()?;
    Some((user, raw[colon + 1..].to_vec()))
}

/// Parses the id (400), finds the credential the request authenticates as
/// (401), checks it belongs to this cache and may use the API (403), and
/// returns the cache (404 when it is gone). A disabled cache's credentials
/// still reach the API: `enable_cache` is how its users turn it back on.
pub(super) fn authorize(
    state: &AdminState,
    headers: &HeaderMap,
    raw_id: &str,
) -> Result<Cache, ApiError> {
    let id: u32 = canonical_id(raw_id)
        .ok_or_else(|| ApiError::invalid("The specified cache ID is invalid (not a number)."))?;
    // The operator token reaches every cache (the dashboard acts through it).
    if is_operator(headers, &state.token_digest) {
        return state
            .lock()
            .cache(id)
            .ok_or_else(|| ApiError::not_found("Cache not found."));
    }
    let (user, pass) = basic(headers).ok_or_else(unauthorized)?;
    let store = state.lock();
    let cred = store
        .caches()
        .iter()
        .flat_map(|c| store.credentials(c.id))
        .find(|c| c.username == user)
        .ok_or_else(unauthorized)?;
    let password_ok: bool = cred.password.as_bytes().ct_eq(&pass).into();
    if !password_ok {
        return Err(unauthorized());
    }
    if cred.cache_id != id || !cred.caps.api {
        return Err(forbidden());
    }
    store
        .cache(id)
        .ok_or_else(|| ApiError::not_found("Cache not found."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn accepts_only_the_exact_token() {
        let d = digest("s3cret");
        assert!(is_operator(&headers("Bearer s3cret"), &d));
        assert!(is_operator(&headers("bearer  s3cret "), &d));
        assert!(!is_operator(&headers("Bearer s3cre"), &d));
        assert!(!is_operator(&headers("Bearer s3cret2"), &d));
        assert!(!is_operator(&headers("Basic s3cret"), &d));
        assert!(!is_operator(&headers("s3cret"), &d));
        assert!(!is_operator(&headers("Bearer "), &d));
        assert!(!is_operator(&HeaderMap::new(), &d));
    }
}
