//! TLS connections: each TLS listener's socket carries a rustls
//! `ServerConnection`; records move with the same direct `recv`/`send`
//! calls as plain bytes (woken by the core's epoll readiness), and the
//! connection reads and writes plaintext as if nothing were there.
//!
//! Reads: plaintext rustls already decrypted is handed out first; only
//! when it has none are more records read off the socket, so its buffers
//! stay bounded. Writes: the replies are encrypted into rustls' buffer and
//! written out before `send_all` returns, as for a plain socket.

use super::conn::Conn;
use super::core::Server;
use super::readiness::Readiness;
use super::socket::Socket;
use crate::protocol::reply;
use futures_lite::ready;
use rustls::ServerConnection;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::RawFd;
use std::task::{Context, Poll};

/// The socket's records, as rustls reads them: `WouldBlock` when the
/// socket has nothing (the core's readiness then wakes the task).
struct Records<'a, 'b> {
    sock: &'a mut Socket,
    readiness: &'a Readiness,
    cx: &'a Context<'b>,
}

impl Read for Records<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.sock.poll_recv_raw(self.readiness, self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// The socket as rustls writes records to it: non-blocking, no SIGPIPE.
struct Wire(RawFd);

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // SAFETY: a zeroed msghdr is valid (no name, no control data).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        // IoSlice is ABI-compatible with iovec on Unix (std's guarantee);
        // sendmsg only reads through the pointer.
        msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = bufs.len().min(libc::UIO_MAXIOV as usize) as _;
        // SAFETY: `msg` points at `bufs`, valid for the call.
        let n =
            unsafe { super::sys::sendmsg(self.0, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket {
    /// Makes this a TLS socket: the handshake comes first.
    pub fn start_tls(&mut self, session: ServerConnection) {
        self.tls = Some(Box::new(session));
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Plaintext into `buf`; 0 once the peer closed (with or without a
    /// close_notify: either way nothing more comes).
    pub(super) fn poll_recv_tls(
        &mut self,
        readiness: &Readiness,
        cx: &Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let Some(mut tls) = self.tls.take() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let r = self.poll_plaintext(&mut tls, readiness, cx, buf);
        self.tls = Some(tls);
        r
    }

    fn poll_plaintext(
        &mut self,
        tls: &mut ServerConnection,
        readiness: &Readiness,
        cx: &Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            match plaintext(tls, buf) {
                Some(r) => return Poll::Ready(r),
                None => {
                    if ready!(self.poll_records(tls, readiness, cx))? == 0 {
                        return Poll::Ready(plaintext(tls, buf).unwrap_or(Ok(0)));
                    }
                }
            }
        }
    }

    /// Reads records off the socket and decrypts them: Ok(0) at the end of
    /// the stream. A bad record fails the connection, after the alert
    /// rustls queued for it is sent (best effort).
    fn poll_records(
        &mut self,
        tls: &mut ServerConnection,
        readiness: &Readiness,
        cx: &Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let n = match tls.read_tls(&mut Records {
            sock: self,
            readiness,
            cx,
        }) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let processed = tls.process_new_packets();
        // What the records asked for (an alert, a key update's answer)
        // goes out now when it fits; the next reply sends the rest.
        if tls.wants_write() {
            let _ = tls.write_tls(&mut Wire(self.raw()));
        }
        match processed {
            Ok(_) => Poll::Ready(Ok(n)),
            Err(e) => Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e))),
        }
    }

    /// Writes every record rustls has queued, waiting for room.
    async fn flush_tls(&mut self) -> io::Result<()> {
        let fd = self.raw();
        loop {
            let Some(tls) = self.tls.as_mut() else {
                return Ok(());
            };
            if !tls.wants_write() {
                return Ok(());
            }
            match tls.write_tls(&mut Wire(fd)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    glommio::net::poll_writable(fd).await?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Encrypts and writes all of `buf`.
    pub(super) async fn send_tls(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let Some(tls) = self.tls.as_mut() else {
                return Err(io::ErrorKind::NotConnected.into());
            };
            let n = tls.writer().write(buf)?;
            if n == 0 && !tls.wants_write() {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
            self.flush_tls().await?;
        }
        self.flush_tls().await
    }

    /// Runs the handshake to its end (the caller bounds it in time).
    pub(super) async fn handshake(&mut self, readiness: &Readiness) -> io::Result<()> {
        loop {
            self.flush_tls().await?;
            if !self.tls.as_ref().is_some_and(|t| t.is_handshaking()) {
                return Ok(());
            }
            let n = std::future::poll_fn(|cx| {
                let Some(mut tls) = self.tls.take() else {
                    return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
                };
                let r = self.poll_records(&mut tls, readiness, cx);
                self.tls = Some(tls);
                r
            })
            .await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// After the handshake: whether it resumed an earlier session, and the
    /// fingerprint of the client's certificate if it sent one.
    pub(super) fn tls_peer(&self) -> (bool, Option<[u8; 32]>) {
        let Some(tls) = self.tls.as_ref() else {
            return (false, None);
        };
        let resumed = tls.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        let cert = tls
            .peer_certificates()
            .and_then(|c| c.first())
            .map(crate::tls::fingerprint);
        (resumed, cert)
    }

    /// Tells the peer we are closing (best effort, without waiting).
    pub(super) fn close_tls(&mut self) {
        let fd = self.raw();
        // Only a session that was established has anything to close.
        if let Some(tls) = self.tls.as_mut().filter(|t| !t.is_handshaking()) {
            tls.send_close_notify();
            let _ = tls.write_tls(&mut Wire(fd));
        }
    }
}

/// Plaintext rustls holds: None when it has none yet.
fn plaintext(tls: &mut ServerConnection, buf: &mut [u8]) -> Option<io::Result<usize>> {
    match tls.reader().read(buf) {
        Ok(n) => Some(Ok(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        // The peer closed without a close_notify: the end all the same
        // (memcached requests are framed, so nothing is cut short unseen).
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Some(Ok(0)),
        Err(e) => Some(Err(e)),
    }
}

impl Conn {
    /// The handshake, within the configured time, then the client
    /// certificate's login (multi-tenant mode). False: close the
    /// connection.
    pub(super) async fn start_tls(&mut self) -> bool {
        let Some(ctx) = self.core.server.tls.clone() else {
            return false;
        };
        let readiness = self.core.readiness.clone();
        let deadline = ctx.settings().handshake_timeout;
        let done = futures_lite::future::or(self.sock.handshake(&readiness), async {
            glommio::timer::sleep(deadline).await;
            Err(io::ErrorKind::TimedOut.into())
        })
        .await;
        if let Err(e) = done {
            ctx.handshake_failed();
            tracing::debug!(fd = self.fd, "TLS handshake failed: {e}");
            return false;
        }
        let (resumed, cert) = self.sock.tls_peer();
        if !resumed {
            ctx.new_session();
        }
        match cert {
            Some(fingerprint) if self.session.multi_tenant() => self.cert_login(&fingerprint).await,
            _ => true,
        }
    }

    /// Logs the connection in as the credential its certificate is bound
    /// to, if any (otherwise it authenticates as usual). False when the
    /// cache is at its connection limit (answered, then closed).
    async fn cert_login(&mut self, fingerprint: &[u8; 32]) -> bool {
        // A fingerprint added a moment ago may not have reached this
        // core's tick yet.
        self.core.refresh_registry();
        let login = self.core.registry.borrow().authenticate_cert(fingerprint);
        let Some(login) = login else {
            return true;
        };
        if !self.log_in(login) {
            let _ = self.sock.send_all(reply::ERROR_TOO_MANY_CONNECTIONS).await;
            return false;
        }
        self.deadline = None;
        super::preauth::leave(self.fd);
        true
    }
}

/// `refresh_certs`, SIGHUP and the admin route: reloads the certificate.
/// memcached's answers: `OK`, or the error line.
pub fn refresh(server: &Server) -> Vec<u8> {
    match &server.tls {
        None => b"Error TLS not enabled\r\n".to_vec(),
        Some(ctx) => match ctx.refresh() {
            Ok(()) => reply::OK.to_vec(),
            Err(e) => {
                tracing::warn!("refresh_certs: {e}");
                format!("{e}\r\n").into_bytes()
            }
        },
    }
}
