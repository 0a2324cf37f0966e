//! The operator bearer token: `Authorization: Bearer <token>` on every
//! `/admin/v1` route.
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

use super::body::ApiError;
use super::AdminState;

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
