//! The `log { }` block: where the one-line-per-run report goes (a private log file,
//! and journald when present), where the agent keeps its state between runs, and how
//! chatty the agent is on stderr. Its keywords (`journald`, `level`), defaults and
//! printing live here.
//!
//! It must never default the log or the state file to a place outside the user's home:
//! both are private.

use std::path::PathBuf;

use super::error::ConfigError;
use super::hcl_writer::Hcl;
use super::keyword::Keywords;
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

pub(super) const JOURNALD: Keywords<Journald> = Keywords::either(&[
    ("auto", Journald::Auto),
    ("true", Journald::On),
    ("false", Journald::Off),
    ("on", Journald::On),
    ("off", Journald::Off),
]);

pub(super) const LEVELS: Keywords<tracing::Level> = Keywords::one_of(&[
    ("error", tracing::Level::ERROR),
    ("warn", tracing::Level::WARN),
    ("info", tracing::Level::INFO),
    ("debug", tracing::Level::DEBUG),
]);

/// Under the home, as the XDG base directory spec puts state.
const DEFAULT_DIR: &str = ".local/state/claude-auth-sync";
const DEFAULT_LOG_FILE: &str = "sync.log";
/// The state file's name, beside the log wherever the log goes.
const STATE_FILE: &str = "state.json";
const DEFAULT_JOURNALD: Journald = Journald::Auto;
const DEFAULT_JOURNALD_SOCKET: &str = "/run/systemd/journal/socket";
const DEFAULT_LEVEL: tracing::Level = tracing::Level::INFO;

impl LogConfig {
    pub fn default_for(user: &OsUser) -> Self {
        let dir = user.home.join(DEFAULT_DIR);
        LogConfig {
            path: dir.join(DEFAULT_LOG_FILE),
            state_file: dir.join(STATE_FILE),
            journald: DEFAULT_JOURNALD,
            journald_socket: PathBuf::from(DEFAULT_JOURNALD_SOCKET),
            level: DEFAULT_LEVEL,
        }
    }

    pub(super) fn print(&self, w: &mut Hcl) {
        w.open("log");
        w.path("path", &self.path);
        w.path("state_file", &self.state_file);
        w.keyword("journald", JOURNALD.word(self.journald));
        w.path("journald_socket", &self.journald_socket);
        w.keyword("level", LEVELS.word(self.level));
        w.close();
    }
}

pub(super) fn parse(t: Option<Table<'_>>, user: &OsUser) -> Result<LogConfig, ConfigError> {
    let mut log = LogConfig::default_for(user);
    let Some(t) = t else { return Ok(log) };
    if let Some(path) = t.path("path")? {
        log.state_file = path.with_file_name(STATE_FILE);
        log.path = path;
    }
    if let Some(state) = t.path("state_file")? {
        log.state_file = state;
    }
    if let Some(journald) = t.keyword("journald", &JOURNALD)? {
        log.journald = journald;
    }
    if let Some(socket) = t.path("journald_socket")? {
        log.journald_socket = socket;
    }
    if let Some(level) = t.keyword("level", &LEVELS)? {
        log.level = level;
    }
    t.finish(&[])?;
    Ok(log)
}
