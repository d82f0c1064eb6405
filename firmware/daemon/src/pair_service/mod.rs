//! The pair service: pairing from the consoles and config replication, over the peer cable.
//!
//! Why a service of its own: pairing and replication must work whatever the config runs (a
//! factory-fresh box has no config, no VRRP and so no heartbeat), and nothing here may ever
//! wait on the VRRP thread or delay it. It runs as one tokio task beside the daemon's loop:
//! the daemon publishes this box's side ([`LocalState`]: generation, digest, history, the
//! running config and its blob, the pair identity) on a watch channel after every change, and
//! the service asks the daemon to store and apply what the partner sends ([`ToDaemon`]); the
//! daemon stays the only owner of the transactions.
//!
//! Transport, all on the peer NIC only (see `tandem_southbound::peer_socket`): UDP port
//! [`PAIR_PORT`] carries the pairing exchange (`tandem_wire::pairing`) and each box's STATE
//! every [`STATE_PERIOD`] (`tandem_wire::replication`: generation, digest, and what the sender
//! concluded about the receiver); TCP port [`PAIR_PORT`] carries config transfers, because a
//! 1000 x 10 blob is hundreds of datagrams and the kernel already does retransmission and
//! flow control. A transfer: the server sends CHALLENGE (a fresh nonce), the client sends PUSH
//! (the nonce echoed, the blob, a MAC over both), the server answers RESULT after its engines
//! applied the config. A captured PUSH is useless later: it names a nonce the server never
//! issues again. The blob inside a PUSH is sealed (ChaCha20-Poly1305, see `seal`): a config
//! can hold secrets.
//!
//! Firmware (channel 4): with each STATE a box sends FIRMWARE (its version and slot) to a
//! partner whose STATE says channel 4 or newer, and `pair install-partner FILE`
//! ([`PairHandle::send_firmware`]) sends a signed bundle as BUNDLE on the same TCP port after
//! the challenge; the receiving daemon checks and installs it exactly as `firmware install`
//! ([`ToDaemon::InstallBundle`]) and the answer comes back as RESULT.

use tandem_seal as seal;
mod session;

pub use session::{secure_random, spawn, PairHandle, PartnerFirmware, SendFirmwareError};

use std::sync::Arc;

use tandem_config::history::History;
use tandem_config::identity::PairIdentity;
use tandem_config::{Config, MacKey};
use tokio::sync::oneshot;

/// UDP and TCP port of the pair service on the peer link.
pub const PAIR_PORT: u16 = 5540;
/// How often each box tells its partner its generation and digest.
pub const STATE_PERIOD: std::time::Duration = std::time::Duration::from_millis(500);

/// This box's side, published by the daemon.
#[derive(Debug, Clone, Default)]
pub struct LocalState {
    /// The peer link interface (the board's peer NIC unless the config names one).
    pub interface: String,
    pub identity: Option<PairIdentity>,
    pub generation: u64,
    pub digest: u64,
    pub history: History,
    pub running: Arc<Config>,
    /// The running config as a blob, keyed under the pair key (empty before any commit),
    /// framed on first use.
    pub blob: Arc<WholeBlob>,
    /// The console's admin password hash, sealed with every blob this box sends.
    pub credential: Option<String>,
    /// The running config as a delta over the generation published before it, for a partner
    /// that runs that one (the usual push after a commit).
    pub delta: Option<Arc<PartnerDelta>>,
    /// The running firmware (its version and slot go to the partner as FIRMWARE).
    pub firmware: crate::firmware_slot::Firmware,
}

/// The running config framed whole for the partner, on first use: after a commit the partner
/// usually takes the delta, and framing (CRC and MAC over ~200 KB for 1000 x 10, ~0.4 ms)
/// would delay that push. Framed on the pair service's thread, not the daemon's.
#[derive(Default)]
pub struct WholeBlob {
    /// None: this box runs no config yet.
    source: Option<(tandem_config::transaction::PartnerBlob, Option<MacKey>)>,
    framed: std::sync::OnceLock<Vec<u8>>,
}

impl WholeBlob {
    pub fn new(source: tandem_config::transaction::PartnerBlob, key: Option<MacKey>) -> WholeBlob {
        WholeBlob {
            source: Some((source, key)),
            framed: std::sync::OnceLock::new(),
        }
    }

    /// This box runs no config yet: there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.source.is_none()
    }

    /// The framed blob; empty when this box runs no config (or it does not frame, which a
    /// config that was committed cannot do).
    pub fn bytes(&self) -> &[u8] {
        match &self.source {
            None => &[],
            Some((source, key)) => self
                .framed
                .get_or_init(|| source.frame(key.as_ref()).unwrap_or_default()),
        }
    }
}

impl std::fmt::Debug for WholeBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let generation = self.source.as_ref().map(|(source, _)| source.generation());
        f.debug_struct("WholeBlob")
            .field("generation", &generation)
            .field("framed", &self.framed.get().map(Vec::len))
            .finish()
    }
}

/// A delta from `base_generation` (digest `base_digest`) to the published generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerDelta {
    pub base_generation: u64,
    pub base_digest: u64,
    /// `tandem_config::delta`'s encoding.
    pub bytes: Vec<u8>,
}

/// How the daemon answered a partner's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdoptAnswer {
    /// Stored and applied; the lines of the apply report.
    Applied(String),
    /// This box runs that config already.
    Already,
    /// The configs diverged (the message says how to settle it).
    Diverged(String),
    /// Refused: bad blob or invalid config (the message says why).
    Invalid(String),
    /// A delta this box cannot take: the partner should send its whole blob.
    NeedFull(String),
}

/// What the service asks of the daemon.
#[derive(Debug)]
pub enum ToDaemon {
    /// Store and apply the partner's blob (a fast-forward, or `force`d).
    Adopt {
        /// A config blob, or a config delta (`tandem_config::delta::is_delta`).
        blob: Vec<u8>,
        /// The partner's admin password hash, taken with its config.
        credential: Option<String>,
        force: bool,
        reply: oneshot::Sender<AdoptAnswer>,
    },
    /// Pairing succeeded: store the identity and run this box's half.
    Paired {
        identity: PairIdentity,
        reply: oneshot::Sender<String>,
    },
    /// The partner sent a firmware bundle: check and install it as `firmware install` does
    /// (the partner being the sender).
    InstallBundle {
        bundle: Vec<u8>,
        reply: oneshot::Sender<crate::firmware_slot::Installed>,
    },
    /// The partner asked for a reboot after its bundle was installed (the answer is sent).
    Reboot { why: String },
}

/// The console commands the service answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    Start,
    Join(String),
    AdoptPeer,
    Push,
    ComparePeer,
    Status,
}
