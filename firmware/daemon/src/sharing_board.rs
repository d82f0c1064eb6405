//! The notice board between the load-sharing engine and the pair heartbeat.
//!
//! Which box accepts which hash buckets of a shared address is agreed over the heartbeat: each
//! box's heartbeat carries the buckets it holds per group, and a box only takes a bucket its
//! partner does not hold. The heartbeat runs on the VRRP engine's thread (its loss decisions are
//! takeovers), the nftables updates on the load-sharing engine's own thread (a kernel call must
//! never delay a VRRP timer). This board is all they share: two `watch` channels, written
//! without waiting and read by borrowing the latest value.
//! - this box's groups: written by the load-sharing engine after each bucket move, read by the
//!   heartbeat at every transmission;
//! - the partner: written by the heartbeat when the partner's report or the session's state
//!   changes, read (and awaited) by the load-sharing engine.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

/// One of this box's load-sharing groups, as the heartbeat reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalGroup {
    pub name: String,
    /// The group runs here (address, shared MAC and rules in place).
    pub active: bool,
    /// Buckets this box accepts new flows in (bit i = bucket i).
    pub held: u64,
    /// This box's own address on the group's interface (the partner probes it there).
    pub address: Ipv4Addr,
    /// The group's interface (where the partner's own address is probed from).
    pub interface: String,
}

/// One of the partner's groups, from its heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerGroup {
    pub name: String,
    pub active: bool,
    pub held: u64,
    pub address: Ipv4Addr,
}

/// What this box knows of its partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// Nothing heard since this box started.
    Unknown,
    /// The heartbeat is up; the partner's groups as it reports them.
    Up(Vec<PartnerGroup>),
    /// The heartbeat died but the partner answered on a service LAN (or the probe could not
    /// run): it is alive, only the cable failed. Nobody takes the other's buckets.
    Alive,
    /// The heartbeat died and the partner was silent on the service LAN: it is gone.
    Lost,
}

/// The partner's state and why it is so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerView {
    pub presence: Presence,
    /// The heartbeat's words for the last change ("partner heartbeat lost (...), partner
    /// silent on the service LAN").
    pub cause: String,
    /// When the view last changed.
    pub since: Instant,
}

/// Both directions; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct SharingBoard {
    local: Arc<watch::Sender<Vec<LocalGroup>>>,
    partner: Arc<watch::Sender<PartnerView>>,
}

impl Default for SharingBoard {
    fn default() -> Self {
        SharingBoard::new()
    }
}

impl SharingBoard {
    pub fn new() -> SharingBoard {
        let (local, _) = watch::channel(Vec::new());
        let (partner, _) = watch::channel(PartnerView {
            presence: Presence::Unknown,
            cause: "nothing heard from the partner yet".to_owned(),
            since: Instant::now(),
        });
        SharingBoard {
            local: Arc::new(local),
            partner: Arc::new(partner),
        }
    }

    /// This box's groups (for the heartbeat).
    pub fn local(&self) -> Vec<LocalGroup> {
        self.local.borrow().clone()
    }

    /// Publishes this box's groups (the load-sharing engine, after a move).
    pub fn set_local(&self, groups: Vec<LocalGroup>) {
        self.local.send_if_modified(|current| {
            let changed = *current != groups;
            *current = groups;
            changed
        });
    }

    /// The partner as last published.
    pub fn partner(&self) -> PartnerView {
        self.partner.borrow().clone()
    }

    /// A receiver that wakes on every partner change (the load-sharing engine).
    pub fn watch_partner(&self) -> watch::Receiver<PartnerView> {
        self.partner.subscribe()
    }

    /// Publishes the partner's presence (the heartbeat); only a change wakes the engine.
    pub fn set_partner(&self, presence: Presence, cause: impl Into<String>) {
        let cause = cause.into();
        self.partner.send_if_modified(|current| {
            if current.presence == presence {
                return false;
            }
            *current = PartnerView {
                presence,
                cause,
                since: Instant::now(),
            };
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_change_of_presence_wakes_the_engine() {
        let board = SharingBoard::new();
        let mut partner = board.watch_partner();
        assert!(!partner.has_changed().unwrap());
        board.set_partner(Presence::Up(Vec::new()), "heartbeat up");
        assert!(partner.has_changed().unwrap());
        partner.borrow_and_update();
        board.set_partner(Presence::Up(Vec::new()), "report");
        assert!(!partner.has_changed().unwrap());
        board.set_partner(Presence::Lost, "silent");
        assert!(partner.has_changed().unwrap());
        assert_eq!(board.partner().cause, "silent");
    }
}
