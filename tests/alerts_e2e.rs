//! MemCachier API v2 alerts against a running multi-tenant server: the
//! routes with every documented status code, and alerts that fire on real
//! traffic (misses, a filling cache) and reach a webhook and an SMTP relay
//! that the test runs on 127.0.0.1. The server samples every 0.2 s.

mod common;
use common::{eventually, Client, Server};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long an alert may take to be delivered (many sampling rounds).
const WAIT: Duration = Duration::from_secs(15);

type Tenant = common::Cred;

fn tenant(s: &Server, name: &str, memory: &str) -> Tenant {
    s.create_cache(name, memory)
}

fn login(s: &Server, t: &Tenant) -> Client {
    s.login(&t.user, &t.pass)
}

/// A server sampling every 0.2 s, with email alerts relayed to `smtp`, and
/// webhooks allowed to reach the test's receiver on 127.0.0.1.
fn server(dir: &std::path::Path, smtp: Option<&str>) -> Server {
    let mut args = vec![
        "--stats-interval",
        "0.2",
        "--smtp-from",
        "alerts@shoal.test",
        "--alert-allow-private",
    ];
    if let Some(relay) = smtp {
        args.extend(["--smtp-relay", relay]);
    }
    Server::start_mt(1, dir, &args)
}

/// `METHOD /api/v2/caches/<cache>/<rest>` as `t`.
fn call(s: &Server, t: &Tenant, method: &str, rest: &str, body: Option<&str>) -> (u16, Value) {
    s.api_v2(
        method,
        &format!("/caches/{}/{rest}", t.cache),
        t.basic(),
        body,
    )
}

/// A request the test's HTTP receiver got.
#[derive(Clone, Debug)]
struct Received {
    method: String,
    path: String,
    content_type: String,
    body: Value,
}

/// An HTTP server on 127.0.0.1 that records every request and answers 200.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&got);
        std::thread::spawn(move || {
            for conn in listener.incoming().map_while(Result::ok) {
                if let Some(r) = read_request(conn) {
                    sink.lock().unwrap().push(r);
                }
            }
        });
        Receiver { url, got }
    }

    fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The deliveries of alert `id`.
    fn of(&self, id: u64) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| r.body["alert_id"] == id)
            .collect()
    }
}

fn read_request(conn: TcpStream) -> Option<Received> {
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let (mut len, mut content_type) = (0usize, String::new());
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, v) = h.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => len = v.trim().parse().ok()?,
            "content-type" => content_type = v.trim().to_string(),
            _ => {}
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let mut conn = conn;
    conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        .ok()?;
    Some(Received {
        method,
        path,
        content_type,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

/// A message the test's SMTP receiver accepted.
#[derive(Clone, Debug, Default)]
struct Mail {
    from: String,
    to: Vec<String>,
    data: String,
}

/// A minimal SMTP server on 127.0.0.1 (220 / 250 / 354 / 250 / 221).
fn smtp_receiver() -> (String, Arc<Mutex<Vec<Mail>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            let _ = smtp_session(conn, &sink);
        }
    });
    (addr, got)
}

fn smtp_session(mut conn: TcpStream, sink: &Mutex<Vec<Mail>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    conn.write_all(b"220 test.local ESMTP ready\r\n")?;
    let mut mail = Mail::default();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250 test.local\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = line[10..].trim().to_string();
            b"250 ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(line[8..].trim().to_string());
            b"250 ok\r\n"
        } else if upper.starts_with("DATA") {
            conn.write_all(b"354 end with <CRLF>.<CRLF>\r\n")?;
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l)? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" {
                    break;
                }
                mail.data.push_str(&l);
            }
            sink.lock().unwrap().push(std::mem::take(&mut mail));
            b"250 queued\r\n"
        } else if upper.starts_with("QUIT") {
            conn.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            b"250 ok\r\n"
        };
        conn.write_all(reply)?;
    }
}

fn new_config(s: &Server, t: &Tenant, body: Value) -> u64 {
    let (st, cfg) = call(s, t, "POST", "alerts/configs", Some(&body.to_string()));
    assert_eq!(st, 201, "{cfg}");
    cfg["id"].as_u64().unwrap()
}

fn new_alert(s: &Server, t: &Tenant, body: Value) -> u64 {
    let (st, alert) = call(s, t, "POST", "alerts", Some(&body.to_string()));
    assert_eq!(st, 201, "{alert}");
    alert["id"].as_u64().unwrap()
}

fn webhook(s: &Server, t: &Tenant, r: &Receiver) -> u64 {
    new_config(
        s,
        t,
        json!({"delivery_type": "webhook", "slack_url": format!("{}/hook", r.url)}),
    )
}

/// Asserts a 400 with a JSON error body.
fn bad(resp: (u16, Value), what: &str) -> Value {
    assert_eq!(resp.0, 400, "{what}: {}", resp.1);
    assert_eq!(resp.1["error"], "invalid", "{what}: {}", resp.1);
    resp.1
}

#[test]
fn routes_and_status_codes() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), None);
    let a = tenant(&s, "alpha", "8MB");
    let b = tenant(&s, "beta", "8MB");

    // Authentication and authorization, as in the rest of API v2.
    let path = format!("/caches/{}/alerts", a.cache);
    assert_eq!(
        s.api_v2("GET", "/caches/abc/alerts", a.basic(), None).0,
        400
    );
    assert_eq!(s.api_v2("GET", &path, None, None).0, 401);
    assert_eq!(
        s.api_v2("GET", &path, Some((&a.user, "wrong")), None).0,
        401
    );
    assert_eq!(s.api_v2("GET", &path, b.basic(), None).0, 403);
    assert_eq!(
        s.api_v2("GET", &format!("{path}/configs"), b.basic(), None)
            .0,
        403
    );

    // Empty lists.
    assert_eq!(call(&s, &a, "GET", "alerts", None), (200, json!([])));
    assert_eq!(
        call(&s, &a, "GET", "alerts/configs", None),
        (200, json!([]))
    );

    // Delivery configs: fields absent from the body come back as "".
    let e = bad(
        call(&s, &a, "POST", "alerts/configs", Some("{}")),
        "no type",
    );
    assert_eq!(e["message"], "An alert delivery config requires a type.");
    bad(call(&s, &a, "POST", "alerts/configs", None), "no body");
    bad(
        call(&s, &a, "POST", "alerts/configs", Some("{")),
        "bad JSON",
    );
    bad(
        call(&s, &a, "POST", "alerts/configs", Some("[]")),
        "not an object",
    );
    for body in [
        json!({"delivery_type": "pigeon"}),
        json!({"delivery_type": 3}),
        json!({"delivery_type": "slack"}),
        json!({"delivery_type": "slack", "slack_url": "hooks.example.com"}),
        json!({"delivery_type": "webhook", "slack_url": "ftp://127.0.0.1/"}),
        json!({"delivery_type": "email"}),
        json!({"delivery_type": "email", "email": "nobody"}),
        json!({"delivery_type": "email", "email": "ops@example.com", "extra": 1}),
    ] {
        bad(
            call(&s, &a, "POST", "alerts/configs", Some(&body.to_string())),
            &body.to_string(),
        );
    }
    let (st, slack) = call(
        &s,
        &a,
        "POST",
        "alerts/configs",
        Some(
            r##"{"delivery_type":"slack","slack_url":"https://hooks.example.com/services/x","slack_channel":"#alerts"}"##,
        ),
    );
    assert_eq!(st, 201);
    let slack_id = slack["id"].as_u64().unwrap();
    assert_eq!(
        slack,
        json!({"id": slack_id, "delivery_type": "slack", "email": "",
               "slack_url": "https://hooks.example.com/services/x", "slack_channel": "#alerts"})
    );
    let (st, mail) = call(
        &s,
        &a,
        "POST",
        "alerts/configs",
        Some(r#"{"delivery_type":"email","email":"ops@example.com"}"#),
    );
    assert_eq!(st, 201);
    assert_eq!(
        (&mail["email"], &mail["slack_url"], &mail["slack_channel"]),
        (&json!("ops@example.com"), &json!(""), &json!(""))
    );
    let mail_id = mail["id"].as_u64().unwrap();
    let b_config = new_config(
        &s,
        &b,
        json!({"delivery_type": "webhook", "slack_url": "http://127.0.0.1:9/"}),
    );
    let (st, list) = call(&s, &a, "GET", "alerts/configs", None);
    assert_eq!((st, list.as_array().unwrap().len()), (200, 2), "{list}");
    assert_eq!(list[0], slack);

    // Alerts.
    let e = bad(call(&s, &a, "POST", "alerts", Some("{}")), "no type");
    assert_eq!(e["message"], "An alert requires a type.");
    bad(call(&s, &a, "POST", "alerts", None), "no body");
    bad(
        call(&s, &a, "POST", "alerts", Some("{\"trigger_type\":")),
        "bad JSON",
    );
    for body in [
        json!({"trigger_type": "latency", "trigger_threshold": 5, "delivery_config_id": slack_id}),
        json!({"trigger_type": "hit_rate", "delivery_config_id": slack_id}),
        json!({"trigger_type": "hit_rate", "trigger_threshold": 101, "delivery_config_id": slack_id}),
        json!({"trigger_type": "hit_rate", "trigger_threshold": -1, "delivery_config_id": slack_id}),
        json!({"trigger_type": "hit_rate", "trigger_threshold": 5.5, "delivery_config_id": slack_id}),
        json!({"trigger_type": "hit_rate", "trigger_threshold": "50", "delivery_config_id": slack_id}),
        json!({"trigger_type": "hit_rate", "trigger_threshold": 50}),
        json!({"trigger_type": "hit_rate", "trigger_threshold": 50, "delivery_config_id": 999_999}),
        json!({"trigger_type": "hit_rate", "trigger_threshold": 50, "delivery_config_id": b_config}),
        json!({"trigger_type": "hit_rate", "trigger_threshold": 50, "delivery_config_id": slack_id,
               "description": "x".repeat(1025)}),
        json!({"trigger_type": "hit_rate", "trigger_threshold": 50, "delivery_config_id": slack_id,
               "colour": "red"}),
    ] {
        bad(
            call(&s, &a, "POST", "alerts", Some(&body.to_string())),
            &body.to_string(),
        );
    }
    // The documented example.
    let (st, alert) = call(
        &s,
        &a,
        "POST",
        "alerts",
        Some(&format!(
            r#"{{"trigger_type":"hit_rate","trigger_threshold":50,"delivery_config_id":{slack_id},"description":"This is a description.","enabled":true}}"#
        )),
    );
    assert_eq!(st, 201, "{alert}");
    let id = alert["id"].as_u64().unwrap();
    let expected = json!({
        "id": id, "trigger_type": "hit_rate", "trigger_threshold": 50,
        "delivery_config_id": slack_id, "description": "This is a description.",
        "enabled": true, "triggered": false, "last_triggered": null,
    });
    assert_eq!(alert, expected);
    assert_eq!(
        call(&s, &a, "GET", &format!("alerts/{id}"), None),
        (200, expected.clone())
    );
    assert_eq!(
        call(&s, &a, "GET", "alerts", None),
        (200, json!([expected.clone()]))
    );
    // Description and enabled are optional.
    let (st, minimal) = call(
        &s,
        &a,
        "POST",
        "alerts",
        Some(&json!({"trigger_type": "memory_usage", "trigger_threshold": 0, "delivery_config_id": mail_id}).to_string()),
    );
    assert_eq!(st, 201);
    assert_eq!(
        (&minimal["description"], &minimal["enabled"]),
        (&json!(""), &json!(true))
    );
    let minimal_id = minimal["id"].as_u64().unwrap();

    // Unknown and malformed ids; another cache's alert is not found here.
    let e = bad(call(&s, &a, "GET", "alerts/abc", None), "alert id");
    assert_eq!(
        e["message"],
        "The specified alert ID is invalid (not a number)."
    );
    bad(call(&s, &a, "GET", "alerts/-1", None), "negative alert id");
    assert_eq!(call(&s, &a, "GET", "alerts/999999", None).0, 404);
    let b_alert = new_alert(
        &s,
        &b,
        json!({"trigger_type": "hit_rate", "trigger_threshold": 1, "delivery_config_id": b_config}),
    );
    assert_eq!(
        call(&s, &a, "GET", &format!("alerts/{b_alert}"), None).0,
        404
    );
    assert_eq!(
        call(&s, &a, "PUT", &format!("alerts/{b_alert}"), Some("{}")).0,
        404
    );
    assert_eq!(
        call(&s, &a, "DELETE", &format!("alerts/{b_alert}"), None).0,
        404
    );

    // PUT: the documented partial body; omitted fields keep their value.
    let (st, updated) = call(
        &s,
        &a,
        "PUT",
        &format!("alerts/{id}"),
        Some(&format!(r#"{{"id":{id},"enabled":false}}"#)),
    );
    assert_eq!(st, 201);
    let mut disabled = expected.clone();
    disabled["enabled"] = json!(false);
    assert_eq!(updated, disabled);
    let (st, updated) = call(
        &s,
        &a,
        "PUT",
        &format!("alerts/{id}"),
        Some(
            &json!({"trigger_type": "memory_usage", "trigger_threshold": 90,
                     "delivery_config_id": mail_id, "description": ""})
            .to_string(),
        ),
    );
    assert_eq!(st, 201);
    assert_eq!(
        updated,
        json!({"id": id, "trigger_type": "memory_usage", "trigger_threshold": 90,
               "delivery_config_id": mail_id, "description": "", "enabled": false,
               "triggered": false, "last_triggered": null})
    );
    assert_eq!(
        call(&s, &a, "PUT", &format!("alerts/{id}"), None),
        (201, updated.clone())
    );
    for body in [
        json!({"id": id + 1000, "enabled": true}),
        json!({"trigger_threshold": 200}),
        json!({"trigger_type": "nope"}),
        json!({"delivery_config_id": b_config}),
        json!({"enabled": "yes"}),
    ] {
        bad(
            call(
                &s,
                &a,
                "PUT",
                &format!("alerts/{id}"),
                Some(&body.to_string()),
            ),
            &body.to_string(),
        );
    }
    bad(call(&s, &a, "PUT", "alerts/abc", Some("{}")), "alert id");
    assert_eq!(call(&s, &a, "PUT", "alerts/999999", Some("{}")).0, 404);
    assert_eq!(
        call(&s, &a, "GET", &format!("alerts/{id}"), None),
        (200, updated)
    );

    // A config in use cannot be deleted; ids that are not numbers are 400.
    bad(
        call(&s, &a, "DELETE", &format!("alerts/configs/{mail_id}"), None),
        "config in use",
    );
    let e = bad(
        call(&s, &a, "DELETE", "alerts/configs/x", None),
        "config id",
    );
    assert_eq!(
        e["message"],
        "The specified alert delivery config ID is invalid (not a number)."
    );
    assert_eq!(call(&s, &a, "DELETE", "alerts/configs/999999", None).0, 404);
    assert_eq!(
        call(
            &s,
            &a,
            "DELETE",
            &format!("alerts/configs/{b_config}"),
            None
        )
        .0,
        404,
        "another cache's config"
    );

    // DELETE alert: 201 (as documented), then 404.
    bad(call(&s, &a, "DELETE", "alerts/abc", None), "alert id");
    assert_eq!(call(&s, &a, "DELETE", &format!("alerts/{id}"), None).0, 201);
    assert_eq!(call(&s, &a, "DELETE", &format!("alerts/{id}"), None).0, 404);
    assert_eq!(call(&s, &a, "GET", &format!("alerts/{id}"), None).0, 404);
    assert_eq!(
        call(&s, &a, "DELETE", &format!("alerts/{minimal_id}"), None).0,
        201
    );
    assert_eq!(
        call(&s, &a, "DELETE", &format!("alerts/configs/{mail_id}"), None).0,
        204
    );
    assert_eq!(
        call(&s, &a, "DELETE", &format!("alerts/configs/{mail_id}"), None).0,
        404
    );
    let (_, list) = call(&s, &a, "GET", "alerts/configs", None);
    assert_eq!(list, json!([slack]));

    // At most 10 delivery configs per cache.
    for _ in 1..10 {
        new_config(
            &s,
            &a,
            json!({"delivery_type": "email", "email": "ops@example.com"}),
        );
    }
    bad(
        call(
            &s,
            &a,
            "POST",
            "alerts/configs",
            Some(r#"{"delivery_type":"email","email":"ops@example.com"}"#),
        ),
        "11th config",
    );

    // Everything is in the control store: a restart keeps it.
    let keep = new_alert(
        &s,
        &a,
        json!({"trigger_type": "hit_rate", "trigger_threshold": 10, "delivery_config_id": slack_id}),
    );
    let before = (
        call(&s, &a, "GET", "alerts", None),
        call(&s, &a, "GET", "alerts/configs", None),
    );
    assert!(s.terminate());
    let s = server(dir.path(), None);
    assert_eq!(call(&s, &a, "GET", "alerts", None), before.0);
    assert_eq!(call(&s, &a, "GET", "alerts/configs", None), before.1);
    assert_eq!(call(&s, &a, "GET", &format!("alerts/{keep}"), None).0, 200);
}

#[test]
fn hit_rate_alert_fires_on_misses_and_rearms_after_recovering() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), None);
    let t = tenant(&s, "hits", "8MB");
    let r = Receiver::start();
    let config = webhook(&s, &t, &r);
    let alert = new_alert(
        &s,
        &t,
        json!({"trigger_type": "hit_rate", "trigger_threshold": 50,
               "delivery_config_id": config, "description": "too many misses"}),
    );
    let mut c = login(&s, &t);
    assert_eq!(c.set("hot", b"1"), "STORED\r\n");

    // Misses: the hit rate of the interval is 0% < 50%.
    let mut n = 0;
    let mut miss = |c: &mut Client| {
        n += 1;
        assert_eq!(c.get(&format!("missing-{n}")), None);
    };
    assert!(
        eventually(WAIT, || {
            miss(&mut c);
            !r.of(alert).is_empty()
        }),
        "the alert was delivered"
    );
    let got = r.of(alert)[0].clone();
    assert_eq!((got.method.as_str(), got.path.as_str()), ("POST", "/hook"));
    assert!(got.content_type.starts_with("application/json"), "{got:?}");
    let body = got.body.as_object().unwrap();
    let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "alert_id",
            "cache_id",
            "cache_name",
            "description",
            "time",
            "trigger_threshold",
            "trigger_type",
            "value"
        ]
    );
    assert_eq!(body["cache_id"], t.cache);
    assert_eq!(body["cache_name"], "hits");
    assert_eq!(body["trigger_type"], "hit_rate");
    assert_eq!(body["trigger_threshold"], 50);
    assert_eq!(body["description"], "too many misses");
    assert_eq!(body["value"].as_f64(), Some(0.0), "only misses");
    let time = body["time"].as_str().unwrap();
    assert!(time.len() == 20 && time.ends_with('Z'), "{time}");
    let (st, state) = call(&s, &t, "GET", &format!("alerts/{alert}"), None);
    assert_eq!((st, &state["triggered"]), (200, &json!(true)), "{state}");
    assert!(state["last_triggered"].is_string(), "{state}");

    // Still missing: not delivered again. A second alert with the same
    // condition, added now, fires in a later round and proves one happened.
    let witness = new_alert(
        &s,
        &t,
        json!({"trigger_type": "hit_rate", "trigger_threshold": 50, "delivery_config_id": config}),
    );
    assert!(
        eventually(WAIT, || {
            miss(&mut c);
            !r.of(witness).is_empty()
        }),
        "the witness alert was delivered"
    );
    assert_eq!(r.of(alert).len(), 1, "no second delivery while still low");

    // Hits: recovered (re-armed), which delivers nothing.
    assert!(
        eventually(WAIT, || {
            for _ in 0..5 {
                assert!(c.get("hot").is_some());
            }
            call(&s, &t, "GET", &format!("alerts/{alert}"), None).1["triggered"] == false
        }),
        "the alert recovered"
    );
    assert_eq!(r.of(alert).len(), 1);

    // Low again: delivered a second time.
    assert!(
        eventually(WAIT, || {
            miss(&mut c);
            r.of(alert).len() == 2
        }),
        "delivered again after recovering"
    );
    assert_eq!(r.of(alert)[1].body["alert_id"], alert);
}

#[test]
fn memory_usage_alert_fires_when_the_cache_fills() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), None);
    let t = tenant(&s, "small", "1MB");
    let r = Receiver::start();
    let config = webhook(&s, &t, &r);
    let alert = new_alert(
        &s,
        &t,
        json!({"trigger_type": "memory_usage", "trigger_threshold": 40, "delivery_config_id": config}),
    );
    let mut c = login(&s, &t);
    let value = vec![b'v'; 32 * 1024];
    let mut i = 0;
    assert!(
        eventually(WAIT, || {
            if i < 28 {
                i += 1;
                assert_eq!(c.set(&format!("k{i}"), &value), "STORED\r\n");
            }
            !r.of(alert).is_empty()
        }),
        "the alert was delivered"
    );
    let body = &r.of(alert)[0].body;
    assert_eq!(body["trigger_type"], "memory_usage");
    assert_eq!(body["trigger_threshold"], 40);
    assert_eq!(body["cache_name"], "small");
    let used = body["value"].as_f64().unwrap();
    assert!(used > 40.0 && used <= 100.0, "{body}");
    let bytes: u64 = c.stats("")["bytes"].parse().unwrap();
    assert!(bytes * 100 > 40 * (1 << 20), "bytes {bytes}");

    // Emptied: re-armed.
    assert_eq!(call(&s, &t, "POST", "flush", None).0, 204);
    assert!(
        eventually(WAIT, || call(
            &s,
            &t,
            "GET",
            &format!("alerts/{alert}"),
            None
        )
        .1["triggered"]
            == false),
        "the alert recovered"
    );
    assert_eq!(r.of(alert).len(), 1);
}

#[test]
fn email_alert_reaches_the_smtp_relay() {
    let (relay, mails) = smtp_receiver();
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), Some(&relay));
    let t = tenant(&s, "mailed", "8MB");
    let config = new_config(
        &s,
        &t,
        json!({"delivery_type": "email", "email": "ops@example.com"}),
    );
    // Memory usage above 0%: fires once anything is stored.
    let alert = new_alert(
        &s,
        &t,
        json!({"trigger_type": "memory_usage", "trigger_threshold": 0,
               "delivery_config_id": config, "description": "first byte"}),
    );
    let mut c = login(&s, &t);
    assert_eq!(c.set("k", b"value"), "STORED\r\n");
    assert!(
        eventually(WAIT, || !mails.lock().unwrap().is_empty()),
        "an email reached the relay"
    );
    let mail = mails.lock().unwrap()[0].clone();
    assert!(mail.from.contains("alerts@shoal.test"), "{mail:?}");
    assert_eq!(mail.to.len(), 1);
    assert!(mail.to[0].contains("ops@example.com"), "{mail:?}");
    assert!(
        mail.data
            .contains("Subject: [shoal] Cache mailed: memory usage alert"),
        "{}",
        mail.data
    );
    assert!(mail.data.contains("To: ops@example.com"), "{}", mail.data);
    assert!(mail.data.contains("Value: "), "{}", mail.data);
    assert!(mail.data.contains("first byte"), "{}", mail.data);
    assert!(
        mail.data.contains(&format!("Alert {alert} (memory_usage")),
        "{}",
        mail.data
    );
}

#[test]
fn disabled_alert_does_not_fire() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), None);
    let t = tenant(&s, "quiet", "8MB");
    let r = Receiver::start();
    let config = webhook(&s, &t, &r);
    // Threshold 100: any miss fires. One disabled, one enabled as a witness.
    let off = new_alert(
        &s,
        &t,
        json!({"trigger_type": "hit_rate", "trigger_threshold": 100,
               "delivery_config_id": config, "enabled": false}),
    );
    let on = new_alert(
        &s,
        &t,
        json!({"trigger_type": "hit_rate", "trigger_threshold": 100, "delivery_config_id": config}),
    );
    let mut c = login(&s, &t);
    let mut n = 0;
    let mut miss = |c: &mut Client| {
        n += 1;
        assert_eq!(c.get(&format!("missing-{n}")), None);
    };
    assert!(
        eventually(WAIT, || {
            miss(&mut c);
            !r.of(on).is_empty()
        }),
        "the enabled alert was delivered"
    );
    // Evaluated in the same rounds as the enabled one: never delivered.
    assert!(r.of(off).is_empty(), "{:?}", r.all());
    let (_, shown) = call(&s, &t, "GET", &format!("alerts/{off}"), None);
    assert_eq!(
        (&shown["triggered"], &shown["last_triggered"]),
        (&json!(false), &Value::Null)
    );

    // Enabled, it fires on the next misses.
    let (st, _) = call(
        &s,
        &t,
        "PUT",
        &format!("alerts/{off}"),
        Some(r#"{"enabled":true}"#),
    );
    assert_eq!(st, 201);
    assert!(
        eventually(WAIT, || {
            miss(&mut c);
            !r.of(off).is_empty()
        }),
        "delivered once enabled"
    );
}
