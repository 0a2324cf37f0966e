//! Client-certificate fingerprints on credentials, through a running
//! multi-tenant server: the operator routes, the API v2 extension and the
//! `shoal cert` subcommand (a fingerprint as text or from a PEM file), and
//! what survives a restart.

mod common;
use common::{line_value, Server};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A fresh self-signed certificate: its PEM text and SHA-256 fingerprint.
fn certificate() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["client.test".into()]).unwrap();
    let hex: String = Sha256::digest(c.cert.der().as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (c.cert.pem(), hex)
}

/// `hex` as openssl prints it: upper case, colon-separated pairs.
fn colons(hex: &str) -> String {
    let pairs: Vec<String> = hex
        .as_bytes()
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).to_uppercase())
        .collect();
    pairs.join(":")
}

fn certs_of(body: &Value) -> Vec<String> {
    body.as_array()
        .unwrap_or_else(|| panic!("not a list: {body}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn operator_routes_api_v2_and_cli() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_mt(1, dir.path(), &[]);
    let a = s.create_cache("alpha", "8MB");
    let b = s.create_cache("beta", "8MB");
    let (pem, f1) = certificate();
    let (_, f2) = certificate();
    let certs = |cache: u32, user: &str| format!("/caches/{cache}/credentials/{user}/certs");

    // Operator: add (openssl's spelling is stored canonically), list, view.
    let body = format!(r#"{{"fingerprint": "{}"}}"#, colons(&f1));
    let (st, added) = s.operator("POST", &certs(a.cache, &a.user), Some(&body));
    assert_eq!(st, 201, "{added}");
    assert_eq!(added["credential"]["cert_fingerprints"][0], f1.as_str());
    let (st, list) = s.operator("GET", &certs(a.cache, &a.user), None);
    assert_eq!(st, 200);
    assert_eq!(certs_of(&list["cert_fingerprints"]), vec![f1.clone()]);
    let (_, cache) = s.operator("GET", &format!("/caches/{}", a.cache), None);
    let primary = cache["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["username"] == a.user.as_str())
        .unwrap()
        .clone();
    assert_eq!(certs_of(&primary["cert_fingerprints"]), vec![f1.clone()]);

    // One owner per fingerprint, in any cache; bad input; unknown names.
    let same = format!(r#"{{"fingerprint": "{}"}}"#, f1.to_uppercase());
    assert_eq!(
        s.operator("POST", &certs(a.cache, &a.user), Some(&same)).0,
        409
    );
    assert_eq!(
        s.operator("POST", &certs(b.cache, &b.user), Some(&same)).0,
        409
    );
    for bad in [
        r#"{"fingerprint": "abc"}"#,
        r#"{}"#,
        r#"{"fingerprint": 1}"#,
        "nope",
    ] {
        let (st, e) = s.operator("POST", &certs(a.cache, &a.user), Some(bad));
        assert_eq!(st, 400, "{bad}: {e}");
    }
    assert_eq!(s.operator("GET", &certs(a.cache, &b.user), None).0, 404);
    assert_eq!(s.operator("GET", &certs(99, &a.user), None).0, 404);
    assert_eq!(s.operator("GET", &certs(0, &a.user), None).0, 400);
    assert_eq!(
        s.operator("GET", "/caches/x/credentials/u/certs", None).0,
        400
    );
    let gone = format!("{}/{f2}", certs(a.cache, &a.user));
    assert_eq!(s.operator("DELETE", &gone, None).0, 404);
    let malformed = format!("{}/zz", certs(a.cache, &a.user));
    assert_eq!(s.operator("DELETE", &malformed, None).0, 400);

    // API v2: the cache's own credential manages its certificates; another
    // cache's credential is refused.
    let me = a.basic();
    let (st, listed) = s.api_v2("GET", &certs(a.cache, &a.user), me, None);
    assert_eq!(st, 200);
    assert_eq!(certs_of(&listed), vec![f1.clone()]);
    let add2 = format!(r#"{{"fingerprint": "{f2}"}}"#);
    assert_eq!(
        s.api_v2("POST", &certs(a.cache, &a.user), b.basic(), Some(&add2))
            .0,
        403
    );
    assert_eq!(
        s.api_v2("POST", &certs(a.cache, &a.user), None, Some(&add2))
            .0,
        401
    );
    let (st, cred) = s.api_v2("POST", &certs(a.cache, &a.user), me, Some(&add2));
    assert_eq!(st, 201, "{cred}");
    assert_eq!(cred["sasl_username"], a.user.as_str());
    assert_eq!(
        certs_of(&cred["cert_fingerprints"]),
        vec![f1.clone(), f2.clone()]
    );
    let (_, info) = s.api_v2("GET", &format!("/caches/{}/info", a.cache), me, None);
    assert_eq!(info["credentials"][0]["cert_fingerprints"][1], f2.as_str());
    assert_eq!(
        s.api_v2("POST", &certs(b.cache, &b.user), b.basic(), Some(&add2))
            .0,
        409
    );
    let del2 = format!("{}/{}", certs(a.cache, &a.user), colons(&f2));
    assert_eq!(s.api_v2("DELETE", &del2, me, None).0, 204);
    assert_eq!(s.api_v2("DELETE", &del2, me, None).0, 404);

    // The CLI: remove by text, add back from the PEM file, list.
    let cache = a.cache.to_string();
    let out = s
        .ctl(&["cert", "remove", "--cache", &cache, &a.user, &f1])
        .unwrap();
    assert!(out.contains("no longer logs in"), "{out}");
    let list = s
        .ctl(&["cert", "list", "--cache", &cache, &a.user])
        .unwrap();
    assert!(list.contains("has no certificates"), "{list}");
    let pem_path = dir.path().join("client.pem");
    std::fs::write(&pem_path, &pem).unwrap();
    let pem_arg = pem_path.to_str().unwrap();
    let out = s
        .ctl(&["cert", "add", "--cache", &cache, &a.user, "--pem", pem_arg])
        .unwrap();
    assert!(out.contains(&f1), "the PEM's fingerprint: {out}");
    let list = s
        .ctl(&["cert", "list", "--cache", &cache, &a.user])
        .unwrap();
    assert_eq!(list.trim(), f1);
    let table = s.ctl(&["credential", "list", "--cache", &cache]).unwrap();
    assert!(table.contains("CERTS"), "{table}");
    // Refusals exit non-zero with the server's or the parser's reason.
    let e = s
        .ctl(&["cert", "add", "--cache", &cache, &a.user, &f1])
        .unwrap_err();
    assert!(e.contains("409"), "{e}");
    let e = s
        .ctl(&["cert", "add", "--cache", &cache, &a.user, "12:34"])
        .unwrap_err();
    assert!(e.contains("64 hex digits"), "{e}");
    let e = s
        .ctl(&[
            "cert",
            "add",
            "--cache",
            &cache,
            &a.user,
            "--pem",
            "/nonexistent.pem",
        ])
        .unwrap_err();
    assert!(e.contains("no PEM certificate"), "{e}");
    assert!(s.ctl(&["cert", "add", "--cache", &cache, &a.user]).is_err());

    // A removed credential takes its fingerprints with it.
    let extra = s.ctl(&["credential", "add", "--cache", &cache]).unwrap();
    let extra_user = line_value(&extra, "MEMCACHIER_USERNAME=");
    s.ctl(&["cert", "add", "--cache", &cache, &extra_user, &f2])
        .unwrap();
    s.ctl(&["credential", "remove", "--cache", &cache, &extra_user])
        .unwrap();
    let (st, _) = s.operator("POST", &certs(b.cache, &b.user), Some(&add2));
    assert_eq!(st, 201, "f2 is free again");

    // After a restart on the same data dir: the same fingerprints.
    assert!(s.terminate());
    let s = Server::start_mt(1, dir.path(), &[]);
    let (_, list) = s.operator("GET", &certs(a.cache, &a.user), None);
    assert_eq!(certs_of(&list["cert_fingerprints"]), vec![f1]);
    let (_, list) = s.operator("GET", &certs(b.cache, &b.user), None);
    assert_eq!(certs_of(&list["cert_fingerprints"]), vec![f2]);
}
