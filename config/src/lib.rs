//! Tandem's configuration: the model, its compact signed blob with commit history, power-safe
//! storage, validation, the human TOML form, import/export of keepalived.conf and Piranha lvs.cf,
//! and the pure layer of live config: path edits, compare and impact preview.
//!
//! Without the `std` feature the crate is `no_std` + `alloc` (model, blob, history, storage,
//! validation, impact preview); `std` adds text, edits, compare, import/export, file devices and
//! the `tandem config` CLI.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod blob;
pub mod bounded;
pub mod crc32;
pub mod delta;
pub mod entry_kind;
pub mod history;
pub mod identity;
pub mod impact;
// Used by `transaction` (std); the no_std build carries it unused.
#[cfg_attr(not(feature = "std"), allow(dead_code))]
mod incremental;
pub mod model;
pub mod net;
pub mod storage;
pub mod validate;

#[cfg(feature = "std")]
pub mod cli;
#[cfg(feature = "std")]
pub mod compare;
#[cfg(feature = "std")]
pub mod edit;
#[cfg(feature = "migrate")]
pub mod export;
#[cfg(feature = "migrate")]
pub mod import;
#[cfg(feature = "std")]
mod load;
#[cfg(feature = "std")]
pub mod text;
#[cfg(feature = "std")]
pub mod transaction;
#[cfg(feature = "std")]
mod tree;

pub use blob::{BlobError, BlobHeader, DecodedBlob, MacKey, MacPolicy};
pub use bounded::BoundedVec;
pub use history::{config_digest, CommitOrigin, CommitRecord, History};
pub use impact::{preview, Preview};
pub use model::Config;
pub use validate::{validate, Issue, Severity};

#[cfg(feature = "std")]
pub use compare::compare;
#[cfg(feature = "std")]
pub use edit::{delete, set, EditError};
#[cfg(feature = "std")]
pub use load::{load_path, LoadError, Warning};
