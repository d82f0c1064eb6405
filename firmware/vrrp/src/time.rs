//! Injected time: an [`Instant`] (`tandem_wire::time::Instant`, the one `tandem-pair` uses too)
//! is nanoseconds since an epoch the caller chooses (the daemon uses `CLOCK_MONOTONIC`, tests
//! start at zero). Nothing in this crate reads a clock.
//!
//! Nanoseconds keep RFC 9568 Skew_Time exact: `(256 - priority) * interval_cs / 256`
//! centiseconds is a multiple of half a nanosecond, rounded up here.

use core::time::Duration;

pub use tandem_wire::time::Instant;

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
}
