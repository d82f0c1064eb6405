//! The pair service's task: the UDP socket and TCP listener on the peer NIC, the pairing state
//! machines (`tandem_pair`), what this box knows of its partner's config, and the transfers.
//!
//! Replication rule, decided here from the partner's STATE: the partner runs this box's
//! config (in sync), or a config in this box's history (it is behind: this box pushes, at
//! once after a commit and again at most every [`PUSH_RETRY`] until it is in sync), or
//! neither. When neither box finds the other's config in its own history the configs
//! diverged: both consoles say so once, `pair status` keeps saying so, nothing is overwritten
//! until an operator runs `pair adopt-peer` or `pair push`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_board::bundle::Version;
use tandem_config::identity::PairIdentity;
use tandem_config::model::Role as ConfigRole;
use tandem_pair::{BoxFacts, Joiner, PairingCode, Role as WireRole, StartGate, Starter, Versions};
use tandem_southbound::peer_socket::{is_link_local, PeerSocket, PEER_HOP_LIMIT};
use tandem_southbound::sysfs;
use tandem_wire::keyed::KeyPolicy;
use tandem_wire::replication::{
    self, BundleRepr, ChallengeRepr, FirmwareRepr, Kind, Message, Outcome, PairRole, PushRepr,
    Relation, ResultRepr, RunningSlot, StateRepr, FRAME_PREFIX_LEN, HEADER_LEN, NONCE_LEN,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

use super::seal::{self, Direction};
use super::{AdoptAnswer, Ask, LocalState, PartnerDelta, ToDaemon, PAIR_PORT, STATE_PERIOD};
use crate::logring::Log;

/// A push of the same config to the same partner is retried after this long.
const PUSH_RETRY: Duration = Duration::from_secs(1);
/// The partner counts as unreachable after this long without a STATE.
const PARTNER_QUIET: Duration = Duration::from_secs(2);
/// How long a transfer may take end to end (the partner applies before it answers; a
/// 1000 x 10 config under emulation takes seconds).
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a firmware bundle's transfer, checks and install may take end to end (12 MB
/// over the cable, a signature over all of it and the slot write, under emulation).
const FIRMWARE_TIMEOUT: Duration = Duration::from_secs(180);
/// Reopen delay when the peer NIC is missing.
const REOPEN_DELAY: Duration = Duration::from_secs(2);
const SYS_CLASS_NET: &str = "/sys/class/net";
/// Largest UDP datagram read (pairing and STATE are far smaller).
const DATAGRAM_BUFFER: usize = 2048;
/// How many of the partner's sessions (boots) the replay window remembers: a STATE captured
/// in any of them and played back later is refused, not only one from the current session.
const REMEMBERED_SESSIONS: usize = 8;

/// The highest STATE sequence heard in each of the partner's last few sessions, newest
/// last. A STATE whose session is here and whose sequence is not above its mark is a replay.
#[derive(Default)]
struct ReplayWindow {
    sessions: std::collections::VecDeque<(u64, u64)>,
}

impl ReplayWindow {
    /// Records `sequence` in `session`; false when it was heard before (a replay).
    fn accept(&mut self, session: u64, sequence: u64) -> bool {
        if let Some(at) = self.sessions.iter().position(|(s, _)| *s == session) {
            let Some((_, high)) = self.sessions.remove(at) else {
                return false;
            };
            self.sessions.push_back((session, high.max(sequence)));
            return sequence > high;
        }
        if self.sessions.len() == REMEMBERED_SESSIONS {
            self.sessions.pop_front();
        }
        self.sessions.push_back((session, sequence));
        true
    }
}

/// The daemon's end of the service.
#[derive(Debug, Clone)]
pub struct PairHandle {
    asks: mpsc::Sender<(Ask, oneshot::Sender<String>)>,
    state: Arc<watch::Sender<LocalState>>,
    /// When the partner was last heard, in ms since `epoch` + 1 (0: never; kept by the service).
    partner_heard: Arc<AtomicU64>,
    epoch: Instant,
    counters: Arc<std::sync::Mutex<Counters>>,
    /// What the partner's firmware last said of itself (see [`PartnerFirmware`]).
    partner_firmware: Arc<std::sync::Mutex<Option<PartnerFirmware>>>,
    /// Bundles for the partner (`send_firmware`).
    bundles: mpsc::Sender<BundleJob>,
}

/// The partner firmware's newest config blob format and replication channel version, as its
/// last STATE said, and its version and slot as its last FIRMWARE said (channel 4)
/// (`firmware install` checks a bundle against them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartnerFirmware {
    pub blob_format: u16,
    pub channel_version: u8,
    /// The partner's firmware version; None when it does not tell it (channel 3 firmware,
    /// or no FIRMWARE heard yet) or it is not `x.y.z[-suffix]`.
    pub version: Option<Version>,
    /// The slot it booted from and whether it is blessed (None: not a slot image, or not told).
    pub slot: Option<RunningSlot>,
}

/// Why a bundle did not reach the partner's other slot ([`PairHandle::send_firmware`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFirmwareError {
    /// This box is not paired.
    NotPaired,
    /// No STATE from the partner in the last two seconds.
    PartnerNotHeard,
    /// The partner's firmware speaks a channel without BUNDLE.
    PartnerTooOld { channel: u8 },
    /// The partner checked the bundle and refused it (its reason), or its write failed.
    Refused(String),
    /// The partner runs another firmware job (install, fetch, bless, another bundle).
    Busy(String),
    /// The bundle did not get there or no answer came back.
    Transfer(String),
    /// The pair service is not running.
    Stopped,
}

impl std::fmt::Display for SendFirmwareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendFirmwareError::NotPaired => f.write_str(
                "this box is not paired: pair it first (`pair start` here, `pair join CODE` on \
                 the other box), or install on the other box with `firmware install`",
            ),
            SendFirmwareError::PartnerNotHeard => f.write_str(
                "the partner is not heard on the peer cable: check the cable and that the \
                 partner runs",
            ),
            SendFirmwareError::PartnerTooOld { channel } => write!(
                f,
                "the partner's firmware speaks replication channel {channel}, which cannot take \
                 a bundle over the cable (channel {} can): install on the partner with \
                 `firmware fetch` / `firmware install` there",
                replication::FIRMWARE_CHANNEL_VERSION
            ),
            SendFirmwareError::Refused(text) => {
                write!(f, "the partner refused the bundle: {}", text.trim_end())
            }
            SendFirmwareError::Busy(text) => write!(
                f,
                "the partner is busy: {}; try again when it is done",
                text.trim_end()
            ),
            SendFirmwareError::Transfer(why) => write!(
                f,
                "the bundle did not reach the partner: {why}; nothing is known to be written \
                 there (`pair status` shows its firmware)"
            ),
            SendFirmwareError::Stopped => {
                f.write_str("the pair service is not running; restart the box")
            }
        }
    }
}

/// A bundle to send to the partner, and where its answer goes.
#[derive(Debug)]
struct BundleJob {
    bundle: Vec<u8>,
    reboot: bool,
    reply: oneshot::Sender<Result<String, SendFirmwareError>>,
}

impl PairHandle {
    /// The partner firmware's formats, once a STATE of it was heard (this boot), and its
    /// version and slot once a FIRMWARE was (channel 4).
    pub fn partner_firmware(&self) -> Option<PartnerFirmware> {
        *self
            .partner_firmware
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends a signed firmware bundle to the partner over the peer cable (after its
    /// CHALLENGE, as BUNDLE). The partner runs `firmware install`'s checks on it (its own
    /// key, its board, its config format, this box's version against the bundle's
    /// `min-partner`) and writes its other slot; `reboot`: it then reboots into it, after
    /// answering. Ok: the partner's text (`firmware: installed 0.2.0 into slot b as
    /// tandem-2-b+3.efi ...`). Never touches the VRRP thread: the pair service's thread
    /// sends, the partner installs on its blocking pool.
    pub async fn send_firmware(
        &self,
        bundle: Vec<u8>,
        reboot: bool,
    ) -> Result<String, SendFirmwareError> {
        let (reply, answer) = oneshot::channel();
        let job = BundleJob {
            bundle,
            reboot,
            reply,
        };
        self.bundles
            .send(job)
            .await
            .map_err(|_| SendFirmwareError::Stopped)?;
        answer.await.unwrap_or(Err(SendFirmwareError::Stopped))
    }

    /// The replication metric families: where it stands (one-hot), STATEs and pushes counted,
    /// refusals by reason.
    pub fn metrics(&self) -> crate::metrics::Families {
        use crate::metrics::{Families, Family, Labels};
        let c = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut families = Families::new();
        families.push(
            Family::gauge(
                "tandem_pair_paired",
                "1 when this box is paired (a pair role and key from `pair start` / `pair join`).",
            )
            .with(c.standing != Standing::Unpaired),
        );
        let mut state = Family::gauge(
            "tandem_pair_replication_state",
            "Config replication with the partner, one-hot: unpaired, partner_not_heard, in_sync, partner_behind, this_box_behind, diverged, comparing.",
        );
        state.add_each(
            &Labels::NONE,
            "state",
            Standing::ALL.map(|s| (s.word(), s == c.standing)),
        );
        families.push(state);
        families.push(
            Family::counter(
                "tandem_pair_replication_states_sent_total",
                "Replication STATE datagrams sent to the partner.",
            )
            .with(c.states_sent),
        );
        families.push(
            Family::counter(
                "tandem_pair_replication_states_received_total",
                "Replication STATE datagrams accepted from the partner.",
            )
            .with(c.states_received),
        );
        let mut pushes = Family::counter(
            "tandem_pair_replication_pushes_total",
            "Config pushes this box made to the partner, by outcome.",
        );
        pushes.add_each(
            &Labels::NONE,
            "outcome",
            [
                ("applied", c.pushes_applied),
                ("refused", c.pushes_refused),
                ("failed", c.pushes_failed),
            ],
        );
        families.push(pushes);
        let mut received = Family::counter(
            "tandem_pair_replication_received_total",
            "Config pushes received from the partner, by outcome.",
        );
        received.add_each(
            &Labels::NONE,
            "outcome",
            [
                ("applied", c.received_applied),
                ("refused", c.received_refused),
            ],
        );
        families.push(received);
        let mut refused = Family::counter(
            "tandem_pair_replication_refused_total",
            "Datagrams and connections the pair service refused, by reason.",
        );
        for (reason, count) in &c.refused {
            refused.add(Labels::of(&[("reason", reason)]), *count);
        }
        families.push(refused);
        families.push(
            Family::counter(
                "tandem_pair_replication_send_errors_total",
                "Datagrams the kernel refused to send on the peer link.",
            )
            .with(c.send_errors),
        );
        families
    }

    /// Publishes this box's side after a change (never blocks).
    pub fn publish(&self, state: LocalState) {
        self.state.send_replace(state);
    }

    /// Whether replication stands in sync: the partner runs this box's config (`pair upgrade`
    /// asks for it).
    pub fn in_sync(&self) -> bool {
        self.counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .standing
            == Standing::InSync
    }

    /// Whether the partner is heard on the peer cable now (a commit then reaches it at once).
    pub fn partner_heard(&self) -> bool {
        match self.partner_heard.load(Ordering::Relaxed) {
            0 => false,
            at => {
                let heard = self.epoch + Duration::from_millis(at - 1);
                heard.elapsed() < PARTNER_QUIET
            }
        }
    }

    /// Hands a console command to the service; the answer comes on the receiver.
    pub fn ask(&self, ask: Ask) -> oneshot::Receiver<String> {
        let (reply, answer) = oneshot::channel();
        if let Err(error) = self.asks.try_send((ask, reply)) {
            let (_, reply) = match error {
                mpsc::error::TrySendError::Full(item) | mpsc::error::TrySendError::Closed(item) => {
                    item
                }
            };
            let _ = reply.send("pair: the pair service is busy or stopped; try again\n".into());
        }
        answer
    }
}

/// Starts the service with this box's side as it is now.
pub fn spawn(initial: LocalState, to_daemon: mpsc::Sender<ToDaemon>, log: Log) -> PairHandle {
    let (asks, ask_rx) = mpsc::channel(8);
    let (bundles, bundle_rx) = mpsc::channel(2);
    let (state, state_rx) = watch::channel(initial);
    let partner_heard = Arc::new(AtomicU64::new(0));
    let service = Service::new(state_rx, to_daemon, Arc::clone(&partner_heard), log.clone());
    let epoch = service.epoch;
    let counters = Arc::clone(&service.counters);
    let partner_firmware = Arc::clone(&service.partner_firmware);
    // A thread and runtime of its own: the daemon's loop does a commit's follow-up work (the
    // engines' apply, the log) before it yields, and a push waiting for that took ~4 ms more
    // after a big commit; a partner's transfer never waits for this box's console either.
    let thread_log = log.clone();
    let spawned = std::thread::Builder::new()
        .name("pair".to_owned())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(service.run(ask_rx, bundle_rx)),
                Err(error) => thread_log.line(format!(
                    "pair: cannot start the pair service's runtime: {error}; this box neither \
                     pairs nor replicates until it restarts"
                )),
            }
        });
    if let Err(error) = spawned {
        log.line(format!(
            "pair: cannot start the pair service's thread: {error}; this box neither pairs nor \
             replicates until it restarts"
        ));
    }
    PairHandle {
        asks,
        state: Arc::new(state),
        partner_heard,
        epoch,
        counters,
        partner_firmware,
        bundles,
    }
}

/// What this box last heard from its partner.
#[derive(Debug, Clone)]
struct Partner {
    address: Ipv6Addr,
    scope: u32,
    role: Option<PairRole>,
    generation: u64,
    digest: u64,
    /// What the partner concluded about this box's config.
    relation_to_us: Relation,
    push_port: u16,
    heard: Instant,
    /// Newest blob format and the channel version the partner's firmware speaks.
    blob_format: u16,
    channel_version: u8,
}

impl Partner {
    /// Why this box cannot replicate with the partner's firmware, if it cannot.
    fn version_skew(&self) -> Option<String> {
        let ours = tandem_config::blob::FORMAT_VERSION;
        if !replication::replicates_with(self.channel_version) {
            return Some(format!(
                "the partner speaks replication channel version {}, this box {} (and {} back \
                 to {}): install the same firmware on both boxes",
                self.channel_version,
                replication::CHANNEL_VERSION,
                replication::CHANNEL_VERSION,
                replication::OLDEST_CHANNEL_VERSION
            ));
        }
        (self.blob_format < ours).then(|| {
            format!(
                "the partner's firmware reads config blob formats up to {}, this box writes {ours}: \
                 upgrade the partner's firmware (nothing is pushed until then)",
                self.blob_format
            )
        })
    }
}

/// The end of a transfer this box started.
#[derive(Debug)]
struct TransferDone {
    what: Transfer,
    result: Result<TransferReply, String>,
    began: Instant,
    /// The console command waiting for it.
    reply: Option<oneshot::Sender<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transfer {
    /// Replication: this box's (generation, digest) to a partner behind it.
    Push { generation: u64, digest: u64 },
    /// `pair push`: overwrite the partner.
    ForcePush,
    /// `pair adopt-peer`: fetch the partner's config and take it.
    AdoptPeer,
    /// `compare peer`: fetch the partner's config and compare.
    ComparePeer,
}

#[derive(Debug)]
enum TransferReply {
    Result {
        outcome: Outcome,
        generation: u64,
        digest: u64,
        message: String,
        /// What crossed the cable: a delta or the whole blob, and its sealed size.
        sent: Sent,
    },
    /// The partner's blob (a pull).
    Blob(Vec<u8>),
}

/// What a push sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Nothing,
    /// A delta over the generation the partner ran, this many bytes.
    Delta(usize),
    /// The whole blob, this many bytes.
    Whole(usize),
}

impl std::fmt::Display for Sent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sent::Nothing => Ok(()),
            Sent::Delta(bytes) => write!(f, " (a delta of {bytes} bytes)"),
            Sent::Whole(bytes) => write!(f, " (the whole config, {bytes} bytes)"),
        }
    }
}

/// Where replication stands with the partner, as `pair status` words it and the metrics
/// count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Standing {
    #[default]
    Unpaired,
    PartnerNotHeard,
    InSync,
    PartnerBehind,
    ThisBoxBehind,
    Diverged,
    Comparing,
}

impl Standing {
    const ALL: [Standing; 7] = [
        Standing::Unpaired,
        Standing::PartnerNotHeard,
        Standing::InSync,
        Standing::PartnerBehind,
        Standing::ThisBoxBehind,
        Standing::Diverged,
        Standing::Comparing,
    ];

    /// The metrics' label value.
    fn word(self) -> &'static str {
        match self {
            Standing::Unpaired => "unpaired",
            Standing::PartnerNotHeard => "partner_not_heard",
            Standing::InSync => "in_sync",
            Standing::PartnerBehind => "partner_behind",
            Standing::ThisBoxBehind => "this_box_behind",
            Standing::Diverged => "diverged",
            Standing::Comparing => "comparing",
        }
    }
}

/// Counters for `pair status` (and the metrics, through [`PairHandle::metrics`]).
#[derive(Debug, Default)]
struct Counters {
    /// Where replication stood at the last STATE period.
    standing: Standing,
    states_sent: u64,
    states_received: u64,
    send_errors: u64,
    pushes_applied: u64,
    pushes_refused: u64,
    pushes_failed: u64,
    received_applied: u64,
    received_refused: u64,
    /// Refused datagrams and connections by reason.
    refused: BTreeMap<&'static str, u64>,
}

struct Service {
    log: Log,
    state_rx: watch::Receiver<LocalState>,
    local: LocalState,
    to_daemon: mpsc::Sender<ToDaemon>,
    socket: Option<Arc<PeerSocket>>,
    listener: Option<TcpListener>,
    /// The interface the socket is open on.
    open_on: Option<(String, u32)>,
    next_open: Instant,
    session: u64,
    sequence: u64,
    partner: Option<Partner>,
    replay: ReplayWindow,
    starter: Option<Starter>,
    joiner: Option<(Joiner, oneshot::Sender<String>)>,
    gate: StartGate,
    epoch: Instant,
    /// The replication push in flight, and the last one started.
    pushing: bool,
    last_push: Option<(u64, u64, Instant)>,
    last_push_report: Option<String>,
    diverged_reported: Option<(u64, u64, u64, u64)>,
    skew_reported: Option<String>,
    counters: Arc<std::sync::Mutex<Counters>>,
    done_tx: mpsc::Sender<TransferDone>,
    done_rx: mpsc::Receiver<TransferDone>,
    partner_heard: Arc<AtomicU64>,
    partner_firmware: Arc<std::sync::Mutex<Option<PartnerFirmware>>>,
    /// What the partner's last FIRMWARE said (channel 4); forgotten when its STATE says an
    /// older channel or the box pairs anew.
    partner_version: Option<PartnerVersion>,
    /// A bundle is being received (one at a time: each can be 64 MiB).
    receiving_bundle: Arc<std::sync::atomic::AtomicBool>,
}

/// The partner's firmware version as told, and its slot.
#[derive(Debug, Clone)]
struct PartnerVersion {
    text: String,
    slot: Option<RunningSlot>,
}

fn wire_role(role: ConfigRole) -> WireRole {
    match role {
        ConfigRole::A => WireRole::A,
        ConfigRole::B => WireRole::B,
    }
}

fn config_role(role: WireRole) -> ConfigRole {
    match role {
        WireRole::A => ConfigRole::A,
        WireRole::B => ConfigRole::B,
    }
}

fn pair_role(role: ConfigRole) -> PairRole {
    match role {
        ConfigRole::A => PairRole::A,
        ConfigRole::B => PairRole::B,
    }
}

/// Fills `buffer` from the kernel's CSPRNG (getrandom(2); blocks only before the pool is
/// initialised, which is long over when an operator types `pair start`).
pub fn secure_random(buffer: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buffer.len() {
        let rest = &mut buffer[filled..];
        // SAFETY: the pointer and length describe `rest`, a live, writable slice.
        #[allow(unsafe_code)]
        let got = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if got < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        filled += usize::try_from(got).unwrap_or(0);
    }
    Ok(())
}

fn random_seed() -> std::io::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    secure_random(&mut seed)?;
    Ok(seed)
}

fn versions() -> Versions {
    Versions {
        pairing: tandem_pair::pairing::PROTOCOL_VERSION,
        channel: u16::from(replication::CHANNEL_VERSION),
        blob: tandem_config::blob::FORMAT_VERSION,
    }
}

/// What this box's partner runs relative to this box, from this box's history.
pub(crate) fn relation(local: &LocalState, generation: u64, digest: u64) -> Relation {
    if generation == local.generation && digest == local.digest {
        Relation::InSync
    } else if generation == 0 || local.history.contains(generation, digest) {
        Relation::ReceiverBehind
    } else {
        Relation::ReceiverNotInHistory
    }
}

impl Service {
    fn new(
        state_rx: watch::Receiver<LocalState>,
        to_daemon: mpsc::Sender<ToDaemon>,
        partner_heard: Arc<AtomicU64>,
        log: Log,
    ) -> Self {
        let local = state_rx.borrow().clone();
        let (done_tx, done_rx) = mpsc::channel(8);
        let mut session = [0u8; 8];
        let _ = secure_random(&mut session);
        let now = Instant::now();
        Service {
            log,
            state_rx,
            local,
            to_daemon,
            socket: None,
            listener: None,
            open_on: None,
            next_open: now,
            session: u64::from_be_bytes(session).max(1),
            sequence: 0,
            partner: None,
            replay: ReplayWindow::default(),
            starter: None,
            joiner: None,
            gate: StartGate::new(),
            epoch: now,
            pushing: false,
            last_push: None,
            last_push_report: None,
            diverged_reported: None,
            skew_reported: None,
            counters: Arc::default(),
            done_tx,
            done_rx,
            partner_heard,
            partner_firmware: Arc::default(),
            partner_version: None,
            receiving_bundle: Arc::default(),
        }
    }

    fn pair_now(&self, now: Instant) -> tandem_pair::Instant {
        let nanos =
            u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        tandem_pair::Instant::from_nanos(nanos)
    }

    fn std_at(&self, at: tandem_pair::Instant) -> Instant {
        self.epoch + Duration::from_nanos(at.as_nanos())
    }

    fn refuse(&self, reason: &'static str) {
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counters.refused.entry(reason).or_default() += 1;
    }

    async fn run(
        mut self,
        mut asks: mpsc::Receiver<(Ask, oneshot::Sender<String>)>,
        mut bundles: mpsc::Receiver<BundleJob>,
    ) {
        let mut tick = tokio::time::interval(STATE_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut buffer = vec![0u8; DATAGRAM_BUFFER];
        loop {
            self.ensure_open();
            let socket = self.socket.clone();
            let pairing_deadline = self.pairing_deadline();
            tokio::select! {
                changed = self.state_rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    self.local = self.state_rx.borrow_and_update().clone();
                    // A commit: tell the partner at once (and push if it is behind).
                    self.send_state().await;
                    self.consider_push();
                }
                asked = asks.recv() => {
                    let Some((ask, reply)) = asked else { return };
                    self.on_ask(ask, reply).await;
                }
                job = bundles.recv() => {
                    let Some(job) = job else { return };
                    self.start_bundle(job);
                }
                received = recv_on(socket.as_deref(), &mut buffer) => {
                    match received {
                        Ok(datagram) => {
                            let len = datagram.length.min(buffer.len());
                            if datagram.truncated {
                                self.refuse("oversized datagram");
                            } else if datagram.hop_limit != Some(PEER_HOP_LIMIT) {
                                self.refuse("hop limit not 255");
                            } else if !is_link_local(datagram.source) {
                                self.refuse("source not link-local");
                            } else {
                                let bytes = buffer[..len].to_vec();
                                self.on_datagram(datagram.source, &bytes).await;
                            }
                        }
                        Err(error) => {
                            self.log.line(format!("pair: receive failed: {error}; reopening"));
                            self.close();
                        }
                    }
                }
                accepted = accept_on(self.listener.as_ref()) => {
                    match accepted {
                        Ok((stream, from)) => self.on_connection(stream, from),
                        Err(error) => {
                            self.log.line(format!("pair: accept failed: {error}"));
                        }
                    }
                }
                done = self.done_rx.recv() => {
                    if let Some(done) = done {
                        self.on_transfer_done(done);
                    }
                }
                () = sleep_until(pairing_deadline) => {
                    self.on_pairing_timeout().await;
                }
                _ = tick.tick() => {
                    self.note_standing();
                    self.send_state().await;
                    self.consider_push();
                }
            }
            self.flush_pairing().await;
        }
    }

    /// Opens the socket and listener on the peer NIC when they are not open (or the
    /// interface changed).
    fn ensure_open(&mut self) {
        let wanted = self.local.interface.clone();
        if self
            .open_on
            .as_ref()
            .is_some_and(|(name, _)| *name == wanted)
        {
            return;
        }
        if self.open_on.is_some() {
            self.close();
        }
        let now = Instant::now();
        if now < self.next_open {
            return;
        }
        self.next_open = now + REOPEN_DELAY;
        let Some(index) = sysfs::ifindex(Path::new(SYS_CLASS_NET), &wanted) else {
            return;
        };
        let socket = match PeerSocket::open(&wanted, index, PAIR_PORT) {
            Ok(socket) => socket,
            Err(error) => {
                self.log.line(format!(
                    "pair: cannot open udp/{PAIR_PORT} on {wanted}: {error}; retrying"
                ));
                return;
            }
        };
        let listener = match listen(&wanted) {
            Ok(listener) => listener,
            Err(error) => {
                self.log.line(format!(
                    "pair: cannot listen on tcp/{PAIR_PORT} on {wanted}: {error}; retrying"
                ));
                return;
            }
        };
        self.socket = Some(Arc::new(socket));
        self.listener = Some(listener);
        self.open_on = Some((wanted.clone(), index));
        self.log.line(format!(
            "pair: pairing and replication on {wanted} udp/tcp {PAIR_PORT}"
        ));
    }

    fn close(&mut self) {
        self.socket = None;
        self.listener = None;
        self.open_on = None;
    }

    fn pairing_deadline(&self) -> Option<Instant> {
        let starter = self.starter.as_ref().and_then(Starter::poll_timeout);
        let joiner = self.joiner.as_ref().and_then(|(j, _)| j.poll_timeout());
        [starter, joiner]
            .into_iter()
            .flatten()
            .min()
            .map(|at| self.std_at(at))
    }

    async fn send(&self, datagram: &[u8]) {
        let Some(socket) = &self.socket else { return };
        if socket.send(datagram).await.is_err() {
            let mut counters = self
                .counters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            counters.send_errors += 1;
        }
    }

    /// Sends what the pairing state machines have queued and reports finished exchanges.
    async fn flush_pairing(&mut self) {
        let mut out = Vec::new();
        if let Some(starter) = self.starter.as_mut() {
            while let Some(datagram) = starter.poll_transmit() {
                out.push(datagram);
            }
        }
        if let Some((joiner, _)) = self.joiner.as_mut() {
            while let Some(datagram) = joiner.poll_transmit() {
                out.push(datagram);
            }
        }
        for datagram in out {
            self.send(&datagram).await;
        }
        let mut notices = Vec::new();
        if let Some(starter) = self.starter.as_mut() {
            while let Some(notice) = starter.poll_notice() {
                notices.push(notice.to_string());
            }
        }
        for notice in notices {
            self.log.line(format!("pair: {notice}"));
        }
        if let Some(starter) = &self.starter {
            self.gate.observe(starter);
            if let Some(outcome) = starter.outcome().cloned() {
                self.starter = None;
                let text = self.finish(&outcome).await;
                self.log.line(format!("pair: {text}"));
            }
        }
        if self
            .joiner
            .as_ref()
            .is_some_and(|(j, _)| j.outcome().is_some())
        {
            if let Some((joiner, reply)) = self.joiner.take() {
                if let Some(outcome) = joiner.outcome().cloned() {
                    let text = self.finish(&outcome).await;
                    self.log.line(format!("pair: {text}"));
                    let _ = reply.send(format!("pair: {text}\n"));
                }
            }
        }
    }

    /// A finished exchange: on success the daemon stores the identity and runs this box's
    /// half; the text says what happened.
    async fn finish(&mut self, outcome: &tandem_pair::Outcome) -> String {
        let Some(paired) = outcome.paired() else {
            return outcome.to_string();
        };
        let identity = PairIdentity {
            role: config_role(paired.my_role),
            pair_id: paired.pair_id,
            key: paired.key,
            paired_at_unix_s: tandem_config::transaction::unix_now(),
        };
        let (reply, answer) = oneshot::channel();
        if self
            .to_daemon
            .send(ToDaemon::Paired { identity, reply })
            .await
            .is_err()
        {
            return "paired, but the daemon is stopping: the pairing is not stored".into();
        }
        // The partner is a new one: forget what the old one said.
        self.partner = None;
        self.partner_version = None;
        self.replay = ReplayWindow::default();
        self.diverged_reported = None;
        let stored = answer.await.unwrap_or_else(|_| "not stored".into());
        format!("{outcome}; {stored}")
    }

    async fn on_pairing_timeout(&mut self) {
        let now = self.pair_now(Instant::now());
        if let Some(starter) = self.starter.as_mut() {
            starter.handle_timeout(now);
        }
        if let Some((joiner, _)) = self.joiner.as_mut() {
            joiner.handle_timeout(now);
        }
    }

    fn facts(&self) -> BoxFacts {
        BoxFacts {
            versions: versions(),
            role: self.local.identity.as_ref().map(|i| wire_role(i.role)),
            generation: self.local.generation,
        }
    }

    async fn on_ask(&mut self, ask: Ask, reply: oneshot::Sender<String>) {
        match ask {
            Ask::Status => {
                let _ = reply.send(self.status_text());
            }
            Ask::Start => {
                let _ = reply.send(self.start());
            }
            Ask::Join(code) => self.join(&code, reply),
            Ask::Push => self.start_transfer(Transfer::ForcePush, Some(reply)),
            Ask::AdoptPeer => self.start_transfer(Transfer::AdoptPeer, Some(reply)),
            Ask::ComparePeer => self.start_transfer(Transfer::ComparePeer, Some(reply)),
        }
    }

    fn start(&mut self) -> String {
        if self.open_on.is_none() {
            return format!(
                "pair: the peer link {} is not up: plug in the peer cable (or name the peer \
                 NIC in peer_link.interface) and run `pair start` again\n",
                self.local.interface
            );
        }
        let seed = match random_seed() {
            Ok(seed) => seed,
            Err(error) => return format!("pair: no randomness for a code ({error}); try again\n"),
        };
        let mut code_bytes = [0u8; 64];
        if let Err(error) = secure_random(&mut code_bytes) {
            return format!("pair: no randomness for a code ({error}); try again\n");
        }
        let Some(code) = PairingCode::from_random_bytes(&code_bytes) else {
            return "pair: could not draw a code; run `pair start` again\n".into();
        };
        let now = self.pair_now(Instant::now());
        match self.gate.start(now, code, self.facts(), seed) {
            Ok(starter) => {
                let minutes = tandem_pair::pairing::CODE_LIFETIME.as_secs() / 60;
                self.starter = Some(starter);
                self.log
                    .line("pair: pairing code issued (valid 5 minutes, 3 tries)");
                format!(
                    "pair: code {code} (valid {minutes} minutes, {} tries): run `pair join {code}` \
                     on the other box\n",
                    tandem_pair::pairing::MAX_TRIES
                )
            }
            Err(refused) => format!("pair: {refused}\n"),
        }
    }

    fn join(&mut self, code: &str, reply: oneshot::Sender<String>) {
        let code: PairingCode = match code.parse() {
            Ok(code) => code,
            Err(error) => {
                let _ = reply.send(format!("pair: {error}\n"));
                return;
            }
        };
        if self.open_on.is_none() {
            let _ = reply.send(format!(
                "pair: the peer link {} is not up: plug in the peer cable and run `pair join \
                 CODE` again\n",
                self.local.interface
            ));
            return;
        }
        let seed = match random_seed() {
            Ok(seed) => seed,
            Err(error) => {
                let _ = reply.send(format!("pair: no randomness ({error}); try again\n"));
                return;
            }
        };
        let now = self.pair_now(Instant::now());
        let joiner = Joiner::new(now, code, self.facts(), seed);
        if let Some((_, earlier)) = self.joiner.replace((joiner, reply)) {
            let _ = earlier.send("pair: replaced by a newer `pair join`\n".into());
        }
    }

    async fn on_datagram(&mut self, source: Ipv6Addr, bytes: &[u8]) {
        if bytes.starts_with(&tandem_wire::pairing::MAGIC) {
            let now = self.pair_now(Instant::now());
            let mut handled = false;
            if let Some(starter) = self.starter.as_mut() {
                handled |= starter.handle_datagram(now, bytes).is_ok();
            }
            if let Some((joiner, _)) = self.joiner.as_mut() {
                handled |= joiner.handle_datagram(now, bytes).is_ok();
            }
            if !handled {
                self.refuse("pairing datagram not for an exchange here");
            }
            return;
        }
        if !bytes.starts_with(&replication::MAGIC) {
            self.refuse("unknown magic");
            return;
        }
        let Some(identity) = self.local.identity.clone() else {
            self.refuse("replication while unpaired");
            return;
        };
        let message =
            match replication::decode(bytes, identity.pair_id, KeyPolicy::Require(&identity.key)) {
                Ok(message) => message,
                Err(error) => {
                    self.refuse(error.reason());
                    return;
                }
            };
        let (role, session, sequence) = match &message {
            Message::State(state) => (state.role, state.session, state.sequence),
            Message::Firmware(firmware) => (firmware.role, firmware.session, firmware.sequence),
            _ => {
                self.refuse("not a STATE or FIRMWARE on udp");
                return;
            }
        };
        if role.is_none() || role == Some(pair_role(identity.role)) {
            self.refuse("partner role not the other one");
            return;
        }
        if !self.replay.accept(session, sequence) {
            self.refuse("replayed STATE");
            return;
        }
        let state = match message {
            Message::State(state) => state,
            Message::Firmware(firmware) => {
                self.on_firmware(&firmware);
                return;
            }
            _ => return,
        };
        {
            let mut counters = self
                .counters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            counters.states_received += 1;
        }
        let first = self.partner.is_none();
        let scope = self.open_on.as_ref().map_or(0, |(_, index)| *index);
        self.partner = Some(Partner {
            address: source,
            scope,
            role: state.role,
            generation: state.generation,
            digest: state.digest,
            relation_to_us: state.relation,
            push_port: state.push_port,
            heard: Instant::now(),
            blob_format: state.blob_format,
            channel_version: state.channel_version,
        });
        if let Some(skew) = self.partner.as_ref().and_then(Partner::version_skew) {
            if self.skew_reported.as_deref() != Some(skew.as_str()) {
                self.log.line(format!("pair: {skew}"));
                self.skew_reported = Some(skew);
            }
        } else {
            self.skew_reported = None;
        }
        let heard = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.partner_heard.store(heard + 1, Ordering::Relaxed);
        if !replication::speaks_firmware(state.channel_version) {
            self.partner_version = None;
        }
        self.note_partner_firmware();
        if first {
            // Answer at once so the partner learns where this box stands.
            self.send_state().await;
        }
        self.check_divergence();
        self.consider_push();
    }

    /// The partner's FIRMWARE (authenticated, fresh): its version and slot.
    fn on_firmware(&mut self, firmware: &FirmwareRepr<'_>) {
        let told = PartnerVersion {
            text: firmware.version.to_owned(),
            slot: firmware.slot,
        };
        let changed = self
            .partner_version
            .as_ref()
            .is_none_or(|v| v.text != told.text);
        if changed {
            self.log.line(format!(
                "pair: the partner runs firmware {}{}",
                told.text,
                slot_words(told.slot)
            ));
        }
        self.partner_version = Some(told);
        self.note_partner_firmware();
    }

    /// Publishes what the partner's STATE and FIRMWARE said for `PairHandle::partner_firmware`.
    fn note_partner_firmware(&self) {
        let Some(partner) = &self.partner else { return };
        let firmware = PartnerFirmware {
            blob_format: partner.blob_format,
            channel_version: partner.channel_version,
            version: self
                .partner_version
                .as_ref()
                .and_then(|v| Version::of_firmware(&v.text)),
            slot: self.partner_version.as_ref().and_then(|v| v.slot),
        };
        *self
            .partner_firmware
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(firmware);
    }

    /// Where replication stands with `partner` (heard recently).
    fn standing_with(&self, partner: &Partner) -> Standing {
        let ours = relation(&self.local, partner.generation, partner.digest);
        match (ours, partner.relation_to_us) {
            (Relation::InSync, _) => Standing::InSync,
            (Relation::ReceiverBehind, _) => Standing::PartnerBehind,
            (_, Relation::ReceiverBehind) => Standing::ThisBoxBehind,
            (Relation::ReceiverNotInHistory, Relation::ReceiverNotInHistory) => Standing::Diverged,
            _ => Standing::Comparing,
        }
    }

    /// Records where replication stands for the metrics.
    fn note_standing(&self) {
        let standing = match (&self.local.identity, self.partner_fresh()) {
            (None, _) => Standing::Unpaired,
            (Some(_), None) => Standing::PartnerNotHeard,
            (Some(_), Some(partner)) => self.standing_with(partner),
        };
        self.counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .standing = standing;
    }

    fn partner_fresh(&self) -> Option<&Partner> {
        self.partner
            .as_ref()
            .filter(|p| p.heard.elapsed() < PARTNER_QUIET)
    }

    async fn send_state(&mut self) {
        let Some(identity) = self.local.identity.clone() else {
            return;
        };
        if self.socket.is_none() {
            return;
        }
        let relation = self.partner_fresh().map_or(Relation::Unknown, |p| {
            relation(&self.local, p.generation, p.digest)
        });
        self.sequence += 1;
        let repr = StateRepr {
            pair_id: identity.pair_id,
            session: self.session,
            sequence: self.sequence,
            role: Some(pair_role(identity.role)),
            generation: self.local.generation,
            digest: self.local.digest,
            relation,
            blob_format: tandem_config::blob::FORMAT_VERSION,
            channel_version: replication::CHANNEL_VERSION,
            push_port: PAIR_PORT,
        };
        let mut buffer = [0u8; replication::MAX_DATAGRAM_LEN];
        let Ok(len) = repr.emit(&mut buffer, Some(&identity.key)) else {
            return;
        };
        self.send(&buffer[..len]).await;
        {
            let mut counters = self
                .counters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            counters.states_sent += 1;
        }
        // Only a partner whose STATE says channel 4 knows FIRMWARE: firmware of channel 3
        // would count it as an unknown kind.
        if self
            .partner_fresh()
            .is_some_and(|p| replication::speaks_firmware(p.channel_version))
        {
            let (version, slot) = self.local.firmware.peer_facts();
            self.sequence += 1;
            let repr = FirmwareRepr {
                pair_id: identity.pair_id,
                session: self.session,
                sequence: self.sequence,
                role: Some(pair_role(identity.role)),
                version,
                slot,
            };
            if let Ok(len) = repr.emit(&mut buffer, Some(&identity.key)) {
                self.send(&buffer[..len]).await;
            }
        }
    }

    fn check_divergence(&mut self) {
        let Some(partner) = self.partner_fresh().cloned() else {
            return;
        };
        let ours = relation(&self.local, partner.generation, partner.digest);
        let diverged = ours == Relation::ReceiverNotInHistory
            && partner.relation_to_us == Relation::ReceiverNotInHistory;
        if !diverged {
            self.diverged_reported = None;
            return;
        }
        let key = (
            self.local.generation,
            self.local.digest,
            partner.generation,
            partner.digest,
        );
        if self.diverged_reported == Some(key) {
            return;
        }
        self.diverged_reported = Some(key);
        self.log.line(format!(
            "pair: DIVERGED: this box runs generation {} ({:016x}), the partner generation {} \
             ({:016x}), each edited while the other could not hear it; nothing is overwritten: \
             `compare peer` shows the difference, `pair adopt-peer` takes the partner's config, \
             `pair push` gives it this box's",
            self.local.generation, self.local.digest, partner.generation, partner.digest
        ));
    }

    /// Pushes this box's config when the partner is behind (at most one push at a time, the
    /// same config again only after [`PUSH_RETRY`]).
    fn consider_push(&mut self) {
        if self.pushing || self.local.identity.is_none() || self.local.generation == 0 {
            return;
        }
        let Some(partner) = self.partner_fresh() else {
            return;
        };
        if relation(&self.local, partner.generation, partner.digest) != Relation::ReceiverBehind {
            return;
        }
        if let Some((generation, digest, at)) = self.last_push {
            if generation == self.local.generation
                && digest == self.local.digest
                && at.elapsed() < PUSH_RETRY
            {
                return;
            }
        }
        self.last_push = Some((self.local.generation, self.local.digest, Instant::now()));
        self.start_transfer(
            Transfer::Push {
                generation: self.local.generation,
                digest: self.local.digest,
            },
            None,
        );
    }

    fn start_transfer(&mut self, what: Transfer, reply: Option<oneshot::Sender<String>>) {
        let Some(identity) = self.local.identity.clone() else {
            if let Some(reply) = reply {
                let _ = reply.send(
                    "pair: this box is not paired: pair it first (`pair start` here, `pair join \
                     CODE` on the other box)\n"
                        .into(),
                );
            }
            return;
        };
        let Some(partner) = self.partner_fresh().cloned() else {
            if let Some(reply) = reply {
                let _ = reply.send(
                    "pair: the partner is not heard on the peer cable: check the cable and that \
                     the partner runs\n"
                        .into(),
                );
            }
            return;
        };
        if matches!(what, Transfer::Push { .. }) {
            self.pushing = true;
        }
        let blob = Arc::clone(&self.local.blob);
        let delta = self.local.delta.clone();
        let credential = self.local.credential.clone();
        let done = self.done_tx.clone();
        let address = SocketAddrV6::new(partner.address, partner.push_port, 0, partner.scope);
        let role = pair_role(identity.role);
        tokio::spawn(async move {
            let began = Instant::now();
            let pull = matches!(what, Transfer::AdoptPeer | Transfer::ComparePeer);
            let force = matches!(what, Transfer::ForcePush);
            let attempt = |delta: Option<Arc<PartnerDelta>>| {
                let (identity, blob, credential) = (&identity, &blob, &credential);
                async move {
                    let outgoing = Outgoing {
                        blob,
                        delta: delta.as_deref(),
                        credential: credential.as_deref(),
                        force,
                        pull,
                    };
                    tokio::time::timeout(
                        TRANSFER_TIMEOUT,
                        transfer(address, identity, role, outgoing),
                    )
                    .await
                    .unwrap_or_else(|_| Err("the partner did not answer in time".into()))
                }
            };
            let mut result = attempt(delta).await;
            // The partner could not take the delta (it missed a push, or runs something
            // else): the whole blob, at once, on a new connection.
            if let Ok(TransferReply::Result {
                outcome: Outcome::NeedFull,
                ..
            }) = &result
            {
                result = attempt(None).await;
            }
            let _ = done
                .send(TransferDone {
                    what,
                    result,
                    began,
                    reply,
                })
                .await;
        });
    }

    /// `send_firmware`: a bundle to the partner, on its own task (the answer goes to `job`).
    fn start_bundle(&mut self, job: BundleJob) {
        let BundleJob {
            bundle,
            reboot,
            reply,
        } = job;
        let Some(identity) = self.local.identity.clone() else {
            let _ = reply.send(Err(SendFirmwareError::NotPaired));
            return;
        };
        let Some(partner) = self.partner_fresh().cloned() else {
            let _ = reply.send(Err(SendFirmwareError::PartnerNotHeard));
            return;
        };
        if !replication::speaks_firmware(partner.channel_version) {
            let _ = reply.send(Err(SendFirmwareError::PartnerTooOld {
                channel: partner.channel_version,
            }));
            return;
        }
        let address = SocketAddrV6::new(partner.address, partner.push_port, 0, partner.scope);
        let role = pair_role(identity.role);
        let log = self.log.clone();
        tokio::spawn(async move {
            let began = Instant::now();
            let len = bundle.len();
            let result = tokio::time::timeout(
                FIRMWARE_TIMEOUT,
                send_bundle(address, &identity, role, &bundle, reboot),
            )
            .await
            .unwrap_or_else(|_| {
                Err(SendFirmwareError::Transfer(format!(
                    "no answer within {} s",
                    FIRMWARE_TIMEOUT.as_secs()
                )))
            });
            let outcome = match &result {
                Ok(_) => "installed".to_owned(),
                Err(error) => error.to_string(),
            };
            log.line(format!(
                "pair: firmware bundle of {len} bytes to the partner in {} ms: {outcome}",
                began.elapsed().as_millis()
            ));
            let _ = reply.send(result);
        });
    }

    fn on_transfer_done(&mut self, done: TransferDone) {
        let TransferDone {
            what,
            result,
            began,
            reply,
        } = done;
        let millis = began.elapsed().as_secs_f64() * 1e3;
        match what {
            Transfer::Push { .. } | Transfer::ForcePush => {
                if matches!(what, Transfer::Push { .. }) {
                    self.pushing = false;
                }
                let (generation, digest) = match what {
                    Transfer::Push { generation, digest } => (generation, digest),
                    _ => (self.local.generation, self.local.digest),
                };
                let text = match result {
                    Ok(TransferReply::Result {
                        outcome,
                        generation: theirs,
                        digest: their_digest,
                        message,
                        sent,
                    }) => {
                        let mut counters = self
                            .counters
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        // Only the config pushed counts (a replayed RESULT names another);
                        // a forced push lands as a new generation past both.
                        let good = matches!(outcome, Outcome::Applied | Outcome::AlreadyRunning)
                            && their_digest == digest
                            && (theirs == generation || matches!(what, Transfer::ForcePush));
                        if good {
                            counters.pushes_applied += 1;
                        } else {
                            counters.pushes_refused += 1;
                        }
                        drop(counters);
                        if let Some(partner) = self.partner.as_mut() {
                            partner.generation = theirs;
                            partner.digest = their_digest;
                        }
                        if good {
                            format!(
                                "generation {generation} {} on the partner in {millis:.1} ms{sent}",
                                outcome.as_str()
                            )
                        } else {
                            format!(
                                "the partner refused generation {generation} ({}): {}",
                                outcome.as_str(),
                                message.trim_end()
                            )
                        }
                    }
                    Ok(TransferReply::Blob(_)) => {
                        "the partner answered a push with a config".into()
                    }
                    Err(error) => {
                        let mut counters = self
                            .counters
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        counters.pushes_failed += 1;
                        format!("push of generation {generation} failed: {error}")
                    }
                };
                self.log.line(format!("pair: {text}"));
                self.last_push_report = Some(text.clone());
                if let Some(reply) = reply {
                    let _ = reply.send(format!("pair push: {text}\n"));
                }
                self.check_divergence();
            }
            Transfer::AdoptPeer => {
                let Some(reply) = reply else { return };
                match result {
                    Ok(TransferReply::Blob(payload)) => {
                        let to_daemon = self.to_daemon.clone();
                        tokio::spawn(async move {
                            let (answer_tx, answer) = oneshot::channel();
                            let (credential, blob) = match seal::unwrap(payload) {
                                Ok(opened) => opened,
                                Err(error) => {
                                    let _ = reply.send(format!("pair adopt-peer: {error}\n"));
                                    return;
                                }
                            };
                            let sent = to_daemon
                                .send(ToDaemon::Adopt {
                                    blob,
                                    credential,
                                    force: true,
                                    reply: answer_tx,
                                })
                                .await;
                            let text = match (sent, answer.await) {
                                (Ok(()), Ok(AdoptAnswer::Applied(text))) => text,
                                (Ok(()), Ok(AdoptAnswer::Already)) => {
                                    "pair adopt-peer: this box runs the partner's config already\n"
                                        .into()
                                }
                                (
                                    Ok(()),
                                    Ok(AdoptAnswer::Diverged(text) | AdoptAnswer::Invalid(text)),
                                ) => {
                                    format!("pair adopt-peer: {text}\n")
                                }
                                _ => "pair adopt-peer: the daemon is stopping\n".into(),
                            };
                            let _ = reply.send(text);
                        });
                    }
                    Ok(TransferReply::Result { message, .. }) => {
                        let _ = reply.send(format!("pair adopt-peer: {message}\n"));
                    }
                    Err(error) => {
                        let _ = reply.send(format!("pair adopt-peer: {error}\n"));
                    }
                }
            }
            Transfer::ComparePeer => {
                let Some(reply) = reply else { return };
                let text = match result {
                    Ok(TransferReply::Blob(payload)) => match seal::unwrap(payload) {
                        Ok((_, blob)) => self.compare_text(&blob),
                        Err(error) => format!("compare peer: {error}\n"),
                    },
                    Ok(TransferReply::Result { message, .. }) => {
                        format!("compare peer: {message}\n")
                    }
                    Err(error) => format!("compare peer: {error}\n"),
                };
                let _ = reply.send(text);
            }
        }
    }

    fn compare_text(&self, blob: &[u8]) -> String {
        let Some(identity) = &self.local.identity else {
            return "compare peer: this box is not paired\n".into();
        };
        let key = tandem_config::MacKey(identity.key);
        match tandem_config::blob::decode(blob, tandem_config::MacPolicy::Require(&key), None) {
            Ok(theirs) => {
                let lines = tandem_config::compare(&self.local.running, &theirs.config);
                let mut text = format!(
                    "compare peer: this box generation {} ({:016x}), the partner generation {} \
                     (- this box, + the partner)\n",
                    self.local.generation, self.local.digest, theirs.header.generation
                );
                if lines.is_empty() {
                    text.push_str("compare peer: no differences\n");
                }
                for line in lines {
                    text.push_str(&line);
                    text.push('\n');
                }
                text
            }
            Err(error) => format!("compare peer: the partner's config is refused: {error}\n"),
        }
    }

    fn on_connection(&mut self, stream: TcpStream, from: std::net::SocketAddr) {
        let std::net::SocketAddr::V6(from) = from else {
            self.refuse("connection not over IPv6");
            return;
        };
        if !is_link_local(*from.ip()) {
            self.refuse("connection not link-local");
            return;
        }
        let Some(identity) = self.local.identity.clone() else {
            self.refuse("connection while unpaired");
            return;
        };
        let local = self.local.clone();
        let state_rx = self.state_rx.clone();
        let to_daemon = self.to_daemon.clone();
        let counters = Arc::clone(&self.counters);
        let log = self.log.clone();
        let receiving = Arc::clone(&self.receiving_bundle);
        tokio::spawn(async move {
            let served = tokio::time::timeout(
                FIRMWARE_TIMEOUT,
                serve(stream, &identity, &local, state_rx, to_daemon, &receiving),
            )
            .await
            .unwrap_or(Err(ServeError::Refused("transfer timed out")));
            let mut counters = counters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match served {
                Ok(Served::Applied(generation)) => {
                    counters.received_applied += 1;
                    drop(counters);
                    log.line(format!(
                        "pair: generation {generation} from the partner applied"
                    ));
                }
                Ok(Served::Refused(outcome, message)) => {
                    counters.received_refused += 1;
                    drop(counters);
                    log.line(format!(
                        "pair: refused the partner's config ({}): {}",
                        outcome.as_str(),
                        message.trim_end()
                    ));
                }
                Ok(Served::Nothing) => {}
                Ok(Served::Firmware(text)) => {
                    drop(counters);
                    log.line(format!(
                        "pair: firmware bundle from the partner: {}",
                        text.trim_end().replace('\n', " / ")
                    ));
                }
                Err(ServeError::Refused(reason)) => {
                    *counters.refused.entry(reason).or_default() += 1;
                }
            }
        });
    }

    fn status_text(&self) -> String {
        let mut text = String::new();
        match &self.local.identity {
            Some(identity) => {
                let _ = writeln!(
                    text,
                    "pair: paired: this box is {}, pair id {:016x}, keyed (HMAC-SHA256)",
                    identity.role, identity.pair_id
                );
            }
            None => text.push_str(
                "pair: not paired (`pair start` on one box, `pair join CODE` on the other)\n",
            ),
        }
        if let Some(starter) = &self.starter {
            let now = self.pair_now(Instant::now());
            let left = starter
                .expires_at()
                .saturating_duration_since(now)
                .as_secs();
            let _ = writeln!(
                text,
                "pair: pairing code {} waiting for `pair join` ({left} s, {} tries left)",
                starter.code(),
                starter.tries_left()
            );
        }
        if self.joiner.is_some() {
            text.push_str("pair: joining: waiting for the partner's answer\n");
        }
        let _ = writeln!(
            text,
            "pair: link {} {}",
            self.local.interface,
            if self.open_on.is_some() {
                "open"
            } else {
                "not open (no such interface)"
            }
        );
        let _ = writeln!(
            text,
            "pair: config here generation {} digest {:016x}",
            self.local.generation, self.local.digest
        );
        let (version, slot) = self.local.firmware.peer_facts();
        let _ = writeln!(
            text,
            "pair: firmware here {version}{} (replication channel {})",
            slot_words(slot),
            replication::CHANNEL_VERSION
        );
        match self.partner_fresh() {
            Some(partner) => {
                let state = match self.standing_with(partner) {
                    Standing::InSync => "in sync",
                    Standing::PartnerBehind => "partner behind (pushing)",
                    Standing::ThisBoxBehind => "this box behind (the partner pushes)",
                    Standing::Diverged => {
                        "DIVERGED: settle with `pair adopt-peer` or `pair push` (`compare peer` shows the difference)"
                    }
                    _ => "comparing",
                };
                if let Some(skew) = partner.version_skew() {
                    let _ = writeln!(text, "pair: VERSION SKEW: {skew}");
                }
                let _ = writeln!(
                    text,
                    "pair: partner {} generation {} digest {:016x}: {state}",
                    partner.role.map_or("?", |r| match r {
                        PairRole::A => "a",
                        PairRole::B => "b",
                    }),
                    partner.generation,
                    partner.digest
                );
                match (&self.partner_version, partner.channel_version) {
                    (Some(told), _) => {
                        let _ = writeln!(
                            text,
                            "pair: partner firmware {}{} (replication channel {})",
                            told.text,
                            slot_words(told.slot),
                            partner.channel_version
                        );
                    }
                    (None, channel) if replication::speaks_firmware(channel) => {
                        let _ = writeln!(
                            text,
                            "pair: partner firmware not told yet (replication channel {channel})"
                        );
                    }
                    (None, channel) => {
                        let _ = writeln!(
                            text,
                            "pair: partner firmware not told: it speaks replication channel \
                             {channel}, older than any min-partner version (upgrade it first)"
                        );
                    }
                }
            }
            None if self.local.identity.is_some() => {
                text.push_str("pair: partner not heard: partner behind (commits are pushed when it is back)\n");
            }
            None => {}
        }
        if let Some(report) = &self.last_push_report {
            let _ = writeln!(text, "pair: last push: {report}");
        }
        let counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(
            text,
            "pair: replication states sent={} received={} pushes applied={} refused={} failed={} received applied={} refused={}",
            counters.states_sent,
            counters.states_received,
            counters.pushes_applied,
            counters.pushes_refused,
            counters.pushes_failed,
            counters.received_applied,
            counters.received_refused
        );
        if !counters.refused.is_empty() {
            let list: Vec<String> = counters
                .refused
                .iter()
                .map(|(reason, count)| format!("{reason}={count}"))
                .collect();
            let _ = writeln!(text, "pair: refused {}", list.join(" "));
        }
        text
    }
}

/// ` slot b blessed`, ` slot a on trial`, ` not booted from a slot`.
fn slot_words(slot: Option<RunningSlot>) -> String {
    match slot {
        Some(RunningSlot { slot, blessed }) => format!(
            " slot {} {}",
            slot.letter(),
            if blessed { "blessed" } else { "on trial" }
        ),
        None => " not booted from a slot".to_owned(),
    }
}

async fn recv_on(
    socket: Option<&PeerSocket>,
    buffer: &mut [u8],
) -> std::io::Result<tandem_southbound::peer_socket::PeerDatagram> {
    match socket {
        Some(socket) => socket.recv(buffer).await,
        None => std::future::pending().await,
    }
}

async fn accept_on(
    listener: Option<&TcpListener>,
) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// A TCP listener on `[::]:PAIR_PORT` bound to the peer NIC.
fn listen(interface: &str) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(true)?;
    socket.set_reuse_address(true)?;
    socket.bind_device(Some(interface.as_bytes()))?;
    socket.bind(&SockAddr::from(SocketAddrV6::new(
        Ipv6Addr::UNSPECIFIED,
        PAIR_PORT,
        0,
        0,
    )))?;
    socket.listen(4)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

/// Reads one frame whose message must be of one of `kinds`: the length is bounded by the
/// largest of them before anything is read, the header's kind and that kind's bounds before
/// the body is, and the body is read as it arrives (a hostile length allocates nothing).
async fn read_frame_of(stream: &mut TcpStream, kinds: &[Kind]) -> Result<Vec<u8>, &'static str> {
    let mut prefix = [0u8; FRAME_PREFIX_LEN];
    stream
        .read_exact(&mut prefix)
        .await
        .map_err(|_| "connection closed early")?;
    let len = kinds
        .iter()
        .find_map(|kind| replication::frame_len_of(prefix, *kind).ok())
        .ok_or("bad frame length")?;
    let mut message = vec![0u8; HEADER_LEN];
    stream
        .read_exact(&mut message)
        .await
        .map_err(|_| "connection closed early")?;
    let kind = Kind::from_byte(message[5])
        .filter(|kind| kinds.contains(kind))
        .ok_or("unexpected kind")?;
    replication::frame_len_of(prefix, kind).map_err(|e| e.reason())?;
    let rest = u64::try_from(len - HEADER_LEN).unwrap_or(u64::MAX);
    let read = (&mut *stream)
        .take(rest)
        .read_to_end(&mut message)
        .await
        .map_err(|_| "connection closed early")?;
    if read as u64 != rest {
        return Err("connection closed early");
    }
    Ok(message)
}

/// Reads one frame whose message must be of `kind`.
async fn read_frame(stream: &mut TcpStream, kind: Kind) -> Result<Vec<u8>, &'static str> {
    let mut prefix = [0u8; FRAME_PREFIX_LEN];
    stream
        .read_exact(&mut prefix)
        .await
        .map_err(|_| "connection closed early")?;
    let len = replication::frame_len_of(prefix, kind).map_err(|e| e.reason())?;
    let mut message = vec![0u8; len];
    stream
        .read_exact(&mut message)
        .await
        .map_err(|_| "connection closed early")?;
    Ok(message)
}

async fn write_message(
    stream: &mut TcpStream,
    message: &Message<'_>,
    key: &[u8; 32],
) -> Result<(), String> {
    let mut frame = vec![0u8; message.framed_len(true)];
    let len = message
        .emit_frame(&mut frame, Some(key))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(&frame[..len])
        .await
        .map_err(|e| format!("cannot send to the partner: {e}"))
}

/// What a transfer sends.
#[derive(Debug, Clone, Copy)]
struct Outgoing<'a> {
    /// This box's blob (keyed).
    blob: &'a super::WholeBlob,
    /// The delta to send instead when the partner runs its base.
    delta: Option<&'a PartnerDelta>,
    /// The admin password hash sealed with it.
    credential: Option<&'a str>,
    force: bool,
    /// Fetch the partner's blob instead of sending this box's.
    pull: bool,
}

/// The client side of a transfer: connect, take the challenge, push (or pull), read the answer.
async fn transfer(
    address: SocketAddrV6,
    identity: &PairIdentity,
    role: PairRole,
    outgoing: Outgoing<'_>,
) -> Result<TransferReply, String> {
    let Outgoing {
        blob,
        delta,
        credential,
        force,
        pull,
    } = outgoing;
    let policy = KeyPolicy::Require(&identity.key);
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|e| format!("cannot connect to the partner ({address}): {e}"))?;
    let _ = stream.set_nodelay(true);
    let challenge = read_frame(&mut stream, Kind::Challenge).await?;
    let challenge = match replication::decode(&challenge, identity.pair_id, policy) {
        Ok(Message::Challenge(challenge)) => challenge,
        Ok(_) => return Err("the partner sent no challenge".into()),
        Err(error) => return Err(format!("the partner's challenge is refused: {error}")),
    };
    if challenge.role == Some(role) || challenge.role.is_none() {
        return Err("the partner claims this box's role: pair the boxes again".into());
    }
    if !pull && blob.is_empty() {
        return Err("this box has no config to push".into());
    }
    // The partner runs the delta's base (its challenge says what it runs): the delta will do.
    let delta = delta.filter(|d| {
        !pull
            && !force
            && (challenge.generation, challenge.digest) == (d.base_generation, d.base_digest)
    });
    // Framed only now, and only when the whole config goes.
    let payload = delta.map_or_else(|| blob.bytes(), |d| d.bytes.as_slice());
    let sealed = if pull {
        Vec::new()
    } else {
        seal::seal(
            &identity.key,
            identity.pair_id,
            &challenge.nonce,
            Direction::ToServer,
            &seal::wrap(credential, payload),
        )?
    };
    let sent = match (pull, delta) {
        (true, _) => Sent::Nothing,
        (false, Some(_)) => Sent::Delta(sealed.len()),
        (false, None) => Sent::Whole(sealed.len()),
    };
    let push = PushRepr {
        pair_id: identity.pair_id,
        nonce: challenge.nonce,
        role: Some(role),
        force,
        pull,
        blob: &sealed,
    };
    write_message(&mut stream, &Message::Push(push), &identity.key).await?;
    let kind = if pull { Kind::Push } else { Kind::Result };
    let answer = read_frame(&mut stream, kind).await?;
    match replication::decode(&answer, identity.pair_id, policy) {
        Ok(Message::Result(result)) if result.nonce == challenge.nonce => {
            Ok(TransferReply::Result {
                outcome: result.outcome,
                generation: result.generation,
                digest: result.digest,
                message: result.message.to_owned(),
                sent,
            })
        }
        Ok(Message::Push(theirs)) if pull && theirs.nonce == challenge.nonce => seal::open(
            &identity.key,
            identity.pair_id,
            &challenge.nonce,
            Direction::ToClient,
            theirs.blob,
        )
        .map(TransferReply::Blob)
        .map_err(|e| format!("the partner's config is refused: {e}")),
        Ok(_) => Err("the partner's answer does not match the challenge".into()),
        Err(error) => Err(format!("the partner's answer is refused: {error}")),
    }
}

/// The client side of `send_firmware`: connect, take the challenge, send BUNDLE, read RESULT.
async fn send_bundle(
    address: SocketAddrV6,
    identity: &PairIdentity,
    role: PairRole,
    bundle: &[u8],
    reboot: bool,
) -> Result<String, SendFirmwareError> {
    let failed = SendFirmwareError::Transfer;
    let policy = KeyPolicy::Require(&identity.key);
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|e| failed(format!("cannot connect to the partner ({address}): {e}")))?;
    let challenge = read_frame(&mut stream, Kind::Challenge)
        .await
        .map_err(|e| failed(e.to_owned()))?;
    let challenge = match replication::decode(&challenge, identity.pair_id, policy) {
        Ok(Message::Challenge(challenge)) => challenge,
        Ok(_) => return Err(failed("the partner sent no challenge".into())),
        Err(error) => {
            return Err(failed(format!(
                "the partner's challenge is refused: {error}"
            )))
        }
    };
    if challenge.role == Some(role) || challenge.role.is_none() {
        return Err(failed(
            "the partner claims this box's role: pair the boxes again".into(),
        ));
    }
    if !replication::speaks_firmware(challenge.channel_version) {
        return Err(SendFirmwareError::PartnerTooOld {
            channel: challenge.channel_version,
        });
    }
    let message = Message::Bundle(BundleRepr {
        pair_id: identity.pair_id,
        nonce: challenge.nonce,
        role: Some(role),
        reboot,
        bundle,
    });
    write_message(&mut stream, &message, &identity.key)
        .await
        .map_err(failed)?;
    let answer = read_frame(&mut stream, Kind::Result)
        .await
        .map_err(|e| failed(format!("no answer from the partner: {e}")))?;
    let result = match replication::decode(&answer, identity.pair_id, policy) {
        Ok(Message::Result(result)) if result.nonce == challenge.nonce => result,
        Ok(_) => {
            return Err(failed(
                "the partner's answer does not match the challenge".into(),
            ))
        }
        Err(error) => return Err(failed(format!("the partner's answer is refused: {error}"))),
    };
    let text = result.message.to_owned();
    match result.outcome {
        Outcome::Applied => Ok(text),
        Outcome::Busy => Err(SendFirmwareError::Busy(text)),
        _ => Err(SendFirmwareError::Refused(text)),
    }
}

/// What a served connection came to.
#[derive(Debug)]
enum Served {
    Applied(u64),
    Refused(Outcome, String),
    /// A pull, answered with this box's config.
    Nothing,
    /// A firmware bundle, installed or not (the text says).
    Firmware(String),
}

#[derive(Debug)]
enum ServeError {
    /// Refused before a valid PUSH arrived (counted by reason).
    Refused(&'static str),
}

/// The server side: challenge, then a keyed PUSH that echoes it; a pull gets this box's blob,
/// a push goes to the daemon, whose answer goes back as RESULT.
async fn serve(
    mut stream: TcpStream,
    identity: &PairIdentity,
    local: &LocalState,
    state_rx: watch::Receiver<LocalState>,
    to_daemon: mpsc::Sender<ToDaemon>,
    receiving: &std::sync::atomic::AtomicBool,
) -> Result<Served, ServeError> {
    let _ = stream.set_nodelay(true);
    let mut nonce = [0u8; NONCE_LEN];
    secure_random(&mut nonce).map_err(|_| ServeError::Refused("no randomness"))?;
    let role = pair_role(identity.role);
    let challenge = ChallengeRepr {
        pair_id: identity.pair_id,
        nonce,
        role: Some(role),
        generation: local.generation,
        digest: local.digest,
        channel_version: replication::CHANNEL_VERSION,
        blob_format: tandem_config::blob::FORMAT_VERSION,
    };
    write_message(&mut stream, &Message::Challenge(challenge), &identity.key)
        .await
        .map_err(|_| ServeError::Refused("connection closed early"))?;
    // One bundle at a time (each may be 64 MiB); a config push is always taken.
    let bundle_turn = receiving
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_ok();
    let kinds: &[Kind] = if bundle_turn {
        &[Kind::Push, Kind::Bundle]
    } else {
        &[Kind::Push]
    };
    let frame = read_frame_of(&mut stream, kinds).await;
    if bundle_turn
        && !frame
            .as_ref()
            .is_ok_and(|f| f.get(5) == Some(&replication::KIND_BUNDLE))
    {
        receiving.store(false, Ordering::Release);
    }
    let push = frame.map_err(ServeError::Refused)?;
    if push.get(5) == Some(&replication::KIND_BUNDLE) {
        let served = serve_bundle(&mut stream, identity, push, nonce, local, to_daemon).await;
        receiving.store(false, Ordering::Release);
        return served;
    }
    let push = match replication::decode(&push, identity.pair_id, KeyPolicy::Require(&identity.key))
    {
        Ok(Message::Push(push)) => push,
        Ok(_) => return Err(ServeError::Refused("not a PUSH")),
        Err(error) => return Err(ServeError::Refused(error.reason())),
    };
    if push.nonce != nonce {
        return Err(ServeError::Refused("PUSH with a stale nonce"));
    }
    fn result_for<'m>(
        pair_id: u64,
        nonce: [u8; NONCE_LEN],
        outcome: Outcome,
        message: &'m str,
        state: &LocalState,
    ) -> ResultRepr<'m> {
        ResultRepr {
            pair_id,
            nonce,
            outcome,
            generation: state.generation,
            digest: state.digest,
            message: replication::clip_text(message),
        }
    }
    let answer =
        |outcome, message, state| result_for(identity.pair_id, nonce, outcome, message, state);
    if push.role.is_none() || push.role == Some(role) {
        let text = "the sender has this box's role (or none): pair the boxes again";
        let result = answer(Outcome::NotPaired, text, local);
        let _ = write_message(&mut stream, &Message::Result(result), &identity.key).await;
        return Ok(Served::Refused(Outcome::NotPaired, text.into()));
    }
    if push.pull {
        let current = state_rx.borrow().clone();
        if current.blob.is_empty() {
            let text = "the partner has no config yet";
            let result = answer(Outcome::Invalid, text, &current);
            let _ = write_message(&mut stream, &Message::Result(result), &identity.key).await;
            return Ok(Served::Nothing);
        }
        let sealed = seal::seal(
            &identity.key,
            identity.pair_id,
            &nonce,
            Direction::ToClient,
            &seal::wrap(current.credential.as_deref(), current.blob.bytes()),
        )
        .map_err(ServeError::Refused)?;
        let theirs = PushRepr {
            pair_id: identity.pair_id,
            nonce,
            role: Some(role),
            force: false,
            pull: false,
            blob: &sealed,
        };
        let _ = write_message(&mut stream, &Message::Push(theirs), &identity.key).await;
        return Ok(Served::Nothing);
    }
    let opened = seal::open(
        &identity.key,
        identity.pair_id,
        &nonce,
        Direction::ToServer,
        push.blob,
    )
    .and_then(seal::unwrap);
    let (credential, blob) = match opened {
        Ok(opened) => opened,
        Err(reason) => {
            let result = answer(Outcome::Invalid, reason, local);
            let _ = write_message(&mut stream, &Message::Result(result), &identity.key).await;
            return Err(ServeError::Refused(reason));
        }
    };
    let (reply, adopted) = oneshot::channel();
    let sent = to_daemon
        .send(ToDaemon::Adopt {
            blob,
            credential,
            force: push.force,
            reply,
        })
        .await;
    let adopted = match sent {
        Ok(()) => adopted
            .await
            .unwrap_or(AdoptAnswer::Invalid("the daemon is stopping".into())),
        Err(_) => AdoptAnswer::Invalid("the daemon is stopping".into()),
    };
    let current = state_rx.borrow().clone();
    let (outcome, message, served) = match adopted {
        AdoptAnswer::Applied(text) => {
            let generation = current.generation;
            (Outcome::Applied, text, Served::Applied(generation))
        }
        AdoptAnswer::Already => (Outcome::AlreadyRunning, String::new(), Served::Nothing),
        AdoptAnswer::Diverged(text) => (
            Outcome::Diverged,
            text.clone(),
            Served::Refused(Outcome::Diverged, text),
        ),
        AdoptAnswer::NeedFull(text) => (Outcome::NeedFull, text, Served::Nothing),
        AdoptAnswer::Invalid(text) => (
            Outcome::Invalid,
            text.clone(),
            Served::Refused(Outcome::Invalid, text),
        ),
    };
    let result = answer(outcome, &message, &current);
    let _ = write_message(&mut stream, &Message::Result(result), &identity.key).await;
    Ok(served)
}

/// A BUNDLE after the challenge: checked and installed by the daemon (on its blocking pool),
/// answered with RESULT; a reboot asked for follows the answer.
async fn serve_bundle(
    stream: &mut TcpStream,
    identity: &PairIdentity,
    mut frame: Vec<u8>,
    nonce: [u8; NONCE_LEN],
    local: &LocalState,
    to_daemon: mpsc::Sender<ToDaemon>,
) -> Result<Served, ServeError> {
    let role = pair_role(identity.role);
    let (sender, reboot, len) =
        match replication::decode(&frame, identity.pair_id, KeyPolicy::Require(&identity.key)) {
            Ok(Message::Bundle(bundle)) if bundle.nonce == nonce => {
                (bundle.role, bundle.reboot, bundle.bundle.len())
            }
            Ok(Message::Bundle(_)) => return Err(ServeError::Refused("BUNDLE with a stale nonce")),
            Ok(_) => return Err(ServeError::Refused("not a BUNDLE")),
            Err(error) => return Err(ServeError::Refused(error.reason())),
        };
    fn result_of<'m>(
        identity: &PairIdentity,
        nonce: [u8; NONCE_LEN],
        local: &LocalState,
        outcome: Outcome,
        message: &'m str,
    ) -> ResultRepr<'m> {
        ResultRepr {
            pair_id: identity.pair_id,
            nonce,
            outcome,
            generation: local.generation,
            digest: local.digest,
            message: replication::clip_text(message),
        }
    }
    let answer = |outcome, message| result_of(identity, nonce, local, outcome, message);
    if sender.is_none() || sender == Some(role) {
        let text = "the sender has this box's role (or none): pair the boxes again";
        let result = answer(Outcome::NotPaired, text);
        let _ = write_message(stream, &Message::Result(result), &identity.key).await;
        return Ok(Served::Refused(Outcome::NotPaired, text.into()));
    }
    // The bundle in place: the header off the front, the tag off the end.
    frame.truncate(replication::BUNDLE_HEADER_LEN + len);
    frame.drain(..replication::BUNDLE_HEADER_LEN);
    let (reply, installed) = oneshot::channel();
    let asked = to_daemon
        .send(ToDaemon::InstallBundle {
            bundle: frame,
            reply,
        })
        .await;
    let installed = match asked {
        Ok(()) => installed.await.ok(),
        Err(_) => None,
    }
    .unwrap_or(crate::firmware_slot::Installed {
        installed: false,
        busy: true,
        text: "the daemon is stopping".into(),
    });
    let outcome = if installed.installed {
        Outcome::Applied
    } else if installed.busy {
        Outcome::Busy
    } else {
        Outcome::Invalid
    };
    let mut text = installed.text;
    if installed.installed && reboot {
        text.push_str("firmware: rebooting into it now (asked by the partner)\n");
    }
    let written = write_message(
        stream,
        &Message::Result(answer(outcome, &text)),
        &identity.key,
    )
    .await
    .is_ok();
    if installed.installed && reboot {
        // The answer first: wait until the partner has read it (it closes), bounded.
        if written {
            let mut byte = [0u8; 1];
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await;
        }
        let _ = to_daemon
            .send(ToDaemon::Reboot {
                why: "the partner installed firmware here and asked for a reboot".into(),
            })
            .await;
    }
    Ok(Served::Firmware(text))
}

#[cfg(test)]
mod tests {
    use super::{ReplayWindow, REMEMBERED_SESSIONS};

    #[test]
    fn a_replay_from_an_earlier_session_is_refused_after_the_partner_moved_on() {
        let mut window = ReplayWindow::default();
        assert!(window.accept(77, 1));
        assert!(window.accept(5, 10)); // the real partner speaks in between
        assert!(!window.accept(77, 1), "replay of session 77 after a switch");
        assert!(!window.accept(5, 10));
        assert!(!window.accept(5, 9));
        assert!(window.accept(5, 11));
        assert!(window.accept(77, 2));
    }

    #[test]
    fn the_window_is_bounded_and_forgets_the_oldest_session() {
        let mut window = ReplayWindow::default();
        for session in 0..=REMEMBERED_SESSIONS as u64 {
            assert!(window.accept(session, 1));
        }
        assert_eq!(window.sessions.len(), REMEMBERED_SESSIONS);
        assert!(!window.accept(REMEMBERED_SESSIONS as u64, 1));
        assert!(window.accept(0, 1), "session 0 fell out of the window");
    }
}
