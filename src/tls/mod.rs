//! TLS for the data port (rustls): the server configuration built from
//! memcached's options, its reload (`refresh_certs`, SIGHUP, the operator
//! route), and the counters `stats` shows. Plain Rust with no I/O of its
//! own beyond reading the certificate files: the runtime drives each
//! connection's `rustls::ServerConnection` over its socket.

mod verify;

pub use verify::Pinned;

use rustls::crypto::ring::{default_provider, Ticketer};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerSessionMemoryCache, StoresServerSessions, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// memcached's `ssl_verify_mode`: whether client certificates are asked
/// for, and whether one is required.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyMode {
    /// No client certificate is asked for (memcached's 0).
    None,
    /// Asked for; one presented must be valid (memcached's 1).
    Request,
    /// Required, and must be valid (memcached's 2).
    Require,
}

impl VerifyMode {
    /// As the flag spells it.
    pub fn name(self) -> &'static str {
        match self {
            VerifyMode::None => "none",
            VerifyMode::Request => "request",
            VerifyMode::Require => "require",
        }
    }

    /// memcached's number for `stats settings`.
    pub fn number(self) -> u8 {
        match self {
            VerifyMode::None => 0,
            VerifyMode::Request => 1,
            VerifyMode::Require => 2,
        }
    }
}

/// The oldest protocol version a client may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MinVersion {
    #[value(name = "1.2")]
    Tls12,
    #[value(name = "1.3")]
    Tls13,
}

impl MinVersion {
    /// As memcached's `stats settings` names it.
    pub fn name(self) -> &'static str {
        match self {
            MinVersion::Tls12 => "tlsv1.2",
            MinVersion::Tls13 => "tlsv1.3",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// The certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM) that client certificates are checked against.
    pub ca: Option<PathBuf>,
    pub verify: VerifyMode,
    pub min_version: MinVersion,
    /// A client must finish the handshake within this.
    pub handshake_timeout: Duration,
}

/// What a configuration is built from; kept to build it again on refresh.
struct Loader {
    settings: Settings,
    /// Set once the tenants exist (multi-tenant mode), read per handshake.
    pinned: Arc<OnceLock<Pinned>>,
    provider: Arc<CryptoProvider>,
    /// Kept across refreshes, so a session resumes after a reload too.
    ticketer: Arc<dyn rustls::server::ProducesTickets>,
    sessions: Arc<dyn StoresServerSessions>,
}

/// Server-wide TLS state, shared by every core.
pub struct TlsContext {
    loader: Loader,
    /// The configuration new connections take; replaced on refresh (a
    /// connection keeps the one it started with).
    current: RwLock<Arc<ServerConfig>>,
    handshake_errors: AtomicU64,
    new_sessions: AtomicU64,
    /// Unix seconds of the last successful (re)load.
    refreshed_at: AtomicU64,
}

/// The server's TLS context, for the readers outside the data path (the
/// admin thread's `/metrics` and reload route).
static INSTALLED: OnceLock<Arc<TlsContext>> = OnceLock::new();

/// Makes `ctx` the server's (once, at start).
pub fn install(ctx: Arc<TlsContext>) {
    let _ = INSTALLED.set(ctx);
}

/// The server's TLS context, when a listener speaks TLS.
pub fn installed() -> Option<&'static Arc<TlsContext>> {
    INSTALLED.get()
}

/// Sessions (TLS 1.2 session IDs) remembered for resumption, server-wide.
const SESSION_CACHE: usize = 4096;

/// The SHA-256 of a certificate's DER encoding.
pub fn fingerprint(cert: &CertificateDer<'_>) -> [u8; 32] {
    Sha256::digest(cert.as_ref()).into()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TlsContext {
    /// Loads the certificate and key. The error is memcached's text for
    /// the file that failed.
    pub fn new(settings: Settings) -> Result<TlsContext, String> {
        let loader = Loader {
            settings,
            pinned: Arc::new(OnceLock::new()),
            provider: Arc::new(default_provider()),
            ticketer: Ticketer::new().map_err(|e| format!("Error creating the ticketer: {e}"))?,
            sessions: ServerSessionMemoryCache::new(SESSION_CACHE),
        };
        let config = loader.load()?;
        Ok(TlsContext {
            loader,
            current: RwLock::new(Arc::new(config)),
            handshake_errors: AtomicU64::new(0),
            new_sessions: AtomicU64::new(0),
            refreshed_at: AtomicU64::new(unix_now()),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.loader.settings
    }

    /// Multi-tenant mode: client certificates `pinned` says are bound to a
    /// credential are accepted whoever issued them (set once).
    pub fn pin_with(&self, pinned: Pinned) {
        let _ = self.loader.pinned.set(pinned);
    }

    /// Re-reads the certificate, key and CA files. On failure the current
    /// configuration stays and the error says why (memcached's text).
    /// Connections already open keep their session either way.
    pub fn refresh(&self) -> Result<(), String> {
        let config = self.loader.load()?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
        self.refreshed_at.store(unix_now(), Ordering::Relaxed);
        Ok(())
    }

    /// A new server side of a connection, with the current configuration.
    pub fn accept(&self) -> Result<ServerConnection, rustls::Error> {
        let config = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        ServerConnection::new(config)
    }

    pub fn handshake_failed(&self) {
        self.handshake_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A handshake completed without resuming an earlier session.
    pub fn new_session(&self) {
        self.new_sessions.fetch_add(1, Ordering::Relaxed);
    }

    pub fn handshake_errors(&self) -> u64 {
        self.handshake_errors.load(Ordering::Relaxed)
    }

    pub fn new_sessions(&self) -> u64 {
        self.new_sessions.load(Ordering::Relaxed)
    }

    /// Seconds since the certificate was last (re)loaded.
    pub fn time_since_refresh(&self) -> u64 {
        unix_now().saturating_sub(self.refreshed_at.load(Ordering::Relaxed))
    }
}

impl Loader {
    fn load(&self) -> Result<ServerConfig, String> {
        let s = &self.settings;
        let chain_err = |e: &dyn std::fmt::Display| {
            format!(
                "Error loading the certificate chain: {} : {e}",
                s.cert.display()
            )
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&s.cert)
            .map_err(|e| chain_err(&e))?
            .collect::<Result<_, _>>()
            .map_err(|e| chain_err(&e))?;
        if chain.is_empty() {
            return Err(chain_err(&"no certificate in the file"));
        }
        let key = PrivateKeyDer::from_pem_file(&s.key)
            .map_err(|e| format!("Error loading the key: {} : {e}", s.key.display()))?;
        let versions: &[&rustls::SupportedProtocolVersion] = match s.min_version {
            MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            MinVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let builder = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| format!("Error setting the protocol versions: {e}"))?;
        let builder = match s.verify {
            VerifyMode::None => builder.with_no_client_auth(),
            mode => builder.with_client_cert_verifier(Arc::new(self.client_verifier(mode)?)),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| format!("Error validating the certificate: {e}"))?;
        config.ticketer = self.ticketer.clone();
        config.session_storage = self.sessions.clone();
        Ok(config)
    }

    fn client_verifier(&self, mode: VerifyMode) -> Result<verify::ClientVerifier, String> {
        let ca = match &self.settings.ca {
            Some(path) => {
                let err = |e: &dyn std::fmt::Display| {
                    format!("Error loading the CA certificate: {} : {e}", path.display())
                };
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(path).map_err(|e| err(&e))? {
                    roots.add(cert.map_err(|e| err(&e))?).map_err(|e| err(&e))?;
                }
                if roots.is_empty() {
                    return Err(err(&"no certificate in the file"));
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    self.provider.clone(),
                )
                .allow_unauthenticated()
                .build()
                .map_err(|e| err(&e))?;
                Some(verifier)
            }
            None => None,
        };
        Ok(verify::ClientVerifier::new(
            ca,
            self.pinned.clone(),
            mode == VerifyMode::Require,
            self.provider.signature_verification_algorithms,
        ))
    }
}
