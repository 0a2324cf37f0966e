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
//!                      "primary": true, "created": 1700000000 } ] }
//! ```
//! `revision` counts committed changes and becomes [`Registry::version`];
//! `next_cache_id` makes ids never reused after deletion.
//!
//! # Credential rules
//! Each cache always has exactly one primary credential: `create_cache`
//! makes it, `promote` moves the flag, and the primary cannot be removed
//! (promote another one first). MemCachier's docs define rotation as "create
//! a secondary, promote it"; they do not allow a cache without credentials,
//! so the last credential — always the primary — cannot be removed either.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{secret, Cache, Caps, ControlError, Credential, Registry};

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
/// Version of the `control.json` layout this build reads and writes.
const FORMAT: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    format: u32,
    revision: u64,
    next_cache_id: u32,
    caches: Vec<Cache>,
    credentials: Vec<Credential>,
}

impl State {
    fn fresh() -> State {
        State {
            format: FORMAT,
            revision: 0,
            next_cache_id: 1,
            caches: Vec::new(),
            credentials: Vec::new(),
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
        Ok(())
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

fn check_limit(bytes: u64) -> Result<(), ControlError> {
    if bytes == 0 {
        return Err(ControlError::Invalid("memory limit must be > 0".into()));
    }
    Ok(())
}

fn tmp_name(name: &str) -> String {
    format!("{name}.tmp")
}

/// Replaces `dir/name` with `bytes` atomically and durably (see module docs).
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
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
                write_atomic(dir, CONTROL_FILE, &encode(&state)?)?;
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
                write_atomic(dir, OPERATOR_TOKEN_FILE, format!("{token}\n").as_bytes())?;
                (token, true)
            }
        };

        let registry = Arc::new(Registry::build(
            state.revision,
            &state.caches,
            &state.credentials,
        ));
        Ok(ControlStore {
            dir: dir.to_path_buf(),
            state,
            token,
            token_created,
            registry,
            _lock: lock,
        })
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
        write_atomic(&self.dir, CONTROL_FILE, &encode(&next)?)?;
        self.registry = Arc::new(Registry::build(
            next.revision,
            &next.caches,
            &next.credentials,
        ));
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
        check_limit(memory_limit)?;
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

    /// Deletes a cache and all its credentials. Its id is never reused.
    pub fn delete_cache(&mut self, id: u32) -> Result<(), ControlError> {
        self.cache(id).ok_or(ControlError::NotFound)?;
        let mut next = self.state.clone();
        next.caches.retain(|c| c.id != id);
        next.credentials.retain(|c| c.cache_id != id);
        self.commit(next)
    }

    /// Changes a cache's memory plan (bytes, > 0).
    pub fn set_memory_limit(&mut self, id: u32, bytes: u64) -> Result<Cache, ControlError> {
        check_limit(bytes)?;
        self.update_cache(id, |c| c.memory_limit = bytes)
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
}

fn encode(state: &State) -> Result<Vec<u8>, ControlError> {
    let mut bytes = serde_json::to_vec_pretty(state)
        .map_err(|e| ControlError::Invalid(format!("encoding control state: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "shoal-store-unit-{tag}-{}-{}",
            std::process::id(),
            secret::username().unwrap()
        ));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn state_check_rejects_broken_invariants() {
        let mut s = State::fresh();
        assert!(s.check().is_ok());
        s.caches.push(Cache {
            id: 1,
            name: "a".into(),
            memory_limit: 1,
            enabled: true,
            created: 0,
        });
        // id not below next_cache_id
        assert!(s.check().is_err());
        s.next_cache_id = 2;
        // no primary
        assert!(s.check().is_err());
        let cred = s.new_credential(1, Caps::ALL, true).unwrap();
        s.credentials.push(cred.clone());
        assert!(s.check().is_ok());
        // two primaries
        let mut two = s.clone();
        two.credentials.push(Credential {
            username: "OTHER1".into(),
            ..cred.clone()
        });
        assert!(two.check().is_err());
        // duplicate username
        let mut dup = s.clone();
        dup.credentials.push(Credential {
            primary: false,
            ..cred.clone()
        });
        assert!(dup.check().is_err());
        // dangling credential
        let mut dangling = s.clone();
        dangling.credentials.push(Credential {
            username: "OTHER2".into(),
            cache_id: 9,
            ..cred
        });
        assert!(dangling.check().is_err());
        let mut future = s;
        future.format = 2;
        assert!(future.check().is_err());
    }

    #[test]
    fn failed_write_leaves_state_unchanged() {
        let dir = tmpdir("failwrite");
        let mut store = ControlStore::open(&dir).unwrap();
        let (c, _) = store.create_cache("a", 1 << 20).unwrap();
        let v = store.registry().version();
        // A directory squatting on the temp name makes the write fail.
        fs::create_dir(dir.join(tmp_name(CONTROL_FILE))).unwrap();
        fs::write(dir.join(tmp_name(CONTROL_FILE)).join("x"), b"x").unwrap();
        assert!(matches!(
            store.set_memory_limit(c.id, 2 << 20),
            Err(ControlError::Io(_))
        ));
        assert_eq!(store.cache(c.id).unwrap().memory_limit, 1 << 20);
        assert_eq!(store.registry().version(), v);
        fs::remove_dir_all(dir.join(tmp_name(CONTROL_FILE))).unwrap();
        assert_eq!(
            store.set_memory_limit(c.id, 2 << 20).unwrap().memory_limit,
            2 << 20
        );
        drop(store);
        let store = ControlStore::open(&dir).unwrap();
        assert_eq!(store.cache(c.id).unwrap().memory_limit, 2 << 20);
        drop(store);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn second_open_is_refused_while_locked() {
        let dir = tmpdir("lock");
        let store = ControlStore::open(&dir).unwrap();
        assert!(matches!(
            ControlStore::open(&dir),
            Err(ControlError::Conflict(_))
        ));
        drop(store);
        ControlStore::open(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
