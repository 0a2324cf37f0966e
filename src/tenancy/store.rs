//! The durable control store: caches and credentials in
//! `<data-dir>/control.json`, the operator token in `<data-dir>/operator.token`.
//!
//! # Durability
//! Every change is applied to a copy of the state, written as a whole to
//! `control.json.tmp` (mode 0600, `create_new`), fsynced, renamed over
//! `control.json`, and the directory is fsynced. Only then does the store
//! adopt the new state and publish a new [`Registry`]. `rename(2)` is atomic,
//! so after a crash at any point `control.json` is either the old or the new
//! complete file; a leftover `*.tmp` is deleted by the next [`ControlStore::open`].
//! A failed write returns [`ControlError::Io`] and leaves the in-memory state
//! unchanged.
//!
//! # Exclusivity
//! `open` takes an exclusive `flock` on `<data-dir>/control.lock` for the
//! store's lifetime: a second server on the same data dir would otherwise
//! overwrite the first one's changes. The lock is released on drop.
//!
//! # File format (`control.json`, pretty-printed JSON)
//! ```json
//! { "format": 1, "revision": 4, "next_cache_id": 3,
//!   "caches": [ { "id": 1, "name": "web", "memory_limit": 26214400,
//!                 "enabled": true, "created": 1700000000 } ],
//!   "credentials": [ { "username": "15F38E", "password": "52353F9F…",
//!                      "cache_id": 1, "caps": { "write": true, "flush": true, "api": true },
//!                      "primary": true, "created": 1700000000,
//!                      "cert_fingerprints": [ "3f1c…" ] } ] }
//! ```
//! `revision` counts committed changes and becomes [`Registry::version`];
//! `next_cache_id` makes ids never reused after deletion.
//!
//! Later fields, absent from older files (which still load: each defaults
//! to empty): `alerts`, `delivery_configs` and `watched_prefixes` (API v2
//! alerts and introspection prefixes, all three numbered from one
//! `next_object_id`, never reused), and `sso_secrets` (`{"<cache id>":
//! "<secret>"}`, a cache's entry made by its first `rotate_sso`), and a
//! credential's `cert_fingerprints` (TLS client certificates, `certs.rs`).
//!
//! # Per-cache objects
//! At most [`MAX_ALERTS_PER_CACHE`] alerts, [`MAX_DELIVERY_CONFIGS_PER_CACHE`]
//! delivery configs and [`MAX_WATCHED_PREFIXES_PER_CACHE`] watched prefixes
//! (`Conflict` beyond). An alert names a delivery config of its own cache,
//! and a config cannot be removed while an alert uses it. Deleting a cache
//! deletes all of them.
//!
//! # Credential rules
//! Each cache always has exactly one primary credential: `create_cache`
//! makes it, `promote` moves the flag, and the primary cannot be removed
//! (promote another one first). MemCachier's docs define rotation as "create
//! a secondary, promote it"; they do not allow a cache without credentials,
//! so the last credential — always the primary — cannot be removed either.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use certs::{canonical_fingerprint, MAX_CERTS_PER_CREDENTIAL};

use super::backend::{Backend, CommitError, FileBackend};
use super::capacity::{self, Capacity};
use super::{
    secret, Alert, AlertPatch, Cache, Caps, ControlError, Credential, DeliveryConfig, DeliveryType,
    NewAlert, NewDeliveryConfig, Registry, WatchedPrefix,
};

/// The control state file inside the data dir.
pub const CONTROL_FILE: &str = "control.json";
/// The operator token file inside the data dir.
pub const OPERATOR_TOKEN_FILE: &str = "operator.token";
/// Held with `flock` while a store is open.
const LOCK_FILE: &str = "control.lock";
/// Bounds what a holder of a cache's API capability can make the server keep.
pub const MAX_CREDENTIALS_PER_CACHE: usize = 100;
/// Longest cache name, in bytes.
const MAX_NAME_LEN: usize = 128;
/// Alerts one cache may have.
pub const MAX_ALERTS_PER_CACHE: usize = 20;
/// Alert delivery configs one cache may have.
pub const MAX_DELIVERY_CONFIGS_PER_CACHE: usize = 10;
/// Watched prefixes one cache may have.
pub const MAX_WATCHED_PREFIXES_PER_CACHE: usize = 10;
/// Longest alert description, in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 1024;
/// Longest watched prefix, in bytes (memcached's key length limit).
pub const MAX_PREFIX_LEN: usize = 250;
/// Longest email address (RFC 5321's path limit), in bytes.
const MAX_EMAIL_LEN: usize = 254;
/// Longest slack / webhook URL, in bytes.
const MAX_URL_LEN: usize = 2048;
/// Longest slack channel name, in bytes.
const MAX_CHANNEL_LEN: usize = 256;
/// Version of the `control.json` layout this build reads and writes.
const FORMAT: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    format: u32,
    revision: u64,
    next_cache_id: u32,
    caches: Vec<Cache>,
    credentials: Vec<Credential>,
    /// The next id of an alert, delivery config or watched prefix: one
    /// space for all three, never reused. The fields below are absent from
    /// files written before they existed, hence the defaults.
    #[serde(default = "first_object_id")]
    next_object_id: u64,
    #[serde(default)]
    alerts: Vec<Alert>,
    #[serde(default)]
    delivery_configs: Vec<DeliveryConfig>,
    #[serde(default)]
    watched_prefixes: Vec<WatchedPrefix>,
    /// Each cache's SSO secret, once rotated (kept out of [`Cache`], and so
    /// out of the registry the cores hold and out of every cache view).
    #[serde(default)]
    sso_secrets: BTreeMap<u32, String>,
}

fn first_object_id() -> u64 {
    1
}

impl State {
    fn fresh() -> State {
        State {
            format: FORMAT,
            revision: 0,
            next_cache_id: 1,
            caches: Vec::new(),
            credentials: Vec::new(),
            next_object_id: first_object_id(),
            alerts: Vec::new(),
            delivery_configs: Vec::new(),
            watched_prefixes: Vec::new(),
            sso_secrets: BTreeMap::new(),
        }
    }

    /// The invariants every committed state keeps. A file that breaks them
    /// was edited by hand; refuse it rather than guess.
    fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("unsupported format {}", self.format));
        }
        let mut ids = std::collections::HashSet::new();
        for c in &self.caches {
            if c.id == 0 || c.id >= self.next_cache_id || !ids.insert(c.id) {
                return Err(format!(
                    "cache id {} duplicated, zero or not below next_cache_id",
                    c.id
                ));
            }
        }
        let mut users = std::collections::HashSet::new();
        for cr in &self.credentials {
            if !users.insert(cr.username.as_str()) {
                return Err(format!("username {} duplicated", cr.username));
            }
            if !ids.contains(&cr.cache_id) {
                return Err(format!(
                    "credential {} names missing cache {}",
                    cr.username, cr.cache_id
                ));
            }
        }
        for c in &self.caches {
            let primaries = self
                .credentials
                .iter()
                .filter(|cr| cr.cache_id == c.id && cr.primary)
                .count();
            if primaries != 1 {
                return Err(format!(
                    "cache {} has {primaries} primary credentials",
                    c.id
                ));
            }
        }
        self.check_certs()?;
        self.check_objects(&ids)
    }

    /// The invariants of alerts, delivery configs, watched prefixes and SSO
    /// secrets; `caches` holds the live cache ids.
    fn check_objects(&self, caches: &HashSet<u32>) -> Result<(), String> {
        if self.next_object_id == 0 {
            return Err("next_object_id is zero".into());
        }
        let mut ids = HashSet::new();
        let mut id_ok = |kind: &str, id: u64, cache_id: u32| {
            if id == 0 || id >= self.next_object_id || !ids.insert(id) {
                return Err(format!(
                    "{kind} id {id} duplicated, zero or not below next_object_id"
                ));
            }
            if !caches.contains(&cache_id) {
                return Err(format!("{kind} {id} names missing cache {cache_id}"));
            }
            Ok(())
        };
        let mut per_cache: HashMap<(u32, &str), usize> = HashMap::new();
        let mut count = |cache_id: u32, kind: &'static str, max: usize| {
            let n = per_cache.entry((cache_id, kind)).or_default();
            *n += 1;
            if *n > max {
                return Err(format!("cache {cache_id} has more than {max} {kind}s"));
            }
            Ok(())
        };
        let mut configs = HashMap::new();
        for d in &self.delivery_configs {
            id_ok("delivery config", d.id, d.cache_id)?;
            count(
                d.cache_id,
                "delivery config",
                MAX_DELIVERY_CONFIGS_PER_CACHE,
            )?;
            check_delivery(d.delivery_type, &d.email, &d.slack_url, &d.slack_channel)
                .map_err(|e| format!("delivery config {}: {}", d.id, message(e)))?;
            configs.insert(d.id, d.cache_id);
        }
        for a in &self.alerts {
            id_ok("alert", a.id, a.cache_id)?;
            count(a.cache_id, "alert", MAX_ALERTS_PER_CACHE)?;
            check_alert(a.trigger_threshold, &a.description)
                .map_err(|e| format!("alert {}: {}", a.id, message(e)))?;
            if configs.get(&a.delivery_config_id) != Some(&a.cache_id) {
                return Err(format!(
                    "alert {} names delivery config {} not of its cache",
                    a.id, a.delivery_config_id
                ));
            }
        }
        let mut names = HashSet::new();
        for p in &self.watched_prefixes {
            id_ok("watched prefix", p.id, p.cache_id)?;
            count(p.cache_id, "watched prefix", MAX_WATCHED_PREFIXES_PER_CACHE)?;
            check_prefix(&p.name)
                .map_err(|e| format!("watched prefix {}: {}", p.id, message(e)))?;
            if !names.insert((p.cache_id, p.name.as_str())) {
                return Err(format!(
                    "watched prefix {:?} duplicated in cache {}",
                    p.name, p.cache_id
                ));
            }
        }
        for (cache_id, secret) in &self.sso_secrets {
            if !caches.contains(cache_id) {
                return Err(format!("sso secret names missing cache {cache_id}"));
            }
            if secret.is_empty() {
                return Err(format!("cache {cache_id} has an empty sso secret"));
            }
        }
        Ok(())
    }

    /// Hands out the next object id.
    fn object_id(&mut self) -> Result<u64, ControlError> {
        let id = self.next_object_id;
        if id == u64::MAX {
            return Err(ControlError::Conflict("object ids exhausted".into()));
        }
        self.next_object_id = id + 1;
        Ok(id)
    }

    fn has_cache(&self, id: u32) -> Result<(), ControlError> {
        if self.caches.iter().any(|c| c.id == id) {
            Ok(())
        } else {
            Err(ControlError::NotFound)
        }
    }

    /// Does `id` name a delivery config of `cache_id`?
    fn config_of(&self, cache_id: u32, id: u64) -> Result<(), ControlError> {
        if self
            .delivery_configs
            .iter()
            .any(|d| d.cache_id == cache_id && d.id == id)
        {
            Ok(())
        } else {
            Err(ControlError::Invalid(format!(
                "delivery config {id} does not exist in this cache"
            )))
        }
    }

    fn cache_mut(&mut self, id: u32) -> Result<&mut Cache, ControlError> {
        self.caches
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or(ControlError::NotFound)
    }

    fn credential_index(&self, cache_id: u32, username: &str) -> Result<usize, ControlError> {
        self.credentials
            .iter()
            .position(|c| c.cache_id == cache_id && c.username == username)
            .ok_or(ControlError::NotFound)
    }

    /// A new credential for `cache_id` with a username unique across all caches.
    fn new_credential(
        &self,
        cache_id: u32,
        caps: Caps,
        primary: bool,
    ) -> Result<Credential, ControlError> {
        // 24-bit usernames: collisions are rare until millions of credentials.
        for _ in 0..64 {
            let username = secret::username()?;
            if self.credentials.iter().all(|c| c.username != username) {
                return Ok(Credential {
                    username,
                    password: secret::password()?,
                    cache_id,
                    caps,
                    primary,
                    created: now(),
                    cert_fingerprints: Vec::new(),
                });
            }
        }
        Err(ControlError::Conflict("no free username".into()))
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn check_name(name: &str) -> Result<(), ControlError> {
    if name.trim().is_empty() {
        return Err(ControlError::Invalid("cache name is empty".into()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(ControlError::Invalid(format!(
            "cache name longer than {MAX_NAME_LEN} bytes"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ControlError::Invalid(
            "cache name contains control characters".into(),
        ));
    }
    Ok(())
}

/// The text of an `Invalid` (or any) error, for `State::check`'s messages.
fn message(e: ControlError) -> String {
    match e {
        ControlError::Invalid(m) | ControlError::Conflict(m) => m,
        e => e.to_string(),
    }
}

fn invalid(m: impl Into<String>) -> ControlError {
    ControlError::Invalid(m.into())
}

/// An alert's own fields (its delivery config is checked against the state).
fn check_alert(threshold: u8, description: &str) -> Result<(), ControlError> {
    if threshold > 100 {
        return Err(invalid("trigger_threshold must be a percentage, 0 to 100"));
    }
    if description.len() > MAX_DESCRIPTION_LEN {
        return Err(invalid(format!(
            "description longer than {MAX_DESCRIPTION_LEN} bytes"
        )));
    }
    Ok(())
}

/// A plausible email address: `local@domain`, one `@`, no whitespace,
/// control characters or address-list punctuation, a domain of letters,
/// digits, `-` and non-adjacent inner dots.
fn plausible_email(addr: &str) -> bool {
    let Some((local, domain)) = addr.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && local.chars().all(|c| {
            c.is_ascii_graphic()
                && !matches!(
                    c,
                    '@' | '<' | '>' | '(' | ')' | ',' | ';' | ':' | '[' | ']' | '\\' | '"'
                )
        });
    let domain_ok = !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    addr.len() <= MAX_EMAIL_LEN && local_ok && domain_ok
}

/// An `http://` or `https://` URL with a host, no whitespace or control
/// characters.
fn plausible_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    url.len() <= MAX_URL_LEN
        && !host.is_empty()
        && !host.starts_with(':')
        && url.chars().all(|c| c.is_ascii_graphic())
}

/// A delivery config's fields for its type.
fn check_delivery(
    kind: DeliveryType,
    email: &str,
    slack_url: &str,
    slack_channel: &str,
) -> Result<(), ControlError> {
    if email.len() > MAX_EMAIL_LEN
        || slack_url.len() > MAX_URL_LEN
        || slack_channel.len() > MAX_CHANNEL_LEN
    {
        return Err(invalid(format!(
            "email is limited to {MAX_EMAIL_LEN} bytes, slack_url to {MAX_URL_LEN}, slack_channel to {MAX_CHANNEL_LEN}"
        )));
    }
    if [email, slack_url, slack_channel]
        .iter()
        .any(|f| f.chars().any(char::is_control))
    {
        return Err(invalid(
            "delivery config fields must not contain control characters",
        ));
    }
    match kind {
        DeliveryType::Email if !plausible_email(email) => Err(invalid(
            "an email delivery config requires a valid email address",
        )),
        DeliveryType::Slack | DeliveryType::Webhook if !plausible_url(slack_url) => {
            Err(invalid(format!(
                "a {} delivery config requires an http:// or https:// slack_url",
                kind.as_str()
            )))
        }
        _ => Ok(()),
    }
}

/// A watched prefix: a memcached key prefix.
fn check_prefix(name: &str) -> Result<(), ControlError> {
    if name.is_empty() || name.len() > MAX_PREFIX_LEN {
        return Err(invalid(format!(
            "a prefix is 1 to {MAX_PREFIX_LEN} bytes long"
        )));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            "a prefix must not contain whitespace or control characters",
        ));
    }
    Ok(())
}

fn tmp_name(name: &str) -> String {
    format!("{name}.tmp")
}

/// Replaces `dir/name` with `bytes` atomically and durably (see module
/// docs), mode 0600 whatever the umask. The admin endpoint writes its
/// stats history through this too.
pub fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(tmp_name(name));
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    // The umask can only remove bits; this makes 0600 exact either way.
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

/// Reads `dir/name`, or `None` when it does not exist. Tightens its mode to
/// 0600 if someone loosened it.
fn read_private(dir: &Path, name: &str) -> std::io::Result<Option<Vec<u8>>> {
    let mut f = match File::open(dir.join(name)) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if f.metadata()?.permissions().mode() & 0o077 != 0 {
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(Some(buf))
}

fn lock_dir(dir: &Path) -> Result<File, ControlError> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join(LOCK_FILE))?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == ErrorKind::WouldBlock {
            return Err(ControlError::Conflict(format!(
                "data dir {} is in use by another store",
                dir.display()
            )));
        }
        return Err(e.into());
    }
    Ok(f)
}

fn create_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // Make the new directory entry itself durable.
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Durable store of caches and credentials in a data dir. Owned by one
/// thread; cores see its state through [`ControlStore::registry`].
pub struct ControlStore {
    dir: PathBuf,
    state: State,
    token: String,
    token_created: bool,
    registry: Arc<Registry>,
    /// The node's memory that plans are checked against (none: sizes only).
    capacity: Option<Capacity>,
    /// Where commits go: `control.json` here, or the cluster's database.
    backend: Box<dyn Backend>,
    _lock: File,
}

impl std::fmt::Debug for ControlStore {
    // No passwords or token in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlStore")
            .field("dir", &self.dir)
            .field("revision", &self.state.revision)
            .field("caches", &self.state.caches.len())
            .finish()
    }
}

impl ControlStore {
    /// Opens (or creates) the store in `dir`: the directory is created with
    /// mode 0700, `control.json` with 0600, and on first open an operator
    /// token is generated into `operator.token` (0600). Stale temp files from
    /// an interrupted write are removed.
    pub fn open(dir: &Path) -> Result<ControlStore, ControlError> {
        create_dir(dir)?;
        let lock = lock_dir(dir)?;
        for name in [CONTROL_FILE, OPERATOR_TOKEN_FILE] {
            match fs::remove_file(dir.join(tmp_name(name))) {
                Err(e) if e.kind() != ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }

        let state = match read_private(dir, CONTROL_FILE)? {
            Some(bytes) => {
                let state: State = serde_json::from_slice(&bytes).map_err(|e| {
                    ControlError::Invalid(format!("{}: {e}", dir.join(CONTROL_FILE).display()))
                })?;
                state.check().map_err(|e| {
                    ControlError::Invalid(format!("{}: {e}", dir.join(CONTROL_FILE).display()))
                })?;
                state
            }
            None => {
                let state = State::fresh();
                write_private(dir, CONTROL_FILE, &encode(&state)?)?;
                state
            }
        };

        let (token, token_created) = match read_private(dir, OPERATOR_TOKEN_FILE)? {
            Some(bytes) => {
                let token = String::from_utf8(bytes)
                    .ok()
                    .map(|t| t.trim().to_owned())
                    .filter(|t| t.len() >= 32 && t.bytes().all(|b| b.is_ascii_graphic()))
                    .ok_or_else(|| {
                        ControlError::Invalid(format!(
                            "{} is malformed (delete it to generate a new token)",
                            dir.join(OPERATOR_TOKEN_FILE).display()
                        ))
                    })?;
                (token, false)
            }
            None => {
                let token = secret::operator_token()?;
                write_private(dir, OPERATOR_TOKEN_FILE, format!("{token}\n").as_bytes())?;
                (token, true)
            }
        };

        let backend = Box::new(FileBackend {
            dir: dir.to_path_buf(),
        });
        Ok(ControlStore::assemble(
            dir,
            state,
            (token, token_created),
            backend,
            lock,
        ))
    }

    /// A store over a loaded `state`, its registry published.
    fn assemble(
        dir: &Path,
        state: State,
        (token, token_created): (String, bool),
        backend: Box<dyn Backend>,
        lock: File,
    ) -> ControlStore {
        ControlStore {
            dir: dir.to_path_buf(),
            registry: Arc::new(build_registry(&state)),
            state,
            token,
            token_created,
            capacity: None,
            backend,
            _lock: lock,
        }
    }

    /// Opens a store whose state lives in a shared `backend` (a cluster's
    /// database): `revision`/`json` is the state loaded from it and `token`
    /// the cluster's operator token. The data dir keeps this node's lock
    /// and a copy of the token for the CLI (rewritten when it differs).
    pub fn open_shared(
        dir: &Path,
        backend: Box<dyn Backend>,
        revision: u64,
        json: &[u8],
        token: String,
        token_created: bool,
    ) -> Result<ControlStore, ControlError> {
        create_dir(dir)?;
        let lock = lock_dir(dir)?;
        let state = decode(revision, json)?;
        let line = format!("{token}\n");
        if read_private(dir, OPERATOR_TOKEN_FILE)?.as_deref() != Some(line.as_bytes()) {
            write_private(dir, OPERATOR_TOKEN_FILE, line.as_bytes())?;
        }
        Ok(ControlStore::assemble(
            dir,
            state,
            (token, token_created),
            backend,
            lock,
        ))
    }

    /// The committed revision this store holds.
    pub fn revision(&self) -> u64 {
        self.state.revision
    }

    /// Takes a state another node committed (`revision`, encoded `json`) if
    /// it is newer than ours; true when adopted (a new registry is out).
    pub fn adopt(&mut self, revision: u64, json: &[u8]) -> Result<bool, ControlError> {
        if revision <= self.state.revision {
            return Ok(false);
        }
        let state = decode(revision, json)?;
        self.registry = Arc::new(build_registry(&state));
        self.state = state;
        Ok(true)
    }

    /// The data dir this store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The operator token guarding the admin routes.
    pub fn operator_token(&self) -> &str {
        &self.token
    }

    /// Was the operator token generated by this `open` (first start)? The
    /// server prints it once in that case.
    pub fn operator_token_created(&self) -> bool {
        self.token_created
    }

    /// The current immutable snapshot. A new `Arc` after every change.
    pub fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry)
    }

    /// Writes `next` durably, then adopts it and publishes a new registry.
    fn commit(&mut self, mut next: State) -> Result<(), ControlError> {
        next.revision = self.state.revision + 1;
        debug_assert!(next.check().is_ok(), "{:?}", next.check());
        match self.backend.commit(next.revision, &encode(&next)?) {
            Ok(()) => {}
            Err(CommitError::Stale { revision, json }) => {
                self.adopt(revision, &json)?;
                return Err(ControlError::Stale);
            }
            Err(CommitError::Io(e)) => return Err(e.into()),
            Err(CommitError::Unavailable(m)) => return Err(ControlError::Unavailable(m)),
        }
        self.registry = Arc::new(build_registry(&next));
        self.state = next;
        Ok(())
    }

    /// Creates a cache with one primary credential holding every capability.
    /// Names must be unique among live caches.
    pub fn create_cache(
        &mut self,
        name: &str,
        memory_limit: u64,
    ) -> Result<(Cache, Credential), ControlError> {
        check_name(name)?;
        self.check_plan(None, memory_limit)?;
        if self.state.caches.iter().any(|c| c.name == name) {
            return Err(ControlError::Conflict(format!(
                "a cache named {name:?} exists"
            )));
        }
        let id = self.state.next_cache_id;
        if id == u32::MAX {
            return Err(ControlError::Conflict("cache ids exhausted".into()));
        }
        let mut next = self.state.clone();
        next.next_cache_id = id + 1;
        let cache = Cache {
            id,
            name: name.to_owned(),
            memory_limit,
            max_connections: 0,
            enabled: true,
            created: now(),
        };
        let cred = next.new_credential(id, Caps::ALL, true)?;
        next.caches.push(cache.clone());
        next.credentials.push(cred.clone());
        self.commit(next)?;
        Ok((cache, cred))
    }

    /// All caches, by id.
    pub fn caches(&self) -> Vec<Cache> {
        self.state.caches.clone()
    }

    pub fn cache(&self, id: u32) -> Option<Cache> {
        self.state.caches.iter().find(|c| c.id == id).cloned()
    }

    /// Deletes a cache with all its credentials, alerts, delivery configs,
    /// watched prefixes and SSO secret. Its id is never reused.
    pub fn delete_cache(&mut self, id: u32) -> Result<(), ControlError> {
        self.cache(id).ok_or(ControlError::NotFound)?;
        let mut next = self.state.clone();
        next.caches.retain(|c| c.id != id);
        next.credentials.retain(|c| c.cache_id != id);
        next.alerts.retain(|a| a.cache_id != id);
        next.delivery_configs.retain(|d| d.cache_id != id);
        next.watched_prefixes.retain(|p| p.cache_id != id);
        next.sso_secrets.remove(&id);
        self.commit(next)
    }

    /// Checks plans against `capacity` from now on (see `capacity.rs`).
    pub fn set_capacity(&mut self, capacity: Capacity) {
        self.capacity = Some(capacity);
    }

    /// A plan of `bytes` for cache `id` (None: new) within the size bounds
    /// and the node's overcommit limit.
    fn check_plan(&self, id: Option<u32>, bytes: u64) -> Result<(), ControlError> {
        let plans = self.state.caches.iter().map(|c| (c.id, c.memory_limit));
        capacity::check_plan(plans, id, bytes, self.capacity)
    }

    /// Changes a cache's memory plan (bytes, at least 1 MiB).
    pub fn set_memory_limit(&mut self, id: u32, bytes: u64) -> Result<Cache, ControlError> {
        self.check_plan(Some(id), bytes)?;
        self.update_cache(id, |c| c.memory_limit = bytes)
    }

    /// Changes a cache's connection limit (0 = none). Lowering it below
    /// the connections logged in now closes none of them: only new logins
    /// are refused until enough have gone.
    pub fn set_max_connections(&mut self, id: u32, n: u32) -> Result<Cache, ControlError> {
        self.update_cache(id, |c| c.max_connections = n)
    }

    /// Enables or disables a cache. A disabled cache fails authentication.
    pub fn set_enabled(&mut self, id: u32, enabled: bool) -> Result<Cache, ControlError> {
        self.update_cache(id, |c| c.enabled = enabled)
    }

    fn update_cache(
        &mut self,
        id: u32,
        change: impl FnOnce(&mut Cache),
    ) -> Result<Cache, ControlError> {
        let mut next = self.state.clone();
        let cache = next.cache_mut(id)?;
        let before = cache.clone();
        change(cache);
        let after = cache.clone();
        if after != before {
            self.commit(next)?;
        }
        Ok(after)
    }

    /// A cache's credentials, oldest first (empty for an unknown cache).
    pub fn credentials(&self, cache_id: u32) -> Vec<Credential> {
        self.state
            .credentials
            .iter()
            .filter(|c| c.cache_id == cache_id)
            .cloned()
            .collect()
    }

    /// Adds a secondary (non-primary) credential to a cache.
    pub fn add_credential(
        &mut self,
        cache_id: u32,
        caps: Caps,
    ) -> Result<Credential, ControlError> {
        self.cache(cache_id).ok_or(ControlError::NotFound)?;
        let count = self
            .state
            .credentials
            .iter()
            .filter(|c| c.cache_id == cache_id)
            .count();
        if count >= MAX_CREDENTIALS_PER_CACHE {
            return Err(ControlError::Conflict(format!(
                "cache {cache_id} already has {MAX_CREDENTIALS_PER_CACHE} credentials"
            )));
        }
        let mut next = self.state.clone();
        let cred = next.new_credential(cache_id, caps, false)?;
        next.credentials.push(cred.clone());
        self.commit(next)?;
        Ok(cred)
    }

    /// Removes a secondary credential. The primary (which is also the last
    /// one) cannot be removed: `Conflict`; promote another first.
    pub fn remove_credential(&mut self, cache_id: u32, username: &str) -> Result<(), ControlError> {
        let i = self.state.credential_index(cache_id, username)?;
        if self.state.credentials[i].primary {
            return Err(ControlError::Conflict(
                "the primary credential cannot be removed; promote another one first".into(),
            ));
        }
        let mut next = self.state.clone();
        next.credentials.remove(i);
        self.commit(next)
    }

    /// Makes `username` the cache's primary credential (the previous primary
    /// becomes secondary). Promoting the primary is a no-op.
    pub fn promote(&mut self, cache_id: u32, username: &str) -> Result<(), ControlError> {
        let i = self.state.credential_index(cache_id, username)?;
        if self.state.credentials[i].primary {
            return Ok(());
        }
        let mut next = self.state.clone();
        for (j, c) in next.credentials.iter_mut().enumerate() {
            if c.cache_id == cache_id {
                c.primary = j == i;
            }
        }
        self.commit(next)
    }

    /// Replaces a credential's capabilities.
    pub fn set_caps(
        &mut self,
        cache_id: u32,
        username: &str,
        caps: Caps,
    ) -> Result<Credential, ControlError> {
        let i = self.state.credential_index(cache_id, username)?;
        if self.state.credentials[i].caps != caps {
            let mut next = self.state.clone();
            next.credentials[i].caps = caps;
            self.commit(next)?;
        }
        Ok(self.state.credentials[i].clone())
    }

    /// A cache's alerts, oldest first (empty for an unknown cache).
    pub fn alerts(&self, cache_id: u32) -> Vec<Alert> {
        self.state
            .alerts
            .iter()
            .filter(|a| a.cache_id == cache_id)
            .cloned()
            .collect()
    }

    /// One alert of a cache.
    pub fn alert(&self, cache_id: u32, id: u64) -> Option<Alert> {
        self.state
            .alerts
            .iter()
            .find(|a| a.cache_id == cache_id && a.id == id)
            .cloned()
    }

    /// Adds an alert. `NotFound`: no such cache; `Invalid`: threshold above
    /// 100, description too long, or a delivery config that is not one of
    /// this cache's; `Conflict`: the cache has [`MAX_ALERTS_PER_CACHE`].
    pub fn add_alert(&mut self, cache_id: u32, new: NewAlert) -> Result<Alert, ControlError> {
        self.state.has_cache(cache_id)?;
        check_alert(new.trigger_threshold, &new.description)?;
        self.state.config_of(cache_id, new.delivery_config_id)?;
        if self.alerts(cache_id).len() >= MAX_ALERTS_PER_CACHE {
            return Err(ControlError::Conflict(format!(
                "a cache can have at most {MAX_ALERTS_PER_CACHE} alerts"
            )));
        }
        let mut next = self.state.clone();
        let alert = Alert {
            id: next.object_id()?,
            cache_id,
            trigger_type: new.trigger_type,
            trigger_threshold: new.trigger_threshold,
            delivery_config_id: new.delivery_config_id,
            description: new.description,
            enabled: new.enabled,
        };
        next.alerts.push(alert.clone());
        self.commit(next)?;
        Ok(alert)
    }

    /// Changes the fields of an alert that `patch` gives; the others keep
    /// their value. Validated like [`ControlStore::add_alert`]; `NotFound`
    /// for an unknown cache or alert. A patch that changes nothing commits
    /// nothing.
    pub fn update_alert(
        &mut self,
        cache_id: u32,
        id: u64,
        patch: AlertPatch,
    ) -> Result<Alert, ControlError> {
        let i = self
            .state
            .alerts
            .iter()
            .position(|a| a.cache_id == cache_id && a.id == id)
            .ok_or(ControlError::NotFound)?;
        let mut alert = self.state.alerts[i].clone();
        if let Some(t) = patch.trigger_type {
            alert.trigger_type = t;
        }
        if let Some(t) = patch.trigger_threshold {
            alert.trigger_threshold = t;
        }
        if let Some(d) = patch.delivery_config_id {
            alert.delivery_config_id = d;
        }
        if let Some(d) = patch.description {
            alert.description = d;
        }
        if let Some(e) = patch.enabled {
            alert.enabled = e;
        }
        check_alert(alert.trigger_threshold, &alert.description)?;
        self.state.config_of(cache_id, alert.delivery_config_id)?;
        if alert != self.state.alerts[i] {
            let mut next = self.state.clone();
            next.alerts[i] = alert.clone();
            self.commit(next)?;
        }
        Ok(alert)
    }

    /// Removes an alert (`NotFound` if the cache has no such alert).
    pub fn remove_alert(&mut self, cache_id: u32, id: u64) -> Result<(), ControlError> {
        self.alert(cache_id, id).ok_or(ControlError::NotFound)?;
        let mut next = self.state.clone();
        next.alerts.retain(|a| a.id != id);
        self.commit(next)
    }

    /// A cache's alert delivery configs, oldest first (empty for an unknown
    /// cache).
    pub fn delivery_configs(&self, cache_id: u32) -> Vec<DeliveryConfig> {
        self.state
            .delivery_configs
            .iter()
            .filter(|d| d.cache_id == cache_id)
            .cloned()
            .collect()
    }

    /// One delivery config of a cache.
    pub fn delivery_config(&self, cache_id: u32, id: u64) -> Option<DeliveryConfig> {
        self.state
            .delivery_configs
            .iter()
            .find(|d| d.cache_id == cache_id && d.id == id)
            .cloned()
    }

    /// Adds a delivery config. `Invalid`: an `email` config without a
    /// plausible address, a `slack` or `webhook` config without an http(s)
    /// URL, or over-long fields; `Conflict`: the cache has
    /// [`MAX_DELIVERY_CONFIGS_PER_CACHE`].
    pub fn add_delivery_config(
        &mut self,
        cache_id: u32,
        new: NewDeliveryConfig,
    ) -> Result<DeliveryConfig, ControlError> {
        self.state.has_cache(cache_id)?;
        check_delivery(
            new.delivery_type,
            &new.email,
            &new.slack_url,
            &new.slack_channel,
        )?;
        if self.delivery_configs(cache_id).len() >= MAX_DELIVERY_CONFIGS_PER_CACHE {
            return Err(ControlError::Conflict(format!(
                "a cache can have at most {MAX_DELIVERY_CONFIGS_PER_CACHE} alert delivery configs"
            )));
        }
        let mut next = self.state.clone();
        let config = DeliveryConfig {
            id: next.object_id()?,
            cache_id,
            delivery_type: new.delivery_type,
            email: new.email,
            slack_url: new.slack_url,
            slack_channel: new.slack_channel,
        };
        next.delivery_configs.push(config.clone());
        self.commit(next)?;
        Ok(config)
    }

    /// Removes a delivery config. `NotFound` if the cache has no such
    /// config; `Conflict` while one of its alerts delivers through it
    /// (remove or re-point the alert first).
    pub fn remove_delivery_config(&mut self, cache_id: u32, id: u64) -> Result<(), ControlError> {
        self.delivery_config(cache_id, id)
            .ok_or(ControlError::NotFound)?;
        if let Some(a) = self
            .state
            .alerts
            .iter()
            .find(|a| a.delivery_config_id == id)
        {
            return Err(ControlError::Conflict(format!(
                "alert {} uses this delivery config; delete or change it first",
                a.id
            )));
        }
        let mut next = self.state.clone();
        next.delivery_configs.retain(|d| d.id != id);
        self.commit(next)
    }

    /// A cache's watched prefixes, oldest first (empty for an unknown cache).
    pub fn prefixes(&self, cache_id: u32) -> Vec<WatchedPrefix> {
        self.state
            .watched_prefixes
            .iter()
            .filter(|p| p.cache_id == cache_id)
            .cloned()
            .collect()
    }

    /// Watches a key prefix. `Invalid`: empty, longer than
    /// [`MAX_PREFIX_LEN`] bytes, or with whitespace or control characters;
    /// `Conflict`: already watched, or the cache has
    /// [`MAX_WATCHED_PREFIXES_PER_CACHE`]. The new registry carries it to
    /// the cores ([`Registry::watched`]).
    pub fn add_prefix(&mut self, cache_id: u32, name: &str) -> Result<WatchedPrefix, ControlError> {
        self.state.has_cache(cache_id)?;
        check_prefix(name)?;
        let existing = self.prefixes(cache_id);
        if existing.iter().any(|p| p.name == name) {
            return Err(ControlError::Conflict(format!(
                "prefix {name:?} is already watched"
            )));
        }
        if existing.len() >= MAX_WATCHED_PREFIXES_PER_CACHE {
            return Err(ControlError::Conflict(format!(
                "a cache can watch at most {MAX_WATCHED_PREFIXES_PER_CACHE} prefixes"
            )));
        }
        let mut next = self.state.clone();
        let prefix = WatchedPrefix {
            id: next.object_id()?,
            cache_id,
            name: name.to_owned(),
        };
        next.watched_prefixes.push(prefix.clone());
        self.commit(next)?;
        Ok(prefix)
    }

    /// Stops watching a prefix (`NotFound` if the cache has no such prefix).
    pub fn remove_prefix(&mut self, cache_id: u32, id: u64) -> Result<(), ControlError> {
        if !self
            .state
            .watched_prefixes
            .iter()
            .any(|p| p.cache_id == cache_id && p.id == id)
        {
            return Err(ControlError::NotFound);
        }
        let mut next = self.state.clone();
        next.watched_prefixes.retain(|p| p.id != id);
        self.commit(next)
    }

    /// Replaces a cache's SSO secret with a new random one (128 bits, 32
    /// hex digits) and returns it once committed.
    pub fn rotate_sso(&mut self, cache_id: u32) -> Result<String, ControlError> {
        self.state.has_cache(cache_id)?;
        let secret = secret::password()?;
        let mut next = self.state.clone();
        next.sso_secrets.insert(cache_id, secret.clone());
        self.commit(next)?;
        Ok(secret)
    }

    /// A cache's SSO secret: `None` for an unknown cache or one whose secret
    /// was never rotated (so an empty secret can never match).
    pub fn sso_secret(&self, cache_id: u32) -> Option<String> {
        self.state.sso_secrets.get(&cache_id).cloned()
    }
}

fn build_registry(state: &State) -> Registry {
    Registry::build(state.revision, &state.caches, &state.credentials)
        .with_watched(&state.watched_prefixes)
}

/// The encoded state of a store with nothing in it (revision 0): what a
/// new shared database starts from.
pub fn empty_state() -> Vec<u8> {
    serde_json::to_vec(&State::fresh()).unwrap_or_default()
}

/// A state read from a shared backend, checked like a file is; `revision`
/// (the database's column) wins over the document's own.
fn decode(revision: u64, json: &[u8]) -> Result<State, ControlError> {
    let mut state: State = serde_json::from_slice(json)
        .map_err(|e| ControlError::Invalid(format!("control state: {e}")))?;
    state.revision = revision;
    state
        .check()
        .map_err(|e| ControlError::Invalid(format!("control state: {e}")))?;
    Ok(state)
}

fn encode(state: &State) -> Result<Vec<u8>, ControlError> {
    let mut bytes = serde_json::to_vec_pretty(state)
        .map_err(|e| ControlError::Invalid(format!("encoding control state: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}

mod certs;
#[cfg(test)]
mod tests;
