//! The `resident { }` block: how `claude-auth-sync run` (without `--once`) paces itself:
//! a full cycle every `interval` (with up to a tenth of it as jitter), a file change
//! acted on `debounce` after its last event, and at most one probe of a changed login
//! per `probe_min_interval` (probes cost inference). The timer mode ignores the block.
//!
//! It must never accept a pace that turns the resident agent into a polling loop.

use std::time::Duration;

use super::error::ConfigError;
use super::hcl_writer::Hcl;
use super::reader::Table;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResidentConfig {
    /// Between two full cycles (the timer's pace).
    pub interval: Duration,
    /// The least time between two probes of a changed login.
    pub probe_min_interval: Duration,
    /// How long a file must be quiet after an event before it is looked at.
    pub debounce: Duration,
}

/// The timer's pace.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(6 * 3600);
const DEFAULT_PROBE_MIN_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Claude Code writes a temp file and renames it: one burst of events, well within this.
const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(250);

impl Default for ResidentConfig {
    fn default() -> Self {
        ResidentConfig {
            interval: DEFAULT_INTERVAL,
            probe_min_interval: DEFAULT_PROBE_MIN_INTERVAL,
            debounce: DEFAULT_DEBOUNCE,
        }
    }
}

impl ResidentConfig {
    pub(super) fn print(&self, w: &mut Hcl) {
        w.open("resident");
        w.dur("interval", self.interval);
        w.dur("probe_min_interval", self.probe_min_interval);
        w.dur("debounce", self.debounce);
        w.close();
    }
}

pub(super) fn parse(t: Option<Table<'_>>) -> Result<ResidentConfig, ConfigError> {
    let mut r = ResidentConfig::default();
    let Some(t) = t else { return Ok(r) };
    if let Some(d) = t.duration("interval")? {
        if d < Duration::from_secs(60) {
            return Err(t.err("interval", "must be at least \"1m\"; file changes are acted on at once anyway"));
        }
        r.interval = d;
    }
    if let Some(d) = t.duration("probe_min_interval")? {
        if d > r.interval {
            return Err(t.err("probe_min_interval", "must not be longer than interval"));
        }
        r.probe_min_interval = d;
    }
    if let Some(d) = t.duration("debounce")? {
        if d < Duration::from_millis(10) || d > Duration::from_secs(60) {
            return Err(t.err("debounce", "must be between \"10ms\" and \"60s\""));
        }
        r.debounce = d;
    }
    t.finish(&[])?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{Config, ConfigError, parse};
    use super::ResidentConfig;
    use crate::os_user::OsUser;

    const AUTH: &str = "auto_auth {\n  method \"token_file\" {\n    config = { token_file_path = \"~/t\" }\n  }\n}\n";

    fn load(resident: &str) -> Result<Config, ConfigError> {
        let alice = OsUser { name: "alice".into(), uid: 1000, gid: 1000, home: "/home/alice".into() };
        let text = format!("vault {{ address = \"https://vault.example.com\" }}\n{AUTH}{resident}");
        parse(&text, Path::new("/etc/test.hcl"), &alice, &|_| None)
    }

    #[test]
    fn defaults_print_back_and_bad_paces_are_refused() {
        let c = load("").unwrap();
        assert_eq!(c.resident, ResidentConfig::default());
        let printed = c.to_hcl();
        assert!(printed.contains("probe_min_interval"), "{printed}");
        let set =
            load("resident {\n  interval = \"1h\"\n  probe_min_interval = \"0s\"\n  debounce = \"50ms\"\n}\n").unwrap();
        assert_eq!(set.resident.interval.as_secs(), 3600);
        assert_eq!(set.resident.probe_min_interval.as_secs(), 0);
        assert_eq!(set.resident.debounce.as_millis(), 50);
        for (bad, key) in [
            ("interval = \"5s\"", "interval"),
            ("probe_min_interval = \"7h\"", "probe_min_interval"),
            ("debounce = \"0s\"", "debounce"),
            ("every = \"1h\"", "every"),
        ] {
            let e = load(&format!("resident {{\n  {bad}\n}}\n")).unwrap_err();
            assert_eq!((e.block.as_deref(), e.key.as_deref()), (Some("resident"), Some(key)), "{e}");
        }
    }
}
