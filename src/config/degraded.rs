//! The `degraded { }` block: when a DEGRADED outcome that keeps coming back becomes a
//! FAIL, so that transient trouble which never ends is not a silent failure.

use std::time::Duration;

use super::ConfigError;
use super::reader::Table;

/// A DEGRADED streak becomes a FAIL at its `fail_after_runs`-th run in a row, or once it
/// has lasted `fail_after`, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DegradedPolicy {
    pub fail_after_runs: u32,
    pub fail_after: Duration,
}

impl Default for DegradedPolicy {
    /// Four timer runs (18 h at one run every 6 h), or a day.
    fn default() -> Self {
        DegradedPolicy { fail_after_runs: 4, fail_after: Duration::from_secs(24 * 3600) }
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
