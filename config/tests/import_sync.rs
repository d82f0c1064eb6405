//! IPVS connection sync settings from keepalived.conf (`lvs_sync_daemon`) and Piranha lvs.cf
//! (`syncdaemon`, `syncd_iface`) land on `peer_link.ipvs_sync` / `ipvs_sync_interface`, create
//! the peer link when the file has none, validate, and report what Tandem does not keep.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tandem_config::import::{self, Format, NoteKind};
use tandem_config::model::PortRole;
use tandem_config::validate::{validate, Severity};
use tandem_config::Config;

fn errors(config: &Config) -> Vec<String> {
    validate(config)
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| i.to_string())
        .collect()
}

const VRRP: &str = "
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    virtual_ipaddress {
        192.0.2.10/24
    }
}
";

#[test]
fn keepalived_lvs_sync_daemon_turns_sync_on_over_its_interface() {
    let text = format!(
        "global_defs {{\n    router_id lb1\n    lvs_sync_daemon eth1 VI_1 id 42\n}}\n{VRRP}"
    );
    let imported = import::import(&text, Some(Format::Keepalived)).unwrap();
    let peer = imported
        .config
        .peer_link
        .as_ref()
        .expect("peer link created");
    assert!(peer.ipvs_sync);
    assert_eq!(peer.ipvs_sync_interface.as_deref(), Some("eth1"));
    assert_eq!(peer.interface.as_str(), "peer");
    // The sync interface and the peer port are described, so the config validates.
    assert!(imported.config.interface("eth1").is_some());
    assert_eq!(
        imported.config.interface("peer").and_then(|i| i.role),
        Some(PortRole::Peer)
    );
    assert_eq!(errors(&imported.config), Vec::<String>::new());
    // The instance binding is adjusted (both daemons run on both boxes); the id is reported
    // as not kept, with the line.
    let sync_notes: Vec<_> = imported
        .notes
        .iter()
        .filter(|n| n.keyword.starts_with("lvs_sync_daemon"))
        .map(|n| (n.line, n.keyword.as_str(), n.kind))
        .collect();
    assert_eq!(
        sync_notes,
        vec![
            (3, "lvs_sync_daemon", NoteKind::Adjusted),
            (3, "lvs_sync_daemon id", NoteKind::NotCarried)
        ]
    );
    assert!(imported
        .notes
        .iter()
        .any(|n| n.keyword == "lvs_sync_daemon id"
            && n.message.contains("sync id 42")
            && n.message.contains("pair id")));
}

#[test]
fn keepalived_sync_options_and_bad_lines_are_reported_not_lost() {
    let text = format!(
        "global_defs {{\n    lvs_sync_daemon eth1 VI_1 port 8850 group 239.1.1.1 bogus\n}}\n{VRRP}"
    );
    let imported = import::import(&text, Some(Format::Keepalived)).unwrap();
    let kinds: Vec<_> = imported
        .notes
        .iter()
        .filter(|n| n.keyword.starts_with("lvs_sync_daemon"))
        .map(|n| (n.keyword.as_str(), n.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("lvs_sync_daemon", NoteKind::Adjusted),
            ("lvs_sync_daemon port", NoteKind::NotCarried),
            ("lvs_sync_daemon group", NoteKind::NotCarried),
            ("lvs_sync_daemon", NoteKind::Invalid),
        ]
    );
    assert!(imported.config.peer_link.as_ref().unwrap().ipvs_sync);

    // No interface: nothing is turned on, and the line is reported.
    let imported = import::import(
        &format!("global_defs {{\n    lvs_sync_daemon\n}}\n{VRRP}"),
        Some(Format::Keepalived),
    )
    .unwrap();
    assert_eq!(imported.config.peer_link, None);
    assert!(imported
        .notes
        .iter()
        .any(|n| n.line == 2 && n.kind == NoteKind::Invalid && n.message.contains("interface")));

    // An interface name longer than Linux allows is refused, not truncated.
    let imported = import::import(
        &format!("global_defs {{\n    lvs_sync_daemon a-very-long-interface VI_1\n}}\n{VRRP}"),
        Some(Format::Keepalived),
    )
    .unwrap();
    assert_eq!(imported.config.peer_link, None);
}

#[test]
fn keepalived_legacy_sync_interface_keyword_maps_too() {
    let text = format!("global_defs {{\n    lvs_sync_daemon_interface eth2\n}}\n{VRRP}");
    let imported = import::import(&text, Some(Format::Keepalived)).unwrap();
    let peer = imported.config.peer_link.as_ref().unwrap();
    assert!(peer.ipvs_sync);
    assert_eq!(peer.ipvs_sync_interface.as_deref(), Some("eth2"));
    assert!(imported.is_lossless(), "{:#?}", imported.notes);
    assert_eq!(errors(&imported.config), Vec::<String>::new());
}

#[test]
fn piranha_syncdaemon_alone_creates_the_peer_link() {
    let text =
        "serial_no = 1\nservice = lvs\nnetwork = direct\nsyncdaemon = 1\nsyncd_iface = eth1\n";
    let imported = import::import(text, Some(Format::Lvs)).unwrap();
    let peer = imported
        .config
        .peer_link
        .as_ref()
        .expect("peer link created");
    assert!(peer.ipvs_sync);
    assert_eq!(peer.ipvs_sync_interface.as_deref(), Some("eth1"));
    assert!(imported.config.interface("eth1").is_some());
    assert_eq!(errors(&imported.config), Vec::<String>::new());

    let text = "serial_no = 1\nservice = lvs\nnetwork = direct\nsyncdaemon = 1\n";
    let imported = import::import(text, Some(Format::Lvs)).unwrap();
    let peer = imported
        .config
        .peer_link
        .as_ref()
        .expect("peer link created");
    assert!(peer.ipvs_sync);
    assert_eq!(
        peer.ipvs_sync_interface, None,
        "None: sync over the peer link"
    );
    assert_eq!(errors(&imported.config), Vec::<String>::new());

    // syncdaemon = 0 without any pair setting leaves the box unpaired.
    let text = "serial_no = 1\nservice = lvs\nnetwork = direct\nsyncdaemon = 0\n";
    let imported = import::import(text, Some(Format::Lvs)).unwrap();
    assert_eq!(imported.config.peer_link, None);
}

#[test]
fn keepalived_export_writes_the_sync_daemon_back_and_reimports_it() {
    use tandem_config::export;
    let text = format!("global_defs {{\n    lvs_sync_daemon eth1 VI_1\n}}\n{VRRP}");
    let imported = import::import(&text, Some(Format::Keepalived))
        .unwrap()
        .config;
    let exported = export::keepalived::export(&imported).text;
    assert!(
        exported.contains("    lvs_sync_daemon eth1 VI_1\n"),
        "{exported}"
    );
    let again = import::import(&exported, Some(Format::Keepalived))
        .unwrap()
        .config;
    assert_eq!(again.peer_link, imported.peer_link);
}
