//! The LVS director engine (`lvs`): keeps the kernel's IPVS table equal to what the config and
//! the health checks ask for.
//!
//! At start it loads `ip_vs` and the schedulers the config uses (appliance only), turns on
//! forwarding, adds the NAT gateway address, reads the kernel table back and applies only the
//! difference (never a flush: a restarted tandem facing an identical table sends nothing).
//! Health transitions from the `tandem-lvs` runner re-evaluate one service (quiesce or remove,
//! re-entry delay, sorry server, quorum) and apply that service's diff. A transport failure
//! makes the engine re-read the kernel table before the next diff. Fwmark services get their
//! marking rules as nftables table `inet tandem`, replaced in one transaction at start.
//! With `peer_link.ipvs_sync` the kernel's connection sync daemons run on the sync interface
//! (see [`sync`]) and are stopped when the engine shuts down. The engine runs on its own thread
//! (its kernel calls block; the VRRP timers on the main runtime must never wait for them).

pub mod desired;
pub mod status;
pub mod sync;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Instant;

use tandem_config::Config;
use tandem_ipvs::{Executor, ServiceKey};
use tandem_lvs::health::{runner, HealthEvent, HealthScheduler, ServiceHealth, SubscriberId};
use tandem_lvs::{diff, diff_service, Op, RealServerId, ServiceId, Table};
use tandem_southbound::net::NetOp;
use tokio::sync::mpsc;

use crate::engine::{EngineHandle, EngineRequest};
use crate::engines::EngineContext;
use crate::logring::Log;
use desired::Plan;
use status::ServerHealthView;

/// Most health-check attempts in flight at once.
const MAX_CHECKS_IN_FLIGHT: usize = 64;

/// Starts the director engine when the config has active virtual services.
pub fn start(config: &Config, context: &EngineContext) -> Option<EngineHandle> {
    if !config.virtual_services.iter().any(|vs| vs.active) {
        return None;
    }
    let plan = desired::plan(config);
    let (requests, inbox) = mpsc::channel(16);
    let context = context.clone();
    let context_log = context.log.clone();
    let nat_gateway = config.nat_gateway.clone();
    let sync_plan = sync::plan(config);
    let engine = async move {
        setup_networking(&context, nat_gateway.as_ref()).await;
        let sync_source = match &sync_plan {
            Some(sync_plan) => sync_source_address(&context, sync_plan).await,
            None => None,
        };
        match Director::open(plan, sync_plan, sync_source, context.log.clone()) {
            Ok(director) => director.run(inbox).await,
            Err(error) => {
                context.log.line(format!("lvs: {error}"));
                answer_until_shutdown(inbox, format!("lvs: not running: {error}\n")).await;
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

/// Forwarding and the NAT gateway address; failures are logged with the knob that failed.
async fn setup_networking(
    context: &EngineContext,
    nat_gateway: Option<&tandem_config::model::NatGateway>,
) {
    if let Err(error) = tandem_southbound::sysctl::set("net.ipv4.ip_forward", "1") {
        context.log.line(format!("lvs: {error}"));
    }
    if let Some(gateway) = nat_gateway {
        let link = gateway
            .interface
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        let op = NetOp::AddAddress {
            link,
            address: gateway.address,
            prefix_len: gateway.prefix,
        };
        match context.net.apply(std::slice::from_ref(&op)).await {
            Ok(()) => context.log.line(format!("lvs: NAT gateway: {op}")),
            Err(error) => context.log.line(format!("lvs: NAT gateway: {error}")),
        }
    }
    install_source_nat(context, nat_gateway);
}

/// The real servers behind the NAT gateway reach the outside through this box: what their
/// IPv4 network sends out of any other port is masqueraded (table `inet tandem_nat`, see
/// `southbound::snat`). Without a NAT gateway a table left by an earlier config is removed.
fn install_source_nat(
    context: &EngineContext,
    nat_gateway: Option<&tandem_config::model::NatGateway>,
) {
    use tandem_southbound::snat::{self, MasqueradeRule};
    let rules: Vec<MasqueradeRule> = nat_gateway
        .and_then(|gateway| match gateway.address {
            IpAddr::V4(address) => {
                let prefix_len = gateway.prefix.min(32);
                let mask = tandem_config::net::prefix_to_netmask(prefix_len);
                Some(MasqueradeRule {
                    network: IpAddr::V4(address & mask),
                    prefix_len,
                    inside_port: gateway
                        .interface
                        .split(':')
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                })
            }
            // IPv6 real servers have addresses of their own: no NAT66.
            IpAddr::V6(_) => None,
        })
        .into_iter()
        .collect();
    if rules.is_empty() {
        // Best effort: a host without nf_tables has no table of ours either.
        let _ = snat::replace(&[]);
        return;
    }
    crate::engines::load_feature_modules(
        &context.log,
        "lvs: source NAT",
        &["nf_tables", "nft_chain_nat", "nft_masq"],
    );
    match snat::replace(&rules) {
        Ok(()) => {
            for rule in &rules {
                context.log.line(format!(
                    "lvs: source NAT: {}/{} out of any port but {} is masqueraded (table inet {})",
                    rule.network,
                    rule.prefix_len,
                    rule.inside_port,
                    snat::TABLE
                ));
            }
        }
        Err(error) => context.log.line(format!("lvs: source NAT: {error}")),
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

async fn answer_until_shutdown(mut inbox: mpsc::Receiver<EngineRequest>, text: String) {
    while let Some(request) = inbox.recv().await {
        match request {
            EngineRequest::Status(reply) => {
                let _ = reply.send(text.clone());
            }
            EngineRequest::Track { .. } => {}
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
}

struct Director {
    log: Log,
    exec: Executor,
    plan: Plan,
    started: Instant,
    health: BTreeMap<ServiceId, ServiceHealth>,
    checks: BTreeMap<SubscriberId, CheckState>,
    /// The kernel table as we last read or changed it.
    applied: Table,
    /// The table last computed from config + health.
    effective: Table,
    /// The kernel table must be re-read before the next diff (after a transport failure).
    stale: bool,
    /// The connection sync daemons the config asks for (None: sync off).
    sync: Option<sync::SyncPlan>,
    /// The IPv4 source address of the sync datagrams (for the status).
    sync_source: Option<IpAddr>,
}

/// Loads `ip_vs` and the schedulers (only as PID 1: on a host the kernel is not ours).
fn load_modules(plan: &Plan, log: &Log) {
    // crc32c first: libcrc32c (an ip_vs dependency) needs it and modules.dep does not say so.
    let mut names: Vec<&str> = vec!["crc32c_generic", "ip_vs"];
    names.extend(plan.scheduler_modules.iter().map(String::as_str));
    if !plan.mark_rules.is_empty() {
        names.push("nf_tables");
    }
    crate::engines::load_feature_modules(log, "lvs", &names);
}

/// Replaces table `inet tandem` with the fwmark services' marking rules (one transaction).
/// Without fwmark services nothing is touched, so hosts without nf_tables are unaffected.
fn install_mark_rules(plan: &Plan, log: &Log) {
    if plan.mark_rules.is_empty() {
        return;
    }
    match tandem_southbound::nft::replace(&plan.mark_rules) {
        Ok(()) => log.line(format!(
            "lvs: firewall marks: {} rules in table inet {}",
            plan.mark_rules.len(),
            tandem_southbound::nft::TABLE
        )),
        Err(error) => log.line(format!("lvs: firewall marks: {error}")),
    }
}

impl Director {
    fn open(
        plan: Plan,
        sync: Option<sync::SyncPlan>,
        sync_source: Option<IpAddr>,
        log: Log,
    ) -> Result<Director, StartError> {
        load_modules(&plan, &log);
        install_mark_rules(&plan, &log);
        for note in &plan.notes {
            log.line(format!("lvs: note: {note}"));
        }
        let exec = Executor::open()?;
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
        let now = Instant::now();
        let mut health: BTreeMap<ServiceId, ServiceHealth> = plan
            .table
            .services
            .keys()
            .map(|id| (*id, ServiceHealth::new()))
            .collect();
        let mut checks = BTreeMap::new();
        for (sub, check) in &plan.checks {
            let up = check.spec.timing.start_up;
            if let Some(h) = health.get_mut(&check.service) {
                h.set_initial(check.server, up);
            }
            checks.insert(
                *sub,
                CheckState {
                    service: check.service,
                    server: check.server,
                    what: check.what.clone(),
                    up,
                    since: None,
                    reason: (!up).then(|| "not checked yet (start_down)".to_owned()),
                },
            );
        }
        let mut director = Director {
            log,
            exec,
            plan,
            started: now,
            health,
            checks,
            applied: Table::default(),
            effective: Table::default(),
            stale: true,
            sync,
            sync_source,
        };
        director.sync_all(now)?;
        director.start_sync_daemons();
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

    /// Starts the missing sync daemons, restarts differing ones (see [`sync`]).
    fn start_sync_daemons(&mut self) {
        let Some(plan) = self.sync.clone() else {
            return;
        };
        let Some(running) = self.running_sync_daemons() else {
            return;
        };
        let requests = sync::reconcile(&plan.daemons(), &running);
        if requests.is_empty() {
            self.log.line(format!(
                "lvs: sync: master and backup already running on {} sync id {}",
                plan.interface, plan.sync_id
            ));
            return;
        }
        let mut failed = false;
        for request in &requests {
            match self.exec.apply(std::slice::from_ref(request)) {
                Ok(refused) => {
                    for error in refused {
                        failed = true;
                        let error = sync::explain(&plan, request, error.errno, &error.request);
                        self.log.line(format!("lvs: sync: {error}"));
                    }
                }
                Err(error) => {
                    failed = true;
                    self.log.line(format!("lvs: sync: {request}: {error}"));
                }
            }
        }
        if !failed {
            self.log.line(format!(
                "lvs: sync: master and backup started on {} sync id {} group {}:{}",
                plan.interface,
                plan.sync_id,
                sync::SYNC_GROUP,
                sync::SYNC_PORT
            ));
        }
    }

    /// Stops the sync daemons this engine started (shutdown).
    fn stop_sync_daemons(&mut self) {
        if self.sync.is_none() {
            return;
        }
        let Some(running) = self.running_sync_daemons() else {
            return;
        };
        for request in sync::stop(&running) {
            match self.exec.apply(std::slice::from_ref(&request)) {
                Ok(refused) if refused.is_empty() => {}
                Ok(refused) => {
                    for error in refused {
                        self.log.line(format!("lvs: sync: stop: {error}"));
                    }
                }
                Err(error) => self.log.line(format!("lvs: sync: stop: {error}")),
            }
        }
        self.log.line("lvs: sync: daemons stopped");
    }

    /// Reads the kernel table, diffs the whole effective table against it and applies.
    fn sync_all(&mut self, now: Instant) -> Result<(), StartError> {
        let begun = Instant::now();
        self.applied = Table::from_kernel(&self.exec.table()?);
        self.stale = false;
        let mut effective = Table::default();
        for (id, config) in &self.plan.table.services {
            let policy = self.plan.policies.get(id).cloned().unwrap_or_default();
            let health = self.health.entry(*id).or_default();
            effective
                .services
                .insert(*id, health.evaluate(config, &policy, now));
        }
        self.effective = effective;
        let ops = diff(&self.effective, &self.applied);
        let count = ops.len();
        self.apply(&ops)?;
        self.log.line(format!(
            "lvs: table in sync: {} services, {} real servers, {count} ops in {} ms",
            self.effective.services.len(),
            self.effective.real_server_count(),
            begun.elapsed().as_millis()
        ));
        Ok(())
    }

    /// Applies ops to the kernel; refusals are logged and mark the model stale.
    fn apply(&mut self, ops: &[Op]) -> Result<(), tandem_ipvs::TransportError> {
        if ops.is_empty() {
            return Ok(());
        }
        let requests: Vec<_> = ops.iter().map(Op::to_request).collect();
        let refused = match self.exec.apply(&requests) {
            Ok(refused) => refused,
            Err(error) => {
                self.stale = true;
                return Err(error);
            }
        };
        for (index, op) in ops.iter().enumerate() {
            if refused.iter().any(|r| r.index == index) {
                continue;
            }
            let _ = self.applied.apply(op);
        }
        for error in &refused {
            self.log.line(format!("lvs: kernel refused {error}"));
            self.stale = true;
        }
        Ok(())
    }

    /// Re-evaluates one service and applies its diff.
    fn resync_service(&mut self, id: ServiceId, now: Instant) {
        if self.stale {
            if let Err(error) = self.sync_all(now) {
                self.log.line(format!("lvs: {error}"));
            }
            return;
        }
        let Some(config) = self.plan.table.services.get(&id) else {
            return;
        };
        let policy = self.plan.policies.get(&id).cloned().unwrap_or_default();
        let health = self.health.entry(id).or_default();
        let quorum_before = health.quorum_up();
        let effective = health.evaluate(config, &policy, now);
        if quorum_before.is_some() && quorum_before != health.quorum_up() {
            self.log.line(format!(
                "lvs: {id}: quorum {}",
                if health.quorum_up() == Some(true) {
                    "regained"
                } else {
                    "lost"
                }
            ));
        }
        let ops = diff_service(&id, Some(&effective), self.applied.services.get(&id));
        self.effective.services.insert(id, effective);
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
            return;
        };
        state.up = event.up;
        state.since = Some(event.at);
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
        if let Some(h) = self.health.get_mut(&service) {
            h.set_health(server, event.up, event.at);
        }
        self.resync_service(service, Instant::now());
    }

    /// The earliest re-entry deadline over all services, with its service.
    fn next_deadline(&self, now: Instant) -> Option<(Instant, ServiceId)> {
        self.health
            .iter()
            .filter_map(|(id, h)| {
                let policy = self.plan.policies.get(id)?;
                h.next_deadline(policy, now).map(|t| (t, *id))
            })
            .min()
    }

    fn rotation(&self, state: &CheckState) -> String {
        let configured = self
            .plan
            .table
            .services
            .get(&state.service)
            .and_then(|s| s.real_servers.get(&state.server));
        let effective = self
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
        let mut text = status::render(&table, &health, &self.plan.notes);
        for (id, h) in &self.health {
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
        for (sub, check) in &self.plan.checks {
            scheduler.subscribe(*sub, check.spec.clone(), now);
        }
        let (commands, command_inbox) = mpsc::channel(16);
        let (events_tx, mut events) = mpsc::channel(256);
        let health_task = tokio::spawn(runner::run(
            scheduler,
            command_inbox,
            events_tx,
            MAX_CHECKS_IN_FLIGHT,
            None,
        ));
        loop {
            let deadline = self.next_deadline(Instant::now());
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
                    Some(EngineRequest::Track { .. }) => {}
                    Some(EngineRequest::Shutdown(done)) => {
                        // The table stays: traffic keeps flowing, and the next start adopts it.
                        // The sync daemons stop: they belong to this engine's config.
                        self.stop_sync_daemons();
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
        drop(commands);
        health_task.abort();
    }
}
