//! `uefibench`: boots the flashable disk image (`make image`) under OVMF five times and prints
//! the medians of the wall time from starting qemu to OVMF starting the disk's boot loader
//! (`BdsDxe: starting`) and to the box's ready line, and the `/init`-to-ready seconds the box
//! reports (TCG, this machine). bootbench gives the same for the `-kernel` boot.

use std::time::{Duration, Instant};

use tandem_lab::figures::percentile;
use tandem_lab::{BoxSpec, Lab, Segment};

const BOOTS: usize = 5;

fn main() -> Result<(), String> {
    let (mut loader, mut ready_wall, mut init_to_ready) = (Vec::new(), Vec::new(), Vec::new());
    for boot in 0..BOOTS {
        let mut lab = Lab::new()?;
        let started = Instant::now();
        lab.start_box(&BoxSpec::new("bench", &[Segment::Public, Segment::Peer]).with_uefi_disk())?;
        let qemu_box = &lab.boxes[0];
        qemu_box
            .console
            .wait_for_any_time("BdsDxe: starting", Duration::from_secs(240))?;
        loader.push(started.elapsed().as_secs_f64());
        let seconds = qemu_box.wait_ready(Duration::from_secs(240))?;
        ready_wall.push(started.elapsed().as_secs_f64());
        init_to_ready.push(seconds);
        eprintln!(
            "boot {}: boot loader at {:.2} s, ready at {:.2} s wall ({seconds:.3} s after /init)",
            boot + 1,
            loader[boot],
            ready_wall[boot]
        );
    }
    println!(
        "bench: uefi_to_boot_loader_tcg_median {:.2} s",
        percentile(&mut loader, 50)
    );
    println!(
        "bench: uefi_boot_wall_tcg_median {:.2} s",
        percentile(&mut ready_wall, 50)
    );
    println!(
        "bench: uefi_init_to_ready_tcg_median {:.3} s",
        percentile(&mut init_to_ready, 50)
    );
    Ok(())
}
