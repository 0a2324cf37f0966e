//! The admin endpoint over real HTTP, and the `shoal cache` / `shoal
//! credential` subcommands against it.
//!
//! Each test starts the endpoint in-process on 127.0.0.1:0 with a fresh data
//! dir, talks to it with a hand-written HTTP/1.1 client (independent of the
//! CLI's), and records the registry versions `on_change` receives.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{json, Value};
use shoal::admin::{self, AdminConfig, AdminHandle};
use shoal::cli::{self, CliError, Subcommand};
use shoal::tenancy::{Caps, ControlStore, Registry};

const SERVERS: &str = "127.0.0.1:21211";

struct Server {
    handle: AdminHandle,
    addr: SocketAddr,
    token: String,
    /// Every snapshot `on_change` was given, in order.
    seen: Arc<Mutex<Vec<Arc<Registry>>>>,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let store = ControlStore::open(dir).expect("open store");
        let token = store.operator_token().to_string();
        let seen: Arc<Mutex<Vec<Arc<Registry>>>> = Arc::default();
        let sink = seen.clone();
        let config = AdminConfig {
            servers: SERVERS.to_string(),
            ..AdminConfig::new("127.0.0.1:0".parse().unwrap())
        };
        let handle = admin::spawn_with(
            store,
            config,
            Box::new(move |r| sink.lock().unwrap().push(r)),
        )
        .expect("spawn");
        let addr = handle.local_addr();
        Server {
            handle,
            addr,
            token,
            seen,
        }
    }

    fn versions(&self) -> Vec<u64> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.version())
            .collect()
    }

    fn last(&self) -> Arc<Registry> {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("no change seen")
    }

    /// A request with the operator token.
    fn req(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let auth = format!("Bearer {}", self.token);
        http(
            self.addr,
            method,
            path,
            Some(&auth),
            body.map(|b| b.to_string()).as_deref(),
        )
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    head: String,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// One request on a fresh connection; the server closes it after answering.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    let body = body.unwrap_or("");
    req.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read response");
    let (head, text) = raw.split_once("\r\n\r\n").expect("response head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Resp {
        status,
        head: head.to_ascii_lowercase(),
        text: text.to_string(),
    }
}

fn create(s: &Server, name: &str, memory: Value) -> Value {
    let r = s.req(
        "POST",
        "/admin/v1/caches",
        Some(json!({"name": name, "memory": memory})),
    );
    assert_eq!(r.status, 201, "{r:?}");
    r.json()
}

#[test]
fn healthz_and_unknown_routes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let r = http(s.addr, "GET", "/healthz", None, None);
    assert_eq!((r.status, r.text.as_str()), (200, "ok"));
    let r = http(s.addr, "GET", "/nope", None, None);
    assert_eq!(r.status, 404);
    assert_eq!(r.error(), "not_found");
    assert!(s.versions().is_empty());
}

#[test]
fn operator_routes_need_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let id = create(&s, "web", json!("1MB"))["cache"]["id"]
        .as_u64()
        .unwrap();
    let user = s
        .req("GET", &format!("/admin/v1/caches/{id}/credentials"), None)
        .json()["credentials"][0]["username"]
        .as_str()
        .unwrap()
        .to_string();
    let before = s.versions();
    let routes = [
        (
            "POST",
            "/admin/v1/caches".to_string(),
            Some(r#"{"name":"x","memory":1048576}"#),
        ),
        ("GET", "/admin/v1/caches".to_string(), None),
        ("GET", format!("/admin/v1/caches/{id}"), None),
        (
            "PATCH",
            format!("/admin/v1/caches/{id}"),
            Some(r#"{"enabled":false}"#),
        ),
        ("DELETE", format!("/admin/v1/caches/{id}"), None),
        ("GET", format!("/admin/v1/caches/{id}/credentials"), None),
        (
            "POST",
            format!("/admin/v1/caches/{id}/credentials"),
            Some("{}"),
        ),
        (
            "PATCH",
            format!("/admin/v1/caches/{id}/credentials/{user}"),
            Some("{}"),
        ),
        (
            "DELETE",
            format!("/admin/v1/caches/{id}/credentials/{user}"),
            None,
        ),
        (
            "POST",
            format!("/admin/v1/caches/{id}/credentials/{user}/promote"),
            None,
        ),
    ];
    let wrong = format!("Bearer {}x", s.token);
    let truncated = format!("Bearer {}", &s.token[..s.token.len() - 1]);
    let basic = format!("Basic {}", s.token);
    for (method, path, body) in &routes {
        for auth in [
            None,
            Some("Bearer "),
            Some(wrong.as_str()),
            Some(truncated.as_str()),
            Some(basic.as_str()),
        ] {
            let r = http(s.addr, method, path, auth, *body);
            assert_eq!(r.status, 401, "{method} {path} with {auth:?}: {r:?}");
            assert_eq!(r.error(), "unauthorized");
            assert!(r.head.contains("www-authenticate: bearer"), "{r:?}");
        }
    }
    // Nothing changed.
    assert_eq!(s.versions(), before);
    let r = s.req("GET", &format!("/admin/v1/caches/{id}"), None);
    assert_eq!(r.json()["cache"]["enabled"], true);
    // Scheme is case-insensitive.
    let r = http(
        s.addr,
        "GET",
        "/admin/v1/caches",
        Some(&format!("bearer {}", s.token)),
        None,
    );
    assert_eq!(r.status, 200);
}

#[test]
fn cache_routes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());

    let created = create(&s, "web", json!("25MB"));
    let cache = &created["cache"];
    let id = cache["id"].as_u64().unwrap();
    assert_eq!(cache["name"], "web");
    assert_eq!(cache["memory_limit"], 25 * 1024 * 1024);
    assert_eq!(cache["enabled"], true);
    assert!(cache["created"].as_u64().unwrap() > 1_600_000_000);
    let cred = &created["credential"];
    assert_eq!(cred["cache_id"], id);
    assert_eq!(cred["primary"], true);
    assert_eq!(
        cred["caps"],
        json!({"write": true, "flush": true, "api": true})
    );
    assert_eq!(created["servers"], SERVERS);
    assert_eq!(
        created["env"],
        json!({
            "MEMCACHIER_SERVERS": SERVERS,
            "MEMCACHIER_USERNAME": cred["username"],
            "MEMCACHIER_PASSWORD": cred["password"],
        })
    );
    let id2 = create(&s, "api", json!(1_048_576))["cache"]["id"]
        .as_u64()
        .unwrap();
    assert_ne!(id, id2);

    // Bad creates.
    let bad = [
        (r#"{"name":"web","memory":"1MB"}"#, 409, "conflict"),
        (r#"{"name":"x","memory":"25XB"}"#, 400, "invalid"),
        (r#"{"name":"x","memory":0}"#, 400, "invalid"),
        (r#"{"name":"x","memory":-1}"#, 400, "invalid"),
        (r#"{"name":"x","memory":1}"#, 400, "invalid"),
        (r#"{"name":"x","memory":1048575}"#, 400, "invalid"),
        (
            r#"{"name":"x","memory":9223372036854775807}"#,
            400,
            "invalid",
        ),
        (r#"{"name":"x","memory":"2TB"}"#, 400, "invalid"),
        (r#"{"name":"x"}"#, 400, "invalid"),
        (r#"{"memory":"1MB"}"#, 400, "invalid"),
        (r#"{"name":"  ","memory":"1MB"}"#, 400, "invalid"),
        (r#"{"name":"x","memory":"1MB","extra":1}"#, 400, "invalid"),
        (r#"{"name":"x","#, 400, "invalid"),
        ("", 400, "invalid"),
    ];
    let auth = format!("Bearer {}", s.token);
    for (body, status, code) in bad {
        let r = http(s.addr, "POST", "/admin/v1/caches", Some(&auth), Some(body));
        assert_eq!(
            (r.status, r.error().as_str()),
            (status, code),
            "{body}: {r:?}"
        );
    }

    // List, sorted by id.
    let r = s.req("GET", "/admin/v1/caches", None);
    assert_eq!(r.status, 200);
    let list = r.json()["caches"].clone();
    let names: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "api"]);

    // Get one, with its credentials.
    let r = s.req("GET", &format!("/admin/v1/caches/{id}"), None);
    assert_eq!(r.status, 200);
    let got = r.json();
    assert_eq!(got["cache"], *cache);
    assert_eq!(got["credentials"], json!([cred]));
    assert_eq!(got["servers"], SERVERS);
    assert_eq!(s.req("GET", "/admin/v1/caches/999", None).status, 404);
    let r = s.req("GET", "/admin/v1/caches/abc", None);
    assert_eq!((r.status, r.error().as_str()), (400, "invalid"));
    assert_eq!(s.req("GET", "/admin/v1/caches/0", None).status, 400);

    // Patch.
    let path = format!("/admin/v1/caches/{id}");
    let r = s.req("PATCH", &path, Some(json!({"memory": "50MB"})));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["cache"]["memory_limit"], 50 << 20);
    assert_eq!(r.json()["cache"]["enabled"], true);
    let r = s.req("PATCH", &path, Some(json!({"enabled": false})));
    assert_eq!(r.json()["cache"]["enabled"], false);
    assert_eq!(r.json()["cache"]["memory_limit"], 50 << 20);
    let r = s.req(
        "PATCH",
        &path,
        Some(json!({"memory": 2_097_152, "enabled": true})),
    );
    assert_eq!(
        r.json()["cache"],
        json!({"id": id, "name": "web", "memory_limit": 2_097_152, "max_connections": 0, "enabled": true, "created": cache["created"]})
    );
    for body in [
        json!({}),
        json!({"memory": "0MB"}),
        json!({"memory": 2048}),
        json!({"memory": i64::MAX}),
        json!({"enabled": "yes"}),
        json!({"name": "new"}),
    ] {
        let r = s.req("PATCH", &path, Some(body.clone()));
        assert_eq!(r.status, 400, "{body}: {r:?}");
    }
    assert_eq!(
        s.req(
            "PATCH",
            "/admin/v1/caches/999",
            Some(json!({"enabled": false}))
        )
        .status,
        404
    );
    assert_eq!(
        s.req("GET", &path, None).json()["cache"]["memory_limit"],
        2_097_152
    );

    // Delete.
    let r = s.req("DELETE", &path, None);
    assert_eq!((r.status, r.text.as_str()), (204, ""));
    assert_eq!(s.req("DELETE", &path, None).status, 404);
    assert_eq!(s.req("GET", &path, None).status, 404);
    assert_eq!(
        s.req("GET", &format!("{path}/credentials"), None).status,
        404
    );
    let list = s.req("GET", "/admin/v1/caches", None).json();
    assert_eq!(list["caches"].as_array().unwrap().len(), 1);
    // Ids are not reused.
    let id3 = create(&s, "web", json!("1MB"))["cache"]["id"]
        .as_u64()
        .unwrap();
    assert!(id3 > id2);
}

#[test]
fn credential_routes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let created = create(&s, "web", json!("1MB"));
    let id = created["cache"]["id"].as_u64().unwrap();
    let primary = created["credential"]["username"]
        .as_str()
        .unwrap()
        .to_string();
    let base = format!("/admin/v1/caches/{id}/credentials");

    // Add: every capability unless switched off; not primary.
    let r = s.req("POST", &base, None);
    assert_eq!(r.status, 201, "{r:?}");
    let second = r.json()["credential"].clone();
    assert_eq!(
        second["caps"],
        json!({"write": true, "flush": true, "api": true})
    );
    assert_eq!(second["primary"], false);
    assert_eq!(second["cache_id"], id);
    let user2 = second["username"].as_str().unwrap().to_string();
    assert_ne!(user2, primary);
    assert_ne!(second["password"], created["credential"]["password"]);
    let r = s.req("POST", &base, Some(json!({"write": false, "flush": false})));
    assert_eq!(r.status, 201);
    let third = r.json()["credential"].clone();
    assert_eq!(
        third["caps"],
        json!({"write": false, "flush": false, "api": true})
    );
    let user3 = third["username"].as_str().unwrap().to_string();
    assert_eq!(
        s.req("POST", &base, Some(json!({"read": true}))).status,
        400
    );
    assert_eq!(
        s.req("POST", "/admin/v1/caches/999/credentials", None)
            .status,
        404
    );

    // List.
    let r = s.req("GET", &base, None);
    assert_eq!(r.status, 200);
    let creds = r.json()["credentials"].clone();
    let mut users: Vec<_> = creds
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["username"].as_str().unwrap())
        .collect();
    users.sort();
    let mut want = vec![primary.as_str(), user2.as_str(), user3.as_str()];
    want.sort();
    assert_eq!(users, want);
    assert_eq!(
        s.req("GET", "/admin/v1/caches/999/credentials", None)
            .status,
        404
    );

    // Capabilities: the whole set, omitted = off.
    let r = s.req(
        "PATCH",
        &format!("{base}/{user2}"),
        Some(json!({"write": true})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json()["credential"]["caps"],
        json!({"write": true, "flush": false, "api": false})
    );
    let r = s.req(
        "PATCH",
        &format!("{base}/{user3}"),
        Some(json!({"write": true, "flush": true, "api": false})),
    );
    assert_eq!(
        r.json()["credential"]["caps"],
        json!({"write": true, "flush": true, "api": false})
    );
    assert_eq!(
        s.req("PATCH", &format!("{base}/NOSUCH"), Some(json!({})))
            .status,
        404
    );
    assert_eq!(
        s.req(
            "PATCH",
            &format!("{base}/{user2}"),
            Some(json!({"write": 1}))
        )
        .status,
        400
    );
    // A credential is only reachable through its own cache.
    let other = create(&s, "other", json!("1MB"))["cache"]["id"]
        .as_u64()
        .unwrap();
    let r = s.req(
        "PATCH",
        &format!("/admin/v1/caches/{other}/credentials/{user2}"),
        Some(json!({})),
    );
    assert_eq!(r.status, 404);

    // Promote.
    let r = s.req("POST", &format!("{base}/{user2}/promote"), None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["credential"]["username"], user2.as_str());
    assert_eq!(r.json()["credential"]["primary"], true);
    let creds = s.req("GET", &base, None).json()["credentials"].clone();
    let primaries: Vec<_> = creds
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["primary"] == true)
        .map(|c| c["username"].as_str().unwrap())
        .collect();
    assert_eq!(primaries, [user2.as_str()]);
    assert_eq!(
        s.req("POST", &format!("{base}/NOSUCH/promote"), None)
            .status,
        404
    );

    // Remove: not the primary.
    let r = s.req("DELETE", &format!("{base}/{user2}"), None);
    assert_eq!((r.status, r.error().as_str()), (409, "conflict"));
    let r = s.req("DELETE", &format!("{base}/{primary}"), None);
    assert_eq!((r.status, r.text.as_str()), (204, ""));
    assert_eq!(
        s.req("DELETE", &format!("{base}/{primary}"), None).status,
        404
    );
    let creds = s.req("GET", &base, None).json()["credentials"].clone();
    assert_eq!(creds.as_array().unwrap().len(), 2);

    // The snapshot handed to the runtime agrees.
    let reg = s.last();
    let pass2 = second["password"].as_str().unwrap();
    let session = reg
        .authenticate(user2.as_bytes(), pass2.as_bytes())
        .expect("user2 authenticates");
    assert_eq!(u64::from(session.cache_id), id);
    assert_eq!(
        session.caps,
        Caps {
            write: true,
            flush: false,
            api: false
        }
    );
    let pass1 = created["credential"]["password"].as_str().unwrap();
    assert!(reg
        .authenticate(primary.as_bytes(), pass1.as_bytes())
        .is_none());
}

#[test]
fn on_change_gets_each_committed_snapshot_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut expected = 0;
    fn check(s: &Server, expected: &mut usize, changed: bool) {
        if changed {
            *expected += 1;
        }
        let v = s.versions();
        assert_eq!(v.len(), *expected, "{v:?}");
        assert!(
            v.windows(2).all(|w| w[0] < w[1]),
            "versions must increase: {v:?}"
        );
    }
    let created = create(&s, "web", json!("1MB"));
    check(&s, &mut expected, true);
    let id = created["cache"]["id"].as_u64().unwrap();
    let (user, pass) = (
        created["credential"]["username"]
            .as_str()
            .unwrap()
            .to_string(),
        created["credential"]["password"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    assert!(s
        .last()
        .authenticate(user.as_bytes(), pass.as_bytes())
        .is_some());
    // Reads and failed changes are not announced.
    s.req("GET", "/admin/v1/caches", None);
    s.req("GET", &format!("/admin/v1/caches/{id}"), None);
    assert_eq!(
        s.req(
            "POST",
            "/admin/v1/caches",
            Some(json!({"name": "web", "memory": "1MB"}))
        )
        .status,
        409
    );
    assert_eq!(s.req("DELETE", "/admin/v1/caches/999", None).status, 404);
    check(&s, &mut expected, false);

    s.req(
        "PATCH",
        &format!("/admin/v1/caches/{id}"),
        Some(json!({"enabled": false})),
    );
    check(&s, &mut expected, true);
    assert!(s
        .last()
        .authenticate(user.as_bytes(), pass.as_bytes())
        .is_none());
    // One request changing two things is still announced in order.
    s.req(
        "PATCH",
        &format!("/admin/v1/caches/{id}"),
        Some(json!({"enabled": true, "memory": "2MB"})),
    );
    let v = s.versions();
    assert!(
        v.len() > expected && v.windows(2).all(|w| w[0] < w[1]),
        "{v:?}"
    );
    expected = v.len();
    let reg = s.last();
    assert!(reg.authenticate(user.as_bytes(), pass.as_bytes()).is_some());
    assert_eq!(reg.cache(id as u32).unwrap().memory_limit, 2 << 20);
    let cred = s
        .req("POST", &format!("/admin/v1/caches/{id}/credentials"), None)
        .json()["credential"]
        .clone();
    check(&s, &mut expected, true);
    let user2 = cred["username"].as_str().unwrap();
    s.req(
        "PATCH",
        &format!("/admin/v1/caches/{id}/credentials/{user2}"),
        Some(json!({"api": true})),
    );
    check(&s, &mut expected, true);
    s.req(
        "POST",
        &format!("/admin/v1/caches/{id}/credentials/{user2}/promote"),
        None,
    );
    check(&s, &mut expected, true);
    s.req(
        "DELETE",
        &format!("/admin/v1/caches/{id}/credentials/{user}"),
        None,
    );
    check(&s, &mut expected, true);
    s.req("DELETE", &format!("/admin/v1/caches/{id}"), None);
    check(&s, &mut expected, true);
    assert!(s.last().cache(id as u32).is_none());

    // The last announced version is the one the store persisted.
    let last = *s.versions().last().unwrap();
    s.handle.shutdown();
    let reopened = ControlStore::open(dir.path()).unwrap();
    assert_eq!(reopened.registry().version(), last);
}

#[test]
fn changes_persist_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let token = s.token.clone();
    let a = create(&s, "alpha", json!("10MB"));
    let b = create(&s, "beta", json!("20MB"));
    let (ida, idb) = (
        a["cache"]["id"].as_u64().unwrap(),
        b["cache"]["id"].as_u64().unwrap(),
    );
    s.req(
        "PATCH",
        &format!("/admin/v1/caches/{ida}"),
        Some(json!({"enabled": false, "memory": "15MB"})),
    );
    let extra = s
        .req(
            "POST",
            &format!("/admin/v1/caches/{idb}/credentials"),
            Some(json!({"flush": false})),
        )
        .json()["credential"]
        .clone();
    let extra_user = extra["username"].as_str().unwrap().to_string();
    s.req(
        "POST",
        &format!("/admin/v1/caches/{idb}/credentials/{extra_user}/promote"),
        None,
    );
    let before_a = s
        .req("GET", &format!("/admin/v1/caches/{ida}"), None)
        .json();
    let before_b = s
        .req("GET", &format!("/admin/v1/caches/{idb}"), None)
        .json();
    s.handle.shutdown();

    // The store itself, reopened.
    let store = ControlStore::open(dir.path()).unwrap();
    assert_eq!(store.operator_token(), token);
    let ca = store.cache(ida as u32).unwrap();
    assert_eq!(
        (ca.name.as_str(), ca.memory_limit, ca.enabled),
        ("alpha", 15 << 20, false)
    );
    let creds = store.credentials(idb as u32);
    assert_eq!(creds.len(), 2);
    let e = creds.iter().find(|c| c.username == extra_user).unwrap();
    assert!(e.primary);
    assert_eq!(
        e.caps,
        Caps {
            write: true,
            flush: false,
            api: true
        }
    );
    drop(store);

    // And served again by a new endpoint: the same answers.
    let s = Server::start(dir.path());
    assert_eq!(s.token, token);
    assert_eq!(
        s.req("GET", &format!("/admin/v1/caches/{ida}"), None)
            .json(),
        before_a
    );
    assert_eq!(
        s.req("GET", &format!("/admin/v1/caches/{idb}"), None)
            .json(),
        before_b
    );
}

#[test]
fn shutdown_is_prompt_with_an_idle_keepalive_client() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut conn = TcpStream::connect(s.addr).unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 512];
    let n = conn.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let started = Instant::now();
    s.handle.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The store (and its data-dir lock) was released.
    ControlStore::open(dir.path()).expect("reopen after shutdown");
}

#[test]
fn bind_errors_are_returned() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let other = tempfile::tempdir().unwrap();
    let store = ControlStore::open(other.path()).unwrap();
    let err = admin::spawn(store, s.addr, Box::new(|_| {}));
    assert!(err.is_err());
}

// ---- the CLI ----

/// How main.rs embeds the subcommands: next to the server's own flags,
/// including its own `--data-dir`.
#[derive(Parser, Debug)]
#[command(name = "shoal")]
struct TestCli {
    #[arg(short = 'p', long = "port")]
    port: Option<u16>,
    #[arg(long = "data-dir")]
    data_dir: Option<std::path::PathBuf>,
    #[arg(long = "multi-tenant")]
    multi_tenant: bool,
    #[command(subcommand)]
    command: Option<Subcommand>,
}

fn parse(args: &[&str]) -> Result<Subcommand, clap::Error> {
    let cli = TestCli::try_parse_from(std::iter::once("shoal").chain(args.iter().copied()))?;
    Ok(cli.command.expect("a subcommand"))
}

/// Runs `shoal <args> --admin ADDR --data-dir DIR` and returns its output.
fn run_cli(s: &Server, dir: &Path, args: &[&str]) -> Result<String, CliError> {
    let addr = s.addr.to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--admin", &addr, "--data-dir", dir.to_str().unwrap()]);
    let cmd = parse(&all).unwrap_or_else(|e| panic!("{all:?}: {e}"));
    let mut out = Vec::new();
    cli::execute(&cmd, &mut out)?;
    Ok(String::from_utf8(out).unwrap())
}

fn ok(s: &Server, dir: &Path, args: &[&str]) -> String {
    run_cli(s, dir, args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

#[test]
fn cli_parsing() {
    let ok = |a: &[&str]| parse(a).unwrap_or_else(|e| panic!("{a:?}: {e}"));
    let bad = |a: &[&str]| assert!(parse(a).is_err(), "{a:?} should not parse");
    ok(&["cache", "create", "--name", "web", "--memory", "25MB"]);
    ok(&[
        "cache",
        "create",
        "--name",
        "web",
        "--memory",
        "25MB",
        "--data-dir",
        "/x",
        "--admin",
        "h:1",
    ]);
    ok(&["cache", "--admin", "h:1", "list"]);
    ok(&["cache", "set", "--id", "3", "--disable"]);
    ok(&["cache", "set", "--id", "3", "--memory", "1GB", "--enable"]);
    ok(&[
        "credential",
        "add",
        "--cache",
        "3",
        "--no-write",
        "--no-api",
    ]);
    ok(&[
        "credential",
        "caps",
        "--cache",
        "3",
        "ABCDEF",
        "--write",
        "true",
        "--flush",
        "false",
        "--api",
        "true",
    ]);
    ok(&[
        "credential",
        "caps",
        "--cache",
        "3",
        "ABCDEF",
        "--write",
        "no",
    ]);
    bad(&["cache", "create", "--name", "web"]);
    bad(&["cache", "create", "--name", "web", "--memory", "25XB"]);
    bad(&["cache", "set", "--id", "3"]);
    bad(&["cache", "set", "--id", "3", "--enable", "--disable"]);
    bad(&["cache", "delete", "x"]);
    bad(&["credential", "caps", "--cache", "3", "ABCDEF"]);
    bad(&[
        "credential",
        "caps",
        "--cache",
        "3",
        "ABCDEF",
        "--write",
        "maybe",
    ]);
    bad(&["credential", "remove", "--cache", "3"]);
    // The server's own flags still parse without a subcommand.
    let cli = TestCli::try_parse_from(["shoal", "--multi-tenant", "--data-dir", "/d", "-p", "1"])
        .unwrap();
    assert!(cli.command.is_none() && cli.multi_tenant && cli.port == Some(1));
    let mut sub = parse(&["cache", "create", "--name", "w", "--memory", "25MB"]).unwrap();
    assert!(matches!(sub, Subcommand::Cache(_)));
    let admin = sub.admin_mut();
    assert_eq!(admin.admin, "127.0.0.1:11299");
    assert_eq!(
        (admin.data_dir.as_deref(), admin.data_dir()),
        (None, Path::new("./shoal-data"))
    );
    admin.data_dir = Some("/top".into());
    assert_eq!(sub.admin_mut().data_dir(), Path::new("/top"));
    let mut sub = parse(&["credential", "list", "--cache", "1", "--data-dir", "/d"]).unwrap();
    assert_eq!(sub.admin_mut().data_dir(), Path::new("/d"));
}

#[test]
fn cli_commands_against_a_live_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let d = dir.path();

    // cache create: id and the three lines an app needs.
    let out = ok(
        &s,
        d,
        &["cache", "create", "--name", "web", "--memory", "25MB"],
    );
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("Created cache ") && first.contains("web") && first.contains("25 MiB"),
        "{out}"
    );
    let id: u32 = first["Created cache ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(cli::output_value(&out, "MEMCACHIER_SERVERS"), Some(SERVERS));
    let user = cli::output_value(&out, "MEMCACHIER_USERNAME")
        .unwrap()
        .to_string();
    let pass = cli::output_value(&out, "MEMCACHIER_PASSWORD")
        .unwrap()
        .to_string();
    assert!(s
        .last()
        .authenticate(user.as_bytes(), pass.as_bytes())
        .is_some());
    let api = s.req("GET", &format!("/admin/v1/caches/{id}"), None).json();
    assert_eq!(api["cache"]["memory_limit"], 25 << 20);
    assert_eq!(api["credentials"][0]["username"], user.as_str());

    // list / show, text and JSON.
    ok(
        &s,
        d,
        &[
            "cache",
            "create",
            "--name",
            "second-cache",
            "--memory",
            "1048576",
        ],
    );
    let out = ok(&s, d, &["cache", "list"]);
    let lines: Vec<_> = out.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("NAME"),
        "{out}"
    );
    assert!(
        lines[1].starts_with(&id.to_string())
            && lines[1].contains("web")
            && lines[1].contains("enabled")
    );
    assert!(
        lines[2].contains("second-cache") && lines[2].contains("1 MiB"),
        "{out}"
    );
    let listed: Value = serde_json::from_str(&ok(&s, d, &["cache", "list", "--json"])).unwrap();
    assert_eq!(listed["caches"].as_array().unwrap().len(), 2);
    let out = ok(&s, d, &["cache", "show", &id.to_string()]);
    assert!(
        out.contains(&user) && out.contains(&pass) && out.contains("MEMCACHIER_SERVERS="),
        "{out}"
    );

    // set.
    let out = ok(
        &s,
        d,
        &[
            "cache",
            "set",
            "--id",
            &id.to_string(),
            "--memory",
            "50MB",
            "--disable",
        ],
    );
    assert!(out.contains("50 MiB") && out.contains("disabled"), "{out}");
    assert!(s
        .last()
        .authenticate(user.as_bytes(), pass.as_bytes())
        .is_none());
    let out = ok(
        &s,
        d,
        &["cache", "set", "--id", &id.to_string(), "--enable"],
    );
    assert!(out.contains("50 MiB") && out.contains("enabled"), "{out}");

    // credential add / list / caps / promote / remove.
    let out = ok(
        &s,
        d,
        &[
            "credential",
            "add",
            "--cache",
            &id.to_string(),
            "--no-flush",
        ],
    );
    assert!(out.contains("write=true flush=false api=true"), "{out}");
    let user2 = cli::output_value(&out, "MEMCACHIER_USERNAME")
        .unwrap()
        .to_string();
    let pass2 = cli::output_value(&out, "MEMCACHIER_PASSWORD")
        .unwrap()
        .to_string();
    let sess = s
        .last()
        .authenticate(user2.as_bytes(), pass2.as_bytes())
        .unwrap();
    assert!(sess.caps.write && !sess.caps.flush && sess.caps.api);
    let out = ok(&s, d, &["credential", "list", "--cache", &id.to_string()]);
    assert!(
        out.contains(&user) && out.contains(&user2) && out.lines().count() == 3,
        "{out}"
    );
    // Only the given capabilities change.
    let out = ok(
        &s,
        d,
        &[
            "credential",
            "caps",
            "--cache",
            &id.to_string(),
            &user2,
            "--write",
            "false",
        ],
    );
    assert!(out.contains("write=false flush=false api=true"), "{out}");
    let out = ok(
        &s,
        d,
        &[
            "credential",
            "caps",
            "--cache",
            &id.to_string(),
            &user2,
            "--flush",
            "true",
            "--api",
            "false",
        ],
    );
    assert!(out.contains("write=false flush=true api=false"), "{out}");
    let out = ok(
        &s,
        d,
        &["credential", "promote", "--cache", &id.to_string(), &user2],
    );
    assert!(out.contains(&user2) && out.contains("primary"), "{out}");
    let out = ok(
        &s,
        d,
        &["credential", "remove", "--cache", &id.to_string(), &user],
    );
    assert!(out.contains(&user), "{out}");
    assert!(s
        .last()
        .authenticate(user.as_bytes(), pass.as_bytes())
        .is_none());

    // Errors come back with the API's status.
    let err = |args: &[&str]| match run_cli(&s, d, args) {
        Err(CliError::Api { status, .. }) => status,
        other => panic!("{args:?}: {other:?}"),
    };
    assert_eq!(
        err(&["credential", "remove", "--cache", &id.to_string(), &user2]),
        409
    );
    assert_eq!(
        err(&[
            "credential",
            "caps",
            "--cache",
            &id.to_string(),
            "NOSUCH",
            "--api",
            "true"
        ]),
        404
    );
    assert_eq!(err(&["cache", "delete", "999"]), 404);
    assert_eq!(
        err(&["cache", "create", "--name", "web", "--memory", "1MB"]),
        409
    );
    let out = ok(&s, d, &["cache", "delete", &id.to_string()]);
    assert_eq!(out, format!("Deleted cache {id}.\n"));
    assert_eq!(err(&["cache", "show", &id.to_string()]), 404);

    // A wrong token file is a 401; no token file, or no endpoint, is a clear error.
    let wrong = tempfile::tempdir().unwrap();
    std::fs::write(wrong.path().join("operator.token"), "not-the-token\n").unwrap();
    match run_cli(&s, wrong.path(), &["cache", "list"]) {
        Err(e @ CliError::Api { status: 401, .. }) => assert!(e.to_string().contains("token")),
        other => panic!("{other:?}"),
    }
    let empty = tempfile::tempdir().unwrap();
    match run_cli(&s, empty.path(), &["cache", "list"]) {
        Err(CliError::Other(m)) => assert!(m.contains("operator.token"), "{m}"),
        other => panic!("{other:?}"),
    }
    let cmd = parse(&[
        "cache",
        "list",
        "--admin",
        "127.0.0.1:1",
        "--data-dir",
        d.to_str().unwrap(),
    ])
    .unwrap();
    match cli::execute(&cmd, &mut Vec::new()) {
        Err(CliError::Other(m)) => assert!(m.contains("cannot reach"), "{m}"),
        other => panic!("{other:?}"),
    }

    // SHOAL_ADMIN_TOKEN overrides the file. (The only test that touches the
    // variable, and the last thing this one does.)
    std::env::set_var(cli::TOKEN_ENV, &s.token);
    let listed = run_cli(&s, wrong.path(), &["cache", "list"]);
    std::env::remove_var(cli::TOKEN_ENV);
    assert!(listed.unwrap().contains("second-cache"));
    assert_eq!(
        cli::run_subcommand(
            parse(&[
                "cache",
                "delete",
                "999",
                "--admin",
                &s.addr.to_string(),
                "--data-dir",
                d.to_str().unwrap()
            ])
            .unwrap()
        ),
        1
    );
}
