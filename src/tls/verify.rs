//! Which client certificates a TLS listener accepts.
//!
//! memcached checks a presented certificate against `ssl_ca_cert`. shoal
//! adds pinned certificates: in multi-tenant mode a credential may carry
//! the SHA-256 fingerprints of client certificates, and such a certificate
//! is accepted whoever issued it (a self-signed one is the usual case). The
//! handshake still checks the client's signature with the certificate's
//! key, so only its holder gets in; the fingerprint then names the
//! credential the connection logs in as.

use super::fingerprint;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use std::sync::{Arc, OnceLock};

/// Is this fingerprint bound to a credential right now? (Asked once per
/// handshake that presents a certificate the CA does not vouch for.)
pub type Pinned = Arc<dyn Fn(&[u8; 32]) -> bool + Send + Sync>;

pub struct ClientVerifier {
    /// Certificates chaining to `--tls-ca` (none without it).
    ca: Option<Arc<dyn ClientCertVerifier>>,
    pinned: Arc<OnceLock<Pinned>>,
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl std::fmt::Debug for ClientVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientVerifier")
            .field("ca", &self.ca.is_some())
            .field("pinned", &self.pinned.get().is_some())
            .field("mandatory", &self.mandatory)
            .finish()
    }
}

impl ClientVerifier {
    pub fn new(
        ca: Option<Arc<dyn ClientCertVerifier>>,
        pinned: Arc<OnceLock<Pinned>>,
        mandatory: bool,
        algorithms: WebPkiSupportedAlgorithms,
    ) -> ClientVerifier {
        ClientVerifier {
            ca,
            pinned,
            mandatory,
            algorithms,
        }
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.ca.as_ref().map_or(&[], |ca| ca.root_hint_subjects())
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        if let Some(pinned) = self.pinned.get() {
            if pinned(&fingerprint(end_entity)) {
                return Ok(ClientCertVerified::assertion());
            }
        }
        match &self.ca {
            Some(ca) => ca.verify_client_cert(end_entity, intermediates, now),
            None => Err(Error::InvalidCertificate(CertificateError::UnknownIssuer)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
