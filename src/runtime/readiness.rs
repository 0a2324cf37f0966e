//! Readiness of this core's client sockets through one epoll instance,
//! which is also where the core's executor sleeps.
//!
//! Why not a readiness poll per socket on the ring (glommio's TcpStream):
//! each request then arms one io_uring POLL_ADD, and its completion runs as
//! task work on this core, about a fifth of the server's CPU per request at
//! one request in flight (docs/request-response.md). An edge-triggered epoll
//! registration is made once per connection; the kernel marks a socket
//! ready in the sender's context, and this core collects every ready socket
//! with one `epoll_wait` per wakeup, the way memcached does.
//!
//! Why the executor sleeps here (glommio patch 13): sleeping in the ring
//! meant, per sleep, a POLL_ADD on the epoll fd, another linking the rings,
//! an `io_uring_enter` to sleep, the completion's task work, and then an
//! `epoll_wait` to learn which sockets woke it. Blocking in `epoll_wait`
//! with the rings' fds in the same set answers both at once; ring
//! completions raised as task work interrupt it (EINTR).

use slab::Slab;
use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Events collected per `epoll_wait`.
const EVENTS: usize = 256;

/// The token of the executor's rings in the epoll set (no slab index is
/// this large).
const RING_TOKEN: u64 = u64::MAX;

#[derive(Default)]
struct Slot {
    /// An edge arrived since the connection last looked.
    ready: bool,
    waker: Option<Waker>,
}

pub struct Readiness {
    epfd: OwnedFd,
    slots: RefCell<Slab<Slot>>,
    /// Where `epoll_wait` puts its events (one buffer for the loop and the
    /// executor's sleep, which never run at once).
    events: RefCell<Vec<libc::epoll_event>>,
    /// The readiness loop, when its last round found nothing and it waits
    /// for the executor's sleep to find sockets.
    parked: RefCell<Option<Waker>>,
    /// The executor sleeps in `sleep` (glommio patch 13 is installed).
    hooked: std::cell::Cell<bool>,
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
            events: RefCell::new(vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS]),
            parked: RefCell::new(None),
            hooked: std::cell::Cell::new(false),
        })
    }

    /// Makes this epoll instance the executor's sleep (on the core's own
    /// thread, once). If the rings cannot be watched, the executor keeps
    /// sleeping in its ring and the loop polls the epoll fd through it.
    pub fn install_sleep(self: &Rc<Self>) {
        let me = self.clone();
        let rings = glommio::net::set_sleep_hook(Some(Rc::new(move |most| me.sleep(most))));
        for fd in rings {
            let mut ev = libc::epoll_event {
                events: (libc::EPOLLIN | libc::EPOLLET) as u32,
                u64: RING_TOKEN,
            };
            // SAFETY: both fds are open (the rings live as long as the
            // executor, which outlives this epoll set's use); `ev` outlives
            // the call.
            let rc =
                unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
            if rc < 0 {
                tracing::warn!(
                    "cannot watch the executor's ring in epoll ({}); sleeping in the ring",
                    io::Error::last_os_error()
                );
                glommio::net::set_sleep_hook(None);
                return;
            }
        }
        self.hooked.set(true);
    }

    /// The executor's sleep (glommio patch 13): blocks in `epoll_wait` for
    /// at most `most`, or only polls when `most` is zero; wakes the
    /// connections whose sockets are ready, and the readiness loop after
    /// them. Returns how many tasks it woke.
    fn sleep(&self, most: Duration) -> usize {
        let parked = self.parked.borrow().is_some();
        // A busy executor's poll is only needed while the loop waits for
        // it; otherwise the loop asks epoll itself.
        if most.is_zero() && !parked {
            return 0;
        }
        let ms = most.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        let woke = self.wait(ms);
        if woke > 0 {
            if let Some(w) = self.parked.borrow_mut().take() {
                w.wake();
                return woke + 1;
            }
        }
        woke
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
    /// and wake their connections; once a round finds nothing, wait for
    /// the executor's sleep to find some (or, without it, sleep on the ring
    /// until the epoll fd has events).
    ///
    /// After a round that found sockets, the loop yields and asks epoll
    /// again instead of waiting at once: when the clients run on other
    /// CPUs, new requests have nearly always arrived by the time the woken
    /// connections have answered, and asking here costs one `epoll_wait`
    /// where the executor's sleep would add its own loop. When they share
    /// this CPU, nothing can have arrived, and that ask is a syscall for
    /// nothing per wakeup: so once it finds nothing right after a sleep,
    /// the loop leaves the asking to the next sleep (which returns at once
    /// if sockets are ready), trying again every `RETRY_ASK`th wakeup.
    pub async fn run(self: Rc<Self>) {
        const RETRY_ASK: u32 = 16;
        let mut skip = false;
        let mut wakes = 0u32;
        loop {
            wakes = wakes.wrapping_add(1);
            if !skip || wakes.is_multiple_of(RETRY_ASK) {
                let found = self.wait(0);
                skip = found == 0 && self.hooked.get();
                if found > 0 {
                    // Behind the connections just woken: they run first.
                    futures_lite::future::yield_now().await;
                    while self.wait(0) > 0 {
                        futures_lite::future::yield_now().await;
                    }
                }
            }
            if self.hooked.get() {
                self.park().await;
            } else if glommio::net::poll_readable(self.epfd.as_raw_fd())
                .await
                .is_err()
            {
                glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
    }

    /// Resolves once the executor's sleep (or poll) has woken this loop.
    async fn park(&self) {
        let mut parked = false;
        std::future::poll_fn(|cx| {
            if parked && self.parked.borrow().is_none() {
                return Poll::Ready(());
            }
            parked = true;
            *self.parked.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// One `epoll_wait` (blocking up to `ms`; 0 only takes what is
    /// pending), then as many non-blocking ones as a full buffer asks for;
    /// returns the connections woken.
    fn wait(&self, ms: i32) -> usize {
        let (mut total, mut full) = self.wait_once(ms);
        while full {
            let (woke, more) = self.wait_once(0);
            total += woke;
            full = more;
        }
        total
    }

    /// One `epoll_wait`: wakes the connections it names; returns how many,
    /// and whether the buffer came back full (more may be pending).
    fn wait_once(&self, ms: i32) -> (usize, bool) {
        let mut events = self.events.borrow_mut();
        let n = super::sys::epoll_wait(self.epfd.as_raw_fd(), &mut events, ms);
        if n <= 0 {
            // Nothing, or EINTR: task work (ring completions) interrupted it.
            return (0, false);
        }
        let n = n as usize;
        let mut woke = 0;
        let mut slots = self.slots.borrow_mut();
        for ev in &events[..n] {
            if ev.u64 == RING_TOKEN {
                continue;
            }
            if let Some(slot) = slots.get_mut(ev.u64 as usize) {
                // By reference: the connection waits with the same waker
                // next time, so `poll_ready` need not clone it again. An
                // edge it has not taken yet already woke it.
                if !std::mem::replace(&mut slot.ready, true) {
                    if let Some(w) = &slot.waker {
                        w.wake_by_ref();
                    }
                }
                woke += 1;
            }
        }
        (woke, n == events.len())
    }
}
