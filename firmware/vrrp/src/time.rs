//! Injected time: an [`Instant`] is nanoseconds since an epoch the caller chooses (the daemon
//! uses `CLOCK_MONOTONIC`, tests start at zero). Nothing in this crate reads a clock.
//!
//! Nanoseconds keep RFC 9568 Skew_Time exact: `(256 - priority) * interval_cs / 256`
//! centiseconds is a multiple of half a nanosecond, rounded up here.

use core::fmt;
use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in time: nanoseconds since the caller's epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    nanos: u64,
}

impl Instant {
    /// The epoch.
    pub const ZERO: Instant = Instant { nanos: 0 };

    /// From nanoseconds since the epoch.
    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant { nanos }
    }

    /// From microseconds since the epoch (saturating).
    pub const fn from_micros(micros: u64) -> Instant {
        Instant {
            nanos: micros.saturating_mul(1_000),
        }
    }

    /// From milliseconds since the epoch (saturating).
    pub const fn from_millis(millis: u64) -> Instant {
        Instant {
            nanos: millis.saturating_mul(1_000_000),
        }
    }

    /// From seconds since the epoch (saturating).
    pub const fn from_secs(secs: u64) -> Instant {
        Instant {
            nanos: secs.saturating_mul(1_000_000_000),
        }
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.nanos
    }

    /// Time elapsed since `earlier`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.nanos.saturating_sub(earlier.nanos))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// Saturates at the far future instead of wrapping.
    fn add(self, rhs: Duration) -> Instant {
        let add = u64::try_from(rhs.as_nanos()).unwrap_or(u64::MAX);
        Instant {
            nanos: self.nanos.saturating_add(add),
        }
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;

    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.nanos / 1_000_000_000;
        let micros = (self.nanos % 1_000_000_000) / 1_000;
        write!(f, "{secs}.{micros:06}s")
    }
}

/// Nanoseconds per centisecond.
const NANOS_PER_CS: u64 = 10_000_000;

/// A whole number of centiseconds as a duration.
pub fn centiseconds(cs: u16) -> Duration {
    Duration::from_nanos(u64::from(cs) * NANOS_PER_CS)
}

/// RFC 9568 section 6.1 Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256, with the
/// fraction kept (to the nanosecond, rounded up).
pub fn skew_time(priority: u8, master_adver_interval_cs: u16) -> Duration {
    let numerator =
        (256 - u64::from(priority)) * u64::from(master_adver_interval_cs) * NANOS_PER_CS;
    Duration::from_nanos(numerator.div_ceil(256))
}

/// RFC 9568 section 6.1 Master_Down_Interval = (3 * Master_Adver_Interval) + Skew_Time.
pub fn master_down_interval(priority: u8, master_adver_interval_cs: u16) -> Duration {
    centiseconds(master_adver_interval_cs) * 3 + skew_time(priority, master_adver_interval_cs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_keeps_the_fraction() {
        // 156 * 100 / 256 = 60.9375 cs = 609.375 ms.
        assert_eq!(skew_time(100, 100), Duration::from_nanos(609_375_000));
        // 2 * 1 / 256 cs = 78.125 us.
        assert_eq!(skew_time(254, 1), Duration::from_nanos(78_125));
        // 1 * 1 / 256 cs = 39062.5 ns, rounded up.
        assert_eq!(skew_time(255, 1), Duration::from_nanos(39_063));
        assert_eq!(
            master_down_interval(100, 100),
            Duration::from_nanos(3_609_375_000)
        );
        // v2 default: 1 s interval, priority 150: 3 s + 106/256 s.
        assert_eq!(
            master_down_interval(150, 100),
            Duration::from_nanos(3_414_062_500)
        );
    }

    #[test]
    fn instants_saturate() {
        let far = Instant::from_nanos(u64::MAX - 1);
        assert_eq!(far + Duration::from_secs(1), Instant::from_nanos(u64::MAX));
        assert_eq!(Instant::ZERO - far, Duration::ZERO);
        assert_eq!(Instant::from_millis(1500).to_string(), "1.500000s");
    }
}
