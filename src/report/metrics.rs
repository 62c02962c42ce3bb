//! The metrics file for node_exporter's textfile collector (`telemetry { textfile }`),
//! replaced atomically (0644, never through a symlink) after every run, in the
//! Prometheus text exposition format: when the last run and the last OK run ended, the
//! status (one series per status, 1 for the current one) and the last reason, each
//! JSON template's access-token and login expiry, whether a person must log in again,
//! the Vault token's time to live, and the runs, probes and Vault requests counters
//! (totals kept in the state file, so they only grow). Every series carries `user`;
//! the expiries also `template` (the file).
//!
//! It must never put a token into the file (times, words and counts only), and a file
//! that cannot be written is warned about: it never changes the run's outcome.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use super::state::{State, Totals};
use super::{Outcome, Reason, Status};
use crate::config::{Config, TemplateKind};
use crate::status::local;
use crate::store::atomic;

/// What the file says after one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot<'a> {
    pub user: &'a str,
    pub outcome: &'a Outcome,
    /// Epoch seconds.
    pub last_run: u64,
    pub last_success: Option<u64>,
    pub totals: Totals,
    /// Each JSON template's file and its expiries (epoch ms).
    pub logins: Vec<Login>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub template: String,
    pub expires_at_ms: Option<u64>,
    pub refresh_expires_at_ms: Option<u64>,
}

fn epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Writes the metrics file for the run that ended in `outcome` at `now`, when the
/// config asks for one; called once the outcome is recorded ([`state::record`]).
pub fn write(cfg: &Config, outcome: &Outcome, kept: &State, now: SystemTime) {
    let Some(path) = &cfg.telemetry.textfile else { return };
    // The state as this run recorded it: its last success is this run's when it was OK.
    let last_success = kept.last_ok_at.as_deref().and_then(|t| humantime::parse_rfc3339(t).ok()).map(epoch);
    let logins = cfg
        .templates
        .iter()
        .filter(|t| matches!(t.kind, TemplateKind::Json(_)))
        .map(|t| {
            let file = local::inspect(t);
            let facts = file.facts();
            Login {
                template: t.destination.display().to_string(),
                // 0 is what the CLI leaves in a login it blanked: no expiry at all.
                expires_at_ms: facts.and_then(|f| f.expires_at_ms).filter(|ms| *ms > 0),
                refresh_expires_at_ms: facts.and_then(|f| f.refresh_expires_at_ms),
            }
        })
        .collect();
    let snap =
        Snapshot { user: &cfg.user.name, outcome, last_run: epoch(now), last_success, totals: kept.totals, logins };
    if let Err(e) = atomic::replace(path, render(&snap).as_bytes(), 0o644) {
        tracing::warn!("{e}; no metrics for this run (its outcome stands)");
    }
}

/// The exposition text.
pub fn render(s: &Snapshot<'_>) -> String {
    let mut out = String::new();
    let user = format!("user=\"{}\"", escape(s.user));
    let mut metric = |name: &str, kind: &str, help: &str, series: &[(String, u64)]| {
        if series.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP claude_auth_sync_{name} {help}");
        let _ = writeln!(out, "# TYPE claude_auth_sync_{name} {kind}");
        for (labels, value) in series {
            let _ = writeln!(out, "claude_auth_sync_{name}{{{user}{labels}}} {value}");
        }
    };
    let one = |v: u64| vec![(String::new(), v)];
    metric("last_run_timestamp_seconds", "gauge", "When the last run ended (Unix time).", &one(s.last_run));
    metric(
        "last_success_timestamp_seconds",
        "gauge",
        "When the last OK run ended (Unix time); absent before the first.",
        &s.last_success.map(one).unwrap_or_default(),
    );
    let statuses: Vec<(String, u64)> = [Status::Ok, Status::Degraded, Status::Fail]
        .into_iter()
        .map(|st| (format!(",status=\"{}\"", st.as_str()), u64::from(st == s.outcome.status)))
        .collect();
    metric("status", "gauge", "The last run's status: 1 for the current one, 0 for the others.", &statuses);
    let info = format!(
        ",status=\"{}\",reason=\"{}\",action=\"{}\"",
        s.outcome.status.as_str(),
        s.outcome.reason.map_or("none", Reason::as_str),
        s.outcome.action.map_or("none", super::Action::as_str)
    );
    metric("last_run_info", "gauge", "The last run's status, reason and action, as labels.", &[(info, 1)]);
    let relogin = u64::from(s.outcome.reason == Some(Reason::LoginRequired));
    metric("relogin_required", "gauge", "1 when a person must log in to Claude Code again.", &one(relogin));
    let expiry = |pick: fn(&Login) -> Option<u64>| -> Vec<(String, u64)> {
        s.logins
            .iter()
            .filter_map(|l| pick(l).map(|ms| (format!(",template=\"{}\"", escape(&l.template)), ms / 1000)))
            .collect()
    };
    metric(
        "access_token_expiry_timestamp_seconds",
        "gauge",
        "When the local access token expires (Unix time); Claude Code refreshes it itself.",
        &expiry(|l| l.expires_at_ms),
    );
    metric(
        "refresh_token_expiry_timestamp_seconds",
        "gauge",
        "When the login itself ends (refreshTokenExpiresAt, Unix time): then a person logs in again.",
        &expiry(|l| l.refresh_expires_at_ms),
    );
    metric(
        "vault_token_ttl_seconds",
        "gauge",
        "The Vault token's time to live after the last run's renewal; absent when the run could not authenticate.",
        &s.outcome.token_ttl.map(|t| one(t.as_secs())).unwrap_or_default(),
    );
    metric("runs_total", "counter", "Runs recorded.", &one(s.totals.runs));
    metric("probes_total", "counter", "Inference calls made to prove a login.", &one(s.totals.probes));
    metric(
        "vault_requests_total",
        "counter",
        "HTTP requests sent to Vault, retries included.",
        &one(s.totals.vault_requests),
    );
    out
}

/// A label value as the exposition format writes it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::report::Action;

    #[test]
    fn the_exposition_has_one_series_per_status_and_labels_every_series() {
        let mut ok = Outcome::ok(Action::Verified);
        ok.token_ttl = Some(Duration::from_secs(3600));
        let snap = Snapshot {
            user: "alice",
            outcome: &ok,
            last_run: 1_800_000_000,
            last_success: Some(1_800_000_000),
            totals: Totals { runs: 7, probes: 6, vault_requests: 20 },
            logins: vec![Login {
                template: "/home/alice/.claude/.credentials.json".into(),
                expires_at_ms: Some(1_800_028_800_123),
                refresh_expires_at_ms: None,
            }],
        };
        let text = render(&snap);
        for line in [
            "# TYPE claude_auth_sync_status gauge",
            "claude_auth_sync_status{user=\"alice\",status=\"OK\"} 1",
            "claude_auth_sync_status{user=\"alice\",status=\"DEGRADED\"} 0",
            "claude_auth_sync_status{user=\"alice\",status=\"FAIL\"} 0",
            "claude_auth_sync_last_run_info{user=\"alice\",status=\"OK\",reason=\"none\",action=\"verified\"} 1",
            "claude_auth_sync_last_success_timestamp_seconds{user=\"alice\"} 1800000000",
            "claude_auth_sync_access_token_expiry_timestamp_seconds{user=\"alice\",template=\"/home/alice/.claude/.credentials.json\"} 1800028800",
            "claude_auth_sync_relogin_required{user=\"alice\"} 0",
            "claude_auth_sync_vault_token_ttl_seconds{user=\"alice\"} 3600",
            "# TYPE claude_auth_sync_vault_requests_total counter",
            "claude_auth_sync_vault_requests_total{user=\"alice\"} 20",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in:\n{text}");
        }
        assert!(!text.contains("refresh_token_expiry"), "no hard end, no series (and no HELP for none):\n{text}");
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(l.starts_with("claude_auth_sync_") && l.contains("{user=\"alice\""), "{l}");
        }

        let fail = Outcome::fail(Reason::LoginRequired, "log in");
        let text = render(&Snapshot { outcome: &fail, last_success: None, logins: vec![], ..snap.clone() });
        assert!(text.contains("claude_auth_sync_status{user=\"alice\",status=\"FAIL\"} 1\n"), "{text}");
        assert!(text.contains("claude_auth_sync_relogin_required{user=\"alice\"} 1\n"), "{text}");
        assert!(!text.contains("last_success") && !text.contains("vault_token_ttl"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("a\nb"), "a\\nb");
    }
}
