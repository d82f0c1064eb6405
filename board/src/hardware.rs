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
    /// Roles placed by the operator's port map (`ports assign`) rather than the board profile.
    pub from_operator: Vec<NicRole>,
    /// What applying the port map found worth saying (a stored port gone, a role that yielded).
    pub notes: Vec<String>,
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
        let mut lines = self.notes.clone();
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
    assign_roles_with_map(board, found, &[])
}

/// The stable id of a port: its PCI path, else its MAC (`aa:bb:cc:dd:ee:ff`).
pub fn port_id(nic: &FoundNic) -> String {
    nic.pci_path.clone().unwrap_or_else(|| format_mac(&nic.mac))
}

/// Decides which found NIC plays which role of `board`, the operator's `map` (role -> port id,
/// see [`port_id`]) first and the board profile for the other roles. A mapped port that is not
/// there is ignored with a note naming it (its role falls back to the profile); a port plays
/// one role at most: a profile default whose port the map gave another role yields (its role
/// stays without a port, with a note, and is not reported missing: the port is there, the
/// operator gave it another job). The map may also place a role of the board's
/// [`BoardProfile::extra_roles`], which has no port of its own.
pub fn assign_roles_with_map(
    board: &BoardProfile,
    found: &[FoundNic],
    map: &[(NicRole, String)],
) -> RoleAssignment {
    let mut assignment = RoleAssignment::default();
    let mut claimed: Vec<Option<NicRole>> = vec![None; found.len()];
    for (role, id) in map {
        if !board.has_role(*role) || assignment.from_operator.contains(role) {
            assignment.notes.push(format!(
                "ports: the port map's {role} -> {id} is ignored: board {} has one {role} port at most",
                board.name
            ));
            continue;
        }
        match found.iter().position(|nic| port_id(nic) == *id) {
            None => assignment.notes.push(format!(
                "ports: port {id} that the port map gives {role} is not on this box any more; \
                 {role} takes the board profile's port (`ports assign` or `ports reset` to change)"
            )),
            Some(at) if claimed[at].is_some() => assignment.notes.push(format!(
                "ports: the port map gives port {id} a second role ({role}); it stays {}",
                claimed[at].map_or("-", NicRole::interface_name)
            )),
            Some(at) => {
                claimed[at] = Some(*role);
                assignment.from_operator.push(*role);
            }
        }
    }
    for spec in board.nics {
        if assignment.from_operator.contains(&spec.role) {
            continue;
        }
        let free = (0..found.len()).find(|at| claimed[*at].is_none() && matches(spec, &found[*at]));
        if let Some(at) = free {
            claimed[at] = Some(spec.role);
            continue;
        }
        let taken = (0..found.len()).find(|at| {
            matches(spec, &found[*at])
                && claimed[*at].is_some_and(|role| assignment.from_operator.contains(&role))
        });
        if let Some(at) = taken {
            assignment.notes.push(format!(
                "ports: {0}'s board port {1} plays {2} by the port map; {0} has no port \
                 (`ports assign {0} PORT` gives it one)",
                spec.role,
                port_id(&found[at]),
                claimed[at].map_or("-", NicRole::interface_name),
            ));
            // Not missing hardware: boot neither waits for it nor calls the box unknown.
            continue;
        }
        if spec.required {
            assignment.missing_required.push(*spec);
        } else {
            assignment.missing_optional.push(*spec);
        }
    }
    // In the board's order, whoever placed them, then the extra roles the operator placed.
    let roles = board.nics.iter().map(|spec| spec.role);
    for role in roles.chain(board.extra_roles.iter().copied()) {
        if let Some(at) = claimed.iter().position(|claim| *claim == Some(role)) {
            assignment.assigned.push((role, found[at].name.clone()));
        }
    }
    for (nic, role) in found.iter().zip(claimed) {
        if role.is_none() {
            assignment.unclaimed.push(nic.name.clone());
        }
    }
    assignment
}

/// The port (by id, current kernel name or MAC, any case) that `word` names.
pub fn find_port<'a>(found: &'a [FoundNic], word: &str) -> Option<&'a FoundNic> {
    found.iter().find(|nic| {
        port_id(nic).eq_ignore_ascii_case(word)
            || nic.name == word
            || format_mac(&nic.mac).eq_ignore_ascii_case(word)
    })
}

/// An assignment as a port map: role -> port id, in the board's order.
pub fn port_map_of(assignment: &RoleAssignment, found: &[FoundNic]) -> Vec<(NicRole, String)> {
    assignment
        .assigned
        .iter()
        .filter_map(|(role, name)| {
            let nic = found.iter().find(|nic| nic.name == *name)?;
            Some((*role, port_id(nic)))
        })
        .collect()
}

/// `ports assign ROLE PORT` on a whole map: `role` gets `port`, and the role that had `port`
/// takes `role`'s old port (or none), so the map stays one port per role and one role per port.
pub fn assign_port(map: &mut Vec<(NicRole, String)>, role: NicRole, port: &str) {
    let old_port = map.iter().find(|(r, _)| *r == role).map(|(_, p)| p.clone());
    map.retain(|(r, _)| *r != role);
    if let Some(at) = map.iter().position(|(_, p)| p == port) {
        match old_port {
            Some(old) => map[at].1 = old,
            None => {
                map.remove(at);
            }
        }
    }
    // Kept in the assign order (no sort: the appliance binary is counted in bytes).
    let rank = |r: &NicRole| NicRole::ASSIGN_ORDER.iter().position(|a| a == r);
    let at = map
        .iter()
        .position(|(r, _)| rank(r) > rank(&role))
        .unwrap_or(map.len());
    map.insert(at, (role, port.to_owned()));
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
        assert_eq!(got.missing_optional.len(), 3, "private, mgmt, public2");
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

    fn lab_ports() -> [FoundNic; 3] {
        [
            nic("eth0", "0000:00:03.0", 1),
            nic("eth1", "0000:00:04.0", 2),
            nic("eth2", "0000:00:05.0", 3),
        ]
    }

    fn map(pairs: &[(NicRole, &str)]) -> Vec<(NicRole, String)> {
        pairs.iter().map(|(r, p)| (*r, (*p).to_owned())).collect()
    }

    #[test]
    fn the_port_map_moves_roles_and_the_profile_fills_the_rest() {
        let found = lab_ports();
        let swapped = map(&[
            (NicRole::Public, "0000:00:04.0"),
            (NicRole::Private, "0000:00:03.0"),
        ]);
        let got = assign_roles_with_map(&QEMU_LAB, &found, &swapped);
        assert_eq!(got.nic_for(NicRole::Public), Some("eth1"));
        assert_eq!(got.nic_for(NicRole::Private), Some("eth0"));
        assert_eq!(got.nic_for(NicRole::Peer), Some("eth2"), "the profile's");
        assert_eq!(got.from_operator, [NicRole::Public, NicRole::Private]);
        assert!(got.notes.is_empty(), "{:?}", got.notes);
        assert!(got.is_complete());
        // Back to a map, in the board's order.
        assert_eq!(
            port_map_of(&got, &found),
            map(&[
                (NicRole::Public, "0000:00:04.0"),
                (NicRole::Private, "0000:00:03.0"),
                (NicRole::Peer, "0000:00:05.0"),
            ])
        );
        // No map: the profile alone, as before.
        assert_eq!(
            assign_roles_with_map(&QEMU_LAB, &found, &[]),
            assign_roles(&QEMU_LAB, &found)
        );
    }

    #[test]
    fn a_mapped_port_that_is_gone_is_ignored_and_named() {
        let found = lab_ports();
        let gone = map(&[(NicRole::Public, "0000:00:09.0")]);
        let got = assign_roles_with_map(&QEMU_LAB, &found, &gone);
        assert_eq!(
            got.nic_for(NicRole::Public),
            Some("eth0"),
            "the profile's port"
        );
        assert!(got.from_operator.is_empty());
        let text = got.messages(&QEMU_LAB, &found).join("\n");
        assert!(text.contains("port 0000:00:09.0"), "{text}");
        assert!(text.contains("not on this box any more"), "{text}");
    }

    #[test]
    fn a_port_never_plays_two_roles_and_the_profile_default_yields() {
        let found = lab_ports();
        // Public on private's board port, private not mapped: private yields, without a port.
        let got = assign_roles_with_map(
            &QEMU_LAB,
            &found,
            &map(&[(NicRole::Public, "0000:00:04.0")]),
        );
        assert_eq!(got.nic_for(NicRole::Public), Some("eth1"));
        assert_eq!(got.nic_for(NicRole::Private), None);
        // Private yielded (named in a note, not missing); mgmt and public2 are absent.
        assert_eq!(got.missing_optional.len(), 2, "mgmt and public2");
        assert!(got
            .missing_optional
            .iter()
            .all(|spec| spec.role != NicRole::Private));
        assert_eq!(got.unclaimed, ["eth0"]);
        let text = got.messages(&QEMU_LAB, &found).join("\n");
        assert!(
            text.contains("private's board port 0000:00:04.0 plays public"),
            "{text}"
        );
        // Two roles mapped to one port: the first keeps it.
        let got = assign_roles_with_map(
            &QEMU_LAB,
            &found,
            &map(&[
                (NicRole::Public, "0000:00:05.0"),
                (NicRole::Peer, "0000:00:05.0"),
            ]),
        );
        assert_eq!(got.nic_for(NicRole::Public), Some("eth2"));
        assert_eq!(got.nic_for(NicRole::Peer), None);
        assert!(
            got.notes.iter().any(|n| n.contains("second role (peer)")),
            "{:?}",
            got.notes
        );
        let names: std::collections::BTreeSet<_> = got.assigned.iter().map(|(_, n)| n).collect();
        assert_eq!(names.len(), got.assigned.len(), "one role per port");
    }

    #[test]
    fn assigning_a_port_swaps_with_the_role_that_had_it() {
        let mut current = map(&[
            (NicRole::Public, "0000:00:03.0"),
            (NicRole::Private, "0000:00:04.0"),
            (NicRole::Peer, "0000:00:05.0"),
        ]);
        assign_port(&mut current, NicRole::Public, "0000:00:04.0");
        assert_eq!(
            current,
            map(&[
                (NicRole::Public, "0000:00:04.0"),
                (NicRole::Private, "0000:00:03.0"),
                (NicRole::Peer, "0000:00:05.0"),
            ])
        );
        // A role without a port takes one: the role that had it is left without.
        assign_port(&mut current, NicRole::Mgmt, "0000:00:05.0");
        assert_eq!(
            current,
            map(&[
                (NicRole::Public, "0000:00:04.0"),
                (NicRole::Private, "0000:00:03.0"),
                (NicRole::Mgmt, "0000:00:05.0"),
            ])
        );
        // The same port again changes nothing.
        let before = current.clone();
        assign_port(&mut current, NicRole::Public, "0000:00:04.0");
        assert_eq!(current, before);
    }

    #[test]
    fn the_lab_box_names_a_fifth_nic_public2() {
        let found = [
            nic("eth0", "0000:00:03.0", 1),
            nic("eth1", "0000:00:05.0", 2),
            nic("eth2", "0000:00:07.0", 3),
        ];
        let got = assign_roles(&QEMU_LAB, &found);
        assert_eq!(got.nic_for(NicRole::Public), Some("eth0"));
        assert_eq!(got.nic_for(NicRole::Public2), Some("eth2"));
        assert_eq!(got.nic_for(NicRole::Peer), Some("eth1"));
        assert!(got.is_complete());
        assert!(got.unclaimed.is_empty());
        assert!(got.notes.is_empty(), "{:?}", got.notes);
    }

    fn igb_ports() -> [FoundNic; 4] {
        [
            nic("eth0", "0000:01:00.0", 1),
            nic("eth1", "0000:02:00.0", 2),
            nic("eth2", "0000:03:00.0", 3),
            nic("eth3", "0000:04:00.0", 4),
        ]
    }

    /// The 4-port box has no fifth port: `ports assign public2 MGMT-PORT` gives its mgmt port
    /// the second public role; mgmt is then without a port, which is the operator's choice, not
    /// missing hardware (boot does not wait for it nor call the box unknown).
    #[test]
    fn the_4_port_box_bonds_its_public_side_on_the_mgmt_port() {
        let found = igb_ports();
        assert!(
            X86_1U_4PORT_IGB.nic(NicRole::Public2).is_none(),
            "no fake port"
        );
        assert!(X86_1U_4PORT_IGB.has_role(NicRole::Public2));
        let defaults = port_map_of(&assign_roles(&X86_1U_4PORT_IGB, &found), &found);
        assert_eq!(defaults.len(), 4);
        let mut current = defaults.clone();
        assign_port(&mut current, NicRole::Public2, "0000:01:00.0");
        assert_eq!(
            current,
            map(&[
                (NicRole::Public, "0000:02:00.0"),
                (NicRole::Private, "0000:03:00.0"),
                (NicRole::Peer, "0000:04:00.0"),
                (NicRole::Public2, "0000:01:00.0"),
            ]),
            "one role per port: mgmt gave its port up"
        );
        // What `ports assign` stores: only what differs from the profile.
        let stored: Vec<_> = current
            .iter()
            .filter(|entry| !defaults.contains(entry))
            .cloned()
            .collect();
        assert_eq!(stored, map(&[(NicRole::Public2, "0000:01:00.0")]));
        let got = assign_roles_with_map(&X86_1U_4PORT_IGB, &found, &stored);
        assert_eq!(got.nic_for(NicRole::Public2), Some("eth0"));
        assert_eq!(got.nic_for(NicRole::Public), Some("eth1"));
        assert_eq!(got.nic_for(NicRole::Mgmt), None);
        assert!(got.is_complete(), "{:?}", got.missing_required);
        assert!(got.missing_optional.is_empty());
        assert_eq!(got.from_operator, [NicRole::Public2]);
        assert_eq!(port_map_of(&got, &found), current, "public2 listed last");
        let text = got.messages(&X86_1U_4PORT_IGB, &found).join("\n");
        assert!(
            text.contains("mgmt's board port 0000:01:00.0 plays public2 by the port map"),
            "{text}"
        );
        assert!(!text.contains("unknown hardware"), "{text}");
        // Back: mgmt takes its port again and public2 is left without one.
        assign_port(&mut current, NicRole::Mgmt, "0000:01:00.0");
        let mut sorted_defaults = defaults.clone();
        sorted_defaults.sort();
        current.sort();
        assert_eq!(current, sorted_defaults);
    }

    #[test]
    fn a_mapped_role_the_board_cannot_play_is_ignored_and_named() {
        let found = lab_ports();
        let board = BoardProfile {
            nics: &QEMU_LAB.nics[..4],
            ..QEMU_LAB
        };
        let got =
            assign_roles_with_map(&board, &found, &map(&[(NicRole::Public2, "0000:00:04.0")]));
        assert_eq!(got.nic_for(NicRole::Public2), None);
        assert_eq!(got.nic_for(NicRole::Private), Some("eth1"));
        assert!(got.from_operator.is_empty());
        assert!(
            got.notes
                .iter()
                .any(|n| n.contains("public2 -> 0000:00:04.0 is ignored")),
            "{:?}",
            got.notes
        );
    }

    #[test]
    fn ports_are_found_by_id_name_or_mac() {
        let found = lab_ports();
        assert_eq!(
            find_port(&found, "0000:00:04.0").map(|n| n.name.as_str()),
            Some("eth1")
        );
        assert_eq!(
            find_port(&found, "eth2").map(|n| n.name.as_str()),
            Some("eth2")
        );
        assert_eq!(
            find_port(&found, "52:54:00:00:00:01").map(|n| n.name.as_str()),
            Some("eth0")
        );
        assert_eq!(find_port(&found, "52:54:00:00:00:0A"), None);
        let no_pci = FoundNic {
            pci_path: None,
            ..nic("usb0", "-", 9)
        };
        assert_eq!(port_id(&no_pci), "52:54:00:00:00:09");
    }
}
