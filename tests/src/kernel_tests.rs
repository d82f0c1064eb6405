//! Kernel test binaries run in a lab box: a crate's tests against what only the appliance's
//! Debian kernel has (IPVS, bonding, dummy). The very test binary is put into the lab image
//! (`make lab-image`, `/lab/<name>`), a box boots with it as its lab program, and its libtest
//! summary is read off the console. In a lab box the binaries fail instead of skipping (they
//! see the lab hook on the kernel command line).

use std::time::Duration;

use crate::{BoxSpec, Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);

/// Boots a box running `program` (e.g. `/lab/bond-kernel-tests`), waits up to `run` for its
/// libtest summary, and panics unless it says ok, 0 failed and at least `at_least` passed. The
/// box's `test ...` lines are printed.
///
/// # Panics
/// When the box does not boot, the summary does not come, or a test failed or did not run:
/// this is a test step, and the message carries the console transcript.
pub fn run_in_lab_box(program: &str, at_least: u32, run: Duration) {
    let mut lab = Lab::new().unwrap_or_else(|e| panic!("lab: {e}"));
    let spec = BoxSpec::new("kernel", &[Segment::Public])
        .with_config("[system]\nhostname = \"kernel\"\n")
        .with_lab_program(program);
    lab.boot(&[spec], BOOT)
        .unwrap_or_else(|e| panic!("boot: {e}"));
    let b = lab
        .box_named("kernel")
        .unwrap_or_else(|e| panic!("the lab lost its box: {e}"));
    let result = b
        .console
        .wait_for_any_time("test result:", run)
        .unwrap_or_else(|e| panic!("{e}\n{}", b.console.transcript()));
    let transcript = b.console.transcript();
    assert!(
        result.contains("test result: ok.") && result.contains(" 0 failed"),
        "{result}\n{transcript}"
    );
    let passed: u32 = result
        .split("ok. ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        passed >= at_least,
        "not every test ran: {result}\n{transcript}"
    );
    for line in transcript.lines().filter(|line| line.starts_with("test ")) {
        println!("box: {line}");
    }
}
