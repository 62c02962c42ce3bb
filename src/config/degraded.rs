//! The `degraded { }` block: when a DEGRADED outcome that keeps coming back becomes a
//! FAIL, so that transient trouble which never ends is not a silent failure.
//!
//! It must never accept a policy under which a DEGRADED could last for ever.

use std::time::Duration;

use super::error::ConfigError;
use super::hcl_writer::Hcl;
use super::reader::Table;

/// A DEGRADED streak becomes a FAIL at its `fail_after_runs`-th run in a row, or once it
/// has lasted `fail_after`, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DegradedPolicy {
    pub fail_after_runs: u32,
    pub fail_after: Duration,
}

/// Four timer runs: 18 h at one run every 6 h.
const DEFAULT_FAIL_AFTER_RUNS: u32 = 4;
const DEFAULT_FAIL_AFTER: Duration = Duration::from_secs(24 * 3600);

impl Default for DegradedPolicy {
    fn default() -> Self {
        DegradedPolicy { fail_after_runs: DEFAULT_FAIL_AFTER_RUNS, fail_after: DEFAULT_FAIL_AFTER }
    }
}

impl DegradedPolicy {
    pub(super) fn print(&self, w: &mut Hcl) {
        w.open("degraded");
        w.raw("fail_after_runs", self.fail_after_runs);
        w.dur("fail_after", self.fail_after);
        w.close();
    }
}

pub(super) fn parse(t: Option<Table<'_>>) -> Result<DegradedPolicy, ConfigError> {
    let mut p = DegradedPolicy::default();
    let Some(t) = t else { return Ok(p) };
    if let Some(runs) = t.uint("fail_after_runs")? {
        p.fail_after_runs = match u32::try_from(runs) {
            Ok(n @ 1..=10_000) => n,
            _ => return Err(t.err("fail_after_runs", "must be between 1 and 10000 runs")),
        };
    }
    if let Some(d) = t.duration("fail_after")? {
        if d < Duration::from_secs(1) {
            return Err(t.err("fail_after", "must be at least \"1s\"; a DEGRADED that lasts must end up a FAIL"));
        }
        p.fail_after = d;
    }
    t.finish(&[])?;
    Ok(p)
}
