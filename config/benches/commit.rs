//! A commit of one real-server weight change in a 1000 virtual services x 10 real servers
//! config, as `Transactions::commit` runs it in the daemon: validate, encode the blob with its
//! history, write it to the slot not holding the running generation (an in-memory device: the
//! figure is the CPU work; a disk's sync time comes on top), preview the change. p50/p99 over
//! 100 commits. Target for commit -> applied: p99 <= 5 ms CPU (the LVS engine's share is
//! `tandem-lvs`'s `live_apply` bench). As in the daemon, `Transactions` keeps the running
//! config's encoding and validation per service (from `open` or the previous commit), so each
//! commit re-encodes and re-validates the one changed service and reuses the rest.

// Test code: panics are the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tandem_config::history::CommitOrigin;
use tandem_config::storage::{MemDevice, SlotStore, APPLIANCE_SLOT_BYTES};
use tandem_config::transaction::{CommitRequest, Transactions};

#[path = "../tests/common/mod.rs"]
mod common;
use common::generated;

fn cpu_now() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(|t| {
            Duration::new(
                t.tv_sec().unsigned_abs(),
                u32::try_from(t.tv_nsec()).unwrap(),
            )
        })
        .unwrap()
}

fn percentile(values: &mut [Duration], p: usize) -> Duration {
    values.sort();
    values[((values.len() - 1) * p + 50) / 100]
}

fn main() {
    let running = generated(1000, 10);
    let device = MemDevice::erased(usize::try_from(APPLIANCE_SLOT_BYTES * 2).unwrap());
    let (mut transactions, _) = Transactions::open(
        SlotStore::new(device, APPLIANCE_SLOT_BYTES),
        Some(running),
        1,
    );
    let request = CommitRequest {
        confirm: None,
        comment: "weight".into(),
        origin: CommitOrigin::ControlSocket,
    };
    let (mut cpu, mut wall) = (Vec::new(), Vec::new());
    let mut blob_bytes = 0;
    for round in 0..100u32 {
        let mut candidate = (**transactions.running()).clone();
        let server = &mut candidate.virtual_services.as_mut_slice()[500]
            .real_servers
            .as_mut_slice()[3];
        server.weight = 2 + round % 7;
        transactions.load(candidate);
        let (cpu_start, wall_start) = (cpu_now(), Instant::now());
        let committed = transactions
            .commit(&request, 1_800_000_000, Instant::now())
            .unwrap();
        cpu.push(cpu_now() - cpu_start);
        wall.push(wall_start.elapsed());
        assert_eq!(
            committed.preview.changes.len(),
            1,
            "{:?}",
            committed.preview
        );
        blob_bytes = postcard::to_allocvec(&*committed.config).unwrap().len();
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "bench: commit_1000x10_weight_cpu_p50 {:.3} ms",
        ms(percentile(&mut cpu, 50))
    );
    println!(
        "bench: commit_1000x10_weight_cpu_p99 {:.3} ms",
        ms(percentile(&mut cpu, 99))
    );
    println!(
        "bench: commit_1000x10_weight_wall_p99 {:.3} ms",
        ms(percentile(&mut wall, 99))
    );
    println!("bench: commit_1000x10_payload_bytes {blob_bytes}");
    partner(&mut transactions, &request);
}

/// The partner's side of replication for the same change: this box frames its blob for the
/// partner (keyed), the partner takes it (`adopt`: decode, MAC and CRC checks, the incremental
/// validation, store, preview); and the same as a delta over the previous generation (what a
/// push to a partner running that generation sends): made on this box, taken by a second
/// partner (`adopt_delta`: rebuild from its running config, the same validation and store).
/// p50 of each over 50 rounds.
fn partner(a: &mut Transactions<MemDevice>, request: &CommitRequest) {
    let key = tandem_config::MacKey([9; 32]);
    let device = MemDevice::erased(usize::try_from(APPLIANCE_SLOT_BYTES * 2).unwrap());
    let (mut b, _) = Transactions::open(SlotStore::new(device, APPLIANCE_SLOT_BYTES), None, 1);
    let blob = a.blob_for_partner(Some(&key)).unwrap();
    b.adopt(&blob, tandem_config::MacPolicy::Require(&key), false, 1)
        .unwrap();
    let device = MemDevice::erased(usize::try_from(APPLIANCE_SLOT_BYTES * 2).unwrap());
    let (mut c, _) = Transactions::open(SlotStore::new(device, APPLIANCE_SLOT_BYTES), None, 1);
    c.adopt(&blob, tandem_config::MacPolicy::Require(&key), false, 1)
        .unwrap();
    let (mut framing, mut adopting) = (Vec::new(), Vec::new());
    let (mut delta_making, mut delta_taking) = (Vec::new(), Vec::new());
    let mut delta_bytes = 0;
    let mut bytes = 0;
    for round in 0..50u32 {
        let mut candidate = (**a.running()).clone();
        candidate.virtual_services.as_mut_slice()[200]
            .real_servers
            .as_mut_slice()[1]
            .weight = 3 + round % 5;
        a.load(candidate);
        let (base, base_generation, base_digest) = (
            std::sync::Arc::clone(a.running()),
            a.generation(),
            a.digest(),
        );
        a.commit(request, 1_800_000_000, Instant::now()).unwrap();
        let t = cpu_now();
        let delta = a
            .delta_for_partner(&base, base_generation, base_digest)
            .unwrap();
        delta_making.push(cpu_now() - t);
        delta_bytes = delta.len();
        let t = cpu_now();
        c.adopt_delta(&delta, 2).unwrap();
        delta_taking.push(cpu_now() - t);
        let t = cpu_now();
        let blob = a.blob_for_partner(Some(&key)).unwrap();
        framing.push(cpu_now() - t);
        bytes = blob.len();
        let t = cpu_now();
        b.adopt(&blob, tandem_config::MacPolicy::Require(&key), false, 2)
            .unwrap();
        adopting.push(cpu_now() - t);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "bench: replicate_1000x10_frame_for_partner_cpu_p50 {:.3} ms",
        ms(percentile(&mut framing, 50))
    );
    println!(
        "bench: replicate_1000x10_partner_adopt_cpu_p50 {:.3} ms",
        ms(percentile(&mut adopting, 50))
    );
    println!("bench: replicate_1000x10_blob_bytes {bytes}");
    println!(
        "bench: replicate_1000x10_delta_make_cpu_p50 {:.3} ms",
        ms(percentile(&mut delta_making, 50))
    );
    println!(
        "bench: replicate_1000x10_partner_adopt_delta_cpu_p50 {:.3} ms",
        ms(percentile(&mut delta_taking, 50))
    );
    println!("bench: replicate_1000x10_delta_bytes {delta_bytes}");
    assert_eq!((c.generation(), c.digest()), (a.generation(), a.digest()));
}
