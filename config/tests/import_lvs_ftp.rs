//! lvs.cf FTP services as the Red Hat LVS guide sets them up (section 3.5: firewall mark 21 for
//! the VIP's port 21 and the passive range 10000-20000, persistence, masquerading of the real
//! servers' active-mode connections from port 20), and a plain NAT service on port 21 (which
//! the director runs with `ip_vs_ftp`): what the import makes of each, the exact notes, that
//! the result validates, and that the lvs.cf export imports back to the same config.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use tandem_config::export;
use tandem_config::import::{self, Format, Imported, NoteKind};
use tandem_config::model::{FwmarkRule, Persistence, Protocol};
use tandem_config::net::IpCidr;
use tandem_config::validate::{validate, Severity};

/// An lvs.cf of one director: `network`, a NAT router when `nat_router`, and the FTP virtual
/// server with `extra` lines, two real servers and nanny's FTP check (send quit, expect 220).
fn lvs_cf(network: &str, nat_router: bool, extra: &str) -> String {
    let router = if nat_router {
        "nat_router = 192.168.1.254 eth1:1\nnat_nmask = 255.255.255.0\n"
    } else {
        ""
    };
    format!(
        "serial_no = 1\nnetwork = {network}\n{router}virtual ftp {{\n     active = 1\n     address = 10.0.0.101 eth0:2\n     port = 21\n{extra}     send = \"quit\\r\\n\"\n     expect = \"220\"\n     scheduler = rr\n     protocol = tcp\n     timeout = 10\n     server ftp1 {{\n         address = 192.168.1.21\n         active = 1\n         weight = 1\n     }}\n     server ftp2 {{\n         address = 192.168.1.22\n         active = 1\n         weight = 1\n     }}\n}}\n"
    )
}

fn import_lvs(text: &str) -> Imported {
    import::import(text, Some(Format::Lvs)).unwrap()
}

/// The notes whose keyword is one of `keywords`, as (line, keyword, kind, message).
fn notes(imported: &Imported, keywords: &[&str]) -> Vec<(usize, String, NoteKind, String)> {
    imported
        .notes
        .iter()
        .filter(|n| keywords.contains(&n.keyword.as_str()))
        .map(|n| (n.line, n.keyword.clone(), n.kind, n.message.clone()))
        .collect()
}

fn assert_valid(imported: &Imported) {
    let errors: Vec<String> = validate(&imported.config)
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| i.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// lvs.cf export and back: no export note, the same config.
fn assert_round_trip(imported: &Imported) {
    let exported = export::lvs::export(&imported.config);
    assert!(exported.notes.is_empty(), "{:#?}", exported.notes);
    let again = import_lvs(&exported.text);
    assert_eq!(again.config, imported.config, "{}", exported.text);
}

fn rule(first: u16, last: u16) -> FwmarkRule {
    FwmarkRule {
        mark: 21,
        protocol: Protocol::Tcp,
        destination: IpCidr::host("10.0.0.101".parse().unwrap()),
        port_first: first,
        port_last: last,
    }
}

const ACTIVE_MASQUERADE: &str = "active mode (FTP): the guide's masquerading of the real servers' data connections from port 20 (iptables -t nat -A POSTROUTING -p tcp -s 192.168.1.0/24 --sport 20 -j MASQUERADE) is part of the NAT gateway's source NAT: the director masquerades everything 192.168.1.0/24 sends out of any port but eth1";

/// The guide's setup: fwmark 21 by NAT, no persistent in the file. The import makes the two
/// marking rules of its iptables commands, turns persistence on, gives the real servers port 0
/// (the passive connections keep their port) with the check still on port 21, and maps the
/// active-mode MASQUERADE rule to the NAT gateway; every step is a note.
#[test]
fn the_guides_fwmark_ftp_by_nat_gets_its_marks_persistence_and_masquerading() {
    let imported = import_lvs(&lvs_cf("nat", true, "     fwmark = 21\n"));
    let config = &imported.config;
    assert_eq!(
        config.fwmark_rules.to_vec(),
        [rule(21, 21), rule(10_000, 20_000)]
    );
    let ftp = &config.virtual_services[0];
    assert_eq!(ftp.fwmark, Some(21));
    assert_eq!(
        ftp.persistence,
        Some(Persistence {
            timeout_s: 300,
            netmask_prefix: None
        })
    );
    assert!(ftp.real_servers.iter().all(|rs| rs.port == Some(0)));
    let check = ftp.check.as_ref().unwrap();
    assert_eq!(check.connect_port, Some(21));
    assert_eq!(
        notes(&imported, &["fwmark", "persistent"]),
        [
            (5, "persistent".to_owned(), NoteKind::Adjusted, "virtual ftp (FTP by firewall mark) has no persistent: persistence 300 s added (ipvsadm's default), which the Red Hat guide requires for FTP by firewall mark: a client's data connections must reach the real server that holds its control connection; set persistent to choose the time".to_owned()),
            (9, "fwmark".to_owned(), NoteKind::Adjusted, "fwmark 21 (FTP): marking rules made as the Red Hat guide's iptables commands (section 3.5.3.2): tcp to 10.0.0.101 port 21 and ports 10000-20000 get mark 21. Set the FTP servers' passive ports to that range (vsftpd: pasv_min_port=10000, pasv_max_port=20000) or change port_first/port_last of that fwmark_rules entry to theirs; by NAT they must also announce the VIP in their PASV replies (vsftpd: pasv_address=10.0.0.101). The real servers take port 0, so each connection keeps its port (21, or the passive port), and the check connects to port 21".to_owned()),
            (9, "fwmark".to_owned(), NoteKind::Adjusted, ACTIVE_MASQUERADE.to_owned()),
        ]
    );
    assert!(imported.is_lossless(), "{:#?}", imported.notes);
    assert_valid(&imported);
    assert_round_trip(&imported);
}

/// A persistent time and pmask in the file are kept; a pmask without persistent now takes
/// effect on the persistence the import adds (no "has no effect" note).
#[test]
fn fwmark_ftp_keeps_the_files_persistence_and_its_pmask() {
    let imported = import_lvs(&lvs_cf(
        "nat",
        true,
        "     fwmark = 21\n     persistent = 900\n     pmask = 255.255.255.0\n",
    ));
    assert_eq!(
        imported.config.virtual_services[0].persistence,
        Some(Persistence {
            timeout_s: 900,
            netmask_prefix: Some(24)
        })
    );
    assert_eq!(notes(&imported, &["persistent", "pmask"]), []);
    assert_round_trip(&imported);

    let imported = import_lvs(&lvs_cf(
        "nat",
        true,
        "     fwmark = 21\n     pmask = 255.255.255.0\n",
    ));
    assert_eq!(
        imported.config.virtual_services[0].persistence,
        Some(Persistence {
            timeout_s: 300,
            netmask_prefix: Some(24)
        })
    );
    assert_eq!(
        notes(&imported, &["persistent", "pmask"])
            .iter()
            .map(|(line, keyword, kind, _)| (*line, keyword.as_str(), *kind))
            .collect::<Vec<_>>(),
        [(5, "persistent", NoteKind::Adjusted)]
    );
    assert!(imported.is_lossless(), "{:#?}", imported.notes);
}

/// Without a nat_router nothing masquerades the real servers' active-mode connections: the
/// import says so as a loss, with the fix.
#[test]
fn fwmark_ftp_by_nat_without_a_nat_router_reports_active_mode() {
    let imported = import_lvs(&lvs_cf("nat", false, "     fwmark = 21\n"));
    let lossy: Vec<_> = imported
        .notes
        .iter()
        .filter(|n| n.kind != NoteKind::Adjusted)
        .map(|n| (n.line, n.keyword.as_str(), n.message.as_str()))
        .collect();
    assert_eq!(
        lossy,
        [(7, "fwmark", "active mode (FTP): the real servers' data connections from port 20 must leave masqueraded (the guide: iptables -t nat -A POSTROUTING -p tcp -s NETWORK --sport 20 -j MASQUERADE); the director masquerades the real servers' IPv4 network only behind its NAT gateway, and this file has no nat_router: add nat_router (or [nat_gateway]), else active-mode transfers of virtual ftp fail")]
    );
    // The marks and persistence are made all the same.
    assert_eq!(imported.config.fwmark_rules.len(), 2);
    assert!(imported.config.virtual_services[0].persistence.is_some());
}

/// By direct routing the real servers answer the client themselves: marks and persistence as
/// the guide says, no port translation and nothing masqueraded.
#[test]
fn fwmark_ftp_by_direct_routing_gets_marks_and_persistence_only() {
    let imported = import_lvs(&lvs_cf("direct", false, "     fwmark = 21\n"));
    let config = &imported.config;
    assert_eq!(
        config.fwmark_rules.to_vec(),
        [rule(21, 21), rule(10_000, 20_000)]
    );
    let ftp = &config.virtual_services[0];
    assert!(ftp.persistence.is_some());
    // Port 0 as ipvsadm adds them (direct routing does not change ports either way); checked on 21.
    assert!(ftp.real_servers.iter().all(|rs| rs.port == Some(0)));
    assert_eq!(ftp.check.as_ref().unwrap().connect_port, Some(21));
    let fwmark = notes(&imported, &["fwmark"]);
    assert_eq!(fwmark.len(), 1, "{fwmark:#?}");
    assert!(
        fwmark[0]
            .3
            .ends_with("or change port_first/port_last of that fwmark_rules entry to theirs"),
        "{fwmark:#?}"
    );
    assert!(imported.is_lossless(), "{:#?}", imported.notes);
    assert_valid(&imported);
    assert_round_trip(&imported);
}

/// A plain NAT service on port 21 is what `ip_vs_ftp` serves: no marks, no persistence added,
/// the real servers keep the service's port; the note says what the helper does and what the
/// FTP servers must not do (announce the VIP themselves).
#[test]
fn a_nat_service_on_port_21_is_left_to_ip_vs_ftp() {
    let imported = import_lvs(&lvs_cf("nat", true, ""));
    let config = &imported.config;
    assert!(config.fwmark_rules.is_empty());
    let ftp = &config.virtual_services[0];
    assert_eq!((ftp.fwmark, ftp.persistence), (None, None));
    assert!(ftp.real_servers.iter().all(|rs| rs.port.is_none()));
    assert_eq!(
        notes(&imported, &["port", "fwmark", "persistent"]),
        [(8, "port".to_owned(), NoteKind::Adjusted, "virtual ftp is FTP (tcp port 21) by NAT: the director loads ip_vs_ftp, which follows each control connection, writes the VIP 10.0.0.101 into the real server's PASV replies (227) and lets the data connections of passive mode and of active mode (from port 20, leaving with the VIP) through to the same real server; no firewall marks, persistence or masquerading are needed. The FTP servers must announce their own address in PASV replies (vsftpd: no pasv_address): the helper reads the real server from the reply".to_owned())]
    );
    assert!(imported.is_lossless(), "{:#?}", imported.notes);
    assert_valid(&imported);
    assert_round_trip(&imported);
}

/// By direct routing without a mark only the control connection would be balanced: the note
/// says so and points to the guide's firewall mark.
#[test]
fn ftp_by_direct_routing_without_a_mark_is_pointed_to_the_guides_mark() {
    let imported = import_lvs(&lvs_cf("direct", false, ""));
    assert_eq!(
        notes(&imported, &["port"]),
        [(6, "port".to_owned(), NoteKind::Adjusted, "virtual ftp is FTP (tcp port 21) by direct routing without a firewall mark: only the control connection is balanced, the data connections to the FTP servers' passive ports reach the director and fail; the Red Hat guide (section 3.5) marks port 21 and the passive range 10000-20000 with one firewall mark and uses persistence: set fwmark = 21 (and persistent) in this virtual server".to_owned())]
    );
    assert!(imported.config.fwmark_rules.is_empty());
}

/// Not FTP: another port, or UDP on 21, gets none of this (a fwmark service still gets the one
/// rule for its address and port).
#[test]
fn other_ports_and_udp_are_not_ftp() {
    let web = lvs_cf("nat", true, "     fwmark = 21\n").replace("port = 21", "port = 80");
    let imported = import_lvs(&web);
    assert_eq!(imported.config.fwmark_rules.len(), 1);
    assert_eq!(imported.config.fwmark_rules[0].port_first, 80);
    assert_eq!(imported.config.virtual_services[0].persistence, None);
    // A fwmark service's real servers take port 0 as ipvsadm adds them (each connection keeps
    // its port, so a second marked port reaches the servers on that port), checked on 80.
    let service = &imported.config.virtual_services[0];
    assert!(service.real_servers.iter().all(|rs| rs.port == Some(0)));
    assert_eq!(service.check.as_ref().unwrap().connect_port, Some(80));
    assert_eq!(notes(&imported, &["fwmark", "persistent", "port"]), []);

    let udp = lvs_cf("nat", true, "").replace("protocol = tcp", "protocol = udp");
    assert_eq!(
        notes(&import_lvs(&udp), &["fwmark", "persistent", "port"]),
        []
    );
}
