//! One run of the agent, as `claude-auth-sync run --once` starts it: stderr logging at
//! the config's level, the pid file for the run's length, one [`cycle`], the state kept
//! between runs, the report, the metrics file, and the exit code the outcome means.
//! Without `--once`, [`resident`] keeps the agent running (`resident/`).
//!
//! It must never report anything itself: the outcome goes to [`report`] and nowhere
//! else, so one run makes exactly one report line.

mod resident;
mod stderr;

pub use resident::Reload;

use std::path::Path;
use std::time::SystemTime;

use crate::config::Config;
use crate::exit::ExitCode;
use crate::report::state::Pace;
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
    Ok(conclude(cfg, outcome, Pace::Run).exit_code())
}

/// A cycle's outcome through the state kept between runs (a persistent DEGRADED
/// escalates), then out as the one report line and the metrics file.
fn conclude(cfg: &Config, outcome: report::Outcome, pace: Pace) -> report::Outcome {
    let now = SystemTime::now();
    let (outcome, state) = report::state::record(outcome, &cfg.log.state_file, &cfg.degraded, now, pace);
    report::emit(&outcome, &cfg.log, &cfg.user.name, now);
    report::metrics::write(cfg, &outcome, &state, now);
    outcome
}

/// Runs the resident agent until SIGTERM or SIGINT (exit 0); `reload` reads the config
/// again on SIGHUP. With `exit_after_auth` there is nothing to keep running: one cycle.
pub fn resident(cfg: Config, reload: &Reload<'_>) -> Result<ExitCode, RunError> {
    if cfg.exit_after_auth {
        return once(&cfg);
    }
    stderr::init(cfg.log.level);
    let pid_path = cfg.pid_file.clone();
    let _pid_file = pid_path.as_deref().map(PidFile::write).transpose()?;
    runtime::block_on(resident::run(cfg, reload)).map_err(RunError::Runtime)?.map_err(RunError::Runtime)?;
    Ok(ExitCode::Ok)
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
