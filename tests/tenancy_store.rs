//! The control store end to end: persistence, file modes, crash safety,
//! credential rules, and authentication through the published registry.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use shoal::protocol::reply;
use shoal::tenancy::{
    authenticate_ascii, authenticate_plain, Caps, ControlError, ControlStore, Registry,
    CONTROL_FILE, OPERATOR_TOKEN_FILE,
};

/// A fresh, not yet existing directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p = std::env::temp_dir().join(format!(
            "shoal-tenancy-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The committed file parses as complete JSON with the expected top level.
fn committed_json(dir: &Path) -> serde_json::Value {
    let bytes = fs::read(dir.join(CONTROL_FILE)).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("control.json is complete");
    for field in [
        "format",
        "revision",
        "next_cache_id",
        "caches",
        "credentials",
    ] {
        assert!(v.get(field).is_some(), "missing {field}");
    }
    v
}

fn plain(user: &str, pass: &str) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(user.as_bytes());
    v.push(0);
    v.extend_from_slice(pass.as_bytes());
    v
}

const READ_ONLY: Caps = Caps {
    write: false,
    flush: false,
    api: false,
};

#[test]
fn persistence_round_trip() {
    let tmp = TempDir::new("roundtrip");
    let (caches, creds, version, token) = {
        let mut s = ControlStore::open(tmp.path()).unwrap();
        assert!(s.operator_token_created());
        let (a, _) = s.create_cache("alpha", 25 << 20).unwrap();
        let (b, _) = s.create_cache("beta", 100 << 20).unwrap();
        let extra = s.add_credential(a.id, READ_ONLY).unwrap();
        s.promote(a.id, &extra.username).unwrap();
        s.set_caps(
            a.id,
            &extra.username,
            Caps {
                write: true,
                flush: false,
                api: true,
            },
        )
        .unwrap();
        s.set_enabled(b.id, false).unwrap();
        s.set_memory_limit(a.id, 50 << 20).unwrap();
        let creds: Vec<_> = [a.id, b.id].iter().map(|&id| s.credentials(id)).collect();
        (
            s.caches(),
            creds,
            s.registry().version(),
            s.operator_token().to_owned(),
        )
    };
    let s = ControlStore::open(tmp.path()).unwrap();
    assert!(!s.operator_token_created());
    assert_eq!(s.operator_token(), token);
    assert_eq!(s.caches(), caches);
    assert_eq!(s.credentials(caches[0].id), creds[0]);
    assert_eq!(s.credentials(caches[1].id), creds[1]);
    assert_eq!(s.registry().version(), version);
    assert_eq!(s.cache(caches[0].id).unwrap().memory_limit, 50 << 20);
    assert!(!s.cache(caches[1].id).unwrap().enabled);
    // The reopened registry authenticates the same credentials.
    let r = s.registry();
    let primary = s
        .credentials(caches[0].id)
        .into_iter()
        .find(|c| c.primary)
        .unwrap();
    let sess = r
        .authenticate(primary.username.as_bytes(), primary.password.as_bytes())
        .unwrap();
    assert_eq!(sess.cache_id, caches[0].id);
    assert!(sess.caps.write && !sess.caps.flush && sess.caps.api);
}

#[test]
fn file_and_dir_modes() {
    let tmp = TempDir::new("modes");
    let dir = tmp.path().join("nested").join("data");
    let mut s = ControlStore::open(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join(CONTROL_FILE)), 0o600);
    assert_eq!(mode(&dir.join(OPERATOR_TOKEN_FILE)), 0o600);
    s.create_cache("c", 1 << 20).unwrap();
    assert_eq!(mode(&dir.join(CONTROL_FILE)), 0o600);
    drop(s);
    // A loosened file is tightened again on open.
    fs::set_permissions(dir.join(CONTROL_FILE), fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(
        dir.join(OPERATOR_TOKEN_FILE),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let _s = ControlStore::open(&dir).unwrap();
    assert_eq!(mode(&dir.join(CONTROL_FILE)), 0o600);
    assert_eq!(mode(&dir.join(OPERATOR_TOKEN_FILE)), 0o600);
}

#[test]
fn operator_token() {
    let tmp = TempDir::new("token");
    let token = {
        let s = ControlStore::open(tmp.path()).unwrap();
        let t = s.operator_token().to_owned();
        assert!(t.len() >= 32);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        t
    };
    let on_disk = fs::read_to_string(tmp.path().join(OPERATOR_TOKEN_FILE)).unwrap();
    assert_eq!(on_disk.trim(), token);
    // Deleting it makes the next open generate a different one.
    fs::remove_file(tmp.path().join(OPERATOR_TOKEN_FILE)).unwrap();
    let s = ControlStore::open(tmp.path()).unwrap();
    assert!(s.operator_token_created());
    assert_ne!(s.operator_token(), token);
    drop(s);
    // A malformed token file is an error, never silently an empty token.
    fs::write(tmp.path().join(OPERATOR_TOKEN_FILE), b"short\n").unwrap();
    assert!(matches!(
        ControlStore::open(tmp.path()),
        Err(ControlError::Invalid(_))
    ));
    // Tokens of two data dirs differ.
    let other = TempDir::new("token2");
    let a = ControlStore::open(other.path()).unwrap();
    assert_ne!(a.operator_token(), token);
}

#[test]
fn crash_leftovers_never_break_open() {
    let tmp = TempDir::new("crash");
    let dir = tmp.path();
    let id = {
        let mut s = ControlStore::open(dir).unwrap();
        s.create_cache("kept", 1 << 20).unwrap().0.id
    };
    let good = fs::read(dir.join(CONTROL_FILE)).unwrap();
    let tmp_file = dir.join(format!("{CONTROL_FILE}.tmp"));
    let tmp_token = dir.join(format!("{OPERATOR_TOKEN_FILE}.tmp"));

    // Crash while writing the temp file: truncated JSON, garbage, empty.
    let leftovers: Vec<Vec<u8>> = vec![
        good[..good.len() / 2].to_vec(),
        b"\x00\xff garbage".to_vec(),
        Vec::new(),
    ];
    for junk in leftovers {
        fs::write(&tmp_file, &junk).unwrap();
        fs::write(&tmp_token, &junk).unwrap();
        let s = ControlStore::open(dir).unwrap();
        assert_eq!(s.cache(id).unwrap().name, "kept");
        assert!(!tmp_file.exists() && !tmp_token.exists());
        assert_eq!(fs::read(dir.join(CONTROL_FILE)).unwrap(), good);
    }

    // Crash after the temp file was complete but before the rename: the
    // change was never acknowledged, so the old state is the right one.
    {
        let mut s = ControlStore::open(dir).unwrap();
        s.create_cache("unacknowledged", 1 << 20).unwrap();
        let newer = fs::read(dir.join(CONTROL_FILE)).unwrap();
        drop(s);
        fs::write(dir.join(CONTROL_FILE), &good).unwrap();
        fs::write(&tmp_file, &newer).unwrap();
    }
    let s = ControlStore::open(dir).unwrap();
    assert_eq!(s.caches().len(), 1);
    assert!(!tmp_file.exists());
}

#[test]
fn committed_file_is_always_complete() {
    let tmp = TempDir::new("complete");
    let mut s = ControlStore::open(tmp.path()).unwrap();
    assert_eq!(committed_json(tmp.path())["revision"], 0);
    let (c, _) = s.create_cache("a", 1 << 20).unwrap();
    committed_json(tmp.path());
    let cred = s.add_credential(c.id, Caps::ALL).unwrap();
    committed_json(tmp.path());
    s.promote(c.id, &cred.username).unwrap();
    s.set_caps(c.id, &cred.username, READ_ONLY).unwrap();
    s.set_enabled(c.id, false).unwrap();
    s.set_memory_limit(c.id, 7 << 20).unwrap();
    let v = committed_json(tmp.path());
    assert_eq!(v["revision"], s.registry().version());
    assert_eq!(v["caches"][0]["memory_limit"], 7 << 20);
    assert_eq!(v["credentials"][1]["primary"], true);
    s.delete_cache(c.id).unwrap();
    let v = committed_json(tmp.path());
    assert_eq!(v["caches"].as_array().unwrap().len(), 0);
    assert_eq!(v["credentials"].as_array().unwrap().len(), 0);
    assert_eq!(v["next_cache_id"], 2);
    // No temp file is left behind after successful writes.
    let names: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn corrupt_committed_file_is_refused_not_overwritten() {
    let tmp = TempDir::new("corrupt");
    drop(ControlStore::open(tmp.path()).unwrap());
    let path = tmp.path().join(CONTROL_FILE);
    for junk in [&b"{\"format\": 1, \"revi"[..], b"[]", b"{\"format\": 99, \"revision\": 0, \"next_cache_id\": 1, \"caches\": [], \"credentials\": []}"] {
        fs::write(&path, junk).unwrap();
        assert!(matches!(
            ControlStore::open(tmp.path()),
            Err(ControlError::Invalid(_))
        ));
        assert_eq!(fs::read(&path).unwrap(), junk);
    }
}

#[test]
fn data_dir_is_exclusive() {
    let tmp = TempDir::new("exclusive");
    let s = ControlStore::open(tmp.path()).unwrap();
    assert!(matches!(
        ControlStore::open(tmp.path()),
        Err(ControlError::Conflict(_))
    ));
    drop(s);
    ControlStore::open(tmp.path()).unwrap();
}

#[test]
fn cache_ids_never_reused() {
    let tmp = TempDir::new("ids");
    let mut s = ControlStore::open(tmp.path()).unwrap();
    let a = s.create_cache("a", 1 << 20).unwrap().0.id;
    let b = s.create_cache("b", 1 << 20).unwrap().0.id;
    assert_eq!((a, b), (1, 2));
    s.delete_cache(b).unwrap();
    let c = s.create_cache("b", 1 << 20).unwrap().0.id;
    assert_eq!(c, 3);
    s.delete_cache(c).unwrap();
    drop(s);
    let mut s = ControlStore::open(tmp.path()).unwrap();
    assert_eq!(s.create_cache("d", 1 << 20).unwrap().0.id, 4);
    assert!(matches!(s.delete_cache(2), Err(ControlError::NotFound)));
    assert!(s.cache(2).is_none());
    assert!(s.credentials(2).is_empty());
}

#[test]
fn cache_validation() {
    let tmp = TempDir::new("validation");
    let mut s = ControlStore::open(tmp.path()).unwrap();
    let v = s.registry().version();
    assert!(matches!(
        s.create_cache("", 1 << 20),
        Err(ControlError::Invalid(_))
    ));
    assert!(matches!(
        s.create_cache("  ", 1 << 20),
        Err(ControlError::Invalid(_))
    ));
    assert!(matches!(
        s.create_cache("a\nb", 1 << 20),
        Err(ControlError::Invalid(_))
    ));
    assert!(matches!(
        s.create_cache(&"x".repeat(129), 1 << 20),
        Err(ControlError::Invalid(_))
    ));
    assert!(matches!(
        s.create_cache("z", 0),
        Err(ControlError::Invalid(_))
    ));
    assert_eq!(s.registry().version(), v, "failed calls change nothing");
    let (c, primary) = s.create_cache("web", 25 << 20).unwrap();
    assert!(c.enabled && c.memory_limit == 25 << 20 && c.name == "web");
    assert!(primary.primary && primary.caps == Caps::ALL && primary.cache_id == c.id);
    assert_eq!(primary.username.len(), 6);
    assert_eq!(primary.password.len(), 32);
    assert!(matches!(
        s.create_cache("web", 1 << 20),
        Err(ControlError::Conflict(_))
    ));
    assert!(matches!(
        s.set_memory_limit(c.id, 0),
        Err(ControlError::Invalid(_))
    ));
    assert!(matches!(
        s.set_memory_limit(99, 1 << 20),
        Err(ControlError::NotFound)
    ));
    // Plans below 1 MiB or absurdly large are refused.
    for bad in [1, (1 << 20) - 1, i64::MAX as u64, u64::MAX] {
        assert!(matches!(
            s.set_memory_limit(c.id, bad),
            Err(ControlError::Invalid(_))
        ));
        assert!(matches!(
            s.create_cache("big", bad),
            Err(ControlError::Invalid(_))
        ));
    }
    assert!(matches!(
        s.set_enabled(99, true),
        Err(ControlError::NotFound)
    ));
    assert!(matches!(
        s.add_credential(99, Caps::ALL),
        Err(ControlError::NotFound)
    ));
}

#[test]
fn credential_rules() {
    let tmp = TempDir::new("creds");
    let mut s = ControlStore::open(tmp.path()).unwrap();
    let (a, first) = s.create_cache("a", 1 << 20).unwrap();
    let (b, other) = s.create_cache("b", 1 << 20).unwrap();
    let primaries = |s: &ControlStore, id| {
        s.credentials(id)
            .into_iter()
            .filter(|c| c.primary)
            .map(|c| c.username)
            .collect::<Vec<_>>()
    };

    // The only credential is the primary and cannot be removed.
    assert!(matches!(
        s.remove_credential(a.id, &first.username),
        Err(ControlError::Conflict(_))
    ));
    let second = s.add_credential(a.id, READ_ONLY).unwrap();
    assert!(!second.primary);
    assert_eq!(second.caps, READ_ONLY);
    assert_eq!(primaries(&s, a.id), vec![first.username.clone()]);
    // Still the primary: still not removable.
    assert!(matches!(
        s.remove_credential(a.id, &first.username),
        Err(ControlError::Conflict(_))
    ));

    // Promote moves the flag: exactly one primary.
    s.promote(a.id, &second.username).unwrap();
    assert_eq!(primaries(&s, a.id), vec![second.username.clone()]);
    let v = s.registry().version();
    s.promote(a.id, &second.username).unwrap();
    assert_eq!(
        s.registry().version(),
        v,
        "promoting the primary is a no-op"
    );
    // Now the old primary is a secondary and can go (rotation).
    s.remove_credential(a.id, &first.username).unwrap();
    assert_eq!(s.credentials(a.id).len(), 1);
    assert!(matches!(
        s.remove_credential(a.id, &second.username),
        Err(ControlError::Conflict(_))
    ));

    // Credentials are addressed within their own cache only.
    assert!(matches!(
        s.promote(a.id, &other.username),
        Err(ControlError::NotFound)
    ));
    assert!(matches!(
        s.remove_credential(a.id, &other.username),
        Err(ControlError::NotFound)
    ));
    assert!(matches!(
        s.set_caps(a.id, &other.username, READ_ONLY),
        Err(ControlError::NotFound)
    ));
    assert!(matches!(
        s.remove_credential(a.id, &first.username),
        Err(ControlError::NotFound)
    ));
    assert_eq!(primaries(&s, b.id), vec![other.username.clone()]);

    // set_caps returns the updated credential and persists.
    let updated = s
        .set_caps(
            b.id,
            &other.username,
            Caps {
                write: false,
                flush: true,
                api: false,
            },
        )
        .unwrap();
    assert!(!updated.caps.write && updated.caps.flush && !updated.caps.api);
    assert!(updated.primary);
    assert_eq!(s.credentials(b.id)[0], updated);
}

#[test]
fn credential_limit_and_unique_usernames() {
    let tmp = TempDir::new("limit");
    let mut s = ControlStore::open(tmp.path()).unwrap();
    let mut all = std::collections::HashSet::new();
    for i in 0..5 {
        let (c, p) = s.create_cache(&format!("c{i}"), 1 << 20).unwrap();
        assert!(all.insert(p.username));
        for _ in 0..19 {
            assert!(all.insert(s.add_credential(c.id, Caps::ALL).unwrap().username));
        }
    }
    assert_eq!(all.len(), 100);
    let c = s.caches()[0].id;
    while s.credentials(c).len() < shoal::tenancy::MAX_CREDENTIALS_PER_CACHE {
        s.add_credential(c, READ_ONLY).unwrap();
    }
    assert!(matches!(
        s.add_credential(c, READ_ONLY),
        Err(ControlError::Conflict(_))
    ));
    for u in s.caches().iter().flat_map(|c| s.credentials(c.id)) {
        assert!(shoal::tenancy::is_username_shaped(u.username.as_bytes()));
    }
}

#[test]
fn authentication_follows_changes() {
    let tmp = TempDir::new("auth");
    let mut s = ControlStore::open(tmp.path()).unwrap();
    let (c, p) = s.create_cache("a", 1 << 20).unwrap();
    let extra = s.add_credential(c.id, READ_ONLY).unwrap();
    let r = s.registry();

    let sess = r
        .authenticate(p.username.as_bytes(), p.password.as_bytes())
        .unwrap();
    assert_eq!(sess.cache_id, c.id);
    assert_eq!(sess.caps, Caps::ALL);
    assert!(r
        .authenticate(p.username.as_bytes(), extra.password.as_bytes())
        .is_none());
    assert!(r.authenticate(b"NOUSER", p.password.as_bytes()).is_none());
    let ro = r
        .authenticate(extra.username.as_bytes(), extra.password.as_bytes())
        .unwrap();
    assert_eq!(ro.caps, READ_ONLY);

    // Revoke: new snapshot rejects, old session no longer valid; the old
    // snapshot itself is immutable.
    s.remove_credential(c.id, &extra.username).unwrap();
    let r2 = s.registry();
    assert!(r2
        .authenticate(extra.username.as_bytes(), extra.password.as_bytes())
        .is_none());
    assert!(!r2.still_valid(&ro));
    assert!(r2.still_valid(&sess));
    assert!(r.still_valid(&ro));

    // Disable: right password fails, sessions die; enable restores.
    s.set_enabled(c.id, false).unwrap();
    let r3 = s.registry();
    assert!(r3
        .authenticate(p.username.as_bytes(), p.password.as_bytes())
        .is_none());
    assert!(!r3.still_valid(&sess));
    assert!(!r3.cache(c.id).unwrap().enabled);
    s.set_enabled(c.id, true).unwrap();
    assert!(s.registry().still_valid(&sess));

    // Capability change: still valid, refresh shows the new caps.
    s.set_caps(c.id, &p.username, READ_ONLY).unwrap();
    let r4 = s.registry();
    assert!(r4.still_valid(&sess));
    assert_eq!(r4.refresh(&sess).unwrap().caps, READ_ONLY);

    // Delete the cache: everything gone.
    s.delete_cache(c.id).unwrap();
    let r5 = s.registry();
    assert!(!r5.still_valid(&sess));
    assert!(r5
        .authenticate(p.username.as_bytes(), p.password.as_bytes())
        .is_none());
    assert!(r5.cache(c.id).is_none());
}

#[test]
fn registry_version_increments_on_every_change() {
    let tmp = TempDir::new("version");
    let mut s = ControlStore::open(tmp.path()).unwrap();
    let mut last = s.registry().version();
    let mut bumped = |s: &ControlStore| {
        let v = s.registry().version();
        assert!(v > last, "{v} > {last}");
        last = v;
    };
    let (c, p) = s.create_cache("a", 1 << 20).unwrap();
    bumped(&s);
    let e = s.add_credential(c.id, Caps::ALL).unwrap();
    bumped(&s);
    s.set_caps(c.id, &e.username, READ_ONLY).unwrap();
    bumped(&s);
    s.promote(c.id, &e.username).unwrap();
    bumped(&s);
    s.remove_credential(c.id, &p.username).unwrap();
    bumped(&s);
    s.set_enabled(c.id, false).unwrap();
    bumped(&s);
    s.set_memory_limit(c.id, 2 << 20).unwrap();
    bumped(&s);
    s.delete_cache(c.id).unwrap();
    bumped(&s);
    // Unchanged values and failures publish nothing new.
    let (c, _) = s.create_cache("b", 1 << 20).unwrap();
    let before = s.registry();
    s.set_enabled(c.id, true).unwrap();
    s.set_memory_limit(c.id, 1 << 20).unwrap();
    let _ = s.delete_cache(999);
    assert!(Arc::ptr_eq(&before, &s.registry()));
}

#[test]
fn sasl_and_ascii_with_store_credentials() {
    let tmp = TempDir::new("wire");
    let mut s = ControlStore::open(tmp.path()).unwrap();
    let (c, p) = s.create_cache("a", 1 << 20).unwrap();
    let r = s.registry();

    let sess = authenticate_plain(&r, &plain(&p.username, &p.password)).unwrap();
    assert_eq!(sess.cache_id, c.id);
    assert!(authenticate_plain(&r, &plain(&p.username, "nope")).is_none());
    assert!(authenticate_plain(&r, b"\0\0").is_none());

    let ascii = authenticate_ascii(&r, p.username.as_bytes(), p.password.as_bytes()).unwrap();
    assert_eq!(ascii, sess);
    let y = format!("{} {}", p.username, p.password);
    assert_eq!(
        authenticate_ascii(&r, b"anykey", y.as_bytes()).unwrap(),
        sess
    );
    assert_eq!(
        authenticate_ascii(&r, p.username.as_bytes(), b"wrong"),
        Err(reply::CLIENT_ERROR_AUTH_FAILURE)
    );
    assert_eq!(
        authenticate_ascii(&r, b"anykey", b"nospace"),
        Err(reply::CLIENT_ERROR_BAD_AUTH_TOKEN_FORMAT)
    );

    s.set_enabled(c.id, false).unwrap();
    let r = s.registry();
    assert!(authenticate_plain(&r, &plain(&p.username, &p.password)).is_none());
    assert_eq!(
        authenticate_ascii(&r, p.username.as_bytes(), p.password.as_bytes()),
        Err(reply::CLIENT_ERROR_AUTH_FAILURE)
    );
}

#[test]
fn snapshots_are_shared_across_threads() {
    let tmp = TempDir::new("threads");
    let mut s = ControlStore::open(tmp.path()).unwrap();
    let (_, p) = s.create_cache("a", 1 << 20).unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Arc<Registry>>();
    let user = p.username.clone();
    let pass = p.password.clone();
    let reader = std::thread::spawn(move || {
        let mut ok = 0;
        while let Ok(r) = rx.recv() {
            if r.authenticate(user.as_bytes(), pass.as_bytes()).is_some() {
                ok += 1;
            }
        }
        ok
    });
    for i in 0..20 {
        s.create_cache(&format!("n{i}"), 1 << 20).unwrap();
        tx.send(s.registry()).unwrap();
    }
    drop(tx);
    assert_eq!(reader.join().unwrap(), 20);
}
