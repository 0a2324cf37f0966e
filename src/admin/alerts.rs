//! MemCachier API v2 alerts (reference 001, "Alerts"): the routes under
//! `/api/v2/caches/:id/alerts`, their evaluation after every stats sample,
//! and their delivery by Slack, webhook or email.
//!
//! | route | success |
//! | --- | --- |
//! | `GET alerts` | 200 list of alerts |
//! | `POST alerts {trigger_type, trigger_threshold, delivery_config_id, description?, enabled?}` | 201 the alert |
//! | `GET alerts/:alert_id` | 200 the alert |
//! | `PUT alerts/:alert_id {id?, ...}` | 201 the alert (omitted fields keep their value) |
//! | `DELETE alerts/:alert_id` | 201 |
//! | `GET alerts/configs` | 200 list of delivery configs |
//! | `POST alerts/configs {delivery_type, email?, slack_url?, slack_channel?}` | 201 the config |
//! | `DELETE alerts/configs/:config_id` | 204 |
//!
//! The 201s of PUT and DELETE are MemCachier's. Errors: as in `api_v2.rs`
//! (400 a cache id that is not a number, 401, 403, 404 no such cache), plus
//! 400 for an alert or config id that is not a number, a bad body, a value
//! the store refuses (threshold above 100, a delivery config of another
//! cache, a cache's 21st alert, removing a config an alert uses), and 404
//! for an unknown alert or config. Alerts and configs live in the control
//! store (`tenancy::ControlStore`).
//!
//! # Evaluation
//! [`after_sample`] runs at the end of each sampling round of the stats
//! history (`--stats-interval`). For every cache with alerts it takes the
//! cache's counters and hands each alert to [`evaluate`], a pure function
//! of the previous and current samples, the plan, the alert and whether it
//! is firing:
//! - `hit_rate` holds when, between the two samples, the cache served at
//!   least one get and `get_hits * 100 / cmd_get < threshold`; without a
//!   get the hit rate is unknown and the alert keeps its state (an idle
//!   cache neither fires nor recovers);
//! - `memory_usage` holds when `bytes * 100 / plan > threshold`.
//!
//! Alerts are edge-triggered: delivered once when their condition becomes
//! true, re-armed when it becomes false. A disabled alert never fires (and
//! is re-armed). Which alerts are firing is kept in memory (a restart
//! re-arms them all), in the admin state, and shown as `triggered` and
//! `last_triggered` in the alert JSON.
//!
//! # Delivery
//! Off the admin thread, by a few `shoal-alert` worker threads fed through
//! a bounded queue (an alert storm drops, and logs, what does not fit),
//! each attempt bounded by [`DELIVERY_TIMEOUT`]; failures are logged:
//! - `slack`: `POST slack_url` `{"text", "channel", "username": "shoal"}`
//!   (no `channel` when the config has none);
//! - `webhook`: `POST slack_url` `{"alert_id", "cache_id", "cache_name",
//!   "trigger_type", "trigger_threshold", "value", "description", "time"}`;
//! - `email`: through the `--smtp-relay` (plain SMTP, from `--smtp-from`);
//!   without a relay the alert is only logged.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::api_v2::authorize;
use super::body::{parse_json, ApiError};
use super::history::{iso8601, FIELDS};
use super::routes::{lock, mutate};
use super::AdminState;
use crate::tenancy::{
    Alert, AlertPatch, Cache, ControlError, DeliveryConfig, DeliveryType, NewAlert,
    NewDeliveryConfig, TriggerType,
};

type Shared = State<Arc<AdminState>>;
type ApiResult = Result<Response, ApiError>;

/// How long one delivery attempt (HTTP request or SMTP session) may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Deliveries waiting for a worker; more are dropped (and logged).
const QUEUE_LEN: usize = 256;
/// Worker threads delivering alerts.
const WORKERS: usize = 4;

pub(crate) fn router() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/caches/{id}/alerts", get(list_alerts).post(create_alert))
        .route(
            "/caches/{id}/alerts/configs",
            get(list_configs).post(create_config),
        )
        .route(
            "/caches/{id}/alerts/configs/{config_id}",
            delete(delete_config),
        )
        .route(
            "/caches/{id}/alerts/{alert_id}",
            get(get_alert).put(update_alert).delete(delete_alert),
        )
}

// ---------------------------------------------------------------- routes

fn alert_id(raw: &str) -> Result<u64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::invalid("The specified alert ID is invalid (not a number)."))
}

fn config_id(raw: &str) -> Result<u64, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::invalid("The specified alert delivery config ID is invalid (not a number).")
    })
}

/// A store refusal as the API answers it: MemCachier documents 400 for
/// every alert change that "could not be" made, so conflicts are 400 too.
fn refused(e: ControlError, not_found: &str) -> ApiError {
    match e {
        ControlError::NotFound => ApiError::not_found(not_found),
        ControlError::Conflict(m) | ControlError::Invalid(m) => ApiError::invalid(m),
        e @ ControlError::Io(_) => e.into(),
    }
}

const ALERT_NOT_FOUND: &str = "Alert not found.";
const CONFIG_NOT_FOUND: &str = "Alert delivery config not found.";

/// An alert as the API shows it, with its firing state.
fn alert_json(a: &Alert, status: Option<&Runtime>) -> Value {
    json!({
        "id": a.id,
        "trigger_type": a.trigger_type.as_str(),
        "trigger_threshold": a.trigger_threshold,
        "delivery_config_id": a.delivery_config_id,
        "description": a.description,
        "enabled": a.enabled,
        "triggered": status.is_some_and(|s| s.firing),
        "last_triggered": status.and_then(|s| s.last_triggered).map(iso8601),
    })
}

fn config_json(d: &DeliveryConfig) -> Value {
    json!({
        "id": d.id,
        "delivery_type": d.delivery_type.as_str(),
        "email": d.email,
        "slack_url": d.slack_url,
        "slack_channel": d.slack_channel,
    })
}

/// The firing state of `alerts`, from `state`'s alert engine.
fn alerts_json(state: &AdminState, alerts: &[Alert]) -> Vec<Value> {
    let engine = state.alerts.lock().unwrap_or_else(|e| e.into_inner());
    alerts
        .iter()
        .map(|a| alert_json(a, engine.alerts.get(&a.id)))
        .collect()
}

fn one_alert(state: &AdminState, alert: &Alert) -> Value {
    alerts_json(state, std::slice::from_ref(alert))
        .pop()
        .unwrap_or(Value::Null)
}

async fn list_alerts(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let alerts = lock(&state).alerts(cache.id);
    Ok(Json(alerts_json(&state, &alerts)).into_response())
}

/// `POST alerts`: every field may be given; `id` (as in the PUT body) is
/// ignored. A null reads as absent.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AlertBody {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    trigger_type: Option<String>,
    #[serde(default)]
    trigger_threshold: Option<u64>,
    #[serde(default)]
    delivery_config_id: Option<u64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
}

fn trigger_type(raw: &str) -> Result<TriggerType, ApiError> {
    TriggerType::parse(raw).ok_or_else(|| {
        ApiError::invalid(format!(
            "Unknown trigger type {raw:?}: use \"hit_rate\" or \"memory_usage\"."
        ))
    })
}

fn threshold(raw: u64) -> Result<u8, ApiError> {
    u8::try_from(raw)
        .ok()
        .filter(|t| *t <= 100)
        .ok_or_else(|| ApiError::invalid("The trigger threshold is a percentage, 0 to 100."))
}

async fn create_alert(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let req: AlertBody = parse_json(&body)?;
    let kind = req
        .trigger_type
        .as_deref()
        .ok_or_else(|| ApiError::invalid("An alert requires a type."))
        .and_then(trigger_type)?;
    let threshold = req
        .trigger_threshold
        .ok_or_else(|| ApiError::invalid("An alert requires a trigger threshold."))
        .and_then(threshold)?;
    let config = req
        .delivery_config_id
        .ok_or_else(|| ApiError::invalid("An alert requires a delivery config."))?;
    let new = NewAlert {
        trigger_type: kind,
        trigger_threshold: threshold,
        delivery_config_id: config,
        description: req.description.unwrap_or_default(),
        enabled: req.enabled.unwrap_or(true),
    };
    let alert = mutate(&state, |s| Ok(s.add_alert(cache.id, new)))?
        .map_err(|e| refused(e, "Cache not found."))?;
    Ok((StatusCode::CREATED, Json(one_alert(&state, &alert))).into_response())
}

async fn get_alert(
    State(state): Shared,
    headers: HeaderMap,
    Path((id, alert)): Path<(String, String)>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let alert_id = alert_id(&alert)?;
    let alert = lock(&state)
        .alert(cache.id, alert_id)
        .ok_or_else(|| ApiError::not_found(ALERT_NOT_FOUND))?;
    Ok(Json(one_alert(&state, &alert)).into_response())
}

async fn update_alert(
    State(state): Shared,
    headers: HeaderMap,
    Path((id, alert)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let alert_id = alert_id(&alert)?;
    let req: AlertBody = parse_json(&body)?;
    if req.id.is_some_and(|b| b != alert_id) {
        return Err(ApiError::invalid(
            "The alert ID in the body does not match the one in the URL.",
        ));
    }
    let patch = AlertPatch {
        trigger_type: req.trigger_type.as_deref().map(trigger_type).transpose()?,
        trigger_threshold: req.trigger_threshold.map(threshold).transpose()?,
        delivery_config_id: req.delivery_config_id,
        description: req.description,
        enabled: req.enabled,
    };
    let alert = mutate(&state, |s| Ok(s.update_alert(cache.id, alert_id, patch)))?
        .map_err(|e| refused(e, ALERT_NOT_FOUND))?;
    Ok((StatusCode::CREATED, Json(one_alert(&state, &alert))).into_response())
}

async fn delete_alert(
    State(state): Shared,
    headers: HeaderMap,
    Path((id, alert)): Path<(String, String)>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let alert_id = alert_id(&alert)?;
    mutate(&state, |s| Ok(s.remove_alert(cache.id, alert_id)))?
        .map_err(|e| refused(e, ALERT_NOT_FOUND))?;
    Ok(StatusCode::CREATED.into_response())
}

async fn list_configs(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let configs = lock(&state).delivery_configs(cache.id);
    Ok(Json(configs.iter().map(config_json).collect::<Vec<_>>()).into_response())
}

/// `POST alerts/configs`: fields the type does not need may be omitted
/// (they come back as ""). A null reads as absent.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfigBody {
    #[serde(default)]
    delivery_type: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    slack_url: Option<String>,
    #[serde(default)]
    slack_channel: Option<String>,
}

async fn create_config(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let req: ConfigBody = parse_json(&body)?;
    let raw = req
        .delivery_type
        .ok_or_else(|| ApiError::invalid("An alert delivery config requires a type."))?;
    let kind = DeliveryType::parse(&raw).ok_or_else(|| {
        ApiError::invalid(format!(
            "Unknown delivery type {raw:?}: use \"email\", \"slack\" or \"webhook\"."
        ))
    })?;
    let new = NewDeliveryConfig {
        delivery_type: kind,
        email: req.email.unwrap_or_default(),
        slack_url: req.slack_url.unwrap_or_default(),
        slack_channel: req.slack_channel.unwrap_or_default(),
    };
    let config = mutate(&state, |s| Ok(s.add_delivery_config(cache.id, new)))?
        .map_err(|e| refused(e, "Cache not found."))?;
    Ok((StatusCode::CREATED, Json(config_json(&config))).into_response())
}

async fn delete_config(
    State(state): Shared,
    headers: HeaderMap,
    Path((id, config)): Path<(String, String)>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let config_id = config_id(&config)?;
    mutate(
        &state,
        |s| Ok(s.remove_delivery_config(cache.id, config_id)),
    )?
    .map_err(|e| refused(e, CONFIG_NOT_FOUND))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ------------------------------------------------------------ evaluation

fn field(name: &str) -> usize {
    FIELDS
        .iter()
        .position(|f| *f == name)
        .expect("a sampled field")
}

/// What [`evaluate`] decided for one alert.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Verdict {
    /// The watched value in percent (hit rate or memory usage); `None` when
    /// it is unknown (no get in the interval, no previous sample).
    pub value: Option<f64>,
    /// Is the alert firing after this sample?
    pub firing: bool,
    /// Deliver now: the condition just became true.
    pub deliver: bool,
}

/// The increase of counter `i` from `prev` to `cur`; a counter that went
/// down was reset (`reset_stats`), so its new value is what happened since.
fn delta(prev: &[u64], cur: &[u64], i: usize) -> u64 {
    let (a, b) = (
        prev.get(i).copied().unwrap_or(0),
        cur.get(i).copied().unwrap_or(0),
    );
    if b >= a {
        b - a
    } else {
        b
    }
}

/// Evaluates `alert` on the samples (`history::sample` order) taken before
/// (`prev`, none for a cache's first sample) and at the end of the last
/// interval (`cur`), for a cache with a `plan`-byte memory limit.
pub(crate) fn evaluate(
    prev: Option<&[u64]>,
    cur: &[u64],
    plan: u64,
    alert: &Alert,
    was_firing: bool,
) -> Verdict {
    let threshold = u128::from(alert.trigger_threshold);
    let (value, condition) = match alert.trigger_type {
        TriggerType::HitRate => match prev {
            Some(prev) => {
                let gets = delta(prev, cur, field("cmd_get"));
                let hits = delta(prev, cur, field("get_hits")).min(gets);
                if gets == 0 {
                    (None, None)
                } else {
                    let value = hits as f64 * 100.0 / gets as f64;
                    (
                        Some(value),
                        Some(u128::from(hits) * 100 < threshold * u128::from(gets)),
                    )
                }
            }
            None => (None, None),
        },
        TriggerType::MemoryUsage => {
            let bytes = cur.get(field("bytes")).copied().unwrap_or(0);
            if plan == 0 {
                (None, None)
            } else {
                let value = bytes as f64 * 100.0 / plan as f64;
                (
                    Some(value),
                    Some(u128::from(bytes) * 100 > threshold * u128::from(plan)),
                )
            }
        }
    };
    if !alert.enabled {
        return Verdict {
            value,
            firing: false,
            deliver: false,
        };
    }
    let firing = condition.unwrap_or(was_firing);
    Verdict {
        value,
        firing,
        deliver: firing && !was_firing,
    }
}

/// One alert's firing state.
#[derive(Clone, Debug, Default)]
struct Runtime {
    firing: bool,
    /// Unix seconds of the last delivery.
    last_triggered: Option<u64>,
    /// The trigger this state was computed for: a changed trigger re-arms.
    trigger: Option<(TriggerType, u8)>,
}

/// The evaluation state of one admin endpoint's alerts (`AdminState`).
#[derive(Default)]
pub(crate) struct Engine {
    /// Each cache's previous sample.
    prev: HashMap<u32, Vec<u64>>,
    alerts: HashMap<u64, Runtime>,
}

/// A sampled cache, its sample, and its alerts with their delivery configs.
type CacheAlerts<'a> = (
    &'a Cache,
    &'a Vec<u64>,
    Vec<(Alert, Option<DeliveryConfig>)>,
);

/// Evaluates every alert after a sampling round (`now`: its unix time;
/// `sampled`: each cache and its sample, in `history::FIELDS` order) and
/// queues the deliveries of those that just fired.
pub(crate) fn after_sample(state: &AdminState, sampled: &[(Cache, Vec<u64>)], now: u64) {
    // What to evaluate, under the store lock only as long as it takes to copy.
    let work: Vec<CacheAlerts<'_>> = {
        let store = lock(state);
        sampled
            .iter()
            .filter_map(|(c, cur)| {
                let alerts = store.alerts(c.id);
                if alerts.is_empty() {
                    return None;
                }
                let alerts = alerts
                    .into_iter()
                    .map(|a| {
                        let config = store.delivery_config(c.id, a.delivery_config_id);
                        (a, config)
                    })
                    .collect();
                Some((c, cur, alerts))
            })
            .collect()
    };
    let mut guard = state.alerts.lock().unwrap_or_else(|e| e.into_inner());
    let engine = &mut *guard;
    let mut jobs = Vec::new();
    for (cache, cur, alerts) in &work {
        let prev = engine.prev.get(&cache.id).map(Vec::as_slice);
        for (alert, config) in alerts {
            let rt = engine.alerts.entry(alert.id).or_default();
            let trigger = (alert.trigger_type, alert.trigger_threshold);
            if rt.trigger != Some(trigger) {
                rt.firing = false;
                rt.trigger = Some(trigger);
            }
            let verdict = evaluate(prev, cur, cache.memory_limit, alert, rt.firing);
            rt.firing = verdict.firing;
            if verdict.deliver {
                rt.last_triggered = Some(now);
                let Some(config) = config.clone() else {
                    tracing::error!(alert = alert.id, "alert fired without a delivery config");
                    continue;
                };
                tracing::info!(
                    cache = cache.id,
                    alert = alert.id,
                    trigger = alert.trigger_type.as_str(),
                    value = verdict.value.unwrap_or(0.0),
                    "alert fired"
                );
                jobs.push(Job {
                    event: Event {
                        alert: alert.clone(),
                        cache_name: cache.name.clone(),
                        value: verdict.value.unwrap_or(0.0),
                        time: now,
                    },
                    config,
                    smtp_relay: state.smtp_relay.clone(),
                    smtp_from: state.smtp_from.clone(),
                });
            }
        }
        engine.prev.insert(cache.id, cur.to_vec());
    }
    // Forget caches and alerts that are gone.
    engine
        .prev
        .retain(|id, _| work.iter().any(|(c, _, _)| c.id == *id));
    engine.alerts.retain(|id, _| {
        work.iter()
            .any(|(_, _, alerts)| alerts.iter().any(|(a, _)| a.id == *id))
    });
    drop(guard);
    for job in jobs {
        queue(job);
    }
}

// -------------------------------------------------------------- delivery

/// A fired alert.
#[derive(Clone, Debug)]
struct Event {
    alert: Alert,
    cache_name: String,
    /// Percent: the hit rate or the memory usage that fired it.
    value: f64,
    /// Unix seconds.
    time: u64,
}

impl Event {
    /// The value rounded to two decimals.
    fn rounded(&self) -> f64 {
        (self.value * 100.0).round() / 100.0
    }

    /// "hit rate 12.5% is below the 50% threshold"
    fn condition(&self) -> String {
        let (what, relation) = match self.alert.trigger_type {
            TriggerType::HitRate => ("hit rate", "below"),
            TriggerType::MemoryUsage => ("memory usage", "above"),
        };
        format!(
            "{what} {}% is {relation} the {}% threshold",
            self.rounded(),
            self.alert.trigger_threshold
        )
    }

    fn summary(&self) -> String {
        let mut s = format!(
            "Cache {} (id {}): {}",
            self.cache_name,
            self.alert.cache_id,
            self.condition()
        );
        if !self.alert.description.is_empty() {
            s.push_str(". ");
            s.push_str(&self.alert.description);
        }
        s
    }
}

fn slack_body(event: &Event, channel: &str) -> Value {
    let mut body = json!({
        "text": format!("shoal alert: {}", event.summary()),
        "username": "shoal",
    });
    if !channel.is_empty() {
        body["channel"] = json!(channel);
    }
    body
}

fn webhook_body(event: &Event) -> Value {
    json!({
        "alert_id": event.alert.id,
        "cache_id": event.alert.cache_id,
        "cache_name": event.cache_name,
        "trigger_type": event.alert.trigger_type.as_str(),
        "trigger_threshold": event.alert.trigger_threshold,
        "value": event.rounded(),
        "description": event.alert.description,
        "time": iso8601(event.time),
    })
}

fn email_subject(event: &Event) -> String {
    let what = match event.alert.trigger_type {
        TriggerType::HitRate => "hit rate",
        TriggerType::MemoryUsage => "memory usage",
    };
    format!("[shoal] Cache {}: {what} alert", event.cache_name)
}

fn email_text(event: &Event) -> String {
    format!(
        "{}.\n\nAlert {} ({}, threshold {}%) fired at {}.\nValue: {}%\n",
        event.summary(),
        event.alert.id,
        event.alert.trigger_type.as_str(),
        event.alert.trigger_threshold,
        iso8601(event.time),
        event.rounded()
    )
}

/// One delivery to make.
struct Job {
    event: Event,
    config: DeliveryConfig,
    smtp_relay: Option<String>,
    smtp_from: String,
}

/// Hands `job` to the delivery workers, started on first use.
fn queue(job: Job) {
    static QUEUE: OnceLock<Option<SyncSender<Job>>> = OnceLock::new();
    let sender = QUEUE.get_or_init(|| {
        let (tx, rx) = sync_channel::<Job>(QUEUE_LEN);
        let rx = Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..WORKERS {
            let rx = Arc::clone(&rx);
            match std::thread::Builder::new()
                .name(format!("shoal-alert-{i}"))
                .spawn(move || work(&rx))
            {
                Ok(_) => started += 1,
                Err(e) => tracing::error!("alerts: starting a delivery thread: {e}"),
            }
        }
        (started > 0).then_some(tx)
    });
    let Some(sender) = sender else {
        tracing::error!(
            alert = job.event.alert.id,
            "alerts: no delivery thread; alert not delivered"
        );
        return;
    };
    match sender.try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => tracing::error!(
            alert = job.event.alert.id,
            "alerts: delivery queue full; alert not delivered"
        ),
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        deliver(&job);
    }
}

fn deliver(job: &Job) {
    let c = &job.config;
    let result = match c.delivery_type {
        DeliveryType::Slack => post_json(&c.slack_url, &slack_body(&job.event, &c.slack_channel)),
        DeliveryType::Webhook => post_json(&c.slack_url, &webhook_body(&job.event)),
        DeliveryType::Email => match &job.smtp_relay {
            Some(relay) => send_email(relay, &job.smtp_from, &c.email, &job.event),
            None => {
                tracing::warn!(
                    alert = job.event.alert.id,
                    "alerts: email alerts are not configured (no --smtp-relay); {} not emailed to {}",
                    job.event.summary(),
                    c.email
                );
                return;
            }
        },
    };
    match result {
        Ok(()) => tracing::info!(
            alert = job.event.alert.id,
            config = c.id,
            kind = c.delivery_type.as_str(),
            "alert delivered"
        ),
        Err(e) => tracing::error!(
            alert = job.event.alert.id,
            config = c.id,
            kind = c.delivery_type.as_str(),
            "alert delivery failed: {e}"
        ),
    }
}

/// `POST url` with a JSON body; a non-2xx answer is an error.
fn post_json(url: &str, body: &Value) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(DELIVERY_TIMEOUT))
        .max_redirects(0)
        .http_status_as_error(true)
        .user_agent(concat!("shoal/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.to_string().as_bytes())
        .map(drop)
        .map_err(|e| format!("POST {url}: {e}"))
}

/// `host:port` (or `[v6]:port`; no port: 25) of the SMTP relay.
fn relay_addr(relay: &str) -> Result<(String, u16), String> {
    let bad = || format!("bad --smtp-relay {relay:?}: use HOST:PORT");
    let (host, port) = match relay.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') => (h, p.parse::<u16>().map_err(|_| bad())?),
        _ => (relay, 25),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

fn email_message(from: &str, to: &str, event: &Event) -> Result<lettre::Message, String> {
    use lettre::message::{header::ContentType, Mailbox};
    let from: Mailbox = from
        .parse()
        .map_err(|e| format!("bad --smtp-from {from:?}: {e}"))?;
    let to: Mailbox = to
        .parse()
        .map_err(|e| format!("bad recipient {to:?}: {e}"))?;
    lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(email_subject(event))
        .header(ContentType::TEXT_PLAIN)
        .body(email_text(event))
        .map_err(|e| format!("building the email: {e}"))
}

/// One plain SMTP session with the relay.
fn send_email(relay: &str, from: &str, to: &str, event: &Event) -> Result<(), String> {
    use lettre::Transport;
    let message = email_message(from, to, event)?;
    let (host, port) = relay_addr(relay)?;
    let mailer = lettre::SmtpTransport::builder_dangerous(host)
        .port(port)
        .timeout(Some(DELIVERY_TIMEOUT))
        .build();
    mailer
        .send(&message)
        .map(drop)
        .map_err(|e| format!("SMTP via {relay}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(kind: TriggerType, threshold: u8, enabled: bool) -> Alert {
        Alert {
            id: 7,
            cache_id: 3,
            trigger_type: kind,
            trigger_threshold: threshold,
            delivery_config_id: 1,
            description: "watch it".into(),
            enabled,
        }
    }

    fn gets(total: u64, hits: u64) -> Vec<u64> {
        let mut v = vec![0; FIELDS.len()];
        v[field("cmd_get")] = total;
        v[field("get_hits")] = hits;
        v[field("get_misses")] = total - hits;
        v
    }

    fn bytes(n: u64) -> Vec<u64> {
        let mut v = vec![0; FIELDS.len()];
        v[field("bytes")] = n;
        v
    }

    #[test]
    fn hit_rate_fires_below_threshold_once() {
        let a = alert(TriggerType::HitRate, 50, true);
        // No previous sample: unknown, nothing changes.
        let v = evaluate(None, &gets(10, 0), 100, &a, false);
        assert_eq!((v.value, v.firing, v.deliver), (None, false, false));
        // 1 of 4 gets hit in the interval: 25% < 50%.
        let v = evaluate(Some(&gets(10, 5)), &gets(14, 6), 100, &a, false);
        assert_eq!((v.value, v.firing, v.deliver), (Some(25.0), true, true));
        // Still low: firing, but no second delivery.
        let v = evaluate(Some(&gets(14, 6)), &gets(20, 6), 100, &a, true);
        assert_eq!((v.firing, v.deliver), (true, false));
        // No gets: unknown, the state holds either way.
        let v = evaluate(Some(&gets(20, 6)), &gets(20, 6), 100, &a, true);
        assert_eq!((v.value, v.firing, v.deliver), (None, true, false));
        let v = evaluate(Some(&gets(20, 6)), &gets(20, 6), 100, &a, false);
        assert_eq!((v.firing, v.deliver), (false, false));
        // Exactly at the threshold is not below it: recovered.
        let v = evaluate(Some(&gets(20, 6)), &gets(30, 11), 100, &a, true);
        assert_eq!((v.value, v.firing, v.deliver), (Some(50.0), false, false));
        // Low again after recovering: delivered again.
        let v = evaluate(Some(&gets(30, 11)), &gets(31, 11), 100, &a, false);
        assert_eq!((v.value, v.firing, v.deliver), (Some(0.0), true, true));
        // Threshold 0 never fires; 100 fires on any miss.
        let zero = alert(TriggerType::HitRate, 0, true);
        assert!(!evaluate(Some(&gets(0, 0)), &gets(5, 0), 1, &zero, false).firing);
        let all = alert(TriggerType::HitRate, 100, true);
        assert!(evaluate(Some(&gets(0, 0)), &gets(5, 4), 1, &all, false).deliver);
        assert!(!evaluate(Some(&gets(0, 0)), &gets(5, 5), 1, &all, false).firing);
    }

    #[test]
    fn hit_rate_after_a_counter_reset() {
        let a = alert(TriggerType::HitRate, 50, true);
        // reset_stats between the samples: the new counters are the interval.
        let v = evaluate(Some(&gets(1000, 900)), &gets(4, 1), 100, &a, false);
        assert_eq!((v.value, v.deliver), (Some(25.0), true));
        // Hits can never count for more than the gets.
        let v = evaluate(Some(&gets(10, 0)), &gets(11, 1), 100, &a, false);
        assert_eq!(v.value, Some(100.0));
    }

    #[test]
    fn memory_usage_fires_above_threshold() {
        let a = alert(TriggerType::MemoryUsage, 80, true);
        let plan = 1000;
        let v = evaluate(None, &bytes(800), plan, &a, false);
        assert_eq!(
            (v.value, v.firing),
            (Some(80.0), false),
            "80% is not above 80%"
        );
        let v = evaluate(None, &bytes(801), plan, &a, false);
        assert_eq!((v.firing, v.deliver), (true, true));
        let v = evaluate(Some(&bytes(801)), &bytes(900), plan, &a, true);
        assert_eq!((v.firing, v.deliver), (true, false));
        let v = evaluate(Some(&bytes(900)), &bytes(10), plan, &a, true);
        assert_eq!((v.value, v.firing, v.deliver), (Some(1.0), false, false));
        // Huge numbers do not overflow.
        let v = evaluate(
            None,
            &bytes(u64::MAX),
            u64::MAX,
            &alert(TriggerType::MemoryUsage, 100, true),
            false,
        );
        assert!(!v.firing);
        assert!(evaluate(None, &bytes(1), 0, &a, false).value.is_none());
    }

    #[test]
    fn disabled_alerts_never_fire() {
        let a = alert(TriggerType::MemoryUsage, 10, false);
        let v = evaluate(None, &bytes(999), 1000, &a, false);
        assert_eq!((v.firing, v.deliver), (false, false));
        let v = evaluate(None, &bytes(999), 1000, &a, true);
        assert_eq!((v.firing, v.deliver), (false, false), "disabling re-arms");
        let h = alert(TriggerType::HitRate, 100, false);
        assert!(!evaluate(Some(&gets(0, 0)), &gets(9, 0), 1, &h, false).deliver);
    }

    fn event() -> Event {
        Event {
            alert: alert(TriggerType::HitRate, 50, true),
            cache_name: "web".into(),
            value: 100.0 / 3.0,
            time: 951_782_400,
        }
    }

    #[test]
    fn payloads() {
        let e = event();
        assert_eq!(
            webhook_body(&e),
            json!({
                "alert_id": 7, "cache_id": 3, "cache_name": "web",
                "trigger_type": "hit_rate", "trigger_threshold": 50,
                "value": 33.33, "description": "watch it",
                "time": "2000-02-29T00:00:00Z",
            })
        );
        let s = slack_body(&e, "#ops");
        assert_eq!(s["channel"], "#ops");
        assert_eq!(s["username"], "shoal");
        let text = s["text"].as_str().unwrap();
        assert!(
            text.contains("web") && text.contains("33.33%") && text.contains("50%"),
            "{text}"
        );
        assert!(text.contains("watch it"), "{text}");
        assert!(slack_body(&e, "").get("channel").is_none());

        let m = email_message("shoal@localhost", "ops@example.com", &e).unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(
            raw.contains("Subject: [shoal] Cache web: hit rate alert"),
            "{raw}"
        );
        assert!(raw.contains("To: ops@example.com"), "{raw}");
        assert!(raw.contains("Value: 33.33%"), "{raw}");
        assert!(email_message("not an address", "ops@example.com", &e).is_err());
    }

    #[test]
    fn relay_addresses() {
        assert_eq!(relay_addr("127.0.0.1:2525"), Ok(("127.0.0.1".into(), 2525)));
        assert_eq!(relay_addr("mail.local"), Ok(("mail.local".into(), 25)));
        assert_eq!(relay_addr("[::1]:25"), Ok(("::1".into(), 25)));
        assert!(relay_addr("host:notaport").is_err());
        assert!(relay_addr(":25").is_err());
    }
}
