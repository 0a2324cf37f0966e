//! The page shell every dashboard page shares (head, navigation, the
//! status line and the confirmation dialog), and small formatting helpers
//! used when numbers are first rendered (the script keeps them fresh).

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::assets;
use super::session::Access;

/// Nothing but this origin: scripts and styles from our own files, data
/// from our own routes.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Which part of the site a page belongs to, for the navigation.
pub(super) enum Nav<'a> {
    /// A cache's page: id, name, and which tab is open.
    Cache(u32, &'a str, &'a str),
    Operator,
    None,
}

/// A complete page. `page` names the page for the script (`data-page`).
pub(super) fn page(
    title: &str,
    page: &str,
    access: Option<&Access>,
    nav: Nav<'_>,
    cache: Option<u32>,
    main: Markup,
) -> Markup {
    let csrf = access.map(|a| a.csrf.as_str()).unwrap_or("");
    let operator = access.is_some_and(|a| a.operator);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf-token" content=(csrf);
                title { (title) " · shoal" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href=(assets::url("uPlot.min.css"));
                link rel="stylesheet" href=(assets::url("dash.css"));
                script src=(assets::url("uPlot.iife.min.js")) defer {}
                script src=(assets::url("dash.js")) defer {}
            }
            body data-page=(page) data-cache=[cache] data-refresh=(super::REFRESH_MS) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href=(if operator { "/dashboard/" } else { "#main" }) { "shoal" }
                    @match nav {
                        Nav::Cache(id, name, tab) => {
                            span.crumb { "Cache " (id) " · " strong { (name) } }
                            nav aria-label="Cache pages" {
                                ul {
                                    (tab_link(id, "", "Overview", tab))
                                    (tab_link(id, "introspection", "Introspection", tab))
                                    (tab_link(id, "settings", "Settings", tab))
                                    (tab_link(id, "alerts", "Alerts", tab))
                                    @if operator {
                                        li { a href="/dashboard/" { "All caches" } }
                                    }
                                }
                            }
                        }
                        Nav::Operator => {
                            span.crumb { "Operator" }
                            nav aria-label="Operator pages" {
                                ul { li { a href="/dashboard/" aria-current="page" { "Caches and node" } } }
                            }
                        }
                        Nav::None => {}
                    }
                    @if access.is_some() {
                        form.logout method="post" action="/dashboard/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" tabindex="-1" { (main) }
                div id="status" role="status" aria-live="polite" {}
                dialog id="confirm-dialog" aria-labelledby="confirm-title" aria-describedby="confirm-text" {
                    form method="dialog" {
                        h2 id="confirm-title" { "Are you sure?" }
                        p id="confirm-text" {}
                        div.actions {
                            button value="cancel" type="submit" { "Cancel" }
                            button.danger id="confirm-ok" value="ok" type="submit" { "Confirm" }
                        }
                    }
                }
            }
        }
    }
}

fn tab_link(id: u32, sub: &str, label: &str, active: &str) -> Markup {
    let href = if sub.is_empty() {
        format!("/dashboard/caches/{id}")
    } else {
        format!("/dashboard/caches/{id}/{sub}")
    };
    html! {
        li {
            @if sub == active {
                a href=(href) aria-current="page" { (label) }
            } @else {
                a href=(href) { (label) }
            }
        }
    }
}

/// An HTML answer with the dashboard's security headers.
pub(super) fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut resp = (status, markup).into_response();
    harden(&mut resp);
    resp
}

pub(super) fn harden(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(CONTENT_TYPE) {
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
    }
}

/// A small page with a heading and a message (errors, the SSO landing).
pub(super) fn message(
    status: StatusCode,
    title: &str,
    text: &str,
    link: Option<(&str, &str)>,
) -> Response {
    let main = html! {
        section.narrow {
            h1 { (title) }
            p { (text) }
            @if let Some((href, label)) = link {
                p { a href=(href) { (label) } }
            }
        }
    };
    respond(status, page(title, "message", None, Nav::None, None, main))
}

/// 12345678 → "12,345,678".
pub(super) fn int(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in the largest binary unit that keeps the number ≥ 1.
pub(super) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A 0..1 ratio as a percentage ("—" for none).
pub(super) fn pct(r: Option<f64>) -> String {
    r.map_or_else(|| "—".to_string(), |r| format!("{:.1}%", r * 100.0))
}

/// The colour class of a hit rate: green ≥ 80 %, yellow ≥ 50 %, red below.
pub(super) fn hit_class(r: Option<f64>) -> &'static str {
    match r {
        None => "none",
        Some(r) if r >= 0.8 => "good",
        Some(r) if r >= 0.5 => "warn",
        Some(_) => "bad",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1000), "1,000");
        assert_eq!(int(12_345_678), "12,345,678");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(25 << 20), "25.0 MB");
        assert_eq!(pct(Some(0.8)), "80.0%");
        assert_eq!(pct(None), "—");
        assert_eq!(hit_class(Some(0.8)), "good");
        assert_eq!(hit_class(Some(0.79)), "warn");
        assert_eq!(hit_class(Some(0.5)), "warn");
        assert_eq!(hit_class(Some(0.49)), "bad");
    }
}
