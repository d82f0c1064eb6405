//! Builds the Tandem appliance image for a board: the Debian kernel plus an initramfs holding
//! `/init` (the static `tandem` binary), the board's kernel modules and the board data. Nothing
//! else: no shell, no busybox, no libraries. With `--disk`, also the flashable GPT disk image
//! (`disk`): systemd-boot and the firmware as a unified kernel image (`uki`) in slot a, and the
//! same image as a signed firmware bundle (`sign`) that a running box installs.
//!
//! The output is reproducible: members are sorted, every header field is fixed, and gzip's
//! timestamp is zero, so the same kernel, binary and board give the same bytes; the disk image's
//! GUIDs, FAT volume id and time stamps are fixed too (`SOURCE_DATE_EPOCH`).

pub mod build;
pub mod cpio;
pub mod disk;
pub mod kernel;
pub mod sign;
pub mod uki;

pub use build::{
    build_disk_image, build_disk_image_signed, build_image, build_image_with, BuildError,
    BundleReport, DiskInputs, DiskReport, ExtraFile, ImageReport, ImageRequest,
};
