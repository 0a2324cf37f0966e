//! What goes over the wire: request bodies, memory sizes, time ranges in
//! query strings, the JSON views of caches and credentials, and errors.
//!
//! Errors are always JSON, `{"error": "<code>", "message": "<text>"}`, with
//! `code` one of `invalid` (400), `unauthorized` (401), `not_found` (404),
//! `conflict` (409), `internal` (500).

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::history::parse_time;
use crate::tenancy::{Cache, Caps, ControlError, Credential};

/// An error answer: status plus a JSON body.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> ApiError {
        match e {
            ControlError::NotFound => ApiError::not_found("no such cache or credential"),
            ControlError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            ControlError::Invalid(m) => ApiError::invalid(m),
            ControlError::Io(e) => {
                tracing::error!("admin: control store i/o error: {e}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("control store: {e}"),
                )
            }
            // `mutate` retries a stale change; one that stays stale after
            // its tries lost a race with other nodes' writers.
            ControlError::Stale => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "the control state kept changing on other nodes; try again",
            ),
            ControlError::Unavailable(m) => {
                tracing::warn!("admin: control plane unavailable: {m}");
                ApiError::unavailable(format!("control plane unavailable: {m}"))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.code, "message": self.message });
        (self.status, Json(body)).into_response()
    }
}

/// Parses a JSON body; an empty body reads as `{}` so that routes whose
/// fields are all optional can be called without one. No content-type is
/// required (curl's `-d` sends form-urlencoded).
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("bad JSON body: {e}")))
}

/// An id from a path in canonical decimal: digits only, no leading zero
/// (`str::parse` also takes `+1` and `01`, and an id must have one spelling:
/// two URLs naming the same cache would slip past anything keyed on the
/// path, such as a proxy's allow list).
pub(crate) fn canonical_id<T: std::str::FromStr>(raw: &str) -> Option<T> {
    let digits = raw.as_bytes();
    let canonical = match digits {
        [] => false,
        [b'0', _, ..] => false,
        _ => digits.iter().all(u8::is_ascii_digit),
    };
    canonical.then(|| raw.parse().ok()).flatten()
}

/// A cache id from the path: a positive integer.
pub(crate) fn parse_id(raw: &str) -> Result<u32, ApiError> {
    match canonical_id::<u32>(raw) {
        Some(id) if id > 0 => Ok(id),
        _ => Err(ApiError::invalid(format!(
            "cache id must be a positive integer, got '{raw}'"
        ))),
    }
}

/// A memory size: a JSON number of bytes or a string such as `"25MB"`.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub(crate) enum Memory {
    Bytes(u64),
    Text(String),
}

impl Memory {
    pub(crate) fn bytes(&self) -> Result<u64, ApiError> {
        let n = match self {
            Memory::Bytes(n) => *n,
            Memory::Text(s) => parse_memory(s).map_err(ApiError::invalid)?,
        };
        if n == 0 {
            return Err(ApiError::invalid("memory must be greater than zero"));
        }
        Ok(n)
    }
}

/// Parses a memory size: `26214400`, `25MB`, `25M`, `25mib`, `512KB`, `1GB`,
/// `1.5GB`. Units are binary (K = 1024), as memcached's `-m` and MemCachier's
/// plans count them; `B` and `iB` suffixes are accepted and mean the same.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = (&t[..split], t[split..].trim());
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "invalid memory size '{s}': unknown unit '{unit}' (use B, KB, MB, GB)"
            ))
        }
    };
    let bad = || format!("invalid memory size '{s}'");
    if num.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = num.parse::<u64>() {
        return n
            .checked_mul(1u64 << shift)
            .ok_or_else(|| format!("memory size '{s}' is too large"));
    }
    // A fractional amount such as 1.5GB: exact enough for plan sizes.
    let f: f64 = num.parse().map_err(|_| bad())?;
    let bytes = (f * (1u64 << shift) as f64).round();
    if !(0.0..1.8e19).contains(&bytes) {
        return Err(format!("memory size '{s}' is too large"));
    }
    Ok(bytes as u64)
}

/// `POST /caches`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateCache {
    pub(crate) name: String,
    pub(crate) memory: Memory,
    /// The connection limit (`max_connections`); absent or 0: none.
    pub(crate) connections: Option<u32>,
}

/// `PATCH /caches/:id`: only the fields present change.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchCache {
    pub(crate) memory: Option<Memory>,
    pub(crate) enabled: Option<bool>,
    /// The new connection limit; 0 removes it.
    pub(crate) connections: Option<u32>,
}

/// `POST /caches/:id/credentials`: a new credential gets every capability
/// not explicitly switched off.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddCredential {
    pub(crate) write: Option<bool>,
    pub(crate) flush: Option<bool>,
    pub(crate) api: Option<bool>,
}

impl AddCredential {
    pub(crate) fn caps(&self) -> Caps {
        Caps {
            write: self.write.unwrap_or(true),
            flush: self.flush.unwrap_or(true),
            api: self.api.unwrap_or(true),
        }
    }
}

/// `PATCH /caches/:id/credentials/:username`: the complete new set of
/// capabilities; an omitted one is off.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SetCaps {
    pub(crate) write: bool,
    pub(crate) flush: bool,
    pub(crate) api: bool,
}

impl SetCaps {
    pub(crate) fn caps(&self) -> Caps {
        Caps {
            write: self.write,
            flush: self.flush,
            api: self.api,
        }
    }
}

/// The JSON view of a cache (a stable shape, independent of the store's
/// own serialization).
#[derive(Serialize)]
pub(crate) struct CacheView<'a> {
    id: u32,
    name: &'a str,
    memory_limit: u64,
    /// 0: no per-cache connection limit.
    max_connections: u32,
    enabled: bool,
    created: u64,
}

pub(crate) fn cache_view(c: &Cache) -> CacheView<'_> {
    CacheView {
        id: c.id,
        name: &c.name,
        memory_limit: c.memory_limit,
        max_connections: c.max_connections,
        enabled: c.enabled,
        created: c.created,
    }
}

/// The JSON view of a credential. The operator sees the password: it is what
/// they hand to the cache's user.
#[derive(Serialize)]
pub(crate) struct CredentialView<'a> {
    username: &'a str,
    password: &'a str,
    cache_id: u32,
    caps: CapsView,
    primary: bool,
    created: u64,
    /// SHA-256 fingerprints of the TLS client certificates that log in as
    /// this credential (`certs.rs`).
    cert_fingerprints: &'a [String],
}

#[derive(Serialize)]
struct CapsView {
    write: bool,
    flush: bool,
    api: bool,
}

pub(crate) fn credential_view(c: &Credential) -> CredentialView<'_> {
    CredentialView {
        username: &c.username,
        password: &c.password,
        cache_id: c.cache_id,
        caps: CapsView {
            write: c.caps.write,
            flush: c.caps.flush,
            api: c.caps.api,
        },
        primary: c.primary,
        created: c.created,
        cert_fingerprints: &c.cert_fingerprints,
    }
}

pub(crate) fn credentials_view(creds: &[Credential]) -> Value {
    json!(creds.iter().map(credential_view).collect::<Vec<_>>())
}

/// A credential as MemCachier shows it, plus shoal's `cert_fingerprints`
/// (`certs.rs`), as API v2 answers it. Usernames are 6 hex digits, so their value is a stable
/// numeric id.
pub(crate) fn credential_json(c: &Credential) -> Value {
    json!({
        "id": u32::from_str_radix(&c.username, 16).unwrap_or(0),
        "cache_id": c.cache_id,
        "sasl_username": c.username,
        "sasl_password": c.password,
        "write_capability": c.caps.write,
        "flush_capability": c.caps.flush,
        "api_capability": c.caps.api,
        "primary": c.primary,
        "cert_fingerprints": c.cert_fingerprints,
    })
}

/// The three lines an application needs (MemCachier's config vars).
pub(crate) fn env_view(servers: &str, primary: &Credential) -> Value {
    json!({
        "MEMCACHIER_SERVERS": servers,
        "MEMCACHIER_USERNAME": primary.username,
        "MEMCACHIER_PASSWORD": primary.password,
    })
}

/// `startTime`/`endTime` (ISO 8601 or unix seconds), by default the last 24 h.
pub(crate) fn time_range(q: &HashMap<String, String>) -> Result<(u64, u64), ApiError> {
    let now = crate::clock::unix_now() as u64;
    let time = |key: &str, default: u64| match q.get(key) {
        None => Ok(default),
        Some(v) => parse_time(v).ok_or_else(|| ApiError::invalid(format!("bad {key}: {v}"))),
    };
    let end = time("endTime", now)?;
    let start = time("startTime", end.saturating_sub(86_400))?;
    if start > end {
        return Err(ApiError::invalid("startTime is after endTime"));
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_canonical_decimal() {
        assert_eq!(canonical_id::<u32>("1"), Some(1));
        assert_eq!(canonical_id::<u32>("0"), Some(0));
        assert_eq!(canonical_id::<u32>("4294967295"), Some(u32::MAX));
        for bad in [
            "",
            "+1",
            "-1",
            "01",
            "00",
            " 1",
            "1 ",
            "1a",
            "0x1",
            "4294967296",
        ] {
            assert_eq!(canonical_id::<u32>(bad), None, "{bad:?}");
        }
        assert!(parse_id("01").is_err());
        assert!(parse_id("+1").is_err());
        assert!(parse_id("0").is_err());
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("26214400"), Ok(26_214_400));
        assert_eq!(parse_memory("25MB"), Ok(25 << 20));
        assert_eq!(parse_memory("25 mb"), Ok(25 << 20));
        assert_eq!(parse_memory("25M"), Ok(25 << 20));
        assert_eq!(parse_memory("25MiB"), Ok(25 << 20));
        assert_eq!(parse_memory("512kb"), Ok(512 << 10));
        assert_eq!(parse_memory("1GB"), Ok(1 << 30));
        assert_eq!(parse_memory("1.5GB"), Ok(3 << 29));
        assert_eq!(parse_memory("100B"), Ok(100));
        assert!(parse_memory("").is_err());
        assert!(parse_memory("MB").is_err());
        assert!(parse_memory("25XB").is_err());
        assert!(parse_memory("-5MB").is_err());
        assert!(parse_memory("1.2.3MB").is_err());
        assert!(parse_memory("99999999999TB").is_err());
    }

    #[test]
    fn memory_field_accepts_number_or_string() {
        let c: CreateCache = parse_json(br#"{"name":"a","memory":1048576}"#).unwrap();
        assert_eq!(c.memory.bytes().unwrap(), 1 << 20);
        let c: CreateCache = parse_json(br#"{"name":"a","memory":"1MB"}"#).unwrap();
        assert_eq!(c.memory.bytes().unwrap(), 1 << 20);
        let c: CreateCache = parse_json(br#"{"name":"a","memory":0}"#).unwrap();
        assert!(c.memory.bytes().is_err());
        assert!(parse_json::<CreateCache>(br#"{"name":"a","memory":-1}"#).is_err());
    }

    #[test]
    fn connections_field_is_a_whole_number() {
        let c: CreateCache = parse_json(br#"{"name":"a","memory":1}"#).unwrap();
        assert_eq!(c.connections, None);
        let c: CreateCache = parse_json(br#"{"name":"a","memory":1,"connections":3}"#).unwrap();
        assert_eq!(c.connections, Some(3));
        for bad in [&br#"-1"#[..], b"1.5", b"\"3\"", b"4294967296"] {
            let mut body = br#"{"name":"a","memory":1,"connections":"#.to_vec();
            body.extend_from_slice(bad);
            body.push(b'}');
            assert!(parse_json::<CreateCache>(&body).is_err(), "{bad:?}");
        }
        assert!(parse_json::<CreateCache>(br#"{"name":"a","memroy":"1MB"}"#).is_err());
    }

    #[test]
    fn optional_bodies() {
        let a: AddCredential = parse_json(b"").unwrap();
        assert_eq!(a.caps(), Caps::ALL);
        let a: AddCredential = parse_json(br#"{"flush":false}"#).unwrap();
        assert_eq!(
            a.caps(),
            Caps {
                write: true,
                flush: false,
                api: true
            }
        );
        let s: SetCaps = parse_json(br#"{"write":true}"#).unwrap();
        assert_eq!(
            s.caps(),
            Caps {
                write: true,
                flush: false,
                api: false
            }
        );
        assert!(parse_json::<SetCaps>(b"[1]").is_err());
    }

    #[test]
    fn ids() {
        assert_eq!(parse_id("7").unwrap(), 7);
        assert!(parse_id("0").is_err());
        assert!(parse_id("x").is_err());
        assert!(parse_id("-1").is_err());
    }
}
