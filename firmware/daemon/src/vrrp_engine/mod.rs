//! The VRRP engine: runs the sans-IO [`tandem_vrrp::Speaker`] against the kernel.
//!
//! One task owns the speaker and a monotonic clock. It feeds the speaker what arrives on one
//! raw VRRP socket per (interface, family), its timer deadlines, carrier changes of tracked
//! links (sysfs, polled every 100 ms) and the daemon's requests, and executes the speaker's
//! actions in order: adverts from exactly the source they name (to the group, or to each
//! unicast peer with the checksum redone for that destination), virtual addresses added and
//! removed over rtnetlink, and gratuitous ARP / unsolicited NA bursts on the keepalived
//! `garp_master_*` schedule. A master that hears a lower-priority master (a healed split, as
//! the core's `Speaker::receive` decides) announces its addresses again so the LAN forgets the
//! other box.
//!
//! A committed config (`EngineRequest::Apply`) is planned off the loop (a new instance may wait
//! for its interface's primary address; running ones never do, and timers keep firing
//! meanwhile), then reconciled in one step: `Speaker::reconcile` touches only what changed
//! (instances keep their [`InstanceId`]; unchanged ones keep their timers and get no action),
//! removed instances' last actions (priority 0, addresses removed) run under their old plans,
//! a master's gained addresses get one announcement burst (no new schedule, no tickles),
//! sockets and tracked links follow the new set, Accept_Mode is re-synced for the instances
//! whose filtering may differ, and the answer is one line per change ([`report`]).
//!
//! `use_vmac` ([`vmac`]): planning has the worker make each instance's macvlan before the plan
//! reaches the loop (a macvlan that cannot be made refuses its instance); its addresses go on
//! the macvlan, its adverts leave from a socket on the macvlan (which also hears the partner's
//! adverts from the same virtual MAC: the kernel hands those to the macvlan alone), and its
//! gratuitous ARPs / NAs from the macvlan, with the virtual MAC. The socket on the instance's
//! interface stays open for unicast adverts and for the group membership the switches see; a
//! multicast advert it also hears is taken from the macvlan's socket only. With unicast peers
//! the adverts stay on the interface's socket (keepalived's `vmac_xmit_base`, which keepalived
//! also forces then). Macvlans no plan names any more are deleted after the apply's last
//! actions, off the loop.

mod accept;
mod checks;
mod pair_link;
mod report;
mod status;
mod tickle;
mod uplink;
mod vmac;

use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use tandem_config::model::VrrpInstance;
use tandem_config::Config;
use tandem_southbound::macvlan::MacvlanSpec;
use tandem_southbound::net::{NetError, NetExecutor, NetOp};
use tandem_southbound::packet::FrameSender;
use tandem_southbound::sysfs;
use tandem_southbound::timer::PreciseTimer;
use tandem_southbound::vrrp_socket::{Malformed, Received, VrrpSocket};
use tandem_vrrp::{
    announce, plan, unicast_peer_allowed, Action, AnnounceSchedule, CauseKind, GraceCause,
    InstanceId, InstanceKey, InstancePlan, Instant, OutgoingAdvert, RxMeta, Speaker, State,
    VipPlacement,
};
use tandem_wire::{
    emit_gratuitous_arp, emit_unsolicited_na, AdvertPacket, Family, IpEndpoints, MacAddress,
    UNSOLICITED_NA_LEN,
};

use crate::engine::EngineContext;
use crate::engine::{EngineHandle, EngineRequest};

use status::SocketCounters;

const SYS_CLASS_NET: &str = "/sys/class/net";
/// How often tracked links' carrier is read.
const TRACK_POLL: Duration = Duration::from_millis(100);
/// How long a new instance waits for its interface's primary address (IPv6 link-local appears
/// a moment after the link comes up).
const PRIMARY_WAIT: Duration = Duration::from_secs(5);
/// Largest datagram read from a VRRP socket (an IPv6 advert with 255 addresses fits).
const RECEIVE_BUFFER: usize = 4096;

/// Starts the VRRP engine when the config has instances or load-sharing groups (whose
/// buckets the pair heartbeat on this engine's thread agrees).
pub fn start(config: &Config, context: &EngineContext) -> Option<EngineHandle> {
    if config.vrrp.is_empty() && config.clusterip.is_empty() {
        return None;
    }
    let config = config.clone();
    let (requests, inbox) = mpsc::channel(32);
    // The peer channel is the daemon's, on the daemon's runtime: only the speaker runs on the
    // VRRP thread.
    let tickler = tickle::Tickler::new(context.peer.clone(), &context.log);
    let shared = context.clone();
    let log = context.log.clone();
    let engine = async move {
        // A netlink connection of the engine's own, driven by this thread's runtime: a VIP add
        // on the takeover path never waits for the daemon's runtime.
        let context = match NetExecutor::connect() {
            Ok(net) => EngineContext {
                log: shared.log.clone(),
                net,
                peer: shared.peer.clone(),
                links: shared.links.clone(),
                pair: shared.pair.clone(),
                sharing: shared.sharing.clone(),
            },
            Err(error) => {
                shared.log.line(format!(
                    "vrrp: no netlink connection of its own ({error}); sharing the daemon's"
                ));
                shared
            }
        };
        let mut engine = Engine::new(context);
        engine.tickle = tickler;
        let packets = engine.set_up(&config).await;
        engine.run(inbox, packets).await;
    };
    // VRRP runs where nothing else runs: a thread and runtime of its own, so neither a slow
    // console, a status dump, an LVS apply nor a commit on the daemon's runtime can delay an
    // advert or a takeover.
    let spawned = std::thread::Builder::new()
        .name("vrrp".to_owned())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .max_blocking_threads(4)
                .build()
            {
                Ok(runtime) => runtime.block_on(engine),
                Err(error) => log.line(format!("vrrp: cannot start the engine's runtime: {error}")),
            }
        });
    if let Err(error) = spawned {
        context
            .log
            .line(format!("vrrp: cannot start the engine thread: {error}"));
        return None;
    }
    Some(EngineHandle {
        name: "vrrp",
        requests,
    })
}

/// One received datagram (or what was wrong with it) from the socket with key `socket`.
#[derive(Debug)]
struct Ingress {
    socket: usize,
    datagram: Result<(Received, Vec<u8>), Malformed>,
}

#[derive(Debug)]
struct SocketEntry {
    /// Bound to `counters.interface`; a vmac's when `counters.vmac_of` is set.
    socket: Arc<VrrpSocket>,
    counters: SocketCounters,
    /// The task reading it (aborted when the socket is closed).
    reader: JoinHandle<()>,
}

/// Timestamps of a takeover in progress, for the act-latency log line.
#[derive(Debug, Clone, Copy)]
struct ActTiming {
    instance: InstanceId,
    vips_added: Instant,
    announced: Option<Instant>,
}

/// The outcome of planning one configured instance.
#[derive(Debug)]
struct Outcome {
    name: String,
    key: Option<InstanceKey>,
    plan: Result<InstancePlan, plan::PlanError>,
}

/// A committed config, planned, on its way back to the engine's loop.
#[derive(Debug)]
struct Planned {
    config: Arc<Config>,
    outcomes: Vec<Outcome>,
    /// Macvlans made anew (new interface index): sockets and senders on them are stale.
    recreated: Vec<String>,
    reply: oneshot::Sender<String>,
}

/// What planning needs to know of the running instances.
#[derive(Debug, Clone, Default)]
struct Running {
    /// Each running instance's key and primary address.
    primaries: Vec<(InstanceKey, IpAddr)>,
    /// Every virtual address of a running instance.
    vips: Vec<IpAddr>,
}

/// One line of an apply's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    text: String,
    error: bool,
}

#[derive(Debug)]
struct Engine {
    context: EngineContext,
    epoch: tokio::time::Instant,
    speaker: Speaker,
    plans: BTreeMap<InstanceId, InstancePlan>,
    /// Plans of instances removed by the apply being drained: their last actions need them.
    retired: BTreeMap<InstanceId, InstancePlan>,
    /// Where each instance's virtual addresses were added (removed from the same place).
    held: BTreeMap<InstanceId, Vec<VipPlacement>>,
    /// Open sockets by key (keys are never reused, so a stale datagram finds nothing).
    sockets: BTreeMap<usize, SocketEntry>,
    next_socket: usize,
    /// Where socket readers deliver (None before set-up).
    ingress: Option<mpsc::Sender<Ingress>>,
    frames: HashMap<String, Option<(FrameSender, MacAddress)>>,
    /// Later announcement bursts; also told the first bursts of the batch being drained: a
    /// takeover's `StateChanged` to Master follows in the same batch, a live apply's gained
    /// addresses have none.
    schedule: AnnounceSchedule,
    tracked: Vec<(String, bool)>,
    /// Per configured bond with `min_links`: its ports and how many must have carrier. The
    /// kernel drops the carrier of an 802.3ad bond below min_links only; a tracked bond of any
    /// mode counts as down below it here.
    bond_quorum: Vec<(String, Vec<String>, usize)>,
    next_track_poll: Option<Instant>,
    /// Errors of the last (re)configuration, for status.
    refused: Vec<String>,
    /// The timer deadline being handled (None outside timeout handling).
    expiring: Option<Instant>,
    act: Option<ActTiming>,
    /// Each instance's last takeover by timer (for the metrics).
    takeovers: BTreeMap<InstanceId, status::TakeoverLatency>,
    /// Accept_Mode enforcement (nftables), applied after each batch of actions.
    accept: accept::AcceptMode,
    /// Tickle ACKs for the partner's clients after a takeover (and the peer channel).
    tickle: tickle::Tickler,
    /// Planned configs come back here.
    planned: Option<mpsc::Sender<Planned>>,
    /// A config is being planned.
    planning: bool,
    /// Applies waiting for the one being planned.
    queued: VecDeque<(Arc<Config>, oneshot::Sender<String>)>,
    /// The pair heartbeat on the peer cable (None before set-up).
    pair: Option<pair_link::PairLink>,
    /// Its receiving ends, until the loop takes them.
    pair_inbox: Option<pair_link::PairInbox>,
    /// A state changed in the batch being drained: the partner hears of it at once.
    state_changed: bool,
    /// This box's states changed: weigh the partner's report again (next turn of the loop).
    rearbitrate: bool,
    /// Maintenance mode (`vrrp standby on`) since when; runtime state, a restart ends it.
    standby_since: Option<Instant>,
    /// The `use_vmac` macvlans' worker (None before set-up).
    vmacs: Option<vmac::Vmacs>,
    /// The checks the instances track, run on a checker thread of their own.
    checks: checks::TrackedChecks,
}

impl Engine {
    fn new(context: EngineContext) -> Engine {
        Engine {
            checks: checks::TrackedChecks::new(context.log.clone()),
            context,
            epoch: tokio::time::Instant::now(),
            speaker: Speaker::new(),
            plans: BTreeMap::new(),
            retired: BTreeMap::new(),
            held: BTreeMap::new(),
            sockets: BTreeMap::new(),
            next_socket: 0,
            ingress: None,
            frames: HashMap::new(),
            schedule: AnnounceSchedule::default(),
            tracked: Vec::new(),
            bond_quorum: Vec::new(),
            next_track_poll: None,
            refused: Vec::new(),
            expiring: None,
            act: None,
            takeovers: BTreeMap::new(),
            accept: accept::AcceptMode::default(),
            tickle: tickle::Tickler::default(),
            planned: None,
            planning: false,
            queued: VecDeque::new(),
            pair: None,
            pair_inbox: None,
            state_changed: false,
            rearbitrate: false,
            standby_since: None,
            vmacs: None,
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

    /// The plan of a running instance, or of one removed by the apply being drained.
    fn plan(&self, id: InstanceId) -> Option<&InstancePlan> {
        self.plans.get(&id).or_else(|| self.retired.get(&id))
    }

    /// Plans every instance, starts the speaker, opens the sockets; returns what the socket
    /// readers deliver.
    async fn set_up(&mut self, config: &Config) -> mpsc::Receiver<Ingress> {
        let (sender, receiver) = mpsc::channel(256);
        self.ingress = Some(sender);
        let (pair, inbox) = pair_link::PairLink::new(config, self.context.pair.clone(), self.now());
        self.pair = Some(pair);
        self.pair_inbox = Some(inbox);
        let vmacs = vmac::Vmacs::start(&self.context.log);
        self.vmacs = Some(vmacs.clone());
        let instances: Vec<VrrpInstance> = config.vrrp.iter().cloned().collect();
        let names = plan::config_vmac_names(config);
        let outcomes = plan_instances(
            self.context.net.clone(),
            instances,
            names,
            Running::default(),
        )
        .await;
        // The macvlans before anything goes on them; the first job also deletes the ones an
        // earlier run left that no instance wants.
        let (outcomes, _) = prepare_vmacs(&vmacs, outcomes, true).await;
        // A crashed predecessor may have left the addresses behind: a backup holds none.
        for plan in outcomes.iter().filter_map(|o| o.plan.as_ref().ok()) {
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
        }
        self.accept.start(
            outcomes.iter().filter_map(|o| o.plan.as_ref().ok()),
            &self.context.log,
        );
        let lines = self.reconcile_to(config, outcomes, Vec::new()).await;
        for line in lines.iter().filter(|l| l.error) {
            self.context.log.line(&line.text);
        }
        let names: Vec<&str> = self
            .plans
            .values()
            .map(|p| p.params.name.as_str())
            .collect();
        self.log(format!("running {}", names.join(" ")));
        receiver
    }

    /// Makes the speaker, plans, sockets, tracked links and Accept_Mode those of `config`
    /// (planned as `outcomes`, in config order); returns one line per change.
    async fn reconcile_to(
        &mut self,
        config: &Config,
        outcomes: Vec<Outcome>,
        recreated: Vec<String>,
    ) -> Vec<Line> {
        let now = self.now();
        // A macvlan made anew has a new index: what was bound to the old one goes.
        for name in &recreated {
            self.forget_link(name);
        }
        if let Some(pair) = self.pair.as_mut() {
            pair.reconfigure(config, now);
        }
        self.bond_quorum = config
            .bonds
            .iter()
            .filter(|bond| bond.min_links > 0)
            .map(|bond| {
                let ports = bond.slaves.iter().map(|p| p.as_str().to_owned()).collect();
                (
                    bond.name.as_str().to_owned(),
                    ports,
                    usize::from(bond.min_links),
                )
            })
            .collect();
        // What the speaker is asked for: each plan, or the running instance's old parameters
        // when the new ones cannot be planned (it keeps running as it was).
        let mut wanted = Vec::new();
        let mut candidates: Vec<InstancePlan> = Vec::new();
        for outcome in &outcomes {
            match &outcome.plan {
                Ok(plan) => {
                    wanted.push(plan.params.clone());
                    candidates.push(plan.clone());
                }
                Err(_) => {
                    let kept = outcome
                        .key
                        .as_ref()
                        .and_then(|key| self.speaker.id_of(key))
                        .and_then(|id| self.plans.get(&id));
                    if let Some(plan) = kept {
                        wanted.push(plan.params.clone());
                    }
                }
            }
        }
        // Owners advertise at once: sockets first.
        self.open_sockets(&candidates);
        let vmacs_before = self.vmac_names();
        let masters_before: BTreeSet<InstanceId> = self
            .speaker
            .instances()
            .filter(|(_, i)| i.state() == State::Master)
            .map(|(id, _)| id)
            .collect();
        let now = self.now();
        let out = self.speaker.reconcile(wanted, &sync_groups(config), now);

        // Plans follow the speaker. Removed ones are retired until their last actions ran.
        for id in &out.removed {
            if let Some(plan) = self.plans.remove(id) {
                self.retired.insert(*id, plan);
            }
        }
        let mut engine_changes: BTreeMap<InstanceId, Vec<String>> = BTreeMap::new();
        for (id, instance) in self.speaker.instances() {
            let Some(new) = candidates.iter().find(|p| p.params == *instance.params()) else {
                continue;
            };
            match self.plans.get(&id) {
                Some(old) if old == new => {}
                Some(old) => {
                    let phrases = plan::plan_changes(old, new);
                    if !phrases.is_empty() {
                        engine_changes.insert(id, phrases);
                    }
                    self.plans.insert(id, new.clone());
                }
                None => {
                    self.plans.insert(id, new.clone());
                }
            }
        }

        // Removed instances' priority 0 and address removal, gained addresses, owners.
        self.drain_actions().await;
        let removed_names: Vec<(InstanceId, String)> = out
            .removed
            .iter()
            .filter_map(|id| self.retired.get(id).map(|p| (*id, p.params.name.clone())))
            .collect();
        self.retired.clear();
        for id in &out.removed {
            self.held.remove(id);
            self.takeovers.remove(id);
            self.accept.forget(*id);
            self.schedule.cancel(*id);
        }
        self.move_placements(engine_changes.keys().copied().collect())
            .await;
        self.accept.configure(self.plans.values());
        for id in out.accept_resync() {
            if let Some(instance) = self.speaker.instance(id) {
                self.accept.resync(id, instance.accept_drops());
            }
        }
        self.accept.sync();
        self.close_unused_sockets();
        self.update_tracked(now);
        let check_notes = self.update_checks(config);
        // Macvlans no plan names: their addresses moved and their last adverts left above.
        let vmacs_now = self.vmac_names();
        for gone in vmacs_before.iter().filter(|n| !vmacs_now.contains(n)) {
            self.forget_link(gone);
        }
        if let Some(vmacs) = &self.vmacs {
            vmacs.keep(vmacs_now);
        }

        // The answer, in config order after the removals.
        let mut lines = Vec::new();
        for (id, name) in removed_names {
            lines.push(Line {
                text: report::removed(&name, masters_before.contains(&id)),
                error: false,
            });
        }
        let change = |text: String| Line { text, error: false };
        for outcome in &outcomes {
            let plan = match &outcome.plan {
                Ok(plan) => plan,
                Err(error) => {
                    let kept = outcome
                        .key
                        .as_ref()
                        .and_then(|key| self.speaker.id_of(key))
                        .is_some();
                    lines.push(Line {
                        text: report::refused(&outcome.name, &error.reason(), kept),
                        error: true,
                    });
                    continue;
                }
            };
            // The instance running these parameters (none: the speaker refused them).
            let Some(id) = self
                .speaker
                .id_of(&plan.params.key())
                .filter(|id| self.speaker.instance(*id).map(|i| i.params()) == Some(&plan.params))
            else {
                continue;
            };
            let name = plan.params.name.as_str();
            if out.added.contains(&id) {
                lines.push(change(report::added(name)));
            } else if let Some((_, changes)) = out.changed.iter().find(|(i, _)| *i == id) {
                lines.extend(report::changes(name, changes).into_iter().map(change));
            }
            if let Some(phrases) = engine_changes.get(&id) {
                lines.extend(
                    report::engine_changes(name, phrases)
                        .into_iter()
                        .map(change),
                );
            }
        }
        for refused in &out.refused {
            lines.push(Line {
                text: report::refused(
                    &refused.name,
                    &refused.error.to_string(),
                    refused.kept.is_some(),
                ),
                error: true,
            });
        }
        let group_errors = out.groups.errors.len();
        let group_lines = report::groups(&out.groups);
        let first_error = group_lines.len().saturating_sub(group_errors);
        for (index, text) in group_lines.into_iter().enumerate() {
            lines.push(Line {
                text,
                error: index >= first_error,
            });
        }
        lines.extend(check_notes);
        self.refused = lines
            .iter()
            .filter(|l| l.error)
            .map(|l| l.text.strip_prefix("vrrp: ").unwrap_or(&l.text).to_owned())
            .collect();
        lines
    }

    /// Opens a socket for every (interface, family) of `plans` that has none, and one on
    /// every macvlan of a `use_vmac` plan.
    fn open_sockets(&mut self, plans: &[InstancePlan]) {
        let Some(sender) = self.ingress.clone() else {
            return;
        };
        let mut tried: Vec<(String, bool)> = Vec::new();
        let wanted = plans.iter().flat_map(|plan| {
            let base = (plan.params.interface.clone(), plan.is_ipv6(), None);
            let vmac = plan.vmac.as_ref().filter(|v| !v.xmit_base).map(|vmac| {
                (
                    vmac.name.clone(),
                    plan.is_ipv6(),
                    Some(plan.params.interface.clone()),
                )
            });
            core::iter::once(base).chain(vmac)
        });
        let wanted: Vec<(String, bool, Option<String>)> = wanted.collect();
        for (interface, ipv6, vmac_of) in wanted {
            let pair = (interface.clone(), ipv6);
            let open = self
                .sockets
                .values()
                .any(|s| s.counters.interface == pair.0 && s.counters.ipv6 == pair.1);
            if open || tried.contains(&pair) {
                continue;
            }
            tried.push(pair);
            match open_socket(&interface, ipv6, vmac_of.is_some()) {
                Ok(socket) => {
                    let socket = Arc::new(socket);
                    let key = self.next_socket;
                    self.next_socket = self.next_socket.saturating_add(1);
                    let reader = tokio::spawn(receive_loop(
                        key,
                        Arc::clone(&socket),
                        sender.clone(),
                        self.context.log.clone(),
                    ));
                    self.sockets.insert(
                        key,
                        SocketEntry {
                            socket,
                            counters: SocketCounters {
                                interface,
                                ipv6,
                                vmac_of,
                                ..SocketCounters::default()
                            },
                            reader,
                        },
                    );
                }
                Err(error) => self.log(format!(
                    "cannot open the {} VRRP socket on {interface}: {error}; its instances cannot hear or send adverts",
                    if ipv6 { "IPv6" } else { "IPv4" }
                )),
            }
        }
    }

    /// Closes the sockets no running instance uses.
    fn close_unused_sockets(&mut self) {
        let plans = &self.plans;
        self.sockets.retain(|_, entry| {
            let used = plans.values().any(|p| {
                let on = |name: &str| name == entry.counters.interface;
                let vmac = p.vmac.as_ref().filter(|v| !v.xmit_base);
                p.is_ipv6() == entry.counters.ipv6
                    && (on(&p.params.interface) || vmac.is_some_and(|v| on(&v.name)))
            });
            if !used {
                entry.reader.abort();
            }
            used
        });
    }

    /// The macvlans of the running plans.
    fn vmac_names(&self) -> Vec<String> {
        self.plans
            .values()
            .filter_map(|p| p.vmac.as_ref().map(|v| v.name.clone()))
            .collect()
    }

    /// Forgets what is bound to link `name` (a macvlan made anew or deleted): its socket is
    /// closed, its frame sender dropped off the loop (closing a packet socket waits for an RCU
    /// grace period).
    fn forget_link(&mut self, name: &str) {
        self.sockets.retain(|_, entry| {
            let stale = entry.counters.interface == name && entry.counters.vmac_of.is_some();
            if stale {
                entry.reader.abort();
            }
            !stale
        });
        if let Some(Some(sender)) = self.frames.remove(name) {
            drop(tokio::task::spawn_blocking(move || drop(sender)));
        }
    }

    /// Tracks the links the plans track: a kept link keeps its state, a new one starts up (as
    /// the core takes it) and is read at once.
    fn update_tracked(&mut self, now: Instant) {
        let mut names: Vec<String> = Vec::new();
        for plan in self.plans.values() {
            // Checks report through `checks`, not the link table.
            for track in plan.params.tracks.iter().filter(|t| !t.kind.is_check()) {
                if !names.contains(&track.name) {
                    names.push(track.name.clone());
                }
            }
        }
        let old = std::mem::take(&mut self.tracked);
        let mut fresh = false;
        self.tracked = names
            .into_iter()
            .map(|name| {
                let up = old.iter().find(|(n, _)| *n == name).map(|(_, up)| *up);
                fresh |= up.is_none();
                (name, up.unwrap_or(true))
            })
            .collect();
        if self.tracked.is_empty() {
            self.next_track_poll = None;
        } else if fresh || (self.next_track_poll.is_none() && self.context.links.is_none()) {
            self.poll_tracks(now);
        }
    }

    /// Subscribes the checks the running instances track (as `config` defines them) and drops
    /// the rest; returns a line per check that cannot run or changed its definition.
    fn update_checks(&mut self, config: &Config) -> Vec<Line> {
        let mut lines = Vec::new();
        let mut notes = Vec::new();
        let trusts = tandem_lvs::tracked::trust_sets(config, &mut notes);
        let mut wanted = Vec::new();
        for (id, plan) in &self.plans {
            let Some(instance) = self.speaker.instance(*id) else {
                continue;
            };
            let Some(configured) = config
                .vrrp
                .iter()
                .find(|i| i.name.as_str() == plan.params.name)
            else {
                continue;
            };
            let planned = tandem_lvs::tracked::instance_checks(configured, &trusts);
            notes.extend(planned.notes);
            for check in planned.checks {
                let track = tandem_vrrp::check_track_name(&check.name);
                // Only what the core tracks (an instance refused a change keeps its old tracks).
                let tracked = instance
                    .params()
                    .tracks
                    .iter()
                    .any(|t| t.kind.is_check() && t.name == track);
                if tracked {
                    wanted.push(checks::Wanted {
                        instance: *id,
                        core_state: instance.track_state(&track),
                        track,
                        check: check.check,
                    });
                }
            }
        }
        for (id, track, what) in self.checks.sync(wanted) {
            if let Some(plan) = self.plans.get(&id) {
                lines.push(Line {
                    text: format!("vrrp: {}: {track} now runs {what}", plan.params.name),
                    error: false,
                });
            }
        }
        lines.extend(notes.into_iter().map(|note| Line {
            text: note,
            error: true,
        }));
        lines
    }

    /// A tracked check's verdict (after its rise / fall counts) for its instance's core.
    fn on_check(&mut self, event: tandem_lvs::health::HealthEvent) {
        let Some(verdict) = self.checks.on_event(event) else {
            return;
        };
        let now = self.now();
        if !self
            .speaker
            .handle_check_event(now, verdict.instance, &verdict.track, verdict.up)
        {
            return;
        }
        let name = self
            .plans
            .get(&verdict.instance)
            .map_or("?", |p| p.params.name.as_str());
        match verdict.reason {
            Some(why) if !verdict.up => self.log(format!("{name}: {} down: {why}", verdict.track)),
            _ => self.log(format!(
                "{name}: {} {}",
                verdict.track,
                if verdict.up { "up" } else { "down" }
            )),
        }
    }

    /// Moves the held addresses of `ids` whose placement (prefix, link) changed.
    async fn move_placements(&mut self, ids: Vec<InstanceId>) {
        let mut moves: Vec<(InstanceId, VipPlacement, VipPlacement)> = Vec::new();
        for id in ids {
            let (Some(held), Some(plan)) = (self.held.get(&id), self.plans.get(&id)) else {
                continue;
            };
            for vip in held {
                if let Some(new) = plan.placement(&vip.address).filter(|new| *new != vip) {
                    moves.push((id, vip.clone(), new.clone()));
                }
            }
        }
        for (id, old, new) in moves {
            let ops = [
                NetOp::DelAddress {
                    link: old.link.clone(),
                    address: old.address,
                    prefix_len: old.prefix,
                },
                NetOp::AddAddress {
                    link: new.link.clone(),
                    address: new.address,
                    prefix_len: new.prefix,
                },
            ];
            for op in ops {
                match self.context.net.apply(std::slice::from_ref(&op)).await {
                    // The old link is gone (a renamed vmac): so is the address.
                    Err(NetError::NoSuchLink {
                        op: NetOp::DelAddress { .. },
                    }) => {}
                    Err(error) => self.log(format!("VIP {}: {error}", new.address)),
                    Ok(()) => {}
                }
            }
            if let Some(held) = self.held.get_mut(&id) {
                for vip in held.iter_mut().filter(|v| v.address == new.address) {
                    *vip = new.clone();
                }
            }
            if let Some(plan) = self.plans.get(&id) {
                let repeat = announce::burst_size(&plan.garp);
                self.announce(id, &[new.address], repeat);
            }
        }
    }

    /// Plans `config` off the loop (answered through `planned`), or queues it behind the one
    /// being planned.
    fn queue_apply(&mut self, config: Arc<Config>, reply: oneshot::Sender<String>) {
        self.queued.push_back((config, reply));
        self.start_next_apply();
    }

    fn start_next_apply(&mut self) {
        if self.planning {
            return;
        }
        let Some(sender) = self.planned.clone() else {
            return;
        };
        let Some((config, reply)) = self.queued.pop_front() else {
            return;
        };
        self.planning = true;
        let running = Running {
            primaries: self
                .plans
                .values()
                .map(|p| (p.params.key(), p.params.primary_address))
                .collect(),
            vips: self
                .plans
                .values()
                .flat_map(|p| p.params.virtual_addresses.iter().copied())
                .collect(),
        };
        let net = self.context.net.clone();
        let vmacs = self.vmacs.clone();
        tokio::spawn(async move {
            let instances: Vec<VrrpInstance> = config.vrrp.iter().cloned().collect();
            let names = plan::config_vmac_names(&config);
            let outcomes = plan_instances(net, instances, names, running).await;
            let (outcomes, recreated) = match &vmacs {
                Some(vmacs) => prepare_vmacs(vmacs, outcomes, false).await,
                None => (outcomes, Vec::new()),
            };
            let _ = sender
                .send(Planned {
                    config,
                    outcomes,
                    recreated,
                    reply,
                })
                .await;
        });
    }

    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<EngineRequest>,
        mut packets: mpsc::Receiver<Ingress>,
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
        let (planned_sender, mut planned) = mpsc::channel(4);
        // Tracked links follow the daemon's link table (rtnetlink notifications); without it
        // their carrier is polled every TRACK_POLL.
        let mut links = self.context.links.clone();
        self.planned = Some(planned_sender);
        let (mut heartbeats, mut probes) = match self.pair_inbox.take() {
            Some(inbox) => (inbox.datagrams, inbox.probes),
            None => (mpsc::channel(1).1, mpsc::channel(1).1),
        };
        self.pair_carrier().await;
        let mut check_verdicts = self.checks.take_inbox();
        loop {
            self.drain_actions().await;
            // A step may change a state, which may call for another; a few rounds settle it
            // (bounded, so nothing can keep the loop from its timers and sockets).
            for _ in 0..4 {
                if !std::mem::take(&mut self.rearbitrate) {
                    break;
                }
                self.pair_arbitrate().await;
            }
            self.rearbitrate = false;
            let wake = [
                self.speaker.poll_timeout(),
                self.schedule.next_due(),
                self.next_track_poll,
                self.pair.as_ref().map(pair_link::PairLink::poll_timeout),
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
                    Some(EngineRequest::Metrics(reply)) => {
                        let _ = reply.send(self.metrics());
                    }
                    Some(EngineRequest::Track { object, up }) => {
                        let now = self.now();
                        if self.speaker.handle_track_event(now, &object, up) > 0 {
                            self.log(format!("tracked {object} {}", if up { "up" } else { "down" }));
                        }
                    }
                    Some(EngineRequest::Apply { config, reply }) => self.queue_apply(config, reply),
                    Some(EngineRequest::Standby { on, reply }) => {
                        let text = self.set_standby(on).await;
                        let _ = reply.send(text);
                    }
                    Some(EngineRequest::Shutdown(reply)) => {
                        // The partner takes over on the heartbeat's word, not after Skew_Time.
                        self.pair_hand_over().await;
                        let now = self.now();
                        self.speaker.handle_shutdown(now);
                        self.drain_actions().await;
                        self.accept.stop().await;
                        if let Some(vmacs) = &self.vmacs {
                            vmacs.keep_and_wait(Vec::new()).await;
                        }
                        self.log("shut down: priority 0 sent, virtual addresses removed");
                        if let Some(pair) = self.pair.as_mut() {
                            pair.stop();
                        }
                        let _ = reply.send(());
                        break;
                    }
                },
                Some(done) = planned.recv() => {
                    let lines = self
                        .reconcile_to(&done.config, done.outcomes, done.recreated)
                        .await;
                    let text: String = lines.iter().map(|l| format!("{}\n", l.text)).collect();
                    let _ = done.reply.send(text);
                    self.planning = false;
                    self.start_next_apply();
                }
                Some(ingress) = packets.recv() => self.on_ingress(ingress),
                Some(verdict) = check_verdicts.recv() => self.on_check(verdict),
                Some(heartbeat) = heartbeats.recv() => self.on_heartbeat(heartbeat).await,
                Some(outcome) = probes.recv() => self.on_probe(outcome).await,
                changed = links_changed(&mut links) => {
                    if changed {
                        let now = self.now();
                        self.poll_tracks(now);
                        self.pair_carrier().await;
                    } else {
                        self.log("link notifications stopped; polling tracked links");
                        links = None;
                        self.context.links = None;
                        let now = self.now();
                        self.poll_tracks(now);
                    }
                }
                () = sleep_precisely(precise.as_ref(), sleep_until) => self.on_wake().await,
            }
        }
        for entry in self.sockets.values() {
            entry.reader.abort();
        }
        if let Some(pair) = self.pair.as_mut() {
            pair.stop();
        }
    }

    async fn on_wake(&mut self) {
        let now = self.now();
        if let Some(deadline) = self.speaker.poll_timeout().filter(|at| *at <= now) {
            self.expiring = Some(deadline);
            self.speaker.handle_timeout(now);
            self.drain_actions().await;
            self.expiring = None;
            // A held-back backup's timer may just have expired (a LAN split): weigh it.
            self.rearbitrate = true;
        }
        for (instance, repeat) in self.schedule.take_due(now) {
            if let Some(plan) = self.plans.get(&instance) {
                let addresses = plan.params.virtual_addresses.clone();
                self.announce(instance, &addresses, repeat);
            }
        }
        if self.next_track_poll.is_some_and(|at| at <= now) {
            self.poll_tracks(now);
            self.pair_carrier().await;
        }
        self.pair_wake().await;
    }

    /// Reads the state of every tracked link (from the link table, else sysfs) and reports
    /// changes to the speaker.
    fn poll_tracks(&mut self, now: Instant) {
        let sys = Path::new(SYS_CLASS_NET);
        let table = self
            .context
            .links
            .as_ref()
            .map(|links| links.borrow().clone());
        let mut changes = Vec::new();
        let has_carrier = |name: &str| match &table {
            Some(table) => table.get(name).is_some_and(|state| state.is_up()),
            None => sysfs::carrier(sys, name) == Some(true),
        };
        for (name, up) in &mut self.tracked {
            // A bond with min_links: (ports with carrier, min_links).
            let quorum = self
                .bond_quorum
                .iter()
                .find(|(bond, _, _)| bond == name)
                .map(|(_, ports, min)| (ports.iter().filter(|p| has_carrier(p)).count(), *min));
            let link = has_carrier(name);
            let carrier = link && quorum.is_none_or(|(with, min)| with >= min);
            if carrier != *up {
                *up = carrier;
                let why = match quorum {
                    _ if carrier => "has carrier".to_owned(),
                    Some((with, min)) if link => {
                        format!("is below min_links {min}: {with} of its ports with carrier")
                    }
                    _ => "lost carrier".to_owned(),
                };
                changes.push((name.clone(), carrier, why));
            }
        }
        for (name, up, why) in changes {
            self.speaker.handle_track_event(now, &name, up);
            self.log(format!("tracked {name} {why}"));
        }
        self.next_track_poll = if self.context.links.is_some() || self.tracked.is_empty() {
            None
        } else {
            Some(now + TRACK_POLL)
        };
    }

    fn on_ingress(&mut self, ingress: Ingress) {
        let vmac_sockets: Vec<(String, bool)> = self
            .sockets
            .values()
            .filter(|s| s.counters.vmac_of.is_some())
            .map(|s| (s.counters.interface.clone(), s.counters.ipv6))
            .collect();
        let Some(entry) = self.sockets.get_mut(&ingress.socket) else {
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
        // The speaker knows instances by their interface, a macvlan's socket by its parent.
        let bound = entry.counters.interface.clone();
        let on_vmac = entry.counters.vmac_of.is_some();
        let interface = entry
            .counters
            .vmac_of
            .clone()
            .unwrap_or_else(|| bound.clone());
        let meta = RxMeta {
            src: received.source,
            dst: received.destination,
            ttl: received.ttl,
        };
        let owner = self
            .speaker
            .demux(&interface, &meta, &payload)
            .and_then(|id| self.plans.get(&id));
        let vmac_socket_open = |plan: &InstancePlan| {
            plan.vmac.as_ref().is_some_and(|vmac| {
                vmac_sockets
                    .iter()
                    .any(|(name, ipv6)| *name == vmac.name && *ipv6 == plan.is_ipv6())
            })
        };
        if on_vmac {
            // A macvlan hears every multicast advert of the segment: only its instance's count
            // here (the interface's socket has the rest).
            if owner
                .and_then(|p| p.vmac.as_ref())
                .is_none_or(|v| v.name != bound)
            {
                return;
            }
        } else if owner.is_some_and(vmac_socket_open) && meta.dst.is_multicast() {
            // The macvlan's socket hears this one too: taken from there, once.
            return;
        }
        // Unicast adverts are taken only from configured peers (as keepalived does).
        let stranger = owner.is_some_and(|plan| !unicast_peer_allowed(&meta, &plan.unicast_peers));
        if stranger {
            entry.counters.unknown_unicast_peer += 1;
            return;
        }
        let now = self.now();
        let Ok(accepted) = self.speaker.receive(now, &interface, meta, &payload) else {
            return;
        };
        let Some(plan) = self.plans.get(&accepted.id) else {
            return;
        };
        let name = plan.params.name.clone();
        if let Some(grace) = accepted.address_list_grace {
            let why = match grace.cause {
                GraceCause::Reconciled => format!(
                    "{} lists other virtual addresses than this box's new set (the partner is not committed yet)",
                    received.source
                ),
                GraceCause::MasterChanged { master } => format!(
                    "master {master} now lists other virtual addresses (its config changed; commit the same VIPs here)"
                ),
            };
            self.log(format!(
                "{name}: {why}; its adverts are processed for up to {} s until the lists match (address list grace)",
                ADDRESS_LIST_GRACE_SECS
            ));
        }
        if let Some(healed) = accepted.healed_split {
            let addresses = plan.params.virtual_addresses.clone();
            let repeat = announce::burst_size(&plan.garp);
            self.log(format!(
                "{name}: lower-priority master {} heard (split healed); announcing again",
                healed.from
            ));
            self.announce(accepted.id, &addresses, repeat);
        }
    }

    async fn drain_actions(&mut self) {
        while let Some((id, action)) = self.speaker.poll_action() {
            match action {
                Action::SendAdvert(advert) => self.send_advert(id, &advert).await,
                Action::AddVips { addresses, accept } => {
                    self.change_vips(id, &addresses, true).await;
                    self.accept.vips_added(id, &addresses, accept);
                    self.act = Some(ActTiming {
                        instance: id,
                        vips_added: self.now(),
                        announced: None,
                    });
                }
                Action::RemoveVips { addresses } => {
                    self.accept.vips_removed(id, &addresses);
                    self.change_vips(id, &addresses, false).await;
                }
                Action::Announce { addresses } => {
                    let Some(plan) = self.plan(id) else {
                        continue;
                    };
                    let repeat = announce::burst_size(&plan.garp);
                    let now = self.now();
                    self.announce(id, &addresses, repeat);
                    self.schedule.announced(id, now);
                }
                Action::StateChanged(transition) => {
                    self.state_changed = true;
                    let plan = self.plans.get(&id).or_else(|| self.retired.get(&id));
                    let name = plan.map_or("?", |p| p.params.name.as_str());
                    self.context.log.line(format!(
                        "vrrp: {name}: {} -> {}: {}",
                        transition.from, transition.to, transition.cause
                    ));
                    // A takeover: its burst is out; the later bursts and, never on the
                    // takeover path, the tickles follow. Leaving master cancels them.
                    let garp = plan.map(|p| &p.garp);
                    if let (true, Some(plan)) =
                        (self.schedule.state_changed(id, transition.to, garp), plan)
                    {
                        let vips = &plan.params.virtual_addresses;
                        self.tickle.became_master(id.0, &plan.params.name, vips);
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
                        if act.instance == id {
                            let since = |at: Instant| at.saturating_duration_since(expiry);
                            self.takeovers.insert(
                                id,
                                status::TakeoverLatency {
                                    vips_added: since(act.vips_added),
                                    announced: act.announced.map(since),
                                },
                            );
                            let micros = |at: Instant| since(at).as_micros();
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
        // What is left announced a live apply's gained addresses: one burst, nothing scheduled.
        self.schedule.end_of_batch();
        // After the whole batch: a takeover's VIP add and first announcement come first.
        self.accept.sync();
        if std::mem::take(&mut self.state_changed) {
            self.pair_state_changed().await;
        }
    }

    async fn send_advert(&mut self, id: InstanceId, advert: &OutgoingAdvert) {
        let Some(plan) = self.plans.get(&id).or_else(|| self.retired.get(&id)) else {
            return;
        };
        let ipv6 = plan.is_ipv6();
        // From the macvlan (source MAC the virtual MAC), else the interface.
        let vmac = plan.vmac.as_ref().map(|v| v.name.clone());
        let key = self
            .sockets
            .iter()
            .filter(|(_, s)| s.counters.ipv6 == ipv6)
            .find(|(_, s)| Some(&s.counters.interface) == vmac.as_ref())
            .or_else(|| {
                self.sockets.iter().find(|(_, s)| {
                    s.counters.interface == plan.params.interface && s.counters.ipv6 == ipv6
                })
            })
            .map(|(key, _)| *key);
        let Some(entry) = key.and_then(|key| self.sockets.get_mut(&key)) else {
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

    /// Adds `addresses` where the plan puts them, or removes them from where they were added.
    async fn change_vips(&mut self, id: InstanceId, addresses: &[IpAddr], add: bool) {
        let Some(plan) = self.plans.get(&id).or_else(|| self.retired.get(&id)) else {
            return;
        };
        let name = plan.params.name.clone();
        let mut placements = Vec::new();
        for address in addresses {
            let held = self
                .held
                .get(&id)
                .and_then(|h| h.iter().find(|v| v.address == *address));
            let placement = if add {
                plan.placement(address)
            } else {
                held.or_else(|| plan.placement(address))
            };
            if let Some(vip) = placement {
                placements.push(vip.clone());
            }
        }
        for vip in placements {
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
                self.context.log.line(format!("vrrp: {name}: {error}"));
            }
            let held = self.held.entry(id).or_default();
            held.retain(|v| v.address != vip.address);
            if add {
                held.push(vip);
            }
        }
        if self.held.get(&id).is_some_and(Vec::is_empty) {
            self.held.remove(&id);
        }
    }

    /// Sends `repeat` gratuitous ARPs / unsolicited NAs for each of `addresses`.
    fn announce(&mut self, instance: InstanceId, addresses: &[IpAddr], repeat: u8) {
        let Some(plan) = self
            .plans
            .get(&instance)
            .or_else(|| self.retired.get(&instance))
        else {
            return;
        };
        let name = plan.params.name.clone();
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
            self.log(format!("{name}: {error}"));
        }
    }

    /// The metric families: counters and states as `vrrp status` shows them.
    fn metrics(&self) -> crate::metrics::Families {
        let instances: Vec<_> = self
            .speaker
            .instances()
            .filter(|(id, _)| self.plans.contains_key(id))
            .map(|(id, instance)| (instance.status(), self.takeovers.get(&id).copied()))
            .collect();
        let sockets: Vec<SocketCounters> =
            self.sockets.values().map(|s| s.counters.clone()).collect();
        status::metrics(
            &instances,
            self.speaker.counters(),
            &sockets,
            self.refused.len(),
        )
    }

    /// `vrrp standby on|off`. On: the partner is told over the heartbeat to take over now
    /// (the planned hand-over of a shutdown), every master sends priority 0 and drops its
    /// addresses, and nothing promotes until off. Off: the hand-over flag is cleared and an
    /// instance whose master fell silent meanwhile (or that preempts) takes over at once.
    async fn set_standby(&mut self, on: bool) -> String {
        let now = self.now();
        if on == self.standby_since.is_some() {
            return format!("vrrp standby: already {}\n", if on { "on" } else { "off" });
        }
        if on {
            self.standby_since = Some(now);
            self.pair_hand_over().await;
        } else {
            self.standby_since = None;
            self.pair_resume().await;
        }
        let changed = self.speaker.set_standby(now, on);
        self.drain_actions().await;
        self.rearbitrate = true;
        let text = if on {
            format!(
                "vrrp standby: on: {changed} master instance(s) sent priority 0 and went backup; \
                 no instance becomes master until `vrrp standby off` (a reboot ends it too)\n"
            )
        } else {
            format!("vrrp standby: off: instances elect again ({changed} took over at once)\n")
        };
        self.log(text.trim_end());
        text
    }

    fn status_text(&self) -> String {
        let now = self.now();
        let instances: Vec<_> = self
            .speaker
            .instances()
            .filter_map(|(id, instance)| {
                self.plans
                    .get(&id)
                    .map(|plan| (instance.status(), plan, self.checks.status_lines(id)))
            })
            .collect();
        let sockets: Vec<SocketCounters> =
            self.sockets.values().map(|s| s.counters.clone()).collect();
        let mut text = status::engine_text(
            now,
            &instances,
            self.speaker.counters(),
            &sockets,
            &self.refused,
        );
        if let Some(since) = self.standby_since {
            text.insert_str(
                0,
                &format!(
                    "STANDBY (maintenance) for {} s: no instance becomes master; `vrrp standby off` resumes\n",
                    now.saturating_duration_since(since).as_secs()
                ),
            );
        }
        if let Some(line) = self.accept.status_line() {
            text.push_str(&line);
            text.push('\n');
        }
        if let Some(line) = self.vmacs.as_ref().and_then(vmac::Vmacs::status_line) {
            text.push_str(&line);
            text.push('\n');
        }
        text.push_str(&self.pair_status_line());
        text.push_str(&self.tickle.status_text(self.plans.iter().map(|(id, p)| {
            (
                id.0,
                p.params.name.as_str(),
                p.params.virtual_addresses.as_slice(),
            )
        })));
        text
    }
}

/// The grace in whole seconds, for log lines.
const ADDRESS_LIST_GRACE_SECS: u64 = tandem_vrrp::ADDRESS_LIST_GRACE.as_secs();

/// The sync groups of `config` as (name, member names).
fn sync_groups(config: &Config) -> Vec<(String, Vec<String>)> {
    config
        .sync_groups
        .iter()
        .map(|g| {
            (
                g.name.as_str().to_owned(),
                g.members.iter().map(|m| m.as_str().to_owned()).collect(),
            )
        })
        .collect()
}

/// Plans each of `instances` (in order) against its interface's addresses now. A running
/// instance (per `running`) keeps its primary address while the interface has it and is
/// planned at once; a new one waits up to [`PRIMARY_WAIT`] for a primary address. Runs off the
/// engine's loop.
async fn plan_instances(
    net: NetExecutor,
    instances: Vec<VrrpInstance>,
    vmac_names: Vec<Option<String>>,
    running: Running,
) -> Vec<Outcome> {
    // No instance takes a virtual address as its primary: a master may hold any of them.
    let mut exclude = running.vips.clone();
    for instance in &instances {
        for vip in instance.vips.iter() {
            if !exclude.contains(&vip.address) {
                exclude.push(vip.address);
            }
        }
    }
    let mut outcomes = Vec::new();
    for (index, instance) in instances.iter().enumerate() {
        let vmac_name = vmac_names.get(index).and_then(Option::as_deref);
        let key = plan::instance_key(instance);
        let current = key
            .as_ref()
            .and_then(|k| running.primaries.iter().find(|(r, _)| r == k))
            .map(|(_, address)| *address);
        let started = tokio::time::Instant::now();
        let plan = loop {
            let addresses = net
                .addresses(instance.interface.as_str())
                .await
                .unwrap_or_default();
            let candidates = plan::candidate_addresses(&addresses, &exclude, current);
            match plan::instance_plan_named(instance, &candidates, vmac_name) {
                Err(plan::PlanError::NoPrimaryAddress { .. })
                    if current.is_none() && started.elapsed() < PRIMARY_WAIT =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => break other,
            }
        };
        outcomes.push(Outcome {
            name: instance.name.as_str().to_owned(),
            key,
            plan,
        });
    }
    outcomes
}

/// Has the vmac worker make the macvlan of every planned `use_vmac` instance (`sweep`: the
/// first job, which also deletes leftovers); an instance whose macvlan cannot be made is
/// refused with the reason. Returns the outcomes and the macvlans made anew.
async fn prepare_vmacs(
    vmacs: &vmac::Vmacs,
    mut outcomes: Vec<Outcome>,
    sweep: bool,
) -> (Vec<Outcome>, Vec<String>) {
    let wanted: Vec<MacvlanSpec> = outcomes
        .iter()
        .filter_map(|o| o.plan.as_ref().ok())
        .filter_map(|plan| {
            plan.vmac.as_ref().map(|vmac| MacvlanSpec {
                name: vmac.name.clone(),
                parent: plan.params.interface.clone(),
                mac: vmac.mac,
                ipv6: plan.is_ipv6(),
            })
        })
        .collect();
    if wanted.is_empty() && !sweep {
        return (outcomes, Vec::new());
    }
    let answers = vmacs.ensure(wanted).await;
    let mut recreated = Vec::new();
    for outcome in &mut outcomes {
        let Ok(plan) = &outcome.plan else {
            continue;
        };
        let Some(vmac) = plan.vmac.as_ref() else {
            continue;
        };
        let answer = answers
            .iter()
            .find(|(name, _)| *name == vmac.name)
            .map(|(_, result)| result.clone())
            .unwrap_or_else(|| Err("the vmac worker did not answer (restart tandem)".to_owned()));
        match answer {
            Ok(ensured) if ensured.is_new() => recreated.push(vmac.name.clone()),
            Ok(_) => {}
            Err(reason) => {
                outcome.plan = Err(plan::PlanError::Vmac {
                    instance: outcome.name.clone(),
                    reason,
                });
            }
        }
    }
    (outcomes, recreated)
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

/// The link's own MAC: gratuitous ARPs carry it (a `use_vmac` instance's macvlan has the
/// virtual MAC, so its announcements carry that).
fn link_mac(link: &str) -> Option<MacAddress> {
    sysfs::mac(Path::new(SYS_CLASS_NET), link)
}

/// True when the link table changed; false when the monitor is gone; without one, forever.
async fn links_changed(links: &mut Option<tandem_southbound::link_monitor::LinkWatch>) -> bool {
    match links {
        Some(receiver) => receiver.changed().await.is_ok(),
        None => std::future::pending().await,
    }
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

fn open_socket(interface: &str, ipv6: bool, vmac: bool) -> std::io::Result<VrrpSocket> {
    let index = sysfs::ifindex(Path::new(SYS_CLASS_NET), interface)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such interface"))?;
    if vmac {
        VrrpSocket::open_on_vmac(interface, index, ipv6)
    } else if ipv6 {
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

/// A plan for the engine's unit tests: each virtual address as a /24 on the instance's
/// interface, multicast adverts, keepalived's gratuitous ARP defaults.
#[cfg(test)]
fn test_plan(params: tandem_vrrp::InstanceParams) -> InstancePlan {
    let vips = params
        .virtual_addresses
        .iter()
        .map(|address| VipPlacement {
            address: *address,
            prefix: 24,
            link: params.interface.clone(),
        })
        .collect();
    InstancePlan {
        params,
        vips,
        unicast_peers: vec![],
        garp: Default::default(),
        vmac: None,
    }
}
