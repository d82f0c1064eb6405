//! The load-sharing engine (CLUSTERIP on nftables): both boxes answer one shared address, each
//! for its hash buckets, and a dead box's buckets are taken over at once.
//!
//! Per `[[clusterip]]` group the engine puts the shared address on the interface (as /32),
//! joins the shared MAC (multicast, or unicast flooding), and owns the group's rules and
//! bucket sets in `tandem_southbound::cluster_filter`'s tables. Which buckets this box holds
//! is [`ownership::decide`]'s answer to what the pair heartbeat says of the partner (read from
//! the [`SharingBoard`]); each move is one nftables transaction of set-element changes, and
//! only what the kernel took is published back to the heartbeat, so the partner never learns
//! of a bucket this box does not really hold.
//!
//! It runs on a thread and runtime of its own: its nftables and rtnetlink calls block, and the
//! VRRP thread (where the heartbeat decides) must never wait for them.

pub mod ownership;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_config::model::{ClusterIpGroup, HashTuple};
use tandem_config::Config;
use tandem_southbound::cluster_filter::{self, BucketSets, GroupCounters, GroupRules, HashFields};
use tandem_southbound::net::NetOp;
use tandem_southbound::sysfs;
use tokio::sync::mpsc;

use crate::engine::{EngineContext, EngineHandle, EngineRequest};
use crate::sharing_board::{LocalGroup, PartnerGroup, Presence, SharingBoard};

use ownership::{bucket_list, decide, Partner, Shares};

/// The console word (`cluster status`).
pub const NAME: &str = "cluster";
/// How long a box that has never heard its partner keeps to its own buckets after it starts:
/// long enough for a partner that boots alongside to be heard, short enough that a box
/// alone serves everything soon.
const BOOT_GRACE: Duration = Duration::from_secs(3);
/// Moves kept for status.
const MOVES_KEPT: usize = 8;
/// How often the engine looks again without news (the boot grace, a retry due).
const TICK: Duration = Duration::from_millis(500);
/// How long after a failed apply or move the engine rebuilds everything.
const RETRY: Duration = Duration::from_secs(5);
const SYS_CLASS_NET: &str = "/sys/class/net";

/// One running group.
#[derive(Debug, Clone)]
struct Group {
    config: ClusterIpGroup,
    rules: GroupRules,
    shares: Shares,
    /// What the kernel holds for this box.
    sets: BucketSets,
    /// This box's own address on the group's interface (the partner probes it).
    address: Ipv4Addr,
    /// The shared address was added and the MAC joined.
    active: bool,
}

impl Group {
    /// The group as the heartbeat reports it.
    fn report(&self, active: bool, held: u64) -> LocalGroup {
        LocalGroup {
            name: self.config.name.as_str().to_owned(),
            active,
            held,
            address: self.address,
            interface: self.config.interface.as_str().to_owned(),
        }
    }
}

/// What `cluster status` shows of the last moves.
#[derive(Debug, Clone)]
struct Move {
    at: Instant,
    line: String,
}

struct Engine {
    context: EngineContext,
    board: SharingBoard,
    groups: Vec<Group>,
    started: Instant,
    moves: VecDeque<Move>,
    /// Bucket moves made since the engine started (any group).
    moves_made: u64,
    /// The last error applying rules or moving buckets.
    error: Option<String>,
    /// The grace ran out without a word from the partner (logged once).
    grace_over: bool,
    /// The config being run (a failed apply or move is retried from it).
    config: Option<Arc<Config>>,
    /// When to rebuild everything from `config` after a failure.
    retry_at: Option<Instant>,
    /// What the last retry reported (a retry that fails the same way logs nothing new).
    retry_report: Vec<String>,
}

/// Starts the engine when the config has load-sharing groups.
pub fn start(config: &Config, context: &EngineContext) -> Option<EngineHandle> {
    if config.clusterip.is_empty() {
        return None;
    }
    let (requests, inbox) = mpsc::channel(32);
    let config = Arc::new(config.clone());
    let engine_context = context.clone();
    let log = context.log.clone();
    let spawned = std::thread::Builder::new()
        .name("cluster".to_owned())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(async move {
                    // Conntrack (the `ct` expressions) and jhash are modules in Debian's
                    // kernel; sets, meta, payload and the arp/netdev families are built in.
                    crate::engine::load_feature_modules(
                        &engine_context.log,
                        NAME,
                        &["nf_tables", "nft_ct", "nft_hash"],
                    );
                    let mut engine = Engine::new(engine_context);
                    let lines = engine.apply(&config, false).await;
                    engine.config = Some(config);
                    for line in lines {
                        engine.context.log.line(format!("cluster: {line}"));
                    }
                    engine.run(inbox).await;
                }),
                Err(error) => log.line(format!(
                    "cluster: cannot start the engine's runtime: {error}"
                )),
            }
        });
    if let Err(error) = spawned {
        context
            .log
            .line(format!("cluster: cannot start the engine thread: {error}"));
        return None;
    }
    Some(EngineHandle {
        name: NAME,
        requests,
    })
}

fn hash_fields(tuple: HashTuple) -> HashFields {
    match tuple {
        HashTuple::SourceIp => HashFields::SourceIp,
        HashTuple::SourceIpPort => HashFields::SourceIpPort,
        HashTuple::SourceIpPortDestinationPort => HashFields::SourceIpPortDestinationPort,
    }
}

/// The rules of `group` (None: an IPv6 address, which validation refuses).
fn rules_of(group: &ClusterIpGroup) -> Option<GroupRules> {
    let IpAddr::V4(vip) = group.vip else {
        return None;
    };
    let (mac, unicast_flood) = group.shared_mac();
    Some(GroupRules {
        interface: group.interface.as_str().to_owned(),
        vip,
        mac: mac.0,
        unicast_flood,
        hash: hash_fields(group.hash),
        seed: group.hash_init,
        buckets: u32::from(group.total_nodes.clamp(1, 64)),
    })
}

/// This box's first IPv4 address on `interface` in the config (unspecified: none).
fn own_address(config: &Config, interface: &str) -> Ipv4Addr {
    config
        .interfaces
        .iter()
        .filter(|i| i.name.as_str() == interface)
        .flat_map(|i| i.addresses.iter())
        .find_map(|cidr| match cidr.addr {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .unwrap_or(Ipv4Addr::UNSPECIFIED)
}

impl Engine {
    fn new(context: EngineContext) -> Engine {
        Engine {
            board: context.sharing.clone(),
            context,
            groups: Vec::new(),
            started: Instant::now(),
            moves: VecDeque::new(),
            moves_made: 0,
            error: None,
            grace_over: false,
            config: None,
            retry_at: None,
            retry_report: Vec::new(),
        }
    }

    async fn run(&mut self, mut inbox: mpsc::Receiver<EngineRequest>) {
        let mut partner = self.board.watch_partner();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                request = inbox.recv() => match request {
                    Some(EngineRequest::Status(reply)) => {
                        let _ = reply.send(self.status_text());
                    }
                    Some(EngineRequest::Metrics(reply)) => {
                        let _ = reply.send(self.metrics());
                    }
                    Some(EngineRequest::Apply { config, reply }) => {
                        let lines = self.apply(&config, false).await;
                        self.config = Some(config);
                        let text: String = lines.iter().map(|l| format!("cluster: {l}\n")).collect();
                        let _ = reply.send(text);
                    }
                    Some(EngineRequest::Track { .. }) => {}
                    Some(EngineRequest::Standby { reply, .. }) => {
                        let _ = reply.send(
                            "cluster: standby is a VRRP state: `vrrp standby on|off`\n".to_owned(),
                        );
                    }
                    Some(EngineRequest::Shutdown(done)) => {
                        self.stop().await;
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.stop().await;
                        return;
                    }
                },
                changed = partner.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let view = partner.borrow_and_update().clone();
                    self.rebalance(&view.cause);
                }
                _ = tick.tick() => {
                    if self.retry_at.is_some_and(|at| at <= Instant::now()) {
                        self.retry().await;
                    }
                    let cause = self.board.partner().cause;
                    self.rebalance(&cause);
                }
            }
        }
    }

    /// What the rule makes of the partner for `group`.
    fn partner_for(&mut self, group: &Group) -> Partner {
        match self.board.partner().presence {
            Presence::Lost => Partner::Absent,
            Presence::Alive => Partner::Unreachable,
            Presence::Unknown => {
                if self.started.elapsed() < BOOT_GRACE {
                    Partner::Starting
                } else {
                    if !self.grace_over {
                        self.grace_over = true;
                        self.context.log.line(format!(
                            "cluster: nothing heard from the partner on the peer link in {} s: this box serves every bucket (check the peer cable if a partner runs)",
                            BOOT_GRACE.as_secs()
                        ));
                    }
                    Partner::Absent
                }
            }
            Presence::Up(groups) => {
                match groups.iter().find(|g| g.name == group.config.name.as_str()) {
                    Some(PartnerGroup {
                        active: true,
                        held,
                        address,
                        ..
                    }) => Partner::Holding {
                        held: *held & group.shares.all,
                        // The lower address lets go of a contested bucket.
                        yields: group.address < *address,
                    },
                    Some(PartnerGroup { held, .. }) => Partner::Leaving {
                        held: *held & group.shares.all,
                    },
                    None => Partner::Leaving { held: 0 },
                }
            }
        }
    }

    /// Moves buckets to where the rule wants them; one nftables transaction for every group.
    fn rebalance(&mut self, cause: &str) {
        let mut changes = Vec::new();
        for index in 0..self.groups.len() {
            let group = self.groups[index].clone();
            if !group.active {
                continue;
            }
            let partner = self.partner_for(&group);
            let wanted = decide(group.shares, partner, group.sets);
            if wanted != group.sets {
                changes.push((index, group.sets, wanted));
            }
        }
        if changes.is_empty() {
            return;
        }
        match cluster_filter::set_buckets(&changes) {
            Ok(()) => {
                self.error = None;
                for (index, old, new) in changes {
                    let group = &mut self.groups[index];
                    group.sets = new;
                    let gained = new.mine & !old.mine;
                    let lost = old.mine & !new.mine;
                    let mut what = Vec::new();
                    if gained != 0 {
                        what.push(format!(
                            "took {} bucket(s) {}",
                            gained.count_ones(),
                            bucket_list(gained)
                        ));
                    }
                    if lost != 0 {
                        what.push(format!(
                            "released {} bucket(s) {}",
                            lost.count_ones(),
                            bucket_list(lost)
                        ));
                    }
                    if what.is_empty() {
                        what.push("flows under way now accepted only as before".to_owned());
                    }
                    let line = format!(
                        "group {}: {} ({cause}); this box holds {} of {}",
                        group.config.name,
                        what.join(", "),
                        new.mine.count_ones(),
                        group.shares.all.count_ones()
                    );
                    self.context.log.line(format!("cluster: {line}"));
                    if self.moves.len() == MOVES_KEPT {
                        self.moves.pop_front();
                    }
                    self.moves.push_back(Move {
                        at: Instant::now(),
                        line,
                    });
                    self.moves_made = self.moves_made.saturating_add(1);
                }
                self.publish();
            }
            Err(error) => {
                let line = format!(
                    "moving buckets failed: {error}; the rules are rebuilt in {} s",
                    RETRY.as_secs()
                );
                if self.error.as_deref() != Some(line.as_str()) {
                    self.context.log.line(format!("cluster: {line}"));
                }
                self.error = Some(line);
                self.retry_at.get_or_insert(Instant::now() + RETRY);
            }
        }
    }

    /// Tells the heartbeat what this box holds.
    fn publish(&self) {
        self.board.set_local(
            self.groups
                .iter()
                .map(|group| group.report(group.active, group.sets.mine))
                .collect(),
        );
    }

    /// Reconciles to `config`: groups gone are removed (address, MAC), the rest keep the
    /// buckets they hold, new ones start from what the partner leaves them.
    async fn apply(&mut self, config: &Config, rebuild: bool) -> Vec<String> {
        let mut lines = Vec::new();
        let old = std::mem::take(&mut self.groups);
        let mut groups = Vec::new();
        for wanted in config.clusterip.iter() {
            let Some(rules) = rules_of(wanted) else {
                lines.push(format!(
                    "group {}: {} is not IPv4; not applied",
                    wanted.name, wanted.vip
                ));
                continue;
            };
            let kept = old
                .iter()
                .find(|g| g.config.name == wanted.name && g.rules == rules);
            let local: Vec<u8> = wanted.local_nodes.iter().copied().collect();
            let shares = Shares::new(wanted.total_nodes, &local);
            groups.push(Group {
                config: wanted.clone(),
                rules,
                shares,
                // A group that keeps its rules keeps its buckets (within the new shares).
                sets: kept.map_or(BucketSets::default(), |g| BucketSets {
                    mine: g.sets.mine & shares.all,
                    taken_over: g.sets.taken_over & shares.all,
                }),
                address: own_address(config, wanted.interface.as_str()),
                active: false,
            });
        }
        let unchanged = !rebuild
            && old.len() == groups.len()
            && old
                .iter()
                .zip(&groups)
                .all(|(was, now)| was.active && was.rules == now.rules);
        if unchanged {
            // Nothing to rebuild (the counters and the sets stay as they are); only the
            // shares may have moved.
            for (group, was) in groups.iter_mut().zip(&old) {
                group.active = was.active;
            }
            self.groups = groups;
            self.publish();
            self.rebalance("the committed config");
            return lines;
        }
        // Gone or changed groups: their address and MAC go first.
        for group in &old {
            let still = groups
                .iter()
                .any(|g| g.config.name == group.config.name && g.rules == group.rules);
            if !still && group.active {
                self.release(group, &mut lines).await;
            }
        }
        let table: Vec<(GroupRules, BucketSets)> =
            groups.iter().map(|g| (g.rules.clone(), g.sets)).collect();
        if let Err(error) = cluster_filter::replace(&table) {
            lines.push(format!(
                "rules not installed: {error}; the shared addresses are not answered on this box"
            ));
            self.error = Some(error.to_string());
            self.groups = groups;
            self.publish();
            self.retry_at = Some(Instant::now() + RETRY);
            return lines;
        }
        for group in &mut groups {
            let was = old
                .iter()
                .any(|g| g.config.name == group.config.name && g.rules == group.rules && g.active);
            group.active = self.claim(group, &mut lines).await;
            if group.active && !was {
                let (mac, unicast) = group.config.shared_mac();
                lines.push(format!(
                    "group {}: {} on {} behind {} MAC {mac}, {} buckets, this box's share {}",
                    group.config.name,
                    group.rules.vip,
                    group.rules.interface,
                    if unicast {
                        "unicast flooding"
                    } else {
                        "multicast"
                    },
                    group.shares.all.count_ones(),
                    bucket_list(group.shares.assigned)
                ));
            }
        }
        self.groups = groups;
        self.error = None;
        self.retry_at = self
            .groups
            .iter()
            .any(|g| !g.active)
            .then(|| Instant::now() + RETRY);
        self.publish();
        self.rebalance("the committed config");
        lines
    }

    /// Rebuilds everything from the running config after a failure; logs only what differs
    /// from the last retry's report.
    async fn retry(&mut self) {
        self.retry_at = None;
        let Some(config) = self.config.clone() else {
            return;
        };
        let lines = self.apply(&config, true).await;
        if lines != self.retry_report {
            for line in &lines {
                self.context.log.line(format!("cluster: retry: {line}"));
            }
        }
        self.retry_report = lines;
    }

    /// Puts a group's address on its interface and joins its MAC; false (with the reason in
    /// `lines`) when either fails.
    async fn claim(&mut self, group: &Group, lines: &mut Vec<String>) -> bool {
        let interface = &group.rules.interface;
        let op = NetOp::AddAddress {
            link: interface.clone(),
            address: IpAddr::V4(group.rules.vip),
            prefix_len: 32,
        };
        if let Err(error) = self.context.net.apply(std::slice::from_ref(&op)).await {
            lines.push(format!("group {}: {error}", group.config.name));
            return false;
        }
        let Some(ifindex) = sysfs::ifindex(Path::new(SYS_CLASS_NET), interface) else {
            lines.push(format!(
                "group {}: interface {interface} not found; the shared MAC is not joined",
                group.config.name
            ));
            return false;
        };
        if let Err(error) = cluster_filter::join_mac(ifindex, group.rules.mac) {
            lines.push(format!(
                "group {}: joining the shared MAC on {interface} failed: {error}",
                group.config.name
            ));
            return false;
        }
        true
    }

    /// Removes a group's address and leaves its MAC.
    async fn release(&mut self, group: &Group, lines: &mut Vec<String>) {
        let interface = &group.rules.interface;
        let op = NetOp::DelAddress {
            link: interface.clone(),
            address: IpAddr::V4(group.rules.vip),
            prefix_len: 32,
        };
        if let Err(error) = self.context.net.apply(std::slice::from_ref(&op)).await {
            lines.push(format!("group {}: {error}", group.config.name));
        }
        if let Some(ifindex) = sysfs::ifindex(Path::new(SYS_CLASS_NET), interface) {
            if let Err(error) = cluster_filter::leave_mac(ifindex, group.rules.mac) {
                lines.push(format!(
                    "group {}: leaving the shared MAC on {interface} failed: {error}",
                    group.config.name
                ));
            }
        }
        lines.push(format!(
            "group {}: {} removed from {interface}",
            group.config.name, group.rules.vip
        ));
    }

    /// Leaves every group: the partner (told the groups no longer run here) takes all.
    async fn stop(&mut self) {
        let mut lines = Vec::new();
        if let Err(error) = cluster_filter::replace(&[]) {
            lines.push(format!("removing the rules failed: {error}"));
        }
        let groups = std::mem::take(&mut self.groups);
        for group in groups.iter().filter(|g| g.active) {
            self.release(group, &mut lines).await;
        }
        self.board
            .set_local(groups.iter().map(|group| group.report(false, 0)).collect());
        for line in lines {
            self.context.log.line(format!("cluster: {line}"));
        }
    }

    /// The metric families: per group the buckets this box holds, has taken over and the
    /// partner holds, and the packet counters of its rules; the partner's presence.
    fn metrics(&self) -> crate::metrics::Families {
        use crate::metrics::{Families, Family, Labels};
        let view = self.board.partner();
        let mut presence = Family::gauge(
            "tandem_cluster_partner_presence",
            "The partner as the load-sharing engine sees it, one-hot: unknown, up (heartbeat), alive (service LAN only), lost.",
        );
        let now = match &view.presence {
            Presence::Unknown => "unknown",
            Presence::Up(_) => "up",
            Presence::Alive => "alive",
            Presence::Lost => "lost",
        };
        presence.add_each(
            &Labels::NONE,
            "presence",
            ["unknown", "up", "alive", "lost"].map(|p| (p, p == now)),
        );
        let mut running = Family::gauge(
            "tandem_cluster_group_running",
            "1 when the group's shared address and MAC are in place on this box.",
        );
        let mut buckets = Family::gauge(
            "tandem_cluster_buckets",
            "Hash buckets of the load-sharing group.",
        );
        let mut held = Family::gauge(
            "tandem_cluster_buckets_held",
            "Buckets this box accepts new flows in (its own and taken over).",
        );
        let mut taken = Family::gauge(
            "tandem_cluster_buckets_taken_over",
            "Buckets this box took over from the partner.",
        );
        let mut partner = Family::gauge(
            "tandem_cluster_partner_buckets_held",
            "Buckets the partner reports holding over the heartbeat (while it is up).",
        );
        let mut packets = Family::counter(
            "tandem_cluster_packets_total",
            "Packets to the shared address by verdict: established (flows this box accepted), new_accepted, taken_over, dropped (left to the partner).",
        );
        let counters = cluster_filter::counters(self.groups.len()).ok();
        for (index, group) in self.groups.iter().enumerate() {
            let labels = Labels::of(&[("group", group.config.name.as_str())]);
            running.add(labels.clone(), group.active);
            buckets.add(labels.clone(), group.shares.all.count_ones());
            held.add(labels.clone(), group.sets.mine.count_ones());
            taken.add(labels.clone(), group.sets.taken_over.count_ones());
            if let Presence::Up(groups) = &view.presence {
                if let Some(g) = groups.iter().find(|g| g.name == group.config.name.as_str()) {
                    partner.add(labels.clone(), g.held.count_ones());
                }
            }
            if let Some(c) = counters.as_ref().and_then(|c| c.get(index)) {
                packets.add_each(
                    &labels,
                    "verdict",
                    [
                        ("established", c.established),
                        ("new_accepted", c.new_accepted),
                        ("taken_over", c.taken_over),
                        ("dropped", c.dropped),
                    ],
                );
            }
        }
        let moves = Family::counter(
            "tandem_cluster_bucket_moves_total",
            "Bucket moves (one nftables transaction each) since the engine started.",
        )
        .with(self.moves_made);
        let errors = usize::from(self.error.is_some()) + usize::from(counters.is_none());
        let mut families = Families::new();
        for family in [
            presence, running, buckets, held, taken, partner, packets, moves,
        ] {
            families.push(family);
        }
        families.push(crate::metrics::engine_errors(NAME, errors));
        families
    }

    fn status_text(&self) -> String {
        let mut out = String::new();
        let view = self.board.partner();
        let presence = match &view.presence {
            Presence::Unknown => "not heard yet",
            Presence::Up(_) => "up on the heartbeat",
            Presence::Alive => "alive on the service LAN, heartbeat down",
            Presence::Lost => "lost",
        };
        let _ = writeln!(
            out,
            "cluster: partner {presence} ({}; {:.1} s ago)",
            view.cause,
            view.since.elapsed().as_secs_f64()
        );
        if let Some(error) = &self.error {
            let _ = writeln!(out, "  error: {error}");
        }
        let counters = cluster_filter::counters(self.groups.len()).ok();
        for (index, group) in self.groups.iter().enumerate() {
            let (mac, unicast) = group.config.shared_mac();
            let _ = writeln!(
                out,
                "group {}: {} on {}, {} MAC {mac}, hash {} seed {:#x}, {} buckets{}",
                group.config.name,
                group.rules.vip,
                group.rules.interface,
                if unicast {
                    "unicast flooding"
                } else {
                    "multicast"
                },
                hash_name(group.config.hash),
                group.config.hash_init,
                group.shares.all.count_ones(),
                if group.active { "" } else { " (not running)" }
            );
            let _ = writeln!(
                out,
                "  this box: {} bucket(s) {} (its share {}); taken over: {}",
                group.sets.mine.count_ones(),
                bucket_list(group.sets.mine),
                bucket_list(group.shares.assigned),
                bucket_list(group.sets.taken_over)
            );
            let partner_held = match &view.presence {
                Presence::Up(groups) => groups
                    .iter()
                    .find(|g| g.name == group.config.name.as_str())
                    .map_or("does not run this group".to_owned(), |g| {
                        format!("{} bucket(s) {}", g.held.count_ones(), bucket_list(g.held))
                    }),
                _ => "unknown".to_owned(),
            };
            let _ = writeln!(out, "  partner: {partner_held}");
            if let Some(GroupCounters {
                established,
                taken_over,
                new_accepted,
                dropped,
            }) = counters.as_ref().and_then(|c| c.get(index))
            {
                let _ = writeln!(
                    out,
                    "  packets: established {established}, new accepted {new_accepted}, taken over {taken_over}, dropped {dropped}"
                );
            }
        }
        if !self.moves.is_empty() {
            let _ = writeln!(out, "last moves:");
            for one in self.moves.iter().rev() {
                let _ = writeln!(
                    out,
                    "  {:.1} s ago: {}",
                    one.at.elapsed().as_secs_f64(),
                    one.line
                );
            }
        }
        // Every line under the engine's word, ending with the marker (as `lvs status`), so a
        // reader can tell the block from log lines around it on the console.
        let mut text: String = out
            .lines()
            .map(|line| match line.strip_prefix("cluster: ") {
                Some(_) => format!("{line}\n"),
                None => format!("cluster: {line}\n"),
            })
            .collect();
        text.push_str("cluster: end\n");
        text
    }
}

fn hash_name(tuple: HashTuple) -> &'static str {
    match tuple {
        HashTuple::SourceIp => "source-ip",
        HashTuple::SourceIpPort => "source-ip-port",
        HashTuple::SourceIpPortDestinationPort => "source-ip-port-destination-port",
    }
}
