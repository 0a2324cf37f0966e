//! Alert evaluation and delivery messages.

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
