//! The MemCachier API v2 subset (`/api/v2/caches/:id/...`) against a running
//! multi-tenant server with real traffic: status codes, bodies, and numbers
//! that agree with `stats` on a data connection of the same cache.

mod common;
use common::{eventually, line_value as value, Client, Cred, Server};
use serde_json::Value;
use std::time::Duration;

fn create(s: &Server, name: &str) -> Cred {
    s.create_cache(name, "8MB")
}

/// One API v2 request (see `Server::api_v2`).
fn api(
    s: &Server,
    method: &str,
    path: &str,
    auth: Option<(&str, &str)>,
    body: Option<&str>,
) -> (u16, Value) {
    s.api_v2(method, path, auth, body)
}

fn login(s: &Server, user: &str, pass: &str) -> Client {
    s.login(user, pass)
}

fn api_v2_routes(cores: usize) {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_mt(cores, dir.path(), &[]);
    let a = create(&s, "alpha");
    let b = create(&s, "beta");
    let me = Some((a.user.as_str(), a.pass.as_str()));
    let path = |rest: &str| format!("/caches/{}/{rest}", a.cache);

    // Authentication and authorization.
    assert_eq!(api(&s, "GET", "/caches/abc/info", me, None).0, 400);
    assert_eq!(api(&s, "GET", &path("info"), None, None).0, 401);
    assert_eq!(
        api(&s, "GET", &path("info"), Some((&a.user, "wrong")), None).0,
        401
    );
    assert_eq!(
        api(&s, "GET", &path("info"), Some((&b.user, &b.pass)), None).0,
        403,
        "another cache's credential"
    );
    let no_api = s
        .ctl(&[
            "credential",
            "add",
            "--cache",
            &a.cache.to_string(),
            "--no-api",
        ])
        .unwrap();
    let (na_user, na_pass) = (
        value(&no_api, "MEMCACHIER_USERNAME="),
        value(&no_api, "MEMCACHIER_PASSWORD="),
    );
    assert_eq!(
        api(&s, "GET", &path("info"), Some((&na_user, &na_pass)), None).0,
        403,
        "no api capability"
    );

    // info and the credential list.
    let (st, info) = api(&s, "GET", &path("info"), me, None);
    assert_eq!(st, 200);
    assert_eq!(info["id"], a.cache);
    assert_eq!(info["name"], "alpha");
    assert_eq!(info["plan"], 8u64 << 20);
    assert_eq!(info["enabled"], true);
    assert_eq!(info["servers"][0], s.addr.to_string());
    let (st, list) = api(&s, "GET", &path("credentials"), me, None);
    assert_eq!(st, 200);
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    let primary = list.iter().find(|c| c["primary"] == true).unwrap();
    assert_eq!(primary["sasl_username"], a.user.as_str());
    assert_eq!(primary["sasl_password"], a.pass.as_str());

    // Create, restrict (omitted capabilities become false), promote, delete.
    let (st, new) = api(&s, "POST", &path("credentials"), me, None);
    assert_eq!(st, 201);
    let (nu, np) = (
        new["sasl_username"].as_str().unwrap().to_string(),
        new["sasl_password"].as_str().unwrap().to_string(),
    );
    assert_eq!(new["write_capability"], true);
    let mut c = login(&s, &nu, &np);
    let (st, caps) = api(
        &s,
        "PATCH",
        &path(&format!("credentials/{nu}")),
        me,
        Some(r#"{"write_capability":true}"#),
    );
    assert_eq!(st, 200);
    assert_eq!(
        caps,
        serde_json::json!({"write_capability": true, "flush_capability": false, "api_capability": false})
    );
    assert!(
        eventually(Duration::from_secs(3), || c.call("flush_all\r\n")
            == "CLIENT_ERROR flush_all not allowed\r\n"),
        "the capability change reached the live connection"
    );
    let (st, promoted) = api(
        &s,
        "POST",
        &path(&format!("credentials/primary/{nu}")),
        me,
        None,
    );
    assert_eq!((st, promoted["primary"].clone()), (200, Value::Bool(true)));
    let (st, _) = api(
        &s,
        "POST",
        &path(&format!("credentials/primary/{}", a.user)),
        me,
        None,
    );
    assert_eq!(st, 200);
    assert_eq!(
        api(&s, "DELETE", &path(&format!("credentials/{nu}")), me, None).0,
        200
    );
    assert!(c.closed() || c.call("get x\r\n").is_empty(), "revoked");

    // POST with a body: the capabilities asked for (an omitted one on);
    // a body that is not that object is refused, never ignored.
    let (st, ro) = api(
        &s,
        "POST",
        &path("credentials"),
        me,
        Some(r#"{"write_capability":false,"flush_capability":false}"#),
    );
    assert_eq!(st, 201, "{ro}");
    assert_eq!(
        (
            ro["write_capability"].clone(),
            ro["flush_capability"].clone(),
            ro["api_capability"].clone()
        ),
        (Value::Bool(false), Value::Bool(false), Value::Bool(true)),
        "{ro}"
    );
    let mut r = login(
        &s,
        ro["sasl_username"].as_str().unwrap(),
        ro["sasl_password"].as_str().unwrap(),
    );
    assert_eq!(r.call("set k 0 0 1\r\nv\r\n"), "NOT_STORED\r\n");
    let before = api(&s, "GET", &path("credentials"), me, None)
        .1
        .as_array()
        .unwrap()
        .len();
    for bad in [
        r#"{"read_only":true}"#,
        r#"{"write_capability":"no"}"#,
        "not json",
        "[]",
    ] {
        let (st, body) = api(&s, "POST", &path("credentials"), me, Some(bad));
        assert_eq!(st, 400, "{bad}: {body}");
    }
    let after = api(&s, "GET", &path("credentials"), me, None)
        .1
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "a refused POST creates nothing");
    assert_eq!(
        api(&s, "DELETE", &path("credentials/FFFFFF"), me, None).0,
        404
    );

    // Stats agree with `stats` on a data connection.
    let mut d = login(&s, &a.user, &a.pass);
    for k in ["k1", "k2", "k3"] {
        assert_eq!(d.set(k, b"v"), "STORED\r\n");
    }
    for k in ["k1", "k2", "k3", "nope1", "nope2"] {
        d.get(k);
    }
    let data = d.stats("");
    let (st, stats) = api(&s, "GET", &path("stats"), me, None);
    assert_eq!(st, 200);
    // One object per server, keyed by its host:port (MemCachier's shape).
    let servers = stats.as_object().unwrap();
    assert_eq!(servers.len(), 1, "{stats}");
    let stats = servers[&s.addr.to_string()].clone();
    for name in ["get_hits", "get_misses", "cmd_get", "cmd_set", "curr_items"] {
        assert_eq!(
            stats[name].as_u64().unwrap().to_string(),
            data[name],
            "{name} via the API vs stats"
        );
    }
    assert_eq!(stats["get_hits"], 3);
    assert_eq!(stats["limit_maxbytes"], 8u64 << 20);
    let (st, bs) = api(
        &s,
        "GET",
        &format!("/caches/{}/stats", b.cache),
        Some((&b.user, &b.pass)),
        None,
    );
    let bs = bs.as_object().unwrap().values().next().unwrap().clone();
    assert_eq!(
        (st, bs["get_hits"].clone()),
        (200, Value::from(0)),
        "per cache"
    );

    // reset_stats and flush (the deploy hook): 204, effective on return.
    assert_eq!(api(&s, "POST", &path("reset_stats"), me, None).0, 204);
    assert_eq!(d.stats("")["get_hits"], "0");
    let mut other = login(&s, &b.user, &b.pass);
    assert_eq!(other.set("k1", b"beta"), "STORED\r\n");
    assert_eq!(api(&s, "POST", &path("flush"), me, None).0, 204);
    for k in ["k1", "k2", "k3"] {
        assert_eq!(d.get(k), None, "{k} flushed");
    }
    assert_eq!(
        other.get("k1").map(|v| v.1),
        Some(b"beta".to_vec()),
        "other cache kept"
    );

    // enable_cache: a disabled cache's API credential turns it back on.
    s.ctl(&["cache", "set", "--id", &a.cache.to_string(), "--disable"])
        .unwrap();
    assert_eq!(api(&s, "POST", &path("enable_cache"), me, None).0, 200);
    let mut back = login(&s, &a.user, &a.pass);
    assert_eq!(back.set("again", b"1"), "STORED\r\n");
}

at_1_and_2_cores! {
    routes => api_v2_routes;
}

/// The routes of the API v2 routers, read from their sources: (path as the
/// OpenAPI document writes it, lower-case method).
fn api_v2_routes_in_source() -> Vec<(String, String)> {
    let sources = [
        (
            include_str!("../src/admin/api_v2.rs"),
            "fn router()",
            "/api/v2",
        ),
        (
            include_str!("../src/admin/insight.rs"),
            "fn router()",
            "/api/v2",
        ),
        (
            include_str!("../src/admin/introspection.rs"),
            "fn router()",
            "/api/v2",
        ),
        (
            include_str!("../src/admin/alerts.rs"),
            "fn router()",
            "/api/v2",
        ),
        (
            include_str!("../src/admin/manage.rs"),
            "fn router()",
            "/api/v2",
        ),
        (
            include_str!("../src/admin/manage.rs"),
            "fn sso_router()",
            "",
        ),
        (
            include_str!("../src/admin/certs.rs"),
            "fn router()",
            "/api/v2",
        ),
    ];
    let mut routes = Vec::new();
    for (src, func, prefix) in sources {
        let start = src
            .find(func)
            .unwrap_or_else(|| panic!("{func} in a router source"));
        let body = &src[start..];
        let body = &body[..body.find("\n}\n").expect("end of router fn")];
        for chunk in body.split(".route(").skip(1) {
            let path = chunk.split('"').nth(1).expect("route path literal");
            for method in ["get", "post", "put", "patch", "delete"] {
                let called = chunk.match_indices(&format!("{method}(")).any(|(i, _)| {
                    i == 0
                        || !chunk.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && chunk.as_bytes()[i - 1] != b'_'
                });
                if called {
                    routes.push((format!("{prefix}{path}"), method.to_string()));
                }
            }
        }
    }
    routes
}

/// `GET /api/v2/openapi.json` needs no credentials and describes every
/// route of the API v2 router.
#[test]
fn openapi_document_describes_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_mt(1, dir.path(), &[]);
    let (status, doc) = api(&s, "GET", "/openapi.json", None, None);
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().unwrap_or("").starts_with("3."),
        "openapi version: {}",
        doc["openapi"]
    );
    let routes = api_v2_routes_in_source();
    assert!(
        routes.len() >= 11,
        "routes parsed from api_v2.rs: {routes:?}"
    );
    for (path, method) in &routes {
        assert!(
            doc["paths"][path.as_str()][method.as_str()].is_object(),
            "no {method} {path} in the document"
        );
    }
    // And every documented operation is served: with real ids, none is
    // answered by the fallback ("no such route") or 405.
    let a = s.create_cache("alpha", "8MB");
    for (path, ops) in doc["paths"].as_object().unwrap() {
        assert!(
            path.starts_with("/api/v2/") || path.starts_with("/sso/"),
            "{path} is not an /api/v2 or /sso route"
        );
        for method in ops.as_object().unwrap().keys() {
            if method == "parameters" {
                continue;
            }
            assert!(
                routes.iter().any(|(p, m)| p == path && m == method),
                "{method} {path} is documented but not in a router"
            );
            let url = path
                .replace("{id}", &a.cache.to_string())
                .replace("{username}", "000000")
                .replace("{alert_id}", "999999")
                .replace("{config_id}", "999999")
                .replace("{prefix_id}", "999999")
                .replace("{fingerprint}", &"ab".repeat(32));
            let (status, body) = s.http(&method.to_uppercase(), &url, a.basic(), Some("{}"));
            assert!(
                status != 405 && body["message"] != "no such route",
                "{method} {url}: {status} {body}"
            );
        }
    }
}
