//! Builds the Tandem appliance image for a board: the Debian kernel plus an initramfs holding
//! `/init` (the static `tandem` binary), the board's kernel modules and the board data. Nothing
//! else: no shell, no busybox, no libraries.
//!
//! The output is reproducible: members are sorted, every header field is fixed, and gzip's
//! timestamp is zero, so the same kernel, binary and board give the same bytes.

pub mod build;
pub mod cpio;
pub mod kernel;

pub use build::{build_image, build_image_with, BuildError, ExtraFile, ImageReport, ImageRequest};
