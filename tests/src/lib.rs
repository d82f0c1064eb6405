//! The lab: real Tandem boxes under qemu on real bridges, for tests and `make run`.
//!
//! A [`Lab`] owns one network namespace holding a bridge per [`Segment`]; each [`QemuBox`] is a
//! qemu process in that namespace with one virtio-net NIC per segment it joins (in the PCI slot
//! the `qemu-lab` board profile expects), its serial console on a unix socket ([`Console`]) and
//! a QMP socket ([`Qmp`]) to pull cables and kill it. Client namespaces hang off a segment
//! through a veth pair. Every name carries the lab id (`tlab-<pid>-<n>`), so labs run side by
//! side, and dropping the lab (also while a test panics) kills its boxes and deletes its
//! namespaces. Labs left behind by a killed test process are swept when the next lab starts.

pub mod address_monitor;
pub mod cable_pair;
pub mod console;
pub mod figures;
pub mod file_server;
pub mod host;
pub mod kernel_tests;
pub mod lab;
pub mod lab_pair;
pub mod netns;
pub mod pair_lan;
pub mod pinger;
pub mod qmp;
pub mod scrape;
pub mod screen;
pub mod servers;
pub mod shell;
pub mod syslog_receiver;
pub mod uefi;
pub mod vrrp_status;

pub use console::Console;
pub use lab::{BoxSpec, ClientNs, ImageKind, Lab, LabError, QemuBox, Segment};
pub use qmp::Qmp;

use std::path::PathBuf;

/// The workspace root (this crate lives in `tests/`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The image directory for a board, as `make image` leaves it.
pub fn image_dir(board: &str) -> PathBuf {
    workspace_root().join("target/image").join(board)
}

/// The bench image directory for a board (`make bench-image`): the lab image plus `ipvsadm`.
pub fn bench_image_dir(board: &str) -> PathBuf {
    workspace_root()
        .join("target/image")
        .join(format!("{board}-bench"))
}

/// The lab image directory for a board (`make lab-image`): the image plus lab-only programs.
pub fn lab_image_dir(board: &str) -> PathBuf {
    workspace_root()
        .join("target/image")
        .join(format!("{board}-lab"))
}
