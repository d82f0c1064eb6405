//! The LVS director engine (`lvs`): keeps the kernel's IPVS table equal to what the config and
//! the health checks ask for, and applies a newly committed config live, touching only what
//! changed.
//!
//! At start it loads `ip_vs` and the schedulers the config uses (appliance only), turns on
//! forwarding, takes the NAT gateway address when it owns it (see [`desired`]: not when VRRP
//! floats it), reads the kernel table back and applies only the difference (never a flush: a
//! restarted tandem facing an identical table sends nothing). Health transitions from the
//! `tandem-lvs` runner re-evaluate one service (quiesce or remove, re-entry delay, sorry server,
//! quorum) and apply that service's diff. A transport failure makes the engine re-read the
//! kernel table before the next diff. Fwmark services get their marking rules as nftables table
//! `inet tandem`, the NAT real servers their source NAT as table `inet tandem_nat`, each
//! replaced in one transaction. With `peer_link.ipvs_sync` the kernel's connection sync daemons
//! run on the sync interface (see [`sync`]) and are stopped when the engine shuts down.
//!
//! **Live apply** (`EngineRequest::Apply`): the pure decisions are `tandem_lvs::live`'s (plan
//! reused per unchanged service, checks keyed by (service, real server), health memory carried
//! over, the effective table diffed against the kernel table as last read or changed); this
//! module executes them: check subscriptions stopped and started on the runner, IPVS operations,
//! and, only when they changed, the marking rules, the source NAT, the NAT gateway address and
//! the sync daemons; newly needed scheduler modules are loaded. The reply has one line per
//! change.
//!
//! The engine runs on its own thread (its kernel calls block; the VRRP timers on the main
//! runtime must never wait for them).

pub mod desired;
pub mod status;
pub mod sync;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tandem_config::Config;
use tandem_ipvs::{Executor, ServiceKey};
use tandem_lvs::health::{runner, CheckSpec, HealthEvent, HealthScheduler, SubscriberId};
use tandem_lvs::live::{describe_op, CheckChanges, LiveState};
use tandem_lvs::plan::{CheckSlot, Plan};
use tandem_lvs::{diff, Op, RealServerId, ServiceId, Table};
use tandem_southbound::net::NetOp;
use tandem_southbound::nft::MarkRule;
use tandem_southbound::snat::MasqueradeRule;
use tokio::sync::mpsc;

use crate::engine::EngineContext;
use crate::engine::{EngineHandle, EngineRequest};
use crate::logring::Log;
use desired::{GatewayAddress, GatewayOwner};
use status::ServerHealthView;

/// Most health-check attempts in flight at once.
const MAX_CHECKS_IN_FLIGHT: usize = 64;
/// Subscribe/unsubscribe commands queued to the check runner.
const COMMAND_QUEUE: usize = 256;
/// Change lines listed in one apply report (and the log); the rest are counted.
const MAX_REPORT_LINES: usize = 100;
/// The answer to `EngineRequest::Standby`, which is the VRRP engine's.
const NOT_STANDBY: &str = "lvs: standby is a VRRP state: `vrrp standby on|off`\n";
/// libcrc32c (a dependency of nf_conntrack, so of ip_vs and of the NAT chains) asks the crypto
/// API for "crc32c" at init, a soft dependency modules.dep does not list: without this loaded
/// first, loading either fails with ENOENT.
const CRC32C_MODULE: &str = "crc32c_generic";

/// Starts the director engine when the config has active virtual services.
pub fn start(config: &Config, context: &EngineContext) -> Option<EngineHandle> {
    if !desired::directs(config) {
        return None;
    }
    let config = Arc::new(config.clone());
    let (requests, inbox) = mpsc::channel(16);
    let context = context.clone();
    let context_log = context.log.clone();
    let engine = async move {
        if let Err(error) = tandem_southbound::sysctl::set("net.ipv4.ip_forward", "1") {
            context.log.line(format!("lvs: {error}"));
        }
        let mut installed = Installed::default();
        let mut lines =
            reconcile_gateway(&mut installed, &context, desired::gateway_owner(&config)).await;
        lines.extend(reconcile_source_nat(
            &mut installed,
            &context.log,
            desired::source_nat_rules(&config),
            true,
        ));
        for line in lines {
            context.log.line(format!("lvs: {line}"));
        }
        let sync_plan = sync::plan(&config);
        let sync_source = match &sync_plan {
            Some(sync_plan) => sync_source_address(&context, sync_plan).await,
            None => None,
        };
        match Director::open(config, context.clone(), installed, sync_plan, sync_source) {
            Ok(director) => director.run(inbox).await,
            Err(error) => {
                context.log.line(format!("lvs: {error}"));
                answer_until_shutdown(inbox, error.to_string()).await;
            }
        }
    };
    // IPVS and nftables calls block inside sendmsg while the kernel works (a 1000 x 10 table
    // is ~0.2 s under TCG). The daemon's runtime is single-threaded and also drives the VRRP
    // timers, so the director gets a thread and runtime of its own: a big table load never
    // delays an advert.
    let log = context_log.clone();
    let spawned = std::thread::Builder::new()
        .name("lvs".to_owned())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(engine),
                Err(error) => log.line(format!("lvs: cannot start the engine's runtime: {error}")),
            }
        });
    if let Err(error) = spawned {
        context_log.line(format!("lvs: cannot start the engine thread: {error}"));
        return None;
    }
    Some(EngineHandle {
        name: "lvs",
        requests,
    })
}

/// What this engine installed outside the IPVS table, so a new config changes or removes only
/// that.
#[derive(Debug, Default)]
struct Installed {
    /// Who owns the NAT gateway address under the config in force.
    gateway_owner: Option<GatewayOwner>,
    /// The NAT gateway address this engine added and holds.
    gateway: Option<GatewayAddress>,
    /// The source NAT rules in table `inet tandem_nat`.
    source_nat: Vec<MasqueradeRule>,
    /// The marking rules in table `inet tandem`.
    mark_rules: Vec<MarkRule>,
}

/// Moves the NAT gateway address to `owner`: adds the address this engine now owns, removes
/// the one it added and no longer owns (one VRRP now floats is left to VRRP), and re-adds its
/// address when it went missing. Returns the change lines; logs the owner when it changes.
async fn reconcile_gateway(
    installed: &mut Installed,
    context: &EngineContext,
    owner: GatewayOwner,
) -> Vec<String> {
    if installed.gateway_owner.as_ref() != Some(&owner) && owner != GatewayOwner::None {
        context.log.line(format!("lvs: {}", owner.describe()));
    }
    let mut lines = Vec::new();
    let change = desired::gateway_change(installed.gateway.as_ref(), &owner);
    if let Some(old) = change.hand_over {
        lines.push(format!(
            "NAT gateway {old}: now floated by VRRP; left in place for VRRP (its master keeps it, a backup removes it)"
        ));
        installed.gateway = None;
    }
    if let Some(old) = change.remove {
        match context.net.apply(&[old.del_op()]).await {
            Ok(()) => lines.push(format!("NAT gateway {old} removed")),
            Err(error) => lines.push(format!("NAT gateway: {error}")),
        }
        installed.gateway = None;
    }
    if let Some(new) = change.add {
        match context.net.apply(&[new.add_op()]).await {
            Ok(()) => {
                lines.push(format!("NAT gateway {new} added"));
                installed.gateway = Some(new);
            }
            Err(error) => lines.push(format!(
                "NAT gateway: {error}; it is added again at the next config apply"
            )),
        }
    }
    if let Some(kept) = change.keep {
        match context.net.addresses(&kept.link).await {
            Ok(present) if present.iter().any(|(address, _)| *address == kept.address) => {}
            Ok(_) => match context.net.apply(&[kept.add_op()]).await {
                Ok(()) => lines.push(format!("NAT gateway {kept} was missing: added again")),
                Err(error) => lines.push(format!("NAT gateway {kept} is missing: {error}")),
            },
            Err(error) => lines.push(format!("NAT gateway {kept}: {error}")),
        }
    }
    installed.gateway_owner = Some(owner);
    lines
}

/// Replaces table `inet tandem_nat` when its rules changed (see `southbound::snat`); an empty
/// set removes the table. At start an empty set removes a table left by an earlier run, best
/// effort (a host without nf_tables has no table of ours either).
fn reconcile_source_nat(
    installed: &mut Installed,
    log: &Log,
    rules: Vec<MasqueradeRule>,
    starting: bool,
) -> Vec<String> {
    use tandem_southbound::snat;
    if rules == installed.source_nat && !starting {
        return Vec::new();
    }
    if rules.is_empty() {
        let removed = snat::replace(&[]);
        if starting {
            return Vec::new();
        }
        return match removed {
            Ok(()) => {
                installed.source_nat.clear();
                vec![format!("source NAT removed (table inet {})", snat::TABLE)]
            }
            Err(error) => vec![format!("source NAT: {error}")],
        };
    }
    crate::engine::load_feature_modules(
        log,
        "lvs: source NAT",
        // The source NAT comes before the table's modules at start: crc32c first here too.
        &[CRC32C_MODULE, "nf_tables", "nft_chain_nat", "nft_masq"],
    );
    match snat::replace(&rules) {
        Ok(()) => {
            let lines = rules
                .iter()
                .map(|rule| {
                    format!(
                        "source NAT: {}/{} out of any port but {} is masqueraded (table inet {})",
                        rule.network,
                        rule.prefix_len,
                        rule.inside_port,
                        snat::TABLE
                    )
                })
                .collect();
            installed.source_nat = rules;
            lines
        }
        Err(error) => vec![format!("source NAT: {error}")],
    }
}

/// Replaces table `inet tandem` with the fwmark services' marking rules when they changed (one
/// transaction); none where there were some removes the table. With no fwmark service before
/// or after nothing is touched, so hosts without nf_tables are unaffected.
fn reconcile_mark_rules(installed: &mut Installed, log: &Log, rules: Vec<MarkRule>) -> Vec<String> {
    use tandem_southbound::nft;
    if rules == installed.mark_rules {
        return Vec::new();
    }
    if rules.is_empty() {
        return match nft::replace(&[]) {
            Ok(()) => {
                installed.mark_rules.clear();
                vec![format!(
                    "firewall marks removed (table inet {})",
                    nft::TABLE
                )]
            }
            Err(error) => vec![format!("firewall marks: {error}")],
        };
    }
    if installed.mark_rules.is_empty() {
        crate::engine::load_feature_modules(log, "lvs", &["nf_tables"]);
    }
    match nft::replace(&rules) {
        Ok(()) => {
            let line = format!(
                "firewall marks: {} rules in table inet {}",
                rules.len(),
                nft::TABLE
            );
            installed.mark_rules = rules;
            vec![line]
        }
        Err(error) => vec![format!("firewall marks: {error}")],
    }
}

/// Makes sure the sync interface has an IPv4 source address (see [`sync`]); returns it.
async fn sync_source_address(context: &EngineContext, plan: &sync::SyncPlan) -> Option<IpAddr> {
    let present = match context.net.addresses(&plan.interface).await {
        Ok(present) => present,
        Err(error) => {
            context
                .log
                .line(format!("lvs: sync: {}: {error}", plan.field));
            return None;
        }
    };
    let mac = tandem_southbound::sysfs::mac(Path::new("/sys/class/net"), &plan.interface);
    let op = match mac.and_then(|mac| sync::address_op(&plan.interface, &present, mac)) {
        Some(op) => op,
        None => return present.iter().map(|(a, _)| *a).find(IpAddr::is_ipv4),
    };
    match context.net.apply(std::slice::from_ref(&op)).await {
        Ok(()) => {
            context.log.line(format!(
                "lvs: sync: {op} (IPv4 link-local source of the sync datagrams)"
            ));
            match op {
                NetOp::AddAddress { address, .. } => Some(address),
                _ => None,
            }
        }
        Err(error) => {
            context.log.line(format!("lvs: sync: {error}"));
            None
        }
    }
}

/// The engine could not start (`why`): answers every request until shut down.
async fn answer_until_shutdown(mut inbox: mpsc::Receiver<EngineRequest>, why: String) {
    while let Some(request) = inbox.recv().await {
        match request {
            EngineRequest::Status(reply) => {
                let _ = reply.send(format!("lvs: not running: {why}\n"));
            }
            EngineRequest::Metrics(reply) => {
                let mut families = crate::metrics::Families::new();
                families.push(crate::metrics::engine_errors("lvs", 1));
                let _ = reply.send(families);
            }
            EngineRequest::Apply { reply, .. } => {
                let _ = reply.send(format!(
                    "lvs: not applied: the director engine is not running ({why}); fix that (see `log`) and restart the box to load the IPVS table\n"
                ));
            }
            EngineRequest::Track { .. } => {}
            EngineRequest::Standby { reply, .. } => {
                let _ = reply.send(NOT_STANDBY.to_owned());
            }
            EngineRequest::Shutdown(done) => {
                let _ = done.send(());
                return;
            }
        }
    }
}

/// Why the director could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open IPVS: {0}")]
    Open(#[from] tandem_ipvs::OpenError),
    #[error("cannot read the kernel IPVS table: {0}")]
    Read(#[from] tandem_ipvs::ExecError),
    #[error("cannot apply the IPVS table: {0}")]
    Apply(#[from] tandem_ipvs::TransportError),
}

/// Per checked server: what the status shows.
#[derive(Debug, Clone)]
struct CheckState {
    service: ServiceId,
    server: RealServerId,
    what: String,
    up: bool,
    since: Option<Instant>,
    reason: Option<String>,
    /// Down verdicts since the check started (kept when a config change replaces it).
    failures: u64,
}

struct Director {
    log: Log,
    context: EngineContext,
    exec: Executor,
    started: Instant,
    /// Plan, subscriptions, health memory and effective table (the pure state).
    live: LiveState,
    /// Status of each running subscription.
    checks: BTreeMap<SubscriberId, CheckState>,
    /// The kernel table as we last read or changed it.
    applied: Table,
    /// The kernel table must be re-read before the next diff (after a transport failure).
    stale: bool,
    /// The connection sync daemons the config asks for (None: sync off).
    sync: Option<sync::SyncPlan>,
    /// The IPv4 source address of the sync datagrams (for the status).
    sync_source: Option<IpAddr>,
    /// What the engine installed besides the IPVS table.
    installed: Installed,
    /// Subscribe/unsubscribe to the check runner (while it runs).
    commands: Option<mpsc::Sender<runner::Command>>,
}

/// Loads `ip_vs`, the schedulers and the application helpers (`ip_vs_ftp` for a NAT FTP
/// service, with `nf_nat` and conntrack before it) (only as PID 1: on a host the kernel is not
/// ours).
fn load_modules(plan: &Plan, marks: bool, log: &Log) {
    let mut names: Vec<&str> = vec![CRC32C_MODULE, "ip_vs"];
    names.extend(plan.scheduler_modules.iter().map(String::as_str));
    names.extend(plan.app_modules.iter().map(String::as_str));
    if marks {
        names.push("nf_tables");
    }
    crate::engine::load_feature_modules(log, "lvs", &names);
}

/// Lines for the reply and the log: prefixed, at most [`MAX_REPORT_LINES`] listed.
fn report(log: &Log, lines: Vec<String>) -> String {
    let mut text = String::new();
    let total = lines.len();
    for line in lines.into_iter().take(MAX_REPORT_LINES) {
        log.line(format!("lvs: {line}"));
        text.push_str("lvs: ");
        text.push_str(&line);
        text.push('\n');
    }
    if total > MAX_REPORT_LINES {
        let more = format!(
            "lvs: ... and {} more changes (not listed)",
            total - MAX_REPORT_LINES
        );
        log.line(&more);
        text.push_str(&more);
        text.push('\n');
    }
    text
}

/// The ping checks' ICMP sockets: datagram ICMP sockets (the kernel demultiplexes the replies
/// by socket) are allowed only to the groups of `net.ipv4.ping_group_range`, none by default,
/// and the checks fall back to raw sockets, each of which sees every ICMP message from its
/// target. As keepalived does for `PING_CHECK`, the range is widened to hold group 0 (root,
/// every process of the appliance); a range that holds it already is left alone.
fn allow_ping_sockets(log: &Log) {
    const KEY: &str = "net.ipv4.ping_group_range";
    let widened =
        tandem_southbound::sysctl::get(KEY).map(|range| ping_group_range_with_root(&range));
    let result = match widened {
        Ok(Some(range)) => tandem_southbound::sysctl::set(KEY, &range),
        Ok(None) => Ok(()),
        Err(error) => Err(error),
    };
    if let Err(error) = result {
        log.line(format!("lvs: {error}; ping checks use raw ICMP sockets"));
    }
}

/// `ping_group_range` widened to start at group 0 (keepalived's `set_ping_group_range`: the
/// upper bound kept, or 0 when the range was empty), or None when it holds group 0 already or
/// cannot be read.
fn ping_group_range_with_root(range: &str) -> Option<String> {
    let mut bounds = range.split_whitespace().map(str::parse::<u32>);
    let (Some(Ok(low)), Some(Ok(high))) = (bounds.next(), bounds.next()) else {
        return None;
    };
    (low != 0 || high < low).then(|| format!("0 {}", if high < low { 0 } else { high }))
}

impl Director {
    fn open(
        config: Arc<Config>,
        context: EngineContext,
        mut installed: Installed,
        sync: Option<sync::SyncPlan>,
        sync_source: Option<IpAddr>,
    ) -> Result<Director, StartError> {
        let log = context.log.clone();
        let plan = tandem_lvs::plan::from_config(&config);
        let marks = desired::planned_mark_rules(&config, &plan);
        load_modules(&plan, !marks.is_empty(), &log);
        for line in reconcile_mark_rules(&mut installed, &log, marks) {
            log.line(format!("lvs: {line}"));
        }
        for note in &plan.notes {
            log.line(format!("lvs: note: {note}"));
        }
        let mut exec = Executor::open()?;
        for (key, value) in [
            // A real server taken out of a service drops its connections at once instead of
            // black-holing them (the "remove" failure policy).
            ("net.ipv4.vs.expire_nodest_conn", "1"),
            // Quiesced and re-added servers: let IPVS reschedule stale persistence templates.
            ("net.ipv4.vs.expire_quiescent_template", "1"),
        ] {
            if let Err(error) = tandem_southbound::sysctl::set(key, value) {
                log.line(format!("lvs: {error}"));
            }
        }
        allow_ping_sockets(&log);
        let begun = Instant::now();
        let applied = Table::from_kernel(&exec.table()?);
        let mut live = LiveState::new();
        let decision = live.apply_plan(plan, &applied, begun);
        live.config = Some(config);
        let mut director = Director {
            log,
            context,
            exec,
            started: begun,
            live,
            checks: BTreeMap::new(),
            applied,
            stale: false,
            sync,
            sync_source,
            installed,
            commands: None,
        };
        director.note_check_changes(&decision.checks);
        director.apply(&decision.ops)?;
        director.log.line(format!(
            "lvs: table in sync: {} services, {} real servers, {} ops in {} ms",
            director.live.effective.services.len(),
            director.live.effective.real_server_count(),
            decision.ops.len(),
            begun.elapsed().as_millis()
        ));
        for line in director.start_sync_daemons() {
            director.log.line(format!("lvs: {line}"));
        }
        Ok(director)
    }

    /// The sync daemons the kernel runs now (None, logged, when it cannot say).
    fn running_sync_daemons(&mut self) -> Option<Vec<tandem_ipvs::SyncDaemon>> {
        match self.exec.daemons() {
            Ok(running) => Some(running),
            Err(error) => {
                self.log
                    .line(format!("lvs: sync: cannot read the sync daemons: {error}"));
                None
            }
        }
    }

    /// Starts the missing sync daemons, restarts differing ones (see [`sync`]); returns what
    /// happened.
    fn start_sync_daemons(&mut self) -> Vec<String> {
        let Some(plan) = self.sync.clone() else {
            return Vec::new();
        };
        let Some(running) = self.running_sync_daemons() else {
            return vec!["sync: cannot read the running sync daemons; see `log`".to_owned()];
        };
        let requests = sync::reconcile(&plan.daemons(), &running);
        if requests.is_empty() {
            return vec![format!(
                "sync: master and backup already running on {} sync id {}",
                plan.interface, plan.sync_id
            )];
        }
        let mut lines = Vec::new();
        for request in &requests {
            match self.exec.apply(std::slice::from_ref(request)) {
                Ok(refused) => {
                    for error in refused {
                        let error = sync::explain(&plan, request, error.errno, &error.request);
                        lines.push(format!("sync: {error}"));
                    }
                }
                Err(error) => lines.push(format!("sync: {request}: {error}")),
            }
        }
        if lines.is_empty() {
            lines.push(format!(
                "sync: master and backup started on {} sync id {} group {}:{}",
                plan.interface,
                plan.sync_id,
                sync::SYNC_GROUP,
                sync::SYNC_PORT
            ));
        }
        lines
    }

    /// Stops the sync daemons this engine started (shutdown, or sync turned off); returns what
    /// happened.
    fn stop_sync_daemons(&mut self) -> Vec<String> {
        if self.sync.is_none() {
            return Vec::new();
        }
        let Some(running) = self.running_sync_daemons() else {
            return vec!["sync: cannot read the running sync daemons; see `log`".to_owned()];
        };
        let mut lines = Vec::new();
        for request in sync::stop(&running) {
            match self.exec.apply(std::slice::from_ref(&request)) {
                Ok(refused) => {
                    for error in refused {
                        lines.push(format!("sync: stop: {error}"));
                    }
                }
                Err(error) => lines.push(format!("sync: stop: {error}")),
            }
        }
        if lines.is_empty() {
            lines.push("sync: daemons stopped".to_owned());
        }
        lines
    }

    /// Restarts the sync daemons only when the config's sync plan changed.
    async fn reconcile_sync(&mut self, config: &Config) -> Vec<String> {
        let wanted = sync::plan(config);
        if wanted == self.sync {
            return Vec::new();
        }
        let mut lines = Vec::new();
        match &wanted {
            None => {
                lines.extend(self.stop_sync_daemons());
                self.sync_source = None;
            }
            Some(plan) => {
                self.sync_source = sync_source_address(&self.context, plan).await;
            }
        }
        self.sync = wanted;
        lines.extend(self.start_sync_daemons());
        lines
    }

    /// Reads the kernel table, diffs the whole effective table against it and applies.
    fn sync_all(&mut self, now: Instant) -> Result<(), StartError> {
        let begun = Instant::now();
        self.applied = Table::from_kernel(&self.exec.table()?);
        self.stale = false;
        self.live.reevaluate_all(now);
        let ops = diff(&self.live.effective, &self.applied);
        self.apply(&ops)?;
        self.log.line(format!(
            "lvs: table in sync: {} services, {} real servers, {} ops in {} ms",
            self.live.effective.services.len(),
            self.live.effective.real_server_count(),
            ops.len(),
            begun.elapsed().as_millis()
        ));
        Ok(())
    }

    /// Applies ops to the kernel; refusals are logged, mark the model stale and are returned
    /// by index.
    fn apply(&mut self, ops: &[Op]) -> Result<BTreeSet<usize>, tandem_ipvs::TransportError> {
        if ops.is_empty() {
            return Ok(BTreeSet::new());
        }
        let requests: Vec<_> = ops.iter().map(Op::to_request).collect();
        let refused = match self.exec.apply(&requests) {
            Ok(refused) => refused,
            Err(error) => {
                self.stale = true;
                return Err(error);
            }
        };
        let indexes: BTreeSet<usize> = refused.iter().map(|r| r.index).collect();
        for (index, op) in ops.iter().enumerate() {
            if !indexes.contains(&index) {
                let _ = self.applied.apply(op);
            }
        }
        for error in &refused {
            self.log.line(format!("lvs: kernel refused {error}"));
            self.stale = true;
        }
        Ok(indexes)
    }

    /// Re-evaluates one service and applies its diff.
    fn resync_service(&mut self, id: ServiceId, now: Instant) {
        if self.stale {
            if let Err(error) = self.sync_all(now) {
                self.log.line(format!("lvs: {error}"));
            }
            return;
        }
        let quorum_before = self.live.health.get(&id).and_then(|h| h.quorum_up());
        let ops = self.live.reevaluate(&id, &self.applied, now);
        let quorum_after = self.live.health.get(&id).and_then(|h| h.quorum_up());
        if quorum_before.is_some() && quorum_before != quorum_after {
            self.log.line(format!(
                "lvs: {id}: quorum {}",
                if quorum_after == Some(true) {
                    "regained"
                } else {
                    "lost"
                }
            ));
        }
        for op in &ops {
            self.log.line(format!("lvs: {op}"));
        }
        if let Err(error) = self.apply(&ops) {
            self.log
                .line(format!("lvs: {error}; re-reading the kernel table"));
        }
    }

    fn on_health(&mut self, event: HealthEvent) {
        let Some(state) = self.checks.get_mut(&event.subscriber) else {
            // A subscription a config apply dropped meanwhile.
            return;
        };
        state.up = event.up;
        state.since = Some(event.at);
        if !event.up {
            state.failures = state.failures.saturating_add(1);
        }
        if let Some(reason) = &event.reason {
            state.reason = Some(reason.to_string());
        }
        let (service, server) = (state.service, state.server);
        self.log.line(format!(
            "lvs: {service} {server}: check {} {}",
            state.what,
            match &event.reason {
                None => "passed: up".to_owned(),
                Some(reason) => format!("failed: down ({reason})"),
            }
        ));
        if let Some(h) = self.live.health.get_mut(&service) {
            h.set_health(server, event.up, event.at);
        }
        self.resync_service(service, Instant::now());
    }

    /// Records the status of subscriptions started and stopped: a replaced check keeps its
    /// last verdict's time and reason (it starts from that verdict).
    fn note_check_changes(&mut self, changes: &CheckChanges) {
        let mut replaced: BTreeMap<CheckSlot, CheckState> = BTreeMap::new();
        for (slot, subscriber) in &changes.unsubscribe {
            if let Some(state) = self.checks.remove(subscriber) {
                replaced.insert(*slot, state);
            }
        }
        for subscribe in &changes.subscribe {
            let (service, server) = subscribe.slot;
            let what = self
                .live
                .plan
                .check(&subscribe.slot)
                .map_or_else(|| "check".to_owned(), |c| c.what.to_string());
            let up = subscribe.spec.timing.start_up;
            let (since, reason, failures) = match replaced.remove(&subscribe.slot) {
                Some(old) if subscribe.replaces.is_some() => (old.since, old.reason, old.failures),
                _ => (
                    None,
                    (!up).then(|| "not checked yet (start_down)".to_owned()),
                    0,
                ),
            };
            self.checks.insert(
                subscribe.subscriber,
                CheckState {
                    service,
                    server,
                    what,
                    up,
                    since,
                    reason,
                    failures,
                },
            );
        }
    }

    /// Sends the stops, then the starts, to the check runner. The runner may be waiting to hand
    /// over health events meanwhile: those are kept in `pending` (no deadlock on a big change).
    async fn send_check_changes(
        &mut self,
        changes: &CheckChanges,
        events: &mut mpsc::Receiver<HealthEvent>,
        pending: &mut Vec<HealthEvent>,
    ) -> Option<String> {
        let commands = self.commands.clone()?;
        let stops = changes
            .unsubscribe
            .iter()
            .map(|(_, subscriber)| runner::Command::Unsubscribe(*subscriber));
        let starts = changes
            .subscribe
            .iter()
            .map(|s| runner::Command::Subscribe(s.subscriber, CheckSpec::clone(&s.spec)));
        for command in stops.chain(starts) {
            loop {
                tokio::select! {
                    biased;
                    permit = commands.reserve() => match permit {
                        Ok(permit) => {
                            permit.send(command);
                            break;
                        }
                        Err(_) => {
                            return Some(
                                "health checks: the check runner has stopped, so check changes are not applied; restart the box".to_owned(),
                            )
                        }
                    },
                    Some(event) = events.recv() => pending.push(event),
                }
            }
        }
        None
    }

    /// Applies a newly committed config (see the module documentation); returns the report.
    async fn apply_config(
        &mut self,
        config: Arc<Config>,
        events: &mut mpsc::Receiver<HealthEvent>,
    ) -> String {
        let now = Instant::now();
        let mut lines = Vec::new();
        if self.stale {
            match self.exec.table() {
                Ok(table) => {
                    self.applied = Table::from_kernel(&table);
                    self.stale = false;
                }
                Err(error) => lines.push(format!(
                    "cannot re-read the kernel IPVS table ({error}); the changes below are against the last known table"
                )),
            }
        }
        let old_modules: Vec<String> = self.live.plan.module_names().cloned().collect();
        let decision = self.live.apply(Arc::clone(&config), &self.applied, now);
        // Before the table changes: a new FTP service's first connection finds its helper.
        let new_modules: Vec<&str> = self
            .live
            .plan
            .module_names()
            .filter(|m| !old_modules.contains(m))
            .map(String::as_str)
            .collect();
        crate::engine::load_feature_modules(&self.log, "lvs", &new_modules);

        self.note_check_changes(&decision.checks);
        let mut pending = Vec::new();
        if let Some(problem) = self
            .send_check_changes(&decision.checks, events, &mut pending)
            .await
        {
            lines.push(problem);
        }

        let described: Vec<Vec<String>> = decision
            .ops
            .iter()
            .map(|op| describe_op(op, self.applied.services.get(op.service())))
            .collect();
        match self.apply(&decision.ops) {
            Ok(refused) => {
                for (index, (op, op_lines)) in decision.ops.iter().zip(described).enumerate() {
                    if refused.contains(&index) {
                        lines.push(format!(
                            "{op}: refused by the kernel (see `log`); the table is re-read at the next change"
                        ));
                    } else {
                        lines.extend(op_lines);
                    }
                }
            }
            Err(error) => lines.push(format!(
                "IPVS: {error}; {} table changes not applied, the kernel table is re-read at the next change",
                decision.ops.len()
            )),
        }
        lines.extend(decision.lines);

        let marks = desired::planned_mark_rules(&config, &self.live.plan);
        lines.extend(reconcile_mark_rules(&mut self.installed, &self.log, marks));
        lines.extend(
            reconcile_gateway(
                &mut self.installed,
                &self.context,
                desired::gateway_owner(&config),
            )
            .await,
        );
        lines.extend(reconcile_source_nat(
            &mut self.installed,
            &self.log,
            desired::source_nat_rules(&config),
            false,
        ));
        lines.extend(self.reconcile_sync(&config).await);

        let text = report(&self.log, lines);
        for event in pending {
            self.on_health(event);
        }
        text
    }

    /// The earliest re-entry deadline over all services, with its service.
    fn next_deadline(&self) -> Option<(Instant, ServiceId)> {
        self.live
            .health
            .iter()
            .filter_map(|(id, h)| {
                let policy = &self.live.plan.service(id)?.policy;
                h.next_deadline(policy).map(|t| (t, *id))
            })
            .min()
    }

    fn rotation(&self, state: &CheckState) -> String {
        let configured = self
            .live
            .plan
            .service(&state.service)
            .and_then(|s| s.service.real_servers.get(&state.server));
        let effective = self
            .live
            .effective
            .services
            .get(&state.service)
            .and_then(|s| s.real_servers.get(&state.server));
        match (effective, configured) {
            (Some(e), Some(c)) if e.weight == c.weight => "in".to_owned(),
            (Some(_), _) if state.up => "out: waiting for re-entry (weight 0)".to_owned(),
            (Some(_), _) => "out: failed check (quiesced, weight 0)".to_owned(),
            (None, _) if state.up => "out: waiting for re-entry".to_owned(),
            (None, _) => "out: failed check (removed)".to_owned(),
        }
    }

    /// The metric families: the kernel's table as just read, the checks' verdicts; a table
    /// that cannot be read or a stale one counts as an engine error.
    fn metrics(&mut self) -> crate::metrics::Families {
        let table = self.exec.table();
        let checks: BTreeMap<(ServiceKey, RealServerId), status::CheckMetrics> = self
            .checks
            .values()
            .map(|state| {
                (
                    (state.service, state.server),
                    status::CheckMetrics {
                        up: state.up,
                        failures: state.failures,
                    },
                )
            })
            .collect();
        let quorum: Vec<(ServiceKey, bool)> = self
            .live
            .health
            .iter()
            .filter_map(|(id, h)| h.quorum_up().map(|holds| (*id, holds)))
            .collect();
        let plan = &self.live.plan;
        let configured = |key: &ServiceKey, id: &RealServerId| {
            plan.service(key)
                .and_then(|s| s.service.real_servers.get(id))
                .map(|r| r.weight)
        };
        let errors = usize::from(self.stale) + usize::from(table.is_err());
        let mut families = status::metrics(
            table.as_deref().unwrap_or_default(),
            &configured,
            &checks,
            &quorum,
        );
        families.push(crate::metrics::engine_errors("lvs", errors));
        families
    }

    fn status_text(&mut self) -> String {
        let table = match self.exec.table() {
            Ok(table) => table,
            Err(error) => return format!("lvs: cannot read the kernel table: {error}\n"),
        };
        let mut health: BTreeMap<(ServiceKey, RealServerId), ServerHealthView> = BTreeMap::new();
        for state in self.checks.values() {
            health.insert(
                (state.service, state.server),
                ServerHealthView {
                    check: state.what.clone(),
                    up: state.up,
                    since_s: state
                        .since
                        .map(|t| t.saturating_duration_since(self.started).as_secs_f64()),
                    reason: if state.up { None } else { state.reason.clone() },
                    rotation: self.rotation(state),
                },
            );
        }
        let mut text = status::render(&table, &health, &self.live.plan.notes);
        for (id, h) in &self.live.health {
            if h.quorum_up() == Some(false) {
                text.push_str(&format!("lvs: {id}: quorum lost\n"));
            }
        }
        match self.exec.daemons() {
            Ok(running) => text.push_str(&sync::render_daemons(
                self.sync.as_ref(),
                &running,
                self.sync_source,
            )),
            Err(error) => text.push_str(&format!(
                "lvs: sync: cannot read the sync daemons: {error}\n"
            )),
        }
        match tandem_ipvs::conn::read_summary(sync::LISTED_CONNECTIONS) {
            Ok(summary) => text.push_str(&sync::render_connections(&summary)),
            Err(error) => text.push_str(&format!(
                "lvs: connections: cannot read {}: {error}\n",
                tandem_ipvs::conn::CONN_SYNC_PATH
            )),
        }
        text.push_str("lvs: end\n");
        text
    }

    async fn run(mut self, mut inbox: mpsc::Receiver<EngineRequest>) {
        let mut scheduler = HealthScheduler::new(u64::from(std::process::id()) ^ 0x5eed);
        let now = Instant::now();
        for subscriptions in self.live.subscriptions.values() {
            for (subscriber, spec) in subscriptions.values() {
                scheduler.subscribe(*subscriber, CheckSpec::clone(spec), now);
            }
        }
        let (commands, command_inbox) = mpsc::channel(COMMAND_QUEUE);
        self.commands = Some(commands);
        let (events_tx, mut events) = mpsc::channel(256);
        let health_task = tokio::spawn(runner::run(
            scheduler,
            command_inbox,
            events_tx,
            MAX_CHECKS_IN_FLIGHT,
            None,
        ));
        loop {
            let deadline = self.next_deadline();
            let reentry = async {
                match deadline {
                    Some((at, _)) => {
                        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                request = inbox.recv() => match request {
                    Some(EngineRequest::Status(reply)) => {
                        let _ = reply.send(self.status_text());
                    }
                    Some(EngineRequest::Metrics(reply)) => {
                        let _ = reply.send(self.metrics());
                    }
                    Some(EngineRequest::Apply { config, reply }) => {
                        let text = self.apply_config(config, &mut events).await;
                        let _ = reply.send(text);
                    }
                    Some(EngineRequest::Track { .. }) => {}
                    Some(EngineRequest::Standby { reply, .. }) => {
                        let _ = reply.send(NOT_STANDBY.to_owned());
                    }
                    Some(EngineRequest::Shutdown(done)) => {
                        // The table stays: traffic keeps flowing, and the next start adopts it.
                        // The sync daemons stop: they belong to this engine's config.
                        for line in self.stop_sync_daemons() {
                            self.log.line(format!("lvs: {line}"));
                        }
                        let _ = done.send(());
                        break;
                    }
                    None => break,
                },
                Some(event) = events.recv() => self.on_health(event),
                () = reentry => {
                    if let Some((_, id)) = deadline {
                        self.log.line(format!("lvs: {id}: re-entry time passed"));
                        self.resync_service(id, Instant::now());
                    }
                }
            }
        }
        self.commands = None;
        health_task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::ping_group_range_with_root;

    #[test]
    fn the_ping_group_range_is_widened_to_root_as_keepalived_does() {
        // The kernel's default (no group): root only.
        assert_eq!(ping_group_range_with_root("1\t0\n"), Some("0 0".into()));
        assert_eq!(ping_group_range_with_root("100 200"), Some("0 200".into()));
        // Root already in it (Debian's systemd default), or unreadable: left alone.
        assert_eq!(ping_group_range_with_root("0\t2147483647\n"), None);
        assert_eq!(ping_group_range_with_root("0 0"), None);
        assert_eq!(ping_group_range_with_root("junk"), None);
    }
}
