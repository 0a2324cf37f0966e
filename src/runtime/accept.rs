//! A core's accept loop: admits connections up to `-c`, turns the rest away
//! with memcached's `ERROR Too many open connections`, and survives running
//! out of file descriptors without spinning or leaving clients hanging.
//!
//! EMFILE/ENFILE: the kernel keeps the connection in the listen backlog, so
//! retrying the accept fails again at once (a busy loop) and the client waits
//! for a reply that never comes. Each core keeps one spare descriptor open
//! (on /dev/null); on EMFILE it closes the spare, accepts with the freed
//! slot, answers the error, closes, and reopens the spare, until the backlog
//! is empty (the classic libev/nginx trick).

use super::conn;
use super::core::Core;
use super::preauth;
use super::socket::Socket;
use crate::protocol::reply;
use glommio::net::TcpListener;
use glommio::timer::sleep;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// At most one accept-failure log line per core per this interval.
const WARN_INTERVAL: Duration = Duration::from_secs(1);
/// Back-off after an accept failure that turned nobody away.
const RETRY_AFTER: Duration = Duration::from_millis(10);
/// Connections turned away per EMFILE before the loop yields to the core's
/// other tasks (the rest wait for the next round).
const SHED_MAX: usize = 64;

/// Lets one log line through per `WARN_INTERVAL`, counting the rest.
#[derive(Default)]
pub struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// Some(n): log now; n lines were suppressed since the last one.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < WARN_INTERVAL => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// The spare descriptor given up on EMFILE.
struct Reserve(Option<File>);

impl Reserve {
    fn open() -> Reserve {
        Reserve(File::open("/dev/null").ok())
    }

    /// Reopens the spare if it was lost (its slot taken by another thread
    /// between our close and our accept). Cheap when it is there.
    fn refill(&mut self) {
        if self.0.is_none() {
            self.0 = File::open("/dev/null").ok();
        }
    }

    /// Accepts and turns away what waits on `listen_fd` while descriptors
    /// are short, using the spare's slot; returns how many were turned away.
    fn shed(&mut self, listen_fd: RawFd) -> u64 {
        let mut shed = 0;
        for _ in 0..SHED_MAX {
            self.refill();
            let Some(spare) = self.0.take() else {
                // No spare and no slot to reopen it in.
                break;
            };
            drop(spare);
            // SAFETY: accept4 on our listening socket with null address
            // pointers (not wanted); the result is checked below.
            let fd = unsafe {
                libc::accept4(
                    listen_fd,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                )
            };
            if fd >= 0 {
                // SAFETY: accept4 returned a new descriptor that nothing else owns.
                reject(unsafe { OwnedFd::from_raw_fd(fd) });
                shed += 1;
            }
            self.refill();
            if fd < 0 {
                // EAGAIN: the backlog is empty. EMFILE: another thread took
                // the slot first. Either way, stop for now.
                break;
            }
        }
        shed
    }
}

/// How long a connection cap learned from EMFILE lasts after the last
/// EMFILE (seconds of `crate::clock`).
const FD_CAP_SECS: u32 = 10;

/// The connections that fit in the descriptors actually left, learned when
/// accept runs out of them (the headroom was too small: other processes'
/// files with ENFILE, many admin requests, `SHOAL_FD_HEADROOM`). Until it
/// lapses, connections over it are turned away like those over `-c`, so the
/// descriptors they would hold stay free: without it, a spare given up on
/// one core can be taken by another core's accept for a client that then
/// keeps it, and once every spare is gone the backlog waits unanswered.
/// Shared by all cores.
pub struct FdCap {
    /// usize::MAX: none.
    cap: AtomicUsize,
    /// When it was last learned.
    at: AtomicU32,
}

impl Default for FdCap {
    fn default() -> FdCap {
        FdCap {
            cap: AtomicUsize::new(usize::MAX),
            at: AtomicU32::new(0),
        }
    }
}

impl FdCap {
    /// Accept failed with EMFILE/ENFILE while `open` connections were open.
    pub fn learn(&self, open: usize, now: u32) {
        let cap = self.limit(usize::MAX, now).min(open);
        self.cap.store(cap, Ordering::Relaxed);
        self.at.store(now, Ordering::Relaxed);
    }

    /// `conn_limit`, lowered to the cap while it holds.
    pub fn limit(&self, conn_limit: usize, now: u32) -> usize {
        let cap = self.cap.load(Ordering::Relaxed);
        if cap == usize::MAX || now.saturating_sub(self.at.load(Ordering::Relaxed)) >= FD_CAP_SECS {
            return conn_limit;
        }
        conn_limit.min(cap)
    }
}

/// Sends `ERROR Too many open connections` on the open socket `fd` without
/// waiting (best effort: the short line fits any send buffer with room).
pub fn tell_too_many(fd: RawFd) {
    let msg = reply::ERROR_TOO_MANY_CONNECTIONS;
    // SAFETY: `msg` is valid for reads of its length; the caller holds `fd`
    // open.
    unsafe {
        libc::send(
            fd,
            msg.as_ptr() as *const libc::c_void,
            msg.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
}

/// Answers a connection over any limit and closes it, without waiting: a
/// new socket's send buffer is empty, so the short error always fits.
pub fn reject(fd: OwnedFd) {
    tell_too_many(fd.as_raw_fd());
    // Closing with unread input sends a RST instead of a FIN, and a RST can
    // reach the client before it has read the error: read what the client
    // already sent (its first request, typically) and discard it.
    let mut sink = [0u8; 512];
    for _ in 0..4 {
        // SAFETY: `sink` is valid for writes of its length.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                sink.as_mut_ptr() as *mut libc::c_void,
                sink.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n <= 0 {
            break;
        }
    }
}

fn out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Accepts on this core's listener (`listen_fd` is its descriptor) until
/// the task is cancelled. `tls`: its connections speak TLS.
pub async fn accept_loop(core: Rc<Core>, listener: TcpListener, listen_fd: RawFd, tls: bool) {
    let mut reserve = Reserve::open();
    let mut throttle = Throttle::default();
    // Clients turned away since the last log line.
    let mut turned_away = 0u64;
    loop {
        let accepted = match listener.shared_accept().await {
            Ok(s) => s,
            Err(e) => {
                let e = io::Error::from(e);
                let shed = if out_of_fds(&e) {
                    let open = core.server.conns.load(Ordering::Acquire);
                    core.server.fd_cap.learn(open, crate::clock::now());
                    reserve.shed(listen_fd)
                } else {
                    0
                };
                core.stats.total_connections.add(shed);
                core.stats.rejected_connections.add(shed);
                turned_away += shed;
                if let Some(suppressed) = throttle.admit(Instant::now()) {
                    let fit = core
                        .server
                        .fd_cap
                        .limit(core.server.config.conn_limit, crate::clock::now());
                    tracing::warn!(
                        core = core.id,
                        "accept failed: {e} ({suppressed} more failures since the last \
                         message; {turned_away} clients turned away with ERROR Too many \
                         open connections; at most {fit} connections for now)"
                    );
                    turned_away = 0;
                }
                if shed == 0 {
                    // Back off instead of spinning on a persistent failure.
                    sleep(RETRY_AFTER).await;
                }
                continue;
            }
        };
        let open = core.server.conns.fetch_add(1, Ordering::AcqRel) + 1;
        core.stats.total_connections.incr();
        let limit = core
            .server
            .fd_cap
            .limit(core.server.config.conn_limit, crate::clock::now());
        let multi_tenant = core.server.tenants.is_some();
        // A client that has not logged in yet gives its place to this one.
        if open > limit && !(multi_tenant && preauth::evict_oldest()) {
            core.server.conns.fetch_sub(1, Ordering::AcqRel);
            core.stats.rejected_connections.incr();
            // Answered and closed here, so a flood of rejections never holds
            // more than one extra descriptor per core.
            // SAFETY: the accepted fd is new and owned by nothing else.
            reject(unsafe { OwnedFd::from_raw_fd(accepted.into_raw_fd()) });
            reserve.refill();
            continue;
        }
        let peer = accepted.peer_addr().ok();
        // SAFETY: the accepted fd is new and owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(accepted.into_raw_fd()) };
        let mut sock = match Socket::new(fd, &core.readiness) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot watch a new connection: {e}");
                core.server.conns.fetch_sub(1, Ordering::AcqRel);
                continue;
            }
        };
        if let (true, Some(ctx)) = (tls, core.server.tls.as_ref()) {
            match ctx.accept() {
                Ok(session) => sock.start_tls(session),
                Err(e) => {
                    tracing::warn!("cannot start a TLS session: {e}");
                    sock.deregister(&core.readiness);
                    core.server.conns.fetch_sub(1, Ordering::AcqRel);
                    continue;
                }
            }
        }
        // Here, not in the connection's task: the accept loop may take a
        // whole backlog before any new task runs.
        if multi_tenant {
            preauth::admit(
                sock.raw(),
                preauth::cap(core.server.config.conn_limit, core.n),
            );
        }
        core.stats.curr_connections.incr();
        glommio::spawn_local(conn::serve(core.clone(), sock, peer)).detach();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_lets_one_line_a_second_through_and_counts_the_rest() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        assert_eq!(t.admit(t0), Some(0));
        for i in 1..=99u64 {
            assert_eq!(t.admit(t0 + Duration::from_millis(i * 10 - 5)), None);
        }
        assert_eq!(t.admit(t0 + Duration::from_millis(1000)), Some(99));
        assert_eq!(t.admit(t0 + Duration::from_millis(1500)), None);
        assert_eq!(t.admit(t0 + Duration::from_millis(2100)), Some(1));
    }

    #[test]
    fn fd_cap_holds_for_a_while_then_lapses() {
        let c = FdCap::default();
        assert_eq!(c.limit(1024, 5), 1024);
        c.learn(230, 5);
        assert_eq!(c.limit(1024, 5), 230);
        assert_eq!(c.limit(100, 5), 100);
        assert_eq!(c.limit(1024, 5 + FD_CAP_SECS - 1), 230);
        // A later EMFILE with fewer open keeps the lower number, and renews.
        c.learn(200, 10);
        c.learn(220, 11);
        assert_eq!(c.limit(1024, 11 + FD_CAP_SECS - 1), 200);
        assert_eq!(c.limit(1024, 11 + FD_CAP_SECS), 1024);
        // Once lapsed, the next EMFILE starts over.
        c.learn(240, 30);
        assert_eq!(c.limit(1024, 30), 240);
        c.learn(0, 31);
        assert_eq!(c.limit(1024, 31), 0);
    }

    #[test]
    fn throttle_survives_a_clock_going_backwards() {
        let mut t = Throttle::default();
        let t0 = Instant::now() + Duration::from_secs(5);
        assert_eq!(t.admit(t0), Some(0));
        assert_eq!(t.admit(t0 - Duration::from_secs(1)), None);
    }
}
