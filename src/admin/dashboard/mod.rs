//! The web dashboard, MemCachier's analytics dashboard served by the admin
//! endpoint itself, under `/dashboard`:
//!
//! | route | what |
//! | --- | --- |
//! | `GET /sso/ID?token=` (browsers) | opens the cache's dashboard (`manage.rs` hands browsers here) |
//! | `GET /dashboard/caches/ID[/introspection, /settings, /alerts]` | a cache's pages |
//! | `GET /dashboard/caches/ID/summary.json`, `latency.json` | their numbers, refreshed by the script |
//! | `ANY /dashboard/caches/ID/api/REST` | `/api/v2/caches/ID/REST`, run as the operator (`proxy.rs`) |
//! | `GET /dashboard/login`, `POST /dashboard/login`, `POST /dashboard/logout` | the operator's session |
//! | `GET /dashboard/` | the operator overview: every cache and the node's health |
//! | `GET /dashboard/operator/summary.json` | its numbers |
//! | `ANY /dashboard/operator/api/REST` | `/admin/v1/REST` |
//! | `GET /dashboard/assets/NAME` | script, stylesheet, uPlot |
//! | `GET /` (browsers) | 303 to `/dashboard/` |
//!
//! Pages are rendered here (maud) with their numbers; `assets/dash.js`
//! refreshes the numbers, draws the graphs (uPlot) and sends the actions,
//! each through the API route that does it (`proxy.rs`), so the dashboard
//! implements no mutation of its own. Sessions and CSRF: `session.rs`.

mod assets;
mod cache_pages;
mod data;
mod layout;
mod operator_pages;
mod proxy;
mod session;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{ACCEPT, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::tenancy::Cache;

// What the dashboard takes from the rest of the admin endpoint, named once
// here: its state, the store lock, the router it sends actions through,
// the stats history and the node status.
use super::body::canonical_id;
use super::history::{History, FIELDS};
use super::routes::router as admin_router;
use super::status::report as node_status;
use super::AdminState;

type Shared = State<Arc<AdminState>>;

/// How often the pages refresh their numbers, in milliseconds.
pub(crate) const REFRESH_MS: u64 = 5_000;

pub(crate) fn router() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/dashboard", get(operator_pages::overview))
        .route("/dashboard/", get(operator_pages::overview))
        .route(
            "/dashboard/login",
            get(operator_pages::login_form).post(operator_pages::login),
        )
        .route("/dashboard/logout", post(operator_pages::logout))
        .route(
            "/dashboard/operator/summary.json",
            get(operator_pages::summary),
        )
        .route("/dashboard/operator/api/{*rest}", any(operator_api))
        .route("/dashboard/caches/{id}", get(cache_pages::overview))
        .route(
            "/dashboard/caches/{id}/introspection",
            get(cache_pages::introspection),
        )
        .route(
            "/dashboard/caches/{id}/settings",
            get(cache_pages::settings),
        )
        .route("/dashboard/caches/{id}/alerts", get(cache_pages::alerts))
        .route("/dashboard/caches/{id}/summary.json", get(cache_summary))
        .route("/dashboard/caches/{id}/latency.json", get(cache_latency))
        .route("/dashboard/caches/{id}/api/{*rest}", any(cache_api))
        .route("/dashboard/assets/{name}", get(assets::serve))
        .route("/", get(root))
}

/// A browser opening the admin address lands on the dashboard; anything
/// else gets the fallback's answer.
async fn root(headers: HeaderMap) -> Response {
    if wants_html(&headers) {
        let mut resp = StatusCode::SEE_OTHER.into_response();
        resp.headers_mut()
            .insert(LOCATION, HeaderValue::from_static("/dashboard/"));
        return resp;
    }
    json_error(StatusCode::NOT_FOUND, "no such route")
}

/// Does the client want a page rather than JSON (a browser navigating)?
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// What a browser gets for `/sso/ID?token=`: `Ok` is the cache the link
/// opens and its current secret (the link checked by `manage.rs`), `Err`
/// a link that is wrong or rotated away. A valid link sets the cache's
/// session cookie and moves on to its dashboard; the move is a page of
/// its own (not a redirect) so that a link followed from another site
/// still lands with the SameSite=Strict cookie.
pub(crate) fn sso_landing(state: &AdminState, link: Result<(Cache, String), ()>) -> Response {
    let Ok((cache, secret)) = link else {
        return layout::message(
            StatusCode::UNAUTHORIZED,
            "Dashboard link not valid",
            "This dashboard link is not valid: it was rotated or is wrong. \
             Ask for a new one (API v2 rotate_sso) or open the cache from the operator overview.",
            Some(("/dashboard/login", "Operator sign-in")),
        );
    };
    let target = format!("/dashboard/caches/{}", cache.id);
    let mut resp = layout::message(
        StatusCode::OK,
        "Opening the dashboard",
        &format!("Opening the dashboard of cache {} …", cache.name),
        Some((&target, "Continue to the dashboard")),
    );
    let cookie = session::set_cookie(
        state,
        session::SSO_COOKIE,
        &session::sso_cookie(state, cache.id, &secret),
    );
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        h.insert(SET_COOKIE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("0;url={target}")) {
        h.insert(axum::http::HeaderName::from_static("refresh"), v);
    }
    resp
}

fn json_error(status: StatusCode, message: &str) -> Response {
    let code = match status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        _ => "invalid",
    };
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

fn cache_id(raw: &str) -> Option<u32> {
    canonical_id::<u32>(raw).filter(|id| *id > 0)
}

/// The session for a cache's JSON route, or the error answer.
fn json_access(
    state: &AdminState,
    headers: &HeaderMap,
    raw_id: &str,
) -> Result<(u32, session::Access), Box<Response>> {
    let id = cache_id(raw_id)
        .ok_or_else(|| Box::new(json_error(StatusCode::BAD_REQUEST, "bad cache id")))?;
    let access = session::for_cache(state, headers, id).ok_or_else(|| {
        Box::new(json_error(
            StatusCode::UNAUTHORIZED,
            "not signed in: open the cache's dashboard link again",
        ))
    })?;
    Ok((id, access))
}

fn allowed(method: &Method) -> bool {
    [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ]
    .contains(method)
}

fn with_query(path: String, q: Option<String>) -> String {
    match q {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path,
    }
}

async fn cache_summary(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (id, _) = match json_access(&state, &headers, &id) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    match data::cache_summary(&state, id).await {
        Some(v) => Json(v).into_response(),
        None => json_error(StatusCode::NOT_FOUND, "Cache not found."),
    }
}

async fn cache_latency(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (id, _) = match json_access(&state, &headers, &id) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let path = format!("/admin/v1/caches/{id}/latency");
    proxy::call(&state, Method::GET, &path, Bytes::new()).await
}

/// `/dashboard/caches/ID/api/REST` → `/api/v2/caches/ID/REST`.
async fn cache_api(
    State(state): Shared,
    method: Method,
    headers: HeaderMap,
    Path((id, rest)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let (id, access) = match json_access(&state, &headers, &id) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    if !allowed(&method) || !proxy::plain_path(&rest) {
        return json_error(StatusCode::BAD_REQUEST, "not an API route");
    }
    if method != Method::GET && !session::csrf_ok(&access, &headers, None) {
        return json_error(StatusCode::FORBIDDEN, "missing or wrong CSRF token");
    }
    let path = with_query(format!("/api/v2/caches/{id}/{rest}"), query);
    let resp = proxy::call(&state, method.clone(), &path, body).await;
    if rest == "rotate_sso" && method == Method::POST && resp.status().is_success() {
        return after_rotate(&state, &access, id, resp);
    }
    resp
}

/// The session that rotated its own cache's link keeps going: it gets a
/// cookie bound to the new secret (every other session of the old link ends).
fn after_rotate(
    state: &AdminState,
    access: &session::Access,
    id: u32,
    mut resp: Response,
) -> Response {
    if access.cache == Some(id) {
        let secret = state.lock().sso_secret(id).unwrap_or_default();
        let cookie = session::set_cookie(
            state,
            session::SSO_COOKIE,
            &session::sso_cookie(state, id, &secret),
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().insert(SET_COOKIE, v);
        }
    }
    resp
}

/// `/dashboard/operator/api/REST` → `/admin/v1/REST` (operator session only).
async fn operator_api(
    State(state): Shared,
    method: Method,
    headers: HeaderMap,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Some(access) = session::operator(&state, &headers) else {
        return json_error(StatusCode::UNAUTHORIZED, "not signed in as the operator");
    };
    if !allowed(&method) || !proxy::plain_path(&rest) {
        return json_error(StatusCode::BAD_REQUEST, "not an API route");
    }
    if method != Method::GET && !session::csrf_ok(&access, &headers, None) {
        return json_error(StatusCode::FORBIDDEN, "missing or wrong CSRF token");
    }
    let path = with_query(format!("/admin/v1/{rest}"), query);
    proxy::call(&state, method, &path, body).await
}
