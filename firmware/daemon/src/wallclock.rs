//! The box's wall-clock time, and whether anyone vouches for it.
//!
//! CLOCK_REALTIME holds whatever the RTC said at boot (a dead CMOS battery: 2000 or 1970) until
//! the SNTP driver ([`crate::sntp`]) synchronises it. Log lines, syslog timestamps and `status`
//! ask here: [`synced_now`] is `Some` only while SNTP vouches for the clock, so nothing is
//! stamped with a time nobody checked.
//!
//! On the appliance the driver steps CLOCK_REALTIME itself. `tandem run` is a daemon on a host
//! that keeps its own time: its driver never steps the host's clock and records a correction
//! here instead ([`correct_by`]), which [`now`] adds, so the daemon's own timestamps and the
//! offsets it reports are those of a box whose clock was stepped.
//!
//! Also the pure RFC 3339 rendering ([`Rfc3339`]) the log ring and the syslog formatter share.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static SYNCED: AtomicBool = AtomicBool::new(false);
static CORRECTION_NANOS: AtomicI64 = AtomicI64::new(0);

/// The box's wall clock: CLOCK_REALTIME plus the correction, as time since the Unix epoch
/// (zero for a clock before 1970).
pub fn now() -> Duration {
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    apply_correction(real, CORRECTION_NANOS.load(Ordering::Relaxed))
}

/// The wall clock while SNTP vouches for it, else None.
pub fn synced_now() -> Option<Duration> {
    SYNCED.load(Ordering::Relaxed).then(now)
}

/// Whether SNTP vouches for the clock now.
pub fn is_synced() -> bool {
    SYNCED.load(Ordering::Relaxed)
}

/// SNTP vouches for the clock (true) or no longer does (false).
pub fn set_synced(synced: bool) {
    SYNCED.store(synced, Ordering::Relaxed);
}

/// Adds `nanos` to the correction [`now`] applies (the clock of `tandem run`, which never
/// steps the host's).
pub fn correct_by(nanos: i64) {
    let _ = CORRECTION_NANOS.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
        Some(old.saturating_add(nanos))
    });
}

fn apply_correction(real: Duration, correction: i64) -> Duration {
    let magnitude = Duration::from_nanos(correction.unsigned_abs());
    if correction >= 0 {
        real.saturating_add(magnitude)
    } else {
        real.saturating_sub(magnitude)
    }
}

/// The civil date of day `days` since 1970-01-01: (year, month 1..=12, day 1..=31)
/// (H. Hinnant's days-to-civil, proleptic Gregorian).
pub fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (
        year,
        u8::try_from(month).unwrap_or(1),
        u8::try_from(day).unwrap_or(1),
    )
}

/// A time since the Unix epoch as RFC 3339 UTC (`2026-12-03T11:01:02.123456Z`) with `digits`
/// (0 to 6) of fractional seconds: the `FULL-DATE "T" FULL-TIME` of RFC 5424's TIMESTAMP.
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339 {
    pub since_epoch: Duration,
    pub digits: u8,
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.since_epoch.as_secs();
        let days = i64::try_from(seconds / 86_400).unwrap_or(i64::MAX / 2);
        let (year, month, day) = civil_from_days(days);
        let in_day = seconds % 86_400;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            in_day / 3600,
            in_day / 60 % 60,
            in_day % 60
        )?;
        let digits = self.digits.min(6);
        if digits > 0 {
            let micros = self.since_epoch.subsec_micros();
            let shown = micros / 10u32.pow(u32::from(6 - digits));
            write!(f, ".{shown:0width$}", width = usize::from(digits))?;
        }
        f.write_str("Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_renders_utc_with_the_asked_digits() {
        let at = Duration::new(1_796_295_662, 123_456_789);
        let full = Rfc3339 {
            since_epoch: at,
            digits: 6,
        };
        assert_eq!(full.to_string(), "2026-12-03T11:01:02.123456Z");
        let millis = Rfc3339 {
            since_epoch: at,
            digits: 3,
        };
        assert_eq!(millis.to_string(), "2026-12-03T11:01:02.123Z");
        let whole = Rfc3339 {
            since_epoch: at,
            digits: 0,
        };
        assert_eq!(whole.to_string(), "2026-12-03T11:01:02Z");
        let epoch = Rfc3339 {
            since_epoch: Duration::ZERO,
            digits: 6,
        };
        assert_eq!(epoch.to_string(), "1970-01-01T00:00:00.000000Z");
        // A leap day and the last second of a year.
        let leap = Rfc3339 {
            since_epoch: Duration::from_secs(951_782_400),
            digits: 0,
        };
        assert_eq!(leap.to_string(), "2000-02-29T00:00:00Z");
        let new_year = Rfc3339 {
            since_epoch: Duration::from_secs(1_735_689_599),
            digits: 1,
        };
        assert_eq!(new_year.to_string(), "2024-12-31T23:59:59.0Z");
    }

    #[test]
    fn a_correction_moves_the_clock_both_ways_without_wrapping() {
        let real = Duration::from_secs(100);
        assert_eq!(
            apply_correction(real, 2_500_000_000),
            Duration::from_millis(102_500)
        );
        assert_eq!(
            apply_correction(real, -1_000_000_000),
            Duration::from_secs(99)
        );
        assert_eq!(apply_correction(real, i64::MIN), Duration::ZERO);
    }
}
