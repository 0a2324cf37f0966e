//! The data port's TLS flags, memcached's where it has them (`-Z`,
//! `ssl_chain_cert`, `ssl_key`, `ssl_ca_cert`, `ssl_verify_mode`,
//! `ssl_min_version`), and the `[tls]` table of the config file.

use clap::Args;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::TlsConfig;
use crate::tls::{MinVersion, Settings, VerifyMode};

#[derive(Args, Debug, Default)]
pub struct TlsArgs {
    /// TLS on the data port (memcached -Z); with --tls-port, on that port only
    #[arg(short = 'Z', long = "enable-tls")]
    pub enable_tls: bool,
    /// also listen for TLS on this port, beside the plain port (-p)
    #[arg(long = "tls-port", value_name = "PORT")]
    pub tls_port: Option<u16>,
    /// the server's certificate chain, PEM, leaf first (memcached ssl_chain_cert)
    #[arg(long = "tls-cert", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// the server's private key, PEM: PKCS#8, PKCS#1 or SEC1 (memcached ssl_key)
    #[arg(long = "tls-key", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates, PEM, that client certificates must chain to (memcached ssl_ca_cert)
    #[arg(long = "tls-ca", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// client certificates: none, request (checked when presented) or require (default: none)
    #[arg(long = "tls-verify-mode", value_enum, value_name = "MODE")]
    pub tls_verify_mode: Option<VerifyMode>,
    /// oldest TLS version accepted: 1.2 or 1.3 (default: 1.2)
    #[arg(long = "tls-min-version", value_enum, value_name = "VERSION")]
    pub tls_min_version: Option<MinVersion>,
    /// seconds a client has to complete the TLS handshake (default: 10)
    #[arg(long = "tls-handshake-timeout", value_name = "SECS")]
    pub tls_handshake_timeout: Option<f64>,
}

/// The config file's `[tls]` table: the same settings, without the prefix.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsFile {
    pub enable: Option<bool>,
    pub port: Option<u16>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    pub verify_mode: Option<String>,
    pub min_version: Option<String>,
    pub handshake_timeout: Option<f64>,
}

const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl TlsArgs {
    /// None when TLS is off; an error when it is asked for without a
    /// certificate and key, or a setting is out of range.
    pub fn into_config(self, file: TlsFile) -> Result<Option<TlsConfig>, String> {
        let on_main_port = self.enable_tls || file.enable.unwrap_or(false);
        let port = self.tls_port.or(file.port);
        let cert = self.tls_cert.or(file.cert);
        let key = self.tls_key.or(file.key);
        if !on_main_port && port.is_none() {
            if cert.is_some() || key.is_some() {
                return Err("--tls-cert/--tls-key given without -Z or --tls-port".into());
            }
            return Ok(None);
        }
        let (Some(cert), Some(key)) = (cert, key) else {
            return Err("TLS needs a certificate and a key: --tls-cert FILE --tls-key FILE".into());
        };
        let verify = match (self.tls_verify_mode, file.verify_mode) {
            (Some(v), _) => v,
            (None, Some(text)) => clap::ValueEnum::from_str(&text, true)
                .map_err(|_| format!("tls verify-mode '{text}': none, request or require"))?,
            (None, None) => VerifyMode::None,
        };
        let min_version = match (self.tls_min_version, file.min_version) {
            (Some(v), _) => v,
            (None, Some(text)) => clap::ValueEnum::from_str(&text, true)
                .map_err(|_| format!("tls min-version '{text}': 1.2 or 1.3"))?,
            (None, None) => MinVersion::Tls12,
        };
        let handshake_timeout = match self.tls_handshake_timeout.or(file.handshake_timeout) {
            Some(secs) if !(0.1..=3600.0).contains(&secs) => {
                return Err("tls-handshake-timeout must be between 0.1 and 3600 seconds".into())
            }
            Some(secs) => Duration::from_secs_f64(secs),
            None => DEFAULT_HANDSHAKE_TIMEOUT,
        };
        Ok(Some(TlsConfig {
            settings: Settings {
                cert,
                key,
                ca: self.tls_ca.or(file.ca),
                verify,
                min_version,
                handshake_timeout,
            },
            port,
            on_main_port: on_main_port && port.is_none() || self.enable_tls && port.is_some(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(enable: bool, port: Option<u16>) -> TlsArgs {
        TlsArgs {
            enable_tls: enable,
            tls_port: port,
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..TlsArgs::default()
        }
    }

    #[test]
    fn where_tls_listens() {
        let none = TlsArgs::default().into_config(TlsFile::default()).unwrap();
        assert!(none.is_none());
        let main = args(true, None)
            .into_config(TlsFile::default())
            .unwrap()
            .unwrap();
        assert!(main.on_main_port && main.port.is_none());
        let beside = args(false, Some(11212))
            .into_config(TlsFile::default())
            .unwrap()
            .unwrap();
        assert!(!beside.on_main_port && beside.port == Some(11212));
        let both = args(true, Some(11212))
            .into_config(TlsFile::default())
            .unwrap()
            .unwrap();
        assert!(both.on_main_port && both.port == Some(11212));
        assert_eq!(both.settings.verify, VerifyMode::None);
        assert_eq!(both.settings.min_version, MinVersion::Tls12);
    }

    #[test]
    fn refuses_incomplete_settings() {
        let no_key = TlsArgs {
            enable_tls: true,
            tls_cert: Some("c.pem".into()),
            ..TlsArgs::default()
        };
        assert!(no_key.into_config(TlsFile::default()).is_err());
        let stray = TlsArgs {
            tls_cert: Some("c.pem".into()),
            ..TlsArgs::default()
        };
        assert!(stray.into_config(TlsFile::default()).is_err());
        let file = TlsFile {
            verify_mode: Some("sometimes".into()),
            ..TlsFile::default()
        };
        assert!(args(true, None).into_config(file).is_err());
        let file = TlsFile {
            verify_mode: Some("require".into()),
            min_version: Some("1.3".into()),
            ..TlsFile::default()
        };
        let c = args(true, None).into_config(file).unwrap().unwrap();
        assert_eq!(c.settings.verify, VerifyMode::Require);
        assert_eq!(c.settings.min_version, MinVersion::Tls13);
    }
}
