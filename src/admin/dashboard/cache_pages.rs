//! A cache's pages: overview (cards, graphs, command counts, latency),
//! introspection, settings and alerts. Each is rendered from the API's own
//! answers (`proxy::get_json`); `dash.js` keeps it fresh and sends its
//! actions.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{html, Markup};
use serde_json::Value;

use super::layout::{self, bytes, hit_class, int, pct, Nav};
use super::session::{self, Access};
use super::{cache_id, data, proxy, AdminState};

type Shared = State<Arc<AdminState>>;

/// The graphable processed stats: (name, label, unit).
pub(super) const SERIES: [(&str, &str, &str); 10] = [
    ("bytes", "Memory used", "bytes"),
    ("hit_rate", "Hit rate", "ratio"),
    ("items", "Items", "count"),
    ("get_rate", "Gets per second", "rate"),
    ("set_rate", "Sets per second", "rate"),
    ("request_rate", "Requests per second", "rate"),
    ("eviction_rate", "Evictions per second", "rate"),
    ("connections", "Connections", "count"),
    ("bytes_read_rate", "Bytes in per second", "byterate"),
    ("bytes_write_rate", "Bytes out per second", "byterate"),
];

const RANGES: [(&str, &str); 4] = [
    ("hour", "Last hour"),
    ("day", "Last day"),
    ("week", "Last week"),
    ("month", "Last month"),
];

/// The session for a cache's page, its summary, or the page that says why not.
async fn open(
    state: &Arc<AdminState>,
    headers: &HeaderMap,
    raw_id: &str,
) -> Result<(Access, Value), Response> {
    let Some(id) = cache_id(raw_id) else {
        return Err(layout::message(
            StatusCode::NOT_FOUND,
            "No such cache",
            "There is no cache with this id.",
            None,
        ));
    };
    let Some(access) = session::for_cache(state, headers, id) else {
        return Err(layout::message(
            StatusCode::UNAUTHORIZED,
            "Not signed in",
            "Open this cache's dashboard through its dashboard link (API v2 rotate_sso), \
             or sign in as the operator.",
            Some(("/dashboard/login", "Operator sign-in")),
        ));
    };
    match data::cache_summary(state, id).await {
        Some(summary) => Ok((access, summary)),
        None => Err(layout::message(
            StatusCode::NOT_FOUND,
            "No such cache",
            "There is no cache with this id.",
            None,
        )),
    }
}

fn u(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// A number the script refreshes from the summary's field `key`.
fn stat(summary: &Value, key: &str, fmt: &str) -> Markup {
    let n = u(summary, key);
    let text = if fmt == "bytes" { bytes(n) } else { int(n) };
    html! { span data-stat=(key) data-fmt=(fmt) data-value=(n) { (text) } }
}

fn shell(access: &Access, summary: &Value, tab: &str, title: &str, main: Markup) -> Response {
    let id = u(summary, "id") as u32;
    let name = s(summary, "name");
    let page = if tab.is_empty() { "overview" } else { tab };
    layout::respond(
        StatusCode::OK,
        layout::page(
            &format!("{title} · {name}"),
            page,
            Some(access),
            Nav::Cache(id, name, tab),
            Some(id),
            main,
        ),
    )
}

fn disabled_note(summary: &Value) -> Markup {
    let enabled = summary.get("enabled").and_then(Value::as_bool) == Some(true);
    html! {
        @if !enabled {
            p.note.bad role="note" {
                "This cache is disabled: its clients cannot authenticate. "
                a href=(format!("/dashboard/caches/{}/settings", u(summary, "id"))) { "Enable it in Settings." }
            }
        }
    }
}

pub(super) async fn overview(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (access, sm) = match open(&state, &headers, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let id = u(&sm, "id");
    let latency = proxy::get_json(&state, &format!("/admin/v1/caches/{id}/latency"))
        .await
        .and_then(|v| v.get("latency").cloned())
        .unwrap_or(Value::Null);
    let hit = sm.get("hit_rate_hour").and_then(Value::as_f64);
    let plan = u(&sm, "limit_maxbytes");
    let used = u(&sm, "bytes");
    let main = html! {
        div.page-head {
            h1 { (s(&sm, "name")) " " span.badge.(if sm["enabled"] == true { "good" } else { "bad" }) data-enabled {
                (if sm["enabled"] == true { "enabled" } else { "disabled" }) } }
            button.danger type="button" id="flush-button" { "Flush cache" }
        }
        (disabled_note(&sm))
        section aria-labelledby="cards-h" {
            h2 id="cards-h" { "Overview" }
            div.cards {
                div.card id="card-memory" {
                    h3 { "Memory" }
                    meter id="memory-meter" min="0" max=(plan.max(1)) value=(used) aria-label="Memory used of the plan" {}
                    p { (stat(&sm, "bytes", "bytes")) " of " (stat(&sm, "limit_maxbytes", "bytes")) }
                    p.small { span data-stat="mem_fraction" data-fmt="pct" { (pct(sm.get("mem_fraction").and_then(Value::as_f64))) } " of the plan" }
                }
                div.card { h3 { "Items" } p.big { (stat(&sm, "curr_items", "int")) } }
                div.card.hit.(hit_class(hit)) id="card-hit-rate" {
                    h3 { "Hit rate" } p.big { span data-stat="hit_rate_hour" data-fmt="pct" { (pct(hit)) } }
                    p.small { "gets in the last hour" }
                }
                div.card {
                    h3 { "Connections" }
                    p.big { (stat(&sm, "curr_connections", "int")) " " span.small { "live" } }
                    p.small { (stat(&sm, "total_connections", "int")) " total" }
                }
                div.card {
                    h3 { "Evictions" }
                    p.big { (stat(&sm, "evictions", "int")) }
                    p.small { (stat(&sm, "new_evictions", "int")) " since the last sample" }
                }
                div.card { h3 { "Set commands" } p.big { (stat(&sm, "cmd_set", "int")) } }
                div.card { h3 { "Flush commands" } p.big { (stat(&sm, "cmd_flush", "int")) } }
            }
        }
        section aria-labelledby="graphs-h" {
            h2 id="graphs-h" { "Graphs" }
            (graph_controls("main"))
            div.chart id="chart-main" role="img" aria-label="Graph of the chosen series over the chosen range" {}
            p.small.muted id="chart-main-note" { "Samples are taken every stats interval; rates need two." }
        }
        div.two {
            section aria-labelledby="commands-h" {
                h2 id="commands-h" { "Commands (all time)" }
                div.scroll { (commands_table(&sm)) }
            }
            section aria-labelledby="latency-h" {
                h2 id="latency-h" { "Server latency per command class" }
                p.small.muted { "Service time on the server, microseconds, from the cores' histograms." }
                div.scroll { (latency_table(&latency)) }
            }
        }
    };
    shell(&access, &sm, "", "Overview", main)
}

fn graph_controls(which: &str) -> Markup {
    html! {
        div.controls data-chart=(which) {
            fieldset.range {
                legend { "Range" }
                @for (i, (value, label)) in RANGES.iter().enumerate() {
                    label {
                        input type="radio" name=(format!("range-{which}")) value=(value) checked[i == 0];
                        " " (label)
                    }
                }
            }
            label {
                "First series "
                select id=(format!("series-a-{which}")) {
                    @for (name, label, _) in SERIES {
                        option value=(name) selected[name == "bytes"] { (label) }
                    }
                }
            }
            label {
                "Second series "
                select id=(format!("series-b-{which}")) {
                    option value="" { "None" }
                    @for (name, label, _) in SERIES {
                        option value=(name) selected[name == "hit_rate"] { (label) }
                    }
                }
            }
        }
    }
}

fn commands_table(sm: &Value) -> Markup {
    // (command, total, hits, misses, other)
    let cell = |k: &str| html! { td.num { (stat(sm, k, "int")) } };
    let sum = |keys: &str| {
        let n: u64 = keys.split(',').map(|k| u(sm, k)).sum();
        html! { td.num { span data-sum=(keys) data-value=(n) { (int(n)) } } }
    };
    let none = html! { td.num.muted { "—" } };
    html! {
        table.data id="commands" {
            caption.vh { "All-time command counts" }
            thead { tr { th scope="col" { "Command" } th.num scope="col" { "Total" } th.num scope="col" { "Hits" } th.num scope="col" { "Misses" } th.num scope="col" { "Bad value" } } }
            tbody {
                tr { th scope="row" { "get" } (cell("cmd_get")) (cell("get_hits")) (cell("get_misses")) (none) }
                tr { th scope="row" { "set" } (cell("cmd_set")) (none) (none) (none) }
                tr { th scope="row" { "delete" } (cell("cmd_delete")) (cell("delete_hits")) (cell("delete_misses")) (none) }
                tr { th scope="row" { "incr" } (sum("incr_hits,incr_misses")) (cell("incr_hits")) (cell("incr_misses")) (none) }
                tr { th scope="row" { "decr" } (sum("decr_hits,decr_misses")) (cell("decr_hits")) (cell("decr_misses")) (none) }
                tr { th scope="row" { "cas" } (sum("cas_hits,cas_misses,cas_badval")) (cell("cas_hits")) (cell("cas_misses")) (cell("cas_badval")) }
                tr { th scope="row" { "touch" } (cell("cmd_touch")) (cell("touch_hits")) (cell("touch_misses")) (none) }
                tr { th scope="row" { "flush" } (cell("cmd_flush")) (none) (none) (none) }
            }
        }
    }
}

/// The latency table (`{class: {count, p50, p90, p99, p999, max}}`, µs).
pub(super) fn latency_table(latency: &Value) -> Markup {
    let rows: Vec<(&String, &Value)> = latency
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    html! {
        table.data.latency {
            caption.vh { "Latency percentiles per command class, microseconds" }
            thead { tr {
                th scope="col" { "Class" } th.num scope="col" { "Requests" }
                th.num scope="col" { "p50" } th.num scope="col" { "p90" } th.num scope="col" { "p99" }
                th.num scope="col" { "p99.9" } th.num scope="col" { "max" }
            } }
            tbody data-latency {
                @if rows.is_empty() {
                    tr { td colspan="7" .muted { "No requests yet." } }
                }
                @for (class, p) in rows {
                    tr {
                        th scope="row" { (class) }
                        td.num { (int(u(p, "count"))) }
                        @for k in ["p50", "p90", "p99", "p999", "max"] { td.num { (int(u(p, k))) } }
                    }
                }
            }
        }
    }
}

fn tops(title: &str, key: &str, list: &Value) -> Markup {
    let items = list.as_array().cloned().unwrap_or_default();
    html! {
        div.card.table-card {
            h3 id=(format!("{key}-h")) { (title) }
            table.data data-tops=(key) aria-labelledby=(format!("{key}-h")) {
                thead { tr { th scope="col" { "Key" } th.num scope="col" { "Popularity" } } }
                tbody {
                    @if items.is_empty() { tr { td colspan="2" .muted { "None yet." } } }
                    @for t in &items {
                        tr { td { code { (s(t, "name")) } } td.num { (int(u(t, "popularity"))) } }
                    }
                }
            }
        }
    }
}

pub(super) async fn introspection(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (access, sm) = match open(&state, &headers, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let id = u(&sm, "id");
    let base = format!("/api/v2/caches/{id}/introspection");
    let popular = proxy::get_json(&state, &format!("{base}/popular_items"))
        .await
        .unwrap_or(Value::Null);
    let recent = proxy::get_json(&state, &format!("{base}/recent_logs"))
        .await
        .unwrap_or(Value::Null);
    let prefixes = proxy::get_json(&state, &format!("{base}/prefixes"))
        .await
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    let log: Vec<Value> = recent
        .as_object()
        .map(|m| {
            m.values()
                .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    let main = html! {
        h1 { "Introspection" }
        section aria-labelledby="popular-h" {
            h2 id="popular-h" { "Popular items" }
            p.small.muted { "From a sample of requests (1 in --introspection-sample)." }
            div.grid4 {
                (tops("Most hit keys", "most_hit_keys", &popular["most_hit_keys"]))
                (tops("Most missed keys", "most_missed_keys", &popular["most_missed_keys"]))
                (tops("Most mutated keys", "most_mutated_keys", &popular["most_mutated_keys"]))
                (tops("Popular prefixes", "popular_prefixes", &popular["popular_prefixes"]))
            }
        }
        section aria-labelledby="lookup-h" {
            h2 id="lookup-h" { "Key lookup" }
            form id="key-form" .inline {
                label for="key-input" { "Key" }
                input id="key-input" name="key" required maxlength="250" autocomplete="off";
                button type="submit" { "Look up" }
            }
            div id="key-result" aria-live="polite" {}
        }
        section aria-labelledby="prefixes-h" {
            h2 id="prefixes-h" { "Watched prefixes" }
            p.small.muted { "Exact hit, miss and mutation counts for keys that start with a prefix (at most 10)." }
            form id="prefix-form" .inline {
                label for="prefix-input" { "Prefix" }
                input id="prefix-input" name="name" required maxlength="250" autocomplete="off" placeholder="user:";
                button type="submit" { "Watch prefix" }
            }
            ul.prefixes id="prefix-list" {
                @if prefixes.is_empty() { li.muted { "No watched prefixes." } }
                @for p in &prefixes {
                    li data-prefix-id=(u(p, "id")) {
                        div.prefix-head {
                            h3 { code { (s(p, "name")) } }
                            button.danger.small type="button" data-unwatch=(u(p, "id")) data-name=(s(p, "name")) {
                                "Remove " span.vh { "prefix " (s(p, "name")) }
                            }
                        }
                        div.chart.small-chart id=(format!("chart-prefix-{}", u(p, "id"))) role="img"
                            aria-label=(format!("Hits and misses per second of prefix {}", s(p, "name"))) {}
                    }
                }
            }
        }
        section aria-labelledby="recent-h" {
            h2 id="recent-h" { "Recent requests" }
            p.small.muted { "Newest first." }
            div.scroll.tall tabindex="0" role="region" aria-label="Recent requests" {
                table.data id="recent" {
                    caption.vh { "The last requests to this cache" }
                    thead { tr { th scope="col" { "Time" } th scope="col" { "Key" } th scope="col" { "Command" } th scope="col" { "Status" } th.num scope="col" { "Size" } } }
                    tbody {
                        @if log.is_empty() { tr { td colspan="5" .muted { "No requests yet." } } }
                        @for e in log.iter().rev() {
                            tr { td { (s(e, "timestamp")) } td { code { (s(e, "key")) } } td { (s(e, "command")) } td { (s(e, "status")) } td.num { (int(u(e, "size"))) } }
                        }
                    }
                }
            }
        }
    };
    shell(&access, &sm, "introspection", "Introspection", main)
}

pub(super) async fn settings(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (access, sm) = match open(&state, &headers, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let id = u(&sm, "id");
    let info = proxy::get_json(&state, &format!("/api/v2/caches/{id}/info"))
        .await
        .unwrap_or(Value::Null);
    let creds = info["credentials"].as_array().cloned().unwrap_or_default();
    let servers: Vec<&str> = info["servers"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let primary = creds.iter().find(|c| c["primary"] == true);
    let env = format!(
        "MEMCACHIER_SERVERS={}\nMEMCACHIER_USERNAME={}\nMEMCACHIER_PASSWORD={}",
        servers.join(","),
        primary.map_or("", |c| s(c, "sasl_username")),
        primary.map_or("", |c| s(c, "sasl_password")),
    );
    let enabled = info["enabled"] == true;
    let main = html! {
        h1 { "Settings" }
        (disabled_note(&sm))
        section aria-labelledby="conn-h" {
            h2 id="conn-h" { "Connection details" }
            dl.facts {
                dt { "Cache ID" } dd { code id="cache-id" { (id) } }
                dt { "Name" } dd { (s(&info, "name")) }
                dt { "Plan" } dd { (bytes(u(&info, "plan"))) }
                dt { "Cluster" } dd { (s(&info, "cluster_name")) }
                dt { "Status" } dd { (if enabled { "enabled" } else { "disabled" }) }
            }
            p { "Your application's configuration (the primary credential):" }
            pre.env id="env-lines" { (env) }
            button type="button" data-copy="env-lines" { "Copy configuration" }
        }
        section aria-labelledby="creds-h" {
            h2 id="creds-h" { "Credentials" }
            div.scroll {
                table.data id="credentials" {
                    caption.vh { "Credentials of this cache" }
                    thead { tr {
                        th scope="col" { "Username" } th scope="col" { "Password" }
                        th scope="col" { "Write" } th scope="col" { "Flush" } th scope="col" { "API" }
                        th scope="col" { "Primary" } th scope="col" { "Actions" }
                    } }
                    tbody {
                        @for c in &creds {
                            @let user = s(c, "sasl_username");
                            tr data-username=(user) {
                                td { code.username { (user) } }
                                td { code.password { (s(c, "sasl_password")) } }
                                @for (cap, label) in [("write_capability", "write"), ("flush_capability", "flush"), ("api_capability", "API")] {
                                    td {
                                        input type="checkbox" data-cap=(cap) checked[c[cap] == true]
                                            aria-label=(format!("{label} capability of {user}"));
                                    }
                                }
                                td { @if c["primary"] == true { span.badge.good { "primary" } } }
                                td.actions {
                                    @if c["primary"] != true {
                                        button type="button" data-promote=(user) { "Make primary" span.vh { " " (user) } }
                                        " "
                                        button.danger type="button" data-delete-cred=(user) { "Delete" span.vh { " " (user) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            button type="button" id="add-credential" { "Add credential" }
            p.small.muted { "A new credential has every capability; untick what it should not do. Deleting a credential closes its connections." }
        }
        section aria-labelledby="sso-h" {
            h2 id="sso-h" { "Dashboard link" }
            p { "Anyone with the dashboard link can open this dashboard. Rotating makes a new link and stops every earlier one (and their open sessions)." }
            button type="button" id="rotate-sso" { "Rotate dashboard link" }
            p id="sso-link" aria-live="polite" {}
        }
        section aria-labelledby="state-h" {
            h2 id="state-h" { "Cache status" }
            @if enabled {
                p { "The cache is enabled." }
            } @else {
                p { "The cache is disabled: clients cannot authenticate." }
                button type="button" id="enable-cache" { "Enable cache" }
            }
        }
    };
    shell(&access, &sm, "settings", "Settings", main)
}

fn config_target(c: &Value) -> String {
    match s(c, "delivery_type") {
        "email" => s(c, "email").to_string(),
        "slack" if !s(c, "slack_channel").is_empty() => {
            format!("{} ({})", s(c, "slack_url"), s(c, "slack_channel"))
        }
        _ => s(c, "slack_url").to_string(),
    }
}

pub(super) async fn alerts(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (access, sm) = match open(&state, &headers, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let id = u(&sm, "id");
    let list = |v: Option<Value>| v.and_then(|v| v.as_array().cloned()).unwrap_or_default();
    let alerts = list(proxy::get_json(&state, &format!("/api/v2/caches/{id}/alerts")).await);
    let configs =
        list(proxy::get_json(&state, &format!("/api/v2/caches/{id}/alerts/configs")).await);
    let main = html! {
        h1 { "Alerts" }
        p.small.muted { "Alerts are checked after every stats sample and sent once when their condition starts to hold." }
        section aria-labelledby="alerts-h" {
            h2 id="alerts-h" { "Alerts" }
            div.scroll {
                table.data id="alerts" {
                    caption.vh { "Alerts of this cache" }
                    thead { tr {
                        th scope="col" { "Type" } th.num scope="col" { "Threshold" } th scope="col" { "Delivery" }
                        th scope="col" { "Description" } th scope="col" { "Enabled" } th scope="col" { "State" } th scope="col" { "Actions" }
                    } }
                    tbody {
                        @if alerts.is_empty() { tr { td colspan="7" .muted { "No alerts." } } }
                        @for a in &alerts {
                            @let aid = u(a, "id");
                            tr data-alert-id=(aid) data-alert=(a.to_string()) {
                                td { (match s(a, "trigger_type") { "hit_rate" => "hit rate below", "memory_usage" => "memory usage above", t => t }) }
                                td.num { (u(a, "trigger_threshold")) "%" }
                                td {
                                    @let cid = u(a, "delivery_config_id");
                                    @match configs.iter().find(|c| u(c, "id") == cid) {
                                        Some(c) => { (s(c, "delivery_type")) " " code { (config_target(c)) } }
                                        None => { "config " (cid) }
                                    }
                                }
                                td { (s(a, "description")) }
                                td { (if a["enabled"] == true { "yes" } else { "no" }) }
                                td data-alert-state {
                                    @if a["triggered"] == true { span.badge.bad { "firing" } } @else { span.badge.good { "ok" } }
                                    @if let Some(t) = a["last_triggered"].as_str() { br; span.small.muted { "last " (t) } }
                                }
                                td.actions {
                                    button type="button" data-edit-alert=(aid) { "Edit" span.vh { " alert " (aid) } }
                                    " "
                                    button.danger type="button" data-delete-alert=(aid) { "Delete" span.vh { " alert " (aid) } }
                                }
                            }
                        }
                    }
                }
            }
            form id="alert-form" .stack aria-labelledby="alert-form-h" {
                h3 id="alert-form-h" { "New alert" }
                input type="hidden" id="alert-id" value="";
                div.row {
                    label { "Type " select id="alert-type" required {
                        option value="hit_rate" { "Hit rate below" }
                        option value="memory_usage" { "Memory usage above" }
                    } }
                    label { "Threshold (%) " input id="alert-threshold" type="number" min="0" max="100" value="80" required; }
                    label { "Delivery " select id="alert-config" required {
                        @if configs.is_empty() { option value="" { "Add a delivery config first" } }
                        @for c in &configs {
                            option value=(u(c, "id")) { (u(c, "id")) ": " (s(c, "delivery_type")) " " (config_target(c)) }
                        }
                    } }
                }
                div.row {
                    label.grow { "Description " input id="alert-description" maxlength="200"; }
                    label.check { input id="alert-enabled" type="checkbox" checked; " Enabled" }
                }
                div.row {
                    button type="submit" id="alert-submit" { "Create alert" }
                    button type="button" id="alert-cancel" hidden { "Cancel editing" }
                }
            }
        }
        section aria-labelledby="configs-h" {
            h2 id="configs-h" { "Delivery configs" }
            div.scroll {
                table.data id="configs" {
                    caption.vh { "Where alerts are sent" }
                    thead { tr { th scope="col" { "ID" } th scope="col" { "Type" } th scope="col" { "Target" } th scope="col" { "Actions" } } }
                    tbody {
                        @if configs.is_empty() { tr { td colspan="4" .muted { "No delivery configs." } } }
                        @for c in &configs {
                            tr data-config-id=(u(c, "id")) {
                                td { (u(c, "id")) } td { (s(c, "delivery_type")) } td { code { (config_target(c)) } }
                                td.actions { button.danger type="button" data-delete-config=(u(c, "id")) { "Delete" span.vh { " config " (u(c, "id")) } } }
                            }
                        }
                    }
                }
            }
            form id="config-form" .stack aria-labelledby="config-form-h" {
                h3 id="config-form-h" { "New delivery config" }
                div.row {
                    label { "Type " select id="config-type" {
                        option value="webhook" { "Webhook (JSON POST)" }
                        option value="slack" { "Slack" }
                        option value="email" { "Email" }
                    } }
                    label.grow data-for="webhook slack" { "URL " input id="config-url" type="url" placeholder="https://hooks.example.com/…"; }
                    label data-for="slack" hidden { "Channel " input id="config-channel" placeholder="#ops"; }
                    label.grow data-for="email" hidden { "Email " input id="config-email" type="email"; }
                }
                button type="submit" { "Add delivery config" }
            }
        }
    };
    shell(&access, &sm, "alerts", "Alerts", main)
}
