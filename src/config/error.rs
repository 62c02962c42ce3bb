//! The one error type of config loading: names the file, the block and the key, and
//! says what is wrong and, where it is not obvious, what to do next.
//!
//! It must never quote a value that could be a secret pasted into the wrong key; the
//! problem text describes the value's kind instead.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    /// The block, e.g. `auto_auth.method "approle"`; `None` for the file as a whole.
    pub block: Option<String>,
    /// The key inside the block, e.g. `config.role_id_file_path`.
    pub key: Option<String>,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file.display())?;
        match (&self.block, &self.key) {
            (Some(block), Some(key)) => write!(f, "block {block}, key {key}: ")?,
            (Some(block), None) => write!(f, "block {block}: ")?,
            (None, Some(key)) => write!(f, "top level, key {key}: ")?,
            (None, None) => {}
        }
        f.write_str(&self.problem)
    }
}
