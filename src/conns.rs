//! The table of open client connections behind `stats conns`. Touched on
//! accept and close only; each connection publishes its last-command time
//! and busy flag through its own atomics (single writer), once per batch.
//!
//! An entry is kept small (tens of thousands of mostly idle connections
//! each have one): the peer address lives in the shared `Activity`, and the
//! listening address, the same for every connection, is kept once (as
//! memcached's `listen_addr`, the listener's address).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};

/// What a connection shares with `stats conns`.
#[derive(Debug, Default)]
pub struct Activity {
    /// Server time (clock::now) of the last request batch.
    pub last_cmd: AtomicU32,
    /// True while a batch is being parsed or answered.
    pub busy: AtomicBool,
    /// Multi-tenant mode: the cache the connection authenticated to (0 = none).
    pub cache: AtomicU32,
    peer: Option<SocketAddr>,
}

impl Activity {
    pub fn start_batch(&self, now: u32) {
        self.last_cmd.store(now, Relaxed);
        self.busy.store(true, Relaxed);
    }
    pub fn end_batch(&self) {
        self.busy.store(false, Relaxed);
    }
}

static TABLE: Mutex<BTreeMap<i32, Arc<Activity>>> = Mutex::new(BTreeMap::new());

static LISTEN_ADDR: OnceLock<SocketAddr> = OnceLock::new();

/// Records the address the server listens on (once, at start).
pub fn set_listen_addr(addr: SocketAddr) {
    let _ = LISTEN_ADDR.set(addr);
}

/// Registers a connection by its fd; the returned guard unregisters on drop.
pub fn register(fd: i32, peer: Option<SocketAddr>, now: u32) -> Registration {
    let activity = Arc::new(Activity {
        peer,
        ..Activity::default()
    });
    activity.last_cmd.store(now, Relaxed);
    let entry = activity.clone();
    TABLE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(fd, entry);
    Registration { fd, activity }
}

/// Keeps a connection in the table while alive.
pub struct Registration {
    fd: i32,
    pub activity: Arc<Activity>,
}

impl Drop for Registration {
    /// Removes the entry only if it is still this connection's: should the
    /// fd have been closed first, a connection accepted since on the same
    /// number (on another core) owns the entry now and stays listed.
    fn drop(&mut self) {
        let mut table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
        if let std::collections::btree_map::Entry::Occupied(e) = table.entry(self.fd) {
            if Arc::ptr_eq(e.get(), &self.activity) {
                e.remove();
            }
        }
    }
}

fn addr(a: Option<SocketAddr>) -> String {
    match a {
        Some(SocketAddr::V4(v)) => format!("tcp:{v}"),
        Some(SocketAddr::V6(v)) => format!("tcp6:{v}"),
        None => "unknown".into(),
    }
}

/// memcached's `stats conns` lines: `<fd>:addr`, `<fd>:listen_addr`,
/// `<fd>:state`, `<fd>:secs_since_last_cmd`, ordered by fd. With `cache`,
/// only that cache's connections (a tenant sees no one else's clients).
pub fn report(now: u32, cache: Option<u32>, emit: &mut dyn FnMut(&str, &[u8])) {
    let table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let listen = addr(LISTEN_ADDR.get().copied());
    for (fd, e) in table.iter() {
        if cache.is_some_and(|c| e.cache.load(Relaxed) != c) {
            continue;
        }
        emit(&format!("{fd}:addr"), addr(e.peer).as_bytes());
        emit(&format!("{fd}:listen_addr"), listen.as_bytes());
        let state: &[u8] = if e.busy.load(Relaxed) {
            b"conn_parse_cmd"
        } else {
            b"conn_waiting"
        };
        emit(&format!("{fd}:state"), state);
        let idle = now.saturating_sub(e.last_cmd.load(Relaxed));
        emit(
            &format!("{fd}:secs_since_last_cmd"),
            idle.to_string().as_bytes(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_report_unregister() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:11211".parse().unwrap();
        set_listen_addr(local);
        let r = register(-42, Some(peer), 10);
        r.activity.start_batch(12);
        let mut lines = Vec::new();
        report(15, None, &mut |n, v| {
            lines.push(format!("{n} {}", String::from_utf8_lossy(v)))
        });
        assert!(lines.contains(&"-42:addr tcp:127.0.0.1:5000".to_string()));
        assert!(lines.contains(&"-42:listen_addr tcp:127.0.0.1:11211".to_string()));
        assert!(lines.contains(&"-42:state conn_parse_cmd".to_string()));
        assert!(lines.contains(&"-42:secs_since_last_cmd 3".to_string()));
        drop(r);
        let mut after = Vec::new();
        report(15, None, &mut |n, _| after.push(n.to_string()));
        assert!(!after.iter().any(|n| n.starts_with("-42:")));
    }

    #[test]
    fn a_reused_fd_stays_listed() {
        // The fd of a closing connection is reused by a new one before the
        // old registration drops: the new connection keeps its line.
        let old = register(-43, None, 1);
        let new = register(-43, "127.0.0.1:5001".parse().ok(), 2);
        drop(old);
        let mut lines = Vec::new();
        report(2, None, &mut |n, v| {
            lines.push(format!("{n} {}", String::from_utf8_lossy(v)))
        });
        assert!(lines.contains(&"-43:addr tcp:127.0.0.1:5001".to_string()));
        drop(new);
        let mut after = Vec::new();
        report(2, None, &mut |n, _| after.push(n.to_string()));
        assert!(!after.iter().any(|n| n.starts_with("-43:")));
    }
}
