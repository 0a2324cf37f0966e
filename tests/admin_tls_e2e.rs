//! The admin endpoint over HTTPS (`--admin-tls-cert`, `--admin-tls-key`)
//! with a CA and certificate made at test time: operator routes, /metrics,
//! the dashboard's cookies and the CLI over TLS; plain HTTP and untrusting
//! clients fail without stopping the endpoint; bad files stop the start;
//! the warning for a non-loopback admin address without TLS.

mod common;
use common::{shoal_cmd, Server};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

/// A CA, and a certificate it signed for localhost and 127.0.0.1, written
/// as PEM files into `dir`: (ca.pem, cert.pem, key.pem).
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    ca_der: Vec<u8>,
}

fn pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let p = Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        ca_der: ca.der().to_vec(),
    };
    std::fs::write(&p.ca, ca.pem()).unwrap();
    std::fs::write(&p.cert, cert.pem()).unwrap();
    std::fs::write(&p.key, key.serialize_pem()).unwrap();
    p
}

/// An HTTPS agent trusting only `roots` (none: the public web roots).
fn agent(roots: Option<&[u8]>) -> ureq::Agent {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(der) = roots {
        let cert = ureq::tls::Certificate::from_der(der).to_owned();
        tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![cert])));
    }
    ureq::Agent::config_builder()
        .tls_config(tls.build())
        .timeout_global(Some(Duration::from_secs(10)))
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into()
}

fn token(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("operator.token"))
        .unwrap()
        .trim()
        .to_string()
}

/// `shoal ARGS --data-dir DIR` (the CLI): Ok(stdout) or Err(stderr).
fn cli(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("SHOAL_ADMIN_TOKEN")
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(text(&out.stderr))
    }
}

/// Plain HTTP to a TLS port: no HTTP answer, the connection just ends.
fn plain_http_gets_no_answer(admin: SocketAddr) {
    let mut c = TcpStream::connect(admin).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/"),
        "plain HTTP answered: {:?}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn admin_endpoint_over_https() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let p = pki(tmp.path());
    let s = Server::start(
        1,
        &[
            "--multi-tenant",
            "--data-dir",
            data.to_str().unwrap(),
            "--admin-addr",
            "0.0.0.0:0",
            "--admin-tls-cert",
            p.cert.to_str().unwrap(),
            "--admin-tls-key",
            p.key.to_str().unwrap(),
            "--admin-header-timeout",
            "1",
        ],
    );
    // On every interface, but with TLS: no warning.
    assert!(
        !s.stderr_text().contains("without TLS"),
        "{}",
        s.stderr_text()
    );
    let port = s.admin.unwrap().port();
    let admin: SocketAddr = ([127, 0, 0, 1], port).into();
    let base = format!("https://127.0.0.1:{port}");
    let auth = format!("Bearer {}", token(&data));
    let trusted = agent(Some(&p.ca_der));

    // The operator routes and /metrics, by IP and by name.
    let mut r = trusted
        .post(&format!("{base}/admin/v1/caches"))
        .header("Authorization", &auth)
        .send(r#"{"name": "web", "memory": "8MB"}"#)
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let created: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let id = created["cache"]["id"].as_u64().unwrap();
    let mut r = trusted
        .get(&format!("https://localhost:{port}/admin/v1/caches"))
        .header("Authorization", &auth)
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.body_mut().read_to_string().unwrap().contains("\"web\""));
    let mut r = trusted.get(&format!("{base}/metrics")).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let metrics = r.body_mut().read_to_string().unwrap();
    assert!(metrics.contains(&format!("cache=\"{id}\"")), "{metrics}");

    // The dashboard's session cookie is Secure over HTTPS.
    let r = trusted
        .post(&format!("{base}/dashboard/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(format!("token={}", token(&data)))
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");

    // Plain HTTP and a client that does not trust the certificate fail;
    // the endpoint keeps serving.
    plain_http_gets_no_answer(admin);
    let e = agent(None).get(&format!("{base}/healthz")).call();
    assert!(e.is_err(), "an untrusted certificate was accepted");
    // A client that connects and says nothing is cut at the handshake
    // timeout (--admin-header-timeout 1), and meanwhile others are served.
    let mut idle = TcpStream::connect(admin).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let since = std::time::Instant::now();
    let mut r = trusted.get(&format!("{base}/healthz")).call().unwrap();
    assert_eq!(r.body_mut().read_to_string().unwrap(), "ok");
    let mut buf = [0u8; 64];
    assert!(
        matches!(idle.read(&mut buf), Ok(0)),
        "closed, not timed out here"
    );
    let held = since.elapsed();
    assert!(
        held >= Duration::from_millis(900) && held < Duration::from_secs(5),
        "{held:?}"
    );

    // The CLI over HTTPS, trusting the CA; without --admin-ca it says why.
    let out = cli(
        &data,
        &[
            "cache",
            "list",
            "--admin",
            &base,
            "--admin-ca",
            p.ca.to_str().unwrap(),
        ],
    )
    .unwrap();
    assert!(out.contains("web"), "{out}");
    let e = cli(&data, &["cache", "list", "--admin", &base]).unwrap_err();
    assert!(e.contains("--admin-ca"), "{e}");
    let e = cli(&data, &["cache", "list", "--admin", &admin.to_string()]).unwrap_err();
    assert!(!e.is_empty());
    assert!(s.terminate());
}

#[test]
fn bad_tls_files_stop_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pki(tmp.path());
    let other = pki(&{
        let d = tmp.path().join("other");
        std::fs::create_dir(&d).unwrap();
        d
    });
    let data = tmp.path().join("data");
    let start = |cert: &Path, key: &Path| {
        let mut cmd = shoal_cmd(0, 1, &[]);
        cmd.args([
            "--multi-tenant",
            "--admin-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .arg("--admin-tls-cert")
        .arg(cert)
        .arg("--admin-tls-key")
        .arg(key);
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "started with {cert:?} {key:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let missing = tmp.path().join("missing.pem");
    let e = start(&p.cert, &missing);
    assert!(
        e.contains("--admin-tls-key") && e.contains("missing.pem"),
        "{e}"
    );
    let e = start(&missing, &p.key);
    assert!(e.contains("--admin-tls-cert"), "{e}");
    // A key file holding a certificate, a certificate file holding a key.
    let e = start(&p.cert, &p.cert);
    assert!(e.contains("--admin-tls-key"), "{e}");
    let e = start(&p.key, &p.key);
    assert!(e.contains("--admin-tls-cert"), "{e}");
    // A key that is not the certificate's.
    let e = start(&p.cert, &other.key);
    assert!(e.contains("--admin-tls-cert"), "{e}");
    // Only one of the pair.
    let out = shoal_cmd(0, 1, &["--multi-tenant", "--admin-tls-cert"])
        .arg(&p.cert)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("go together"));
}

#[test]
fn non_loopback_admin_without_tls_warns() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::start(
        1,
        &[
            "--multi-tenant",
            "--data-dir",
            tmp.path().to_str().unwrap(),
            "--admin-addr",
            "0.0.0.0:0",
        ],
    );
    let text = s.stderr_text();
    let port = s.admin.unwrap().port();
    assert!(
        text.lines().any(|l| l.contains("warning")
            && l.contains(&format!("0.0.0.0:{port} without TLS"))
            && l.contains("--admin-tls-cert")),
        "{text}"
    );
    // Loopback without TLS: no warning.
    let tmp2 = tempfile::tempdir().unwrap();
    let quiet = Server::start_mt(1, tmp2.path(), &[]);
    assert!(!quiet.stderr_text().contains("without TLS"));
}
