//! Reading network devices from sysfs (`/sys/class/net`).

use std::fs;
use std::path::Path;

use tandem_board::FoundNic;

/// Physical NICs (those backed by a bus device), sorted by name. Virtual devices such as `lo`,
/// bridges, bonds and dummies have no `device` link and are left out.
pub fn physical_nics(sys_class_net: &Path) -> std::io::Result<Vec<FoundNic>> {
    let mut nics = Vec::new();
    for entry in fs::read_dir(sys_class_net)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        let Ok(device) = fs::canonicalize(dir.join("device")) else {
            continue;
        };
        let pci_path = pci_path_of(&device);
        let driver = fs::read_link(dir.join("device/driver"))
            .ok()
            .and_then(|link| link.file_name().map(|n| n.to_string_lossy().into_owned()));
        let mac = mac(sys_class_net, &name).unwrap_or([0; 6]);
        nics.push(FoundNic {
            name,
            pci_path,
            mac,
            driver,
        });
    }
    nics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(nics)
}

/// The PCI address owning `device`: the device itself for a PCI NIC, its parent for a virtio
/// NIC (`.../0000:00:03.0/virtio0`).
fn pci_path_of(device: &Path) -> Option<String> {
    device
        .ancestors()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .find(|name| is_pci_address(name))
}

/// `dddd:bb:dd.f`.
fn is_pci_address(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() == 12
        && bytes.get(4) == Some(&b':')
        && bytes.get(7) == Some(&b':')
        && bytes.get(10) == Some(&b'.')
        && name
            .chars()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10) || c.is_ascii_hexdigit())
}

/// `aa:bb:cc:dd:ee:ff` to bytes.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// The link's own MAC address.
pub fn mac(sys_class_net: &Path, name: &str) -> Option<[u8; 6]> {
    let text = fs::read_to_string(sys_class_net.join(name).join("address")).ok()?;
    parse_mac(text.trim())
}

/// Operational state of a link (`up`, `down`, `lowerlayerdown`, ...).
pub fn operstate(sys_class_net: &Path, name: &str) -> Option<String> {
    fs::read_to_string(sys_class_net.join(name).join("operstate"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Whether the link is administratively up (IFF_UP in `flags`), whatever its carrier.
pub fn admin_up(sys_class_net: &Path, name: &str) -> Option<bool> {
    let text = fs::read_to_string(sys_class_net.join(name).join("flags")).ok()?;
    let flags = u32::from_str_radix(text.trim().trim_start_matches("0x"), 16).ok()?;
    Some(flags & 1 == 1)
}

/// Whether the link has carrier (cable plugged and peer up). `None` while the link is down.
pub fn carrier(sys_class_net: &Path, name: &str) -> Option<bool> {
    fs::read_to_string(sys_class_net.join(name).join("carrier"))
        .ok()
        .map(|s| s.trim() == "1")
}

/// Interface index from sysfs.
pub fn ifindex(sys_class_net: &Path, name: &str) -> Option<u32> {
    fs::read_to_string(sys_class_net.join(name).join("ifindex"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_are_recognised() {
        assert!(is_pci_address("0000:00:03.0"));
        assert!(!is_pci_address("virtio0"));
        assert!(!is_pci_address("pci0000:00"));
        let path = Path::new("/sys/devices/pci0000:00/0000:00:03.0/virtio0");
        assert_eq!(pci_path_of(path).as_deref(), Some("0000:00:03.0"));
    }

    #[test]
    fn macs_parse_strictly() {
        assert_eq!(
            parse_mac("52:54:00:12:34:56"),
            Some([0x52, 0x54, 0, 0x12, 0x34, 0x56])
        );
        assert_eq!(parse_mac("52:54:00:12:34"), None);
        assert_eq!(parse_mac("52:54:00:12:34:56:78"), None);
        assert_eq!(parse_mac("zz:54:00:12:34:56"), None);
    }

    #[test]
    fn loopback_is_administratively_up() {
        assert_eq!(admin_up(Path::new("/sys/class/net"), "lo"), Some(true));
        assert_eq!(admin_up(Path::new("/sys/class/net"), "no-such-link"), None);
    }

    #[test]
    fn the_loopback_device_is_not_a_physical_nic() {
        let nics = physical_nics(Path::new("/sys/class/net")).unwrap();
        assert!(nics.iter().all(|nic| nic.name != "lo"));
    }
}
