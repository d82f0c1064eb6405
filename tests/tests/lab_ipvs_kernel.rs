//! tandem-ipvs's kernel tests (firmware/ipvs/tests/kernel.rs) against the Debian kernel's IPVS:
//! the host has no IPVS, so the very test binary is put into the lab image
//! (`/lab/ipvs-kernel-tests`) and a lab box runs it; every test must pass (in a lab box the binary fails
//! instead of skipping when IPVS is unusable).

use std::time::Duration;

#[test]
fn the_ipvs_client_passes_its_kernel_tests_in_a_lab_box() {
    // At least one: the binary refuses to skip when it sees the lab hook on the kernel command line.
    tandem_lab::kernel_tests::run_in_lab_box("/lab/ipvs-kernel-tests", 1, Duration::from_secs(180));
}
