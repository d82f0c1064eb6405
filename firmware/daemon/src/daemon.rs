//! The daemon's event loop: signals, console commands, config transactions, periodic work,
//! probe results.
//!
//! One task owns all state and handles one event at a time, so nothing needs a lock. Blocking
//! work (the peer probe) runs on the blocking pool and comes back as an event; applying a
//! commit runs as a task of its own that answers the client when the engines have reported.
//! Nothing here can delay VRRP: that engine runs on a thread of its own, and every byte for the
//! console goes through the bounded [`crate::console_writer`].

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tandem_board::{NicRole, RoleAssignment};
use tandem_southbound::link_monitor::{LinkTable, LinkWatch};
use tandem_southbound::{probe, sysfs};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use tandem_config::history::CommitOrigin;

use crate::boot::BootOutcome;
use crate::config_store::AnyDevice;
use crate::console::{self, Command};
use crate::console_reader::{self, ConsoleInput};
use crate::control::ControlRequest;
use crate::engine::EngineContext;
use crate::engine::EngineHandle;
use crate::init::{self, PowerAction};
use crate::logring::Log;
use crate::peer_monitor::{PeerEvent, PeerMonitor, PeerState};
use tandem_config::identity::{IdentityStore, PairIdentity};
use tandem_config::transaction::{self, CommitRequest, Committed, TransactionError, Transactions};
use tandem_config::MacKey;

use crate::pair_service::{
    AdoptAnswer, Ask, LocalState, PairHandle, PartnerDelta, SendFirmwareError, ToDaemon, WholeBlob,
};

/// Warnings of one commit written to the log (the rest are counted).
const WARNINGS_LOGGED: usize = 10;

/// How the process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// PID 1 of the appliance: owns the box, ends it with poweroff or reboot.
    Appliance,
    /// `tandem run` on a normal host: stops on SIGTERM / SIGINT / `poweroff`.
    Foreground,
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Power(PowerAction),
    Stop,
}

/// Period of the housekeeping tick (watchdog, carrier, peer probe).
const TICK: Duration = Duration::from_secs(1);
/// How long one peer probe waits for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_millis(700);

/// Everything the loop knows.
#[derive(Debug)]
pub struct Daemon {
    pub mode: Mode,
    pub log: Log,
    pub name: String,
    pub board: Option<&'static tandem_board::BoardProfile>,
    pub roles: RoleAssignment,
    /// Seconds from `/init` (or process start) to ready.
    pub ready_seconds: f64,
    peer: PeerMonitor,
    probe_sequence: u16,
    carriers: Vec<(String, Option<bool>)>,
    /// Per configured bond: its carrier and failover count in the last link table, and the
    /// active port the last failover left (shared with the task that reads it).
    bonds_seen: std::collections::BTreeMap<String, (bool, u32)>,
    bond_active: Arc<std::sync::Mutex<std::collections::BTreeMap<String, String>>>,
    /// Link changes from rtnetlink (None: netlink unavailable, carriers are polled instead).
    links: Option<LinkWatch>,

    watchdog: Option<File>,
    engines: Vec<EngineHandle>,
    /// Netlink and log for starting and reconciling engines (None: netlink unavailable).
    context: Option<EngineContext>,
    /// The running config, the candidate, the store.
    transactions: Transactions<AnyDevice>,
    /// Whether the running config passed validation and went to the engines.
    applied: bool,
    console_noise: ConsoleNoise,
    /// `debug panic` is accepted (lab and tests only).
    debug_commands: bool,
    /// What pairing gave this box (role, pair id, key); None: not paired.
    identity: Option<PairIdentity>,
    /// Line commands on the console (false: the console UI owns the tty).
    console_lines: bool,
    /// Where the identity is stored (None until `open_identity`).
    identity_store: Option<IdentityStore<AnyDevice>>,
    /// Pairing and replication (None until `bring_up`).
    pair_service: Option<PairHandle>,
    /// What the pair service asks of this loop.
    from_pair: Option<mpsc::Receiver<ToDaemon>>,
    /// `pair upgrade`: the state machine, the checked bundle it sends and installs, and the
    /// outcomes of its steps (run off the loop) coming back.
    upgrade: crate::pair_upgrade::PairUpgrade,
    upgrade_bundle: Option<Arc<Vec<u8>>>,
    upgrade_tx: mpsc::Sender<UpgradeEvent>,
    upgrade_rx: Option<mpsc::Receiver<UpgradeEvent>>,
    /// The generation, digest and config last published to the pair service (the base of the
    /// next delta), and the delta published with it.
    last_published: Option<(u64, u64, Arc<tandem_config::Config>)>,
    last_delta: Option<Arc<PartnerDelta>>,
    /// The metrics endpoint (None until `start_metrics`), and its scrapes' questions.
    metrics: Option<crate::metrics::MetricsHandle>,
    metrics_asks: Option<mpsc::Receiver<crate::metrics::DaemonAsk>>,
    /// The running firmware's version and the slot it booted from (`status`).
    firmware: crate::firmware_slot::Firmware,
    /// The config blob format this box writes and why (None until first decided).
    write_format: Option<crate::config_format::WriteFormat>,
    /// Remote syslog and the SNTP client (None until `start_syslog_and_time`).
    syslog: Option<crate::syslog::SyslogHandle>,
    time: Option<crate::sntp::TimeHandle>,
    /// When `factory-reset` was typed: `factory-reset confirm` is taken until
    /// [`console::FACTORY_RESET_WINDOW`] after it.
    factory_reset_armed: Option<std::time::Instant>,
}

/// What `factory-reset` says before it is confirmed.
fn factory_reset_warning(paired: bool) -> String {
    let pair = if paired {
        " This box is paired: it forgets the pair (the partner keeps running its config; type \
         `unpair` there, or pair again later)."
    } else {
        ""
    };
    format!(
        "factory-reset ERASES this box's config (every stored generation and its history), the \
         pair key and role, the admin password and the port map, then reboots into the factory \
         config; the firmware is kept.{pair} Type `factory-reset confirm` within {} s to go on; \
         without it nothing is erased.\n",
        console::FACTORY_RESET_WINDOW.as_secs()
    )
}

/// Where a command's answer goes.
#[derive(Debug)]
enum Reply {
    Console,
    Control(tokio::sync::oneshot::Sender<String>),
    /// No client (a confirm timeout): the log has it.
    Nobody,
}

impl Reply {
    fn send(self, text: String) {
        match self {
            // Never blocks: a console that cannot keep up drops (and counts) instead.
            Reply::Console => {
                crate::console_writer::console().write(text.as_bytes());
            }
            Reply::Control(sender) => {
                let _ = sender.send(text);
            }
            Reply::Nobody => {}
        }
    }

    fn origin(&self) -> CommitOrigin {
        match self {
            Reply::Console => CommitOrigin::Console,
            Reply::Control(_) => CommitOrigin::ControlSocket,
            Reply::Nobody => CommitOrigin::ConfirmTimeout,
        }
    }
}

/// Console lines thrown away or not understood: counted, and answered at most
/// [`ConsoleNoise::ANSWERS_PER_SECOND`] times a second so line noise cannot flood the console.
#[derive(Debug, Default)]
struct ConsoleNoise {
    too_long: u64,
    control: u64,
    unknown: u64,
    window_start: Option<tokio::time::Instant>,
    answered_in_window: u32,
    unanswered: u64,
}

impl ConsoleNoise {
    const ANSWERS_PER_SECOND: u32 = 5;

    /// Whether this rejected line still gets an answer.
    fn answer(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        if self
            .window_start
            .is_none_or(|start| now.duration_since(start) >= Duration::from_secs(1))
        {
            self.window_start = Some(now);
            self.answered_in_window = 0;
        }
        self.answered_in_window += 1;
        if self.answered_in_window <= Self::ANSWERS_PER_SECOND {
            true
        } else {
            self.unanswered += 1;
            false
        }
    }

    /// A note on the lines left unanswered since the last note.
    fn take_note(&mut self) -> Option<String> {
        let count = std::mem::take(&mut self.unanswered);
        (count > 0).then(|| format!("({count} more rejected console lines were not answered)\n"))
    }
}

type ProbeResult = std::io::Result<Option<probe::EchoReply>>;

impl Daemon {
    pub fn new(
        mode: Mode,
        log: Log,
        identity: BootOutcome,
        ready_seconds: f64,
        transactions: Transactions<AnyDevice>,
        context: Option<EngineContext>,
    ) -> Daemon {
        let BootOutcome { name, board, roles } = identity;
        let carriers = roles
            .assigned
            .iter()
            .map(|(_, name)| (name.clone(), None))
            .collect();
        let (upgrade_tx, upgrade_rx) = mpsc::channel(8);
        Daemon {
            mode,
            log,
            name,
            board,
            roles,
            ready_seconds,
            peer: PeerMonitor::default(),
            probe_sequence: 0,
            carriers,
            bonds_seen: std::collections::BTreeMap::new(),
            bond_active: Arc::default(),
            links: None,
            watchdog: None,
            engines: Vec::new(),
            context,
            transactions,
            applied: false,
            console_noise: ConsoleNoise::default(),
            debug_commands: false,
            identity: None,
            identity_store: None,
            console_lines: true,
            pair_service: None,
            from_pair: None,
            upgrade: crate::pair_upgrade::PairUpgrade::default(),
            upgrade_bundle: None,
            upgrade_tx,
            upgrade_rx: Some(upgrade_rx),
            last_published: None,
            last_delta: None,
            firmware: crate::firmware_slot::Firmware::not_appliance(),
            write_format: None,
            factory_reset_armed: None,
            metrics: None,
            metrics_asks: None,
            syslog: None,
            time: None,
        }
    }

    /// This box's side for the pair service.
    /// The console's admin password hash as stored now (the console UI's thread writes it).
    fn stored_credential(&mut self) -> Option<String> {
        let store = self.identity_store.as_mut()?;
        store.load_credential().ok().flatten()
    }

    fn local_state(&mut self) -> LocalState {
        let credential = self.stored_credential();
        let running = Arc::clone(self.transactions.running());
        let interface = running
            .peer_link
            .as_ref()
            .map_or_else(|| "peer".to_owned(), |l| l.interface.as_str().to_owned());
        let key = self.identity.as_ref().map(|i| MacKey(i.key));
        let source = if self.transactions.generation() == 0 {
            None
        } else {
            match self.transactions.partner_blob() {
                Ok(source) => Some(source),
                Err(error) => {
                    self.log.line(format!(
                        "pair: this box's config cannot go to the partner: {error}"
                    ));
                    None
                }
            }
        };
        let blob = source.map_or_else(WholeBlob::default, |source| WholeBlob::new(source, key));
        let generation = self.transactions.generation();
        let digest = self.transactions.digest();
        // A new generation: the delta over the one published before (what a partner that ran
        // that one needs); the same generation again (identity, credential): the same delta.
        if let Some((base_generation, base_digest, base)) = &self.last_published {
            if *base_generation != generation {
                self.last_delta = self
                    .transactions
                    .delta_for_partner(base, *base_generation, *base_digest)
                    .ok()
                    .map(|bytes| {
                        Arc::new(PartnerDelta {
                            base_generation: *base_generation,
                            base_digest: *base_digest,
                            bytes,
                        })
                    });
            }
        }
        if generation > 0 {
            self.last_published = Some((generation, digest, Arc::clone(&running)));
        }
        LocalState {
            interface,
            identity: self.identity.clone(),
            generation,
            digest,
            history: self.transactions.history().clone(),
            running,
            blob: Arc::new(blob),
            credential,
            delta: self.last_delta.clone(),
            firmware: self.firmware.clone(),
        }
    }

    /// Takes the partner's admin password hash with its config: one password for the pair.
    fn take_partner_credential(&mut self, credential: Option<String>) {
        let Some(hash) = credential else { return };
        if self.stored_credential().as_deref() == Some(hash.as_str()) {
            return;
        }
        let Some(store) = self.identity_store.as_mut() else {
            return;
        };
        match store.save_credential(Some(&hash)) {
            Ok(()) => self
                .log
                .line("console: the admin password is now the partner's (it came with its config)"),
            Err(error) => self.log.line(format!(
                "console: cannot store the partner's admin password: {error}"
            )),
        }
    }

    fn publish_pair(&mut self) {
        if self.pair_service.is_some() {
            let state = self.local_state();
            if let Some(service) = &self.pair_service {
                service.publish(state);
            }
        }
    }

    /// Starts pairing and replication on the peer link.
    pub fn start_pair_service(&mut self) {
        let (to_daemon, from_pair) = mpsc::channel(8);
        self.pair_service = Some(crate::pair_service::spawn(
            self.local_state(),
            to_daemon,
            self.log.clone(),
        ));
        self.from_pair = Some(from_pair);
    }

    /// Starts the metrics endpoint's thread and points it at the running config's address.
    /// `started`: when the daemon started (its uptime).
    pub fn start_metrics(&mut self, started: std::time::Instant) {
        let (asks, inbox) = mpsc::channel(2);
        self.metrics = crate::metrics::spawn(asks, self.log.clone(), started);
        self.metrics_asks = Some(inbox);
        self.follow_metrics();
    }

    /// Starts remote syslog and the SNTP client, each on a thread of its own, following the
    /// running config. The appliance's client steps the real clock; `tandem run`'s never
    /// touches the host's (it corrects its own view of the time instead).
    pub fn start_syslog_and_time(&mut self) {
        let (settings, servers) = self.management_settings();
        self.syslog = crate::syslog::spawn(self.log.clone(), settings);
        let (clock, min_poll): (Box<dyn crate::sntp::ClockStep>, _) = match self.mode {
            Mode::Appliance => (
                Box::new(crate::sntp::SystemClock),
                crate::sntp::client::MIN_POLL,
            ),
            Mode::Foreground => {
                crate::sntp::apply_foreground_skew(&self.log);
                (
                    Box::new(crate::sntp::VirtualClock),
                    crate::sntp::foreground_min_poll(&self.log),
                )
            }
        };
        self.time = crate::sntp::spawn(self.log.clone(), servers, clock, min_poll);
    }

    /// What remote syslog and the SNTP client take from the running config (nothing until it
    /// passed validation): this box's name, `management.syslog`, `management.time_servers`.
    fn management_settings(&self) -> (crate::syslog::Settings, Vec<std::net::IpAddr>) {
        let mut settings = crate::syslog::Settings {
            hostname: self.name.clone(),
            targets: Vec::new(),
        };
        if !self.applied {
            return (settings, Vec::new());
        }
        let effective = self.effective(self.transactions.running());
        if !effective.system.hostname.is_empty() {
            settings.hostname = effective.system.hostname.as_str().to_owned();
        }
        settings.targets = effective.management.syslog.iter().cloned().collect();
        let servers = effective.management.time_servers.iter().copied().collect();
        (settings, servers)
    }

    /// The metrics endpoint, remote syslog and the SNTP client follow the running config.
    fn follow_management(&self) {
        self.follow_metrics();
        if self.syslog.is_none() && self.time.is_none() {
            return;
        }
        let (settings, servers) = self.management_settings();
        if let Some(syslog) = &self.syslog {
            syslog.follow(settings);
        }
        if let Some(time) = &self.time {
            time.follow(servers);
        }
    }

    /// The metrics endpoint serves where the running config says (`management.metrics`, a
    /// shared setting: the same on both boxes of a pair), once that config passed validation.
    fn follow_metrics(&self) {
        if let Some(metrics) = &self.metrics {
            let running = self.transactions.running();
            metrics.follow(self.applied.then_some(running.management.metrics).flatten());
        }
    }

    /// A scrape's snapshot of what this loop owns: its families and whom else to ask.
    fn metrics_view(&self) -> crate::metrics::DaemonView {
        let running = Arc::clone(self.transactions.running());
        crate::metrics::DaemonView {
            engines: self.engines.clone(),
            families: self.box_metrics(),
            pair: self.context.as_ref().map(|c| c.pair.clone()),
            replication: self.pair_service.clone(),
            bonds: (!running.bonds.is_empty()).then_some(running),
        }
    }

    /// The loop's own families: the config, the engines running, the board's NICs, the peer
    /// probe, console and control input refused.
    fn box_metrics(&self) -> crate::metrics::Families {
        use crate::metrics::{Families, Family, Labels};
        let mut families = Families::new();
        let transactions = &self.transactions;
        families.push(
            Family::gauge(
                "tandem_config_generation",
                "Generation of the running config (0: none committed yet).",
            )
            .with(transactions.generation()),
        );
        families.push(
            Family::gauge(
                "tandem_config_applied",
                "1 when the running config passed validation and went to the engines.",
            )
            .with(self.applied),
        );
        families.push(
            Family::gauge(
                "tandem_config_candidate_changed",
                "1 when the candidate holds changes not committed.",
            )
            .with(transactions.has_changes()),
        );
        families.push(
            Family::gauge(
                "tandem_config_confirm_pending",
                "1 while a `commit --confirm` waits for `confirm` (else it is rolled back).",
            )
            .with(transactions.pending().is_some()),
        );
        let mut running = Family::gauge(
            "tandem_engine_running",
            "Role engines the running config asks for (1 per engine running).",
        );
        for engine in &self.engines {
            running.add(Labels::of(&[("engine", engine.name)]), 1u64);
        }
        families.push(running);
        let mut carrier = Family::gauge(
            "tandem_nic_carrier",
            "Carrier of each board NIC by role: 1 link, 0 none (the NIC down or absent counts as 0).",
        );
        for ((role, _), (name, up)) in self.roles.assigned.iter().zip(&self.carriers) {
            carrier.add(
                Labels::of(&[("role", &role.to_string()), ("nic", name)]),
                *up == Some(true),
            );
        }
        families.push(carrier);
        if self.roles.nic_for(NicRole::Peer).is_some() {
            let (reachable, rtt) = match self.peer.state() {
                PeerState::Reachable { rtt, .. } => (true, Some(rtt)),
                PeerState::Unknown | PeerState::Unreachable { .. } => (false, None),
            };
            families.push(
                Family::gauge(
                    "tandem_peer_reachable",
                    "1 while the partner answers the ICMPv6 probe on the peer link (every second, lost after 3 misses).",
                )
                .with(reachable),
            );
            if let Some(rtt) = rtt {
                families.push(
                    Family::gauge(
                        "tandem_peer_probe_rtt_seconds",
                        "Round trip of the last answered peer-link probe.",
                    )
                    .with(rtt),
                );
            }
        }
        let noise = &self.console_noise;
        let mut discarded = Family::counter(
            "tandem_console_lines_discarded_total",
            "Console lines thrown away: too long, holding control characters, or not a command.",
        );
        discarded.add_each(
            &Labels::NONE,
            "reason",
            [
                ("too_long", noise.too_long),
                ("control_characters", noise.control),
                ("unknown", noise.unknown),
            ],
        );
        families.push(discarded);
        families.push(
            Family::counter(
                "tandem_console_output_dropped_total",
                "Console messages dropped because the console could not keep up.",
            )
            .with(crate::console_writer::console().dropped().messages),
        );
        families.push(
            Family::counter(
                "tandem_control_requests_refused_total",
                "Control socket requests refused for their form (too long, control characters).",
            )
            .with(crate::control::discarded()),
        );
        if let Some(syslog) = &self.syslog {
            families.extend(syslog.metrics());
        }
        if let Some(time) = &self.time {
            families.extend(time.metrics());
        }
        families.extend(self.firmware.metrics());
        families
    }

    /// Runs the current config again after the pair identity changed (role, pair id, key):
    /// no new generation, only what the engines run changes.
    fn reapply(&mut self, old_effective: Arc<tandem_config::Config>, what: &'static str) {
        let Some(context) = self.context.clone() else {
            return;
        };
        if !self.applied {
            return;
        }
        let running = Arc::clone(self.transactions.running());
        let new = self.effective(&running);
        self.follow_management();
        let peer = crate::peer_channel::reconcile(&context.peer, &new, self.pairing(), &self.log);
        let work = crate::engine::plan_apply(&mut self.engines, old_effective, new, &context);
        let log = self.log.clone();
        tokio::spawn(async move {
            let mut report: Vec<String> = peer.into_iter().collect();
            report.extend(work.await);
            for line in &report {
                log.line(format!("config: {what}: {line}"));
            }
        });
    }

    /// The pair service's requests: a partner's config to take, a pairing to store, a
    /// firmware bundle to install; a reboot the partner asked for ends the loop.
    fn on_pair_request(&mut self, request: ToDaemon) -> Option<Exit> {
        self.follow_write_format();
        match request {
            ToDaemon::Adopt {
                blob,
                credential,
                force,
                reply,
            } => {
                let Some(identity) = self.identity.clone() else {
                    let _ = reply.send(AdoptAnswer::Invalid("this box is not paired".into()));
                    return None;
                };
                let key = MacKey(identity.key);
                let old = Arc::clone(self.transactions.running());
                let adopted = if tandem_config::delta::is_delta(&blob) && !force {
                    self.transactions
                        .adopt_delta(&blob, transaction::unix_now())
                } else {
                    self.transactions.adopt(
                        &blob,
                        tandem_config::MacPolicy::Require(&key),
                        force,
                        transaction::unix_now(),
                    )
                };
                if matches!(adopted, Ok(_) | Err(TransactionError::AlreadyRunning(_))) {
                    self.take_partner_credential(credential);
                }
                match adopted {
                    Ok((committed, _how)) => {
                        let what = if force { "adopt-peer" } else { "replicated" };
                        let (text_tx, text) = tokio::sync::oneshot::channel();
                        self.apply(old, committed, what, None, Reply::Control(text_tx));
                        tokio::spawn(async move {
                            let text = text.await.unwrap_or_default();
                            let _ = reply.send(AdoptAnswer::Applied(text));
                        });
                    }
                    Err(TransactionError::AlreadyRunning(_)) => {
                        let _ = reply.send(AdoptAnswer::Already);
                    }
                    Err(error @ TransactionError::DeltaRefused(_)) => {
                        let _ = reply.send(AdoptAnswer::NeedFull(error.to_string()));
                    }
                    Err(error @ TransactionError::Diverged { .. }) => {
                        self.log.line(format!("pair: {error}"));
                        let _ = reply.send(AdoptAnswer::Diverged(error.to_string()));
                    }
                    Err(error) => {
                        self.log
                            .line(format!("pair: the partner's config is refused: {error}"));
                        let _ = reply.send(AdoptAnswer::Invalid(error.to_string()));
                    }
                }
            }
            ToDaemon::Paired { identity, reply } => {
                let text = self.store_identity(Some(identity));
                let _ = reply.send(text);
            }
            ToDaemon::InstallBundle { bundle, reply } => {
                let facts = self.install_facts();
                self.log.line(format!(
                    "firmware: the partner sent a bundle of {} bytes; checking it",
                    bundle.len()
                ));
                self.firmware.install_in_memory(
                    bundle,
                    "the partner's bundle",
                    facts,
                    &self.log,
                    Box::new(move |installed| {
                        let _ = reply.send(installed);
                    }),
                );
            }
            ToDaemon::Reboot { why } => {
                self.log.line(format!("reboot: {why}"));
                return Some(self.end(PowerAction::Reboot));
            }
        }
        None
    }

    /// Stores (or, None, forgets) the pair identity and runs what it implies.
    fn store_identity(&mut self, identity: Option<PairIdentity>) -> String {
        let stored = match self.identity_store.as_mut() {
            Some(store) => store.save(identity.as_ref()),
            None => Ok(()),
        };
        if let Err(error) = stored {
            self.log
                .line(format!("pair: cannot store the pair identity: {error}"));
            return format!("NOT stored: {error}");
        }
        let running = Arc::clone(self.transactions.running());
        let old_effective = self.effective(&running);
        self.set_identity(identity);
        self.reapply(old_effective, "pair identity");
        self.publish_pair();
        "stored on this box's config disk".to_owned()
    }

    /// Factory reset: the identity region first (pair key and role, admin password, port map:
    /// the secrets go first, so a power cut in between leaves no key behind), then both config
    /// slots; the caller reboots into the seed config. The firmware (the EFI system partition,
    /// both slots) is not touched. Each step is synced before the next.
    fn factory_reset(&mut self) -> Result<String, String> {
        if let Some(store) = self.identity_store.as_mut() {
            if let Err(error) = store.erase() {
                self.log.line(format!(
                    "factory reset: cannot erase the pair key and password: {error}"
                ));
                return Err(format!(
                    "factory reset FAILED, nothing erased: cannot erase the pair key and \
                     password ({error}); the box keeps running as it was\n"
                ));
            }
        }
        if let Err(error) = self.transactions.erase_store() {
            self.log.line(format!(
                "factory reset: cannot erase the config slots: {error}"
            ));
            return Err(format!(
                "factory reset INCOMPLETE: the pair key, admin password and port map are erased, \
                 but the config slots are not ({error}); the box keeps running its config \
                 unpaired after the next boot; type `factory-reset` again\n"
            ));
        }
        self.log.line(
            "factory reset: config slots, pair key, admin password and port map erased; rebooting",
        );
        Ok(
            "factory reset: the config (every stored generation and its history), the pair key \
            and role, the admin password and the port map are erased; the firmware is kept. \
            Rebooting into the factory config.\n"
                .to_owned(),
        )
    }

    /// The console UI reads the console: no line reader on it.
    pub fn leave_the_console_to_the_ui(&mut self) {
        self.console_lines = false;
    }

    /// Reads this box's pair identity from `store` (and keeps the store for pairing).
    pub fn open_identity(&mut self, mut store: IdentityStore<AnyDevice>) {
        match store.load() {
            Ok(identity) => self.set_identity(identity),
            Err(error) => self.log.line(format!(
                "pair: cannot read the pair identity: {error}; this box runs unpaired"
            )),
        }
        self.identity_store = Some(store);
    }

    /// This box's pair identity (role, pair id, key).
    fn set_identity(&mut self, identity: Option<PairIdentity>) {
        if let Some(identity) = &identity {
            self.log.line(format!(
                "pair: this box is {} of pair {:016x}",
                identity.role, identity.pair_id
            ));
        }
        if let Some(context) = &self.context {
            context
                .pair
                .set_pairing(identity.as_ref().map(|i| (i.pair_id, i.key)));
        }
        self.identity = identity;
    }

    /// The config this box's engines run: a pair config's shared part with this box's half
    /// laid over it (`Config::for_box`); a box without a role runs the shared part alone. (The
    /// pair id and key pairing gave reach the peer channel and the heartbeat apart, so a
    /// config without halves is never copied.)
    fn effective(&self, config: &Arc<tandem_config::Config>) -> Arc<tandem_config::Config> {
        if config.pair.is_none() {
            return Arc::clone(config);
        }
        Arc::new(match &self.identity {
            Some(identity) => config.for_box(identity.role),
            None => config.shared_part(),
        })
    }

    /// The pair id and key for the peer-cable channels (None: unpaired).
    fn pairing(&self) -> Option<(u64, [u8; 32])> {
        self.identity.as_ref().map(|i| (i.pair_id, i.key))
    }

    /// Follows link changes from the kernel's notifications instead of polling carriers.
    pub fn follow_links(&mut self, links: LinkWatch) {
        self.links = Some(links);
    }

    /// Accepts `debug panic` (lab images and tests).
    pub fn enable_debug_commands(&mut self) {
        self.debug_commands = true;
    }

    /// Applies the running config at start: interface addresses, then the engines it asks for.
    pub async fn bring_up(&mut self) {
        self.follow_write_format();
        let config = Arc::clone(self.transactions.running());
        if self.transactions.generation() == 0 && *config == tandem_config::Config::default() {
            return;
        }
        if !crate::config_store::accept_valid(&config, &self.log) {
            return;
        }
        let Some(context) = &self.context else {
            self.log
                .line("error: no netlink connection; the config is not applied");
            return;
        };
        // No pair key yet (pairing is a later issue): the channel is bound to the pair id only.
        if config.pair.is_some() && self.identity.is_none() {
            self.log.line(
                "pair: the config has per-box halves but this box has no pair role yet: it \
                 runs the shared part only until it is paired (`pair start` / `pair join CODE`)",
            );
        }
        let config = self.effective(&config);
        crate::peer_channel::reconcile(&context.peer, &config, self.pairing(), &self.log);
        context
            .pair
            .set_generation(self.transactions.generation(), self.transactions.digest());
        self.engines = crate::engine::bring_up(&config, context).await;
        self.applied = true;
        self.follow_management();
    }

    /// Opens and starts petting the board's hardware watchdog, if it has one.
    pub fn arm_watchdog(&mut self) {
        let Some(spec) = self.board.and_then(|b| b.watchdog) else {
            return;
        };
        match std::fs::OpenOptions::new().write(true).open(spec.device) {
            Ok(file) => {
                // The board's timeout, not the driver's default; a driver that refuses it keeps
                // its own, which is said.
                match tandem_southbound::watchdog::set_timeout(&file, spec.timeout_secs) {
                    Ok(took) => self.log.line(format!(
                        "watchdog: {} armed, resets a box hung for {took} s",
                        spec.device
                    )),
                    Err(error) => self.log.line(format!(
                        "warning: watchdog {} armed with the driver's own timeout: it refused \
                         {} s ({error})",
                        spec.device, spec.timeout_secs
                    )),
                }
                self.watchdog = Some(file);
            }
            Err(error) => self.log.line(format!(
                "warning: watchdog {} not available ({error}); a hung box will not reset itself",
                spec.device
            )),
        }
    }

    /// Runs until a signal or a command (console or control socket) ends it.
    pub async fn run(mut self, control: mpsc::Receiver<ControlRequest>) -> Exit {
        // With the console UI on the tty, the UI reads it; the line reader stays off.
        let mut commands = self.console_lines.then(console_reader::spawn);
        let mut control = Some(control);
        let (Ok(mut terminate), Ok(mut interrupt), Ok(mut child)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::child()),
        ) else {
            self.log
                .line("error: cannot install signal handlers; stopping");
            return Exit::Stop;
        };
        let mut tick = tokio::time::interval(TICK);
        let mut probe: Option<JoinHandle<ProbeResult>> = None;
        let exit = loop {
            tokio::select! {
                _ = terminate.recv() => {
                    self.log.line("SIGTERM: shutting down");
                    break self.end(PowerAction::Poweroff);
                }
                _ = interrupt.recv() => {
                    self.log.line("SIGINT (ctrl-alt-del): shutting down");
                    break self.end(PowerAction::Reboot);
                }
                _ = child.recv() => {
                    let reaped = init::reap_children();
                    if reaped > 0 {
                        self.log.line(format!("reaped {reaped} orphaned process(es)"));
                    }
                }
                input = recv_or_pending(&mut commands) => {
                    let Some(input) = input else {
                        // Console closed (run mode with stdin at EOF): keep running headless.
                        commands = None;
                        continue;
                    };
                    match input {
                        ConsoleInput::Line(line) => {
                            if let Some(exit) = self.on_console_line(&line, &mut probe) {
                                break exit;
                            }
                        }
                        ConsoleInput::Discarded(discard) => {
                            match discard {
                                console_reader::Discard::TooLong { .. } => self.console_noise.too_long += 1,
                                console_reader::Discard::ControlCharacter { .. } => self.console_noise.control += 1,
                            }
                            if self.console_noise.answer() {
                                Reply::Console.send(format!("{discard}\n"));
                            }
                        }
                    }
                }
                request = recv_or_pending(&mut control) => {
                    let Some(request) = request else {
                        control = None;
                        continue;
                    };
                    let reply = Reply::Control(request.reply);
                    if let Some(exit) = self.on_command(&request.line, reply, &mut probe) {
                        break exit;
                    }
                }
                () = confirm_deadline(self.transactions.pending().map(|p| p.deadline)) => {
                    self.on_confirm_timeout();
                }
                changed = links_changed(&mut self.links) => {
                    match changed {
                        Some(table) => self.on_links(&table),
                        None => {
                            self.log.line("link monitor stopped; polling carriers instead");
                            self.links = None;
                        }
                    }
                }
                request = recv_or_pending(&mut self.from_pair) => {
                    match request {
                        Some(request) => {
                            if let Some(exit) = self.on_pair_request(request) {
                                break exit;
                            }
                        }
                        None => self.from_pair = None,
                    }
                }
                ask = recv_or_pending(&mut self.metrics_asks) => {
                    match ask {
                        Some(reply) => {
                            let _ = reply.send(self.metrics_view());
                        }
                        None => self.metrics_asks = None,
                    }
                }
                event = recv_or_pending(&mut self.upgrade_rx) => {
                    if let Some(event) = event {
                        if let Some(exit) = self.on_upgrade_event(event) {
                            break exit;
                        }
                    }
                }
                _ = tick.tick() => self.on_tick(&mut probe),
                result = wait_probe(&mut probe) => {
                    probe = None;
                    self.on_probe_result(result);
                }
            }
        };
        // Hand over first (VRRP sends priority 0 and drops its VIPs), then stop the rest.
        self.engines.sort_by_key(|engine| engine.name != "vrrp");
        for engine in &self.engines {
            if !engine.shutdown().await {
                self.log
                    .line(format!("{}: did not stop cleanly", engine.name));
            }
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            // Magic close: a clean shutdown must not end in a watchdog reset.
            let _ = watchdog.write_all(b"V");
        }
        exit
    }

    fn end(&self, action: PowerAction) -> Exit {
        match self.mode {
            Mode::Appliance => Exit::Power(action),
            Mode::Foreground => Exit::Stop,
        }
    }

    /// A line typed on the console: rejected ones are counted and answered within bounds.
    fn on_console_line(
        &mut self,
        line: &str,
        probe: &mut Option<JoinHandle<ProbeResult>>,
    ) -> Option<Exit> {
        if let Err(error) = console::parse(line) {
            self.console_noise.unknown += 1;
            if self.console_noise.answer() {
                Reply::Console.send(format!("{error}\n"));
            }
            return None;
        }
        if let Some(note) = self.console_noise.take_note() {
            Reply::Console.send(note);
        }
        self.on_command(line, Reply::Console, probe)
    }

    fn on_command(
        &mut self,
        line: &str,
        reply: Reply,
        probe: &mut Option<JoinHandle<ProbeResult>>,
    ) -> Option<Exit> {
        let command = match console::parse(line) {
            Ok(command) => command,
            Err(error) => {
                reply.send(format!("{error}\n"));
                return None;
            }
        };
        if let Some(reply) = self.on_config_command(&command, reply) {
            return self.on_box_command(command, reply, probe);
        }
        None
    }

    fn on_box_command(
        &mut self,
        command: Command,
        reply: Reply,
        probe: &mut Option<JoinHandle<ProbeResult>>,
    ) -> Option<Exit> {
        let (text, exit) = match command {
            Command::Nothing => (String::new(), None),
            Command::Help => (format!("{}\n", console::HELP), None),
            Command::Status => (self.status_text(), None),
            Command::Log => {
                let mut text = self.log.lines().join("\n");
                text.push('\n');
                (text, None)
            }
            Command::Ping { address, count } => {
                tokio::spawn(async move {
                    let timeout = Duration::from_secs(2);
                    let done = tokio::task::spawn_blocking(move || {
                        tandem_southbound::ping::ping(address, count, timeout)
                    })
                    .await;
                    reply.send(match done {
                        Ok(Ok(report)) => format!("{}\n", report.line()),
                        Ok(Err(error)) => format!("ping {address}: {error}\n"),
                        Err(_) => format!("ping {address}: stopped\n"),
                    });
                });
                return None;
            }
            Command::Neighbours => {
                let text = match tandem_southbound::neigh::ipv4_neighbours() {
                    Ok(table) if table.is_empty() => "neighbours: none (IPv4)\n".to_owned(),
                    Ok(table) => table
                        .iter()
                        .map(|n| {
                            format!(
                                "neighbours: {} {} on {} {}\n",
                                n.address, n.mac, n.device, n.state
                            )
                        })
                        .collect(),
                    Err(error) => format!("neighbours: /proc/net/arp: {error}\n"),
                };
                (text, None)
            }
            Command::Ports => (
                crate::ports::list(self.board, &self.roles, self.identity_store.as_mut()),
                None,
            ),
            Command::PortsAssign(pairs) => (
                crate::ports::assign(self.board, self.identity_store.as_mut(), &pairs, &self.log),
                None,
            ),
            Command::PortsReset => (
                crate::ports::reset(self.identity_store.as_mut(), &self.log),
                None,
            ),
            Command::Peer => {
                if probe.is_none() {
                    *probe = self.start_probe();
                }
                let text = if probe.is_some() {
                    "peer: probing; the result is logged\n"
                } else {
                    "peer: this box has no peer port\n"
                };
                (text.to_owned(), None)
            }
            Command::PairStatus
            | Command::PairStart
            | Command::PairJoin(_)
            | Command::PairAdoptPeer
            | Command::PairPush
            | Command::ComparePeer => {
                let heartbeat = match (&command, &self.context) {
                    (Command::PairStatus, Some(context)) => context.pair.status_text(),
                    (Command::PairStatus, None) => {
                        "pair: no netlink connection on this box: no heartbeat runs\npair: end\n"
                            .to_owned()
                    }
                    _ => String::new(),
                };
                let ask = match command {
                    Command::PairStart => Ask::Start,
                    Command::PairJoin(code) => Ask::Join(code),
                    Command::PairAdoptPeer => Ask::AdoptPeer,
                    Command::PairPush => Ask::Push,
                    Command::ComparePeer => Ask::ComparePeer,
                    _ => Ask::Status,
                };
                let Some(service) = &self.pair_service else {
                    reply.send(format!(
                        "pair: the pair service is not running\n{heartbeat}"
                    ));
                    return None;
                };
                let answer = service.ask(ask);
                tokio::spawn(async move {
                    let mut text = answer
                        .await
                        .unwrap_or_else(|_| "pair: the pair service stopped\n".to_owned());
                    text.push_str(&heartbeat);
                    reply.send(text);
                });
                return None;
            }
            Command::Unpair => {
                if self.identity.is_none() {
                    ("unpair: this box is not paired\n".to_owned(), None)
                } else {
                    let text = self.store_identity(None);
                    self.log
                        .line("pair: unpaired; the config stays, nothing is replicated");
                    (
                        format!(
                            "unpair: the pair key and role are forgotten ({text}); the config \
                             stays and runs its shared part; pair again with `pair start` / \
                             `pair join CODE`\n"
                        ),
                        None,
                    )
                }
            }
            Command::BondStatus => {
                let running = self.effective(self.transactions.running());
                tokio::spawn(async move { reply.send(crate::bonds::status(&running).await) });
                return None;
            }
            Command::PairUpgradeStatus => {
                (self.upgrade.status_text(std::time::Instant::now()), None)
            }
            Command::PairUpgrade(path) => {
                if self.upgrade.running() {
                    let text = self.upgrade.status_text(std::time::Instant::now());
                    reply.send(format!("pair upgrade: one is running already\n{text}"));
                    return None;
                }
                // Which box must run it and whether both can take it: before reading a byte.
                if let Err(refusal) = self.upgrade.precheck(&self.upgrade_facts()) {
                    reply.send(format!("pair upgrade: refused: {refusal}\n"));
                    return None;
                }
                let facts = self.install_facts();
                let firmware = self.firmware.clone();
                let log = self.log.clone();
                let events = self.upgrade_tx.clone();
                tokio::spawn(async move {
                    let checked = tokio::task::spawn_blocking(move || {
                        firmware.check_bundle(&path, &facts, &log)
                    })
                    .await
                    .unwrap_or_else(|_| Err("pair upgrade: the bundle check stopped\n".into()));
                    let _ = events.send(UpgradeEvent::Checked { checked, reply }).await;
                });
                return None;
            }
            Command::VrrpStandby(on) => {
                match self.engines.iter().find(|engine| engine.name == "vrrp") {
                    Some(engine) => {
                        let engine = engine.clone();
                        tokio::spawn(async move { reply.send(engine.standby(on).await) });
                        return None;
                    }
                    None => (
                        "vrrp standby: no VRRP instance runs on this box; nothing to hand over\n"
                            .to_owned(),
                        None,
                    ),
                }
            }
            Command::EngineStatus(name) => {
                match self.engines.iter().find(|engine| engine.name == name) {
                    Some(engine) => {
                        let engine = engine.clone();
                        tokio::spawn(async move { reply.send(engine.status().await) });
                        return None;
                    }
                    None => (format!("{name}: not configured on this box\n"), None),
                }
            }
            Command::Poweroff => {
                self.log.line("poweroff requested");
                (
                    "powering off\n".to_owned(),
                    Some(self.end(PowerAction::Poweroff)),
                )
            }
            Command::FirmwareStatus => (self.firmware.status_text(std::time::Instant::now()), None),
            Command::FactoryReset { confirm: false } => {
                self.factory_reset_armed = Some(std::time::Instant::now());
                self.log
                    .line("factory reset asked for; waiting for `factory-reset confirm`");
                (factory_reset_warning(self.identity.is_some()), None)
            }
            Command::FactoryReset { confirm: true } => {
                let armed = self.factory_reset_armed.take();
                if armed.is_none_or(|at| at.elapsed() > console::FACTORY_RESET_WINDOW) {
                    (
                        format!(
                            "factory-reset confirm: no factory reset was asked for in the last {} s; type `factory-reset` first (it says what is erased)\n",
                            console::FACTORY_RESET_WINDOW.as_secs()
                        ),
                        None,
                    )
                } else {
                    match self.factory_reset() {
                        Ok(what) => (what, Some(self.end(PowerAction::Reboot))),
                        Err(error) => (error, None),
                    }
                }
            }
            Command::FirmwareInstall(path) => {
                let facts = self.install_facts();
                self.firmware.install(
                    path,
                    facts,
                    &self.log,
                    Box::new(move |text| reply.send(text)),
                );
                return None;
            }
            Command::PairInstallPartner { path, reboot } => {
                let Some(service) = self.pair_service.clone() else {
                    reply.send("pair: the pair service is not running\n".to_owned());
                    return None;
                };
                let log = self.log.clone();
                tokio::spawn(async move {
                    let read = tokio::task::spawn_blocking(move || {
                        crate::firmware_upgrade::read_bundle(&path).map(|bytes| (path, bytes))
                    })
                    .await;
                    let text = match read {
                        Ok(Ok((path, bytes))) => {
                            let len = bytes.len();
                            match service.send_firmware(bytes, reboot).await {
                                Ok(text) => format!(
                                    "pair: install-partner: sent {path} ({len} bytes); the partner \
                                     answered:\n{}",
                                    indent_partner(&text)
                                ),
                                Err(error) => {
                                    if let SendFirmwareError::Refused(_) = error {
                                        log.line(format!("pair: install-partner {path}: {error}"));
                                    }
                                    format!("pair: install-partner: {error}\n")
                                }
                            }
                        }
                        Ok(Err(refusal)) => format!("pair: install-partner: {refusal}\n"),
                        Err(_) => "pair: install-partner: the file read stopped\n".to_owned(),
                    };
                    reply.send(text);
                });
                return None;
            }
            Command::FirmwareFetch(url) => {
                let facts = self.install_facts();
                self.firmware.fetch(
                    url,
                    facts,
                    &self.log,
                    Box::new(move |text| reply.send(text)),
                );
                return None;
            }
            Command::Reboot => {
                self.log.line("reboot requested");
                (
                    "rebooting\n".to_owned(),
                    Some(self.end(PowerAction::Reboot)),
                )
            }
            Command::DebugPanic if self.debug_commands => {
                self.log.line("debug panic requested");
                panic!("deliberate panic requested with `debug panic`");
            }
            Command::DebugPanic => (
                "debug commands are not enabled on this box\n".to_owned(),
                None,
            ),
            Command::DebugLog(count) if self.debug_commands => {
                let began = std::time::Instant::now();
                for n in 1..=count {
                    self.log.at(
                        crate::logring::Severity::Debug,
                        format!("debug: line {n} of {count}"),
                    );
                }
                (
                    format!(
                        "debug: logged {count} lines in {:.1} ms\n",
                        began.elapsed().as_secs_f64() * 1e3
                    ),
                    None,
                )
            }
            Command::DebugLog(_) => (
                "debug commands are not enabled on this box\n".to_owned(),
                None,
            ),
            // Config commands were handled before.
            _ => (String::new(), None),
        };
        reply.send(text);
        exit
    }

    /// Handles the config transaction commands; gives the reply back for any other command.
    fn on_config_command(&mut self, command: &Command, reply: Reply) -> Option<Reply> {
        let text = match command {
            Command::ShowRunning => toml_text(self.transactions.running()),
            Command::ShowCandidate => toml_text(self.transactions.candidate()),
            Command::Browse(path) => {
                match tandem_config::edit::browse(self.transactions.candidate(), path) {
                    Ok(entries) => {
                        let mut text = String::new();
                        for entry in entries {
                            text.push_str(&format!(
                                "browse: {}\t{}\t{}\n",
                                entry.segment,
                                entry.kind.word(),
                                entry.shown
                            ));
                        }
                        text.push_str("browse: end\n");
                        text
                    }
                    Err(error) => format!("browse: {error}\n"),
                }
            }
            Command::Load(path) => match read_config_file(path) {
                Ok(config) => {
                    let report = self.transactions.load(config);
                    let mut text = format!("load: {path} is the candidate now");
                    if report.is_empty() {
                        text.push_str("; it validates\n");
                    } else {
                        text.push_str(":\n");
                        for line in report {
                            text.push_str(&format!("  {line}\n"));
                        }
                    }
                    text
                }
                Err(error) => format!("load: {error}; the candidate is unchanged\n"),
            },
            Command::Set { path, value } => match self.transactions.set(path, value) {
                Ok(()) => format!("set: {path} (candidate; `compare`, `preview`, `commit`)\n"),
                Err(error) => format!("set: {error}\n"),
            },
            Command::Delete(path) => match self.transactions.delete(path) {
                Ok(()) => format!("delete: {path} (candidate; `compare`, `preview`, `commit`)\n"),
                Err(error) => format!("delete: {error}\n"),
            },
            Command::Discard => {
                self.transactions.discard();
                "discard: the candidate is the running config again\n".to_owned()
            }
            Command::Compare => {
                let lines = self.transactions.compare();
                if lines.is_empty() {
                    "compare: no changes\n".to_owned()
                } else {
                    lines.iter().map(|l| format!("{l}\n")).collect()
                }
            }
            Command::Preview => {
                self.follow_write_format();
                let preview = self.transactions.preview();
                let mut text: String = if preview.changes.is_empty() {
                    "preview: no changes\n".to_owned()
                } else {
                    preview
                        .changes
                        .iter()
                        .map(|change| format!("preview: {change}\n"))
                        .collect()
                };
                if let Err(error) = self.transactions.candidate_fits() {
                    text.push_str(&format!("preview: a commit is refused: {error}\n"));
                }
                text
            }
            Command::Commit { confirm, comment } => {
                self.follow_write_format();
                let request = CommitRequest {
                    confirm: *confirm,
                    comment: comment.clone(),
                    origin: reply.origin(),
                };
                let old = Arc::clone(self.transactions.running());
                match self.transactions.commit(
                    &request,
                    transaction::unix_now(),
                    std::time::Instant::now(),
                ) {
                    Ok(committed) => {
                        let note = match (confirm, committed.confirmed) {
                            (Some(seconds), _) => Some(format!(
                                "commit: unless `confirm` arrives within {} s, generation {} is \
                                 rolled back\n",
                                seconds.as_secs(),
                                committed.generation
                            )),
                            (None, Some(earlier)) => {
                                Some(format!("commit: this also confirms generation {earlier}\n"))
                            }
                            (None, None) => None,
                        };
                        self.apply(old, committed, "commit", note, reply);
                        return None;
                    }
                    Err(error) => format!("commit: {error}\n"),
                }
            }
            Command::Confirm => match self.transactions.confirm() {
                Ok(generation) => {
                    self.log
                        .line(format!("config: generation {generation} confirmed"));
                    format!("confirm: generation {generation} stays\n")
                }
                Err(error) => format!("confirm: {error}\n"),
            },
            Command::Rollback(generation) => {
                self.follow_write_format();
                let old = Arc::clone(self.transactions.running());
                match self.transactions.rollback(
                    *generation,
                    reply.origin(),
                    transaction::unix_now(),
                ) {
                    Ok(committed) => {
                        self.apply(old, committed, "rollback", None, reply);
                        return None;
                    }
                    Err(error) => format!("rollback: {error}\n"),
                }
            }
            Command::History => transaction::render_history(
                self.transactions.history(),
                self.transactions.generation(),
            ),
            _ => return Some(reply),
        };
        reply.send(text);
        None
    }

    /// The confirm window of a `commit --confirm` passed without `confirm`.
    fn on_confirm_timeout(&mut self) {
        let Some(pending) = self.transactions.pending().cloned() else {
            return;
        };
        let old = Arc::clone(self.transactions.running());
        match self.transactions.confirm_timed_out(transaction::unix_now()) {
            Ok(committed) => {
                self.log.line(format!(
                    "config: generation {} was not confirmed in time; rolling back to the \
                     config of generation {} as generation {}",
                    pending.generation, pending.restore_generation, committed.generation
                ));
                self.apply(old, committed, "confirm timeout", None, Reply::Nobody);
            }
            Err(error) => self.log.line(format!(
                "config: generation {} was not confirmed in time, but the rollback failed: \
                 {error}; the unconfirmed config keeps running",
                pending.generation
            )),
        }
    }

    /// Hands a persisted generation to the engines; the client hears back when they reported.
    fn apply(
        &mut self,
        old: Arc<tandem_config::Config>,
        committed: Committed,
        what: &'static str,
        note: Option<String>,
        reply: Reply,
    ) {
        let generation = committed.generation;
        // The partner hears of it at once (and gets it pushed when it is behind).
        self.publish_pair();
        // A big config can carry hundreds of warnings; the log (and the serial console behind
        // it) gets the first few and a count, `check`/`load` list them all.
        for warning in committed.warnings.iter().take(WARNINGS_LOGGED) {
            self.log.line(format!("config: {warning}"));
        }
        if committed.warnings.len() > WARNINGS_LOGGED {
            self.log.line(format!(
                "config: {} more warnings not logged; `load` or `tandem config check` lists them all",
                committed.warnings.len() - WARNINGS_LOGGED
            ));
        }
        let mut text = format!("{what}: generation {generation} persisted\n");
        if let (Some(service), Some(_), "commit" | "rollback") =
            (&self.pair_service, &self.identity, what)
        {
            text.push_str(&if service.partner_heard() {
                format!("{what}: pushing generation {generation} to the partner\n")
            } else {
                format!(
                    "{what}: partner behind: the partner is not heard on the peer cable; it \
                     gets generation {generation} when it is back\n"
                )
            });
        }
        for change in &committed.preview.changes {
            text.push_str(&format!("{what}: {change}\n"));
        }
        text.extend(note);
        let Some(context) = self.context.clone() else {
            text.push_str(&format!(
                "{what}: not applied: no netlink connection on this box; restart to apply\n"
            ));
            reply.send(text);
            return;
        };
        // A stored config that failed validation at boot was never applied: start from nothing.
        let old = if self.applied {
            old
        } else {
            Arc::new(tandem_config::Config::default())
        };
        self.applied = true;
        self.follow_management();
        context
            .pair
            .set_generation(generation, self.transactions.digest());
        let old = self.effective(&old);
        let new = self.effective(&committed.config);
        let peer = crate::peer_channel::reconcile(&context.peer, &new, self.pairing(), &self.log);
        let work = crate::engine::plan_apply(&mut self.engines, old, new, &context);
        let log = self.log.clone();
        log.line(format!("config: {what}: generation {generation} applying"));
        tokio::spawn(async move {
            let began = std::time::Instant::now();
            let mut report: Vec<String> = peer.into_iter().collect();
            report.extend(work.await);
            for line in &report {
                log.line(format!("config: {line}"));
            }
            log.line(format!(
                "config: {what}: generation {generation} applied in {:.1} ms",
                began.elapsed().as_secs_f64() * 1e3
            ));
            for line in &report {
                text.push_str(&format!("{what}: applied: {line}\n"));
            }
            text.push_str(&format!("{what}: generation {generation} applied\n"));
            reply.send(text);
        });
    }

    fn on_tick(&mut self, probe: &mut Option<JoinHandle<ProbeResult>>) {
        if self.upgrade.running() {
            let facts = self.upgrade_facts();
            let now = std::time::Instant::now();
            if let Some(step) = self.upgrade.tick(now, &facts) {
                // Only the hand-over comes from a tick; a reboot never does.
                let _ = self.upgrade_do(step);
            } else if !self.upgrade.running() {
                let error = self.upgrade.last_error().unwrap_or_default().to_owned();
                self.log.line(format!("pair upgrade: failed: {error}"));
                self.upgrade_bundle = None;
            }
        }
        if let Some(why) = self.firmware.test_hang() {
            // Lab only (`tandem.test_hang=TRY`): a hang, not a crash. The event loop stops here
            // for good: no watchdog pets, no answers; the hardware watchdog resets the box.
            self.log.line(why);
            loop {
                std::thread::park();
            }
        }
        if self.firmware.wants_health() {
            let health = self.firmware_health();
            self.firmware
                .tick(std::time::Instant::now(), &health, &self.log);
        }
        self.follow_write_format();
        if let Some(watchdog) = &mut self.watchdog {
            let _ = watchdog.write_all(b"\0");
        }
        if self.links.is_none() {
            let sys_class_net = Path::new("/sys/class/net");
            let now: Vec<Option<bool>> = self
                .carriers
                .iter()
                .map(|(name, _)| sysfs::carrier(sys_class_net, name))
                .collect();
            self.on_carriers(&now, true);
        }
        if probe.is_none() {
            *probe = self.start_probe();
        }
    }

    /// A new link table: board NICs' carrier changes are logged. Engines follow the same table
    /// themselves (`EngineContext::links`); tracking events go to them from here only when
    /// the daemon polls (no notifications).
    fn on_links(&mut self, table: &LinkTable) {
        let now: Vec<Option<bool>> = self
            .carriers
            .iter()
            .map(|(name, _)| {
                table
                    .get(name)
                    .and_then(|state| state.admin_up.then_some(state.carrier))
            })
            .collect();
        self.on_carriers(&now, false);
        self.on_bond_links(table);
    }

    /// Logs a configured bond's carrier changes and failovers, with the cause: the active port
    /// the kernel chose and what happened to the one before (read from the kernel off the
    /// loop).
    fn on_bond_links(&mut self, table: &LinkTable) {
        let running = Arc::clone(self.transactions.running());
        for bond in running.bonds.iter() {
            let name = bond.name.as_str();
            let Some(state) = table.get(name) else {
                self.bonds_seen.remove(name);
                continue;
            };
            let now = (state.carrier && state.admin_up, state.failovers);
            let Some(before) = self.bonds_seen.insert(name.to_owned(), now) else {
                // First seen: learn its active port, so the first failover can name the cause.
                let (known, name) = (Arc::clone(&self.bond_active), name.to_owned());
                tokio::spawn(async move { crate::bonds::failover_line(&name, &known).await });
                continue;
            };
            if now.0 != before.0 {
                self.log.line(if now.0 {
                    format!("bond {name}: carrier up")
                } else {
                    format!(
                        "bond {name}: carrier down: no port has link{}",
                        if bond.min_links > 1 {
                            format!(" or fewer than min_links {}", bond.min_links)
                        } else {
                            String::new()
                        }
                    )
                });
            }
            if now.1 != before.1 {
                let (log, known, name) = (
                    self.log.clone(),
                    Arc::clone(&self.bond_active),
                    name.to_owned(),
                );
                tokio::spawn(async move {
                    log.line(crate::bonds::failover_line(&name, &known).await);
                });
            }
        }
    }

    /// Logs board NICs' carrier changes; `track` also tells the engines (polling mode).
    fn on_carriers(&mut self, now: &[Option<bool>], track: bool) {
        for ((name, last), now) in self.carriers.iter_mut().zip(now.iter().copied()) {
            if now != *last {
                let text = match now {
                    Some(true) => "carrier up",
                    Some(false) => "carrier down (cable pulled or partner port off)",
                    None => "link down",
                };
                if last.is_some() || now != Some(true) {
                    self.log.line(format!("link {name}: {text}"));
                }
                if track {
                    for engine in &self.engines {
                        engine.track(name, now == Some(true));
                    }
                }
                *last = now;
            }
        }
    }

    fn start_probe(&mut self) -> Option<JoinHandle<ProbeResult>> {
        let ifname = self.roles.nic_for(NicRole::Peer)?.to_owned();
        let ifindex = sysfs::ifindex(Path::new("/sys/class/net"), &ifname)?;
        self.probe_sequence = self.probe_sequence.wrapping_add(1);
        let sequence = self.probe_sequence;
        let identifier = u16::try_from(std::process::id() & 0xffff).unwrap_or(1);
        Some(tokio::task::spawn_blocking(move || {
            probe::echo_all_nodes(&ifname, ifindex, identifier, sequence, PROBE_TIMEOUT)
        }))
    }

    fn on_probe_result(&mut self, result: ProbeResult) {
        let answer = match result {
            Ok(reply) => reply.map(|r| (r.from, r.rtt)),
            Err(error) => {
                self.log.line(format!("peer: probe failed: {error}"));
                None
            }
        };
        match self.peer.on_probe(answer) {
            Some(PeerEvent::Reachable { from, rtt }) => self.log.line(format!(
                "peer: reachable from {from} (rtt {:.1} ms)",
                rtt.as_secs_f64() * 1e3
            )),
            Some(PeerEvent::Unreachable { misses }) => self.log.line(format!(
                "peer: unreachable ({misses} probes unanswered on the peer port)"
            )),
            None => {}
        }
    }

    /// The management plane's `status:` facts: the metrics endpoint, each remote syslog
    /// server, the time.
    fn management_status(&self) -> String {
        let mut facts = Vec::new();
        if let Some(metrics) = &self.metrics {
            facts.push(metrics.listening().status_line());
        }
        if let Some(syslog) = &self.syslog {
            facts.extend(syslog.status_lines());
        }
        if let Some(time) = &self.time {
            facts.push(time.status_line());
        }
        facts
            .iter()
            .map(|fact| format!("status: {fact}\n"))
            .collect()
    }

    /// Sets the running firmware (the appliance, at boot): `status`, `firmware status`, bless.
    pub fn set_firmware(&mut self, firmware: crate::firmware_slot::Firmware) {
        self.firmware = firmware;
        self.follow_write_format();
        // The partner learns the version and slot from it (FIRMWARE).
        self.publish_pair();
    }

    /// Decides the config format this box writes (see `config_format`) from the store's
    /// format at boot, the slot's trial and the partner's firmware; a change goes to the
    /// transactions (the next write uses it), the log and the pair service (the partner's
    /// blob is framed in it).
    fn follow_write_format(&mut self) {
        use crate::config_format::{Facts, WriteFormat};
        let partner_reads = match (&self.identity, &self.pair_service) {
            (Some(_), Some(service)) => service.partner_firmware().map(|f| f.blob_format),
            _ => None,
        };
        let decided = WriteFormat::decide(Facts {
            stored_at_boot: self.transactions.stored_format(),
            on_trial: self.firmware.on_trial(),
            partner_reads,
        });
        if self.write_format == Some(decided) {
            return;
        }
        let first = self.write_format.is_none();
        self.write_format = Some(decided);
        if let Err(error) = self.transactions.set_write_format(decided.format) {
            self.log.line(format!("config: {error}"));
            return;
        }
        let newest = decided.format == tandem_config::blob::FORMAT_VERSION;
        if !(first && newest) {
            self.log.line(format!(
                "config format: {}{}",
                decided.describe(),
                if newest {
                    " from the next commit on"
                } else {
                    ""
                }
            ));
        }
        if !first {
            self.publish_pair();
        }
    }

    /// What a firmware bundle is checked against: the board, and the partner when paired.
    /// What `pair upgrade` decides on, read now.
    fn upgrade_facts(&self) -> crate::pair_upgrade::Facts {
        use crate::pair_upgrade::{Facts, PartnerSlot};
        use tandem_wire::replication::SlotName;
        let partner_masters = self
            .context
            .as_ref()
            .map_or_else(Vec::new, |c| c.pair.partner_masters());
        let partner = self
            .pair_service
            .as_ref()
            .and_then(PairHandle::partner_firmware)
            .and_then(|p| {
                let slot = p.slot?;
                Some(PartnerSlot {
                    version: p.version?,
                    slot: match slot.slot {
                        SlotName::A => 'a',
                        SlotName::B => 'b',
                    },
                    blessed: slot.blessed,
                })
            });
        Facts {
            paired: self.identity.is_some(),
            partner_heard: self
                .pair_service
                .as_ref()
                .is_some_and(PairHandle::partner_heard),
            configs_in_sync: self.pair_service.as_ref().is_some_and(PairHandle::in_sync),
            here_blessed: self.firmware.peer_facts().1.map(|s| s.blessed),
            partner,
            partner_masters,
        }
    }

    /// An outcome of a `pair upgrade` step; the next step is started from here.
    fn on_upgrade_event(&mut self, event: UpgradeEvent) -> Option<Exit> {
        let now = std::time::Instant::now();
        let next = match event {
            UpgradeEvent::Checked { checked, reply } => {
                let (bytes, version) = match checked {
                    Ok(checked) => checked,
                    Err(text) => {
                        reply.send(format!("pair upgrade: not started: {}", text));
                        return None;
                    }
                };
                let facts = self.upgrade_facts();
                match self.upgrade.start(now, &facts, version) {
                    Ok(next) => {
                        let line = format!(
                            "pair upgrade: to {version}: the partner first (bundle of {} bytes \
                             sent over the peer cable, it reboots into it), then this box hands \
                             over and follows; `pair upgrade status` follows it",
                            bytes.len()
                        );
                        self.log.line(line.clone());
                        reply.send(format!("{line}\n"));
                        self.upgrade_bundle = Some(Arc::new(bytes));
                        Some(next)
                    }
                    Err(refusal) => {
                        let line = format!("pair upgrade: refused: {refusal}");
                        self.log.line(line.clone());
                        reply.send(format!("{line}\n"));
                        None
                    }
                }
            }
            UpgradeEvent::Sent {
                result,
                partner_slot,
            } => {
                match &result {
                    Ok(_) => self.log.line(
                        "pair upgrade: the partner installed the bundle and reboots; waiting for \
                         it to come back blessed",
                    ),
                    Err(why) => self.log.line(format!("pair upgrade: failed: {why}")),
                }
                self.upgrade.sent(now, result, partner_slot);
                None
            }
            UpgradeEvent::Standby(result) => self.upgrade.standby_done(now, result),
            UpgradeEvent::Installed(result) => {
                if let Err(why) = &result {
                    self.log.line(format!(
                        "pair upgrade: the install here failed: {}",
                        why.trim_end()
                    ));
                }
                self.upgrade.installed(now, result)
            }
        };
        if self.upgrade.last_error().is_some() && !self.upgrade.running() {
            self.upgrade_bundle = None;
        }
        next.and_then(|step| self.upgrade_do(step))
    }

    /// Runs one `pair upgrade` step off the loop; its outcome comes back as an [`UpgradeEvent`].
    fn upgrade_do(&mut self, step: crate::pair_upgrade::Do) -> Option<Exit> {
        use crate::pair_upgrade::Do;
        let events = self.upgrade_tx.clone();
        let vrrp = self.engines.iter().find(|e| e.name == "vrrp").cloned();
        match step {
            Do::SendBundle => {
                let (Some(service), Some(bundle)) =
                    (self.pair_service.clone(), self.upgrade_bundle.clone())
                else {
                    let _ = events.try_send(UpgradeEvent::Sent {
                        result: Err("the pair service is not running".into()),
                        partner_slot: '-',
                    });
                    return None;
                };
                let partner_slot = self.upgrade_facts().partner.map_or('-', |p| p.slot);
                tokio::spawn(async move {
                    let result = service
                        .send_firmware(bundle.as_ref().clone(), true)
                        .await
                        .map_err(|e| e.to_string());
                    let _ = events
                        .send(UpgradeEvent::Sent {
                            result,
                            partner_slot,
                        })
                        .await;
                });
            }
            Do::StandbyOn => {
                self.log.line(
                    "pair upgrade: the partner is back blessed; handing over (vrrp standby on)",
                );
                tokio::spawn(async move {
                    let result = match vrrp {
                        None => Ok(()),
                        Some(engine) => {
                            let text = engine.standby(true).await;
                            if text.starts_with("vrrp standby: on") || text.contains("already on") {
                                Ok(())
                            } else {
                                Err(text.trim_end().to_owned())
                            }
                        }
                    };
                    let _ = events.send(UpgradeEvent::Standby(result)).await;
                });
            }
            Do::InstallHere => {
                let Some(bundle) = self.upgrade_bundle.clone() else {
                    let _ = events.try_send(UpgradeEvent::Installed(Err(
                        "the checked bundle is gone".into(),
                    )));
                    return None;
                };
                let facts = self.install_facts();
                self.firmware.install_in_memory(
                    bundle.as_ref().clone(),
                    "the pair upgrade's bundle",
                    facts,
                    &self.log,
                    Box::new(move |installed| {
                        let result = if installed.installed {
                            Ok(installed.text)
                        } else {
                            Err(installed.text)
                        };
                        let _ = events.try_send(UpgradeEvent::Installed(result));
                    }),
                );
            }
            Do::StandbyOff => {
                if let Some(engine) = vrrp {
                    tokio::spawn(async move {
                        engine.standby(false).await;
                    });
                }
            }
            Do::Reboot => {
                self.upgrade_bundle = None;
                self.log
                    .line("pair upgrade: installed here; rebooting into the new slot");
                return Some(self.end(PowerAction::Reboot));
            }
        }
        None
    }

    fn install_facts(&self) -> crate::firmware_slot::InstallFacts {
        crate::firmware_slot::InstallFacts {
            board: self.board.map(|b| b.name),
            paired: self.identity.is_some(),
            partner: self
                .pair_service
                .as_ref()
                .and_then(PairHandle::partner_firmware),
        }
    }

    /// Whether this box is healthy enough to bless the slot it runs on trial: the stored config
    /// (if any) passed validation and went to the engines, and a paired box hears its partner
    /// on the peer cable.
    fn firmware_health(&self) -> crate::firmware_slot::BlessHealth {
        let mut health = crate::firmware_slot::BlessHealth {
            config_unapplied: self.transactions.generation() > 0 && !self.applied,
            partner_unreachable: self.identity.is_some()
                && !matches!(self.peer.state(), PeerState::Reachable { .. }),
            ..Default::default()
        };
        if !self.applied {
            return health;
        }
        let config = self.effective(self.transactions.running());
        // The link monitor's table when there is one; sysfs otherwise (polling mode).
        let table = self.links.as_ref().map(|links| Arc::clone(&links.borrow()));
        let sys_class_net = Path::new("/sys/class/net");
        for interface in config.interfaces.iter() {
            let name = interface.name.as_str();
            let up = match &table {
                Some(table) => table
                    .get(name)
                    .is_some_and(|link| link.admin_up && link.carrier),
                None => {
                    sysfs::admin_up(sys_class_net, name) == Some(true)
                        && sysfs::carrier(sys_class_net, name) == Some(true)
                }
            };
            if !up {
                health.links_without_carrier.push(name.to_owned());
            }
        }
        for wanted in crate::engine::wanted_names(&config) {
            let running = self
                .engines
                .iter()
                .any(|engine| engine.name == wanted && !engine.requests.is_closed());
            if !running {
                health.engines_not_running.push(wanted.to_owned());
            }
        }
        health
    }

    /// The status block: one `status:` line per fact, ending with `status: end`.
    pub fn status_text(&self) -> String {
        let mut text = format!(
            "status: name={} board={} ready={:.3}\n",
            self.name,
            self.board.map_or("-", |b| b.name),
            self.ready_seconds
        );
        text.push_str(&self.firmware.status_line());
        let sys_class_net = Path::new("/sys/class/net");
        for (role, name) in &self.roles.assigned {
            // Admin state from the IFF_UP flag: operstate lags behind it by the kernel's
            // linkwatch delay, which under emulation can be seconds.
            let state = match sysfs::admin_up(sys_class_net, name) {
                Some(true) => "up",
                Some(false) => "down",
                None => "absent",
            };
            let carrier = match sysfs::carrier(sys_class_net, name) {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            };
            text.push_str(&format!(
                "status: nic {role} {name} {state} carrier={carrier}\n"
            ));
        }
        if self.roles.nic_for(NicRole::Peer).is_some() {
            text.push_str(&match self.peer.state() {
                PeerState::Unknown => "status: peer unknown\n".to_owned(),
                PeerState::Reachable { from, rtt } => format!(
                    "status: peer reachable {from} rtt={:.1}ms\n",
                    rtt.as_secs_f64() * 1e3
                ),
                PeerState::Unreachable { misses } => {
                    format!("status: peer unreachable misses={misses}\n")
                }
            });
        } else {
            text.push_str("status: peer none\n");
        }
        if let Some(context) = &self.context {
            text.push_str(&context.pair.summary_line());
        }
        let transactions = &self.transactions;
        text.push_str(&format!(
            "status: config generation={} candidate={}{}\n",
            transactions.generation(),
            if transactions.has_changes() {
                "changed"
            } else {
                "clean"
            },
            transactions
                .pending()
                .map_or(String::new(), |pending| format!(
                    " confirm-pending={} in {:.0}s",
                    pending.generation,
                    pending
                        .deadline
                        .saturating_duration_since(std::time::Instant::now())
                        .as_secs_f64()
                ))
        ));
        if let Some(format) = &self.write_format {
            text.push_str(&format!("status: config format: {}\n", format.describe()));
        }
        text.push_str(&self.management_status());
        let dropped = crate::console_writer::console().dropped();
        let noise = &self.console_noise;
        text.push_str(&format!(
            "status: console lines discarded too-long={} control-chars={} unknown={}; output dropped {} messages ({} bytes); control requests refused {}\n",
            noise.too_long,
            noise.control,
            noise.unknown,
            dropped.messages,
            dropped.bytes,
            crate::control::discarded()
        ));
        text.push_str("status: end\n");
        text
    }
}

/// Receives from a channel; a closed channel (`None`) waits forever instead of spinning.
/// The outcome of a `pair upgrade` step, run off the loop.
enum UpgradeEvent {
    /// The bundle read and checked here (bytes, version), with the command's reply.
    Checked {
        checked: Result<(Vec<u8>, tandem_board::bundle::Version), String>,
        reply: Reply,
    },
    /// The partner's answer to the bundle, and the slot it ran when it was sent.
    Sent {
        result: Result<String, String>,
        partner_slot: char,
    },
    /// `vrrp standby on` done (or why not).
    Standby(Result<(), String>),
    /// The install here done (its text, or the refusal).
    Installed(Result<String, String>),
}

async fn recv_or_pending<R: Receive>(channel: &mut Option<R>) -> Option<R::Item> {
    match channel {
        Some(receiver) => receiver.receive().await,
        None => std::future::pending().await,
    }
}

/// The two kinds of tokio receiver the loop reads.
trait Receive {
    type Item;
    async fn receive(&mut self) -> Option<Self::Item>;
}

impl<T> Receive for mpsc::Receiver<T> {
    type Item = T;
    async fn receive(&mut self) -> Option<T> {
        self.recv().await
    }
}

impl<T> Receive for mpsc::UnboundedReceiver<T> {
    type Item = T;
    async fn receive(&mut self) -> Option<T> {
        self.recv().await
    }
}

async fn wait_probe(probe: &mut Option<JoinHandle<ProbeResult>>) -> ProbeResult {
    match probe {
        Some(handle) => handle
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string()))),
        None => std::future::pending().await,
    }
}

/// The next link table; None when the monitor is gone; without a monitor, forever.
async fn links_changed(links: &mut Option<LinkWatch>) -> Option<Arc<LinkTable>> {
    match links {
        Some(receiver) => match receiver.changed().await {
            Ok(()) => Some(Arc::clone(&receiver.borrow_and_update())),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

/// Sleeps until a confirm deadline; without one, forever.
async fn confirm_deadline(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

fn toml_text(config: &tandem_config::Config) -> String {
    match tandem_config::text::to_toml(config) {
        Ok(text) if text.ends_with('\n') => text,
        Ok(text) => format!("{text}\n"),
        Err(error) => format!("error: the config does not render as TOML: {error}\n"),
    }
}

/// Reads a config file (blob by magic, else TOML) without validating it.
fn read_config_file(path: &str) -> Result<tandem_config::Config, String> {
    const MAX_FILE: u64 = 16 << 20;
    let file = File::open(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_FILE + 1), &mut bytes)
        .map_err(|e| format!("cannot read {path}: {e}"))?;
    if u64::try_from(bytes.len()).map_or(true, |len| len > MAX_FILE) {
        return Err(format!("{path} is larger than {MAX_FILE} bytes"));
    }
    if tandem_config::text::is_blob(&bytes) {
        return tandem_config::blob::decode(&bytes, tandem_config::MacPolicy::Inspect, None)
            .map(|decoded| decoded.config)
            .map_err(|e| format!("{path}: {e}"));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| format!("{path} is neither UTF-8 TOML text nor a config blob"))?;
    tandem_config::text::from_toml(text).map_err(|e| format!("{path}: {e}"))
}

/// The partner's answer, each line marked as the partner's.
fn indent_partner(text: &str) -> String {
    text.lines()
        .map(|line| format!("partner: {line}\n"))
        .collect()
}
