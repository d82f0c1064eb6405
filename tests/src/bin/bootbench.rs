//! `bootbench`: boots one lab box five times and prints the median `/init`-to-ready seconds the
//! box reports and the wall time from starting qemu to the ready line (TCG, this machine).

use std::time::{Duration, Instant};

use tandem_lab::{BoxSpec, Lab, Segment};

const BOOTS: usize = 5;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() -> Result<(), String> {
    let mut ready = Vec::new();
    let mut wall = Vec::new();
    for boot in 0..BOOTS {
        let mut lab = Lab::new()?;
        let started = Instant::now();
        lab.start_box(&BoxSpec::new("bench", &[Segment::Public, Segment::Peer]))?;
        let seconds = lab.boxes[0].wait_ready(Duration::from_secs(240))?;
        wall.push(started.elapsed().as_secs_f64());
        ready.push(seconds);
        eprintln!(
            "boot {}: ready {seconds:.3} s after /init, {:.2} s wall",
            boot + 1,
            wall[boot]
        );
    }
    println!(
        "bench: init_to_ready_tcg_median {:.3} s",
        median(&mut ready)
    );
    println!("bench: boot_wall_tcg_median {:.2} s", median(&mut wall));
    Ok(())
}
