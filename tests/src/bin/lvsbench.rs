//! `make bench` part: boots one lab-image box that runs `/lab/lab-lvs-bench` (IPVS cold load
//! of 1000 services x 10 real servers, read-back, adopt diff, one weight change) and prints its
//! `bench:` lines. Figures are measured inside qemu (TCG on the lab host), so they are upper
//! bounds for real hardware.

use std::process::ExitCode;
use std::time::Duration;

use tandem_lab::{BoxSpec, Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("lvsbench: {message}");
            ExitCode::from(1)
        }
    }
}

fn run() -> Result<(), String> {
    let mut lab = Lab::new()?;
    let mut spec = BoxSpec::new("bench", &[Segment::Public])
        .with_config("[system]\nhostname = \"bench\"\n")
        .with_lab_program("/lab/lab-lvs-bench");
    spec.memory_mb = 512;
    lab.boot(&[spec], BOOT)?;
    let b = lab.box_named("bench")?;
    b.console
        .wait_for_any_time("lab-lvs-bench: done", Duration::from_secs(600))?;
    for line in b.console.transcript().lines() {
        let line = line.trim();
        if line.starts_with("bench: ") {
            println!("{line}");
        } else if line.starts_with("lab-lvs-bench: ") {
            eprintln!("{line}");
        }
    }
    Ok(())
}
