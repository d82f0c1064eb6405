//! Tandem's configuration: the model, its compact signed blob, power-safe storage, validation,
//! the human TOML form, and import/export of keepalived.conf and Piranha lvs.cf.
//!
//! Without the `std` feature the crate is `no_std` + `alloc` (model, blob, storage, validation);
//! `std` adds text, import/export, file devices and the `tandem config` CLI.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod blob;
pub mod bounded;
pub mod crc32;
pub mod model;
pub mod net;
pub mod storage;
pub mod validate;

#[cfg(feature = "std")]
pub mod cli;
#[cfg(feature = "std")]
pub mod export;
#[cfg(feature = "std")]
pub mod import;
#[cfg(feature = "std")]
mod load;
#[cfg(feature = "std")]
pub mod text;

pub use blob::{BlobError, BlobHeader, DecodedBlob, MacKey, MacPolicy};
pub use bounded::BoundedVec;
pub use model::Config;
pub use validate::{validate, Issue, Severity};

#[cfg(feature = "std")]
pub use load::{load_path, LoadError, Warning};
