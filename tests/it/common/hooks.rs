//! Watching the agent's write path step by step, and stopping it at a step (test
//! builds only; see src/store/hook.rs). Everything here waits for events (a step
//! recorded, a process gone), never for a length of time, so a loaded machine only
//! makes it slower.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Generous: only a bug (an agent stuck elsewhere) ever gets near it.
const STUCK: Duration = Duration::from_secs(120);

/// Where the agent stops on its write path.
#[derive(Clone, Copy, Debug)]
pub enum Pause<'a> {
    /// Nowhere: the steps are only recorded.
    Never,
    /// At this step, until the test kills it.
    UntilKilled(&'a str),
    /// At this step, until [`Steps::resume`].
    UntilResumed(&'a str),
}

/// The agent's step file, and where to stop it.
pub struct Steps {
    pub file: PathBuf,
    resume: PathBuf,
}

impl Steps {
    pub fn new(dir: &Path) -> Steps {
        Steps { file: dir.join("steps"), resume: dir.join("resume.fifo") }
    }

    /// The environment that records the steps and stops the agent as `pause` says.
    pub fn env(&self, pause: Pause) -> Vec<(String, String)> {
        let _ = std::fs::remove_file(&self.file);
        let mut env = vec![("CLAUDE_AUTH_SYNC_TEST_STEP_FILE".to_string(), self.file.display().to_string())];
        if let Pause::UntilKilled(step) | Pause::UntilResumed(step) = pause {
            env.push(("CLAUDE_AUTH_SYNC_TEST_PAUSE_AT".into(), step.into()));
        }
        if let Pause::UntilResumed(_) = pause {
            let _ = std::fs::remove_file(&self.resume);
            let c = std::ffi::CString::new(self.resume.to_str().unwrap()).unwrap();
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", self.resume.display());
            env.push(("CLAUDE_AUTH_SYNC_TEST_RESUME".into(), self.resume.display().to_string()));
        }
        env
    }

    /// Every step recorded so far, in order.
    pub fn reached(&self) -> Vec<String> {
        std::fs::read_to_string(&self.file).unwrap_or_default().lines().map(str::to_string).collect()
    }

    /// Waits until the agent has recorded `step` (true) or is gone without it (false);
    /// `gone` tells whether it has exited.
    pub fn wait_for(&self, step: &str, gone: impl FnMut() -> bool) -> bool {
        self.wait_for_count(|| self.reached().iter().any(|s| s == step), gone)
    }

    /// Waits until `done` (true) or until the agent is gone without it (false).
    pub fn wait_for_count(&self, mut done: impl FnMut() -> bool, mut gone: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + STUCK;
        loop {
            if done() {
                return true;
            }
            if gone() {
                return done();
            }
            assert!(Instant::now() < deadline, "the agent neither got there nor exited: {:?}", self.reached());
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Lets an agent stopped [`Pause::UntilResumed`] go on.
    pub fn resume(&self) {
        // Opening blocks until the agent has opened its end; closing ends its wait.
        drop(std::fs::OpenOptions::new().write(true).open(&self.resume).unwrap());
    }
}
