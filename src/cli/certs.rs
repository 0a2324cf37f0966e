//! `shoal cert ...`: the client-certificate fingerprints of a credential
//! (`/admin/v1/caches/ID/credentials/USER/certs`). A fingerprint is given
//! as text (64 hex digits, colons allowed, as `openssl x509 -noout
//! -fingerprint -sha256` prints it) or computed from the certificate
//! itself with `--pem FILE` (SHA-256 of the first certificate's DER).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::json;

use super::client::segment;
use super::{print, written, AdminArgs, AdminClient, CliError};
use crate::tenancy::{canonical_fingerprint, fingerprint_hex};

/// `shoal cert ...`
#[derive(Args, Debug, Clone)]
pub struct CertArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    #[command(subcommand)]
    pub command: CertCmd,
}

/// Which fingerprint: as text or from a certificate file.
#[derive(Args, Debug, Clone)]
#[command(group(ArgGroup::new("which").required(true).args(["fingerprint", "pem"])))]
pub struct Fingerprint {
    /// SHA-256 fingerprint: 64 hex digits, colons between pairs allowed
    fingerprint: Option<String>,
    /// compute the fingerprint from this PEM certificate file (its first certificate)
    #[arg(long, value_name = "FILE")]
    pem: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum CertCmd {
    /// List the certificate fingerprints that log in as a credential
    List {
        /// cache id
        #[arg(long = "cache", value_name = "ID")]
        cache: u32,
        /// the credential's username
        username: String,
    },
    /// Let a TLS client certificate log in as a credential (no SASL or ASCII step)
    Add {
        /// cache id
        #[arg(long = "cache", value_name = "ID")]
        cache: u32,
        /// the credential's username
        username: String,
        #[command(flatten)]
        which: Fingerprint,
    },
    /// Stop a certificate from logging in; its live connections are closed
    Remove {
        /// cache id
        #[arg(long = "cache", value_name = "ID")]
        cache: u32,
        /// the credential's username
        username: String,
        #[command(flatten)]
        which: Fingerprint,
    },
}

/// The SHA-256 fingerprint (64 lowercase hex digits) of the first
/// certificate in a PEM file.
pub fn pem_fingerprint(path: &Path) -> Result<String, String> {
    let cert = CertificateDer::from_pem_file(path)
        .map_err(|e| format!("{}: no PEM certificate read: {e}", path.display()))?;
    Ok(fingerprint_hex(&crate::tls::fingerprint(&cert)))
}

impl Fingerprint {
    /// The canonical fingerprint, checked before anything is sent.
    fn resolve(&self) -> Result<String, CliError> {
        match (&self.fingerprint, &self.pem) {
            (_, Some(path)) => pem_fingerprint(path).map_err(CliError::Other),
            (Some(text), None) => canonical_fingerprint(text).map_err(|e| {
                CliError::Other(format!(
                    "{text:?}: {}",
                    e.to_string().trim_start_matches("invalid: ")
                ))
            }),
            (None, None) => Err(CliError::Other("give a fingerprint or --pem FILE".into())),
        }
    }
}

pub(super) fn run(
    client: &AdminClient,
    cmd: &CertCmd,
    out: &mut dyn Write,
    json: bool,
) -> Result<(), CliError> {
    let base = |cache: &u32, username: &str| {
        format!(
            "/admin/v1/caches/{cache}/credentials/{}/certs",
            segment(username)
        )
    };
    let answer = match cmd {
        CertCmd::List { cache, username } => client.call("GET", &base(cache, username), None)?,
        CertCmd::Add {
            cache,
            username,
            which,
        } => {
            let body = json!({ "fingerprint": which.resolve()? });
            client.call("POST", &base(cache, username), Some(&body))?
        }
        CertCmd::Remove {
            cache,
            username,
            which,
        } => {
            let f = which.resolve()?;
            client.call("DELETE", &format!("{}/{f}", base(cache, username)), None)?;
            json!({ "removed": f })
        }
    };
    if json {
        return print::json(out, &answer).map_err(written);
    }
    match cmd {
        CertCmd::List { cache, username } => {
            let certs = answer["cert_fingerprints"].as_array();
            match certs.filter(|c| !c.is_empty()) {
                None => writeln!(
                    out,
                    "Credential {username} of cache {cache} has no certificates."
                ),
                Some(certs) => certs
                    .iter()
                    .try_for_each(|c| writeln!(out, "{}", c.as_str().unwrap_or_default())),
            }
        }
        CertCmd::Add {
            cache, username, ..
        } => {
            let certs = &answer["credential"]["cert_fingerprints"];
            let added = certs
                .as_array()
                .and_then(|c| c.last())
                .map_or("", |v| v.as_str().unwrap_or_default());
            writeln!(
                out,
                "Certificate {added} now logs in as credential {username} of cache {cache}."
            )
        }
        CertCmd::Remove {
            cache, username, ..
        } => writeln!(
            out,
            "Certificate {} no longer logs in as credential {username} of cache {cache}.",
            answer["removed"].as_str().unwrap_or_default()
        ),
    }
    .map_err(written)
}
