//! Every action and every number of the pages goes through the admin
//! endpoint's own routes: a request is handed, in process, to the same
//! router that serves `/api/v2` and `/admin/v1`, as the operator (API v2
//! accepts the operator token for any cache). So a credential added, an
//! alert edited or a cache flushed from a page runs exactly the code a
//! `curl` of the API runs, with its validation and its answers.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tower::ServiceExt;

use super::{admin_router, AdminState};

/// Most a proxied answer may be (the API's largest are a month of stats).
const MAX_ANSWER: usize = 16 << 20;

/// Is `rest` a plain route tail: segments of `[A-Za-z0-9_.-]`, none empty
/// or a dot segment?
pub(super) fn plain_path(rest: &str) -> bool {
    !rest.is_empty()
        && rest.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        })
}

/// Sends `method path` (path with its query) with `body` through the admin
/// router as the operator and returns its answer as is.
pub(super) async fn call(
    state: &Arc<AdminState>,
    method: Method,
    path: &str,
    body: Bytes,
) -> Response {
    let token = state.lock().operator_token().to_string();
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(body));
    let req = match req {
        Ok(r) => r,
        Err(_) => return (StatusCode::BAD_REQUEST, "bad request path").into_response(),
    };
    // The same router the listener serves (built per call: it holds no
    // state of its own, and keeping one would hold the admin state).
    let router = admin_router(state.clone());
    match router.oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

/// `GET path` through the router, its JSON body (None unless a 2xx).
pub(super) async fn get_json(state: &Arc<AdminState>, path: &str) -> Option<Value> {
    let resp = call(state, Method::GET, path, Bytes::new()).await;
    if !resp.status().is_success() {
        return None;
    }
    let bytes = axum::body::to_bytes(resp.into_body(), MAX_ANSWER)
        .await
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::plain_path;

    #[test]
    fn only_plain_tails_pass() {
        assert!(plain_path("stats"));
        assert!(plain_path("credentials/0A1B2C"));
        assert!(plain_path("introspection/prefixes/12/stats"));
        for bad in [
            "", "/", "a//b", "../admin", "a/../b", "a/.", "a b", "a%2F", "a?b",
        ] {
            assert!(!plain_path(bad), "{bad}");
        }
    }
}
