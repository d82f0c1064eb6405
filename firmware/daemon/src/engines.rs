//! Bringing a config to life: interface addresses first, then every role engine it asks for.
//!
//! Each engine module exposes `start(&Config, &EngineContext) -> Option<EngineHandle>`
//! (`None` when the config has nothing for it); this is the one place that lists them.

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
}

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

/// Applies the config's interface settings and starts its engines.
pub async fn bring_up(config: &Config, context: &EngineContext) -> Vec<EngineHandle> {
    let mut present = Vec::new();
    for interface in config.interfaces.iter() {
        let name = interface.name.as_str().to_owned();
        match context.net.addresses(&name).await {
            Ok(addresses) => present.push((name, addresses)),
            Err(error) => context
                .log
                .line(format!("config: interface {name}: {error}")),
        }
    }
    for op in netconfig::address_ops(config, &present) {
        if let Err(error) = context.net.apply(std::slice::from_ref(&op)).await {
            context.log.line(format!("config: {error}"));
        }
    }
    let mut engines: Vec<EngineHandle> = Vec::new();
    engines.extend(crate::lvs_engine::start(config, context));
    engines.extend(crate::realserver_engine::start(config, context));
    engines.extend(crate::vrrp_engine::start(config, context));
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
