//! Named steps of the write path where a test can watch the agent and stop it there
//! (tests/crash.rs, the lock tests). Only in test builds (feature `test-hooks`, a
//! self dev-dependency); a release build compiles every call to nothing.
//!
//! - `$CLAUDE_AUTH_SYNC_TEST_STEP_FILE`: each step reached is appended as one line.
//! - `$CLAUDE_AUTH_SYNC_TEST_PAUSE_AT`: at the first step of that name the agent
//!   stops, after recording it, until `$CLAUDE_AUTH_SYNC_TEST_RESUME` (a FIFO) has
//!   been opened for writing and closed again; without a FIFO it stays stopped until
//!   it is killed. Other threads (the lock keeper) go on meanwhile.
//!
//! It must never do anything in a build without the feature.

#[cfg(feature = "test-hooks")]
pub(crate) fn step(name: &str) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    static PAUSED: AtomicBool = AtomicBool::new(false);

    if let Some(file) = std::env::var_os("CLAUDE_AUTH_SYNC_TEST_STEP_FILE") {
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .and_then(|mut f| f.write_all(format!("{name}\n").as_bytes()));
    }
    if std::env::var("CLAUDE_AUTH_SYNC_TEST_PAUSE_AT").is_ok_and(|at| at == name)
        && !PAUSED.swap(true, Ordering::SeqCst)
    {
        match std::env::var_os("CLAUDE_AUTH_SYNC_TEST_RESUME") {
            // Opening blocks until the test opens the other end; reading, until it closes it.
            Some(fifo) => {
                let _ = std::fs::File::open(fifo).and_then(|mut f| f.read_to_end(&mut Vec::new()));
            }
            None => loop {
                std::thread::park();
            },
        }
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub(crate) fn step(_name: &str) {}
