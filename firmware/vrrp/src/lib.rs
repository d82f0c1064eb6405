//! `tandem-vrrp`: a sans-IO VRRP speaker (RFC 9568 VRRPv3, RFC 3768 VRRPv2) that interoperates
//! with keepalived.
//!
//! - [`Instance`]: one virtual router's state machine. `handle_*` inputs with an injected
//!   [`Instant`], [`Action`]s out through `poll_action`, one deadline through `poll_timeout`.
//! - [`Speaker`]: every instance of the box: demultiplexes received packets by interface,
//!   family and VRID, fans tracking events out, and keeps sync groups failing together.
//! - [`status`]: plain data for `tandem vrrp status` (last transitions with their cause,
//!   counters per discard reason and per transition cause).
//! - [`time`]: the injected clock and the RFC timer arithmetic (Skew_Time kept exact).
//! - [`reconcile`]: live reconfiguration ([`Speaker::reconcile`]) reported as data: instances
//!   added, removed, changed (with each [`ParamChange`]) or untouched, and what was refused.
//! - [`ingress`]: pure decisions around a received advert (unicast peer filter, healed-split
//!   re-announcement with its rate limit).
//! - [`plan`]: a configured `[[vrrp]]` instance (`tandem_config`) to [`InstancePlan`]: the
//!   core's [`InstanceParams`] plus where each virtual address goes, the unicast peers and the
//!   gratuitous ARP settings, the `use_vmac` macvlan; the primary address is picked from
//!   interface addresses passed in.
//! - [`announce`]: when a master sends gratuitous ARPs / unsolicited NAs
//!   ([`AnnounceSchedule`], keepalived's `garp_master_delay` / `repeat` / `refresh`).
//! - The address-list grace: after a live change of an instance's virtual addresses (here, or
//!   seen in the adverts of the master a backup follows), adverts listing other addresses are
//!   processed rather than discarded for up to [`ADDRESS_LIST_GRACE`] or until the lists
//!   match, so a VIP change committed on one box of a pair at a time causes no takeover
//!   (RFC 9568 section 7.1 makes the check a MAY). Counted and shown in status.
//!
//! Packet bytes are built and parsed by `tandem-wire`; the daemon executes the actions (raw
//! sockets, rtnetlink addresses, GARP / NA bursts).

pub mod announce;
pub mod ingress;
pub mod instance;
pub mod pair;
pub mod params;
pub mod plan;
pub mod reconcile;
pub mod speaker;
pub mod status;
pub mod time;

pub use announce::AnnounceSchedule;
pub use ingress::{unicast_peer_allowed, Accepted, HealedSplit, REANNOUNCE_GAP};
pub use instance::{Action, Instance, OutgoingAdvert, RxMeta, Status, ADDRESS_LIST_GRACE};
pub use params::{check_track_name, InstanceKey, InstanceParams, ParamError, TrackKind, TrackSpec};
pub use plan::{InstancePlan, PlanError, VipPlacement, VmacPlan};
pub use reconcile::{GroupsReconciled, ParamChange, Reconciled, Refused};
pub use speaker::{GroupId, InstanceId, Speaker, SpeakerCounters};
pub use status::{
    AddressListGrace, Cause, CauseKind, Counters, DiscardReason, GraceCause, MasterDownReason,
    MasterInfo, PartnerCause, State, Transition, TransitionLog,
};
pub use tandem_wire::{Auth, Ipv4ChecksumMode, Version};
pub use time::Instant;
