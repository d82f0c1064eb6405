//! Bringing a config to life and changing it live: interface addresses first, then every role
//! engine the config asks for.
//!
//! Each engine module exposes `start(&Config, &EngineContext) -> Option<EngineHandle>`; this is
//! the one place that lists them ([`KINDS`]). On a commit, [`plan_apply`] decides per engine
//! whether it is started (the new config asks for it and none runs), shut down (it runs and
//! the config no longer asks for it) or handed the new config to reconcile itself
//! (`EngineRequest::Apply`); interface addresses are reconciled against the previous config.

use std::future::Future;
use std::sync::Arc;

use tandem_config::Config;
use tandem_southbound::net::NetExecutor;

use crate::engine::EngineHandle;
use crate::logring::Log;
use crate::netconfig;

/// What every engine gets to work with.
#[derive(Debug, Clone)]
pub struct EngineContext {
    pub log: Log,
    pub net: NetExecutor,
    /// The daemon's peer channel (VRRP tickles the partner's clients through it).
    pub peer: crate::peer_channel::PeerSlot,
    /// Link state from rtnetlink notifications (None: netlink unavailable; engines poll).
    pub links: Option<tandem_southbound::link_monitor::LinkWatch>,
    /// The pair's notice board (`pair status`; the heartbeat reads the generation from it).
    pub pair: crate::pair_board::PairBoard,
    /// What the load-sharing engine and the pair heartbeat tell each other.
    pub sharing: crate::sharing_board::SharingBoard,
}

/// One kind of role engine.
#[derive(Debug, Clone, Copy)]
pub struct EngineKind {
    /// The console word (`<name> status`).
    pub name: &'static str,
    /// Whether a config asks for this engine.
    pub wanted: fn(&Config) -> bool,
    pub start: fn(&Config, &EngineContext) -> Option<EngineHandle>,
}

/// Every engine, in start order.
pub const KINDS: [EngineKind; 4] = [
    EngineKind {
        name: "lvs",
        wanted: |config| config.virtual_services.iter().any(|vs| vs.active),
        start: crate::lvs_engine::start,
    },
    EngineKind {
        name: "realserver",
        wanted: |config| crate::realserver_engine::Role::of(config).is_some(),
        start: crate::realserver_engine::start,
    },
    EngineKind {
        name: "vrrp",
        // Also for load sharing alone: the pair heartbeat runs on the VRRP engine's thread.
        wanted: |config| !config.vrrp.is_empty() || !config.clusterip.is_empty(),
        start: crate::vrrp_engine::start,
    },
    EngineKind {
        name: crate::sharing_engine::NAME,
        wanted: |config| !config.clusterip.is_empty(),
        start: crate::sharing_engine::start,
    },
];

/// The engines `config` starts, by console word (what a slot on trial waits for before a
/// bless: each of them running).
pub fn wanted_names(config: &Config) -> Vec<&'static str> {
    KINDS
        .iter()
        .filter(|kind| (kind.wanted)(config))
        .map(|kind| kind.name)
        .collect()
}

/// The order running engines get a new config in.
const APPLY_ORDER: [&str; 4] = ["vrrp", "realserver", "lvs", "cluster"];

/// Loads the kernel modules an engine needs, in dependency order, on the appliance only: as
/// PID 1 the kernel is ours; under `tandem run` on a host, module loading is the host's. What
/// was loaded and any failure are logged under `engine`; the engine carries on, and whatever
/// needed a missing module reports its own error.
pub fn load_feature_modules(log: &Log, engine: &str, names: &[&str]) {
    if std::process::id() != 1 || names.is_empty() {
        return;
    }
    match tandem_southbound::kmod::ModuleLoader::for_running_kernel()
        .and_then(|loader| loader.load(names.iter().copied()))
    {
        Ok(report) if !report.loaded.is_empty() => {
            log.line(format!("{engine}: loaded {}", report.loaded.join(" ")))
        }
        Ok(_) => {}
        Err(error) => log.line(format!("{engine}: {error}")),
    }
}

/// Reconciles interface addresses from `old` (None at boot) to `new`; returns what changed.
pub async fn apply_addresses(
    old: Option<&Config>,
    new: &Config,
    context: &EngineContext,
) -> Vec<String> {
    let mut present = Vec::new();
    let mut names: Vec<String> = new
        .interfaces
        .iter()
        .map(|i| i.name.as_str().to_owned())
        .collect();
    for interface in old.iter().flat_map(|old| old.interfaces.iter()) {
        let name = interface.name.as_str().to_owned();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    for name in names {
        match context.net.addresses(&name).await {
            Ok(addresses) => present.push((name, addresses)),
            Err(error) => context
                .log
                .line(format!("config: interface {name}: {error}")),
        }
    }
    let mut report = Vec::new();
    for op in netconfig::address_ops(old, new, &present) {
        match context.net.apply(std::slice::from_ref(&op)).await {
            Ok(()) => {
                if !matches!(op, tandem_southbound::net::NetOp::SetLinkUp { .. }) {
                    report.push(format!("interfaces: {op}"));
                }
            }
            Err(error) => {
                context.log.line(format!("config: {error}"));
                report.push(format!("interfaces: failed: {error}"));
            }
        }
    }
    report
}

/// Applies the config's interface settings and starts its engines (boot).
pub async fn bring_up(config: &Config, context: &EngineContext) -> Vec<EngineHandle> {
    crate::realserver_engine::lab_hook::spawn_if_requested(&context.log);
    // Bonds first: addresses and engines sit on them.
    let bonds = crate::bonds::apply(None, config, &context.log).await;
    for line in &bonds.lines {
        context.log.line(format!("config: {line}"));
    }
    if let Some(summary) = bonds.summary() {
        context.log.line(format!("config: {summary}"));
    }
    apply_addresses(None, config, context).await;
    let engines: Vec<EngineHandle> = KINDS
        .iter()
        .filter(|kind| (kind.wanted)(config))
        .filter_map(|kind| (kind.start)(config, context))
        .collect();
    let names: Vec<&str> = engines.iter().map(|e| e.name).collect();
    context.log.line(format!(
        "config: applied; engines: {}",
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(" ")
        }
    ));
    engines
}

/// Moves the running engines from `old` to `new`: starts and removes handles in `engines` at
/// once (so status and later commits see the new set), and returns the work that remains
/// (addresses, shutdowns, applies) as a future that yields the change report.
pub fn plan_apply(
    engines: &mut Vec<EngineHandle>,
    old: Arc<Config>,
    new: Arc<Config>,
    context: &EngineContext,
) -> impl Future<Output = Vec<String>> + use<> {
    let mut stopping = Vec::new();
    let mut applying = Vec::new();
    let mut started = Vec::new();
    for kind in &KINDS {
        let running = engines.iter().position(|e| e.name == kind.name);
        match (running, (kind.wanted)(&new)) {
            (Some(index), true) => applying.push(engines[index].clone()),
            (Some(index), false) => stopping.push(engines.remove(index)),
            (None, true) => {
                if let Some(handle) = (kind.start)(&new, context) {
                    started.push(handle.name);
                    engines.push(handle);
                }
            }
            (None, false) => {}
        }
    }
    // VRRP first: an address it stops floating (a NAT gateway the LVS engine now owns) is
    // released before the LVS engine adds it.
    applying.sort_by_key(|engine| APPLY_ORDER.iter().position(|name| *name == engine.name));
    let context = context.clone();
    async move {
        let bonds = crate::bonds::apply(Some(&old), &new, &context.log).await;
        if let Some(summary) = bonds.summary() {
            context.log.line(format!("config: {summary}"));
        }
        let mut report = bonds.lines;
        report.extend(apply_addresses(Some(&old), &new, &context).await);
        for engine in stopping {
            // The engine removes what the config no longer asks for (IPVS services, VIPs, nft
            // tables): a plain shutdown leaves the IPVS table for a restarted daemon to adopt.
            let text = engine.apply(Arc::clone(&new)).await;
            report.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_owned));
            let stopped = engine.shutdown().await;
            report.push(format!(
                "{}: stopped (the config no longer asks for it){}",
                engine.name,
                if stopped {
                    ""
                } else {
                    "; it did not stop cleanly"
                }
            ));
        }
        for name in started {
            report.push(format!("{name}: started"));
        }
        for engine in applying {
            let text = engine.apply(Arc::clone(&new)).await;
            report.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_owned));
        }
        report
    }
}
