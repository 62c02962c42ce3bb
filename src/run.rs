//! One run of the agent, as `claude-auth-sync run --once` starts it: stderr logging at
//! the config's level, the pid file for the run's length, one [`cycle`], the state kept
//! between runs, the report, the metrics file, and the exit code the outcome means.
//!
//! It must never report anything itself: the outcome goes to [`report`] and nowhere
//! else, so one run makes exactly one report line.

mod stderr;

use std::path::Path;
use std::time::SystemTime;

use crate::config::Config;
use crate::exit::ExitCode;
use crate::store::atomic::{self, WriteError};
use crate::{cycle, report, runtime};

/// Why a run could not even start; the cycle's own trouble is an outcome, not this.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot write pid_file")]
    PidFile(#[source] WriteError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
}

/// Runs one cycle and reports it; the exit code is the outcome's.
pub fn once(cfg: &Config) -> Result<ExitCode, RunError> {
    stderr::init(cfg.log.level);
    let _pid_file = cfg.pid_file.as_deref().map(PidFile::write).transpose()?;
    let outcome =
        runtime::block_on(cycle::run_once(cfg, &|var| std::env::var_os(var).is_some())).map_err(RunError::Runtime)?;
    let now = SystemTime::now();
    let outcome = report::state::record(outcome, &cfg.log.state_file, &cfg.degraded, now);
    report::emit(&outcome, &cfg.log, &cfg.user.name, now);
    report::metrics::write(cfg, &outcome, now);
    Ok(outcome.exit_code())
}

/// This process's id in `pid_file` (Vault Agent's), removed when the run ends.
struct PidFile<'a>(&'a Path);

impl<'a> PidFile<'a> {
    fn write(path: &'a Path) -> Result<Self, RunError> {
        atomic::replace(path, format!("{}\n", std::process::id()).as_bytes(), 0o644).map_err(RunError::PidFile)?;
        Ok(PidFile(path))
    }
}

impl Drop for PidFile<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}
