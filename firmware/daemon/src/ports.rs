//! The box's physical ports and the operator's port map: `ports` (each port with its role, where
//! the role came from, the role saved for the next boot, carrier, MAC, driver), `ports assign
//! ROLE PORT [ROLE PORT ...]` and `ports reset`.
//!
//! The map is a hardware fact of this box: it lives in the identity region of the config disk
//! (`tandem_config::identity`, a two-copy record of its own), never in the replicated blob. Boot
//! applies it over the board profile (`tandem_board::assign_roles_with_map`) before the NICs are
//! renamed, so a change takes effect at the next boot: renaming ports live would move the
//! engines' interfaces under them. Only the roles that differ from the board profile are
//! stored, so the profile still decides the rest. `tandem.reset_ports=1` on the kernel command
//! line removes the map (back to the board profile).

use std::path::Path;

use tandem_board::hardware::format_mac;
use tandem_board::{BoardProfile, FoundNic, NicRole, RoleAssignment};
use tandem_config::identity::{IdentityStore, PortMap, StoredPortMap};
use tandem_southbound::sysfs;

use crate::config_store::AnyDevice;
use crate::logring::Log;

/// The kernel command-line flag that removes the port map at boot.
pub const RESET_FLAG: &str = "tandem.reset_ports";

/// What `ports assign` says about when it applies.
const NEXT_BOOT: &str = "takes effect at the next boot (reboot from Power, or `reboot`)";

type RoleMap = Vec<(NicRole, String)>;

/// The stored map as roles, and a note when it cannot be used as stored.
fn read_map(store: &mut IdentityStore<AnyDevice>) -> (RoleMap, Option<String>) {
    match store.load_port_map() {
        Ok(StoredPortMap::Missing) => (Vec::new(), None),
        Ok(StoredPortMap::Corrupt) => (
            Vec::new(),
            Some(
                "the port map on the config disk is damaged (both copies): the board \
                 profile's ports apply; `ports assign` or `ports reset` writes a new one"
                    .to_owned(),
            ),
        ),
        Ok(StoredPortMap::Map(stored)) => {
            let mut map = Vec::new();
            let mut note = None;
            for (word, port) in stored {
                match NicRole::from_interface_name(&word) {
                    Some(role) => map.push((role, port)),
                    None => {
                        note = Some(format!(
                            "the port map names an unknown role `{word}` (port {port}): ignored"
                        ));
                    }
                }
            }
            (map, note)
        }
        Err(error) => (
            Vec::new(),
            Some(format!(
                "cannot read the port map: {error}; the board profile's ports apply"
            )),
        ),
    }
}

/// At boot: the operator's map from the board's config disk (empty: the board profile), after
/// `tandem.reset_ports=1` removed it if the command line asks.
pub fn boot_map(board: &BoardProfile, cmdline: &str, log: &Log) -> RoleMap {
    let location = crate::config_store::find_config_location(
        board.config_device,
        Path::new("/sys/class/block"),
        Path::new("/dev"),
    );
    let Some(disk) = location.device.as_deref() else {
        return Vec::new();
    };
    let mut store = match crate::config_store::appliance_identity_store(disk) {
        Ok(store) => store,
        Err(error) => {
            log.line(format!(
                "ports: cannot open config disk {disk} for the port map: {error}; the board \
                 profile's ports apply"
            ));
            return Vec::new();
        }
    };
    if crate::init::cmdline_value(cmdline, RESET_FLAG) == Some("1") {
        log.line(match store.save_port_map(&[]) {
            Ok(()) => format!(
                "ports: {RESET_FLAG}=1: the port map is removed; the board profile's ports apply"
            ),
            Err(error) => format!("ports: {RESET_FLAG}=1: cannot remove the port map: {error}"),
        });
        return Vec::new();
    }
    let (map, note) = read_map(&mut store);
    if let Some(note) = note {
        log.line(format!("ports: {note}"));
    }
    map
}

/// The boot log's line for an assignment the operator's map shaped, if it did.
pub fn boot_line(roles: &RoleAssignment, found: &[FoundNic]) -> Option<String> {
    if roles.from_operator.is_empty() {
        return None;
    }
    let placed: Vec<String> = tandem_board::port_map_of(roles, found)
        .iter()
        .map(|(role, port)| {
            let from = if roles.from_operator.contains(role) {
                "operator"
            } else {
                "board"
            };
            format!("{role}={port} ({from})")
        })
        .collect();
    Some(format!("ports: {}", placed.join(" ")))
}

fn map_words(map: &[(NicRole, String)]) -> String {
    if map.is_empty() {
        return "none (the board profile's ports)".to_owned();
    }
    let words: Vec<String> = map
        .iter()
        .map(|(role, port)| format!("{role}={port}"))
        .collect();
    words.join(" ")
}

fn found_nics() -> Vec<FoundNic> {
    sysfs::physical_nics(Path::new("/sys/class/net")).unwrap_or_default()
}

/// `ports`: one line per physical port, then the saved map.
pub fn list(
    board: Option<&BoardProfile>,
    boot: &RoleAssignment,
    store: Option<&mut IdentityStore<AnyDevice>>,
) -> String {
    list_on(board, boot, store, &found_nics())
}

fn list_on(
    board: Option<&BoardProfile>,
    boot: &RoleAssignment,
    store: Option<&mut IdentityStore<AnyDevice>>,
    found: &[FoundNic],
) -> String {
    let (stored, note) = store.map_or((Vec::new(), None), read_map);
    let sys_class_net = Path::new("/sys/class/net");
    let mut text = String::new();
    if let Some(board) = board {
        let roles: Vec<&str> = NicRole::ASSIGN_ORDER
            .iter()
            .filter(|role| board.has_role(**role))
            .map(|role| role.interface_name())
            .collect();
        text.push_str(&format!(
            "ports: board {} roles {}\n",
            board.name,
            roles.join(" ")
        ));
    }
    let next = board.map(|board| tandem_board::assign_roles_with_map(board, found, &stored));
    for nic in found {
        let role = NicRole::from_interface_name(&nic.name);
        let from = match role {
            Some(role) if boot.from_operator.contains(&role) => "operator",
            Some(_) => "board",
            None => "-",
        };
        let mut line = format!(
            "ports: {} name={} role={} from={from}",
            tandem_board::port_id(nic),
            nic.name,
            role.map_or("-", NicRole::interface_name),
        );
        if let Some(next) = &next {
            let at_next_boot = next
                .assigned
                .iter()
                .find(|(_, name)| *name == nic.name)
                .map(|(role, _)| *role);
            if at_next_boot != role {
                line.push_str(&format!(
                    " next={}",
                    at_next_boot.map_or("none", NicRole::interface_name)
                ));
            }
        }
        let carrier = match sysfs::carrier(sys_class_net, &nic.name) {
            Some(true) => "up",
            Some(false) => "down",
            // No carrier file while the link is administratively down.
            None => match sysfs::operstate(sys_class_net, &nic.name).as_deref() {
                Some("up") => "up",
                Some(_) => "down",
                None => "-",
            },
        };
        text.push_str(&format!(
            "{line} carrier={carrier} mac={} driver={}\n",
            format_mac(&nic.mac),
            nic.driver.as_deref().unwrap_or("-")
        ));
    }
    if found.is_empty() {
        text.push_str("ports: no physical ports found in /sys/class/net\n");
    }
    if let Some(note) = note {
        text.push_str(&format!("ports: {note}\n"));
    }
    text.push_str(&format!("ports: saved {}\n", map_words(&stored)));
    text.push_str("ports: end\n");
    text
}

/// `ports assign ROLE PORT [ROLE PORT ...]`: each role gets its port (by id, kernel name or
/// MAC), swapping with the role that had it; the map is saved for the next boot.
pub fn assign(
    board: Option<&BoardProfile>,
    store: Option<&mut IdentityStore<AnyDevice>>,
    pairs: &[(String, String)],
    log: &Log,
) -> String {
    assign_on(board, store, pairs, &found_nics(), log)
}

fn assign_on(
    board: Option<&BoardProfile>,
    store: Option<&mut IdentityStore<AnyDevice>>,
    pairs: &[(String, String)],
    found: &[FoundNic],
    log: &Log,
) -> String {
    let (Some(board), Some(store)) = (board, store) else {
        return "ports assign: this box has no board profile or no config disk: its ports \
                keep their names\n"
            .to_owned();
    };
    let (stored, _) = read_map(store);
    let next = tandem_board::assign_roles_with_map(board, found, &stored);
    let mut map = tandem_board::port_map_of(&next, found);
    for (role_word, port_word) in pairs {
        let role = NicRole::from_interface_name(&role_word.to_ascii_lowercase())
            .filter(|role| board.has_role(*role));
        let Some(role) = role else {
            let valid: Vec<&str> = NicRole::ASSIGN_ORDER
                .iter()
                .filter(|role| board.has_role(**role))
                .map(|role| role.interface_name())
                .collect();
            return format!(
                "ports assign: ROLE `{role_word}` is not a role of board {}; valid: {}; nothing \
                 saved\n",
                board.name,
                valid.join(", ")
            );
        };
        let Some(nic) = tandem_board::find_port(found, port_word) else {
            let valid: Vec<String> = found
                .iter()
                .map(|nic| {
                    format!(
                        "{} ({}, {})",
                        tandem_board::port_id(nic),
                        nic.name,
                        format_mac(&nic.mac)
                    )
                })
                .collect();
            return format!(
                "ports assign: PORT `{port_word}` is not a port of this box; valid (id, name or \
                 MAC): {}; nothing saved\n",
                if valid.is_empty() {
                    "none found".to_owned()
                } else {
                    valid.join(", ")
                }
            );
        };
        tandem_board::assign_port(&mut map, role, &tandem_board::port_id(nic));
    }
    // Only what differs from the board profile is stored: the profile keeps deciding the rest.
    let defaults = tandem_board::port_map_of(&tandem_board::assign_roles(board, found), found);
    let changed: RoleMap = map
        .iter()
        .filter(|entry| !defaults.contains(entry))
        .cloned()
        .collect();
    let stored: PortMap = changed
        .iter()
        .map(|(role, port)| (role.interface_name().to_owned(), port.clone()))
        .collect();
    if let Err(error) = store.save_port_map(&stored) {
        return format!("ports assign: not saved: {error}\n");
    }
    log.line(format!(
        "ports: port map saved for the next boot: {}",
        map_words(&changed)
    ));
    format!(
        "ports: saved; {NEXT_BOOT}\nports: next boot: {}\n",
        map_words(&map)
    )
}

/// `ports reset`: the board profile's ports at the next boot.
pub fn reset(store: Option<&mut IdentityStore<AnyDevice>>, log: &Log) -> String {
    let Some(store) = store else {
        return "ports reset: this box has no config disk: nothing to reset\n".to_owned();
    };
    match store.save_port_map(&[]) {
        Ok(()) => {
            log.line("ports: port map removed: the board profile's ports at the next boot");
            format!("ports: the board profile's ports are back; {NEXT_BOOT}\n")
        }
        Err(error) => format!("ports reset: not saved: {error}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_board::profiles::QEMU_LAB;
    use tandem_config::storage::MemDevice;

    fn store() -> IdentityStore<AnyDevice> {
        IdentityStore::new(
            AnyDevice::new(Box::new(MemDevice::erased(8192)), "memory"),
            0,
        )
    }

    /// The lab box after a boot with the board profile: public, private, peer by PCI slot.
    fn found() -> Vec<FoundNic> {
        ["public", "private", "peer"]
            .iter()
            .enumerate()
            .map(|(at, name)| FoundNic {
                name: (*name).to_owned(),
                pci_path: Some(format!("0000:00:0{}.0", at + 3)),
                mac: [0x52, 0x54, 0, 0x1a, 1, u8::try_from(at + 1).unwrap()],
                driver: Some("virtio_net".into()),
            })
            .collect()
    }

    fn pairs(words: &[(&str, &str)]) -> Vec<(String, String)> {
        words
            .iter()
            .map(|(r, p)| ((*r).to_owned(), (*p).to_owned()))
            .collect()
    }

    #[test]
    fn assign_swaps_stores_only_what_differs_and_ports_shows_the_next_boot() {
        let (mut store, found, log) = (store(), found(), Log::default());
        let boot = tandem_board::assign_roles(&QEMU_LAB, &found);
        let before = list_on(Some(&QEMU_LAB), &boot, Some(&mut store), &found);
        assert!(
            before.starts_with("ports: board qemu-lab roles public private peer mgmt public2\n"),
            "{before}"
        );
        assert!(before.contains("ports: 0000:00:04.0 name=private role=private from=board carrier=- mac=52:54:00:1a:01:02 driver=virtio_net\n"), "{before}");
        assert!(!before.contains("next="), "{before}");
        assert!(before.contains("ports: saved none"), "{before}");

        // By kernel name: public on the private port; the old public port becomes private.
        let text = assign_on(
            Some(&QEMU_LAB),
            Some(&mut store),
            &pairs(&[("PUBLIC", "private")]),
            &found,
            &log,
        );
        assert!(text.contains("takes effect at the next boot"), "{text}");
        assert!(
            text.contains("public=0000:00:04.0 private=0000:00:03.0 peer=0000:00:05.0"),
            "{text}"
        );
        assert_eq!(
            store.load_port_map().unwrap(),
            StoredPortMap::Map(vec![
                ("public".into(), "0000:00:04.0".into()),
                ("private".into(), "0000:00:03.0".into()),
            ]),
            "peer stays the board profile's"
        );
        let after = list_on(Some(&QEMU_LAB), &boot, Some(&mut store), &found);
        assert!(
            after.contains("0000:00:04.0 name=private role=private from=board next=public"),
            "{after}"
        );
        assert!(
            after.contains("0000:00:03.0 name=public role=public from=board next=private"),
            "{after}"
        );
        assert!(
            after.contains("ports: saved public=0000:00:04.0 private=0000:00:03.0"),
            "{after}"
        );

        // The next boot applies it; `ports` then says the operator placed them.
        let (map, note) = read_map(&mut store);
        assert_eq!(note, None);
        let booted = tandem_board::assign_roles_with_map(&QEMU_LAB, &found, &map);
        assert_eq!(booted.from_operator, [NicRole::Public, NicRole::Private]);
        assert_eq!(
            boot_line(&booted, &found).as_deref(),
            Some("ports: public=0000:00:04.0 (operator) private=0000:00:03.0 (operator) peer=0000:00:05.0 (board)")
        );

        // Back by MAC: the same as the board profile, so nothing is stored.
        let text = assign_on(
            Some(&QEMU_LAB),
            Some(&mut store),
            &pairs(&[("public", "52:54:00:1A:01:01")]),
            &found,
            &log,
        );
        assert!(
            text.contains("public=0000:00:03.0 private=0000:00:04.0"),
            "{text}"
        );
        assert_eq!(
            store.load_port_map().unwrap(),
            StoredPortMap::Map(Vec::new())
        );
        assert!(log
            .lines()
            .iter()
            .any(|l| l.contains("port map saved for the next boot")));
    }

    #[test]
    fn unknown_roles_and_ports_are_refused_naming_the_valid_ones_and_nothing_is_saved() {
        let (mut store, found, log) = (store(), found(), Log::default());
        let text = assign_on(
            Some(&QEMU_LAB),
            Some(&mut store),
            &pairs(&[("wan", "private")]),
            &found,
            &log,
        );
        assert!(text.contains("ROLE `wan`"), "{text}");
        assert!(
            text.contains("valid: public, private, peer, mgmt, public2"),
            "{text}"
        );
        let text = assign_on(
            Some(&QEMU_LAB),
            Some(&mut store),
            &pairs(&[("public", "eth9")]),
            &found,
            &log,
        );
        assert!(text.contains("PORT `eth9`"), "{text}");
        assert!(
            text.contains("0000:00:04.0 (private, 52:54:00:1a:01:02)"),
            "{text}"
        );
        // A later bad pair refuses the whole line.
        let text = assign_on(
            Some(&QEMU_LAB),
            Some(&mut store),
            &pairs(&[("public", "private"), ("peer", "nowhere")]),
            &found,
            &log,
        );
        assert!(text.contains("nothing saved"), "{text}");
        assert_eq!(store.load_port_map().unwrap(), StoredPortMap::Missing);
        assert!(assign_on(
            None,
            Some(&mut store),
            &pairs(&[("public", "private")]),
            &found,
            &log
        )
        .contains("no board profile"));
    }

    #[test]
    fn reset_and_a_damaged_record_mean_the_board_profile() {
        let (mut store, found, log) = (store(), found(), Log::default());
        assign_on(
            Some(&QEMU_LAB),
            Some(&mut store),
            &pairs(&[("public", "private")]),
            &found,
            &log,
        );
        assert!(reset(Some(&mut store), &log).contains("board profile's ports are back"));
        assert_eq!(read_map(&mut store), (Vec::new(), None));
        // Both copies damaged: the board profile, and `ports` says why.
        let mut device = store.into_device();
        use tandem_config::storage::BlockDevice;
        for copy in 0..2u64 {
            device.write_at(copy * 4096 + 1024 + 100, &[0xff]).unwrap();
        }
        let mut store = IdentityStore::new(device, 0);
        let boot = tandem_board::assign_roles(&QEMU_LAB, &found);
        let text = list_on(Some(&QEMU_LAB), &boot, Some(&mut store), &found);
        assert!(
            text.contains("ports: the port map on the config disk is damaged"),
            "{text}"
        );
        assert!(text.contains("ports: saved none"), "{text}");
    }

    /// A port-map record exactly as the firmware before `public2` wrote it (TDPM version 1,
    /// role words, built here byte by byte from the documented layout): it reads the same,
    /// since the record stores role words and `public2` only adds a word.
    #[test]
    fn a_record_written_before_public2_still_reads() {
        use tandem_config::storage::BlockDevice;
        let mut record = [0u8; 276];
        record[0..4].copy_from_slice(b"TDPM");
        record[4..6].copy_from_slice(&1u16.to_le_bytes());
        record[6..14].copy_from_slice(&7u64.to_le_bytes());
        record[14] = 2;
        for (at, (role, port)) in [("public", "0000:00:04.0"), ("private", "0000:00:03.0")]
            .iter()
            .enumerate()
        {
            let start = 16 + at * 32;
            record[start..start + role.len()].copy_from_slice(role.as_bytes());
            record[start + 8..start + 8 + port.len()].copy_from_slice(port.as_bytes());
        }
        let crc = tandem_config::crc32::crc32(&record[..272]);
        record[272..].copy_from_slice(&crc.to_le_bytes());
        let mut device = AnyDevice::new(Box::new(MemDevice::erased(8192)), "memory");
        device.write_at(1024, &record).unwrap();
        let mut store = IdentityStore::new(device, 0);
        let (map, note) = read_map(&mut store);
        assert_eq!(note, None);
        assert_eq!(
            map,
            vec![
                (NicRole::Public, "0000:00:04.0".to_owned()),
                (NicRole::Private, "0000:00:03.0".to_owned()),
            ]
        );
        // The lab box now has a fifth port: the old map places the same two roles.
        let mut found = found();
        found.push(FoundNic {
            name: "eth4".into(),
            pci_path: Some("0000:00:07.0".into()),
            mac: [0x52, 0x54, 0, 0x1a, 1, 5],
            driver: Some("virtio_net".into()),
        });
        let booted = tandem_board::assign_roles_with_map(&QEMU_LAB, &found, &map);
        assert_eq!(booted.nic_for(NicRole::Public), Some("private"));
        assert_eq!(booted.nic_for(NicRole::Private), Some("public"));
        assert_eq!(booted.nic_for(NicRole::Public2), Some("eth4"));
        assert!(booted.notes.is_empty(), "{:?}", booted.notes);
    }

    /// The 4-port box: `ports assign public2 mgmt` stores public2 on the mgmt port; `ports`
    /// shows it for the next boot, which names that port public2 and leaves mgmt without one.
    #[test]
    fn the_4_port_box_gives_its_mgmt_port_the_public2_role() {
        use tandem_board::profiles::X86_1U_4PORT_IGB;
        let (mut store, log) = (store(), Log::default());
        let found: Vec<FoundNic> = ["mgmt", "public", "private", "peer"]
            .iter()
            .enumerate()
            .map(|(at, name)| FoundNic {
                name: (*name).to_owned(),
                pci_path: Some(format!("0000:0{}:00.0", at + 1)),
                mac: [0x00, 0x1b, 0x21, 0, 0, u8::try_from(at + 1).unwrap()],
                driver: Some("igb".into()),
            })
            .collect();
        let boot = tandem_board::assign_roles(&X86_1U_4PORT_IGB, &found);
        let before = list_on(Some(&X86_1U_4PORT_IGB), &boot, Some(&mut store), &found);
        assert!(
            before.starts_with(
                "ports: board x86-1u-4port-igb roles public private peer mgmt public2\n"
            ),
            "{before}"
        );
        let text = assign_on(
            Some(&X86_1U_4PORT_IGB),
            Some(&mut store),
            &pairs(&[("public2", "mgmt")]),
            &found,
            &log,
        );
        assert!(
            text.contains(
                "next boot: public=0000:02:00.0 private=0000:03:00.0 peer=0000:04:00.0 \
                 public2=0000:01:00.0"
            ),
            "{text}"
        );
        assert_eq!(
            store.load_port_map().unwrap(),
            StoredPortMap::Map(vec![("public2".into(), "0000:01:00.0".into())])
        );
        let after = list_on(Some(&X86_1U_4PORT_IGB), &boot, Some(&mut store), &found);
        assert!(
            after.contains("ports: 0000:01:00.0 name=mgmt role=mgmt from=board next=public2 "),
            "{after}"
        );
        let (map, _) = read_map(&mut store);
        let booted = tandem_board::assign_roles_with_map(&X86_1U_4PORT_IGB, &found, &map);
        assert!(booted.is_complete(), "mgmt gave its port up: not missing");
        assert_eq!(
            boot_line(&booted, &found).as_deref(),
            Some(
                "ports: public=0000:02:00.0 (board) private=0000:03:00.0 (board) \
                 peer=0000:04:00.0 (board) public2=0000:01:00.0 (operator)"
            )
        );
        // And back: mgmt takes its port again; nothing differs from the profile.
        assign_on(
            Some(&X86_1U_4PORT_IGB),
            Some(&mut store),
            &pairs(&[("mgmt", "0000:01:00.0")]),
            &found,
            &log,
        );
        assert_eq!(
            store.load_port_map().unwrap(),
            StoredPortMap::Map(Vec::new())
        );
    }
}
