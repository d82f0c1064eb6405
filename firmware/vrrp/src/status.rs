//! Plain data for `tandem vrrp status`: the state, the master we defer to, the last
//! transitions with their cause ("why am I backup?") and a counter per discard reason and per
//! transition cause. Nothing here has behaviour beyond counting.

use core::fmt;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::string::String;

use tandem_wire::ChecksumVariant;

use crate::time::Instant;

/// RFC 9568 section 6 states, plus keepalived's FAULT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not running (before startup, after shutdown).
    Initialize,
    /// Listening to a master; takes over when it falls silent.
    Backup,
    /// Owns the virtual addresses and advertises.
    Master,
    /// Held down by a tracked object or by its sync group.
    Fault,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        })
    }
}

/// Why the Master_Down_Timer of a backup fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MasterDownReason {
    /// No advertisement arrived for Master_Down_Interval.
    Silence,
    /// The master sent priority 0 (leaving) and Skew_Time passed.
    PriorityZero,
    /// Lower-priority adverts were ignored because preempt is on.
    Preempting,
}

/// Why a transition happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// Startup event (Initialize -> Backup).
    Startup,
    /// Startup as address owner, priority 255 (Initialize -> Master).
    AddressOwner,
    /// Master_Down_Timer fired (Backup -> Master).
    MasterDown {
        /// Why the master was considered down.
        reason: MasterDownReason,
        /// The master last heard, if any.
        last_master: Option<IpAddr>,
    },
    /// A higher-priority advertisement arrived (Master -> Backup).
    HigherPriority {
        /// Its sender.
        from: IpAddr,
        /// Its priority.
        priority: u8,
    },
    /// An equal-priority advertisement from a higher primary address arrived (Master -> Backup).
    EqualPriorityHigherAddress {
        /// Its sender.
        from: IpAddr,
    },
    /// Shutdown event (-> Initialize).
    Shutdown,
    /// The operator's `vrrp standby on` (maintenance mode): a master sends priority 0 and
    /// goes Backup, and no instance becomes Master until `vrrp standby off`.
    Standby,
    /// A tracked object with weight 0 went down (-> Fault).
    TrackDown {
        /// The tracked object.
        track: String,
    },
    /// Every fault condition cleared (Fault -> Backup / Master).
    FaultCleared,
    /// The sync group followed one of its members.
    SyncGroup {
        /// Group name.
        group: String,
        /// The member that moved first.
        member: String,
    },
    /// The partner box, over the pair heartbeat on the peer cable (see [`crate::pair`]).
    Partner(PartnerCause),
}

/// What the pair heartbeat decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartnerCause {
    /// The heartbeat died and the partner did not answer a probe on the service LAN.
    Lost {
        /// From the last heartbeat heard to the decision, in milliseconds.
        silent_ms: u64,
        /// Why the heartbeat is dead ("silent for 30 ms", "peer link carrier lost").
        why: String,
    },
    /// The partner reported that it no longer serves the instance (fault, backup, shutdown).
    Released {
        /// The partner's state as reported.
        state: &'static str,
    },
    /// The partner asked to hand over (planned).
    HandOver,
    /// The partner is master and alive on the heartbeat, but adverts are not heard here: a
    /// service LAN split, so this box stays backup.
    LanSplit,
    /// In a service LAN split this master gave the instance to the partner, whose uplink
    /// score (upstream routers answering, or service LANs with carrier) is better.
    BetterUplink {
        /// The partner's score.
        partner: u8,
        /// This box's score.
        here: u8,
    },
}

impl Cause {
    /// The counter bucket of this cause.
    pub fn kind(&self) -> CauseKind {
        match self {
            Cause::Startup => CauseKind::Startup,
            Cause::AddressOwner => CauseKind::AddressOwner,
            Cause::MasterDown {
                reason: MasterDownReason::Silence,
                ..
            } => CauseKind::MasterSilent,
            Cause::MasterDown {
                reason: MasterDownReason::PriorityZero,
                ..
            } => CauseKind::MasterLeft,
            Cause::MasterDown {
                reason: MasterDownReason::Preempting,
                ..
            } => CauseKind::Preempted,
            Cause::HigherPriority { .. } => CauseKind::HigherPriority,
            Cause::EqualPriorityHigherAddress { .. } => CauseKind::EqualPriorityHigherAddress,
            Cause::Shutdown => CauseKind::Shutdown,
            Cause::Standby => CauseKind::Standby,
            Cause::TrackDown { .. } => CauseKind::TrackDown,
            Cause::FaultCleared => CauseKind::FaultCleared,
            Cause::SyncGroup { .. } => CauseKind::SyncGroup,
            Cause::Partner(_) => CauseKind::Partner,
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Startup => write!(f, "startup"),
            Cause::AddressOwner => write!(f, "address owner (priority 255)"),
            Cause::MasterDown {
                reason,
                last_master,
            } => {
                let why = match reason {
                    MasterDownReason::Silence => "master silent for Master_Down_Interval",
                    MasterDownReason::PriorityZero => "master left (priority 0), Skew_Time passed",
                    MasterDownReason::Preempting => "preempting a lower-priority master",
                };
                match last_master {
                    Some(m) => write!(f, "{why} (last master {m})"),
                    None => write!(f, "{why} (no master heard)"),
                }
            }
            Cause::HigherPriority { from, priority } => {
                write!(f, "higher priority {priority} advertised by {from}")
            }
            Cause::EqualPriorityHigherAddress { from } => {
                write!(f, "equal priority from higher address {from}")
            }
            Cause::Shutdown => write!(f, "shutdown"),
            Cause::Standby => write!(f, "standby (maintenance): priority 0 sent, handed over"),
            Cause::TrackDown { track } => write!(f, "tracked {track} down"),
            Cause::FaultCleared => write!(f, "all fault conditions cleared"),
            Cause::SyncGroup { group, member } => {
                write!(f, "sync group {group} followed {member}")
            }
            Cause::Partner(PartnerCause::Lost { silent_ms, why }) => write!(
                f,
                "partner heartbeat lost ({why}), partner silent on the service LAN: took over {silent_ms} ms after its last heartbeat"
            ),
            Cause::Partner(PartnerCause::Released { state }) => {
                write!(f, "partner reported {state} over the heartbeat")
            }
            Cause::Partner(PartnerCause::HandOver) => {
                write!(f, "partner handed over (planned)")
            }
            Cause::Partner(PartnerCause::LanSplit) => write!(
                f,
                "service LAN split: partner is master, adverts not heard here"
            ),
            Cause::Partner(PartnerCause::BetterUplink { partner, here }) => write!(
                f,
                "service LAN split: the partner has the better uplink ({partner}, this box {here})"
            ),
        }
    }
}

/// Counter buckets of transition causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CauseKind {
    /// [`Cause::Startup`].
    Startup,
    /// [`Cause::AddressOwner`].
    AddressOwner,
    /// [`Cause::MasterDown`] after silence.
    MasterSilent,
    /// [`Cause::MasterDown`] after priority 0.
    MasterLeft,
    /// [`Cause::MasterDown`] while preempting.
    Preempted,
    /// [`Cause::HigherPriority`].
    HigherPriority,
    /// [`Cause::EqualPriorityHigherAddress`].
    EqualPriorityHigherAddress,
    /// [`Cause::Shutdown`].
    Shutdown,
    /// [`Cause::Standby`].
    Standby,
    /// [`Cause::TrackDown`].
    TrackDown,
    /// [`Cause::FaultCleared`].
    FaultCleared,
    /// [`Cause::SyncGroup`].
    SyncGroup,
    /// [`Cause::Partner`].
    Partner,
}

impl CauseKind {
    /// Every bucket, in counter order.
    pub const ALL: [CauseKind; 13] = [
        CauseKind::Startup,
        CauseKind::AddressOwner,
        CauseKind::MasterSilent,
        CauseKind::MasterLeft,
        CauseKind::Preempted,
        CauseKind::HigherPriority,
        CauseKind::EqualPriorityHigherAddress,
        CauseKind::Shutdown,
        CauseKind::Standby,
        CauseKind::TrackDown,
        CauseKind::FaultCleared,
        CauseKind::SyncGroup,
        CauseKind::Partner,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// One state transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// When it happened.
    pub at: Instant,
    /// State left.
    pub from: State,
    /// State entered.
    pub to: State,
    /// Why.
    pub cause: Cause,
}

/// Why a received packet was discarded (RFC 9568 / RFC 3768 section 7.1, plus our own sanity
/// rules). Each has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiscardReason {
    /// IPv4 TTL / IPv6 hop limit is not 255.
    TtlNot255,
    /// Version differs from the instance's (or is neither 2 nor 3).
    VersionMismatch,
    /// Type is not ADVERTISEMENT.
    UnknownType,
    /// Shorter than the fixed header.
    Truncated,
    /// Shorter than the fixed header plus the counted addresses (plus v2 auth data).
    TooShortForAddressCount,
    /// Checksum verifies under no accepted form.
    BadChecksum,
    /// VRID not configured on the receiving interface for this family.
    VridNotConfigured,
    /// We are the address owner (priority 255): RFC 9568 section 7.1 discards everything.
    LocalIsOwner,
    /// v2 Auth Type differs from ours.
    AuthTypeMismatch,
    /// v2 authentication data (password) differs from ours.
    AuthFailure,
    /// v2 Adver Interval differs from ours.
    IntervalMismatch,
    /// v3 Max Adver Int is 0 (would make Master_Down_Interval a mere Skew_Time).
    IntervalZero,
    /// Address list differs from ours and the sender is not the owner.
    AddressListMismatch,
    /// Source address family differs from the instance's.
    FamilyMismatch,
    /// Our own advertisement looped back (source is our primary address).
    OwnAdvert,
}

impl DiscardReason {
    /// Every reason, in counter order.
    pub const ALL: [DiscardReason; 15] = [
        DiscardReason::TtlNot255,
        DiscardReason::VersionMismatch,
        DiscardReason::UnknownType,
        DiscardReason::Truncated,
        DiscardReason::TooShortForAddressCount,
        DiscardReason::BadChecksum,
        DiscardReason::VridNotConfigured,
        DiscardReason::LocalIsOwner,
        DiscardReason::AuthTypeMismatch,
        DiscardReason::AuthFailure,
        DiscardReason::IntervalMismatch,
        DiscardReason::IntervalZero,
        DiscardReason::AddressListMismatch,
        DiscardReason::FamilyMismatch,
        DiscardReason::OwnAdvert,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DiscardReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DiscardReason::TtlNot255 => "TTL/hop limit not 255 (sent from off-link?)",
            DiscardReason::VersionMismatch => "VRRP version differs from the instance's",
            DiscardReason::UnknownType => "VRRP type is not ADVERTISEMENT",
            DiscardReason::Truncated => "shorter than the VRRP header",
            DiscardReason::TooShortForAddressCount => "shorter than its address count needs",
            DiscardReason::BadChecksum => "bad checksum",
            DiscardReason::VridNotConfigured => "VRID not configured on this interface",
            DiscardReason::LocalIsOwner => "we are the address owner (priority 255)",
            DiscardReason::AuthTypeMismatch => "VRRPv2 auth type differs from ours",
            DiscardReason::AuthFailure => "VRRPv2 password differs from ours",
            DiscardReason::IntervalMismatch => "VRRPv2 advert interval differs from ours",
            DiscardReason::IntervalZero => "VRRPv3 advert interval is 0",
            DiscardReason::AddressListMismatch => "virtual address list differs from ours",
            DiscardReason::FamilyMismatch => "address family differs from the instance's",
            DiscardReason::OwnAdvert => "our own advert looped back",
        })
    }
}

/// Per-instance counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Valid advertisements processed.
    pub adverts_received: u64,
    /// Advertisements sent (including priority 0).
    pub adverts_sent: u64,
    /// Valid priority-0 advertisements received.
    pub priority_zero_received: u64,
    /// Priority-0 advertisements sent.
    pub priority_zero_sent: u64,
    /// Lower-priority adverts ignored by a preempting backup.
    pub lower_priority_ignored: u64,
    /// Lower-priority adverts a master answered with its own advert (RFC 9568 section 6.4.3).
    pub lower_priority_answered: u64,
    /// Address-list mismatches accepted because the sender claimed priority 255.
    pub address_list_mismatch_from_owner: u64,
    /// Adverts whose address list differs from ours, processed anyway during an
    /// [`AddressListGrace`] (a live VIP change committed on one box of the pair before the
    /// other).
    pub address_list_differs_accepted: u64,
    /// Valid adverts ignored because the instance was not running (Initialize / Fault).
    pub ignored_while_inactive: u64,
    /// v3 IPv4 adverts verified with the pseudo-header (RFC 5798, keepalived).
    pub checksum_pseudo_header: u64,
    /// v3 IPv4 adverts verified over the message alone (RFC 9568 as published).
    pub checksum_message_only: u64,
    /// v3 IPv4 unicast adverts verified with 224.0.0.18 in the pseudo-header (old keepalived).
    pub checksum_group_destination: u64,
    discards: [u64; DiscardReason::ALL.len()],
    transitions: [u64; CauseKind::ALL.len()],
}

impl Counters {
    /// Discards counted for `reason`.
    pub fn discarded(&self, reason: DiscardReason) -> u64 {
        self.discards[reason.index()]
    }

    /// Every discard counter, in [`DiscardReason::ALL`] order.
    pub fn discards(&self) -> impl Iterator<Item = (DiscardReason, u64)> + '_ {
        DiscardReason::ALL
            .iter()
            .map(|r| (*r, self.discards[r.index()]))
    }

    /// Total discards.
    pub fn discarded_total(&self) -> u64 {
        self.discards.iter().sum()
    }

    /// Transitions counted for `kind`.
    pub fn transitions(&self, kind: CauseKind) -> u64 {
        self.transitions[kind.index()]
    }

    /// Every transition counter, in [`CauseKind::ALL`] order.
    pub fn transitions_by_cause(&self) -> impl Iterator<Item = (CauseKind, u64)> + '_ {
        CauseKind::ALL
            .iter()
            .map(|k| (*k, self.transitions[k.index()]))
    }

    pub(crate) fn count_discard(&mut self, reason: DiscardReason) {
        let slot = &mut self.discards[reason.index()];
        *slot = slot.saturating_add(1);
    }

    pub(crate) fn count_transition(&mut self, kind: CauseKind) {
        let slot = &mut self.transitions[kind.index()];
        *slot = slot.saturating_add(1);
    }

    pub(crate) fn count_checksum(&mut self, variant: ChecksumVariant) {
        let slot = match variant {
            ChecksumVariant::V2Message => return,
            ChecksumVariant::PseudoHeader => &mut self.checksum_pseudo_header,
            ChecksumVariant::MessageOnly => &mut self.checksum_message_only,
            ChecksumVariant::PseudoHeaderGroupDestination => &mut self.checksum_group_destination,
        };
        *slot = slot.saturating_add(1);
    }
}

/// The master a backup currently defers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MasterInfo {
    /// Its primary address (advert source).
    pub address: IpAddr,
    /// Its advertised priority.
    pub priority: u8,
    /// Its advertised interval in centiseconds.
    pub interval_cs: u16,
    /// When its last accepted advert arrived.
    pub last_seen: Instant,
}

/// Why an instance tolerates adverts whose virtual address list differs from its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraceCause {
    /// This box's live reconfiguration changed the instance's virtual addresses.
    Reconciled,
    /// The master this backup followed, whose adverts listed our addresses, started listing
    /// others: the partner's virtual addresses were changed live.
    MasterChanged {
        /// The master.
        master: IpAddr,
    },
}

impl fmt::Display for GraceCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraceCause::Reconciled => write!(f, "virtual addresses changed on this box"),
            GraceCause::MasterChanged { master } => {
                write!(f, "master {master} changed its virtual addresses")
            }
        }
    }
}

/// The reconcile grace of RFC 9568 section 7.1's address-list check (a MAY): while it runs,
/// adverts whose address list differs from ours are processed instead of discarded, so a live
/// VIP change committed on one box of a pair before the other causes no takeover. It ends
/// when a processed advert lists our addresses again, or at `until` (after which such adverts
/// are discarded again, as outside any grace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressListGrace {
    /// Why it runs.
    pub cause: GraceCause,
    /// When it started.
    pub opened: Instant,
    /// When it ends unless the lists match before.
    pub until: Instant,
    /// Adverts with a different list processed during it.
    pub accepted: u64,
}

impl AddressListGrace {
    /// True while adverts with a different list are processed.
    pub fn running(&self, now: Instant) -> bool {
        now < self.until
    }
}

/// Maximum transitions kept per instance.
pub const TRANSITION_HISTORY: usize = 32;

/// Bounded history of transitions, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransitionLog {
    entries: VecDeque<Transition>,
}

impl TransitionLog {
    pub(crate) fn push(&mut self, transition: Transition) {
        if self.entries.len() == TRANSITION_HISTORY {
            self.entries.pop_front();
        }
        self.entries.push_back(transition);
    }

    /// Transitions, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Transition> {
        self.entries.iter()
    }

    /// The latest transition.
    pub fn last(&self) -> Option<&Transition> {
        self.entries.back()
    }

    /// Number kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing happened yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
