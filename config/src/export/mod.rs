//! Export of a Tandem config to keepalived.conf or Piranha lvs.cf, for migration back or for
//! comparison. Everything the target format cannot express is listed, never dropped silently.

pub mod keepalived;
pub mod lvs;

use std::fmt;
use std::string::String;
use std::vec::Vec;

/// Something the target format could not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportNote {
    /// Where in the Tandem config (`virtual_server "web"`, `bonds`).
    pub path: String,
    pub message: String,
}

impl fmt::Display for ExportNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The exported text and what it could not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub text: String,
    pub notes: Vec<ExportNote>,
}

#[derive(Debug, Default)]
pub(crate) struct Notes(pub Vec<ExportNote>);

impl Notes {
    pub fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ExportNote {
            path: path.into(),
            message: message.into(),
        });
    }
}

/// Milliseconds as keepalived seconds (`6`, `0.5`, `1.25`).
pub(crate) fn seconds(ms: u32) -> String {
    let whole = ms / 1000;
    let fraction = ms % 1000;
    if fraction == 0 {
        return format!("{whole}");
    }
    let text = format!("{whole}.{fraction:03}");
    String::from(text.trim_end_matches('0'))
}
