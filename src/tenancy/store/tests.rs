use super::*;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "shoal-store-unit-{tag}-{}-{}",
        std::process::id(),
        secret::username().unwrap()
    ));
    let _ = fs::remove_dir_all(&d);
    d
}

#[test]
fn state_check_rejects_broken_invariants() {
    let mut s = State::fresh();
    assert!(s.check().is_ok());
    s.caches.push(Cache {
        id: 1,
        name: "a".into(),
        memory_limit: 1,
        max_connections: 0,
        enabled: true,
        created: 0,
    });
    // id not below next_cache_id
    assert!(s.check().is_err());
    s.next_cache_id = 2;
    // no primary
    assert!(s.check().is_err());
    let cred = s.new_credential(1, Caps::ALL, true).unwrap();
    s.credentials.push(cred.clone());
    assert!(s.check().is_ok());
    // two primaries
    let mut two = s.clone();
    two.credentials.push(Credential {
        username: "OTHER1".into(),
        ..cred.clone()
    });
    assert!(two.check().is_err());
    // duplicate username
    let mut dup = s.clone();
    dup.credentials.push(Credential {
        primary: false,
        ..cred.clone()
    });
    assert!(dup.check().is_err());
    // dangling credential
    let mut dangling = s.clone();
    dangling.credentials.push(Credential {
        username: "OTHER2".into(),
        cache_id: 9,
        ..cred
    });
    assert!(dangling.check().is_err());
    let mut future = s;
    future.format = 2;
    assert!(future.check().is_err());
}

#[test]
fn failed_write_leaves_state_unchanged() {
    let dir = tmpdir("failwrite");
    let mut store = ControlStore::open(&dir).unwrap();
    let (c, _) = store.create_cache("a", 1 << 20).unwrap();
    let v = store.registry().version();
    // A directory squatting on the temp name makes the write fail.
    fs::create_dir(dir.join(tmp_name(CONTROL_FILE))).unwrap();
    fs::write(dir.join(tmp_name(CONTROL_FILE)).join("x"), b"x").unwrap();
    assert!(matches!(
        store.set_memory_limit(c.id, 2 << 20),
        Err(ControlError::Io(_))
    ));
    assert_eq!(store.cache(c.id).unwrap().memory_limit, 1 << 20);
    assert_eq!(store.registry().version(), v);
    fs::remove_dir_all(dir.join(tmp_name(CONTROL_FILE))).unwrap();
    assert_eq!(
        store.set_memory_limit(c.id, 2 << 20).unwrap().memory_limit,
        2 << 20
    );
    drop(store);
    let store = ControlStore::open(&dir).unwrap();
    assert_eq!(store.cache(c.id).unwrap().memory_limit, 2 << 20);
    drop(store);
    fs::remove_dir_all(&dir).unwrap();
}

use crate::tenancy::{TriggerType, WatchedPrefix};

fn slack() -> NewDeliveryConfig {
    NewDeliveryConfig {
        delivery_type: DeliveryType::Slack,
        email: String::new(),
        slack_url: "https://hooks.example.com/services/T0/B0/x".into(),
        slack_channel: "#alerts".into(),
    }
}

fn email(addr: &str) -> NewDeliveryConfig {
    NewDeliveryConfig {
        delivery_type: DeliveryType::Email,
        email: addr.into(),
        slack_url: String::new(),
        slack_channel: String::new(),
    }
}

fn hit_rate(config: u64, threshold: u8) -> NewAlert {
    NewAlert {
        trigger_type: TriggerType::HitRate,
        trigger_threshold: threshold,
        delivery_config_id: config,
        description: "low hit rate".into(),
        enabled: true,
    }
}

fn is_invalid<T: std::fmt::Debug>(r: Result<T, ControlError>) -> bool {
    matches!(r, Err(ControlError::Invalid(_)))
}

fn is_conflict<T: std::fmt::Debug>(r: Result<T, ControlError>) -> bool {
    matches!(r, Err(ControlError::Conflict(_)))
}

#[test]
fn alerts_configs_and_prefixes_round_trip() {
    let dir = tmpdir("objects");
    let mut store = ControlStore::open(&dir).unwrap();
    let (a, _) = store.create_cache("a", 1 << 20).unwrap();
    let (b, _) = store.create_cache("b", 1 << 20).unwrap();
    let cfg = store.add_delivery_config(a.id, slack()).unwrap();
    assert_eq!(cfg.cache_id, a.id);
    assert_eq!(cfg.email, "");
    let mail = store
        .add_delivery_config(a.id, email("ops@example.com"))
        .unwrap();
    let alert = store.add_alert(a.id, hit_rate(cfg.id, 50)).unwrap();
    let prefix = store.add_prefix(a.id, "user:").unwrap();
    // One id space, handed out in order.
    assert_eq!([cfg.id, mail.id, alert.id, prefix.id], [1, 2, 3, 4], "ids");
    assert_eq!(store.alerts(a.id), vec![alert.clone()]);
    assert_eq!(store.alert(a.id, alert.id), Some(alert.clone()));
    assert_eq!(store.alert(b.id, alert.id), None, "other cache");
    assert!(store.alerts(b.id).is_empty());
    assert_eq!(
        store.delivery_configs(a.id),
        vec![cfg.clone(), mail.clone()]
    );
    assert_eq!(store.prefixes(a.id), vec![prefix.clone()]);
    assert_eq!(
        store.registry().watched(a.id),
        &[(prefix.id, b"user:".to_vec())]
    );
    assert!(store.registry().watched(b.id).is_empty());

    // A partial update keeps the omitted fields.
    let v = store.registry().version();
    let off = store
        .update_alert(
            a.id,
            alert.id,
            AlertPatch {
                enabled: Some(false),
                ..AlertPatch::default()
            },
        )
        .unwrap();
    assert_eq!(
        off,
        Alert {
            enabled: false,
            ..alert.clone()
        }
    );
    assert_eq!(store.registry().version(), v + 1);
    let same = store
        .update_alert(a.id, alert.id, AlertPatch::default())
        .unwrap();
    assert_eq!(same, off);
    assert_eq!(store.registry().version(), v + 1, "no-op commits nothing");
    let moved = store
        .update_alert(
            a.id,
            alert.id,
            AlertPatch {
                trigger_type: Some(TriggerType::MemoryUsage),
                trigger_threshold: Some(90),
                delivery_config_id: Some(mail.id),
                description: Some(String::new()),
                enabled: None,
            },
        )
        .unwrap();
    assert_eq!(moved.trigger_type, TriggerType::MemoryUsage);
    assert_eq!(moved.trigger_threshold, 90);
    assert_eq!(moved.delivery_config_id, mail.id);
    assert!(!moved.enabled);

    let secret = store.rotate_sso(a.id).unwrap();
    assert_eq!(secret.len(), 32);
    assert_eq!(store.sso_secret(a.id).as_deref(), Some(secret.as_str()));
    assert_eq!(store.sso_secret(b.id), None, "never rotated");
    assert!(matches!(store.rotate_sso(99), Err(ControlError::NotFound)));

    // Everything survives a reload.
    drop(store);
    let mut store = ControlStore::open(&dir).unwrap();
    assert_eq!(store.alerts(a.id), vec![moved.clone()]);
    assert_eq!(
        store.delivery_configs(a.id),
        vec![cfg.clone(), mail.clone()]
    );
    assert_eq!(store.prefixes(a.id), vec![prefix.clone()]);
    assert_eq!(store.sso_secret(a.id), Some(secret.clone()));
    assert_eq!(
        store.registry().watched(a.id),
        &[(prefix.id, b"user:".to_vec())]
    );
    let again = store.rotate_sso(a.id).unwrap();
    assert_ne!(again, secret);

    // Ids are never reused, across reloads and removals.
    store.remove_alert(a.id, moved.id).unwrap();
    store.remove_prefix(a.id, prefix.id).unwrap();
    assert!(store.registry().watched(a.id).is_empty());
    let p2 = store.add_prefix(a.id, "user:").unwrap();
    assert_eq!(p2.id, 5);
    assert!(matches!(
        store.remove_alert(a.id, moved.id),
        Err(ControlError::NotFound)
    ));
    assert!(matches!(
        store.remove_prefix(b.id, p2.id),
        Err(ControlError::NotFound)
    ));
    store.remove_delivery_config(a.id, cfg.id).unwrap();
    assert_eq!(store.delivery_configs(a.id), vec![mail.clone()]);
    assert!(matches!(
        store.remove_delivery_config(a.id, cfg.id),
        Err(ControlError::NotFound)
    ));
    drop(store);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn alert_and_config_validation() {
    let dir = tmpdir("validate");
    let mut store = ControlStore::open(&dir).unwrap();
    let (a, _) = store.create_cache("a", 1 << 20).unwrap();
    let (b, _) = store.create_cache("b", 1 << 20).unwrap();
    let cfg = store.add_delivery_config(a.id, slack()).unwrap();
    let other = store.add_delivery_config(b.id, slack()).unwrap();
    assert!(matches!(
        store.add_alert(99, hit_rate(cfg.id, 50)),
        Err(ControlError::NotFound)
    ));
    assert!(is_invalid(store.add_alert(a.id, hit_rate(cfg.id, 101))));
    assert!(
        is_invalid(store.add_alert(a.id, hit_rate(other.id, 50))),
        "another cache's config"
    );
    assert!(is_invalid(store.add_alert(a.id, hit_rate(12345, 50))));
    let long = NewAlert {
        description: "x".repeat(MAX_DESCRIPTION_LEN + 1),
        ..hit_rate(cfg.id, 50)
    };
    assert!(is_invalid(store.add_alert(a.id, long)));
    let edge = NewAlert {
        description: "x".repeat(MAX_DESCRIPTION_LEN),
        ..hit_rate(cfg.id, 100)
    };
    let alert = store.add_alert(a.id, edge).unwrap();
    store.add_alert(a.id, hit_rate(cfg.id, 0)).unwrap();
    let bad = |p: AlertPatch| p;
    assert!(is_invalid(store.update_alert(
        a.id,
        alert.id,
        bad(AlertPatch {
            trigger_threshold: Some(200),
            ..AlertPatch::default()
        })
    )));
    assert!(is_invalid(store.update_alert(
        a.id,
        alert.id,
        AlertPatch {
            delivery_config_id: Some(other.id),
            ..AlertPatch::default()
        }
    )));
    assert!(matches!(
        store.update_alert(b.id, alert.id, AlertPatch::default()),
        Err(ControlError::NotFound)
    ));
    assert_eq!(
        store.alert(a.id, alert.id),
        Some(alert.clone()),
        "unchanged"
    );

    // A config in use cannot be removed.
    assert!(is_conflict(store.remove_delivery_config(a.id, cfg.id)));
    assert!(matches!(
        store.remove_delivery_config(b.id, cfg.id),
        Err(ControlError::NotFound)
    ));

    // Delivery configs.
    for addr in [
        "ops@example.com",
        "a.b+c@mail.example.org",
        "root@localhost",
    ] {
        store.add_delivery_config(b.id, email(addr)).unwrap();
    }
    for addr in [
        "",
        "ops",
        "@example.com",
        "ops@",
        "a@b@c",
        "ops @example.com",
        "ops@exa mple.com",
        "<ops@example.com>",
        "ops@example..com",
        "ops@-x.com",
        "a,b@example.com",
    ] {
        assert!(
            is_invalid(store.add_delivery_config(b.id, email(addr))),
            "{addr:?}"
        );
    }
    let url = |kind, u: &str| NewDeliveryConfig {
        delivery_type: kind,
        slack_url: u.into(),
        ..slack()
    };
    store
        .add_delivery_config(
            a.id,
            url(DeliveryType::Webhook, "http://127.0.0.1:8080/hook"),
        )
        .unwrap();
    store
        .add_delivery_config(a.id, url(DeliveryType::Slack, "HTTPS://hooks.example.com"))
        .unwrap();
    for u in [
        "",
        "hooks.example.com",
        "ftp://x",
        "http://",
        "http:///path",
        "https:// x.com",
        "http://x.com/\u{7}",
        "javascript:alert(1)",
    ] {
        assert!(
            is_invalid(store.add_delivery_config(a.id, url(DeliveryType::Slack, u))),
            "{u:?}"
        );
        assert!(
            is_invalid(store.add_delivery_config(a.id, url(DeliveryType::Webhook, u))),
            "{u:?}"
        );
    }
    assert!(is_invalid(store.add_delivery_config(
        a.id,
        NewDeliveryConfig {
            slack_channel: "#a\nb".into(),
            ..slack()
        }
    )));
    assert!(is_invalid(store.add_delivery_config(
        a.id,
        NewDeliveryConfig {
            slack_url: format!("https://x.com/{}", "a".repeat(MAX_URL_LEN)),
            ..slack()
        }
    )));
    assert!(matches!(
        store.add_delivery_config(99, slack()),
        Err(ControlError::NotFound)
    ));
    drop(store);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn prefix_validation() {
    let dir = tmpdir("prefix");
    let mut store = ControlStore::open(&dir).unwrap();
    let (a, _) = store.create_cache("a", 1 << 20).unwrap();
    let (b, _) = store.create_cache("b", 1 << 20).unwrap();
    store.add_prefix(a.id, "k").unwrap();
    store.add_prefix(a.id, &"p".repeat(MAX_PREFIX_LEN)).unwrap();
    store.add_prefix(a.id, "ünï:").unwrap();
    for bad in [
        String::new(),
        "p".repeat(MAX_PREFIX_LEN + 1),
        "a b".into(),
        "a\tb".into(),
        "a\r\n".into(),
        "a\u{0}".into(),
        "a\u{a0}b".into(),
    ] {
        assert!(is_invalid(store.add_prefix(a.id, &bad)), "{bad:?}");
    }
    assert!(is_conflict(store.add_prefix(a.id, "k")), "duplicate");
    store.add_prefix(b.id, "k").unwrap();
    assert!(matches!(
        store.add_prefix(99, "k"),
        Err(ControlError::NotFound)
    ));
    drop(store);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn per_cache_bounds() {
    let dir = tmpdir("bounds");
    let mut store = ControlStore::open(&dir).unwrap();
    let (a, _) = store.create_cache("a", 1 << 20).unwrap();
    let (b, _) = store.create_cache("b", 1 << 20).unwrap();
    let mut cfgs = Vec::new();
    for _ in 0..MAX_DELIVERY_CONFIGS_PER_CACHE {
        cfgs.push(store.add_delivery_config(a.id, slack()).unwrap());
    }
    assert!(is_conflict(store.add_delivery_config(a.id, slack())));
    for i in 0..MAX_ALERTS_PER_CACHE {
        store
            .add_alert(a.id, hit_rate(cfgs[i % cfgs.len()].id, 50))
            .unwrap();
    }
    assert!(is_conflict(store.add_alert(a.id, hit_rate(cfgs[0].id, 50))));
    for i in 0..MAX_WATCHED_PREFIXES_PER_CACHE {
        store.add_prefix(a.id, &format!("p{i}:")).unwrap();
    }
    assert!(is_conflict(store.add_prefix(a.id, "one-more:")));
    // Bounds are per cache.
    let cfg_b = store.add_delivery_config(b.id, slack()).unwrap();
    store.add_alert(b.id, hit_rate(cfg_b.id, 50)).unwrap();
    store.add_prefix(b.id, "p0:").unwrap();
    // The full state still loads.
    drop(store);
    let store = ControlStore::open(&dir).unwrap();
    assert_eq!(store.alerts(a.id).len(), MAX_ALERTS_PER_CACHE);
    drop(store);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn delete_cache_drops_its_objects() {
    let dir = tmpdir("dropobjects");
    let mut store = ControlStore::open(&dir).unwrap();
    let (a, _) = store.create_cache("a", 1 << 20).unwrap();
    let (b, _) = store.create_cache("b", 1 << 20).unwrap();
    for c in [a.id, b.id] {
        let cfg = store.add_delivery_config(c, slack()).unwrap();
        store.add_alert(c, hit_rate(cfg.id, 50)).unwrap();
        store.add_prefix(c, "x:").unwrap();
        store.rotate_sso(c).unwrap();
    }
    store.delete_cache(a.id).unwrap();
    assert!(store.alerts(a.id).is_empty());
    assert!(store.delivery_configs(a.id).is_empty());
    assert!(store.prefixes(a.id).is_empty());
    assert_eq!(store.sso_secret(a.id), None);
    assert!(store.registry().watched(a.id).is_empty());
    assert_eq!(store.alerts(b.id).len(), 1);
    assert_eq!(store.prefixes(b.id).len(), 1);
    assert!(store.sso_secret(b.id).is_some());
    drop(store);
    let store = ControlStore::open(&dir).unwrap();
    assert!(store.alerts(a.id).is_empty());
    assert_eq!(store.alerts(b.id).len(), 1);
    drop(store);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn files_without_the_new_fields_still_load() {
    let dir = tmpdir("oldformat");
    fs::create_dir_all(&dir).unwrap();
    let old = r#"{ "format": 1, "revision": 2, "next_cache_id": 2,
            "caches": [ { "id": 1, "name": "web", "memory_limit": 1048576,
                          "enabled": true, "created": 1700000000 } ],
            "credentials": [ { "username": "15F38E", "password": "52353F9F1C4017CC16FD348B982ED47D",
                               "cache_id": 1, "caps": { "write": true, "flush": true, "api": true },
                               "primary": true, "created": 1700000000 } ] }"#;
    fs::write(dir.join(CONTROL_FILE), old).unwrap();
    let mut store = ControlStore::open(&dir).unwrap();
    assert!(store.alerts(1).is_empty());
    assert_eq!(store.sso_secret(1), None);
    let cfg = store.add_delivery_config(1, slack()).unwrap();
    assert_eq!(cfg.id, 1, "object ids start at 1");
    let v: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join(CONTROL_FILE)).unwrap()).unwrap();
    assert_eq!(v["format"], 1);
    assert_eq!(v["next_object_id"], 2);
    assert_eq!(v["delivery_configs"][0]["delivery_type"], "slack");
    drop(store);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn state_check_rejects_broken_objects() {
    let mut s = State::fresh();
    s.next_cache_id = 3;
    for id in [1, 2] {
        s.caches.push(Cache {
            id,
            name: format!("c{id}"),
            memory_limit: 1,
            max_connections: 0,
            enabled: true,
            created: 0,
        });
        let cred = s.new_credential(id, Caps::ALL, true).unwrap();
        s.credentials.push(cred);
    }
    s.next_object_id = 4;
    s.delivery_configs.push(DeliveryConfig {
        id: 1,
        cache_id: 1,
        delivery_type: DeliveryType::Webhook,
        email: String::new(),
        slack_url: "http://127.0.0.1/".into(),
        slack_channel: String::new(),
    });
    s.alerts.push(Alert {
        id: 2,
        cache_id: 1,
        trigger_type: TriggerType::MemoryUsage,
        trigger_threshold: 80,
        delivery_config_id: 1,
        description: String::new(),
        enabled: true,
    });
    s.watched_prefixes.push(WatchedPrefix {
        id: 3,
        cache_id: 1,
        name: "p:".into(),
    });
    s.sso_secrets.insert(1, "S".into());
    assert_eq!(s.check(), Ok(()));
    type Breaker = Box<dyn Fn(&mut State)>;
    let broken: Vec<(&str, Breaker)> = vec![
        ("next_object_id zero", Box::new(|s| s.next_object_id = 0)),
        ("id not below next", Box::new(|s| s.next_object_id = 3)),
        (
            "id shared across spaces",
            Box::new(|s| s.watched_prefixes[0].id = 2),
        ),
        ("zero id", Box::new(|s| s.alerts[0].id = 0)),
        (
            "missing cache",
            Box::new(|s| s.watched_prefixes[0].cache_id = 7),
        ),
        (
            "threshold",
            Box::new(|s| s.alerts[0].trigger_threshold = 101),
        ),
        (
            "config of another cache",
            Box::new(|s| s.alerts[0].cache_id = 2),
        ),
        (
            "missing config",
            Box::new(|s| s.alerts[0].delivery_config_id = 3),
        ),
        (
            "bad url",
            Box::new(|s| s.delivery_configs[0].slack_url = "x".into()),
        ),
        (
            "bad prefix",
            Box::new(|s| s.watched_prefixes[0].name = "a b".into()),
        ),
        (
            "duplicate prefix",
            Box::new(|s| {
                s.next_object_id = 5;
                s.watched_prefixes.push(WatchedPrefix {
                    id: 4,
                    cache_id: 1,
                    name: "p:".into(),
                })
            }),
        ),
        (
            "too many prefixes",
            Box::new(|s| {
                for i in 0..MAX_WATCHED_PREFIXES_PER_CACHE as u64 {
                    s.watched_prefixes.push(WatchedPrefix {
                        id: 10 + i,
                        cache_id: 1,
                        name: format!("q{i}"),
                    });
                }
                s.next_object_id = 100;
            }),
        ),
        (
            "sso of missing cache",
            Box::new(|s| {
                s.sso_secrets.insert(9, "S".into());
            }),
        ),
        (
            "empty sso",
            Box::new(|s| {
                s.sso_secrets.insert(2, String::new());
            }),
        ),
    ];
    for (what, breaker) in broken {
        let mut b = s.clone();
        breaker(&mut b);
        assert!(b.check().is_err(), "{what}");
    }
}

#[test]
fn second_open_is_refused_while_locked() {
    let dir = tmpdir("lock");
    let store = ControlStore::open(&dir).unwrap();
    assert!(matches!(
        ControlStore::open(&dir),
        Err(ControlError::Conflict(_))
    ));
    drop(store);
    ControlStore::open(&dir).unwrap();
    fs::remove_dir_all(&dir).unwrap();
}
