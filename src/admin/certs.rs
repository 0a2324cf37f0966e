//! A credential's TLS client-certificate fingerprints (SHA-256 of the
//! certificate's DER): a client presenting such a certificate on the data
//! port is logged in as the credential with no SASL or ASCII step. Managed
//! by the operator and, as a shoal extension of MemCachier's API v2, by the
//! cache's own users.
//!
//! | route | success |
//! | --- | --- |
//! | `GET /admin/v1/caches/:id/credentials/:username/certs` | 200 `{cert_fingerprints}` |
//! | `POST /admin/v1/caches/:id/credentials/:username/certs {fingerprint}` | 201 `{credential}` |
//! | `DELETE /admin/v1/caches/:id/credentials/:username/certs/:fingerprint` | 204 |
//! | `GET /api/v2/caches/:id/credentials/:username/certs` | 200 list of fingerprints |
//! | `POST /api/v2/caches/:id/credentials/:username/certs {fingerprint}` | 201 the credential |
//! | `DELETE /api/v2/caches/:id/credentials/:username/certs/:fingerprint` | 204 |
//!
//! A fingerprint is 64 hex digits in either case, colons between pairs
//! allowed (`openssl x509 -noout -fingerprint -sha256`); answers carry the
//! canonical lowercase form. 400 a malformed fingerprint, 404 no such
//! cache, credential or (DELETE) fingerprint on it, 409 a fingerprint some
//! credential already carries or a credential at its bound. Removing a
//! fingerprint or its credential ends the sessions it logged in, like any
//! revocation (the registry that follows the commit).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::auth::authorize;
use super::body::{credential_json, credential_view, parse_id, parse_json, ApiError};
use super::AdminState;

type Shared = State<Arc<AdminState>>;
type ApiResult = Result<Response, ApiError>;

/// The operator's routes, nested under `/admin/v1` behind the token.
pub(crate) fn operator_routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route(
            "/caches/{id}/credentials/{username}/certs",
            get(operator_list).post(operator_add),
        )
        .route(
            "/caches/{id}/credentials/{username}/certs/{fingerprint}",
            delete(operator_remove),
        )
}

/// The API v2 extension, nested under `/api/v2`.
pub(crate) fn router() -> Router<Arc<AdminState>> {
    Router::new()
        .route(
            "/caches/{id}/credentials/{username}/certs",
            get(api_list).post(api_add),
        )
        .route(
            "/caches/{id}/credentials/{username}/certs/{fingerprint}",
            delete(api_remove),
        )
}

/// POST body of both routes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddCert {
    fingerprint: String,
}

async fn operator_list(
    State(state): Shared,
    Path((id, username)): Path<(String, String)>,
) -> ApiResult {
    let id = parse_id(&id)?;
    let certs = state.lock().cert_fingerprints(id, &username)?;
    Ok(Json(json!({ "cert_fingerprints": certs })).into_response())
}

async fn operator_add(
    State(state): Shared,
    Path((id, username)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let id = parse_id(&id)?;
    let req: AddCert = parse_json(&body)?;
    let cred = state.mutate(|s| s.add_cert(id, &username, &req.fingerprint))?;
    let body = json!({ "credential": credential_view(&cred) });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn operator_remove(
    State(state): Shared,
    Path((id, username, fingerprint)): Path<(String, String, String)>,
) -> ApiResult {
    let id = parse_id(&id)?;
    state.mutate(|s| s.remove_cert(id, &username, &fingerprint))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn api_list(
    State(state): Shared,
    headers: HeaderMap,
    Path((id, username)): Path<(String, String)>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let certs = state.lock().cert_fingerprints(cache.id, &username)?;
    Ok(Json(certs).into_response())
}

async fn api_add(
    State(state): Shared,
    headers: HeaderMap,
    Path((id, username)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let req: AddCert = parse_json(&body)?;
    let cred = state.mutate(|s| s.add_cert(cache.id, &username, &req.fingerprint))?;
    Ok((StatusCode::CREATED, Json(credential_json(&cred))).into_response())
}

async fn api_remove(
    State(state): Shared,
    headers: HeaderMap,
    Path((id, username, fingerprint)): Path<(String, String, String)>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    state.mutate(|s| s.remove_cert(cache.id, &username, &fingerprint))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
