//! The appliance's config: two slots on the board's config disk, loaded at boot.
//!
//! The slot format, CRC, generations and power-cut safety live in `tandem-config`; this module
//! only knows where the disk is and what to tell the operator when it holds nothing usable.

use std::path::Path;

use tandem_config::storage::{FileDevice, SlotStore, APPLIANCE_SLOT_BYTES};
use tandem_config::{Config, MacPolicy, Severity};

use crate::logring::Log;

/// Loads and validates the newest valid config from `device`. Every problem is logged with what
/// to do; `None` means the box runs unconfigured until one is committed.
pub fn load_from_disk(device: &Path, log: &Log) -> Option<Config> {
    let file = match FileDevice::open(device) {
        Ok(file) => file,
        Err(error) => {
            log.line(format!(
                "config: cannot open config disk {}: {error}; running unconfigured",
                device.display()
            ));
            return None;
        }
    };
    let mut store = SlotStore::new(file, APPLIANCE_SLOT_BYTES);
    let loaded = match store.load(MacPolicy::Unkeyed, None) {
        Ok(loaded) => loaded,
        Err(error) => {
            log.line(format!(
                "config: nothing usable on {}: {error}; running unconfigured (set one up on the \
                 console)",
                device.display()
            ));
            return None;
        }
    };
    for (slot, state) in loaded.slots.iter().enumerate() {
        log.line(format!("config: slot {slot}: {state:?}"));
    }
    let config = loaded.blob.config;
    if !accept_valid(&config, log) {
        return None;
    }
    log.line(format!(
        "config: generation {} from slot {} of {}",
        loaded.blob.header.generation,
        loaded.slot,
        device.display()
    ));
    Some(config)
}

/// Logs every validation issue; true when there is no error (warnings are fine).
pub fn accept_valid(config: &Config, log: &Log) -> bool {
    let issues = tandem_config::validate(config);
    for issue in &issues {
        log.line(format!("config: {issue}"));
    }
    let errors = issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .count();
    if errors > 0 {
        log.line(format!(
            "config: {errors} error(s); the stored config is not applied (fix it and commit again)"
        ));
    }
    errors == 0
}
