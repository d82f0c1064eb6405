//! A live apply of the director: from the running state and a newly committed config to what
//! must change, touching only what changed. Pure (time injected), so every decision is tested
//! and benchmarked without a kernel; the daemon executes the [`Decision`].
//!
//! - **Work in proportion to the change.** The plan is rebuilt reusing the plan object of every
//!   service configured exactly as before ([`plan::from_config_reusing`]); services whose plan
//!   object is unchanged are skipped by pointer: their checks, health memory and effective
//!   entry stay as they are.
//! - **Health checks** are keyed by their slot (service, real server), never by position: same
//!   slot and identical spec keep the subscription, its [`SubscriberId`] and its up/down state;
//!   a changed spec is unsubscribed and subscribed anew under a fresh id, starting from the
//!   server's current verdict (a failed server stays out until the new check passes, a healthy
//!   one stays in until it fails); a new slot subscribes, a gone one unsubscribes. Ids come from
//!   [`SubscriberIds`] and are never reused, so a late verdict of a dropped subscription can
//!   never be taken for a new one.
//! - **Health memory** ([`ServiceHealth`]) stays for services that stay (re-entry timers and
//!   quorum state included); new services start fresh; removed services' memory is dropped; a
//!   server that leaves the config or loses its check is forgotten (unchecked servers are live).
//! - **IPVS**: the effective table (config + health) is diffed against the kernel's table as
//!   last read or changed, so unchanged services and servers get no operation and nothing is
//!   ever flushed.
//! - **Report**: one line per change (`real server 10.0.0.3:80 added to TCP 192.0.2.10:80
//!   (weight 1)`, `weight of 10.0.0.2:80 in TCP 192.0.2.10:80 1 -> 5`); a configured change the
//!   kernel does not see yet because health holds the server out says so.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use tandem_config::Config;

use crate::health::{CheckSpec, OnFailure, ServiceHealth, ServicePolicy, SubscriberId};
use crate::plan::{self, CheckSlot, Plan, PlannedCheck};
use crate::reconcile::merge;
use crate::{
    diff, diff_service, Family, Forwarding, Op, RealServer, RealServerId, ServiceId,
    ServiceSettings, Table, TunnelType, VirtualService,
};

/// One service's running subscriptions: per real server, its subscriber id and the planned
/// spec it runs.
pub type ServiceSubscriptions = BTreeMap<RealServerId, (SubscriberId, Arc<CheckSpec>)>;
/// The running subscriptions by service.
pub type Subscriptions = BTreeMap<ServiceId, ServiceSubscriptions>;

/// Hands out subscriber ids, each at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriberIds {
    next: u64,
}

impl SubscriberIds {
    /// Ids from 0 up.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh id, never handed out before by this allocator.
    pub fn allocate(&mut self) -> SubscriberId {
        let id = SubscriberId(self.next);
        self.next = self.next.saturating_add(1);
        id
    }
}

/// One subscription to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub slot: CheckSlot,
    pub subscriber: SubscriberId,
    /// What to hand the scheduler (after [`carry_health`], `start_up` is the server's current
    /// verdict for a replaced check).
    pub spec: CheckSpec,
    /// The subscription this one replaces (same slot, changed spec), if any.
    pub replaces: Option<SubscriberId>,
}

/// What a new plan changes in the health checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckChanges {
    /// Subscriptions that stay untouched.
    pub kept: usize,
    /// Subscriptions to start (new slots, and changed specs under a fresh id).
    pub subscribe: Vec<Subscribe>,
    /// Subscriptions to stop (gone slots, and the old ids of changed specs).
    pub unsubscribe: Vec<(CheckSlot, SubscriberId)>,
}

impl CheckChanges {
    /// Whether no subscription starts or stops.
    pub fn is_empty(&self) -> bool {
        self.subscribe.is_empty() && self.unsubscribe.is_empty()
    }
}

/// The services whose plan differs between `old` and `new` (added, removed or changed), in id
/// order. A shared plan object is unchanged without looking inside.
pub fn changed_services(old: &Plan, new: &Plan) -> Vec<ServiceId> {
    let mut changed = Vec::new();
    merge(&old.services, &new.services, |id, before, after| {
        let same = match (before, after) {
            (Some(b), Some(a)) => Arc::ptr_eq(&b.plan, &a.plan) || b.plan == a.plan,
            _ => false,
        };
        if !same {
            changed.push(*id);
        }
    });
    changed
}

/// Compares the running subscriptions of `services` with their checks in `new`, slot by slot:
/// identical spec keeps, changed spec replaces (fresh id), new subscribes, gone unsubscribes.
/// Services not listed keep every subscription (their plan did not change).
pub fn reconcile_checks(
    subscriptions: &Subscriptions,
    new: &Plan,
    services: &[ServiceId],
    ids: &mut SubscriberIds,
) -> CheckChanges {
    let mut changes = CheckChanges::default();
    let none_running = ServiceSubscriptions::new();
    let none_planned = BTreeMap::new();
    for id in services {
        let running = subscriptions.get(id).unwrap_or(&none_running);
        let planned: &BTreeMap<RealServerId, PlannedCheck> =
            new.service(id).map_or(&none_planned, |s| &s.checks);
        merge(running, planned, |server, running, planned| {
            let slot = (*id, *server);
            match (running, planned) {
                (Some((_, spec)), Some(planned))
                    if Arc::ptr_eq(spec, &planned.spec) || **spec == *planned.spec => {}
                (Some((sub, _)), Some(planned)) => {
                    changes.unsubscribe.push((slot, *sub));
                    changes.subscribe.push(Subscribe {
                        slot,
                        subscriber: ids.allocate(),
                        spec: CheckSpec::clone(&planned.spec),
                        replaces: Some(*sub),
                    });
                }
                (None, Some(planned)) => changes.subscribe.push(Subscribe {
                    slot,
                    subscriber: ids.allocate(),
                    spec: CheckSpec::clone(&planned.spec),
                    replaces: None,
                }),
                (Some((sub, _)), None) => changes.unsubscribe.push((slot, *sub)),
                (None, None) => {}
            }
        });
    }
    let running: usize = subscriptions.values().map(BTreeMap::len).sum();
    changes.kept = running.saturating_sub(changes.unsubscribe.len());
    changes
}

/// Carries the health memory of `services` over to `new` (see the module documentation) and
/// sets the start state of each new subscription: a replaced check starts from the server's
/// current verdict, a new one from its spec's `start_up`, which the memory records.
pub fn carry_health(
    health: &mut BTreeMap<ServiceId, ServiceHealth>,
    new: &Plan,
    services: &[ServiceId],
    changes: &mut CheckChanges,
) {
    for id in services {
        if new.services.contains_key(id) {
            health.entry(*id).or_default();
        } else {
            health.remove(id);
        }
    }
    let replaced: BTreeSet<CheckSlot> = changes
        .subscribe
        .iter()
        .filter(|s| s.replaces.is_some())
        .map(|s| s.slot)
        .collect();
    for (slot, _) in &changes.unsubscribe {
        if replaced.contains(slot) {
            continue;
        }
        let (service, server) = slot;
        if let Some(memory) = health.get_mut(service) {
            memory.forget(server);
        }
    }
    for subscribe in &mut changes.subscribe {
        let (service, server) = subscribe.slot;
        let Some(memory) = health.get_mut(&service) else {
            continue;
        };
        match (subscribe.replaces, memory.healthy(&server)) {
            (Some(_), Some(current)) => subscribe.spec.timing.start_up = current,
            _ => memory.set_initial(server, subscribe.spec.timing.start_up),
        }
    }
}

/// The whole table to install now: every service of `plan` as its health memory allows at
/// `now`. A service without memory yet gets it (fresh).
pub fn effective_table(
    plan: &Plan,
    health: &mut BTreeMap<ServiceId, ServiceHealth>,
    now: Instant,
) -> Table {
    for id in plan.services.keys() {
        if !health.contains_key(id) {
            health.insert(*id, ServiceHealth::new());
        }
    }
    let mut memories = health.iter_mut().peekable();
    // Both maps are sorted by service: one walk in step, one sorted bulk build.
    let services = plan
        .services
        .iter()
        .filter_map(|(id, planned)| {
            while memories.next_if(|(known, _)| *known < id).is_some() {}
            let (_, memory) = memories.next_if(|(known, _)| *known == id)?;
            let planned = &planned.plan;
            Some((*id, memory.evaluate(&planned.service, &planned.policy, now)))
        })
        .collect();
    Table { services }
}

/// The director's state a live apply starts from and updates.
#[derive(Debug, Clone, Default)]
pub struct LiveState {
    /// The config the plan was built from (`None` before the first apply).
    pub config: Option<Arc<Config>>,
    /// The plan in force.
    pub plan: Plan,
    /// The running health-check subscriptions.
    pub subscriptions: Subscriptions,
    /// Health memory per service.
    pub health: BTreeMap<ServiceId, ServiceHealth>,
    /// The table config and health ask for (as last evaluated).
    pub effective: Table,
    /// Where new subscriber ids come from.
    pub ids: SubscriberIds,
}

/// What a live apply decided; the caller executes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// Subscriptions to stop and start (send the stops first).
    pub checks: CheckChanges,
    /// IPVS operations turning the given kernel table into the effective one, in a safe order.
    pub ops: Vec<Op>,
    /// Report lines besides the operations' own (see [`describe_op`]): configured changes held
    /// back by health, health checks, policies, new notes.
    pub lines: Vec<String>,
}

impl LiveState {
    /// A director with nothing planned yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves to `config`, given the kernel table as last read or changed (`applied`). The plan
    /// reuses every service configured exactly as before.
    pub fn apply(&mut self, config: Arc<Config>, applied: &Table, now: Instant) -> Decision {
        let previous = self.config.as_deref().map(|before| (before, &self.plan));
        let plan = plan::from_config_reusing(&config, previous);
        let decision = self.apply_plan(plan, applied, now);
        self.config = Some(config);
        decision
    }

    /// Moves to `plan` (see [`LiveState::apply`]): updates the subscriptions, the health memory
    /// and the effective table of the services that changed, and returns what to execute.
    pub fn apply_plan(&mut self, plan: Plan, applied: &Table, now: Instant) -> Decision {
        let services = changed_services(&self.plan, &plan);
        let mut checks = reconcile_checks(&self.subscriptions, &plan, &services, &mut self.ids);
        carry_health(&mut self.health, &plan, &services, &mut checks);
        for ((id, server), _) in &checks.unsubscribe {
            if let Some(running) = self.subscriptions.get_mut(id) {
                running.remove(server);
            }
        }
        for subscribe in &checks.subscribe {
            // The planned spec (not the carried start state) is what the next plan compares to.
            let (id, server) = subscribe.slot;
            if let Some(planned) = plan.check(&subscribe.slot) {
                self.subscriptions
                    .entry(id)
                    .or_default()
                    .insert(server, (subscribe.subscriber, Arc::clone(&planned.spec)));
            }
        }
        for id in &services {
            if self.subscriptions.get(id).is_some_and(BTreeMap::is_empty) {
                self.subscriptions.remove(id);
            }
            match plan.service(id) {
                None => {
                    self.effective.services.remove(id);
                }
                Some(planned) => {
                    let memory = self.health.entry(*id).or_default();
                    let effective = memory.evaluate(&planned.service, &planned.policy, now);
                    self.effective.services.insert(*id, effective);
                }
            }
        }
        let ops = diff(&self.effective, applied);
        let mut lines = describe_held_back(&self.plan, &plan, &services, &ops, &self.effective);
        lines.extend(describe_checks(&checks, &plan));
        lines.extend(describe_policies(&self.plan, &plan, &services));
        if !plan.notes.is_empty() {
            let known: HashSet<&str> = self.plan.notes.iter().map(String::as_str).collect();
            lines.extend(
                plan.notes
                    .iter()
                    .filter(|note| !known.contains(note.as_str()))
                    .map(|note| format!("note: {note}")),
            );
        }
        self.plan = plan;
        Decision { checks, ops, lines }
    }

    /// Re-evaluates every service (after the kernel table was re-read) into the effective
    /// table.
    pub fn reevaluate_all(&mut self, now: Instant) {
        self.effective = effective_table(&self.plan, &mut self.health, now);
    }

    /// Re-evaluates one service (a health transition, a re-entry time passing) and returns the
    /// operations that bring `applied` to it.
    pub fn reevaluate(&mut self, id: &ServiceId, applied: &Table, now: Instant) -> Vec<Op> {
        let Some(planned) = self.plan.services.get(id) else {
            return Vec::new();
        };
        let memory = self.health.entry(*id).or_default();
        let effective = memory.evaluate(&planned.plan.service, &planned.plan.policy, now);
        let ops = diff_service(id, Some(&effective), applied.services.get(id));
        self.effective.services.insert(*id, effective);
        ops
    }
}

/// How a service is named in reports: `TCP 192.0.2.10:80`, `fwmark 7`.
pub fn service_name(id: &ServiceId) -> String {
    match id {
        ServiceId::Inet {
            protocol,
            addr: IpAddr::V6(addr),
            port,
        } => format!("{} [{addr}]:{port}", protocol.to_string().to_uppercase()),
        ServiceId::Inet {
            protocol,
            addr,
            port,
        } => format!("{} {addr}:{port}", protocol.to_string().to_uppercase()),
        ServiceId::Fwmark {
            family: Family::Inet,
            mark,
        } => format!("fwmark {mark}"),
        ServiceId::Fwmark {
            family: Family::Inet6,
            mark,
        } => format!("fwmark {mark} (IPv6)"),
    }
}

fn forwarding_name(forwarding: &Forwarding) -> String {
    match forwarding {
        Forwarding::Nat => "nat".to_owned(),
        Forwarding::DirectRouting => "dr".to_owned(),
        Forwarding::Tunnel {
            encap: TunnelType::Ipip,
            port: 0,
            flags: 0,
        } => "tun".to_owned(),
        Forwarding::Tunnel { encap, port, .. } => format!("tun ({encap:?} port {port})"),
        Forwarding::LocalNode => "local".to_owned(),
    }
}

fn persistence_text(settings: &ServiceSettings) -> String {
    match &settings.persistence {
        None => "off".to_owned(),
        Some(p) => format!("{} s (netmask {:#x})", p.timeout_s, p.netmask),
    }
}

fn settings_changes(svc: &str, old: &ServiceSettings, new: &ServiceSettings) -> Vec<String> {
    let mut lines = Vec::new();
    if old.scheduler != new.scheduler {
        lines.push(format!(
            "scheduler of {svc} {} -> {}",
            old.scheduler.name(),
            new.scheduler.name()
        ));
    }
    if old.scheduler_flags != new.scheduler_flags {
        lines.push(format!(
            "scheduler flags of {svc} {:#x} -> {:#x}",
            old.scheduler_flags.bits(),
            new.scheduler_flags.bits()
        ));
    }
    if old.persistence != new.persistence {
        lines.push(format!(
            "persistence of {svc} {} -> {}",
            persistence_text(old),
            persistence_text(new)
        ));
    }
    if old.one_packet != new.one_packet {
        lines.push(format!(
            "one-packet scheduling of {svc} {} -> {}",
            on_off(old.one_packet),
            on_off(new.one_packet)
        ));
    }
    if lines.is_empty() {
        lines.push(format!("service {svc} edited"));
    }
    lines
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

fn server_changes(svc: &str, rs: &RealServerId, old: &RealServer, new: &RealServer) -> Vec<String> {
    let mut lines = Vec::new();
    if old.weight != new.weight {
        lines.push(format!(
            "weight of {rs} in {svc} {} -> {}",
            old.weight, new.weight
        ));
    }
    if old.forwarding != new.forwarding && old.forwarding != Forwarding::LocalNode {
        lines.push(format!(
            "forwarding of {rs} in {svc} {} -> {}",
            forwarding_name(&old.forwarding),
            forwarding_name(&new.forwarding)
        ));
    }
    if old.upper_threshold != new.upper_threshold {
        lines.push(format!(
            "upper threshold of {rs} in {svc} {} -> {}",
            old.upper_threshold, new.upper_threshold
        ));
    }
    if old.lower_threshold != new.lower_threshold {
        lines.push(format!(
            "lower threshold of {rs} in {svc} {} -> {}",
            old.lower_threshold, new.lower_threshold
        ));
    }
    if lines.is_empty() {
        lines.push(format!("real server {rs} in {svc} edited"));
    }
    lines
}

/// One line per change `op` makes to `before` (the service it touches, as it was).
pub fn describe_op(op: &Op, before: Option<&VirtualService>) -> Vec<String> {
    let svc = service_name(op.service());
    match op {
        Op::AddService(_, settings) => vec![format!(
            "service {svc} added (scheduler {})",
            settings.scheduler.name()
        )],
        Op::EditService(_, settings) => match before {
            Some(old) => settings_changes(&svc, &old.settings, settings),
            None => vec![format!("service {svc} edited")],
        },
        Op::DeleteService(_) => {
            let servers = before.map_or(0, |s| s.real_servers.len());
            vec![format!(
                "service {svc} removed (with its {servers} real server{})",
                if servers == 1 { "" } else { "s" }
            )]
        }
        Op::AddRealServer(_, rs, r) => {
            vec![format!(
                "real server {rs} added to {svc} (weight {})",
                r.weight
            )]
        }
        Op::EditRealServer(_, rs, r) => match before.and_then(|s| s.real_servers.get(rs)) {
            Some(old) => server_changes(&svc, rs, old, r),
            None => vec![format!("real server {rs} in {svc} edited")],
        },
        Op::DeleteRealServer(_, rs) => vec![format!("real server {rs} removed from {svc}")],
    }
}

/// What an operation touches: a whole service (add, delete), its settings, or one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Touch {
    Whole(ServiceId),
    Settings(ServiceId),
    Server(ServiceId, RealServerId),
}

fn touch(op: &Op) -> Touch {
    match op {
        Op::AddService(id, _) | Op::DeleteService(id) => Touch::Whole(*id),
        Op::EditService(id, _) => Touch::Settings(*id),
        Op::AddRealServer(id, rs, _)
        | Op::EditRealServer(id, rs, _)
        | Op::DeleteRealServer(id, rs) => Touch::Server(*id, *rs),
    }
}

/// Configured changes of `services` (old plan → new plan) that produce no kernel operation
/// now, each with why: health holds the server out or at weight 0, or the kernel already has
/// it.
pub fn describe_held_back(
    old: &Plan,
    new: &Plan,
    services: &[ServiceId],
    kernel_ops: &[Op],
    effective: &Table,
) -> Vec<String> {
    let mut touched: Option<BTreeSet<Touch>> = None;
    let mut lines = Vec::new();
    for id in services {
        let before = old.service(id).map(|s| &s.service);
        let configured = diff_service(id, new.service(id).map(|s| &s.service), before);
        for op in &configured {
            let touched = touched.get_or_insert_with(|| kernel_ops.iter().map(touch).collect());
            let covered = match touch(op) {
                t @ Touch::Whole(_) => touched.contains(&t),
                t @ (Touch::Settings(id) | Touch::Server(id, _)) => {
                    touched.contains(&t) || touched.contains(&Touch::Whole(id))
                }
            };
            if covered {
                continue;
            }
            let why = match op {
                Op::AddRealServer(id, rs, r) | Op::EditRealServer(id, rs, r) => {
                    match effective.services.get(id).map(|s| s.real_servers.get(rs)) {
                        Some(None) => "out of the table while its health check fails",
                        Some(Some(e)) if e.weight == 0 && r.weight > 0 => {
                            "held at weight 0 while its health check fails"
                        }
                        _ => "the kernel already has it",
                    }
                }
                _ => "the kernel already has it",
            };
            for line in describe_op(op, before) {
                lines.push(format!("{line} (configured; {why})"));
            }
        }
    }
    lines
}

/// One line per health check started, restarted or stopped.
pub fn describe_checks(changes: &CheckChanges, plan: &Plan) -> Vec<String> {
    let mut lines = Vec::new();
    let replaced: BTreeSet<CheckSlot> = changes
        .subscribe
        .iter()
        .filter(|s| s.replaces.is_some())
        .map(|s| s.slot)
        .collect();
    for (slot, _) in &changes.unsubscribe {
        if !replaced.contains(slot) {
            let (id, rs) = slot;
            lines.push(format!(
                "health check of {rs} in {} removed",
                service_name(id)
            ));
        }
    }
    for subscribe in &changes.subscribe {
        let (id, rs) = &subscribe.slot;
        let svc = service_name(id);
        let what = plan.check(&subscribe.slot).map_or("check", |c| &*c.what);
        lines.push(match subscribe.replaces {
            Some(_) => format!(
                "health check of {rs} in {svc} changed: restarted as {what} (starts {})",
                if subscribe.spec.timing.start_up {
                    "up"
                } else {
                    "down"
                }
            ),
            None => format!("health check {what} of {rs} in {svc} added"),
        });
    }
    lines
}

fn sorry_text(sorry: Option<&(RealServerId, RealServer)>) -> String {
    match sorry {
        None => "none".to_owned(),
        Some((rs, _)) => rs.to_string(),
    }
}

fn failure_name(f: OnFailure) -> &'static str {
    match f {
        OnFailure::Quiesce => "quiesce",
        OnFailure::Remove => "remove",
    }
}

/// One line per changed health policy among `services` present in both plans.
pub fn describe_policies(old: &Plan, new: &Plan, services: &[ServiceId]) -> Vec<String> {
    let mut lines = Vec::new();
    for id in services {
        let (Some(before), Some(after)) = (old.service(id), new.service(id)) else {
            continue;
        };
        let (before, policy): (&ServicePolicy, &ServicePolicy) = (&before.policy, &after.policy);
        if before == policy {
            continue;
        }
        let mut parts = Vec::new();
        if before.on_failure != policy.on_failure {
            parts.push(format!(
                "on failure {} -> {}",
                failure_name(before.on_failure),
                failure_name(policy.on_failure)
            ));
        }
        if before.reentry != policy.reentry {
            parts.push(format!(
                "re-entry {} s -> {} s",
                before.reentry.as_secs(),
                policy.reentry.as_secs()
            ));
        }
        if before.quorum != policy.quorum || before.hysteresis != policy.hysteresis {
            parts.push(format!(
                "quorum {} (hysteresis {}) -> {} (hysteresis {})",
                before.quorum, before.hysteresis, policy.quorum, policy.hysteresis
            ));
        }
        if before.sorry_server != policy.sorry_server {
            parts.push(format!(
                "sorry server {} -> {}",
                sorry_text(before.sorry_server.as_ref()),
                sorry_text(policy.sorry_server.as_ref())
            ));
        }
        let mut line = format!("health policy of {} changed", service_name(id));
        if !parts.is_empty() {
            let _ = write!(line, ": {}", parts.join("; "));
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::plan::ServicePlan;

    const CHECK: &str = "check = { kind = \"tcp\", timing = { interval_ms = 1000, timeout_ms = 500, retries = 0, retry_delay_ms = 100 } }\n";

    /// `services` services of `per` real servers each, every server TCP-checked; `tweak` may
    /// add lines to a server.
    fn config_text(services: u8, per: u8, tweak: impl Fn(u8, u8, &mut String)) -> String {
        let mut text = String::new();
        for s in 0..services {
            let _ = write!(
                text,
                "[[virtual_services]]\naddress = \"192.0.2.{}\"\nport = 80\non_failure = \"quiesce\"\n{CHECK}",
                s + 1
            );
            for r in 0..per {
                let mut server = format!(
                    "[[virtual_services.real_servers]]\naddress = \"10.0.{s}.{}\"\n",
                    r + 1
                );
                tweak(s, r, &mut server);
                text.push_str(&server);
            }
        }
        text
    }

    fn config(text: &str) -> Arc<Config> {
        Arc::new(tandem_config::text::from_toml(text).unwrap())
    }

    fn execute(kernel: &mut Table, ops: &[Op]) {
        for op in ops {
            kernel.apply(op).unwrap();
        }
    }

    /// A director running `text` with the kernel table equal to what it asked for.
    fn running(text: &str, now: Instant) -> (LiveState, Table) {
        let mut state = LiveState::new();
        let decision = state.apply(config(text), &Table::default(), now);
        let mut kernel = Table::default();
        execute(&mut kernel, &decision.ops);
        assert_eq!(kernel, state.effective);
        (state, kernel)
    }

    /// A health transition of one server, executed like the daemon does.
    fn health(state: &mut LiveState, kernel: &mut Table, slot: CheckSlot, up: bool, at: Instant) {
        let (id, server) = slot;
        state
            .health
            .get_mut(&id)
            .unwrap()
            .set_health(server, up, at);
        let ops = state.reevaluate(&id, kernel, at);
        execute(kernel, &ops);
    }

    fn web(n: u8) -> ServiceId {
        ServiceId::Inet {
            protocol: crate::Protocol::Tcp,
            addr: IpAddr::from([192, 0, 2, n]),
            port: 80,
        }
    }

    fn server(s: u8, r: u8) -> RealServerId {
        RealServerId {
            addr: IpAddr::from([10, 0, s, r]),
            port: 80,
        }
    }

    fn ids(state: &LiveState) -> Vec<SubscriberId> {
        state
            .subscriptions
            .values()
            .flat_map(|s| s.values().map(|(id, _)| *id))
            .collect()
    }

    #[test]
    fn identical_config_gives_zero_ops_and_zero_subscription_changes() {
        let now = Instant::now();
        let text = config_text(3, 4, |_, _, _| {});
        let (mut state, kernel) = running(&text, now);
        let subscriptions = state.subscriptions.clone();
        let decision = state.apply(config(&text), &kernel, now);
        assert!(decision.ops.is_empty(), "{:?}", decision.ops);
        assert!(decision.checks.is_empty(), "{:?}", decision.checks);
        assert_eq!(decision.checks.kept, 12);
        assert!(decision.lines.is_empty(), "{:?}", decision.lines);
        assert_eq!(state.subscriptions, subscriptions);
        // Built from scratch (no shared plan objects) the answer is the same.
        let decision = state.apply_plan(plan::from_config(&config(&text)), &kernel, now);
        assert!(decision.ops.is_empty() && decision.checks.is_empty());
        assert!(decision.lines.is_empty(), "{:?}", decision.lines);
    }

    #[test]
    fn a_weight_change_is_one_edit_and_keeps_every_subscription() {
        let now = Instant::now();
        let (mut state, kernel) = running(&config_text(3, 4, |_, _, _| {}), now);
        let subscriptions = state.subscriptions.clone();
        let changed = config_text(3, 4, |s, r, text| {
            if (s, r) == (1, 2) {
                text.push_str("weight = 5\n");
            }
        });
        let decision = state.apply(config(&changed), &kernel, now);
        assert_eq!(
            decision.ops,
            [Op::EditRealServer(
                web(2),
                server(1, 3),
                RealServer::new(Forwarding::Nat, 5)
            )]
        );
        assert!(decision.checks.is_empty());
        assert_eq!(decision.checks.kept, 12);
        assert_eq!(state.subscriptions, subscriptions, "same ids, same specs");
        assert_eq!(
            describe_op(&decision.ops[0], kernel.services.get(&web(2))),
            ["weight of 10.0.1.3:80 in TCP 192.0.2.2:80 1 -> 5"]
        );
        assert!(decision.lines.is_empty(), "{:?}", decision.lines);
    }

    #[test]
    fn an_added_real_server_subscribes_exactly_one_check() {
        let now = Instant::now();
        let (mut state, kernel) = running(&config_text(2, 2, |_, _, _| {}), now);
        let before = ids(&state);
        let mut text = config_text(2, 2, |_, _, _| {});
        text.push_str("[[virtual_services.real_servers]]\naddress = \"10.0.1.9\"\n");
        let decision = state.apply(config(&text), &kernel, now);
        assert_eq!(
            decision.ops,
            [Op::AddRealServer(
                web(2),
                server(1, 9),
                RealServer::new(Forwarding::Nat, 1)
            )]
        );
        assert_eq!(decision.checks.subscribe.len(), 1);
        assert!(decision.checks.unsubscribe.is_empty());
        assert_eq!(decision.checks.kept, 4);
        let added = &decision.checks.subscribe[0];
        assert_eq!(added.slot, (web(2), server(1, 9)));
        assert!(!before.contains(&added.subscriber), "fresh id");
        assert_eq!(
            describe_op(&decision.ops[0], kernel.services.get(&web(2))),
            ["real server 10.0.1.9:80 added to TCP 192.0.2.2:80 (weight 1)"]
        );
        assert_eq!(
            decision.lines,
            ["health check tcp of 10.0.1.9:80 in TCP 192.0.2.2:80 added"]
        );
    }

    #[test]
    fn a_removed_service_unsubscribes_its_checks_and_drops_its_health() {
        let now = Instant::now();
        let (mut state, kernel) = running(&config_text(3, 2, |_, _, _| {}), now);
        let gone: Vec<(CheckSlot, SubscriberId)> = state.subscriptions[&web(3)]
            .iter()
            .map(|(server, (sub, _))| ((web(3), *server), *sub))
            .collect();
        assert_eq!(gone.len(), 2);
        let decision = state.apply(config(&config_text(2, 2, |_, _, _| {})), &kernel, now);
        assert_eq!(decision.ops, [Op::DeleteService(web(3))]);
        assert_eq!(decision.checks.unsubscribe, gone);
        assert!(decision.checks.subscribe.is_empty());
        assert_eq!(decision.checks.kept, 4);
        assert!(!state.health.contains_key(&web(3)));
        assert!(!state.subscriptions.contains_key(&web(3)));
        assert!(!state.effective.services.contains_key(&web(3)));
        assert_eq!(
            describe_op(&decision.ops[0], kernel.services.get(&web(3))),
            ["service TCP 192.0.2.3:80 removed (with its 2 real servers)"]
        );
        assert_eq!(
            decision.lines,
            [
                "health check of 10.0.2.1:80 in TCP 192.0.2.3:80 removed",
                "health check of 10.0.2.2:80 in TCP 192.0.2.3:80 removed"
            ]
        );
    }

    #[test]
    fn a_changed_check_is_replaced_under_a_fresh_id_from_the_current_verdict() {
        let now = Instant::now();
        let (mut state, mut kernel) = running(&config_text(1, 2, |_, _, _| {}), now);
        // The first server failed its check: quiesced in the kernel.
        let failed = server(0, 1);
        health(&mut state, &mut kernel, (web(1), failed), false, now);
        assert_eq!(kernel.services[&web(1)].real_servers[&failed].weight, 0);
        let old_ids = ids(&state);
        // Every server's check moves to port 8080.
        let changed = config_text(1, 2, |_, _, _| {})
            .replace("kind = \"tcp\",", "kind = \"tcp\", connect_port = 8080,");
        let decision = state.apply(config(&changed), &kernel, now);
        assert!(decision.ops.is_empty(), "{:?}", decision.ops);
        assert_eq!(decision.checks.unsubscribe.len(), 2);
        assert_eq!(decision.checks.subscribe.len(), 2);
        assert_eq!(decision.checks.kept, 0);
        for subscribe in &decision.checks.subscribe {
            assert!(subscribe.replaces.is_some());
            assert!(old_ids.iter().all(|old| old.0 < subscribe.subscriber.0));
            assert_eq!(subscribe.spec.key.target.port(), 8080);
            let expect_up = subscribe.slot.1 != failed;
            assert_eq!(subscribe.spec.timing.start_up, expect_up, "carried verdict");
        }
        assert_eq!(
            state.health[&web(1)].healthy(&failed),
            Some(false),
            "still down until the new check passes"
        );
        assert_eq!(
            decision.lines,
            [
                "health check of 10.0.0.1:80 in TCP 192.0.2.1:80 changed: restarted as tcp (starts down)",
                "health check of 10.0.0.2:80 in TCP 192.0.2.1:80 changed: restarted as tcp (starts up)"
            ]
        );
        // The stored spec is the planned one, so the same config again changes nothing.
        let again = state.apply(config(&changed), &kernel, now);
        assert!(again.checks.is_empty() && again.ops.is_empty());
    }

    #[test]
    fn a_weight_change_of_a_failed_server_is_reported_as_held_back() {
        let now = Instant::now();
        let (mut state, mut kernel) = running(&config_text(1, 2, |_, _, _| {}), now);
        health(&mut state, &mut kernel, (web(1), server(0, 2)), false, now);
        let changed = config_text(1, 2, |_, r, text| {
            if r == 1 {
                text.push_str("weight = 4\n");
            }
        });
        let decision = state.apply(config(&changed), &kernel, now);
        assert!(decision.ops.is_empty(), "{:?}", decision.ops);
        assert_eq!(
            decision.lines,
            ["weight of 10.0.0.2:80 in TCP 192.0.2.1:80 1 -> 4 (configured; held at weight 0 while its health check fails)"]
        );
        // Once it recovers, the configured weight goes in.
        health(&mut state, &mut kernel, (web(1), server(0, 2)), true, now);
        assert_eq!(
            kernel.services[&web(1)].real_servers[&server(0, 2)].weight,
            4
        );
    }

    #[test]
    fn health_memory_stays_for_services_that_stay() {
        let now = Instant::now();
        let (mut state, mut kernel) = running(&config_text(2, 2, |_, _, _| {}), now);
        let recovered = now + Duration::from_secs(1);
        health(&mut state, &mut kernel, (web(1), server(0, 1)), false, now);
        health(
            &mut state,
            &mut kernel,
            (web(1), server(0, 1)),
            true,
            recovered,
        );
        let with_reentry = config_text(2, 2, |_, _, _| {}).replace(
            "on_failure = \"quiesce\"\n",
            "on_failure = \"quiesce\"\nreentry_s = 10\n",
        );
        let decision = state.apply(config(&with_reentry), &kernel, recovered);
        // The recovered server now waits out its re-entry time: quiesced again.
        assert_eq!(
            decision.ops,
            [Op::EditRealServer(
                web(1),
                server(0, 1),
                RealServer::new(Forwarding::Nat, 0)
            )]
        );
        assert!(decision.checks.is_empty());
        let policy = &state.plan.service(&web(1)).unwrap().policy;
        assert!(state.health[&web(1)].next_deadline(policy).is_some());
        assert_eq!(
            decision.lines,
            [
                "health policy of TCP 192.0.2.1:80 changed: re-entry 0 s -> 10 s",
                "health policy of TCP 192.0.2.2:80 changed: re-entry 0 s -> 10 s"
            ]
        );
    }

    #[test]
    fn a_removed_check_forgets_the_verdict_so_the_server_is_live() {
        let now = Instant::now();
        let (mut state, mut kernel) = running(&config_text(1, 1, |_, _, _| {}), now);
        health(&mut state, &mut kernel, (web(1), server(0, 1)), false, now);
        let unchecked = config_text(1, 1, |_, _, _| {}).replace(CHECK, "");
        let decision = state.apply(config(&unchecked), &kernel, now);
        assert_eq!(decision.checks.unsubscribe.len(), 1);
        assert_eq!(
            decision.ops,
            [Op::EditRealServer(
                web(1),
                server(0, 1),
                RealServer::new(Forwarding::Nat, 1)
            )]
        );
        assert_eq!(
            decision.lines,
            ["health check of 10.0.0.1:80 in TCP 192.0.2.1:80 removed"]
        );
    }

    #[test]
    fn reconcile_checks_compares_slot_by_slot() {
        let now = Instant::now();
        let (state, _) = running(&config_text(2, 2, |_, _, _| {}), now);
        let mut new = state.plan.clone();
        // Drop one service's plan object: its checks are compared slot by slot and all kept.
        let copy = ServicePlan::clone(&new.services[&web(1)].plan);
        new.services.get_mut(&web(1)).unwrap().plan = Arc::new(copy);
        let mut ids = state.ids.clone();
        let services = changed_services(&state.plan, &new);
        assert!(services.is_empty(), "equal by value");
        let changes = reconcile_checks(&state.subscriptions, &new, &[web(1)], &mut ids);
        assert_eq!(changes.kept, 4);
        assert!(changes.is_empty());
    }

    #[test]
    fn subscriber_ids_are_never_reused() {
        let mut ids = SubscriberIds::new();
        let a = ids.allocate();
        let b = ids.allocate();
        assert_ne!(a, b);
        assert!(b.0 > a.0);
    }
}
