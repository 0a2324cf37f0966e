//! MemCachier API v2 alerts (reference 001, "Alerts"): the routes under
//! `/api/v2/caches/:id/alerts`. Their evaluation after every stats sample
//! and their delivery by Slack, webhook or email are `alerting.rs`.
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
//! cache, a cache's 21st alert, removing a config an alert uses, a Slack or
//! webhook URL that reaches a loopback, private or other non-public
//! address without `--alert-allow-private`), and 404
//! for an unknown alert or config. Alerts and configs live in the control
//! store (`tenancy::ControlStore`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::alerting::{check_url, Runtime};
use super::auth::authorize;
use super::body::{canonical_id, parse_json, ApiError};
use super::history::iso8601;
use super::AdminState;
use crate::tenancy::{
    Alert, AlertPatch, ControlError, DeliveryConfig, DeliveryType, NewAlert, NewDeliveryConfig,
    TriggerType,
};

type Shared = State<Arc<AdminState>>;
type ApiResult = Result<Response, ApiError>;

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
    canonical_id(raw)
        .ok_or_else(|| ApiError::invalid("The specified alert ID is invalid (not a number)."))
}

fn config_id(raw: &str) -> Result<u64, ApiError> {
    canonical_id(raw).ok_or_else(|| {
        ApiError::invalid("The specified alert delivery config ID is invalid (not a number).")
    })
}

/// A store answer kept for [`refused`] to map, except a stale one, which
/// `mutate` must see to retry it.
fn kept<T>(r: Result<T, ControlError>) -> Result<Result<T, ControlError>, ControlError> {
    match r {
        Err(ControlError::Stale) => Err(ControlError::Stale),
        r => Ok(r),
    }
}

/// A store refusal as the API answers it: MemCachier documents 400 for
/// every alert change that "could not be" made, so conflicts are 400 too.
fn refused(e: ControlError, not_found: &str) -> ApiError {
    match e {
        ControlError::NotFound => ApiError::not_found(not_found),
        ControlError::Conflict(m) | ControlError::Invalid(m) => ApiError::invalid(m),
        e @ (ControlError::Io(_) | ControlError::Stale | ControlError::Unavailable(_)) => e.into(),
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
        .map(|a| alert_json(a, engine.runtime(a.id)))
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
    let alerts = state.lock().alerts(cache.id);
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
    let new = new_alert(&body)?;
    let alert = state
        .mutate(|s| kept(s.add_alert(cache.id, new.clone())))?
        .map_err(|e| refused(e, "Cache not found."))?;
    Ok((StatusCode::CREATED, Json(one_alert(&state, &alert))).into_response())
}

/// `POST alerts`'s body, checked as far as it goes without the store.
pub(crate) fn new_alert(body: &[u8]) -> Result<NewAlert, ApiError> {
    let req: AlertBody = parse_json(body)?;
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
    Ok(NewAlert {
        trigger_type: kind,
        trigger_threshold: threshold,
        delivery_config_id: config,
        description: req.description.unwrap_or_default(),
        enabled: req.enabled.unwrap_or(true),
    })
}

async fn get_alert(
    State(state): Shared,
    headers: HeaderMap,
    Path((id, alert)): Path<(String, String)>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let alert_id = alert_id(&alert)?;
    let alert = state
        .lock()
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
    let patch = alert_patch(&body, alert_id)?;
    let alert = state
        .mutate(|s| kept(s.update_alert(cache.id, alert_id, patch.clone())))?
        .map_err(|e| refused(e, ALERT_NOT_FOUND))?;
    Ok((StatusCode::CREATED, Json(one_alert(&state, &alert))).into_response())
}

/// `PUT alerts/:alert_id`'s body, checked as far as it goes without the
/// store.
pub(crate) fn alert_patch(body: &[u8], alert_id: u64) -> Result<AlertPatch, ApiError> {
    let req: AlertBody = parse_json(body)?;
    if req.id.is_some_and(|b| b != alert_id) {
        return Err(ApiError::invalid(
            "The alert ID in the body does not match the one in the URL.",
        ));
    }
    Ok(AlertPatch {
        trigger_type: req.trigger_type.as_deref().map(trigger_type).transpose()?,
        trigger_threshold: req.trigger_threshold.map(threshold).transpose()?,
        delivery_config_id: req.delivery_config_id,
        description: req.description,
        enabled: req.enabled,
    })
}

async fn delete_alert(
    State(state): Shared,
    headers: HeaderMap,
    Path((id, alert)): Path<(String, String)>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let alert_id = alert_id(&alert)?;
    state
        .mutate(|s| kept(s.remove_alert(cache.id, alert_id)))?
        .map_err(|e| refused(e, ALERT_NOT_FOUND))?;
    Ok(StatusCode::CREATED.into_response())
}

async fn list_configs(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let configs = state.lock().delivery_configs(cache.id);
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
    let new = new_config(&body)?;
    // An absent URL reads as "", which check_url leaves to the store.
    if matches!(
        new.delivery_type,
        DeliveryType::Slack | DeliveryType::Webhook
    ) {
        check_url(&new.slack_url, state.alert_allow_private)
            .await
            .map_err(ApiError::invalid)?;
    }
    let config = state
        .mutate(|s| kept(s.add_delivery_config(cache.id, new.clone())))?
        .map_err(|e| refused(e, "Cache not found."))?;
    Ok((StatusCode::CREATED, Json(config_json(&config))).into_response())
}

/// `POST alerts/configs`'s body, checked as far as it goes without the
/// store or DNS (`check_url`).
pub(crate) fn new_config(body: &[u8]) -> Result<NewDeliveryConfig, ApiError> {
    let req: ConfigBody = parse_json(body)?;
    let raw = req
        .delivery_type
        .ok_or_else(|| ApiError::invalid("An alert delivery config requires a type."))?;
    let kind = DeliveryType::parse(&raw).ok_or_else(|| {
        ApiError::invalid(format!(
            "Unknown delivery type {raw:?}: use \"email\", \"slack\" or \"webhook\"."
        ))
    })?;
    Ok(NewDeliveryConfig {
        delivery_type: kind,
        email: req.email.unwrap_or_default(),
        slack_url: req.slack_url.unwrap_or_default(),
        slack_channel: req.slack_channel.unwrap_or_default(),
    })
}

async fn delete_config(
    State(state): Shared,
    headers: HeaderMap,
    Path((id, config)): Path<(String, String)>,
) -> ApiResult {
    let cache = authorize(&state, &headers, &id)?;
    let config_id = config_id(&config)?;
    state
        .mutate(|s| kept(s.remove_delivery_config(cache.id, config_id)))?
        .map_err(|e| refused(e, CONFIG_NOT_FOUND))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
