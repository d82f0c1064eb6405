//! Kernel knobs through `/proc/sys` (the image has no `sysctl` tool).

use std::path::PathBuf;

/// Why a knob could not be set.
#[derive(Debug)]
pub struct SysctlError {
    pub key: String,
    pub source: std::io::Error,
}

impl core::fmt::Display for SysctlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "cannot write sysctl {}: {} (is /proc mounted and the interface present?)",
            self.key, self.source
        )
    }
}

impl std::error::Error for SysctlError {}

/// `net.ipv6.conf.peer.accept_dad` -> `/proc/sys/net/ipv6/conf/peer/accept_dad`. A key
/// naming a link with a dot in its name (`vrrp.51`) is written with slashes, as `sysctl`
/// takes it: `net/ipv4/conf/vrrp.51/arp_ignore`.
pub fn path_of(key: &str) -> PathBuf {
    let mut path = PathBuf::from("/proc/sys");
    if key.contains('/') {
        path.extend(key.split('/'));
    } else {
        path.extend(key.split('.'));
    }
    path
}

/// Writes `value` to the knob `key` (dotted form).
pub fn set(key: &str, value: &str) -> Result<(), SysctlError> {
    std::fs::write(path_of(key), value).map_err(|source| SysctlError {
        key: key.to_owned(),
        source,
    })
}

/// Reads the knob `key`.
pub fn get(key: &str) -> Result<String, SysctlError> {
    std::fs::read_to_string(path_of(key))
        .map(|s| s.trim().to_owned())
        .map_err(|source| SysctlError {
            key: key.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_keys_map_to_proc_paths() {
        assert_eq!(
            path_of("net.ipv6.conf.peer.accept_dad"),
            PathBuf::from("/proc/sys/net/ipv6/conf/peer/accept_dad")
        );
        assert_eq!(
            path_of("net/ipv4/conf/vrrp.51/arp_ignore"),
            PathBuf::from("/proc/sys/net/ipv4/conf/vrrp.51/arp_ignore")
        );
    }

    #[test]
    fn reads_a_real_knob_and_names_a_missing_one() {
        assert!(matches!(
            get("net.ipv4.ip_forward").as_deref(),
            Ok("0" | "1")
        ));
        let error = set("net.ipv4.conf.no-such-if.rp_filter", "0").unwrap_err();
        assert!(error.to_string().contains("no-such-if"));
    }
}
