//! Two control stores on one shared backend, as two cluster nodes on one
//! database: a change made against an old revision is refused as `Stale`
//! with the newer state adopted, a retry then lands on top of it, and
//! `adopt` carries each node's changes to the other (the cluster agent's
//! reload). The database itself is exercised by scripts/cluster-test.sh.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use shoal::tenancy::backend::{Backend, CommitError};
use shoal::tenancy::{empty_state, Caps, ControlError, ControlStore};

/// The shared "database": the committed revision and state.
#[derive(Clone)]
struct Db(Arc<Mutex<(u64, Vec<u8>, bool)>>);

impl Db {
    fn new() -> Db {
        Db(Arc::new(Mutex::new((0, empty_state(), true))))
    }
    fn head(&self) -> (u64, Vec<u8>) {
        let g = self.0.lock().unwrap();
        (g.0, g.1.clone())
    }
    fn set_up(&self, up: bool) {
        self.0.lock().unwrap().2 = up;
    }
}

impl Backend for Db {
    fn commit(&mut self, revision: u64, json: &[u8]) -> Result<(), CommitError> {
        let mut g = self.0.lock().unwrap();
        if !g.2 {
            return Err(CommitError::Unavailable("down".into()));
        }
        if g.0 + 1 != revision {
            return Err(CommitError::Stale {
                revision: g.0,
                json: g.1.clone(),
            });
        }
        *g = (revision, json.to_vec(), true);
        Ok(())
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "shoal-shared-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    ));
    let _ = std::fs::remove_dir_all(&p);
    p
}

fn node(db: &Db, tag: &str) -> (ControlStore, PathBuf) {
    let dir = temp_dir(tag);
    let (rev, json) = db.head();
    let store = ControlStore::open_shared(
        &dir,
        Box::new(db.clone()),
        rev,
        &json,
        "t".repeat(40),
        false,
    )
    .unwrap();
    (store, dir)
}

#[test]
fn a_stale_change_adopts_the_newer_state_and_a_retry_lands_on_it() {
    let db = Db::new();
    let (mut a, da) = node(&db, "a");
    let (mut b, db_dir) = node(&db, "b");

    let (web, web_cred) = a.create_cache("web", 25 << 20).unwrap();
    assert_eq!(a.revision(), 1);

    // B still holds revision 0: its change is refused, and B now has A's cache.
    assert!(matches!(
        b.create_cache("api", 25 << 20),
        Err(ControlError::Stale)
    ));
    assert_eq!(b.revision(), 1);
    assert_eq!(b.cache(web.id).map(|c| c.name), Some("web".to_string()));
    // The retry lands on top of A's change: both caches, distinct ids.
    let (api, api_cred) = b.create_cache("api", 25 << 20).unwrap();
    assert_ne!(api.id, web.id);
    assert_eq!(b.revision(), 2);

    // A learns B's change through adopt (the agent's reload): B's credential
    // authenticates on A.
    let (rev, json) = db.head();
    assert!(a.adopt(rev, &json).unwrap());
    assert!(!a.adopt(rev, &json).unwrap(), "same revision: nothing new");
    let session = a
        .registry()
        .authenticate(api_cred.username.as_bytes(), api_cred.password.as_bytes())
        .expect("B's credential on A");
    assert_eq!(session.cache_id, api.id);

    // A revocation on B reaches A's registry the same way.
    let extra = b.add_credential(web.id, Caps::ALL).unwrap();
    let (rev, json) = db.head();
    a.adopt(rev, &json).unwrap();
    assert!(a
        .registry()
        .authenticate(extra.username.as_bytes(), extra.password.as_bytes())
        .is_some());
    b.remove_credential(web.id, &extra.username).unwrap();
    let (rev, json) = db.head();
    a.adopt(rev, &json).unwrap();
    assert!(a
        .registry()
        .authenticate(extra.username.as_bytes(), extra.password.as_bytes())
        .is_none());
    assert!(a
        .registry()
        .authenticate(web_cred.username.as_bytes(), web_cred.password.as_bytes())
        .is_some());

    // The data dir keeps the token for the CLI, not the state.
    let token = std::fs::read_to_string(da.join("operator.token")).unwrap();
    assert_eq!(token.trim(), "t".repeat(40));
    assert!(!da.join("control.json").exists());
    let _ = std::fs::remove_dir_all(&da);
    let _ = std::fs::remove_dir_all(&db_dir);
}

#[test]
fn an_unreachable_backend_changes_nothing() {
    let db = Db::new();
    let (mut a, da) = node(&db, "down");
    db.set_up(false);
    assert!(matches!(
        a.create_cache("web", 25 << 20),
        Err(ControlError::Unavailable(_))
    ));
    assert_eq!(a.revision(), 0);
    assert!(a.caches().is_empty());
    db.set_up(true);
    a.create_cache("web", 25 << 20).unwrap();
    assert_eq!(db.head().0, 1);
    let _ = std::fs::remove_dir_all(&da);
}

#[test]
fn a_corrupt_shared_state_is_refused_not_adopted() {
    let db = Db::new();
    let (mut a, da) = node(&db, "bad");
    assert!(a.adopt(5, b"{\"format\": 99}").is_err());
    assert_eq!(a.revision(), 0);
    let _ = std::fs::remove_dir_all(&da);
}
