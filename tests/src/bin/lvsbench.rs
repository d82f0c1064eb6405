//! `make bench` part: boots one bench-image box per phase of `/lab/lab-lvs-bench` (IPVS cold
//! load of 1000 services x 10 real servers with read-back, adopt diff and one weight change;
//! 10,000 x 5; and Debian's `ipvsadm -R` of the same two tables as the baseline) and prints
//! their `bench:` lines. Every phase gets a fresh kernel (`lvsbench.phase=` on the command
//! line) so neither tool pays for the other's deleted real servers (see lab-lvs-bench's header);
//! all phases run in this one run, on the same host, one after the other. Figures are measured
//! inside qemu (TCG on the lab host), so they are upper bounds for real hardware.

use std::process::ExitCode;
use std::time::Duration;

use tandem_lab::{BoxSpec, ImageKind, Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);
/// `ipvsadm -R` of 10,000 x 5 sends 60,000 requests one by one: give it time under TCG.
const PHASE: Duration = Duration::from_secs(900);
const PHASES: [&str; 4] = [
    "tandem-1000x10",
    "ipvsadm-1000x10",
    "tandem-10000x5",
    "ipvsadm-10000x5",
];

fn main() -> ExitCode {
    let mut failed = false;
    for phase in PHASES {
        if let Err(message) = run(phase) {
            eprintln!("lvsbench: {phase}: {message}");
            failed = true;
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn run(phase: &str) -> Result<(), String> {
    let mut lab = Lab::new()?;
    let mut spec = BoxSpec::new("bench", &[Segment::Public])
        .with_config("[system]\nhostname = \"bench\"\n")
        .with_lab_program("/lab/lab-lvs-bench");
    spec.memory_mb = 512;
    // The bench image carries ipvsadm: the baseline.
    spec.image = ImageKind::Bench;
    spec.append = format!("{} lvsbench.phase={phase}", spec.append);
    lab.boot(&[spec], BOOT)?;
    let b = lab.box_named("bench")?;
    b.console.wait_for_any_time("lab-lvs-bench: done", PHASE)?;
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
