//! The web dashboard over plain HTTP (no browser; `scripts/dashboard-e2e.sh`
//! drives a real one): how a dashboard link opens a session, what the
//! session cookie and CSRF token guard, that a rotated link ends its
//! sessions, the operator sign-in, that actions run the API's own routes,
//! and that the vendored uPlot is the file VENDORED.md names.

mod common;
use common::Server;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

struct Resp {
    status: u16,
    head: String,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    /// `name=value` of the Set-Cookie for `name`.
    fn cookie(&self, name: &str) -> String {
        self.header("set-cookie")
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(|c| c.split(';').next().unwrap().to_string())
            .unwrap_or_else(|| panic!("no {name} cookie in {}", self.head))
    }

    /// The page's CSRF token (`<meta name="csrf-token" content=...>`).
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf-token\" content=\"")
            .expect("csrf meta")
            + 27;
        self.body[at..].split('"').next().unwrap().to_string()
    }
}

fn http(s: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut c = TcpStream::connect(s.admin.unwrap()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let host = s.admin.unwrap().to_string();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    c.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    Resp {
        status: head.split(' ').nth(1).unwrap().parse().unwrap(),
        head: head.to_string(),
        body: body.to_string(),
    }
}

const HTML: (&str, &str) = ("Accept", "text/html,application/xhtml+xml");

#[test]
fn links_sessions_csrf_and_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_mt(1, dir.path(), &[]);
    let a = s.create_cache("alpha", "8MB");
    let b = s.create_cache("beta", "8MB");
    let mut mc = s.login(&a.user, &a.pass);
    assert_eq!(mc.set("k", b"v"), "STORED\r\n");
    let origin = format!("http://{}", s.admin.unwrap());

    // A link: JSON for API clients, a session and the dashboard for browsers.
    let (st, link) = s.api_v2(
        "POST",
        &format!("/caches/{}/rotate_sso", a.cache),
        a.basic(),
        None,
    );
    assert_eq!(st, 200);
    let link = link.as_str().unwrap().to_string();
    assert_eq!(s.http("GET", &link, None, None).0, 200);
    let landing = http(&s, "GET", &link, &[HTML], "");
    assert_eq!(landing.status, 200, "{}", landing.body);
    let set = landing.header("set-cookie").join("\n");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = landing.cookie("shoal_sso");
    let page = format!("/dashboard/caches/{}", a.cache);
    assert_eq!(http(&s, "GET", &page, &[HTML], "").status, 401, "no cookie");
    let overview = http(&s, "GET", &page, &[HTML, ("Cookie", &cookie)], "");
    assert_eq!(overview.status, 200);
    assert!(overview.body.contains("alpha"));
    let csp = overview.header("content-security-policy").join("");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    // The session is for its own cache only.
    let other = format!("/dashboard/caches/{}", b.cache);
    assert_eq!(
        http(&s, "GET", &other, &[HTML, ("Cookie", &cookie)], "").status,
        401
    );
    let csrf = overview.csrf();
    assert!(csrf.len() >= 32);

    // Actions: CSRF token and origin, then the API route's own answer.
    let flush = format!("/dashboard/caches/{}/api/flush", a.cache);
    assert_eq!(
        http(&s, "POST", &flush, &[("Cookie", &cookie)], "").status,
        403
    );
    let bad_origin = [
        ("Cookie", cookie.as_str()),
        ("X-CSRF-Token", csrf.as_str()),
        ("Origin", "http://evil.example"),
    ];
    assert_eq!(http(&s, "POST", &flush, &bad_origin, "").status, 403);
    let good = [
        ("Cookie", cookie.as_str()),
        ("X-CSRF-Token", csrf.as_str()),
        ("Origin", origin.as_str()),
    ];
    assert_eq!(http(&s, "POST", &flush, &good, "").status, 204);
    assert_eq!(mc.get("k"), None, "flushed");
    let add = format!("/dashboard/caches/{}/api/credentials", a.cache);
    let added = http(&s, "POST", &add, &good, "");
    assert_eq!(added.status, 201, "{}", added.body);
    assert!(added.body.contains("sasl_username"));
    let escape = format!("/dashboard/caches/{}/api/..%2F..%2Fadmin", a.cache);
    assert_ne!(http(&s, "GET", &escape, &good, "").status, 200);
    // Reads need the session, not the token.
    let summary = format!("/dashboard/caches/{}/summary.json", a.cache);
    let sm = http(&s, "GET", &summary, &[("Cookie", &cookie)], "");
    assert_eq!(sm.status, 200);
    let sm: serde_json::Value = serde_json::from_str(&sm.body).unwrap();
    assert_eq!(sm["curr_items"], 0);
    assert_eq!(sm["name"], "alpha");

    // Rotating from the page keeps that session (new cookie), ends the others.
    let rotate = format!("/dashboard/caches/{}/api/rotate_sso", a.cache);
    let rotated = http(&s, "POST", &rotate, &good, "");
    assert_eq!(rotated.status, 200);
    let renewed = rotated.cookie("shoal_sso");
    assert_eq!(
        http(&s, "GET", &page, &[HTML, ("Cookie", &cookie)], "").status,
        401
    );
    assert_eq!(
        http(&s, "GET", &page, &[HTML, ("Cookie", &renewed)], "").status,
        200
    );
    let old = http(&s, "GET", &link, &[HTML], "");
    assert_eq!(old.status, 401);
    assert!(old.body.contains("not valid"));

    // The operator.
    assert_eq!(http(&s, "GET", "/", &[HTML], "").status, 303);
    assert_eq!(http(&s, "GET", "/", &[], "").status, 404);
    assert_eq!(http(&s, "GET", "/dashboard/", &[HTML], "").status, 303);
    let token = std::fs::read_to_string(dir.path().join("operator.token")).unwrap();
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    assert_eq!(
        http(&s, "POST", "/dashboard/login", &form, "token=nope").status,
        401
    );
    let login = http(
        &s,
        "POST",
        "/dashboard/login",
        &form,
        &format!("token={}", token.trim()),
    );
    assert_eq!(login.status, 303);
    let op = login.cookie("shoal_op");
    assert!(!op.contains(token.trim()), "the cookie is not the token");
    let home = http(&s, "GET", "/dashboard/", &[HTML, ("Cookie", &op)], "");
    assert_eq!(home.status, 200);
    for c in [&a, &b] {
        assert!(home
            .body
            .contains(&format!("data-cache-id=\"{}\"", c.cache)));
    }
    // The operator sees every cache's pages.
    assert_eq!(
        http(&s, "GET", &other, &[HTML, ("Cookie", &op)], "").status,
        200
    );
    let csrf = home.csrf();
    let op_good = [
        ("Cookie", op.as_str()),
        ("X-CSRF-Token", csrf.as_str()),
        ("Content-Type", "application/json"),
    ];
    let patch = format!("/dashboard/operator/api/caches/{}", b.cache);
    let patched = http(&s, "PATCH", &patch, &op_good, r#"{"memory":"16MB"}"#);
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert!(patched.body.contains(&(16u64 << 20).to_string()));
    // An SSO session is not the operator.
    let sso_as_op = [("Cookie", renewed.as_str()), ("X-CSRF-Token", "x")];
    assert_eq!(http(&s, "PATCH", &patch, &sso_as_op, "{}").status, 401);

    // API v2 takes the operator token for any cache.
    let info = format!("/api/v2/caches/{}/info", b.cache);
    let bearer = format!("Bearer {}", token.trim());
    let r = http(&s, "GET", &info, &[("Authorization", &bearer)], "");
    assert_eq!(r.status, 200, "{}", r.body);
    let r = http(&s, "GET", &info, &[("Authorization", "Bearer nope")], "");
    assert_eq!(r.status, 401);
}

#[test]
fn assets_are_served_and_uplot_is_the_vendored_file() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_mt(1, dir.path(), &[]);
    let js = http(&s, "GET", "/dashboard/assets/uPlot.iife.min.js", &[], "");
    assert_eq!(js.status, 200);
    assert!(js.header("content-type")[0].starts_with("text/javascript"));
    let css = http(&s, "GET", "/dashboard/assets/dash.css", &[], "");
    assert!(css.header("content-type")[0].starts_with("text/css"));
    assert_eq!(
        http(&s, "GET", "/dashboard/assets/nope.js", &[], "").status,
        404
    );
    let vendored = include_str!("../src/admin/dashboard/assets/uplot/VENDORED.md");
    let served: String = Sha256::digest(js.body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        vendored.contains(&served),
        "uPlot.iife.min.js sha256 {served} not in VENDORED.md"
    );
    assert!(include_str!("../src/admin/dashboard/assets/uplot/LICENSE").contains("MIT"));
}
