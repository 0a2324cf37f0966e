//! Connections that have not authenticated yet (multi-tenant mode), per
//! core, oldest first.
//!
//! They get their own limit, a quarter of `-c` split across cores: when a
//! new connection would go over it, or over `-c` itself, the oldest waiting
//! one is told `ERROR Too many open connections` and shut down. A flood of
//! connections that never log in then holds a bounded share of the node and
//! cannot keep a real tenant out: the tenant's connection is the newest, it
//! logs in within a round trip, and the flood's oldest make room for it.
//! (The count of open connections drops when an evicted one has closed, a
//! moment later.)

use std::cell::RefCell;
use std::collections::VecDeque;
use std::os::fd::RawFd;

thread_local! {
    static WAITING: RefCell<VecDeque<RawFd>> = const { RefCell::new(VecDeque::new()) };
}

/// This core's share of the pre-authentication limit.
pub fn cap(conn_limit: usize, cores: usize) -> usize {
    (conn_limit / 4 / cores.max(1)).max(4)
}

/// Admits a new connection `fd`; shuts down the oldest waiting ones past
/// `cap`. Their tasks see end-of-file and close them (and `leave`).
pub fn admit(fd: RawFd, cap: usize) {
    WAITING.with(|w| {
        let mut w = w.borrow_mut();
        while w.len() >= cap {
            let Some(old) = w.pop_front() else { break };
            hang_up(old);
        }
        w.push_back(fd);
    });
}

/// Shuts down the oldest waiting connection, if any: the server is at its
/// connection limit and a new client takes its place.
pub fn evict_oldest() -> bool {
    WAITING
        .with(|w| w.borrow_mut().pop_front())
        .map(hang_up)
        .is_some()
}

fn hang_up(fd: RawFd) {
    // `fd` is open: a connection leaves this queue before its fd is closed
    // (`leave` runs in its close, on this thread).
    super::accept::tell_too_many(fd);
    // SAFETY: as above, `fd` is open.
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
}

/// `fd` authenticated or is closing.
pub fn leave(fd: RawFd) {
    WAITING.with(|w| {
        let mut w = w.borrow_mut();
        if let Some(i) = w.iter().position(|f| *f == fd) {
            w.remove(i);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_is_a_quarter_of_the_limit_per_core_with_a_floor() {
        assert_eq!(cap(1024, 2), 128);
        assert_eq!(cap(1024, 1), 256);
        assert_eq!(cap(8, 4), 4);
    }
}
