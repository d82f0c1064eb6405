//! tandem-ipvs's kernel tests (firmware/ipvs/tests/kernel.rs) against the Debian kernel's IPVS:
//! the host has no IPVS, so the very test binary is put into the lab image
//! (`/lab/ipvs-kernel-tests`) and a lab box runs it; every test must pass (in a lab box the binary fails
//! instead of skipping when IPVS is unusable).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::time::Duration;

use tandem_lab::{BoxSpec, Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);
const RUN: Duration = Duration::from_secs(180);

#[test]
fn the_ipvs_client_passes_its_kernel_tests_in_a_lab_box() {
    let mut lab = Lab::new().unwrap();
    let spec = BoxSpec::new("ipvs", &[Segment::Public])
        .with_config("[system]\nhostname = \"ipvs\"\n")
        .with_lab_program("/lab/ipvs-kernel-tests");
    lab.boot(&[spec], BOOT).unwrap();
    let b = lab.box_named("ipvs").unwrap();
    let result = b
        .console
        .wait_for_any_time("test result:", RUN)
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
    // The binary refuses to skip when it sees the lab hook on the kernel command line.
    assert!(passed >= 1, "no test ran: {result}");
}
