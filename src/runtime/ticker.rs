//! The core's maintenance tick, driven by a kernel timerfd watched through
//! the core's epoll instance (`readiness`) instead of a glommio timer.
//!
//! Why: everything the admin thread asks of a core (probes, registry
//! changes) and the stop signal are picked up on this tick, and a core with
//! no client traffic has nothing else to wake it. A glommio timer is one
//! latency-ring timeout whose bookkeeping lives in user space; when that
//! bookkeeping loses it, an idle core sleeps until a client shows up (seen
//! in CI: every probe answered 503 for 40 s and the stop hung). A timerfd's
//! expiry is an epoll edge, which wakes the ring like client input does, so
//! the tick cannot be lost and the executor's own timers run at least once
//! per tick.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use super::readiness::Readiness;

pub struct Ticker {
    fd: OwnedFd,
    token: usize,
    readiness: Rc<Readiness>,
}

impl Ticker {
    /// A tick every `period`, the first one `period` from now.
    pub fn new(readiness: Rc<Readiness>, period: Duration) -> io::Result<Ticker> {
        // SAFETY: plain syscall; the fd it returns is owned below.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let ts = libc::timespec {
            tv_sec: period.as_secs() as libc::time_t,
            tv_nsec: period.subsec_nanos() as libc::c_long,
        };
        let spec = libc::itimerspec {
            it_interval: ts,
            it_value: ts,
        };
        // SAFETY: `fd` is an open timerfd; `spec` outlives the call and a
        // null old value is allowed.
        if unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let token = readiness.register(fd.as_raw_fd())?;
        Ok(Ticker {
            fd,
            token,
            readiness,
        })
    }

    /// Waits for the next expiry; returns how many periods passed since the
    /// last call (more than one when the core was busy).
    pub async fn tick(&self) -> u64 {
        loop {
            let mut expirations = 0u64;
            // SAFETY: reads 8 bytes into a u64 we own; the fd is open.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut expirations as *mut u64).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
            if n == std::mem::size_of::<u64>() as isize && expirations > 0 {
                return expirations;
            }
            // EAGAIN: not expired yet. The epoll registration is
            // edge-triggered and each expiry is a new edge.
            std::future::poll_fn(|cx| self.readiness.poll_ready(self.token, cx)).await;
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.readiness.deregister(self.fd.as_raw_fd(), self.token);
    }
}
