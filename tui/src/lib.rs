//! The console UI: set up and run the pair from a serial console (VT100, 80 x 24, 115200 baud).
//!
//! Everything here is pure and sans-IO, so every keystroke and every frame is testable:
//! - [`keys`]: bytes from the terminal -> [`keys::Key`]s (split sequences, ESC timeout, noise);
//! - [`serial`]: a ratatui `Backend` that writes VT100 bytes to an `embedded_io::Write`,
//!   only the changed cells, in ASCII, UTF-8 or DEC line drawing;
//! - [`app`]: the screens' state and what a key does to it; requests to the daemon leave as
//!   command words and come back as answer text (the console's command language);
//! - [`render`]: draws an [`app::App`] into a ratatui frame.
//!
//! The daemon owns the IO: PID 1 on the board's serial tty, `tandem tui` on any terminal.

#![no_std]
extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod app;
pub mod glyphs;
pub mod keys;
pub mod login;
pub mod render;
pub mod serial;

/// The ratatui core the UI is drawn with (its `Terminal`, `Size`), for drivers.
pub use ratatui_core;
