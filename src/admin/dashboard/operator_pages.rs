//! The operator's pages: sign-in with the operator token, and the overview
//! of every cache and of the node (with create a cache, change a plan,
//! disable / enable, open a cache's dashboard).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use maud::{html, Markup};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::cache_pages::latency_table;
use super::layout::{self, bytes, hit_class, int, pct, Nav};
use super::session;
use super::{data, json_error, AdminState};

type Shared = State<Arc<AdminState>>;

fn see_other(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(LOCATION, v);
    }
    layout::harden(&mut resp);
    resp
}

/// `application/x-www-form-urlencoded` value of `name`.
fn form_value(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (decode(k)? == name).then(|| decode(v)).flatten()
    })
}

fn decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    let main = html! {
        section.narrow {
            h1 { "Operator sign-in" }
            p { "Sign in with the operator token: printed when the data dir was created, and kept in its operator.token file." }
            @if let Some(e) = error { p.note.bad role="alert" { (e) } }
            form method="post" action="/dashboard/login" .stack {
                label for="token" { "Operator token" }
                input id="token" name="token" type="password" required autocomplete="current-password" autofocus;
                button type="submit" { "Sign in" }
            }
            p.small.muted { "A cache's own users open its dashboard through its dashboard link instead (API v2 rotate_sso)." }
        }
    };
    layout::respond(
        status,
        layout::page("Sign in", "login", None, Nav::None, None, main),
    )
}

pub(super) async fn login_form(State(state): Shared, headers: HeaderMap) -> Response {
    if session::operator(&state, &headers).is_some() {
        return see_other("/dashboard/");
    }
    login_page(StatusCode::OK, None)
}

pub(super) async fn login(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if !session::same_origin(&headers) {
        return login_page(StatusCode::FORBIDDEN, Some("Cross-site sign-in refused."));
    }
    let token = form_value(&body, "token").unwrap_or_default();
    let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
    let ok = !token.trim().is_empty() && bool::from(digest.ct_eq(&state.token_digest));
    if !ok {
        return login_page(StatusCode::UNAUTHORIZED, Some("Wrong operator token."));
    }
    let mut resp = see_other("/dashboard/");
    let cookie = session::set_cookie(
        &state,
        session::OP_COOKIE,
        &session::operator_cookie(&state),
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(SET_COOKIE, v);
    }
    resp
}

/// Ends both sessions of the browser (operator and cache link).
pub(super) async fn logout(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let csrf = form_value(&body, "csrf");
    // Either session's token signs it out; a forged request cannot.
    let known = session::operator(&state, &headers)
        .into_iter()
        .chain(session::any_sso(&state, &headers))
        .any(|a| session::csrf_ok(&a, &headers, csrf.as_deref()));
    if !known {
        return json_error(StatusCode::FORBIDDEN, "missing or wrong CSRF token");
    }
    let mut resp = see_other("/dashboard/login");
    for name in [session::OP_COOKIE, session::SSO_COOKIE] {
        if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&state, name, "")) {
            resp.headers_mut().append(SET_COOKIE, v);
        }
    }
    resp
}

pub(super) async fn summary(State(state): Shared, headers: HeaderMap) -> Response {
    if session::operator(&state, &headers).is_none() {
        return json_error(StatusCode::UNAUTHORIZED, "not signed in as the operator");
    }
    Json(data::operator_summary(&state).await).into_response()
}

fn u(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// A node number the script refreshes from `node.KEY`.
fn node_stat(node: &Value, key: &str, fmt: &str) -> Markup {
    let n = u(node, key);
    let text = if fmt == "bytes" { bytes(n) } else { int(n) };
    html! { span data-node=(key) data-fmt=(fmt) data-value=(n) { (text) } }
}

fn cache_row(c: &Value) -> Markup {
    let id = u(c, "id");
    let name = s(c, "name");
    let hit = c.get("hit_rate_hour").and_then(Value::as_f64);
    let enabled = c["enabled"] == true;
    html! {
        tr data-cache-id=(id) {
            td { (id) }
            th scope="row" { a href=(format!("/dashboard/caches/{id}")) { (name) } }
            td.num { span data-cache-stat="plan" data-fmt="bytes" data-value=(u(c, "plan")) { (bytes(u(c, "plan"))) } }
            td.num {
                span data-cache-stat="bytes" data-fmt="bytes" data-value=(u(c, "bytes")) { (bytes(u(c, "bytes"))) }
                " " span.small.muted { "(" span data-cache-stat="mem_fraction" data-fmt="pct" { (pct(c.get("mem_fraction").and_then(Value::as_f64))) } ")" }
            }
            td.num { span data-cache-stat="curr_items" data-fmt="int" data-value=(u(c, "curr_items")) { (int(u(c, "curr_items"))) } }
            td.num { span.hit.(hit_class(hit)) data-cache-stat="hit_rate_hour" data-fmt="pct" { (pct(hit)) } }
            td.num { span data-cache-stat="curr_connections" data-fmt="int" data-value=(u(c, "curr_connections")) { (int(u(c, "curr_connections"))) } }
            td { span.badge.(if enabled { "good" } else { "bad" }) { (if enabled { "enabled" } else { "disabled" }) } }
            td.actions {
                a.button href=(format!("/dashboard/caches/{id}")) { "Open dashboard" span.vh { " of " (name) } }
                form.inline.plan-form data-cache=(id) {
                    label.vh for=(format!("plan-{id}")) { "New plan for " (name) }
                    input id=(format!("plan-{id}")) name="memory" size="7" required placeholder=(bytes(u(c, "plan")).replace(".0 ", "").replace(' ', ""));
                    button type="submit" { "Change plan" }
                }
                @if enabled {
                    button.danger type="button" data-set-enabled="false" data-cache=(id) data-name=(name) { "Disable" span.vh { " " (name) } }
                } @else {
                    button type="button" data-set-enabled="true" data-cache=(id) data-name=(name) { "Enable" span.vh { " " (name) } }
                }
            }
        }
    }
}

pub(super) async fn overview(State(state): Shared, headers: HeaderMap) -> Response {
    let Some(access) = session::operator(&state, &headers) else {
        return see_other("/dashboard/login");
    };
    let sm = data::operator_summary(&state).await;
    let node = &sm["node"];
    let status = &node["status"];
    let grade = s(status, "status");
    let caches = sm["caches"].as_array().cloned().unwrap_or_default();
    let grade_class = match grade {
        "green" => "good",
        "yellow" => "warn",
        _ => "bad",
    };
    let main = html! {
        h1 { "Operator overview" }
        section aria-labelledby="node-h" {
            h2 id="node-h" { "Node health" }
            div.cards {
                div.card.hit.(grade_class) id="card-status" {
                    h3 { "Status" }
                    p.big { span data-status="status" { (grade) } }
                    p.small { "p50 " span data-status="p50_us" { (status["p50_us"].as_u64().map_or("—".into(), int)) } " µs, p99 "
                        span data-status="p99_us" { (status["p99_us"].as_u64().map_or("—".into(), int)) } " µs (gets and sets, last "
                        span data-status="window_seconds" { (u(status, "window_seconds")) } " s)" }
                }
                div.card {
                    h3 { "Memory" }
                    p.big { (node_stat(node, "bytes", "bytes")) }
                    p.small { "of " (node_stat(node, "limit_maxbytes", "bytes")) " item memory; plans total " (node_stat(node, "plans_total", "bytes")) }
                }
                div.card {
                    h3 { "Connections" }
                    p.big { (node_stat(node, "curr_connections", "int")) " " span.small { "live" } }
                    p.small { (node_stat(node, "total_connections", "int")) " total" }
                }
                div.card { h3 { "Items" } p.big { (node_stat(node, "curr_items", "int")) } }
                div.card { h3 { "Caches" } p.big { span id="cache-count" { (caches.len()) } } p.small { "cluster " (s(node, "cluster_name")) } }
            }
            h3 { "Server latency per command class (µs)" }
            div.scroll { (latency_table(&node["latency"])) }
        }
        section aria-labelledby="caches-h" {
            h2 id="caches-h" { "Caches" }
            div.scroll {
                table.data id="caches" {
                    caption.vh { "Every hosted cache" }
                    thead { tr {
                        th scope="col" { "ID" } th scope="col" { "Name" } th.num scope="col" { "Plan" }
                        th.num scope="col" { "Usage" } th.num scope="col" { "Items" } th.num scope="col" { "Hit rate (1 h)" }
                        th.num scope="col" { "Connections" } th scope="col" { "State" } th scope="col" { "Actions" }
                    } }
                    tbody {
                        @if caches.is_empty() { tr { td colspan="9" .muted { "No caches yet." } } }
                        @for c in &caches { (cache_row(c)) }
                    }
                }
            }
        }
        section aria-labelledby="create-h" {
            h2 id="create-h" { "Create a cache" }
            form id="create-cache" .inline {
                label for="new-name" { "Name" }
                input id="new-name" name="name" required maxlength="64";
                label for="new-memory" { "Plan" }
                input id="new-memory" name="memory" required value="25MB" size="8";
                button type="submit" { "Create cache" }
            }
            pre.env id="created" hidden {}
        }
    };
    layout::respond(
        StatusCode::OK,
        layout::page(
            "Operator",
            "operator",
            Some(&access),
            Nav::Operator,
            None,
            main,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values() {
        assert_eq!(
            form_value(b"token=ab%2Bc+d&x=1", "token").as_deref(),
            Some("ab+c d")
        );
        assert_eq!(form_value(b"x=1", "token"), None);
        assert_eq!(form_value(b"token=%zz", "token"), None);
    }
}
