//! Waking at an exact monotonic deadline.
//!
//! tokio's timer wheel works in whole milliseconds and may fire up to a millisecond late: at a
//! 10 ms advert interval that is a tenth of the interval, and it lands directly on the takeover
//! path. A `timerfd` armed with an absolute CLOCK_MONOTONIC deadline wakes within microseconds.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use nix::time::clock_gettime;
use tokio::io::unix::AsyncFd;

struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// A one-shot precise timer; each `sleep_until` re-arms it.
pub struct PreciseTimer {
    fd: AsyncFd<Fd>,
}

impl core::fmt::Debug for PreciseTimer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PreciseTimer").finish_non_exhaustive()
    }
}

impl PreciseTimer {
    /// A timer on CLOCK_MONOTONIC (the clock `std::time::Instant` uses on Linux).
    pub fn new() -> io::Result<PreciseTimer> {
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        // SAFETY: `Fd` owns the timerfd; it stays open and unchanged until the `AsyncFd` that
        // owns the `Fd` is dropped, and `as_raw_fd` always returns that descriptor.
        #[allow(unsafe_code)]
        let fd = unsafe { AsyncFd::register(Fd(timer)) };
        let fd = fd.map_err(|error| io::Error::other(error.to_string()))?;
        Ok(PreciseTimer { fd })
    }

    /// Resolves at `deadline` (at once if it has passed). Dropping the future cancels nothing
    /// harmful: the next call re-arms the timer and resets its expiry count.
    pub async fn sleep_until(&self, deadline: Instant) -> io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        let now = clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)?;
        let at = now + TimeSpec::from_duration(left);
        self.fd.get_ref().0.set(
            Expiration::OneShot(at),
            TimerSetTimeFlags::TFD_TIMER_ABSTIME,
        )?;
        loop {
            let mut guard = self.fd.readable().await?;
            let read = guard.try_io(|inner| {
                let mut count = [0u8; 8];
                match nix::unistd::read(inner.get_ref().0.as_fd(), &mut count) {
                    Ok(_) => Ok(()),
                    Err(Errno::EAGAIN) => Err(io::ErrorKind::WouldBlock.into()),
                    Err(errno) => Err(errno.into()),
                }
            });
            match read {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn wakes_at_the_deadline_not_before_and_rearms() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let timer = PreciseTimer::new().unwrap();
            for wait_ms in [3u64, 1, 7] {
                let deadline = Instant::now() + Duration::from_millis(wait_ms);
                timer.sleep_until(deadline).await.unwrap();
                assert!(Instant::now() >= deadline, "woke before the deadline");
            }
            // A deadline in the past resolves at once.
            timer
                .sleep_until(Instant::now() - Duration::from_millis(5))
                .await
                .unwrap();
            // A cancelled sleep leaves no stale expiry behind for the next one.
            let _ = tokio::time::timeout(
                Duration::from_millis(1),
                timer.sleep_until(Instant::now() + Duration::from_millis(2)),
            )
            .await;
            tokio::time::sleep(Duration::from_millis(5)).await;
            let deadline = Instant::now() + Duration::from_millis(20);
            timer.sleep_until(deadline).await.unwrap();
            assert!(
                Instant::now() >= deadline,
                "a stale expiry woke the re-armed timer early"
            );
        });
    }
}
