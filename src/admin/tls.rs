//! HTTPS for the admin endpoint (`--admin-tls-cert`, `--admin-tls-key`):
//! the certificate chain and private key (PEM; PKCS#8, PKCS#1 or SEC1) are
//! read once at start, and a file that is missing or unusable stops the
//! start with the reason. rustls with the ring provider, TLS 1.2 and 1.3,
//! ALPN `http/1.1` (the endpoint speaks HTTP/1 only).
//!
//! In a cluster the nodes call each other's admin endpoints (`fanout.rs`).
//! A node serving HTTPS calls its peers over HTTPS too, so every node of a
//! cluster must use the same choice. Peers' certificates are verified
//! against `--admin-tls-ca` (PEM, one or more certificates) or, without
//! it, against the certificates of this node's own `--admin-tls-cert`
//! (enough when the nodes share one certificate, or its chain ends in the
//! cluster's CA). The peers are reached at the admin address they bound,
//! an IP address, so their certificates must name that address
//! (subjectAltName IP).
//!
//! The runtime builds the endpoint's [`super::AdminConfig`]; the TLS
//! settings reach [`super::spawn_with`] through [`install`] instead, called
//! by `main` before the server starts, like `probe::set_probes`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// Where the endpoint's certificate, key and peer CA are read from.
#[derive(Clone, Debug, PartialEq)]
pub struct TlsFiles {
    /// PEM certificate chain, the endpoint's own certificate first.
    pub cert: PathBuf,
    /// PEM private key of that certificate.
    pub key: PathBuf,
    /// PEM certificates that peers' admin certificates must chain to
    /// (None: those of `cert`).
    pub ca: Option<PathBuf>,
}

/// The loaded settings: what the accept loop wraps connections in, and
/// what the fan-out trusts.
pub(crate) struct AdminTls {
    pub(crate) acceptor: TlsAcceptor,
    /// DER certificates peers' admin endpoints must chain to.
    pub(crate) peer_roots: Arc<Vec<ureq::tls::Certificate<'static>>>,
}

static INSTALLED: Mutex<Option<Arc<AdminTls>>> = Mutex::new(None);

/// Reads and checks `files`, and makes every admin endpoint spawned from
/// now on serve HTTPS with them (None: plain HTTP again). Err: the reason
/// a file could not be used, naming it.
pub fn install(files: Option<&TlsFiles>) -> Result<(), String> {
    let loaded = files.map(load).transpose()?.map(Arc::new);
    *INSTALLED.lock().unwrap_or_else(|e| e.into_inner()) = loaded;
    Ok(())
}

/// The settings in effect for an endpoint spawned now.
pub(crate) fn installed() -> Option<Arc<AdminTls>> {
    INSTALLED.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {}: no PEM certificate in it",
            path.display()
        ));
    }
    Ok(certs)
}

fn load(files: &TlsFiles) -> Result<AdminTls, String> {
    let chain = certificates(&files.cert, "--admin-tls-cert")?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        format!(
            "--admin-tls-key {}: no PEM private key (PKCS#8, PKCS#1 or SEC1) read: {e}",
            files.key.display()
        )
    })?;
    let roots = match &files.ca {
        Some(ca) => certificates(ca, "--admin-tls-ca")?,
        None => chain.clone(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("admin TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!(
                "--admin-tls-cert {} / --admin-tls-key {}: {e}",
                files.cert.display(),
                files.key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let peer_roots = roots
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    Ok(AdminTls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        peer_roots: Arc::new(peer_roots),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::time::Duration;

    /// A CA and a certificate it signed for 127.0.0.1, as PEM files.
    fn files(dir: &Path) -> TlsFiles {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let f = TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            ca: Some(dir.join("ca.pem")),
        };
        std::fs::write(&f.cert, cert.pem()).unwrap();
        std::fs::write(&f.key, key.serialize_pem()).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        f
    }

    /// The accept loop over TLS, and the fan-out's peer call: HTTPS
    /// against the CA works; plain HTTP, or roots that are not the
    /// cluster's, fail; the loop keeps serving.
    #[test]
    fn peer_calls_over_https() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        let tls = Arc::new(load(&f).unwrap());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let app = axum::Router::new().route("/x", get(|| async { "{\"ok\": 1}" }));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let served = Some(tls.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let limits = super::super::AdminLimits::default();
            rt.block_on(super::super::server::serve(
                listener,
                app,
                limits,
                served,
                stop_rx,
                Duration::from_millis(100),
            ));
        });
        let call =
            |tls: Option<&AdminTls>| super::super::fanout::call_peer("GET", &addr, "/x", "t", tls);
        assert!(call(None).is_err(), "plain HTTP to the TLS port");
        // Trusting only its own certificate (no CA file): not the chain's root.
        let own = load(&TlsFiles {
            ca: None,
            ..f.clone()
        })
        .unwrap();
        assert!(call(Some(&own)).is_err(), "a leaf is not a root here");
        assert_eq!(call(Some(&tls)).unwrap()["ok"], 1);
        let _ = stop.send(true);
        thread.join().unwrap();
    }

    #[test]
    fn unusable_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        let err = |f: TlsFiles| load(&f).err().expect("refused");
        let e = err(TlsFiles {
            key: f.cert.clone(),
            ..f.clone()
        });
        assert!(e.starts_with("--admin-tls-key"), "{e}");
        let e = err(TlsFiles {
            cert: f.key.clone(),
            ..f.clone()
        });
        assert!(e.starts_with("--admin-tls-cert"), "{e}");
        let e = err(TlsFiles {
            ca: Some(f.key.clone()),
            ..f.clone()
        });
        assert!(e.starts_with("--admin-tls-ca"), "{e}");
        assert!(load(&f).is_ok());
    }
}
