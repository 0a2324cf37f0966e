//! The fuzz target of the admin endpoint's JSON bodies (`crate::fuzz`):
//! each input is one body of an operator route or an API v2 route, parsed
//! and checked by the same functions the handlers call, then applied to a
//! control store holding one cache, as the handler's change would be.
//! Whatever the store accepts must read back (`adopt` checks the state as
//! a restart or another node would).
//!
//! It sits above the route files (like `routes.rs`) because it calls them.

use std::sync::{Arc, Mutex};

use super::alerting::check_url_literal;
use super::body::{cache_view, credential_view, parse_json, AddCredential, SetCaps};
use super::{alerts, api_v2, introspection, routes};
use crate::tenancy::backend::{Backend, CommitError};
use crate::tenancy::{
    empty_state, Caps, ControlError, ControlStore, DeliveryType, NewAlert, NewDeliveryConfig,
    TriggerType,
};

/// The cache every body applies to.
const CACHE: u32 = 1;

/// Keeps the last committed state in memory: the target must not write a
/// file per input.
struct Memory(Arc<Mutex<Vec<u8>>>);

impl Backend for Memory {
    fn commit(&mut self, _revision: u64, json: &[u8]) -> Result<(), CommitError> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = json.to_vec();
        Ok(())
    }
}

struct Fixture {
    store: ControlStore,
    /// What every input starts from (cache 1 with its primary credential,
    /// an email delivery config, an alert and a watched prefix).
    initial: Vec<u8>,
    committed: Arc<Mutex<Vec<u8>>>,
    username: String,
    alert: u64,
}

static FIXTURE: Mutex<Option<Fixture>> = Mutex::new(None);

fn fixture() -> Fixture {
    let committed = Arc::new(Mutex::new(Vec::new()));
    // The store locks a data dir and copies the token into it; nothing
    // is written there afterwards, so the dir goes at once.
    let dir = std::env::temp_dir().join(format!("shoal-fuzz-admin-{}", std::process::id()));
    let backend = Box::new(Memory(committed.clone()));
    let token = "f".repeat(32);
    let mut store = ControlStore::open_shared(&dir, backend, 1, &empty_state(), token, false)
        .expect("an in-memory control store");
    let _ = std::fs::remove_dir_all(&dir);
    let (_, cred) = store.create_cache("fuzz", 64 << 20).expect("a cache");
    let config = NewDeliveryConfig {
        delivery_type: DeliveryType::Email,
        email: "ops@example.com".into(),
        slack_url: String::new(),
        slack_channel: String::new(),
    };
    let config = store.add_delivery_config(CACHE, config).expect("a config");
    let alert = NewAlert {
        trigger_type: TriggerType::HitRate,
        trigger_threshold: 50,
        delivery_config_id: config.id,
        description: "hits".into(),
        enabled: true,
    };
    let alert = store.add_alert(CACHE, alert).expect("an alert").id;
    store.add_prefix(CACHE, "user:").expect("a prefix");
    let initial = committed.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Fixture {
        store,
        initial,
        committed,
        username: cred.username,
        alert,
    }
}

/// The first byte picks the route, the rest is its body.
pub(crate) fn body(data: &[u8]) {
    let Some((&route, body)) = data.split_first() else {
        return;
    };
    let mut guard = FIXTURE.lock().unwrap_or_else(|e| e.into_inner());
    let f = guard.get_or_insert_with(fixture);
    let next = f.store.revision() + 1;
    f.store.adopt(next, &f.initial).expect("the initial state");
    let before = f.store.revision();
    apply(f, route, body);
    if f.store.revision() != before {
        let json = f
            .committed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let next = f.store.revision() + 1;
        if let Err(e) = f.store.adopt(next, &json) {
            panic!("route {route}: the store accepted a state it cannot read back: {e}");
        }
    }
}

/// One route's handler, from its body to the store (errors are answers).
fn apply(f: &mut Fixture, route: u8, body: &[u8]) {
    let s = &mut f.store;
    match route % 11 {
        // POST /admin/v1/caches
        0 => {
            if let Ok(req) = routes::new_cache(body) {
                if let Ok((cache, cred)) = routes::create_cache_in(s, &req) {
                    serde_json::to_vec(&cache_view(&cache)).expect("a cache view");
                    serde_json::to_vec(&credential_view(&cred)).expect("a credential view");
                }
            }
        }
        // PATCH /admin/v1/caches/:id
        1 => {
            if let Ok(patch) = routes::cache_patch(body) {
                let _ = routes::patch_cache_in(s, CACHE, &patch);
            }
        }
        // POST /admin/v1/caches/:id/credentials
        2 => add(s, parse_json::<AddCredential>(body).map(|r| r.caps())),
        // PATCH /admin/v1/caches/:id/credentials/:username
        3 => set(
            s,
            &f.username,
            parse_json::<SetCaps>(body).map(|r| r.caps()),
        ),
        // POST /api/v2/caches/:id/credentials
        4 => add(s, api_v2::new_credential_caps(body)),
        // PATCH /api/v2/caches/:id/credentials/:username
        5 => set(s, &f.username, api_v2::credential_caps(body)),
        // POST /api/v2/caches/:id/alerts
        6 => {
            if let Ok(new) = alerts::new_alert(body) {
                let _ = s.add_alert(CACHE, new);
            }
        }
        // PUT /api/v2/caches/:id/alerts/:alert_id
        7 => {
            if let Ok(patch) = alerts::alert_patch(body, f.alert) {
                let _ = s.update_alert(CACHE, f.alert, patch);
            }
        }
        // POST /api/v2/caches/:id/alerts/configs (DNS left out)
        8 => {
            if let Ok(new) = alerts::new_config(body) {
                let web = matches!(
                    new.delivery_type,
                    DeliveryType::Slack | DeliveryType::Webhook
                );
                if !web || check_url_literal(&new.slack_url, false).is_ok() {
                    let _ = s.add_delivery_config(CACHE, new);
                }
            }
        }
        // POST /api/v2/caches/:id/introspection/prefixes
        9 => {
            if let Ok(name) = introspection::prefix_name(body) {
                let _ = s.add_prefix(CACHE, &name);
            }
        }
        // A memory size (`memory` in the bodies above, `-m`'s config).
        _ => {
            if let Ok(text) = std::str::from_utf8(body) {
                let _ = super::parse_memory(text);
            }
        }
    }
}

fn add(s: &mut ControlStore, caps: Result<Caps, super::ApiError>) {
    if let Ok(caps) = caps {
        let _: Result<_, ControlError> = s.add_credential(CACHE, caps);
    }
}

fn set(s: &mut ControlStore, username: &str, caps: Result<Caps, super::ApiError>) {
    if let Ok(caps) = caps {
        let _ = s.set_caps(CACHE, username, caps);
    }
}
