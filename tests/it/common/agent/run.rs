//! Runs of the agent binary: a clean environment (no VAULT_*, BAO_* or CLAUDE_* from
//! the caller), every output leak-checked, and the report line parsed ([`Report`]).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::report::Report;
use crate::common::secrets::assert_no_leaks;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// The report line when it went to a log file rather than stderr.
    pub logged: Option<String>,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Asserts the exit code and the report line's `status` and `reason` (`None`: no reason).
    pub fn assert_outcome(&self, code: i32, status: &str, reason: Option<&str>) {
        let report = self.report();
        assert_eq!(self.code, code, "exit code; stderr:\n{}", self.stderr);
        assert_eq!(report.status(), status, "status: {report}");
        assert_eq!(report.reason(), reason, "reason: {report}");
    }

    /// The report line, parsed.
    pub fn report(&self) -> Report {
        Report::of(self.line())
    }

    /// The report line as written: the logged one, else the last `ts=` line of stderr.
    pub fn line(&self) -> &str {
        if let Some(l) = &self.logged {
            return l;
        }
        self.stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("ts="))
            .unwrap_or_else(|| panic!("no report line (exit code {}) in:\n{}", self.code, self.stderr))
    }
}

/// Runs the agent binary with a clean environment (no VAULT_*/BAO_*/CLAUDE_* from the
/// caller) plus `env`, and leak-checks stdout and stderr.
pub fn agent(args: &[&str], env: &[(&str, &str)]) -> Run {
    agent_env(args, env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

/// [`agent`] with owned environment pairs.
pub fn agent_env(args: &[&str], env: impl IntoIterator<Item = (String, String)>) -> Run {
    agent_start(Command::new(env!("CARGO_BIN_EXE_claude-auth-sync")), args, env).finish()
}

/// The agent started, for a test that watches it meanwhile (see `hooks`).
pub fn agent_start(mut cmd: Command, args: &[&str], env: impl IntoIterator<Item = (String, String)>) -> Running {
    cmd.args(args).env_clear();
    for key in ["PATH", "HOME", "LANG", "TMPDIR"] {
        if let Ok(v) = std::env::var(key) {
            cmd.env(key, v);
        }
    }
    cmd.envs(env).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let child = cmd.spawn().expect("run claude-auth-sync");
    Running { child: Some(child), what: args.join(" "), start }
}

/// Owned environment pairs as [`agent`] and `Agent::run_with` take them.
pub fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// A running agent; killed when dropped unfinished, so that a failed test never waits
/// for an agent it stopped.
pub struct Running {
    child: Option<std::process::Child>,
    what: String,
    start: Instant,
}

impl Running {
    /// Whether the agent has exited.
    pub fn exited(&mut self) -> bool {
        self.child.as_mut().is_none_or(|c| c.try_wait().unwrap().is_some())
    }

    /// Waits for the agent and leak-checks stdout and stderr.
    pub fn finish(mut self) -> Run {
        let out = self.child.take().unwrap().wait_with_output().expect("run claude-auth-sync");
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: self.start.elapsed(),
            logged: None,
        };
        assert_no_leaks(&format!("output of claude-auth-sync {}", self.what), &run.all());
        run
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
