//! The hardware watchdog's timeout (linux/watchdog.h): the board profile names how long a hung
//! box may go unpetted, and the driver's default (30 s on i6300esb, other values elsewhere) is
//! not that. Setting it is an ioctl on the device the daemon opened and pets.

use std::fs::File;
use std::os::fd::AsRawFd;

/// `WDIOC_SETTIMEOUT` = `_IOWR('W', 6, int)`.
#[allow(unsafe_code)]
mod ioctl {
    nix::ioctl_readwrite!(set_timeout, b'W', 6, libc::c_int);
}

/// Asks the driver for a timeout of `seconds`; returns the timeout it took (drivers round to
/// what the hardware can count, and refuse what it cannot).
pub fn set_timeout(device: &File, seconds: u32) -> std::io::Result<u32> {
    let mut value = libc::c_int::try_from(seconds)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: the fd is open for as long as `device` lives, and `value` is the one int the
    // ioctl reads and writes back.
    #[allow(unsafe_code)]
    unsafe { ioctl::set_timeout(device.as_raw_fd(), &mut value) }.map_err(std::io::Error::from)?;
    Ok(u32::try_from(value).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Not a watchdog: the driver's answer (ENOTTY) comes back as an error, nothing panics.
    #[test]
    fn a_file_that_is_no_watchdog_refuses_the_timeout() {
        let file = File::open("/dev/null").unwrap();
        assert!(set_timeout(&file, 60).is_err());
    }
}
