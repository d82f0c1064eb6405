//! The peer channel: each box tells its partner, over the peer cable, which TCP connections it
//! terminates on its virtual addresses, so that whichever box takes the addresses over can
//! tickle those clients at once (seed 000; see `vrrp_engine::tickle`).
//!
//! The daemon owns it (not an engine): it is started with the config, follows every commit
//! ([`reconcile`]: the VIP list is updated in place; a changed peer link or pair id restarts
//! it), and engines reach the current one through a [`PeerSlot`]. Pairing, config replication
//! and the pair heartbeat will add their message types to the same channel.
//!
//! One task per box: every [`COLLECT_PERIOD`] it collects the connections (sock_diag, plus the
//! IPVS table on a director) on the blocking pool and sends the list when it changed and at
//! least every second, as UDP datagrams to all-nodes on the peer link (`peer_link.interface`
//! from the config, else the board's `peer` NIC), port [`PEER_CHANNEL_PORT`]. It receives the
//! partner's datagrams on the same socket and keeps the partner's latest complete list.
//!
//! Receive rules, each refusal counted by reason and never touching state: the source must be
//! IPv6 link-local and the hop limit exactly 255 (GTSM: nothing that crossed a router), the
//! datagram must fit the buffer, and it must decode (structure, pair id, MAC when the box has
//! a pair key; see `tandem_wire::peer_message`).

mod list;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tandem_config::Config;
use tandem_southbound::peer_socket::{is_link_local, PeerSocket, PEER_HOP_LIMIT};
use tandem_southbound::sock_diag::{self, TcpEndpoints, IPVS_CONNECTIONS};
use tandem_southbound::sysfs;
use tandem_wire::peer_message::{decode, KeyPolicy, PairKey, TcpConnection, MAX_DATAGRAM_LEN};

use crate::logring::Log;

use list::{Inbox, Outbox};

/// UDP port of the peer channel on the peer link (fixed: both boxes run the same firmware,
/// and the link carries nothing else that could clash).
pub const PEER_CHANNEL_PORT: u16 = 5539;
/// How often this box's connections are collected (a change is sent at the next collection).
const COLLECT_PERIOD: Duration = Duration::from_millis(250);
/// How long to wait before trying again to open the socket (the link may not exist yet).
const REOPEN_DELAY: Duration = Duration::from_secs(5);
/// The board's name for the peer NIC, used when the config names none.
const DEFAULT_PEER_INTERFACE: &str = "peer";
const SYS_CLASS_NET: &str = "/sys/class/net";

/// Counters and lists, shared between the channel's task and the VRRP engine.
#[derive(Debug, Default)]
pub struct Shared {
    inbox: Inbox,
    /// Connections in this box's last list.
    pub reported: usize,
    /// Connections left out of it (over [`list::MAX_CONNECTIONS`]).
    pub truncated: usize,
    pub lists_sent: u64,
    pub datagrams_sent: u64,
    pub send_errors: u64,
    pub collect_errors: u64,
    pub datagrams_received: u64,
    pub lists_completed: u64,
    /// Refused datagrams by reason.
    pub refused: BTreeMap<&'static str, u64>,
    /// The socket is open.
    pub open: bool,
    /// The VIPs whose connections are collected (follows commits).
    vips: BTreeSet<IpAddr>,
}

/// The VRRP engine's end of the channel.
#[derive(Debug, Clone)]
pub struct PeerChannel {
    pub interface: String,
    pub keyed: bool,
    pub pair_id: u64,
    shared: Arc<Mutex<Shared>>,
    task: Option<tokio::task::AbortHandle>,
}

/// The daemon's current peer channel, shared with the engines; replaced when a commit changes
/// the peer link.
#[derive(Debug, Clone, Default)]
pub struct PeerSlot(Arc<Mutex<Option<PeerChannel>>>);

impl PeerSlot {
    fn lock(&self) -> MutexGuard<'_, Option<PeerChannel>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The channel now (None: no peer link).
    pub fn get(&self) -> Option<PeerChannel> {
        self.lock().clone()
    }
}

/// The VIPs of `config` whose connections the partner should know about.
fn config_vips(config: &Config) -> BTreeSet<IpAddr> {
    config
        .vrrp
        .iter()
        .flat_map(|instance| instance.vips.iter().map(|vip| vip.address))
        .collect()
}

/// The peer interface `config` names (else the board's `peer` NIC).
fn config_interface(config: &Config) -> String {
    match &config.peer_link {
        Some(link) => link.interface.as_str().to_owned(),
        None => DEFAULT_PEER_INTERFACE.to_owned(),
    }
}

/// Brings the channel in `slot` in line with `config`: started when the config floats VIPs or
/// names a peer link, stopped when it does neither, restarted when the interface or pair id
/// changed, and otherwise only given the new VIP list. Returns a line for the commit report
/// when something changed.
///
/// `paired` is the pair id and key pairing gave this box: they replace the config's pair id,
/// and datagrams are then authenticated both ways.
pub fn reconcile(
    slot: &PeerSlot,
    config: &Config,
    paired: Option<(u64, PairKey)>,
    log: &Log,
) -> Option<String> {
    let wanted = !config.vrrp.is_empty() || config.peer_link.is_some();
    let interface = config_interface(config);
    let key = paired.map(|(_, key)| key);
    let pair_id = paired.map_or_else(
        || config.peer_link.as_ref().map_or(0, |link| link.pair_id),
        |(id, _)| id,
    );
    let mut current = slot.lock();
    if let Some(channel) = current.as_ref() {
        if wanted
            && channel.interface == interface
            && channel.pair_id == pair_id
            && channel.keyed == key.is_some()
        {
            channel.lock().vips = config_vips(config);
            return None;
        }
    }
    let had = current.take().map(|channel| channel.stop()).is_some();
    *current = if wanted {
        start(config, pair_id, key, log)
    } else {
        None
    };
    match (had, current.as_ref()) {
        (_, Some(channel)) => Some(format!(
            "peer channel: {} on {} (pair {:016x})",
            if had { "restarted" } else { "started" },
            channel.interface,
            channel.pair_id
        )),
        (true, None) => Some("peer channel: stopped".to_owned()),
        (false, None) => None,
    }
}

impl PeerChannel {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock cannot leave the counters inconsistent in a way that
        // matters more than losing tickles, so a poisoned lock is used as is.
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stops the channel's task (the socket closes with it).
    fn stop(self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }

    /// Removes and returns the partner's connections on `vips` (used once, at takeover).
    pub fn take_for(&self, vips: &[IpAddr]) -> Vec<TcpConnection> {
        self.lock().inbox.take_for(vips)
    }

    /// The partner's connection count on `vips` and the age of its list (None: no list yet).
    pub fn partner_count(&self, vips: &[IpAddr]) -> Option<(usize, Duration)> {
        self.lock().inbox.count_for(Instant::now(), vips)
    }

    /// One status line for the channel itself.
    pub fn status_line(&self) -> String {
        let shared = self.lock();
        let refused: Vec<String> = shared
            .refused
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        let partner = match &shared.inbox.current {
            Some(list) => format!(
                "partner list {} (epoch {:016x}) {} connections, {:.1} s old",
                list.sequence,
                list.epoch,
                list.connections.len(),
                list.completed_at.elapsed().as_secs_f64()
            ),
            None => "no partner list yet".to_owned(),
        };
        format!(
            "peer channel {} udp/{PEER_CHANNEL_PORT} ({}, pair {:016x}{}): this box reports {} connections{} (lists sent {}, datagrams {}, send errors {}, collect errors {}); received {} datagrams, {} lists; {partner}; refused: {}\n",
            self.interface,
            if self.keyed { "HMAC-SHA256" } else { "unauthenticated" },
            self.pair_id,
            if shared.open { "" } else { ", socket not open" },
            shared.reported,
            if shared.truncated > 0 {
                format!(" ({} left out)", shared.truncated)
            } else {
                String::new()
            },
            shared.lists_sent,
            shared.datagrams_sent,
            shared.send_errors,
            shared.collect_errors,
            shared.datagrams_received,
            shared.lists_completed,
            if refused.is_empty() {
                "none".to_owned()
            } else {
                refused.join(", ")
            }
        )
    }
}

/// Starts the channel for the VIPs of `config` (None, logged, when there is no peer link).
/// `key` is the pair key when the box is paired: datagrams are then authenticated both ways.
fn start(config: &Config, pair_id: u64, key: Option<PairKey>, log: &Log) -> Option<PeerChannel> {
    let interface = config_interface(config);
    if sysfs::ifindex(Path::new(SYS_CLASS_NET), &interface).is_none() {
        log.line(format!(
            "peer channel: no interface {interface}; connections are not shared with the partner and takeovers send no tickle ACKs (set peer_link.interface)"
        ));
        return None;
    }
    // Collecting this box's connections needs sock_diag for TCP (modules on Debian's kernel).
    crate::engine::load_feature_modules(log, "peer channel", &["inet_diag", "tcp_diag"]);
    let mut channel = PeerChannel {
        interface,
        keyed: key.is_some(),
        pair_id,
        shared: Arc::new(Mutex::new(Shared {
            vips: config_vips(config),
            ..Shared::default()
        })),
        task: None,
    };
    let task = Task {
        channel: channel.clone(),
        key,
        log: log.clone(),
    };
    channel.task = Some(tokio::spawn(task.run()).abort_handle());
    Some(channel)
}

/// A random epoch per start, so the partner can tell a restart from a replay of old sequences
/// (also the pair heartbeat's session).
pub(crate) fn random_epoch() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

#[derive(Debug)]
struct Task {
    channel: PeerChannel,
    key: Option<PairKey>,
    log: Log,
}

impl Task {
    async fn run(self) {
        let interface = self.channel.interface.clone();
        let socket = loop {
            let opened = sysfs::ifindex(Path::new(SYS_CLASS_NET), &interface)
                .ok_or_else(|| std::io::Error::other("no such interface"))
                .and_then(|index| PeerSocket::open(&interface, index, PEER_CHANNEL_PORT));
            match opened {
                Ok(socket) => break socket,
                Err(error) => {
                    self.log.line(format!(
                        "peer channel: cannot open udp/{PEER_CHANNEL_PORT} on {interface}: {error}; retrying in {} s",
                        REOPEN_DELAY.as_secs()
                    ));
                    tokio::time::sleep(REOPEN_DELAY).await;
                }
            }
        };
        self.channel.lock().open = true;
        self.log.line(format!(
            "peer channel: sharing connections on {} VIPs with the partner over {interface} udp/{PEER_CHANNEL_PORT}",
            self.channel.lock().vips.len()
        ));
        let mut outbox = Outbox::new(self.channel.pair_id, random_epoch());
        let mut ticker = tokio::time::interval(COLLECT_PERIOD);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut buffer = vec![0u8; MAX_DATAGRAM_LEN];
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let current = self.collect().await;
                    let datagrams = outbox.poll(Instant::now(), current, self.key.as_ref());
                    if datagrams.is_empty() {
                        continue;
                    }
                    let mut errors = Vec::new();
                    for datagram in &datagrams {
                        if let Err(error) = socket.send(datagram).await {
                            errors.push(error);
                        }
                    }
                    let mut shared = self.channel.lock();
                    shared.lists_sent += 1;
                    shared.datagrams_sent += u64::try_from(datagrams.len() - errors.len()).unwrap_or(0);
                    shared.reported = outbox.reported();
                    shared.truncated = outbox.truncated;
                    for error in errors {
                        shared.send_errors += 1;
                        if shared.send_errors.is_power_of_two() {
                            self.log.line(format!(
                                "peer channel: cannot send on {interface}: {error} ({} failures)",
                                shared.send_errors
                            ));
                        }
                    }
                }
                received = socket.recv(&mut buffer) => match received {
                    Ok(datagram) => self.on_datagram(&buffer, datagram),
                    Err(error) => {
                        let failures = {
                            let mut shared = self.channel.lock();
                            *shared.refused.entry("receive error").or_default() += 1;
                            shared.refused.get("receive error").copied().unwrap_or(0)
                        };
                        if failures.is_power_of_two() {
                            self.log.line(format!("peer channel: receive failed: {error} ({failures} times)"));
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
    }

    /// This box's connections on its VIPs, from sockets and (on a director) the IPVS table.
    async fn collect(&self) -> Vec<TcpConnection> {
        let vips = self.channel.lock().vips.clone();
        let collected = tokio::task::spawn_blocking(move || {
            let mut found: BTreeSet<TcpEndpoints> = BTreeSet::new();
            let mut errors = 0u64;
            match sock_diag::established_tcp(&vips) {
                Ok(sockets) => found.extend(sockets),
                Err(_) => errors += 1,
            }
            match sock_diag::ipvs_established(Path::new(IPVS_CONNECTIONS), &vips) {
                Ok(Some(ipvs)) => found.extend(ipvs),
                Ok(None) => {}
                Err(_) => errors += 1,
            }
            (found, errors)
        })
        .await;
        let (found, errors) = collected.unwrap_or_default();
        if errors > 0 {
            let mut shared = self.channel.lock();
            shared.collect_errors += errors;
            if shared.collect_errors.is_power_of_two() {
                self.log.line(format!(
                    "peer channel: cannot read this box's connections ({} failures)",
                    shared.collect_errors
                ));
            }
        }
        found
            .into_iter()
            .map(|ends| TcpConnection {
                vip: ends.local,
                client: ends.remote,
            })
            .collect()
    }

    fn on_datagram(&self, buffer: &[u8], datagram: tandem_southbound::peer_socket::PeerDatagram) {
        let mut shared = self.channel.lock();
        shared.datagrams_received += 1;
        let refusal = if !is_link_local(datagram.source) {
            Some("source not link-local")
        } else if datagram.hop_limit != Some(PEER_HOP_LIMIT) {
            Some("hop limit not 255")
        } else if datagram.truncated || datagram.length > buffer.len() {
            Some("bad length")
        } else {
            let bytes = buffer.get(..datagram.length).unwrap_or_default();
            let policy = self
                .key
                .as_ref()
                .map_or(KeyPolicy::Unkeyed, KeyPolicy::Require);
            match decode(bytes, policy, self.channel.pair_id) {
                Err(error) => {
                    let reason = error.reason();
                    let first = !shared.refused.contains_key(reason);
                    if first {
                        self.log.line(format!(
                            "peer channel: refused a datagram from {}: {error}",
                            datagram.source
                        ));
                    }
                    Some(reason)
                }
                Ok(message) => {
                    let outcome = shared.inbox.accept(Instant::now(), &message);
                    if outcome == list::Outcome::Completed {
                        shared.lists_completed += 1;
                    }
                    outcome.refusal()
                }
            }
        };
        if let Some(reason) = refusal {
            *shared.refused.entry(reason).or_default() += 1;
        }
    }
}
