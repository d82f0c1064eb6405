//! An lvs.cf FTP service as the Red Hat LVS guide sets it up (section 3.5), made to run.
//!
//! FTP opens data connections beside its control connection on port 21, on ports lvs.cf does
//! not name: the server's passive ports (PASV/EPSV) and, in active mode, connections the real
//! server opens from port 20 to the client. pulse ran only what lvs.cf says; the guide has the
//! operator add iptables rules on the director. An import that carried only lvs.cf would give
//! an FTP service whose logins work and whose transfers fail, so this module adds what the
//! guide's commands did, or what replaces them on Tandem, and says so in a note:
//!
//! - A `virtual` on tcp port 21 without `fwmark`, by NAT: the LVS engine loads `ip_vs_ftp`
//!   (`tandem_lvs::plan::needs_ftp_helper`), which follows the control connection, writes the
//!   VIP into the real server's PASV reply and opens both kinds of data connection. Nothing to
//!   add; the note says the FTP servers must then announce their own address (no
//!   `pasv_address`), since the helper reads the real server from the reply.
//! - By direct routing or tunnelling without a mark: only the control connection would be
//!   balanced; the note says to use the guide's firewall mark.
//! - With `fwmark` (the guide's way, section 3.5.3): the guide's two `iptables -t mangle` rules
//!   become `fwmark_rules` (the VIP's port 21 and the passive range 10000-20000, tcp), with the
//!   FTP server settings that must match them (`pasv_min_port`/`pasv_max_port`, and by NAT
//!   `pasv_address`); persistence is turned on when lvs.cf has none (the guide requires it: a
//!   client's data connections must reach the server holding its control connection); by NAT
//!   the real servers take port 0 (each connection keeps its port, 21 or a passive one; with
//!   port 21 every passive connection would be sent to the server's port 21) and the check
//!   keeps connecting to port 21; the guide's `POSTROUTING ... --sport 20 -j MASQUERADE` for
//!   active mode is the NAT gateway's source NAT when the config has a `nat_router`, else a
//!   note says what to add.

use std::format;
use std::vec::Vec;

use crate::model::{Forwarding, FwmarkRule, NatGateway, Persistence, Protocol, VirtualService};
use crate::net::{prefix_to_netmask, IpCidr};

use super::Notes;

/// The FTP control port.
pub(crate) const FTP_PORT: u16 = 21;
/// The passive range of the guide's iptables rule (`--dport 10000:20000`) and vsftpd lines.
pub(crate) const PASSIVE_PORTS: (u16, u16) = (10_000, 20_000);
/// Persistence added to a fwmark FTP service that has none: ipvsadm's default `-p` timeout.
pub(crate) const PERSISTENCE_S: u32 = 300;

/// Whether `service` is an FTP service in the guide's sense: tcp, port 21.
pub(crate) fn is_ftp(service: &VirtualService) -> bool {
    service.port == FTP_PORT && service.protocol == Protocol::Tcp
}

/// The marking rules an lvs.cf fwmark virtual server implies: its address and port, as the
/// guide's `iptables -t mangle ... -d VIP/32 --dport PORT -j MARK` does, and for FTP also the
/// passive range. Empty without a mark or an address. The export treats exactly these as
/// carried by the virtual server.
pub(crate) fn implied_fwmark_rules(service: &VirtualService) -> Vec<FwmarkRule> {
    let (Some(mark), Some(address)) = (service.fwmark, service.address) else {
        return Vec::new();
    };
    let rule = |(port_first, port_last): (u16, u16)| FwmarkRule {
        mark,
        protocol: service.protocol,
        destination: IpCidr::host(address),
        port_first,
        port_last,
    };
    let mut rules = vec![rule((service.port, service.port))];
    if is_ftp(service) {
        rules.push(rule(PASSIVE_PORTS));
    }
    rules
}

/// Where the notes point: the `virtual` block and its `port` and `fwmark` lines (the block's
/// line when the keyword is absent).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lines {
    pub block: usize,
    pub port: usize,
    pub fwmark: usize,
}

/// Persistence for a fwmark FTP service that has none (before `pmask` is applied, so a
/// `pmask` without `persistent` takes effect). Call after the block's entries are read.
pub(crate) fn persistence(service: &mut VirtualService, lines: Lines, notes: &mut Notes) {
    if service.fwmark.is_none() || !is_ftp(service) || service.persistence.is_some() {
        return;
    }
    service.persistence = Some(Persistence {
        timeout_s: PERSISTENCE_S,
        netmask_prefix: None,
    });
    notes.adjusted(
        lines.block,
        "persistent",
        format!(
            "virtual {} (FTP by firewall mark) has no persistent: persistence {PERSISTENCE_S} s added (ipvsadm's default), which the Red Hat guide requires for FTP by firewall mark: a client's data connections must reach the real server that holds its control connection; set persistent to choose the time",
            service.name
        ),
    );
}

/// Everything else of an FTP service, once its check and real servers are in place.
pub(crate) fn finish(
    service: &mut VirtualService,
    lines: Lines,
    nat_gateway: Option<&NatGateway>,
    notes: &mut Notes,
) {
    if !is_ftp(service) {
        return;
    }
    let vip = service
        .address
        .map_or_else(|| "the VIP".into(), |a| a.to_string());
    let name = service.name.clone();
    if service.fwmark.is_none() {
        let message = if service.forwarding == Forwarding::Nat {
            format!(
                "virtual {name} is FTP (tcp port 21) by NAT: the director loads ip_vs_ftp, which follows each control connection, writes the VIP {vip} into the real server's PASV replies (227) and lets the data connections of passive mode and of active mode (from port 20, leaving with the VIP) through to the same real server; no firewall marks, persistence or masquerading are needed. The FTP servers must announce their own address in PASV replies (vsftpd: no pasv_address): the helper reads the real server from the reply"
            )
        } else {
            format!(
                "virtual {name} is FTP (tcp port 21) by {} without a firewall mark: only the control connection is balanced, the data connections to the FTP servers' passive ports reach the director and fail; the Red Hat guide (section 3.5) marks port 21 and the passive range 10000-20000 with one firewall mark and uses persistence: set fwmark = 21 (and persistent) in this virtual server",
                forwarding_name(service.forwarding)
            )
        };
        notes.adjusted(lines.port, "port", message);
        return;
    }
    let mark = service.fwmark.unwrap_or_default();
    let nat = service.forwarding == Forwarding::Nat;
    let (first, last) = PASSIVE_PORTS;
    let mut message = if service.address.is_some() {
        format!(
            "fwmark {mark} (FTP): marking rules made as the Red Hat guide's iptables commands (section 3.5.3.2): tcp to {vip} port 21 and ports {first}-{last} get mark {mark}. Set the FTP servers' passive ports to that range (vsftpd: pasv_min_port={first}, pasv_max_port={last}) or change port_first/port_last of that fwmark_rules entry to theirs"
        )
    } else {
        format!("fwmark {mark} (FTP): no address, so no marking rules are made; add fwmark_rules for the VIP's port 21 and the FTP servers' passive ports (the guide: {first}-{last})")
    };
    if nat {
        message.push_str(&format!(
            "; by NAT they must also announce the VIP in their PASV replies (vsftpd: pasv_address={vip}). The real servers take port 0, so each connection keeps its port (21, or the passive port), and the check connects to port 21"
        ));
        // Every fwmark service's real servers without a port already have 0 and its check
        // port 21 (`lvs::keep_ports_of_marked_packets`, run before this); FTP by NAT also
        // overrides a port given, which would send the passive ports to it.
        for server in service.real_servers.as_mut_slice() {
            server.port = Some(0);
        }
    }
    notes.adjusted(lines.fwmark, "fwmark", message);
    if !nat {
        return;
    }
    match nat_gateway {
        Some(gateway) if gateway.address.is_ipv4() => {
            let prefix = gateway.prefix.min(32);
            let network = match gateway.address {
                core::net::IpAddr::V4(address) => address & prefix_to_netmask(prefix),
                core::net::IpAddr::V6(_) => return,
            };
            let port = gateway
                .interface
                .split(':')
                .next()
                .unwrap_or(gateway.interface.as_str());
            notes.adjusted(
                lines.fwmark,
                "fwmark",
                format!(
                    "active mode (FTP): the guide's masquerading of the real servers' data connections from port 20 (iptables -t nat -A POSTROUTING -p tcp -s {network}/{prefix} --sport 20 -j MASQUERADE) is part of the NAT gateway's source NAT: the director masquerades everything {network}/{prefix} sends out of any port but {port}"
                ),
            );
        }
        _ => notes.not_carried(
            lines.fwmark,
            "fwmark",
            format!(
                "active mode (FTP): the real servers' data connections from port 20 must leave masqueraded (the guide: iptables -t nat -A POSTROUTING -p tcp -s NETWORK --sport 20 -j MASQUERADE); the director masquerades the real servers' IPv4 network only behind its NAT gateway, and this file has no nat_router: add nat_router (or [nat_gateway]), else active-mode transfers of virtual {name} fail"
            ),
        ),
    }
}

fn forwarding_name(forwarding: Forwarding) -> &'static str {
    match forwarding {
        Forwarding::Nat => "NAT",
        Forwarding::Dr => "direct routing",
        Forwarding::Tun => "tunnelling",
    }
}
