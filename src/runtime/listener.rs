//! Listening sockets: one per core on the same port (SO_REUSEPORT), built
//! with socket2 so we control the options and can bind port 0: the first
//! socket learns the real port, the others join it.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{IntoRawFd, RawFd};
use std::time::Duration;

/// Resolves `listen:port` to one socket address.
pub fn resolve(listen: &str, port: u16) -> io::Result<SocketAddr> {
    (listen, port).to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot resolve {listen}"),
        )
    })
}

/// Resolves a `host:port` string (the admin address) to one socket address.
pub fn resolve_one(addr: &str) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot resolve {addr}"),
        )
    })
}

fn socket_for(addr: &SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(
        Domain::for_address(*addr),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    Ok(s)
}

/// Fails with `AddrInUse` when another process already serves this port:
/// SO_REUSEPORT would otherwise let a second shoal silently share it.
fn check_port_free(addr: &SocketAddr) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = Socket::new(
        Domain::for_address(*addr),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    probe.set_reuse_address(true)?;
    probe.bind(&(*addr).into())
}

/// How often, and how many times, a port found in use is tried again.
const BUSY_RETRY_EVERY: Duration = Duration::from_millis(20);
const BUSY_RETRIES: u32 = 100;
/// Tries before the wait is announced (about a quarter of a second).
const BUSY_QUIET: u32 = 12;

/// `check_port_free`, tried again for up to two seconds while the port is in
/// use. A server killed with SIGKILL leaves its listening sockets open for a
/// few to a few hundred milliseconds after it is reaped: its io_uring rings
/// are torn down by a kernel worker, and the accept they had armed holds
/// each listener until then (seen with `ss -ltn`: LISTEN sockets with no
/// process). SO_REUSEADDR does not cover a socket still listening, and
/// SO_REUSEPORT would let us join it, so wait for it to go instead. A port
/// that a live server holds still fails, after the wait.
fn wait_port_free(addr: &SocketAddr) -> io::Result<()> {
    let mut attempt = 0;
    loop {
        match check_port_free(addr) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempt < BUSY_RETRIES => {
                // Silent for the usual few tens of milliseconds after a
                // kill; said once if the wait gets noticeable.
                if attempt == BUSY_QUIET {
                    eprintln!(
                        "shoal: {addr} is in use; waiting up to {:?} for it to be released \
                         (a server stopped just now may still be closing its sockets)",
                        BUSY_RETRY_EVERY * BUSY_RETRIES
                    );
                }
                attempt += 1;
                std::thread::sleep(BUSY_RETRY_EVERY);
            }
            r => return r,
        }
    }
}

/// Binds `n` listeners on `addr` and returns their raw fds and the bound address.
pub fn bind_all(addr: SocketAddr, n: usize, backlog: i32) -> io::Result<(Vec<RawFd>, SocketAddr)> {
    wait_port_free(&addr)?;
    let mut fds = Vec::with_capacity(n);
    let mut bound = addr;
    for i in 0..n {
        let s = socket_for(&bound)?;
        s.bind(&bound.into())?;
        s.listen(backlog)?;
        if i == 0 {
            bound = s.local_addr()?.as_socket().unwrap_or(addr);
        }
        fds.push(s.into_raw_fd());
    }
    Ok((fds, bound))
}
