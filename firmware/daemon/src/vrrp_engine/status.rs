//! `vrrp status`: what each instance is doing and why ("why am I backup?"), for the console
//! and the control socket. Plain text built from the core's [`Status`] snapshots and the
//! engine's own socket counters; pure, so the layout is tested without sockets.

use std::fmt::Write;

use tandem_vrrp::{
    AddressListGrace, CauseKind, DiscardReason, InstancePlan, Instant, SpeakerCounters, State,
    Status,
};

use crate::metrics::{Families, Family, Labels};

/// Counters of one VRRP socket (interface and family), for what never reaches an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketCounters {
    pub interface: String,
    pub ipv6: bool,
    /// A `use_vmac` instance's socket on its macvlan: the instance's interface.
    pub vmac_of: Option<String>,
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
/// `checks`: a line per tracked check (`check web: http GET / 192.0.2.9:80 ...: down (why)`).
pub fn instance_text(
    out: &mut String,
    now: Instant,
    status: &Status,
    plan: &InstancePlan,
    checks: &[String],
) {
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
    if let Some(vmac) = &plan.vmac {
        let adverts = if vmac.xmit_base {
            let why = if plan.unicast_peers.is_empty() {
                "vmac_xmit_base"
            } else {
                "unicast peers: keepalived's vmac_xmit_base"
            };
            format!(
                "gratuitous ARP/NA from the virtual MAC, adverts from {} ({why})",
                plan.params.interface
            )
        } else {
            "adverts and gratuitous ARP/NA from the virtual MAC".to_owned()
        };
        let _ = writeln!(
            out,
            "  vmac {} ({}) on {}: {adverts}",
            vmac.name,
            tandem_vrrp::plan::mac_text(&vmac.mac),
            plan.params.interface
        );
    }
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
    for check in checks {
        let _ = writeln!(out, "  {check}");
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
    instances: &[(Status, &InstancePlan, Vec<String>)],
    speaker: &SpeakerCounters,
    sockets: &[SocketCounters],
    refused: &[String],
) -> String {
    let mut out = String::new();
    let masters = instances
        .iter()
        .filter(|(s, _, _)| s.state == State::Master)
        .count();
    let _ = writeln!(out, "vrrp: {} instances, {masters} master", instances.len());
    for (status, plan, checks) in instances {
        instance_text(&mut out, now, status, plan, checks);
    }
    for line in refused {
        let _ = writeln!(out, "config error: {line}");
    }
    for s in sockets {
        let _ = writeln!(
            out,
            "socket {}{} {}: received {}, bad IPv4 header {}, missing IPv6 ancillary data {}, unicast from unknown peer {}, send errors {}",
            s.interface,
            s.vmac_of
                .as_ref()
                .map(|parent| format!(" (vmac on {parent})"))
                .unwrap_or_default(),
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

/// The last takeover by timer of one instance: from the timer's expiry to the virtual
/// addresses added and to the first gratuitous ARP / NA sent (the act latency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakeoverLatency {
    pub vips_added: core::time::Duration,
    pub announced: Option<core::time::Duration>,
}

fn state_word(state: State) -> &'static str {
    match state {
        State::Initialize => "initialize",
        State::Backup => "backup",
        State::Master => "master",
        State::Fault => "fault",
    }
}

/// The label value of a transition cause.
fn cause_word(kind: CauseKind) -> &'static str {
    match kind {
        CauseKind::Startup => "startup",
        CauseKind::AddressOwner => "address_owner",
        CauseKind::MasterSilent => "master_silent",
        CauseKind::MasterLeft => "master_left",
        CauseKind::Preempted => "preempted",
        CauseKind::HigherPriority => "higher_priority",
        CauseKind::EqualPriorityHigherAddress => "equal_priority_higher_address",
        CauseKind::Shutdown => "shutdown",
        CauseKind::Standby => "standby",
        CauseKind::TrackDown => "track_down",
        CauseKind::FaultCleared => "fault_cleared",
        CauseKind::SyncGroup => "sync_group",
        CauseKind::Partner => "partner",
    }
}

/// The label value of a discard reason.
fn discard_word(reason: DiscardReason) -> &'static str {
    match reason {
        DiscardReason::TtlNot255 => "ttl_not_255",
        DiscardReason::VersionMismatch => "version_mismatch",
        DiscardReason::UnknownType => "unknown_type",
        DiscardReason::Truncated => "truncated",
        DiscardReason::TooShortForAddressCount => "too_short_for_address_count",
        DiscardReason::BadChecksum => "bad_checksum",
        DiscardReason::VridNotConfigured => "vrid_not_configured",
        DiscardReason::LocalIsOwner => "local_is_owner",
        DiscardReason::AuthTypeMismatch => "auth_type_mismatch",
        DiscardReason::AuthFailure => "auth_failure",
        DiscardReason::IntervalMismatch => "interval_mismatch",
        DiscardReason::IntervalZero => "interval_zero",
        DiscardReason::AddressListMismatch => "address_list_mismatch",
        DiscardReason::FamilyMismatch => "family_mismatch",
        DiscardReason::OwnAdvert => "own_advert",
    }
}

/// The engine's metric families (its answer to `EngineRequest::Metrics`): per instance the
/// state (one-hot over `initialize`, `backup`, `master`, `fault`), priorities, advert
/// interval, advert counters, transitions by cause, discards by reason, tracked objects and
/// the last takeover's act latency; per socket what never reached an instance; the config
/// lines the engine refused as its `tandem_engine_errors`.
pub fn metrics(
    instances: &[(Status, Option<TakeoverLatency>)],
    speaker: &SpeakerCounters,
    sockets: &[SocketCounters],
    refused: usize,
) -> Families {
    let mut state = Family::gauge(
        "tandem_vrrp_state",
        "VRRP instance state, one-hot: 1 for the state the instance is in.",
    );
    let mut priority = Family::gauge(
        "tandem_vrrp_priority",
        "VRRP priority the instance advertises (after tracking weights).",
    );
    let mut configured = Family::gauge(
        "tandem_vrrp_configured_priority",
        "VRRP priority configured for the instance.",
    );
    let mut interval = Family::gauge(
        "tandem_vrrp_advert_interval_seconds",
        "Advertisement interval in force (v3: the master's).",
    );
    let mut sent = Family::counter(
        "tandem_vrrp_adverts_sent_total",
        "VRRP advertisements sent, priority 0 included.",
    );
    let mut received = Family::counter(
        "tandem_vrrp_adverts_received_total",
        "Valid VRRP advertisements received and processed.",
    );
    let mut zero_sent = Family::counter(
        "tandem_vrrp_priority_zero_sent_total",
        "Priority-0 advertisements sent (this box leaving master).",
    );
    let mut zero_received = Family::counter(
        "tandem_vrrp_priority_zero_received_total",
        "Priority-0 advertisements received (the master leaving).",
    );
    let mut transitions = Family::counter(
        "tandem_vrrp_transitions_total",
        "VRRP state transitions by cause.",
    );
    let mut discards = Family::counter(
        "tandem_vrrp_discards_total",
        "Received VRRP packets discarded, by reason.",
    );
    let mut tracked = Family::gauge(
        "tandem_vrrp_tracked_object_up",
        "Tracked object (interface, bond) as the instance sees it: 1 up, 0 down.",
    );
    let mut latency = Family::gauge(
        "tandem_vrrp_takeover_latency_seconds",
        "Last takeover by timer: from the timer's expiry to the VIPs added and to the first GARP/NA.",
    );
    for (status, takeover) in instances {
        let labels = Labels::of(&[("vrrp_instance", &status.name)]);
        state.add_each(
            &labels,
            "state",
            [
                State::Initialize,
                State::Backup,
                State::Master,
                State::Fault,
            ]
            .map(|s| (state_word(s), status.state == s)),
        );
        priority.add(labels.clone(), status.effective_priority);
        configured.add(labels.clone(), status.base_priority);
        interval.add(
            labels.clone(),
            f64::from(status.master_adver_interval_cs) / 100.0,
        );
        let c = &status.counters;
        sent.add(labels.clone(), c.adverts_sent);
        received.add(labels.clone(), c.adverts_received);
        zero_sent.add(labels.clone(), c.priority_zero_sent);
        zero_received.add(labels.clone(), c.priority_zero_received);
        transitions.add_each(
            &labels,
            "cause",
            c.transitions_by_cause().map(|(k, n)| (cause_word(k), n)),
        );
        discards.add_each(
            &labels,
            "reason",
            c.discards().map(|(r, n)| (discard_word(r), n)),
        );
        for (object, up) in &status.tracks {
            tracked.add(labels.and("object", object), *up);
        }
        if let Some(takeover) = takeover {
            latency.add(labels.and("step", "vips_added"), takeover.vips_added);
            if let Some(announced) = takeover.announced {
                latency.add(labels.and("step", "first_announce"), announced);
            }
        }
    }
    let mut socket_received = Family::counter(
        "tandem_vrrp_socket_received_total",
        "Datagrams read from a VRRP socket (per interface and family).",
    );
    let mut socket_errors = Family::counter(
        "tandem_vrrp_socket_errors_total",
        "VRRP socket errors: malformed deliveries, unicast adverts from unknown peers, refused sends.",
    );
    for s in sockets {
        let labels = Labels::of(&[
            ("interface", &s.interface),
            ("family", if s.ipv6 { "ipv6" } else { "ipv4" }),
        ]);
        socket_received.add(labels.clone(), s.received);
        socket_errors.add_each(
            &labels,
            "error",
            [
                ("bad_ipv4_header", s.bad_ipv4_header),
                ("missing_ancillary_data", s.missing_ancillary_data),
                ("unknown_unicast_peer", s.unknown_unicast_peer),
                ("send", s.send_errors),
            ],
        );
    }
    let mut unmatched = Family::counter(
        "tandem_vrrp_unmatched_total",
        "Received VRRP packets no instance matched, by reason.",
    );
    unmatched.add_each(
        &Labels::NONE,
        "reason",
        [
            ("vrid_not_configured", speaker.vrid_not_configured),
            ("truncated", speaker.truncated),
            ("family_mismatch", speaker.family_mismatch),
        ],
    );
    let errors = crate::metrics::engine_errors("vrrp", refused);
    let mut families = Families::new();
    for family in [
        state,
        priority,
        configured,
        interval,
        sent,
        received,
        zero_sent,
        zero_received,
        transitions,
        discards,
        tracked,
        latency,
        socket_received,
        socket_errors,
        unmatched,
        errors,
    ] {
        families.push(family);
    }
    families
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
            &[(status, &plan, Vec::new())],
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
    fn metrics_show_the_state_one_hot_and_count_by_cause_and_reason() {
        let params = InstanceParams::v3(
            "web",
            "eth0",
            20,
            100,
            "192.0.2.2".parse().unwrap(),
            vec!["192.0.2.100".parse().unwrap()],
        );
        let mut speaker = Speaker::new();
        speaker.add_instance(params, Instant::ZERO).unwrap();
        let meta = RxMeta {
            src: "192.0.2.3".parse().unwrap(),
            dst: "224.0.0.18".parse().unwrap(),
            ttl: 64,
        };
        // An advert with the wrong TTL: discarded and counted by reason.
        let mut payload = vec![0x31, 20, 200, 1, 0, 100, 0, 0];
        payload.extend_from_slice(&[192, 0, 2, 100]);
        let _ = speaker.handle_packet(Instant::from_secs(1), "eth0", meta, &payload);
        let status = speaker.instances().next().unwrap().1.status();
        let sockets = [SocketCounters {
            interface: "eth0".into(),
            received: 4,
            send_errors: 1,
            ..Default::default()
        }];
        let takeover = TakeoverLatency {
            vips_added: core::time::Duration::from_micros(120),
            announced: Some(core::time::Duration::from_micros(450)),
        };
        let mut out = Vec::new();
        let duplicates = metrics(&[(status, Some(takeover))], speaker.counters(), &sockets, 2)
            .render(crate::metrics::Format::Prometheus, &mut out);
        assert_eq!(duplicates, 0);
        let text = String::from_utf8(out).unwrap();
        for line in [
            "tandem_vrrp_state{vrrp_instance=\"web\",state=\"backup\"} 1\n",
            "tandem_vrrp_state{vrrp_instance=\"web\",state=\"master\"} 0\n",
            "tandem_vrrp_state{vrrp_instance=\"web\",state=\"initialize\"} 0\n",
            "tandem_vrrp_priority{vrrp_instance=\"web\"} 100\n",
            "tandem_vrrp_advert_interval_seconds{vrrp_instance=\"web\"} 1\n",
            "tandem_vrrp_transitions_total{vrrp_instance=\"web\",cause=\"startup\"} 1\n",
            "tandem_vrrp_discards_total{vrrp_instance=\"web\",reason=\"ttl_not_255\"} 1\n",
            "tandem_vrrp_discards_total{vrrp_instance=\"web\",reason=\"bad_checksum\"} 0\n",
            "tandem_vrrp_takeover_latency_seconds{vrrp_instance=\"web\",step=\"vips_added\"} 0.00012\n",
            "tandem_vrrp_socket_errors_total{interface=\"eth0\",family=\"ipv4\",error=\"send\"} 1\n",
            "tandem_vrrp_socket_received_total{interface=\"eth0\",family=\"ipv4\"} 4\n",
            "tandem_engine_errors{engine=\"vrrp\"} 2\n",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert_eq!(text.matches("# TYPE tandem_vrrp_state gauge").count(), 1);
    }

    #[test]
    fn a_tracked_check_is_a_tracked_object_in_the_metrics() {
        let mut params = InstanceParams::v3(
            "web",
            "eth0",
            20,
            100,
            "192.0.2.2".parse().unwrap(),
            vec!["192.0.2.100".parse().unwrap()],
        );
        params.tracks = vec![tandem_vrrp::TrackSpec {
            name: tandem_vrrp::check_track_name("api"),
            kind: tandem_vrrp::TrackKind::Check,
            weight: -10,
        }];
        let mut speaker = Speaker::new();
        let id = speaker.add_instance(params, Instant::ZERO).unwrap();
        assert!(speaker.handle_check_event(Instant::from_secs(1), id, "check api", false));
        let status = speaker.instance(id).unwrap().status();
        let mut out = Vec::new();
        metrics(&[(status, None)], speaker.counters(), &[], 0)
            .render(crate::metrics::Format::Prometheus, &mut out);
        let text = String::from_utf8(out).unwrap();
        for line in [
            "tandem_vrrp_tracked_object_up{vrrp_instance=\"web\",object=\"check api\"} 0\n",
            "tandem_vrrp_priority{vrrp_instance=\"web\"} 90\n",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
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
