//! Readiness of this core's client sockets through one epoll instance,
//! itself watched through the io_uring ring.
//!
//! Why not a readiness poll per socket on the ring (glommio's TcpStream):
//! each request then arms one io_uring POLL_ADD, and its completion runs as
//! task work on this core, about a fifth of the server's CPU per request at
//! one request in flight (docs/request-response.md). An edge-triggered epoll
//! registration is made once per connection; the kernel marks a socket
//! ready in the sender's context, and this core collects every ready socket
//! with one `epoll_wait` per wakeup, the way memcached does. The ring still
//! does the sleeping: one POLL_ADD on the epoll fd once a round finds none.

use slab::Slab;
use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Events collected per `epoll_wait`.
const EVENTS: usize = 256;

#[derive(Default)]
struct Slot {
    /// An edge arrived since the connection last looked.
    ready: bool,
    waker: Option<Waker>,
}

pub struct Readiness {
    epfd: OwnedFd,
    slots: RefCell<Slab<Slot>>,
}

impl Readiness {
    pub fn new() -> io::Result<Readiness> {
        // SAFETY: plain syscall; the fd it returns is owned below.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Readiness {
            // SAFETY: `fd` is a new descriptor nothing else owns.
            epfd: unsafe { OwnedFd::from_raw_fd(fd) },
            slots: RefCell::new(Slab::new()),
        })
    }

    /// Watches `fd` for input (edge-triggered); returns its token.
    pub fn register(&self, fd: RawFd) -> io::Result<usize> {
        let token = self.slots.borrow_mut().insert(Slot::default());
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: token as u64,
        };
        // SAFETY: both fds are open; `ev` outlives the call.
        let rc =
            unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if rc < 0 {
            self.slots.borrow_mut().remove(token);
            return Err(io::Error::last_os_error());
        }
        Ok(token)
    }

    /// Stops watching `fd` (before it is closed).
    pub fn deregister(&self, fd: RawFd, token: usize) {
        // SAFETY: plain syscall on fds we hold; a stale fd only yields an
        // error, ignored.
        unsafe {
            libc::epoll_ctl(
                self.epfd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
        self.slots.borrow_mut().try_remove(token);
    }

    /// Ready when input arrived since the last call that answered Ready;
    /// otherwise the waker is kept for the next edge.
    pub fn poll_ready(&self, token: usize, cx: &Context<'_>) -> Poll<()> {
        let mut slots = self.slots.borrow_mut();
        let Some(slot) = slots.get_mut(token) else {
            return Poll::Ready(());
        };
        if std::mem::take(&mut slot.ready) {
            return Poll::Ready(());
        }
        match &slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The core's readiness loop: collect ready sockets with `epoll_wait`
    /// and wake their connections; once a round finds nothing, sleep on the
    /// ring until the epoll fd has events.
    ///
    /// After a round that found sockets, the loop yields and asks epoll
    /// again instead of arming a ring poll at once: at one request in flight
    /// per connection, new requests have nearly always arrived by the time
    /// the woken connections have answered, and a poll armed then completes
    /// as soon as it is submitted, costing an io_uring_enter and the
    /// completion's task work for nothing (0.4 per request, measured).
    pub async fn run(self: Rc<Self>) {
        let mut events: Vec<libc::epoll_event> =
            vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS];
        loop {
            if self.collect(&mut events) > 0 {
                // Behind the connections just woken: they run first.
                futures_lite::future::yield_now().await;
                continue;
            }
            if glommio::net::poll_readable(self.epfd.as_raw_fd())
                .await
                .is_err()
            {
                glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
    }

    /// Takes every pending event off the epoll fd without blocking and
    /// wakes the connections they name; returns how many there were.
    fn collect(&self, events: &mut [libc::epoll_event]) -> usize {
        let mut total = 0;
        loop {
            // SAFETY: `events` has room for its length in entries; timeout 0
            // never blocks.
            let n = unsafe {
                libc::epoll_wait(
                    self.epfd.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as i32,
                    0,
                )
            };
            if n <= 0 {
                return total;
            }
            total += n as usize;
            let mut slots = self.slots.borrow_mut();
            for ev in &events[..n as usize] {
                if let Some(slot) = slots.get_mut(ev.u64 as usize) {
                    slot.ready = true;
                    if let Some(w) = slot.waker.take() {
                        w.wake();
                    }
                }
            }
            if (n as usize) < events.len() {
                return total;
            }
        }
    }
}
