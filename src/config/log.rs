//! The `log { }` block: where the one-line-per-run report goes (a private log file,
//! and journald when present) and how chatty the agent is on stderr.

use std::path::PathBuf;

use super::ConfigError;
use super::reader::Table;
use crate::os_user::OsUser;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub path: PathBuf,
    pub journald: Journald,
    /// journald's native socket; moved only for tests and unusual containers.
    pub journald_socket: PathBuf,
    pub level: tracing::Level,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journald {
    /// Use the journal when its socket exists, stderr otherwise.
    Auto,
    On,
    Off,
}

impl LogConfig {
    pub fn default_for(user: &OsUser) -> Self {
        LogConfig {
            path: user.home.join(".local/state/claude-auth-sync/sync.log"),
            journald: Journald::Auto,
            journald_socket: PathBuf::from("/run/systemd/journal/socket"),
            level: tracing::Level::INFO,
        }
    }
}

pub(super) fn parse(t: Option<Table<'_>>, user: &OsUser) -> Result<LogConfig, ConfigError> {
    let mut log = LogConfig::default_for(user);
    let Some(t) = t else { return Ok(log) };
    if let Some(path) = t.path("path")? {
        log.path = path;
    }
    if let Some(j) = t.string_or_bool("journald")? {
        log.journald = match j.as_str() {
            "auto" => Journald::Auto,
            "true" | "on" => Journald::On,
            "false" | "off" => Journald::Off,
            _ => return Err(t.err("journald", "must be \"auto\", true or false")),
        };
    }
    if let Some(socket) = t.path("journald_socket")? {
        log.journald_socket = socket;
    }
    if let Some(level) = t.string("level")? {
        log.level = match level.as_str() {
            "error" => tracing::Level::ERROR,
            "warn" => tracing::Level::WARN,
            "info" => tracing::Level::INFO,
            "debug" => tracing::Level::DEBUG,
            _ => return Err(t.err("level", "must be one of: error, warn, info, debug")),
        };
    }
    t.finish(&[])?;
    Ok(log)
}
