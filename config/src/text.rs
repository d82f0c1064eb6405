//! The human form of a config: TOML through serde, the canonical text `tandem config show` prints.

use std::string::String;

use crate::blob::MAGIC;
use crate::model::Config;

/// Why a text config was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// The TOML does not parse or does not fit the model.
    #[error("{0}")]
    Parse(String),
    /// The model could not be written as TOML.
    #[error("cannot write the config as TOML: {0}")]
    Write(String),
}

/// Parses a TOML config. Error messages carry the line and column and the field at fault.
pub fn from_toml(text: &str) -> Result<Config, TextError> {
    toml::from_str(text).map_err(|error| TextError::Parse(error.to_string()))
}

/// Writes `config` as canonical TOML.
pub fn to_toml(config: &Config) -> Result<String, TextError> {
    toml::to_string(config).map_err(|error| TextError::Write(error.to_string()))
}

/// Whether `bytes` is a blob (starts with the blob magic) rather than text.
pub fn is_blob(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}
