//! The data port's TLS, for operators (`/admin/v1/tls`):
//!
//! | route | success |
//! | --- | --- |
//! | `GET /tls` | 200 `{enabled, cert, key, ca, verify_mode, min_version, handshake_errors, new_sessions, time_since_server_cert_refresh}` |
//! | `POST /tls/reload` | 200 the same, after the certificate, key and CA files were read again |
//!
//! A reload is memcached's `refresh_certs`: connections already open keep
//! their session, new ones get the new certificate; on an error (409, the
//! files' problem in memcached's words) the old certificate stays. 404
//! when no listener speaks TLS.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::body::ApiError;
use super::AdminState;
use crate::tls::TlsContext;

type ApiResult = Result<Response, ApiError>;

pub(super) fn operator_routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/tls", get(show))
        .route("/tls/reload", post(reload))
}

fn installed() -> Result<&'static Arc<TlsContext>, ApiError> {
    crate::tls::installed().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "TLS is not enabled (start with -Z or --tls-port)",
        )
    })
}

fn view(tls: &TlsContext) -> Value {
    let s = tls.settings();
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    json!({
        "enabled": true,
        "cert": path(&s.cert),
        "key": path(&s.key),
        "ca": s.ca.as_deref().map(path),
        "verify_mode": s.verify.name(),
        "min_version": s.min_version.name(),
        "handshake_errors": tls.handshake_errors(),
        "new_sessions": tls.new_sessions(),
        "time_since_server_cert_refresh": tls.time_since_refresh(),
    })
}

async fn show() -> ApiResult {
    Ok(Json(view(installed()?)).into_response())
}

async fn reload() -> ApiResult {
    let tls = installed()?;
    // Reads three small files: not worth a blocking-pool hop.
    tls.refresh()
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, "conflict", e))?;
    tracing::info!("TLS certificate reloaded through the admin endpoint");
    Ok(Json(view(tls)).into_response())
}
