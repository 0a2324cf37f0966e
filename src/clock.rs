//! The server clock, memcached style: seconds since (process start − 2), so
//! a live item's times are never 0 and 0 can mean "never expires".
//!
//! Exptimes from clients are converted once, here, into that clock:
//! 0 = never, ≤ 30 days = relative, larger = absolute unix time, negative =
//! already expired.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Exptimes above this many seconds are absolute unix timestamps.
pub const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

struct Epoch {
    started: Instant,
    /// Unix time that corresponds to clock value 0.
    unix_base: i64,
}

static EPOCH: OnceLock<Epoch> = OnceLock::new();

fn epoch() -> &'static Epoch {
    EPOCH.get_or_init(|| {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Epoch {
            started: Instant::now(),
            unix_base: unix - 2,
        }
    })
}

/// Starts the clock (idempotent); call once at startup so uptime counts from there.
pub fn init() {
    epoch();
}

/// Current server time in seconds (monotonic, starts at 2).
pub fn now() -> u32 {
    let e = epoch();
    (e.started.elapsed().as_secs() + 2) as u32
}

/// The server time at `instant` (for a caller that already read the
/// clock: one read serves both its timing and its server time).
pub fn at(instant: Instant) -> u32 {
    let e = epoch();
    (instant.saturating_duration_since(e.started).as_secs() + 2) as u32
}

/// The UTC calendar date and time of unix seconds `t`:
/// (year, month, day, hour, minute, second), by Howard Hinnant's
/// civil_from_days.
pub fn civil(t: u64) -> (i64, i64, i64, u64, u64, u64) {
    let days = (t / 86_400) as i64;
    let secs = t % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, secs / 3600, secs / 60 % 60, secs % 60)
}

/// Unix time of `now()`; what `stats` reports as `time`.
pub fn unix_now() -> i64 {
    unix_of(now())
}

/// Unix time of server time `t`.
#[inline]
pub fn unix_of(t: u32) -> i64 {
    epoch().unix_base + i64::from(t)
}

/// Server time of unix time `t`: at least 1, so a time before this process
/// started reads as already past (for expiry times kept over a restart).
pub fn at_unix(t: i64) -> u32 {
    (t - epoch().unix_base).clamp(1, i64::from(u32::MAX)) as u32
}

/// Unix time the process started, for `uptime`.
pub fn uptime() -> u32 {
    now() - 2
}

/// Converts a client exptime into server time: 0 = never expires.
pub fn realtime(exptime: i64, now: u32) -> u32 {
    if exptime == 0 {
        return 0;
    }
    if exptime < 0 {
        // memcached maps negative values to an absolute time in the past.
        return 1;
    }
    if exptime > REALTIME_MAXDELTA {
        let base = epoch().unix_base;
        if exptime <= base {
            return 1;
        }
        return (exptime - base).min(u32::MAX as i64) as u32;
    }
    (exptime as u64 + now as u64).min(u32::MAX as u64) as u32
}

/// Remaining TTL in seconds for meta `t`: -1 = never expires.
pub fn ttl_remaining(exptime: u32, now: u32) -> i64 {
    if exptime == 0 {
        -1
    } else {
        exptime.saturating_sub(now) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exptime_rules_x4() {
        let now = now();
        assert_eq!(realtime(0, now), 0);
        assert_eq!(realtime(-1, now), 1);
        assert_eq!(realtime(10, now), now + 10);
        assert_eq!(
            realtime(REALTIME_MAXDELTA, now),
            now + REALTIME_MAXDELTA as u32
        );
        // An absolute time in the past is expired; one in the future maps to the clock.
        assert_eq!(realtime(REALTIME_MAXDELTA + 1, now), 1);
        let future = unix_now() + 100;
        assert_eq!(realtime(future, now), now + 100);
        assert_eq!(at_unix(future), now + 100);
        assert_eq!(at_unix(unix_of(now)), now);
        assert_eq!(at_unix(0), 1);
    }
}
