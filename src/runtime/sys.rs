//! The per-request syscalls, made directly.
//!
//! Why not libc's `recv`, `send`, `sendmsg` and `epoll_wait`: glibc makes
//! each a pthread cancellation point, wrapping the syscall in
//! `__pthread_enable_asynccancel`/`__pthread_disable_asynccancel`; at one
//! request in flight per connection that wrapper was about 1% of the
//! server's CPU (perf, docs/request-response.md). shoal never cancels
//! threads, so the plain syscall does the same work. Each returns what the
//! syscall returns, -1 with `errno` set on failure, as libc's do.

use std::os::fd::RawFd;

/// `recv(fd, buf, flags)`.
pub fn recv(fd: RawFd, buf: &mut [u8], flags: i32) -> isize {
    // SAFETY: `buf` is valid for writes of its length; no address is
    // asked for (null source and length).
    unsafe {
        libc::syscall(
            libc::SYS_recvfrom,
            fd,
            buf.as_mut_ptr(),
            buf.len(),
            flags,
            std::ptr::null_mut::<libc::sockaddr>(),
            std::ptr::null_mut::<libc::socklen_t>(),
        ) as isize
    }
}

/// `send(fd, buf, flags)`.
pub fn send(fd: RawFd, buf: &[u8], flags: i32) -> isize {
    // SAFETY: `buf` is valid for reads of its length; no address is given.
    unsafe {
        libc::syscall(
            libc::SYS_sendto,
            fd,
            buf.as_ptr(),
            buf.len(),
            flags,
            std::ptr::null::<libc::sockaddr>(),
            0 as libc::socklen_t,
        ) as isize
    }
}

/// `sendmsg(fd, msg, flags)`.
///
/// # Safety
/// `msg` must describe buffers valid for reads of their lengths.
pub unsafe fn sendmsg(fd: RawFd, msg: &libc::msghdr, flags: i32) -> isize {
    // SAFETY: the caller vouches for the buffers `msg` points at.
    unsafe { libc::syscall(libc::SYS_sendmsg, fd, msg as *const libc::msghdr, flags) as isize }
}

/// `epoll_wait(epfd, events, ms)` (as `epoll_pwait` with no signal mask,
/// which every architecture has; the kernel's sigset is 8 bytes).
pub fn epoll_wait(epfd: RawFd, events: &mut [libc::epoll_event], ms: i32) -> i32 {
    // SAFETY: `events` has room for its length in entries; a null mask
    // leaves the signal mask alone.
    unsafe {
        libc::syscall(
            libc::SYS_epoll_pwait,
            epfd,
            events.as_mut_ptr(),
            events.len().min(i32::MAX as usize) as i32,
            ms,
            std::ptr::null::<libc::sigset_t>(),
            8usize,
        ) as i32
    }
}
