//! `vrrp status`: what each instance is doing and why ("why am I backup?"), for the console
//! and the control socket. Plain text built from the core's [`Status`] snapshots and the
//! engine's own socket counters; pure, so the layout is tested without sockets.

use std::fmt::Write;

use tandem_vrrp::{AddressListGrace, InstancePlan, Instant, SpeakerCounters, State, Status};

/// Counters of one VRRP socket (interface and family), for what never reaches an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketCounters {
    pub interface: String,
    pub ipv6: bool,
    /// Datagrams read from the socket.
    pub received: u64,
    /// IPv4 header too short or lengths that do not fit.
    pub bad_ipv4_header: u64,
    /// IPv6 delivery without hop limit or destination.
    pub missing_ancillary_data: u64,
    /// Unicast adverts from an address that is not a configured peer.
    pub unknown_unicast_peer: u64,
    /// Adverts the kernel refused to send.
    pub send_errors: u64,
}

fn seconds(d: core::time::Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// One instance's block.
pub fn instance_text(out: &mut String, now: Instant, status: &Status, plan: &InstancePlan) {
    let family = if plan.is_ipv6() { "IPv6" } else { "IPv4" };
    let version = match status.version {
        tandem_vrrp::Version::V2 => "v2",
        tandem_vrrp::Version::V3 => "v3",
    };
    let _ = writeln!(
        out,
        "instance {} ({version} {family}, {} VRID {})",
        status.name, status.interface, status.vrid
    );
    let since = status
        .transitions
        .last()
        .map(|t| format!(" for {}", seconds(now - t.at)))
        .unwrap_or_default();
    let _ = writeln!(out, "  state {}{since}", status.state);
    if let Some(last) = status.transitions.last() {
        let _ = writeln!(out, "  why: {}", last.cause);
    }
    let _ = writeln!(
        out,
        "  priority {} (configured {}), advert {} cs, master down interval {}",
        status.effective_priority,
        status.base_priority,
        plan.params.advert_interval_cs,
        seconds(status.master_down_interval)
    );
    let master = match (status.state, status.master) {
        (State::Master, _) => format!("this box ({})", plan.params.primary_address),
        (_, Some(m)) => format!(
            "{} priority {} advert {} cs, last heard {} ago",
            m.address,
            m.priority,
            m.interval_cs,
            seconds(now - m.last_seen)
        ),
        (_, None) => "none heard".to_owned(),
    };
    let _ = writeln!(out, "  master: {master}");
    let vips: Vec<String> = plan
        .vips
        .iter()
        .map(|v| format!("{}/{} on {}", v.address, v.prefix, v.link))
        .collect();
    let _ = writeln!(out, "  virtual addresses: {}", vips.join(", "));
    if !plan.unicast_peers.is_empty() {
        let peers: Vec<String> = plan.unicast_peers.iter().map(|p| p.to_string()).collect();
        let _ = writeln!(
            out,
            "  unicast from {} to {}",
            plan.params.primary_address,
            peers.join(", ")
        );
    }
    if !status.tracks.is_empty() {
        let tracks: Vec<String> = status
            .tracks
            .iter()
            .map(|(name, up)| format!("{name} {}", if *up { "up" } else { "down" }))
            .collect();
        let _ = writeln!(out, "  tracking: {}", tracks.join(", "));
    }
    // Shown once an advert with another list was seen: a grace opened here with nothing heard
    // (a master, or the partner committed first) says nothing useful.
    if let Some(grace) = status.address_list_grace.filter(|g| g.accepted > 0) {
        let _ = writeln!(out, "  {}", grace_text(now, &grace));
    }
    if let Some(fault) = &status.fault {
        let _ = writeln!(out, "  fault: {fault}");
    }
    if status.waiting_for_group {
        let _ = writeln!(out, "  waiting for the rest of its sync group to take over");
    }
    let c = &status.counters;
    let differing = if c.address_list_differs_accepted > 0 {
        format!(
            ", other address list accepted {}",
            c.address_list_differs_accepted
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "  adverts: sent {} (priority 0: {}), received {} (priority 0: {}), lower priority ignored {}, answered {}{differing}",
        c.adverts_sent,
        c.priority_zero_sent,
        c.adverts_received,
        c.priority_zero_received,
        c.lower_priority_ignored,
        c.lower_priority_answered
    );
    let discards: Vec<String> = c
        .discards()
        .filter(|(_, n)| *n > 0)
        .map(|(reason, n)| format!("{reason}: {n}"))
        .collect();
    let _ = writeln!(
        out,
        "  discarded: {}",
        if discards.is_empty() {
            "none".to_owned()
        } else {
            discards.join("; ")
        }
    );
    let causes: Vec<String> = c
        .transitions_by_cause()
        .filter(|(_, n)| *n > 0)
        .map(|(kind, n)| format!("{kind:?} {n}"))
        .collect();
    let _ = writeln!(out, "  transitions by cause: {}", causes.join(", "));
    let _ = writeln!(out, "  last transitions:");
    for t in status.transitions.iter().rev().take(5).rev() {
        let _ = writeln!(
            out,
            "    {} ago: {} -> {}: {}",
            seconds(now - t.at),
            t.from,
            t.to,
            t.cause
        );
    }
}

/// The address-list grace of a live VIP change, running or ended with the lists different.
pub fn grace_text(now: Instant, grace: &AddressListGrace) -> String {
    if grace.running(now) {
        format!(
            "address list grace ({}): adverts listing other virtual addresses ({} so far) are processed for another {}; commit the same VIPs on the partner",
            grace.cause,
            grace.accepted,
            seconds(grace.until - now)
        )
    } else {
        format!(
            "address list grace ({}) ended {} ago with the lists still different: such adverts are discarded again; commit the same VIPs on both boxes",
            grace.cause,
            seconds(now - grace.until)
        )
    }
}

/// The whole `vrrp status` answer.
pub fn engine_text(
    now: Instant,
    instances: &[(Status, &InstancePlan)],
    speaker: &SpeakerCounters,
    sockets: &[SocketCounters],
    refused: &[String],
) -> String {
    let mut out = String::new();
    let masters = instances
        .iter()
        .filter(|(s, _)| s.state == State::Master)
        .count();
    let _ = writeln!(out, "vrrp: {} instances, {masters} master", instances.len());
    for (status, plan) in instances {
        instance_text(&mut out, now, status, plan);
    }
    for line in refused {
        let _ = writeln!(out, "config error: {line}");
    }
    for s in sockets {
        let _ = writeln!(
            out,
            "socket {} {}: received {}, bad IPv4 header {}, missing IPv6 ancillary data {}, unicast from unknown peer {}, send errors {}",
            s.interface,
            if s.ipv6 { "IPv6" } else { "IPv4" },
            s.received,
            s.bad_ipv4_header,
            s.missing_ancillary_data,
            s.unknown_unicast_peer,
            s.send_errors
        );
    }
    let _ = writeln!(
        out,
        "unmatched: VRID not configured {}, truncated {}, family mismatch {}",
        speaker.vrid_not_configured, speaker.truncated, speaker.family_mismatch
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp_engine::test_plan;
    use tandem_vrrp::{InstanceParams, RxMeta, Speaker};

    #[test]
    fn a_backup_says_who_the_master_is_and_why() {
        let params = InstanceParams::v3(
            "web",
            "eth0",
            20,
            100,
            "192.0.2.2".parse().unwrap(),
            vec!["192.0.2.100".parse().unwrap()],
        );
        let plan = test_plan(params.clone());
        let mut speaker = Speaker::new();
        speaker.add_instance(params, Instant::ZERO).unwrap();
        // A higher-priority master's advert, built by another instance of the core.
        let mut other = Speaker::new();
        let mut their = InstanceParams::v3(
            "peer",
            "eth0",
            20,
            200,
            "192.0.2.3".parse().unwrap(),
            vec!["192.0.2.100".parse().unwrap()],
        );
        their.priority = 255;
        other.add_instance(their, Instant::ZERO).unwrap();
        let advert = loop {
            match other.poll_action() {
                Some((_, tandem_vrrp::Action::SendAdvert(a))) => break a,
                Some(_) => continue,
                None => panic!("owner sent no advert"),
            }
        };
        let meta = RxMeta {
            src: advert.src,
            dst: advert.dst,
            ttl: 255,
        };
        speaker
            .handle_packet(Instant::from_secs(1), "eth0", meta, &advert.payload)
            .unwrap();
        let mut bad = advert.payload.clone();
        bad[6] ^= 0xff;
        let _ = speaker.handle_packet(Instant::from_secs(1), "eth0", meta, &bad);
        let status = speaker.instances().next().unwrap().1.status();
        let sockets = [SocketCounters {
            interface: "eth0".into(),
            bad_ipv4_header: 2,
            ..Default::default()
        }];
        let text = engine_text(
            Instant::from_secs(2),
            &[(status, &plan)],
            speaker.counters(),
            &sockets,
            &[],
        );
        assert!(text.contains("state BACKUP for 2.000 s"), "{text}");
        assert!(text.contains("why: startup"), "{text}");
        assert!(
            text.contains("master: 192.0.2.3 priority 255 advert 100 cs, last heard 1.000 s ago"),
            "{text}"
        );
        assert!(text.contains("bad checksum: 1"), "{text}");
        assert!(text.contains("bad IPv4 header 2"), "{text}");
        assert!(text.contains("192.0.2.100/24 on eth0"), "{text}");
    }

    #[test]
    fn the_address_list_grace_says_what_to_do() {
        let grace = AddressListGrace {
            cause: tandem_vrrp::GraceCause::MasterChanged {
                master: "192.0.2.3".parse().unwrap(),
            },
            opened: Instant::from_secs(10),
            until: Instant::from_secs(610),
            accepted: 7,
        };
        let running = grace_text(Instant::from_secs(110), &grace);
        assert!(
            running.contains("master 192.0.2.3 changed its virtual addresses"),
            "{running}"
        );
        assert!(
            running.contains("(7 so far) are processed for another 500.000 s"),
            "{running}"
        );
        let ended = grace_text(Instant::from_secs(620), &grace);
        assert!(ended.contains("ended 10.000 s ago"), "{ended}");
        assert!(ended.contains("discarded again"), "{ended}");
    }
}
