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
