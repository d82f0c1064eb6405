//! `load_path`: read a config file (TOML text or blob) and validate it, for `tandem run -c FILE`.

use std::path::{Path, PathBuf};
use std::string::String;
use std::vec::Vec;

use crate::blob::{self, BlobError, MacPolicy};
use crate::model::Config;
use crate::text::{self, TextError};
use crate::validate::{self, Issue, Severity};

/// A validation warning: the config runs, but the operator should look.
pub type Warning = Issue;

/// Why a config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not UTF-8 text nor a config blob")]
    NotText { path: PathBuf },
    #[error("config file {path}: {source}")]
    Text { path: PathBuf, source: TextError },
    #[error("config blob {path}: {source}")]
    Blob { path: PathBuf, source: BlobError },
    #[error("config file {path} has {} error(s):\n{}", .errors.len(), render(.errors))]
    Invalid { path: PathBuf, errors: Vec<Issue> },
}

fn render(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(|i| std::format!("  {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses file contents (blob by magic, else TOML) without validating.
pub(crate) fn parse_bytes(path: &Path, bytes: &[u8]) -> Result<(Config, Vec<Warning>), LoadError> {
    let mut warnings = Vec::new();
    if text::is_blob(bytes) {
        let decoded =
            blob::decode(bytes, MacPolicy::Inspect, None).map_err(|source| LoadError::Blob {
                path: path.into(),
                source,
            })?;
        if decoded.header.is_keyed() {
            warnings.push(Issue {
                severity: Severity::Warning,
                path: String::from("blob"),
                message: String::from("the blob is signed but its MAC was not verified (no pairing key on this command line)"),
            });
        }
        return Ok((decoded.config, warnings));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| LoadError::NotText { path: path.into() })?;
    let config = text::from_toml(text).map_err(|source| LoadError::Text {
        path: path.into(),
        source,
    })?;
    Ok((config, warnings))
}

/// Reads `path` (TOML text or blob, told apart by the blob magic), validates it, and returns the
/// config with its warnings. Any validation error refuses the file.
pub fn load_path(path: impl AsRef<Path>) -> Result<(Config, Vec<Warning>), LoadError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.into(),
        source,
    })?;
    let (config, mut warnings) = parse_bytes(path, &bytes)?;
    let issues = validate::validate(&config);
    let (errors, rest): (Vec<Issue>, Vec<Issue>) = issues
        .into_iter()
        .partition(|i| i.severity == Severity::Error);
    if !errors.is_empty() {
        return Err(LoadError::Invalid {
            path: path.into(),
            errors,
        });
    }
    warnings.extend(rest);
    Ok((config, warnings))
}
