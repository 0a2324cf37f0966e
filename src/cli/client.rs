//! A small blocking HTTP/1.1 client for the admin endpoint.
//!
//! The endpoint is local (loopback by default) and answers small JSON
//! bodies, so one request per connection over `std::net::TcpStream` with
//! `Connection: close` is all the CLI needs; no HTTP crate required. An
//! `https://` address (an endpoint started with `--admin-tls-cert`) is
//! reached over rustls, trusting only the CA certificates given with
//! [`AdminClient::with_ca`] (`--admin-ca`).

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use serde_json::Value;

use super::CliError;

const TIMEOUT: Duration = Duration::from_secs(10);

/// One admin endpoint and the operator token to present to it.
#[derive(Clone, Debug)]
pub struct AdminClient {
    addr: String,
    token: String,
    /// `https://` was given.
    https: bool,
    /// The TLS settings of an `https://` address (set by `with_ca`).
    tls: Option<Arc<ClientConfig>>,
}

/// A decoded answer: status code and JSON body (`Null` when empty).
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Value,
}

impl AdminClient {
    /// `addr` is `host:port`, optionally after `http://` or `https://`; a
    /// trailing `/` is ignored.
    pub fn new(addr: &str, token: &str) -> AdminClient {
        let addr = addr.trim().trim_end_matches('/');
        let (https, addr) = match addr.strip_prefix("https://") {
            Some(rest) => (true, rest),
            None => (false, addr.trim_start_matches("http://")),
        };
        AdminClient {
            addr: addr.to_string(),
            token: token.to_string(),
            https,
            tls: None,
        }
    }

    /// Trusts the PEM certificates in `ca` for an `https://` address (the
    /// endpoint's certificate, or the CA that signed it). Err: the file is
    /// unusable, or an `https://` address has no `ca`.
    pub fn with_ca(mut self, ca: Option<&Path>) -> Result<AdminClient, CliError> {
        if !self.https {
            return Ok(self);
        }
        let ca = ca.ok_or_else(|| {
            CliError::Other(
                "an https:// admin address needs --admin-ca FILE (the PEM certificate the endpoint's chains to)".into(),
            )
        })?;
        let bad = |m: String| CliError::Other(format!("--admin-ca {}: {m}", ca.display()));
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).map_err(|e| bad(e.to_string()))? {
            roots
                .add(cert.map_err(|e| bad(e.to_string()))?)
                .map_err(|e| bad(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(bad("no PEM certificate in it".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        self.tls = Some(Arc::new(config));
        Ok(self)
    }

    /// The host part of the address, as the certificate must name it.
    fn server_name(&self) -> Result<ServerName<'static>, CliError> {
        let host = match self.addr.rsplit_once(':') {
            Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
            None => &self.addr,
        };
        ServerName::try_from(host.to_string())
            .map_err(|e| CliError::Other(format!("admin address {}: {e}", self.addr)))
    }

    /// Sends one request and returns the answer whatever its status.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<HttpResponse, CliError> {
        let unreachable = |e: std::io::Error| {
            CliError::Other(format!(
                "cannot reach the admin endpoint at {}: {e} (is shoal running with --multi-tenant? see --admin)",
                self.addr
            ))
        };
        let addrs: Vec<_> = self.addr.to_socket_addrs().map_err(unreachable)?.collect();
        let mut last =
            std::io::Error::new(std::io::ErrorKind::NotFound, "address resolved to nothing");
        let mut stream = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, TIMEOUT) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let mut stream = stream.ok_or_else(|| unreachable(last))?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .map_err(unreachable)?;
        stream
            .set_write_timeout(Some(TIMEOUT))
            .map_err(unreachable)?;

        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nAccept: application/json\r\nConnection: close\r\n",
            self.addr, self.token
        );
        if body.is_some() {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", payload.len()));
        req.push_str(&payload);
        let io = |e: std::io::Error| CliError::Other(format!("admin endpoint {}: {e}", self.addr));
        let raw = if self.https {
            let config = self.tls.clone().ok_or_else(|| {
                CliError::Other("an https:// admin address needs --admin-ca FILE".into())
            })?;
            let conn = ClientConnection::new(config, self.server_name()?)
                .map_err(|e| CliError::Other(format!("admin endpoint {}: {e}", self.addr)))?;
            exchange(&mut StreamOwned::new(conn, stream), req.as_bytes()).map_err(io)?
        } else {
            exchange(&mut stream, req.as_bytes()).map_err(io)?
        };
        parse_response(&raw)
            .map_err(|m| CliError::Other(format!("admin endpoint {}: {m}", self.addr)))
    }

    /// Sends one request; a status of 400 or more becomes [`CliError::Api`].
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, CliError> {
        let resp = self.send(method, path, body)?;
        if resp.status >= 400 {
            let field = |k: &str| resp.body.get(k).and_then(Value::as_str).map(str::to_string);
            return Err(CliError::Api {
                status: resp.status,
                code: field("error").unwrap_or_default(),
                message: field("message").unwrap_or_else(|| format!("HTTP {}", resp.status)),
            });
        }
        Ok(resp.body)
    }
}

/// Writes `req` and reads until the server closes. A TLS peer that closes
/// without close_notify still gave a whole response (its length is
/// checked when parsed), so that end is not an error.
fn exchange<S: Read + Write>(stream: &mut S, req: &[u8]) -> std::io::Result<Vec<u8>> {
    stream.write_all(req)?;
    stream.flush()?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Err(e) if e.kind() == ErrorKind::UnexpectedEof && !raw.is_empty() => Ok(raw),
        Err(e) => Err(e),
        Ok(_) => Ok(raw),
    }
}

/// Parses a complete HTTP/1.1 response (the server closed the connection).
pub(crate) fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let head_end = find(raw, b"\r\n\r\n").ok_or("truncated response")?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| "response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line '{status_line}'"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| "bad content-length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.eq_ignore_ascii_case("chunked")
        {
            chunked = true;
        }
    }
    let rest = &raw[head_end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        match length {
            Some(n) => rest.get(..n).ok_or("truncated body")?.to_vec(),
            None => rest.to_vec(),
        }
    };
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    Ok(HttpResponse { status, body })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").ok_or("truncated chunk")?;
        let size_text = std::str::from_utf8(&data[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(data.get(..size).ok_or("truncated chunk")?);
        data = data.get(size + 2..).ok_or("truncated chunk")?;
    }
}

/// Percent-encodes one path segment (usernames are hex, but be safe).
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_and_chunked_bodies() {
        let r = parse_response(b"HTTP/1.1 201 Created\r\ncontent-length: 8\r\n\r\n{\"a\":1}\n")
            .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.body["a"], 1);
        let r = parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"b\r\n4\r\n\":2}\r\n0\r\n\r\n").unwrap();
        assert_eq!(r.body["b"], 2);
        let r = parse_response(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        assert_eq!((r.status, r.body), (204, Value::Null));
        let r = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").unwrap();
        assert_eq!(r.body, Value::String("ok".into()));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn encodes_segments() {
        assert_eq!(segment("15F38E"), "15F38E");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}
