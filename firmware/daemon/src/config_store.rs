//! Where the committed config lives: the appliance's config disk, a `--state DIR` on a host,
//! or (neither) memory, which loses commits at a restart and says so.
//!
//! The slot format, CRC, generations and power-cut safety live in `tandem-config`; this module
//! only picks the device, opens the [`Transactions`] on it and tells the operator what it found.

use std::path::{Path, PathBuf};

use tandem_config::identity::{IdentityStore, IDENTITY_BYTES};
use tandem_config::storage::{
    BlockDevice, DeviceError, FileDevice, MemDevice, SlotStore, APPLIANCE_SLOT_BYTES,
};
use tandem_config::{Config, Severity};

use crate::logring::Log;
use tandem_config::transaction::{unix_now, Opened, Transactions};

/// The state file inside `--state DIR`.
pub const STATE_FILE: &str = "config.slots";

/// Any block device, so the daemon holds one store type whatever backs it.
pub struct AnyDevice {
    device: Box<dyn BlockDevice + Send>,
    what: String,
}

impl core::fmt::Debug for AnyDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "AnyDevice({})", self.what)
    }
}

impl AnyDevice {
    pub fn new(device: Box<dyn BlockDevice + Send>, what: impl Into<String>) -> AnyDevice {
        AnyDevice {
            device,
            what: what.into(),
        }
    }

    /// An erased in-memory store of two appliance-sized slots.
    pub fn memory() -> AnyDevice {
        let len = usize::try_from(APPLIANCE_SLOT_BYTES * 2).unwrap_or(4 << 20);
        AnyDevice::new(Box::new(MemDevice::erased(len)), "memory")
    }

    /// Where the store lives, for messages.
    pub fn what(&self) -> &str {
        &self.what
    }
}

impl BlockDevice for AnyDevice {
    fn capacity(&mut self) -> Result<u64, DeviceError> {
        self.device.capacity()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.device.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.device.write_at(offset, data)
    }
    fn sync(&mut self) -> Result<(), DeviceError> {
        self.device.sync()
    }
}

/// The store in `dir` (created, with an erased state file, when missing).
pub fn state_dir_device(dir: &Path) -> std::io::Result<AnyDevice> {
    std::fs::create_dir_all(dir)?;
    let path: PathBuf = dir.join(STATE_FILE);
    let file = if path.exists() {
        FileDevice::open(&path)?
    } else {
        FileDevice::create(&path, APPLIANCE_SLOT_BYTES * 2)?
    };
    Ok(AnyDevice::new(Box::new(file), path.display().to_string()))
}

/// The identity file inside `--state DIR` (the pair key stays out of the config slots).
pub const IDENTITY_FILE: &str = "pair.identity";

/// The identity region of the appliance's config disk (after the two config slots): the pair
/// identity, the admin password hash and the port map.
pub fn appliance_identity_store(disk: &str) -> std::io::Result<IdentityStore<AnyDevice>> {
    let file = FileDevice::open(Path::new(disk))?;
    Ok(IdentityStore::new(
        AnyDevice::new(Box::new(file), disk),
        2 * APPLIANCE_SLOT_BYTES,
    ))
}

/// Where the pair identity lives: after the two config slots on the appliance's config disk,
/// in `--state DIR`'s [`IDENTITY_FILE`] on a host, else in memory (pairing lasts until a stop).
pub fn identity_store(
    appliance_disk: Option<&str>,
    state_dir: Option<&Path>,
    log: &Log,
) -> IdentityStore<AnyDevice> {
    if let Some(disk) = appliance_disk {
        match appliance_identity_store(disk) {
            Ok(store) => return store,
            Err(error) => log.line(format!(
                "pair: cannot open config disk {disk} for the pair identity: {error}; a pairing \
                 lasts until the next boot"
            )),
        }
    }
    if let Some(dir) = state_dir {
        let path = dir.join(IDENTITY_FILE);
        let opened = if path.exists() {
            FileDevice::open(&path)
        } else {
            FileDevice::create(&path, IDENTITY_BYTES)
        };
        match opened {
            Ok(file) => {
                return IdentityStore::new(
                    AnyDevice::new(Box::new(file), path.display().to_string()),
                    0,
                )
            }
            Err(error) => log.line(format!(
                "pair: cannot use {}: {error}; a pairing lasts until this daemon stops",
                path.display()
            )),
        }
    }
    let len = usize::try_from(IDENTITY_BYTES).unwrap_or(8192);
    IdentityStore::new(
        AnyDevice::new(Box::new(MemDevice::erased(len)), "memory"),
        0,
    )
}

/// The appliance's config disk, or memory (logged) when it cannot be opened.
pub fn appliance_device(device: Option<&str>, log: &Log) -> AnyDevice {
    let Some(device) = device else {
        log.line("config: this board has no config disk; commits last until the next boot");
        return AnyDevice::memory();
    };
    match FileDevice::open(Path::new(device)) {
        Ok(file) => AnyDevice::new(Box::new(file), device),
        Err(error) => {
            log.line(format!(
                "config: cannot open config disk {device}: {error}; commits last until the next \
                 boot (attach a config disk of at least {} bytes)",
                APPLIANCE_SLOT_BYTES * 2
            ));
            AnyDevice::memory()
        }
    }
}

/// Where the appliance's config slots are, and the boot log's line saying so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigLocation {
    /// The device to open (None: none usable, commits last until the next boot).
    pub device: Option<String>,
    pub note: String,
}

/// Finds the config storage: the partition named `tandem-config` on any disk (the flashable
/// disk image has one), else the board's whole config disk, unless that disk is partitioned
/// or holds a GPT (a boot disk: slot 0 would overwrite its partition table).
pub fn find_config_location(
    board_disk: Option<&str>,
    sys_class_block: &Path,
    dev: &Path,
) -> ConfigLocation {
    use tandem_board::boot_disk::CONFIG_PARTITION_NAME;
    use tandem_southbound::block;
    if let Some(name) = block::partition_named(sys_class_block, CONFIG_PARTITION_NAME) {
        let device = dev.join(&name).display().to_string();
        return ConfigLocation {
            note: format!("config: slots on partition {CONFIG_PARTITION_NAME} ({device})"),
            device: Some(device),
        };
    }
    let Some(disk) = board_disk else {
        return ConfigLocation {
            device: None,
            note: format!(
                "config: no {CONFIG_PARTITION_NAME} partition and no config disk on this board"
            ),
        };
    };
    let kernel_name = Path::new(disk)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partitioned = block::has_partitions(sys_class_block, &kernel_name)
        || block::holds_gpt(Path::new(disk)).unwrap_or(false);
    if partitioned {
        return ConfigLocation {
            device: None,
            note: format!(
                "config: {disk} holds a partition table but no {CONFIG_PARTITION_NAME} \
                 partition; it is not used for config (that would overwrite the table): \
                 flash the disk image (make image) or attach a blank config disk"
            ),
        };
    }
    ConfigLocation {
        device: Some(disk.to_owned()),
        note: format!("config: slots on the board's config disk {disk}"),
    }
}

/// Opens the transactions on `device`, seeding an empty store with `seed`, and logs the result.
pub fn open(device: AnyDevice, seed: Option<Config>, log: &Log) -> Transactions<AnyDevice> {
    let what = device.what().to_owned();
    let seeded = seed.is_some();
    let (transactions, opened) = Transactions::open(
        SlotStore::new(device, APPLIANCE_SLOT_BYTES),
        seed,
        unix_now(),
    );
    match opened {
        Opened::Stored { generation } => {
            log.line(format!("config: generation {generation} from {what}"));
            if seeded {
                log.line(format!(
                    "config: {what} holds generation {generation}, which wins; -c FILE only \
                     seeds an empty state"
                ));
            }
        }
        Opened::Seeded => log.line(format!(
            "config: -c FILE committed as generation 1 in {what}"
        )),
        Opened::Empty => log.line(format!(
            "config: nothing stored in {what}; running unconfigured (set one up with `load`, \
             `set` and `commit`)"
        )),
        Opened::Unreadable { error } => log.line(format!(
            "config: {what}: {error}; {}",
            if seeded {
                "running -c FILE without persisting it"
            } else {
                "running unconfigured"
            }
        )),
    }
    transactions
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tandem-cfgloc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_named_partition_wins_and_a_partitioned_board_disk_is_never_taken() {
        let root = temp("sysfs");
        let sys = root.join("sys");
        let dev = root.join("dev");
        std::fs::create_dir_all(&dev).unwrap();
        // A blank board disk (the lab's -kernel boots): used whole.
        std::fs::create_dir_all(sys.join("vda")).unwrap();
        std::fs::write(dev.join("vda"), vec![0u8; 8192]).unwrap();
        let disk = dev.join("vda").display().to_string();
        let found = find_config_location(Some(&disk), &sys, &dev);
        assert_eq!(found.device.as_deref(), Some(disk.as_str()));
        // The same disk with a GPT the kernel did not parse: refused, with the fix.
        let mut gpt = vec![0u8; 8192];
        gpt[512..520].copy_from_slice(b"EFI PART");
        std::fs::write(dev.join("vda"), &gpt).unwrap();
        let found = find_config_location(Some(&disk), &sys, &dev);
        assert_eq!(found.device, None);
        assert!(found.note.contains("make image"), "{}", found.note);
        // The disk image's config partition: found by its GPT name.
        std::fs::create_dir_all(sys.join("vda2")).unwrap();
        std::fs::write(sys.join("vda2/partition"), "2\n").unwrap();
        std::fs::write(
            sys.join("vda2/uevent"),
            "DEVNAME=vda2\nPARTNAME=tandem-config\n",
        )
        .unwrap();
        let found = find_config_location(Some(&disk), &sys, &dev);
        assert_eq!(found.device, Some(dev.join("vda2").display().to_string()));
        assert!(found.note.contains("tandem-config"));
        // No board disk, no partition.
        std::fs::remove_dir_all(sys.join("vda2")).unwrap();
        assert_eq!(find_config_location(None, &sys, &dev).device, None);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
