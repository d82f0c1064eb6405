//! The VRRP engine: runs the sans-IO [`tandem_vrrp::Speaker`] against the kernel.
//!
//! One task owns the speaker and a monotonic clock. It feeds the speaker what arrives on one
//! raw VRRP socket per (interface, family), its timer deadlines, carrier changes of tracked
//! links (sysfs, polled every 100 ms) and the daemon's requests, and executes the speaker's
//! actions in order: adverts from exactly the source they name (to the group, or to each
//! unicast peer with the checksum redone for that destination), virtual addresses added and
//! removed over rtnetlink, and gratuitous ARP / unsolicited NA bursts on the keepalived
//! `garp_master_*` schedule. A master that hears a lower-priority master (a healed split)
//! announces its addresses again so the LAN forgets the other box.

mod accept;
mod announce;
mod plan;
mod status;
mod tickle;

use core::time::Duration;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use tandem_config::model::VrrpInstance;
use tandem_config::Config;
use tandem_southbound::net::NetOp;
use tandem_southbound::packet::FrameSender;
use tandem_southbound::sysfs;
use tandem_southbound::timer::PreciseTimer;
use tandem_southbound::vrrp_socket::{Malformed, Received, VrrpSocket};
use tandem_vrrp::{Action, CauseKind, InstanceId, Instant, OutgoingAdvert, RxMeta, Speaker, State};
use tandem_wire::{
    emit_gratuitous_arp, emit_unsolicited_na, AdvertPacket, Family, IpEndpoints, MacAddress,
    UNSOLICITED_NA_LEN,
};

use crate::engine::{EngineHandle, EngineRequest};
use crate::engines::EngineContext;

use announce::AnnounceSchedule;
use plan::InstancePlan;
use status::SocketCounters;

const SYS_CLASS_NET: &str = "/sys/class/net";
/// How often tracked links' carrier is read.
const TRACK_POLL: Duration = Duration::from_millis(100);
/// How long start-up waits for an interface's primary address (IPv6 link-local appears a
/// moment after the link comes up).
const PRIMARY_WAIT: Duration = Duration::from_secs(5);
/// At most one healed-split re-announcement per instance in this time.
const REANNOUNCE_GAP: Duration = Duration::from_secs(1);
/// Largest datagram read from a VRRP socket (an IPv6 advert with 255 addresses fits).
const RECEIVE_BUFFER: usize = 4096;

/// Starts the VRRP engine when the config has instances.
pub fn start(config: &Config, context: &EngineContext) -> Option<EngineHandle> {
    if config.vrrp.is_empty() {
        return None;
    }
    let instances: Vec<VrrpInstance> = config.vrrp.iter().cloned().collect();
    let groups: Vec<(String, Vec<String>)> = config
        .sync_groups
        .iter()
        .map(|g| {
            (
                g.name.as_str().to_owned(),
                g.members.iter().map(|m| m.as_str().to_owned()).collect(),
            )
        })
        .collect();
    let (requests, inbox) = mpsc::channel(32);
    let context = context.clone();
    let tickler = tickle::Tickler::start(config, &context.log);
    tokio::spawn(async move {
        let mut engine = Engine::new(context);
        engine.tickle = tickler;
        let receivers = engine.set_up(&instances, &groups).await;
        engine.run(inbox, receivers).await;
    });
    Some(EngineHandle {
        name: "vrrp",
        requests,
    })
}

/// One received datagram (or what was wrong with it) from socket `socket`.
#[derive(Debug)]
struct Ingress {
    socket: usize,
    datagram: Result<(Received, Vec<u8>), Malformed>,
}

#[derive(Debug)]
struct SocketEntry {
    socket: Arc<VrrpSocket>,
    counters: SocketCounters,
}

/// Timestamps of a takeover in progress, for the act-latency log line.
#[derive(Debug, Clone, Copy)]
struct ActTiming {
    instance: usize,
    vips_added: Instant,
    announced: Option<Instant>,
}

#[derive(Debug)]
struct Engine {
    context: EngineContext,
    epoch: tokio::time::Instant,
    speaker: Speaker,
    /// Plans by `InstanceId.0`.
    plans: Vec<InstancePlan>,
    last_reannounce: Vec<Option<Instant>>,
    sockets: Vec<SocketEntry>,
    frames: HashMap<String, Option<(FrameSender, MacAddress)>>,
    schedule: AnnounceSchedule,
    tracked: Vec<(String, bool)>,
    next_track_poll: Option<Instant>,
    refused: Vec<String>,
    /// The timer deadline being handled (None outside timeout handling).
    expiring: Option<Instant>,
    act: Option<ActTiming>,
    /// Accept_Mode enforcement (nftables), applied after each batch of actions.
    accept: accept::AcceptMode,
    /// Tickle ACKs for the partner's clients after a takeover (and the peer channel).
    tickle: tickle::Tickler,
}

impl Engine {
    fn new(context: EngineContext) -> Engine {
        Engine {
            context,
            epoch: tokio::time::Instant::now(),
            speaker: Speaker::new(),
            plans: Vec::new(),
            last_reannounce: Vec::new(),
            sockets: Vec::new(),
            frames: HashMap::new(),
            schedule: AnnounceSchedule::default(),
            tracked: Vec::new(),
            next_track_poll: None,
            refused: Vec::new(),
            expiring: None,
            act: None,
            accept: accept::AcceptMode::default(),
            tickle: tickle::Tickler::default(),
        }
    }

    fn log(&self, line: impl AsRef<str>) {
        self.context.log.line(format!("vrrp: {}", line.as_ref()));
    }

    /// Monotonic time since the engine started, for the speaker.
    fn now(&self) -> Instant {
        let elapsed = self.epoch.elapsed().as_nanos();
        Instant::from_nanos(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }

    fn tokio_instant(&self, at: Instant) -> tokio::time::Instant {
        self.epoch + Duration::from_nanos(at.as_nanos())
    }

    /// Plans every instance, starts the speaker, opens the sockets; returns the receive tasks.
    async fn set_up(
        &mut self,
        instances: &[VrrpInstance],
        groups: &[(String, Vec<String>)],
    ) -> (mpsc::Receiver<Ingress>, Vec<JoinHandle<()>>) {
        for instance in instances {
            match self.plan_instance(instance).await {
                Ok(plan) => {
                    // A crashed predecessor may have left the addresses behind: a backup holds none.
                    for vip in &plan.vips {
                        let op = NetOp::DelAddress {
                            link: vip.link.clone(),
                            address: vip.address,
                            prefix_len: vip.prefix,
                        };
                        if let Err(error) = self.context.net.apply(&[op]).await {
                            self.log(format!("{}: {error}", plan.params.name));
                        }
                    }
                    let now = self.now();
                    match self.speaker.add_instance(plan.params.clone(), now) {
                        Ok(id) => {
                            debug_assert_eq!(id.0, self.plans.len());
                            self.plans.push(plan);
                            self.last_reannounce.push(None);
                        }
                        Err(error) => self.refuse(format!("vrrp \"{}\": {error}", instance.name)),
                    }
                }
                Err(error) => self.refuse(error.to_string()),
            }
        }
        for (name, members) in groups {
            let members: Vec<&str> = members.iter().map(String::as_str).collect();
            let now = self.now();
            if let Err(error) = self.speaker.add_sync_group(name, &members, now) {
                self.refuse(format!("sync group \"{name}\": {error}"));
            }
        }
        let (sender, receiver) = mpsc::channel(256);
        let mut tasks = Vec::new();
        let mut wanted: Vec<(String, bool)> = Vec::new();
        for plan in &self.plans {
            let key = (plan.params.interface.clone(), plan.is_ipv6());
            if !wanted.contains(&key) {
                wanted.push(key);
            }
        }
        for (interface, ipv6) in wanted {
            match open_socket(&interface, ipv6) {
                Ok(socket) => {
                    let socket = Arc::new(socket);
                    let index = self.sockets.len();
                    tasks.push(tokio::spawn(receive_loop(
                        index,
                        Arc::clone(&socket),
                        sender.clone(),
                        self.context.log.clone(),
                    )));
                    self.sockets.push(SocketEntry {
                        socket,
                        counters: SocketCounters {
                            interface,
                            ipv6,
                            ..SocketCounters::default()
                        },
                    });
                }
                Err(error) => self.log(format!(
                    "cannot open the {} VRRP socket on {interface}: {error}; its instances cannot hear or send adverts",
                    if ipv6 { "IPv6" } else { "IPv4" }
                )),
            }
        }
        let mut tracked: Vec<String> = Vec::new();
        for plan in &self.plans {
            for track in &plan.params.tracks {
                if !tracked.contains(&track.name) {
                    tracked.push(track.name.clone());
                }
            }
        }
        // Tracks start as up in the core; report the ones that are not.
        self.tracked = tracked.into_iter().map(|name| (name, true)).collect();
        if !self.tracked.is_empty() {
            let now = self.now();
            self.poll_tracks(now);
        }
        self.accept.start(&self.plans, &self.context.log);
        let names: Vec<&str> = self.plans.iter().map(|p| p.params.name.as_str()).collect();
        self.log(format!("running {}", names.join(" ")));
        (receiver, tasks)
    }

    fn refuse(&mut self, message: String) {
        self.log(format!("error: {message}"));
        self.refused.push(message);
    }

    async fn plan_instance(
        &self,
        instance: &VrrpInstance,
    ) -> Result<InstancePlan, plan::PlanError> {
        let started = tokio::time::Instant::now();
        loop {
            let addresses = self
                .context
                .net
                .addresses(instance.interface.as_str())
                .await
                .unwrap_or_default();
            match plan::instance_plan(instance, &addresses) {
                Err(plan::PlanError::NoPrimaryAddress { .. })
                    if started.elapsed() < PRIMARY_WAIT =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return other,
            }
        }
    }

    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<EngineRequest>,
        (mut packets, receivers): (mpsc::Receiver<Ingress>, Vec<JoinHandle<()>>),
    ) {
        // Timers fire from a timerfd: tokio's wheel can be a millisecond late, which is a tenth
        // of a 10 ms advert interval and lands on the takeover path.
        let precise = match PreciseTimer::new() {
            Ok(timer) => Some(timer),
            Err(error) => {
                self.log(format!(
                    "no precise timer ({error}); using the runtime's 1 ms wheel"
                ));
                None
            }
        };
        loop {
            self.drain_actions().await;
            let wake = [
                self.speaker.poll_timeout(),
                self.schedule.next_due(),
                self.next_track_poll,
            ]
            .into_iter()
            .flatten()
            .min();
            let sleep_until = wake.map_or_else(
                || tokio::time::Instant::now() + Duration::from_secs(3600),
                |at| self.tokio_instant(at),
            );
            tokio::select! {
                request = inbox.recv() => match request {
                    None => break,
                    Some(EngineRequest::Status(reply)) => {
                        let _ = reply.send(self.status_text());
                    }
                    Some(EngineRequest::Track { object, up }) => {
                        let now = self.now();
                        if self.speaker.handle_track_event(now, &object, up) > 0 {
                            self.log(format!("tracked {object} {}", if up { "up" } else { "down" }));
                        }
                    }
                    Some(EngineRequest::Shutdown(reply)) => {
                        let now = self.now();
                        self.speaker.handle_shutdown(now);
                        self.drain_actions().await;
                        self.accept.stop().await;
                        self.log("shut down: priority 0 sent, virtual addresses removed");
                        let _ = reply.send(());
                        break;
                    }
                },
                Some(ingress) = packets.recv() => self.on_ingress(ingress),
                () = sleep_precisely(precise.as_ref(), sleep_until) => self.on_wake().await,
            }
        }
        for task in receivers {
            task.abort();
        }
    }

    async fn on_wake(&mut self) {
        let now = self.now();
        if let Some(deadline) = self.speaker.poll_timeout().filter(|at| *at <= now) {
            self.expiring = Some(deadline);
            self.speaker.handle_timeout(now);
            self.drain_actions().await;
            self.expiring = None;
        }
        for (instance, repeat) in self.schedule.take_due(now) {
            if let Some(plan) = self.plans.get(instance) {
                let addresses = plan.params.virtual_addresses.clone();
                self.announce(instance, &addresses, repeat);
            }
        }
        if self.next_track_poll.is_some_and(|at| at <= now) {
            self.poll_tracks(now);
        }
    }

    /// Reads the carrier of every tracked link and reports changes to the speaker.
    fn poll_tracks(&mut self, now: Instant) {
        let sys = Path::new(SYS_CLASS_NET);
        let mut changes = Vec::new();
        for (name, up) in &mut self.tracked {
            let carrier = sysfs::carrier(sys, name) == Some(true);
            if carrier != *up {
                *up = carrier;
                changes.push((name.clone(), carrier));
            }
        }
        for (name, up) in changes {
            self.speaker.handle_track_event(now, &name, up);
            self.log(format!(
                "tracked {name} {}",
                if up { "has carrier" } else { "lost carrier" }
            ));
        }
        self.next_track_poll = Some(now + TRACK_POLL);
    }

    fn on_ingress(&mut self, ingress: Ingress) {
        let Some(entry) = self.sockets.get_mut(ingress.socket) else {
            return;
        };
        entry.counters.received += 1;
        let (received, payload) = match ingress.datagram {
            Ok(datagram) => datagram,
            Err(Malformed::BadIpv4Header) => {
                entry.counters.bad_ipv4_header += 1;
                return;
            }
            Err(Malformed::MissingAncillaryData) => {
                entry.counters.missing_ancillary_data += 1;
                return;
            }
        };
        let interface = entry.counters.interface.clone();
        let ipv6 = entry.counters.ipv6;
        // Unicast adverts are taken only from configured peers (as keepalived does).
        if !received.destination.is_multicast() {
            if let Some(&vrid) = payload.get(1) {
                let stranger = self.plans.iter().any(|p| {
                    p.params.vrid == vrid
                        && p.params.interface == interface
                        && p.is_ipv6() == ipv6
                        && !p.unicast_peers.is_empty()
                        && !p.unicast_peers.contains(&received.source)
                });
                if stranger {
                    entry.counters.unknown_unicast_peer += 1;
                    return;
                }
            }
        }
        let meta = RxMeta {
            src: received.source,
            dst: received.destination,
            ttl: received.ttl,
        };
        let now = self.now();
        let Ok(id) = self.speaker.handle_packet(now, &interface, meta, &payload) else {
            return;
        };
        // A lower-priority master heard while we are master: the split has healed, and the
        // LAN may still point at the other box.
        let their_priority = payload.get(2).copied().unwrap_or(0);
        let Some(instance) = self.speaker.instance(id) else {
            return;
        };
        if instance.state() == State::Master
            && their_priority != 0
            && their_priority < instance.effective_priority()
        {
            let due = self.last_reannounce[id.0]
                .is_none_or(|last| now.saturating_duration_since(last) >= REANNOUNCE_GAP);
            if due {
                self.last_reannounce[id.0] = Some(now);
                let plan = &self.plans[id.0];
                let addresses = plan.params.virtual_addresses.clone();
                let repeat = plan.garp.master_repeat.max(1);
                self.log(format!(
                    "{}: lower-priority master {} heard (split healed); announcing again",
                    plan.params.name, received.source
                ));
                self.announce(id.0, &addresses, repeat);
            }
        }
    }

    async fn drain_actions(&mut self) {
        while let Some((id, action)) = self.speaker.poll_action() {
            match action {
                Action::SendAdvert(advert) => self.send_advert(id, &advert).await,
                Action::AddVips { addresses, accept } => {
                    self.change_vips(id, &addresses, true).await;
                    self.accept.vips_added(id.0, &addresses, accept);
                    self.act = Some(ActTiming {
                        instance: id.0,
                        vips_added: self.now(),
                        announced: None,
                    });
                }
                Action::RemoveVips { addresses } => {
                    self.accept.vips_removed(id.0);
                    self.schedule.cancel(id.0);
                    self.change_vips(id, &addresses, false).await;
                }
                Action::Announce { addresses } => {
                    let now = self.now();
                    let Some(plan) = self.plans.get(id.0) else {
                        continue;
                    };
                    let repeat = self.schedule.became_master(id.0, now, &plan.garp);
                    self.announce(id.0, &addresses, repeat);
                    // After the first announcement: tickling is never on the takeover path.
                    if let Some(plan) = self.plans.get(id.0) {
                        let vips = &plan.params.virtual_addresses;
                        self.tickle.became_master(id.0, &plan.params.name, vips);
                    }
                }
                Action::StateChanged(transition) => {
                    let name = self.plans.get(id.0).map_or("?", |p| p.params.name.as_str());
                    self.context.log.line(format!(
                        "vrrp: {name}: {} -> {}: {}",
                        transition.from, transition.to, transition.cause
                    ));
                    if transition.to != State::Master {
                        self.schedule.cancel(id.0);
                    }
                    let timer_cause = matches!(
                        transition.cause.kind(),
                        CauseKind::MasterSilent | CauseKind::MasterLeft | CauseKind::Preempted
                    );
                    if let (true, true, Some(expiry), Some(act)) = (
                        transition.to == State::Master,
                        timer_cause,
                        self.expiring,
                        self.act.take(),
                    ) {
                        if act.instance == id.0 {
                            let micros =
                                |at: Instant| at.saturating_duration_since(expiry).as_micros();
                            self.context.log.line(format!(
                                "vrrp: {name}: act latency: timer expiry -> VIPs added {} us -> first announce {} us",
                                micros(act.vips_added),
                                act.announced.map_or(0, micros)
                            ));
                        }
                    }
                }
            }
        }
        // After the whole batch: a takeover's VIP add and first announcement come first.
        self.accept.sync();
    }

    async fn send_advert(&mut self, id: InstanceId, advert: &OutgoingAdvert) {
        let Some(plan) = self.plans.get(id.0) else {
            return;
        };
        let ipv6 = plan.is_ipv6();
        let Some(entry) = self
            .sockets
            .iter_mut()
            .find(|s| s.counters.interface == plan.params.interface && s.counters.ipv6 == ipv6)
        else {
            return;
        };
        let mut failures = Vec::new();
        if plan.unicast_peers.is_empty() {
            if let Err(error) = entry
                .socket
                .send(advert.src, advert.dst, &advert.payload)
                .await
            {
                failures.push((advert.dst, error));
            }
        } else {
            let family = if ipv6 { Family::Ipv6 } else { Family::Ipv4 };
            for peer in &plan.unicast_peers {
                let Some(endpoints) = IpEndpoints::new(advert.src, *peer) else {
                    continue;
                };
                // The v3 checksum covers the destination: redo it for this peer.
                let mut payload = advert.payload.clone();
                AdvertPacket::new_unchecked(payload.as_mut_slice(), family)
                    .fill_checksum(&endpoints, plan.params.ipv4_checksum);
                if let Err(error) = entry.socket.send(advert.src, *peer, &payload).await {
                    failures.push((*peer, error));
                }
            }
        }
        for (destination, error) in failures {
            entry.counters.send_errors += 1;
            // Log the first failure and then every power of two, not once per advert.
            if entry.counters.send_errors.is_power_of_two() {
                let line = format!(
                    "vrrp: {}: cannot send advert from {} to {destination}: {error} ({} failures)",
                    plan.params.name, advert.src, entry.counters.send_errors
                );
                self.context.log.line(line);
            }
        }
    }

    async fn change_vips(&mut self, id: InstanceId, addresses: &[IpAddr], add: bool) {
        let Some(plan) = self.plans.get(id.0) else {
            return;
        };
        for address in addresses {
            let Some(vip) = plan.placement(address) else {
                continue;
            };
            let (link, address, prefix_len) = (vip.link.clone(), vip.address, vip.prefix);
            let op = if add {
                NetOp::AddAddress {
                    link,
                    address,
                    prefix_len,
                }
            } else {
                NetOp::DelAddress {
                    link,
                    address,
                    prefix_len,
                }
            };
            if let Err(error) = self.context.net.apply(std::slice::from_ref(&op)).await {
                self.context
                    .log
                    .line(format!("vrrp: {}: {error}", plan.params.name));
            }
        }
    }

    /// Sends `repeat` gratuitous ARPs / unsolicited NAs for each of `addresses`.
    fn announce(&mut self, instance: usize, addresses: &[IpAddr], repeat: u8) {
        let Some(plan) = self.plans.get(instance) else {
            return;
        };
        let mut frames: Vec<(String, Vec<u8>)> = Vec::new();
        for address in addresses {
            let Some(vip) = plan.placement(address) else {
                continue;
            };
            let link = vip.link.clone();
            let Some((_, mac)) = frame_sender(&mut self.frames, &link, &self.context) else {
                continue;
            };
            let mut buffer = [0u8; UNSOLICITED_NA_LEN];
            let built = match address {
                IpAddr::V4(v4) => emit_gratuitous_arp(*mac, *v4, &mut buffer),
                IpAddr::V6(v6) => emit_unsolicited_na(*mac, *v6, true, &mut buffer),
            };
            if let Ok(length) = built {
                frames.push((link, buffer.get(..length).unwrap_or_default().to_vec()));
            }
        }
        let mut errors = Vec::new();
        for _ in 0..repeat {
            for (link, frame) in &frames {
                if let Some(Some((sender, _))) = self.frames.get(link) {
                    if let Err(error) = sender.send(frame) {
                        errors.push(format!("cannot announce on {link}: {error}"));
                    }
                }
            }
        }
        if !frames.is_empty() {
            let now = self.now();
            if let Some(act) = self.act.as_mut().filter(|a| a.instance == instance) {
                act.announced.get_or_insert(now);
            }
        }
        if let Some(error) = errors.first() {
            let name = self.plans[instance].params.name.clone();
            self.log(format!("{name}: {error}"));
        }
    }

    fn status_text(&self) -> String {
        let now = self.now();
        let instances: Vec<_> = self
            .speaker
            .instances()
            .filter_map(|(id, instance)| self.plans.get(id.0).map(|plan| (instance.status(), plan)))
            .collect();
        let sockets: Vec<SocketCounters> =
            self.sockets.iter().map(|s| s.counters.clone()).collect();
        let mut text = status::engine_text(
            now,
            &instances,
            self.speaker.counters(),
            &sockets,
            &self.refused,
        );
        if let Some(line) = self.accept.status_line() {
            text.push_str(&line);
            text.push('\n');
        }
        text.push_str(
            &self
                .tickle
                .status_text(self.plans.iter().enumerate().map(|(i, p)| {
                    (
                        i,
                        p.params.name.as_str(),
                        p.params.virtual_addresses.as_slice(),
                    )
                })),
        );
        text
    }
}

/// The cached frame sender of `link` with the link's MAC (None, logged once, if unusable).
fn frame_sender<'a>(
    cache: &'a mut HashMap<String, Option<(FrameSender, MacAddress)>>,
    link: &str,
    context: &EngineContext,
) -> Option<&'a (FrameSender, MacAddress)> {
    cache
        .entry(link.to_owned())
        .or_insert_with(|| {
            let sys = Path::new(SYS_CLASS_NET);
            let opened = sysfs::ifindex(sys, link)
                .ok_or_else(|| "no such link".to_owned())
                .and_then(|index| FrameSender::open(index).map_err(|e| e.to_string()))
                .and_then(|sender| {
                    link_mac(link)
                        .map(|mac| (sender, mac))
                        .ok_or_else(|| "no MAC address".to_owned())
                });
            match opened {
                Ok(pair) => Some(pair),
                Err(error) => {
                    context.log.line(format!(
                        "vrrp: cannot send gratuitous ARP / NA on {link}: {error}"
                    ));
                    None
                }
            }
        })
        .as_ref()
}

/// The link's own MAC: gratuitous ARPs carry it, since the virtual MAC is not configured.
fn link_mac(link: &str) -> Option<MacAddress> {
    sysfs::mac(Path::new(SYS_CLASS_NET), link)
}

/// Sleeps until `at` on the precise timer when there is one, else on tokio's wheel.
async fn sleep_precisely(timer: Option<&PreciseTimer>, at: tokio::time::Instant) {
    if let Some(timer) = timer {
        if timer.sleep_until(at.into_std()).await.is_ok() {
            return;
        }
    }
    tokio::time::sleep_until(at).await;
}

fn open_socket(interface: &str, ipv6: bool) -> std::io::Result<VrrpSocket> {
    let index = sysfs::ifindex(Path::new(SYS_CLASS_NET), interface)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such interface"))?;
    if ipv6 {
        VrrpSocket::open_ipv6(interface, index)
    } else {
        VrrpSocket::open_ipv4(interface, index)
    }
}

/// Reads datagrams from one socket and hands them to the engine until the engine is gone.
async fn receive_loop(
    index: usize,
    socket: Arc<VrrpSocket>,
    sender: mpsc::Sender<Ingress>,
    log: crate::logring::Log,
) {
    let mut buffer = vec![0u8; RECEIVE_BUFFER];
    let mut failures = 0u64;
    loop {
        let datagram = match socket.recv(&mut buffer).await {
            Ok(Ok(received)) => {
                let end = received.offset.saturating_add(received.length);
                let payload = buffer
                    .get(received.offset..end)
                    .unwrap_or_default()
                    .to_vec();
                Ok((received, payload))
            }
            Ok(Err(malformed)) => Err(malformed),
            Err(error) => {
                failures += 1;
                if failures.is_power_of_two() {
                    log.line(format!(
                        "vrrp: socket receive failed: {error} ({failures} times)"
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if sender
            .send(Ingress {
                socket: index,
                datagram,
            })
            .await
            .is_err()
        {
            return;
        }
    }
}
