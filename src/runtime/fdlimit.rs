//! The open-file limit: every client connection is a file descriptor, so
//! `-c` connections need a soft RLIMIT_NOFILE of at least `-c` plus what the
//! server opens for itself. Like memcached, raise the soft limit at start to
//! fit; unlike memcached (which exits), when the hard limit is too low serve
//! fewer connections and say so.

use std::io;

/// Descriptors kept for the server itself, whatever the core count: stdio
/// (3), the signal thread's pipe (2), multi-tenant mode's admin listener,
/// tokio runtime (epoll, eventfd), data-dir lock, history and store files
/// while they are rewritten, alert deliveries (SMTP/webhook sockets) and a
/// few operator HTTP connections. Measured at idle: 7 in open mode, 12 in
/// multi-tenant mode; the rest is margin for admin and alert traffic.
pub const HEADROOM_FIXED: u64 = 48;
/// Descriptors kept per core: its listener, its three glommio rings (main,
/// latency, poll) and their eventfd, its epoll instance, the spare fd of
/// `accept.rs` (measured: 7), plus the one connection being turned away at a
/// time; the rest is margin.
pub const HEADROOM_PER_CORE: u64 = 12;

/// Overrides the headroom (a count of fds). For deployments that open more
/// files than the estimate, and for tests that drive the server into EMFILE.
pub const HEADROOM_ENV: &str = "SHOAL_FD_HEADROOM";

/// The descriptors the server keeps for itself with `threads` cores.
pub fn headroom(threads: usize) -> u64 {
    if let Some(n) = std::env::var(HEADROOM_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return n;
    }
    HEADROOM_FIXED + HEADROOM_PER_CORE * threads as u64
}

/// What to set the soft limit to, and the connection limit that fits.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// The soft RLIMIT_NOFILE to set (never below the current one).
    pub soft: u64,
    /// `-c` as it can be honoured (`conn_limit` unless the limit is too low).
    pub conn_limit: usize,
}

/// Plans the soft limit for `conn_limit` connections plus `headroom`, given
/// the current `soft` and `hard` limits (`hard` already capped by the
/// kernel's fs.nr_open). None: even the hard limit leaves no room for a
/// single connection.
pub fn plan(conn_limit: usize, headroom: u64, soft: u64, hard: u64) -> Option<Plan> {
    let need = (conn_limit as u64).saturating_add(headroom);
    if soft >= need {
        return Some(Plan { soft, conn_limit });
    }
    if hard >= need {
        return Some(Plan {
            soft: need,
            conn_limit,
        });
    }
    let fits = hard.checked_sub(headroom).filter(|&n| n > 0)?;
    Some(Plan {
        soft: hard.max(soft),
        conn_limit: usize::try_from(fits).unwrap_or(usize::MAX).min(conn_limit),
    })
}

fn get() -> io::Result<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim)
}

fn set(soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The kernel's ceiling on any process's fd limit (setrlimit above it fails
/// even when the hard limit is unlimited).
fn nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Raises the soft RLIMIT_NOFILE so `conn_limit` connections fit on
/// `threads` cores, and returns the connection limit to serve: lower than
/// `conn_limit` (with a warning on stderr) when the hard limit is too low.
/// Err: not even one connection fits.
pub fn raise(conn_limit: usize, threads: usize) -> Result<usize, String> {
    let headroom = headroom(threads);
    let lim = match get() {
        Ok(l) => l,
        Err(e) => {
            // Nothing to plan with; accept failures are handled anyway.
            eprintln!("shoal: warning: cannot read the open-file limit ({e})");
            return Ok(conn_limit);
        }
    };
    let need = (conn_limit as u64).saturating_add(headroom);
    let mut hard = lim.rlim_max;
    // A privileged process may raise the hard limit too (as memcached does
    // when run as root); an unprivileged one gets EPERM and keeps its own.
    if hard < need && set(need, need).is_ok() {
        return Ok(conn_limit);
    }
    if let Some(cap) = nr_open() {
        hard = hard.min(cap);
    }
    let Some(plan) = plan(conn_limit, headroom, lim.rlim_cur, hard) else {
        return Err(format!(
            "the open-file limit (hard RLIMIT_NOFILE {hard}) leaves no room for client \
             connections: shoal keeps {headroom} descriptors for itself with {threads} \
             cores; raise it (ulimit -Hn, LimitNOFILE= in systemd) or run fewer cores (-t)"
        ));
    };
    if plan.soft != lim.rlim_cur {
        if let Err(e) = set(plan.soft, lim.rlim_max) {
            // Keep going on the old limit; say what it allows.
            let fits = lim.rlim_cur.saturating_sub(headroom).max(1);
            let fits = usize::try_from(fits).unwrap_or(usize::MAX).min(conn_limit);
            eprintln!(
                "shoal: warning: cannot raise the open-file limit to {} ({e}); \
                 -c lowered from {conn_limit} to {fits}",
                plan.soft
            );
            return Ok(fits);
        }
    }
    if plan.conn_limit < conn_limit {
        eprintln!(
            "shoal: warning: the open-file limit is too low for -c {conn_limit}: hard \
             RLIMIT_NOFILE is {hard} and shoal keeps {headroom} descriptors for itself; \
             -c lowered from {conn_limit} to {} (raise the hard limit with ulimit -Hn or \
             LimitNOFILE= in systemd, or run as root)",
            plan.conn_limit
        );
    }
    Ok(plan.conn_limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_already_enough_is_left_alone() {
        assert_eq!(
            plan(1024, 64, 20_000, 20_000),
            Some(Plan {
                soft: 20_000,
                conn_limit: 1024
            })
        );
        // Exactly enough.
        assert_eq!(
            plan(192, 64, 256, 256),
            Some(Plan {
                soft: 256,
                conn_limit: 192
            })
        );
    }

    #[test]
    fn soft_raised_to_fit_when_hard_allows() {
        assert_eq!(
            plan(1024, 64, 256, 4096),
            Some(Plan {
                soft: 1088,
                conn_limit: 1024
            })
        );
        assert_eq!(
            plan(1024, 64, 256, u64::MAX),
            Some(Plan {
                soft: 1088,
                conn_limit: 1024
            })
        );
    }

    #[test]
    fn conn_limit_lowered_when_hard_is_too_low() {
        assert_eq!(
            plan(1024, 64, 256, 256),
            Some(Plan {
                soft: 256,
                conn_limit: 192
            })
        );
        assert_eq!(
            plan(1024, 64, 100, 300),
            Some(Plan {
                soft: 300,
                conn_limit: 236
            })
        );
    }

    #[test]
    fn no_room_at_all_is_an_error() {
        assert_eq!(plan(1024, 64, 64, 64), None);
        assert_eq!(plan(1024, 64, 10, 20), None);
        // One connection still fits.
        assert_eq!(
            plan(1024, 64, 65, 65),
            Some(Plan {
                soft: 65,
                conn_limit: 1
            })
        );
    }

    #[test]
    fn huge_conn_limit_does_not_overflow() {
        let p = plan(usize::MAX, 64, 256, 1 << 20).unwrap();
        assert_eq!(p.soft, 1 << 20);
        assert_eq!(p.conn_limit, (1 << 20) - 64);
    }
}
