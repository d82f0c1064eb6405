//! Matching a board profile against the NICs the kernel found.
//!
//! Pure logic: the southbound layer reads sysfs into [`FoundNic`]s, this module decides which
//! port plays which role and what to tell the operator when the hardware is not what the board
//! profile says.

use crate::{BoardProfile, NicMatch, NicRole, NicSpec};

/// A network device as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundNic {
    /// Current kernel name (`eth0`, `enp0s3`, or already a role name after a restart).
    pub name: String,
    /// PCI device path such as `0000:00:03.0`, when the NIC is a PCI device.
    pub pci_path: Option<String>,
    pub mac: [u8; 6],
    /// The bound driver (`virtio_net`, `igb`), when known.
    pub driver: Option<String>,
}

/// The outcome of matching: who plays which role, what is missing, what is left over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleAssignment {
    /// Role and the kernel name of the NIC that plays it.
    pub assigned: Vec<(NicRole, String)>,
    /// Required ports the board should have but does not.
    pub missing_required: Vec<NicSpec>,
    /// Optional ports that are absent (normal on some boxes, reported for information).
    pub missing_optional: Vec<NicSpec>,
    /// NICs no role claimed.
    pub unclaimed: Vec<String>,
}

impl RoleAssignment {
    /// True when every required port was found.
    pub fn is_complete(&self) -> bool {
        self.missing_required.is_empty()
    }

    /// The NIC name playing `role`.
    pub fn nic_for(&self, role: NicRole) -> Option<&str> {
        self.assigned
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, name)| name.as_str())
    }

    /// Boot messages: one line per problem, naming what was expected and what was found.
    pub fn messages(&self, board: &BoardProfile, found: &[FoundNic]) -> Vec<String> {
        let mut lines = Vec::new();
        for spec in &self.missing_required {
            lines.push(format!(
                "board {}: unknown hardware: required {} port ({} driver at {}) not found; \
                 found NICs: {}. Build the image for the right board (make image BOARD=...) or \
                 add a profile for this box in board/src/profiles.rs",
                board.name,
                spec.role,
                spec.driver,
                describe_match(&spec.matcher),
                describe_found(found),
            ));
        }
        for spec in &self.missing_optional {
            lines.push(format!(
                "board {}: optional {} port ({}) not present",
                board.name,
                spec.role,
                describe_match(&spec.matcher)
            ));
        }
        for name in &self.unclaimed {
            lines.push(format!(
                "board {}: NIC {name} has no role and stays unused",
                board.name
            ));
        }
        lines
    }
}

/// Human form of a matcher.
pub fn describe_match(matcher: &NicMatch) -> String {
    match matcher {
        NicMatch::PciPath(path) => format!("PCI {path}"),
        NicMatch::Mac(mac) => format!("MAC {}", format_mac(mac)),
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    let parts: Vec<String> = mac.iter().map(|byte| format!("{byte:02x}")).collect();
    parts.join(":")
}

fn describe_found(found: &[FoundNic]) -> String {
    if found.is_empty() {
        return "none".to_owned();
    }
    let parts: Vec<String> = found
        .iter()
        .map(|nic| {
            format!(
                "{} (PCI {}, MAC {}, driver {})",
                nic.name,
                nic.pci_path.as_deref().unwrap_or("-"),
                format_mac(&nic.mac),
                nic.driver.as_deref().unwrap_or("-")
            )
        })
        .collect();
    parts.join(", ")
}

fn matches(spec: &NicSpec, nic: &FoundNic) -> bool {
    match spec.matcher {
        NicMatch::PciPath(path) => nic.pci_path.as_deref() == Some(path),
        NicMatch::Mac(mac) => nic.mac == mac,
    }
}

/// Decides which found NIC plays which role of `board`.
pub fn assign_roles(board: &BoardProfile, found: &[FoundNic]) -> RoleAssignment {
    let mut assignment = RoleAssignment::default();
    let mut claimed = vec![false; found.len()];
    for spec in board.nics {
        let hit = found
            .iter()
            .enumerate()
            .find(|(i, nic)| !claimed.get(*i).copied().unwrap_or(true) && matches(spec, nic));
        match hit {
            Some((i, nic)) => {
                if let Some(slot) = claimed.get_mut(i) {
                    *slot = true;
                }
                assignment.assigned.push((spec.role, nic.name.clone()));
            }
            None if spec.required => assignment.missing_required.push(*spec),
            None => assignment.missing_optional.push(*spec),
        }
    }
    for (nic, was_claimed) in found.iter().zip(claimed) {
        if !was_claimed {
            assignment.unclaimed.push(nic.name.clone());
        }
    }
    assignment
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::{QEMU_LAB, X86_1U_4PORT_IGB};

    fn nic(name: &str, pci: &str, last: u8) -> FoundNic {
        FoundNic {
            name: name.into(),
            pci_path: Some(pci.into()),
            mac: [0x52, 0x54, 0, 0, 0, last],
            driver: Some("virtio_net".into()),
        }
    }

    #[test]
    fn lab_box_ports_are_found_by_pci_path_whatever_their_kernel_names() {
        let found = [
            nic("eth0", "0000:00:05.0", 1),
            nic("eth1", "0000:00:03.0", 2),
        ];
        let got = assign_roles(&QEMU_LAB, &found);
        assert_eq!(got.nic_for(NicRole::Peer), Some("eth0"));
        assert_eq!(got.nic_for(NicRole::Public), Some("eth1"));
        assert!(got.is_complete(), "public is the only required lab port");
        assert_eq!(got.missing_optional.len(), 2);
        assert!(got.unclaimed.is_empty());
    }

    #[test]
    fn unknown_hardware_is_named_with_what_was_found() {
        let found = [nic("eth0", "0000:00:09.0", 7)];
        let got = assign_roles(&X86_1U_4PORT_IGB, &found);
        assert!(!got.is_complete());
        assert_eq!(got.unclaimed, vec!["eth0".to_owned()]);
        let text = got.messages(&X86_1U_4PORT_IGB, &found).join("\n");
        assert!(text.contains("unknown hardware"), "{text}");
        assert!(text.contains("0000:00:09.0"), "{text}");
        assert!(text.contains("52:54:00:00:00:07"), "{text}");
        assert!(text.contains("no role"), "{text}");
    }

    #[test]
    fn a_nic_plays_at_most_one_role() {
        static TWO_ROLES_ONE_MAC: [NicSpec; 2] = [
            NicSpec {
                role: NicRole::Public,
                matcher: NicMatch::Mac([2, 0, 0, 0, 0, 1]),
                driver: "x",
                required: true,
            },
            NicSpec {
                role: NicRole::Peer,
                matcher: NicMatch::Mac([2, 0, 0, 0, 0, 1]),
                driver: "x",
                required: true,
            },
        ];
        let board = BoardProfile {
            nics: &TWO_ROLES_ONE_MAC,
            ..QEMU_LAB
        };
        let found = [FoundNic {
            name: "eth0".into(),
            pci_path: None,
            mac: [2, 0, 0, 0, 0, 1],
            driver: None,
        }];
        let got = assign_roles(&board, &found);
        assert_eq!(got.assigned.len(), 1);
        assert_eq!(got.missing_required.len(), 1);
    }
}
