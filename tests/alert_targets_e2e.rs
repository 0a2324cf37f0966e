//! Where alert webhooks may point, against a running multi-tenant server:
//! without `--alert-allow-private`, URLs reaching loopback, private,
//! link-local and other non-public addresses are refused when the delivery
//! config is created and again when an alert is sent; with it they work.

mod common;
use common::{eventually, Cred, Server};
use serde_json::{json, Value};
use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A TCP listener on 127.0.0.1 counting the requests that reach it (each
/// is answered 200 and closed).
struct Hook {
    url: String,
    hits: Arc<AtomicUsize>,
}

impl Hook {
    fn start() -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&hits);
        std::thread::spawn(move || {
            for mut conn in listener.incoming().map_while(Result::ok) {
                use std::io::Write;
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                seen.fetch_add(1, Ordering::SeqCst);
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        });
        Hook { url, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn config(s: &Server, t: &Cred, url: &str) -> (u16, Value) {
    let body = json!({"delivery_type": "webhook", "slack_url": url}).to_string();
    s.api_v2(
        "POST",
        &format!("/caches/{}/alerts/configs", t.cache),
        t.basic(),
        Some(&body),
    )
}

fn alert(s: &Server, t: &Cred, config: u64) -> u64 {
    let body = json!({"trigger_type": "hit_rate", "trigger_threshold": 50,
                      "delivery_config_id": config})
    .to_string();
    let (st, a) = s.api_v2(
        "POST",
        &format!("/caches/{}/alerts", t.cache),
        t.basic(),
        Some(&body),
    );
    assert_eq!(st, 201, "{a}");
    a["id"].as_u64().unwrap()
}

fn triggered(s: &Server, t: &Cred, id: u64) -> bool {
    let path = format!("/caches/{}/alerts/{id}", t.cache);
    s.api_v2("GET", &path, t.basic(), None).1["triggered"] == true
}

/// Misses on `t`'s cache until alert `id` shows as triggered.
fn fire(s: &Server, t: &Cred, id: u64) {
    let mut c = s.login(&t.user, &t.pass);
    let mut n = 0;
    assert!(
        eventually(Duration::from_secs(15), || {
            n += 1;
            assert_eq!(c.get(&format!("missing-{n}")), None);
            triggered(s, t, id)
        }),
        "the alert fired"
    );
}

fn server(dir: &std::path::Path, allow_private: bool) -> Server {
    let mut args = vec!["--stats-interval", "0.2"];
    if allow_private {
        args.push("--alert-allow-private");
    }
    Server::start_mt(1, dir, &args)
}

#[test]
fn private_targets_are_refused_at_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), false);
    let t = s.create_cache("ssrf", "8MB");
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://[::1]:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://192.168.1.1/hook",
        "http://172.16.0.1/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0:9/hook",
        "http://[fd00::1]/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://224.0.0.1/hook",
        "https://user@127.0.0.1/hook",
    ] {
        let (st, body) = config(&s, &t, url);
        assert_eq!(st, 400, "{url}: {body}");
        let msg = body["message"].as_str().unwrap_or_default();
        assert!(msg.contains("--alert-allow-private"), "{url}: {body}");
    }
    let slack = json!({"delivery_type": "slack", "slack_url": "http://127.0.0.1:9/"}).to_string();
    let path = format!("/caches/{}/alerts/configs", t.cache);
    assert_eq!(s.api_v2("POST", &path, t.basic(), Some(&slack)).0, 400);
    // Nothing was stored; a public address is still accepted.
    assert_eq!(s.api_v2("GET", &path, t.basic(), None).1, json!([]));
    assert_eq!(config(&s, &t, "https://1.1.1.1/hook").0, 201);
}

#[test]
fn private_targets_work_with_the_flag_and_are_refused_at_send_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Hook::start();
    let (t, id) = {
        let s = server(dir.path(), true);
        let t = s.create_cache("hooks", "8MB");
        let (st, cfg) = config(&s, &t, &hook.url);
        assert_eq!(st, 201, "{cfg}");
        let id = alert(&s, &t, cfg["id"].as_u64().unwrap());
        fire(&s, &t, id);
        assert!(
            eventually(Duration::from_secs(10), || hook.hits() == 1),
            "delivered to 127.0.0.1 with --alert-allow-private"
        );
        assert!(s.terminate(), "clean stop");
        (t, id)
    };
    // The same stored config on a server without the flag: the alert fires
    // (firing state is not kept over a restart) but nothing is sent.
    let s = server(dir.path(), false);
    fire(&s, &t, id);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        hook.hits(),
        1,
        "sent to 127.0.0.1 without --alert-allow-private"
    );
}
