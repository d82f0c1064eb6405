//! The boards Tandem knows.
//!
//! `qemu-lab` is the virtual box of the test lab (virtio NICs in fixed PCI slots, so role
//! assignment is exercised exactly as on hardware); `x86-1u-4port-igb` is a common 4-port Intel
//! i210 1U appliance with its console on the front RJ45 (ttyS1).
//!
//! A bonded public side needs a second public port (`public2`): the lab box has one of its own;
//! the 4-port box has no fifth port, so it offers the role for its mgmt port
//! (`ports assign public2 0000:01:00.0`, the box then has no mgmt port).

use crate::{BoardProfile, ConsoleSpec, NicMatch, NicRole, NicSpec, WatchdogSpec};

/// Modules every Tandem image carries for its role engines, whatever the board.
pub const FEATURE_MODULES: &[&str] = &[
    // bonding and VLANs
    "bonding",
    "8021q",
    // dummy interfaces (not used by an engine yet: the real-server role holds its VIPs on lo);
    // IPIP decapsulation on tunl0 for the real-server role behind a TUN director
    "dummy",
    "ipip",
    // VRRP use_vmac: a private-mode macvlan per instance carrying the virtual router MAC
    "macvlan",
    // LVS director and every scheduler this kernel ships. ip_vs (like nf_tables) needs
    // libcrc32c, whose init asks the crypto API for "crc32c": a soft dependency modules.dep
    // does not list, resolved by `modules::SOFT_PRE_DEPENDENCIES` (named here as well).
    "crc32c_generic",
    "ip_vs",
    "ip_vs_rr",
    "ip_vs_wrr",
    "ip_vs_lc",
    "ip_vs_wlc",
    "ip_vs_lblc",
    "ip_vs_lblcr",
    "ip_vs_dh",
    "ip_vs_sh",
    "ip_vs_sed",
    "ip_vs_nq",
    "ip_vs_fo",
    "ip_vs_ovf",
    "ip_vs_mh",
    "ip_vs_ftp",
    // firewall marks, NAT for NAT real servers, CLUSTERIP-style bucket sharing
    "nf_tables",
    "nft_ct",
    "nft_hash",
    "nft_nat",
    "nft_masq",
    "nft_chain_nat",
    // the peer channel (tickle ACKs): this box's established TCP sockets on its VIPs over
    // NETLINK_SOCK_DIAG (the sock_diag core is built in; inet_diag answers for AF_INET and
    // AF_INET6, tcp_diag for TCP of both)
    "inet_diag",
    "tcp_diag",
    // the firmware slots (issue 15): systemd-boot's variables (efivarfs) and the EFI system
    // partition (vfat, with the code page and character set its mount names)
    "efivarfs",
    "vfat",
    "nls_cp437",
    "nls_ascii",
];

static QEMU_LAB_NICS: [NicSpec; 5] = [
    NicSpec {
        role: NicRole::Public,
        matcher: NicMatch::PciPath("0000:00:03.0"),
        driver: "virtio_net",
        required: true,
    },
    NicSpec {
        role: NicRole::Private,
        matcher: NicMatch::PciPath("0000:00:04.0"),
        driver: "virtio_net",
        required: false,
    },
    NicSpec {
        role: NicRole::Peer,
        matcher: NicMatch::PciPath("0000:00:05.0"),
        driver: "virtio_net",
        required: false,
    },
    NicSpec {
        role: NicRole::Mgmt,
        matcher: NicMatch::PciPath("0000:00:06.0"),
        driver: "virtio_net",
        required: false,
    },
    NicSpec {
        role: NicRole::Public2,
        matcher: NicMatch::PciPath("0000:00:07.0"),
        driver: "virtio_net",
        required: false,
    },
];

/// The qemu box of the lab: virtio-net NICs in PCI slots 3 (public), 4 (private), 5 (peer),
/// 6 (mgmt), 7 (public2, the second port of a bonded public side); a virtio disk for the config
/// slots; an i6300esb watchdog.
pub const QEMU_LAB: BoardProfile = BoardProfile {
    name: "qemu-lab",
    description: "qemu lab box: virtio-net in PCI slots 3-7, virtio-blk config disk, i6300esb",
    nics: &QEMU_LAB_NICS,
    extra_roles: &[],
    console: ConsoleSpec {
        tty: "ttyS0",
        baud: 115_200,
    },
    boot_modules: &["virtio_pci", "virtio_net", "virtio_blk", "af_packet"],
    feature_modules: FEATURE_MODULES,
    watchdog: Some(WatchdogSpec {
        module: "i6300esb",
        device: "/dev/watchdog0",
        timeout_secs: 30,
    }),
    config_device: Some("/dev/vda"),
};

static X86_1U_NICS: [NicSpec; 4] = [
    NicSpec {
        role: NicRole::Mgmt,
        matcher: NicMatch::PciPath("0000:01:00.0"),
        driver: "igb",
        required: true,
    },
    NicSpec {
        role: NicRole::Public,
        matcher: NicMatch::PciPath("0000:02:00.0"),
        driver: "igb",
        required: true,
    },
    NicSpec {
        role: NicRole::Private,
        matcher: NicMatch::PciPath("0000:03:00.0"),
        driver: "igb",
        required: true,
    },
    NicSpec {
        role: NicRole::Peer,
        matcher: NicMatch::PciPath("0000:04:00.0"),
        driver: "igb",
        required: true,
    },
];

/// A 4-port Intel i210 (igb) 1U box with an Intel chipset watchdog (iTCO) and a small SATA/eMMC
/// partition for the config slots; console on the front RJ45 as ttyS1 at 115200. It offers a
/// bonded public side: `ports assign public2 0000:01:00.0` makes the mgmt port the second public
/// port (from the next boot; the box then has no mgmt port).
pub const X86_1U_4PORT_IGB: BoardProfile = BoardProfile {
    name: "x86-1u-4port-igb",
    description: "4x Intel i210 (igb) 1U appliance, console ttyS1 115200, iTCO watchdog",
    nics: &X86_1U_NICS,
    // Four ports, all with a role: a second public port takes the mgmt port.
    extra_roles: &[NicRole::Public2],
    console: ConsoleSpec {
        tty: "ttyS1",
        baud: 115_200,
    },
    boot_modules: &["igb", "e1000e", "ahci", "sd_mod", "af_packet"],
    feature_modules: FEATURE_MODULES,
    watchdog: Some(WatchdogSpec {
        module: "iTCO_wdt",
        device: "/dev/watchdog0",
        timeout_secs: 60,
    }),
    config_device: Some("/dev/sda"),
};

/// Every known board.
pub static PROFILES: [&BoardProfile; 2] = [&QEMU_LAB, &X86_1U_4PORT_IGB];

/// The board called `name`.
pub fn by_name(name: &str) -> Option<&'static BoardProfile> {
    PROFILES.iter().copied().find(|board| board.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_board_has_one_port_per_role_at_most_and_a_unique_name() {
        let mut names = BTreeSet::new();
        for board in PROFILES {
            assert!(names.insert(board.name));
            let roles: BTreeSet<_> = board.nics.iter().map(|nic| nic.role).collect();
            assert_eq!(roles.len(), board.nics.len(), "{}", board.name);
            for role in board.extra_roles {
                assert!(board.nic(*role).is_none(), "{}: {role} twice", board.name);
            }
            assert!(by_name(board.name).is_some());
        }
        assert!(by_name("no-such-board").is_none());
    }

    #[test]
    fn qemu_lab_modules_resolve_against_the_installed_debian_kernel_when_present() {
        // Uses the real modules.dep of the kernel the image is built from, when installed.
        let Ok(dir) = std::fs::read_dir("/lib/modules") else {
            return;
        };
        for entry in dir.flatten() {
            let base = entry.path();
            let Ok(dep) = std::fs::read_to_string(base.join("modules.dep")) else {
                continue;
            };
            let builtin = std::fs::read_to_string(base.join("modules.builtin")).unwrap_or_default();
            let index = crate::modules::ModuleIndex::parse(&dep, &builtin).unwrap();
            let order = index.load_order(QEMU_LAB.all_modules()).unwrap();
            assert!(order.iter().any(|p| p.ends_with("/ip_vs.ko")));
        }
    }

    /// modprobe reads `modules.softdep`; the image has no modprobe. Every `pre:` soft
    /// dependency the installed kernel declares must load before its module (through
    /// `modules::SOFT_PRE_DEPENDENCIES`) or be built in, whichever single module of a board an
    /// engine loads on its own (the VRRP engine loads just `nf_tables`, for example).
    #[test]
    fn every_soft_dependency_loads_before_its_module_when_present() {
        let Ok(dir) = std::fs::read_dir("/lib/modules") else {
            return;
        };
        for entry in dir.flatten() {
            let base = entry.path();
            let (Ok(dep), Ok(softdep)) = (
                std::fs::read_to_string(base.join("modules.dep")),
                std::fs::read_to_string(base.join("modules.softdep")),
            ) else {
                continue;
            };
            let builtin = std::fs::read_to_string(base.join("modules.builtin")).unwrap_or_default();
            let aliases = std::fs::read_to_string(base.join("modules.alias")).unwrap_or_default();
            let index = crate::modules::ModuleIndex::parse(&dep, &builtin).unwrap();
            // alias -> the modules providing it
            let mut providers: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
            for line in aliases.lines() {
                let mut words = line.split_whitespace();
                if let (Some("alias"), Some(alias), Some(module)) =
                    (words.next(), words.next(), words.next())
                {
                    providers
                        .entry(alias)
                        .or_default()
                        .push(module.replace('-', "_"));
                }
            }
            // module -> its `pre:` soft dependencies, each as the modules that can satisfy it
            let mut soft: std::collections::BTreeMap<String, Vec<(&str, Vec<String>)>> =
                Default::default();
            for line in softdep.lines() {
                let mut words = line.split_whitespace();
                let (Some("softdep"), Some(module)) = (words.next(), words.next()) else {
                    continue;
                };
                let pre = words
                    .skip_while(|w| *w != "pre:")
                    .skip(1)
                    .take_while(|w| *w != "post:");
                for wanted in pre {
                    let candidates = providers
                        .get(wanted)
                        .cloned()
                        .unwrap_or_else(|| vec![wanted.replace('-', "_")]);
                    soft.entry(module.replace('-', "_"))
                        .or_default()
                        .push((wanted, candidates));
                }
            }
            for board in PROFILES {
                for wanted in board.all_modules() {
                    let order: Vec<String> = index
                        .load_order([wanted])
                        .unwrap()
                        .iter()
                        .map(|p| crate::modules::module_name(p))
                        .collect();
                    for (at, module) in order.iter().enumerate() {
                        for (dependency, candidates) in soft.get(module).into_iter().flatten() {
                            let satisfied = candidates.iter().any(|c| {
                                index.is_builtin(c) || order.iter().take(at).any(|m| m == c)
                            });
                            assert!(
                                satisfied,
                                "{}: loading {wanted} loads {module}, whose soft dependency \
                                 {dependency} ({candidates:?}, {}) is not loaded before it: \
                                 add it to modules::SOFT_PRE_DEPENDENCIES ({order:?})",
                                board.name,
                                base.display()
                            );
                        }
                    }
                }
            }
        }
    }
}
