//! The table of open client connections behind `stats conns`. Touched on
//! accept and close only; each connection publishes its last-command time
//! and busy flag through its own atomics (single writer), once per batch.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// What a connection shares with `stats conns`.
#[derive(Debug, Default)]
pub struct Activity {
    /// Server time (clock::now) of the last request batch.
    pub last_cmd: AtomicU32,
    /// True while a batch is being parsed or answered.
    pub busy: AtomicBool,
    /// Multi-tenant mode: the cache the connection authenticated to (0 = none).
    pub cache: AtomicU32,
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

struct Entry {
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    activity: Arc<Activity>,
}

static TABLE: Mutex<BTreeMap<i32, Entry>> = Mutex::new(BTreeMap::new());

/// Registers a connection by its fd; the returned guard unregisters on drop.
pub fn register(
    fd: i32,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    now: u32,
) -> Registration {
    let activity = Arc::new(Activity::default());
    activity.last_cmd.store(now, Relaxed);
    let entry = Entry {
        peer,
        local,
        activity: activity.clone(),
    };
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
    fn drop(&mut self) {
        TABLE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.fd);
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
    for (fd, e) in table.iter() {
        if cache.is_some_and(|c| e.activity.cache.load(Relaxed) != c) {
            continue;
        }
        emit(&format!("{fd}:addr"), addr(e.peer).as_bytes());
        emit(&format!("{fd}:listen_addr"), addr(e.local).as_bytes());
        let state: &[u8] = if e.activity.busy.load(Relaxed) {
            b"conn_parse_cmd"
        } else {
            b"conn_waiting"
        };
        emit(&format!("{fd}:state"), state);
        let idle = now.saturating_sub(e.activity.last_cmd.load(Relaxed));
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
        let r = register(-42, Some(peer), Some(local), 10);
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
}
