//! The dashboard's static files, compiled into the binary: our script and
//! stylesheet, and uPlot (vendored, see `assets/uplot/VENDORED.md`).
//! Served under `/dashboard/assets/NAME?v=HASH`; the hash of the contents
//! in the URL lets browsers keep them for a day.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// (name, content type, contents)
const FILES: [(&str, &str, &str); 4] = [
    (
        "dash.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/dash.js"),
    ),
    (
        "dash.css",
        "text/css; charset=utf-8",
        include_str!("assets/dash.css"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/uplot/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_str!("assets/uplot/uPlot.min.css"),
    ),
];

/// A short hash of all the files: changes whenever one does.
fn version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let mut h = Sha256::new();
        for (name, _, body) in FILES {
            h.update(name.as_bytes());
            h.update(body.as_bytes());
        }
        h.finalize()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

/// The URL of asset `name`.
pub(super) fn url(name: &str) -> String {
    format!("/dashboard/assets/{name}?v={}", version())
}

pub(super) async fn serve(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, body)) => {
            let mut resp = (*body).into_response();
            let h = resp.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
            h.insert(
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            );
            h.insert(
                axum::http::HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            );
            resp
        }
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
