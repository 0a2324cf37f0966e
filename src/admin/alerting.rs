//! Alert evaluation and delivery (the routes are `alerts.rs`).
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
//!
//! Slack and webhook URLs reach only public addresses unless the server
//! runs with `--alert-allow-private` (`alerting/target.rs`): checked when a
//! delivery config is created and again, on the addresses connected to,
//! at every delivery. No proxy from the environment is used, since the
//! addresses checked must be the addresses connected to.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{json, Value};

use super::history::{iso8601, FIELDS};
use super::AdminState;
use crate::tenancy::{Alert, Cache, DeliveryConfig, DeliveryType, TriggerType};

mod target;

pub(crate) use target::{check_url, check_url_literal};

/// How long one delivery attempt (HTTP request or SMTP session) may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Deliveries waiting for a worker; more are dropped (and logged).
const QUEUE_LEN: usize = 256;
/// Worker threads delivering alerts.
const WORKERS: usize = 4;

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
pub(crate) struct Runtime {
    pub(crate) firing: bool,
    /// Unix seconds of the last delivery.
    pub(crate) last_triggered: Option<u64>,
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

impl Engine {
    /// The firing state of alert `id`; none before its first evaluation.
    pub(crate) fn runtime(&self, id: u64) -> Option<&Runtime> {
        self.alerts.get(&id)
    }
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
        let store = state.lock();
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
                    allow_private: state.alert_allow_private,
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
    /// `--alert-allow-private`.
    allow_private: bool,
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
        DeliveryType::Slack => post_json(
            &c.slack_url,
            &slack_body(&job.event, &c.slack_channel),
            job.allow_private,
        ),
        DeliveryType::Webhook => {
            post_json(&c.slack_url, &webhook_body(&job.event), job.allow_private)
        }
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

/// `POST url` with a JSON body; a non-2xx answer is an error. Unless
/// `allow_private`, only public addresses are connected to (`target.rs`).
fn post_json(url: &str, body: &Value, allow_private: bool) -> Result<(), String> {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(DELIVERY_TIMEOUT))
        // A redirect could lead to an unchecked host; a proxy would be
        // resolved instead of the target.
        .max_redirects(0)
        .proxy(None)
        .http_status_as_error(true)
        .user_agent(concat!("shoal/", env!("CARGO_PKG_VERSION")))
        .build();
    let agent = ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::default(),
        target::GuardedResolver { allow_private },
    );
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
mod tests;
