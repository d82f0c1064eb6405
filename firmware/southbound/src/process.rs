//! This process as procfs reports it: resident memory and open file descriptors (the metrics
//! endpoint's `tandem_process_*` families).

use std::path::Path;

/// Resident memory in bytes (`VmRSS` of `/proc/self/status`); None when unreadable.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    vm_rss_bytes(&status)
}

/// `VmRSS:  1234 kB` of a `/proc/PID/status` text, in bytes.
pub fn vm_rss_bytes(status: &str) -> Option<u64> {
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// File descriptors this process has open (entries of `/proc/self/fd`, less the one the
/// listing itself holds); None when unreadable.
pub fn open_fds() -> Option<u64> {
    let entries = std::fs::read_dir(Path::new("/proc/self/fd")).ok()?.count();
    u64::try_from(entries.saturating_sub(1)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss_in_bytes() {
        let status = "Name:\ttandem\nVmPeak:\t  30000 kB\nVmRSS:\t   21540 kB\nThreads:\t6\n";
        assert_eq!(vm_rss_bytes(status), Some(21540 * 1024));
        assert_eq!(vm_rss_bytes("Name:\tx\n"), None);
        assert!(resident_bytes().is_some_and(|bytes| bytes > 0));
        assert!(open_fds().is_some_and(|fds| fds >= 3));
    }
}
