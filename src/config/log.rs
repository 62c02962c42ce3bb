//! The `log { }` block: where the one-line-per-run report goes (a private log file,
//! and journald when present), where the agent keeps its state between runs, and how
//! chatty the agent is on stderr.

use std::path::PathBuf;

use super::ConfigError;
use super::reader::Table;
use crate::os_user::OsUser;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub path: PathBuf,
    /// The state kept between runs (last outcome, DEGRADED streak); beside `path` by default.
    pub state_file: PathBuf,
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
        let dir = user.home.join(".local/state/claude-auth-sync");
        LogConfig {
            path: dir.join("sync.log"),
            state_file: dir.join("state.json"),
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
        log.state_file = path.with_file_name("state.json");
        log.path = path;
    }
    if let Some(state) = t.path("state_file")? {
        log.state_file = state;
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
