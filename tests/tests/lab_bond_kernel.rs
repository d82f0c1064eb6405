//! tandem-southbound's bond kernel tests (firmware/southbound/tests/bond_kernel.rs) against the
//! Debian kernel's bonding driver: the host has no bonding module, so the very test binary is
//! put into the lab image (`/lab/bond-kernel-tests`) and a lab box runs it; every test must pass
//! (in a lab box the binary loads bonding and dummy and fails instead of skipping).

use std::time::Duration;

/// The tests in bond_kernel.rs: one per mode, the failover, the refusals.
const TESTS: u32 = 9;

#[test]
fn the_bond_client_passes_its_kernel_tests_in_a_lab_box() {
    tandem_lab::kernel_tests::run_in_lab_box(
        "/lab/bond-kernel-tests",
        TESTS,
        Duration::from_secs(300),
    );
}
