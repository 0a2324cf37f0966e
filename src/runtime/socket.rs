//! A client socket as the runtime uses it: reads are direct non-blocking
//! `recv`s woken by the core's epoll `Readiness`, writes direct `send`s that
//! wait on the ring only when the socket's buffer is full. A TLS socket
//! (`super::tls`) moves its records the same way and hands out plaintext.

use super::readiness::Readiness;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::task::{Context, Poll};

pub struct Socket {
    pub(super) fd: OwnedFd,
    pub(super) token: usize,
    /// The last read filled its buffer, so more may be waiting: try `recv`
    /// before waiting for an edge (otherwise the edge tells).
    pub(super) try_read: bool,
    /// The TLS session of a TLS listener's connection (boxed: a plain
    /// connection pays one pointer).
    pub(super) tls: Option<Box<rustls::ServerConnection>>,
}

impl Socket {
    /// Takes the accepted socket: TCP_NODELAY, watched by `readiness`.
    pub fn new(fd: OwnedFd, readiness: &Readiness) -> io::Result<Socket> {
        let one: libc::c_int = 1;
        // SAFETY: plain syscall on an open fd with a valid option value.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                &one as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        let token = readiness.register(fd.as_raw_fd())?;
        Ok(Socket {
            fd,
            token,
            try_read: true,
            tls: None,
        })
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Reads what is available into `buf` (plaintext on a TLS socket);
    /// 0 = the peer closed.
    pub fn poll_recv(
        &mut self,
        readiness: &Readiness,
        cx: &Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if self.tls.is_some() {
            return self.poll_recv_tls(readiness, cx, buf);
        }
        self.poll_recv_raw(readiness, cx, buf)
    }

    /// Reads what the socket has into `buf`, as it came off the wire.
    pub(super) fn poll_recv_raw(
        &mut self,
        readiness: &Readiness,
        cx: &Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            if !self.try_read {
                if readiness.poll_ready(self.token, cx).is_pending() {
                    return Poll::Pending;
                }
                self.try_read = true;
            }
            let n = super::sys::recv(self.raw(), buf, libc::MSG_DONTWAIT);
            if n >= 0 {
                self.try_read = n as usize == buf.len();
                return Poll::Ready(Ok(n as usize));
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::WouldBlock => self.try_read = false,
                io::ErrorKind::Interrupted => {}
                _ => return Poll::Ready(Err(err)),
            }
        }
    }

    /// Writes all of `buf` (encrypted on a TLS socket), waiting for room
    /// when the peer is slow.
    pub async fn send_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.tls.is_some() {
            return self.send_tls(buf).await;
        }
        self.send_raw(buf).await
    }

    /// Writes what the socket takes of `buf` now, without waiting: how
    /// many bytes, or None when it took none (full, an error, or TLS,
    /// whose records are written by `send_all`); the caller's `send_all`
    /// then does the rest.
    pub fn send_now(&self, buf: &[u8]) -> Option<usize> {
        if self.tls.is_some() {
            return None;
        }
        let n = super::sys::send(self.raw(), buf, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
        (n > 0).then_some(n as usize)
    }

    /// Writes all of `buf` as it is.
    pub(super) async fn send_raw(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = super::sys::send(self.raw(), buf, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
            if n >= 0 {
                buf = &buf[n as usize..];
                continue;
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::WouldBlock => glommio::net::poll_writable(self.raw()).await?,
                io::ErrorKind::Interrupted => {}
                _ => return Err(err),
            }
        }
        Ok(())
    }

    /// Stops watching the socket; it closes when dropped.
    pub fn deregister(&self, readiness: &Readiness) {
        readiness.deregister(self.raw(), self.token);
    }
}
