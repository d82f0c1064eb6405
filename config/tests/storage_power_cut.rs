//! Model-based power-cut test of the two-slot store: a cut at every sector write of every save
//! (with torn sectors), and bit flips, always leave the old or the new generation loadable.

// Test code: panics are the failure report, and the figures are small known values.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_lossless
)]

use tandem_config::blob::{self, BlobMeta, MacKey, MacPolicy};
use tandem_config::model::{RealServer, VirtualService};
use tandem_config::storage::{
    BlockDevice, FaultyDevice, MemDevice, SlotState, SlotStore, StoreError,
};
use tandem_config::Config;

const SECTOR: usize = 64;
const SLOT: u64 = 16 * 1024;

fn config_with(services: usize, tag: u32) -> Config {
    let mut config = Config::default();
    config.system.hostname = format!("box{tag}").as_str().try_into().unwrap();
    for index in 0..services {
        let mut service = VirtualService {
            address: Some(format!("10.0.{}.{}", tag % 250, index + 1).parse().unwrap()),
            port: 80,
            ..VirtualService::default()
        };
        for server in 0..8 {
            let real = RealServer {
                address: format!("192.168.{index}.{}", server + 1).parse().unwrap(),
                weight: tag,
                ..RealServer::default()
            };
            service.real_servers.push(real).unwrap();
        }
        config.virtual_services.push(service).unwrap();
    }
    config
}

fn blob_for(generation: u64, key: Option<&MacKey>) -> (Vec<u8>, Config) {
    // Sizes vary so that saves span different numbers of sectors.
    let config = config_with(1 + (generation as usize * 3) % 9, generation as u32);
    let meta = BlobMeta {
        generation,
        parent_generation: generation.saturating_sub(1),
        pair_id: 1,
    };
    (blob::encode(&config, meta, key).unwrap(), config)
}

fn policy(key: Option<&MacKey>) -> MacPolicy<'_> {
    key.map_or(MacPolicy::Unkeyed, MacPolicy::Require)
}

fn run_power_cuts(key: Option<&MacKey>) {
    let mut device = MemDevice::erased(2 * SLOT as usize);
    let mut committed: Option<(u64, Config)> = None;
    let mut cuts_tested = 0;
    for generation in 1..=8u64 {
        let (bytes, config) = blob_for(generation, key);
        let sectors = bytes.len().div_ceil(SECTOR);
        for cut_after in 0..=sectors {
            for torn in [0, 1, SECTOR / 2, SECTOR - 1] {
                let mut faulty = FaultyDevice::new(device.clone(), SECTOR);
                faulty.writes_left = Some(cut_after);
                faulty.torn_bytes = torn;
                let mut store = SlotStore::new(faulty, SLOT);
                let saved = store.save(&bytes, policy(key));
                let after = store.into_device().inner;
                let mut reboot = SlotStore::new(after, SLOT);
                let loaded = reboot.load(policy(key), None);
                cuts_tested += 1;
                match (&committed, loaded) {
                    (_, Ok(loaded)) if loaded.blob.header.generation == generation => {
                        assert_eq!(loaded.blob.config, config);
                    }
                    (Some((old, old_config)), Ok(loaded)) => {
                        assert_eq!(loaded.blob.header.generation, *old, "cut {cut_after}/{sectors} torn {torn}");
                        assert_eq!(&loaded.blob.config, old_config);
                        assert!(saved.is_err(), "a save that returned Ok must be loadable");
                    }
                    (None, Err(StoreError::NoValidSlot { .. })) => assert!(saved.is_err()),
                    (committed, other) => panic!("gen {generation} cut {cut_after} torn {torn}: committed {:?}, load {other:?}", committed.as_ref().map(|c| c.0)),
                }
            }
        }
        // Now the save completes.
        let mut store = SlotStore::new(device, SLOT);
        store.save(&bytes, policy(key)).unwrap();
        device = store.into_device();
        committed = Some((generation, config));
    }
    assert!(cuts_tested > 100);
}

#[test]
fn power_cut_at_every_write_leaves_old_or_new() {
    run_power_cuts(None);
}

#[test]
fn power_cut_at_every_write_leaves_old_or_new_keyed() {
    run_power_cuts(Some(&MacKey([3; 32])));
}

#[test]
fn bit_flips_in_one_slot_fall_back_and_are_reported() {
    let mut store = SlotStore::new(MemDevice::erased(2 * SLOT as usize), SLOT);
    let (first, _) = blob_for(1, None);
    let (second, second_config) = blob_for(2, None);
    assert_eq!(store.save(&first, MacPolicy::Unkeyed).unwrap(), 0);
    assert_eq!(store.save(&second, MacPolicy::Unkeyed).unwrap(), 1);
    let device = store.into_device();
    // Flip bits throughout the newest slot: load falls back to generation 1 and names the damage.
    // (The MAC slot of an unkeyed blob is covered by nothing, so it is left out.)
    for bit in (0..(second.len() - blob::MAC_BYTES) * 8).step_by(7) {
        let mut damaged = device.clone();
        damaged.bytes[SLOT as usize + bit / 8] ^= 1 << (bit % 8);
        let loaded = SlotStore::new(damaged, SLOT)
            .load(MacPolicy::Unkeyed, None)
            .unwrap();
        assert_eq!(loaded.blob.header.generation, 1, "bit {bit}");
        assert!(
            matches!(loaded.slots[1], SlotState::Damaged(_)),
            "bit {bit}: {:?}",
            loaded.slots[1]
        );
    }
    // Flips in the older slot do not disturb the newest.
    let mut damaged = device.clone();
    damaged.bytes[100] ^= 0x10;
    let loaded = SlotStore::new(damaged, SLOT)
        .load(MacPolicy::Unkeyed, None)
        .unwrap();
    assert_eq!((loaded.blob.header.generation, loaded.slot), (2, 1));
    assert_eq!(loaded.blob.config, second_config);
    assert!(matches!(loaded.slots[0], SlotState::Damaged(_)));
}

#[test]
fn refuses_rollback_and_non_increasing_saves() {
    let mut store = SlotStore::new(MemDevice::erased(2 * SLOT as usize), SLOT);
    let (first, _) = blob_for(1, None);
    let (second, _) = blob_for(2, None);
    store.save(&first, MacPolicy::Unkeyed).unwrap();
    store.save(&second, MacPolicy::Unkeyed).unwrap();
    assert!(matches!(
        store.save(&first, MacPolicy::Unkeyed),
        Err(StoreError::GenerationNotNewer {
            generation: 1,
            stored: 2
        })
    ));
    // The partner already gave us generation 3: the stored generation 2 is refused as a rollback.
    assert!(matches!(
        store.load(MacPolicy::Unkeyed, Some(3)),
        Err(StoreError::Stale {
            generation: 2,
            last_accepted: 3
        })
    ));
    assert_eq!(
        store
            .load(MacPolicy::Unkeyed, Some(2))
            .unwrap()
            .blob
            .header
            .generation,
        2
    );
    // A device too small for two slots is named.
    let mut small = SlotStore::new(MemDevice::erased(100), SLOT);
    assert!(matches!(
        small.load(MacPolicy::Unkeyed, None),
        Err(StoreError::DeviceTooSmall { .. })
    ));
    let mut empty = SlotStore::new(MemDevice::erased(2 * SLOT as usize), SLOT);
    assert!(matches!(
        empty.load(MacPolicy::Unkeyed, None),
        Err(StoreError::NoValidSlot {
            slot0: SlotState::Empty,
            slot1: SlotState::Empty
        })
    ));
}

#[test]
fn file_device_round_trip() {
    let path = std::env::temp_dir().join(format!("tandem-config-store-{}", std::process::id()));
    let device = tandem_config::storage::FileDevice::create(&path, 2 * SLOT).unwrap();
    let mut store = SlotStore::new(device, SLOT);
    let (bytes, config) = blob_for(1, None);
    store.save(&bytes, MacPolicy::Unkeyed).unwrap();
    drop(store);
    let mut device = tandem_config::storage::FileDevice::open(&path).unwrap();
    assert_eq!(device.capacity().unwrap(), 2 * SLOT);
    let loaded = SlotStore::new(device, SLOT)
        .load(MacPolicy::Unkeyed, None)
        .unwrap();
    assert_eq!(loaded.blob.config, config);
    std::fs::remove_file(path).unwrap();
}

/// Factory reset: both slots erased, nothing loads, every byte reads as a fresh device, and a
/// generation 1 can be stored again.
#[test]
fn erase_leaves_no_config_and_a_store_that_takes_generation_one() {
    let mut store = SlotStore::new(MemDevice::erased(2 * SLOT as usize + 100), SLOT);
    store
        .save(&blob_for(1, None).0, MacPolicy::Unkeyed)
        .unwrap();
    store
        .save(&blob_for(2, None).0, MacPolicy::Unkeyed)
        .unwrap();
    store.erase().unwrap();
    assert_eq!(
        store.load(MacPolicy::Unkeyed, None).unwrap_err(),
        StoreError::NoValidSlot {
            slot0: SlotState::Empty,
            slot1: SlotState::Empty
        }
    );
    let (first, _) = blob_for(1, None);
    assert_eq!(store.save(&first, MacPolicy::Unkeyed).unwrap(), 0);
    let mut device = store.into_device();
    // Nothing past the two slots is touched.
    device.bytes[2 * SLOT as usize..].fill(0x5A);
    let mut again = SlotStore::new(device, SLOT);
    again.erase().unwrap();
    let device = again.into_device();
    assert!(device.bytes[..2 * SLOT as usize].iter().all(|b| *b == 0xFF));
    assert!(device.bytes[2 * SLOT as usize..].iter().all(|b| *b == 0x5A));
}
