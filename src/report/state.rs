//! The agent's state between runs: `state.json` beside the private log (file 0600,
//! replaced atomically, never through a symlink). It holds the last outcome and the
//! current DEGRADED streak, so that a DEGRADED that never ends becomes a FAIL rather
//! than a silent failure, and so that a later `claude-auth-sync status` can show the
//! last run without running one.
//!
//! It also keeps the totals the metrics' counters export (runs, probes, Vault
//! requests), so that they grow across runs.
//!
//! It must never hold a secret: statuses, reasons, actions, times and counts only. A
//! state file that cannot be read or written is warned about; it never changes what
//! the run itself found.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::counters::{self, Spent};
use super::{Outcome, Reason, Status};
use crate::config::DegradedPolicy;
use crate::store::atomic;

/// What `state.json` holds. Times are RFC 3339, UTC, to the second.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The outcome of the last run, as reported (after escalation).
    pub last: Option<LastRun>,
    /// When the last `OK` run ended.
    pub last_ok_at: Option<String>,
    /// The DEGRADED runs in a row up to the last one; absent after any other outcome.
    pub degraded: Option<Streak>,
    /// Counts over every recorded run, for the metrics' counters (absent in older files).
    #[serde(default)]
    pub totals: Totals,
}

/// What all recorded runs together did; only ever grows (a fresh state starts at 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub runs: u64,
    pub probes: u64,
    pub vault_requests: u64,
}

impl Totals {
    /// These totals after one more run that spent `spent`.
    fn after_run(self, spent: Spent) -> Totals {
        Totals {
            runs: self.runs.saturating_add(1),
            probes: self.probes.saturating_add(spent.probes),
            vault_requests: self.vault_requests.saturating_add(spent.vault_requests),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    pub status: String,
    pub reason: Option<String>,
    pub action: Option<String>,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Streak {
    pub runs: u32,
    /// When the first DEGRADED run of the streak ended.
    pub since: String,
    /// The reason of the latest DEGRADED run.
    pub reason: String,
}

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Whether a cycle counts toward `fail_after_runs`, which is counted in timer runs: a
/// timer run and a resident agent's full cycle do. The resident agent's cycles between
/// two full ones (a file change, a retry of a pending backup) come at the pace of
/// events, seconds apart while Vault is away, and count toward `fail_after` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    Run,
    Between,
}

/// The outcome to report and the state to keep after a run that ended in `outcome` at
/// `now`: the `fail_after_runs`-th DEGRADED run in a row (of [`Pace::Run`]), or one that
/// comes `fail_after` or more after the streak began, is reported as `FAIL
/// reason=degraded_persistent` naming the cause and how long it has lasted. Any other
/// outcome ends the streak.
pub fn escalate(
    outcome: Outcome,
    prev: &State,
    now: SystemTime,
    policy: &DegradedPolicy,
    pace: Pace,
) -> (Outcome, State) {
    let mut next = State { last_ok_at: prev.last_ok_at.clone(), ..State::default() };
    let outcome = if outcome.status == Status::Degraded {
        let cause = outcome.reason.map_or("unknown", Reason::as_str);
        let counted = u32::from(pace == Pace::Run);
        let (runs, since) = match &prev.degraded {
            Some(s) => (s.runs.saturating_add(counted), s.since.clone()),
            None => (counted, time(now)),
        };
        // A clock stepped back counts as no time at all; an unreadable start as now.
        let lasted = humantime::parse_rfc3339(&since)
            .ok()
            .and_then(|start| now.duration_since(start).ok())
            .unwrap_or(Duration::ZERO);
        next.degraded = Some(Streak { runs, since, reason: cause.to_string() });
        if runs >= policy.fail_after_runs || lasted >= policy.fail_after {
            persistent(outcome, cause, runs, lasted)
        } else {
            outcome
        }
    } else {
        outcome
    };
    if outcome.status == Status::Ok {
        next.last_ok_at = Some(time(now));
    }
    next.last = Some(LastRun {
        status: outcome.status.as_str().to_string(),
        reason: outcome.reason.map(|r| r.as_str().to_string()),
        action: outcome.action.map(|a| a.as_str().to_string()),
        at: time(now),
    });
    (outcome, next)
}

fn persistent(degraded: Outcome, cause: &str, runs: u32, lasted: Duration) -> Outcome {
    let lasted = super::duration(lasted);
    let why = degraded.message.as_deref().unwrap_or("no detail");
    let mut o = Outcome::fail(
        Reason::DegradedPersistent,
        format!(
            "DEGRADED ({cause}) for {runs} runs in a row over {lasted}: no longer transient, a person must look; \
             the latest: {why}"
        ),
    );
    o.action = degraded.action;
    o.facts = degraded.facts;
    o.token_ttl = degraded.token_ttl;
    o.fact("cause", cause).fact("degraded_runs", runs.to_string()).fact("degraded_for", lasted)
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the state file {}: {source}", .path.display())]
    Read { path: std::path::PathBuf, source: std::io::Error },
    #[error("the state file {} is not what this agent writes ({source}); it is replaced after this run", .path.display())]
    Invalid { path: std::path::PathBuf, source: serde_json::Error },
    #[error("cannot write the state file {}: {source}", .path.display())]
    Write { path: std::path::PathBuf, source: std::io::Error },
    #[error(transparent)]
    Replace(#[from] atomic::WriteError),
}

/// The state in `path`; an absent file is a fresh state.
pub fn load(path: &Path) -> Result<State, StateError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
        Err(source) => return Err(StateError::Read { path: path.to_path_buf(), source }),
    };
    serde_json::from_slice(&bytes).map_err(|source| StateError::Invalid { path: path.to_path_buf(), source })
}

/// Replaces `path` with `state` (0600); creates its directory (0700) when missing.
pub fn save(path: &Path, state: &State) -> Result<(), StateError> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| StateError::Write { path: path.to_path_buf(), source })?;
    }
    let mut bytes = serde_json::to_vec_pretty(state).expect("the state serializes");
    bytes.push(b'\n');
    Ok(atomic::replace(path, &bytes, 0o600)?)
}

/// Escalates `outcome` against the state in `path` and keeps the new state. Two agents
/// at once take turns (a lock on the state file's directory), so neither loses a count;
/// the lock also makes it safe to remove what a killed agent's write left behind.
pub fn record(outcome: Outcome, path: &Path, policy: &DegradedPolicy, now: SystemTime, pace: Pace) -> (Outcome, State) {
    let turn = path.parent().and_then(|d| std::fs::File::open(d).ok()).filter(|d| d.lock().is_ok());
    if turn.is_some()
        && let Ok((dir, name)) = atomic::open_parent(path)
    {
        atomic::remove_stale_temps(&dir, name);
    }
    let prev = load(path).unwrap_or_else(|e| {
        tracing::warn!("{e}");
        State::default()
    });
    let (outcome, mut next) = escalate(outcome, &prev, now, policy, pace);
    next.totals = prev.totals.after_run(counters::take());
    if let Err(e) = save(path, &next) {
        tracing::warn!("{e}");
    }
    (outcome, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::ExitCode;
    use crate::report::Action;
    use crate::store::test_fs;
    use std::time::UNIX_EPOCH;

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(hours: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000) + HOUR * hours as u32
    }

    fn degraded() -> Outcome {
        Outcome::degraded(Reason::VaultUnreachable, "Vault at https://vault:8200 did not answer")
            .action(Action::BackupPending)
            .fact("probe", "ok")
    }

    /// Runs `outcomes` at the given hours through escalate, as consecutive runs.
    fn runs(policy: &DegradedPolicy, outcomes: Vec<(u64, Outcome)>) -> (Vec<Outcome>, State) {
        let mut state = State::default();
        let mut reported = Vec::new();
        for (hour, o) in outcomes {
            let (o, next) = escalate(o, &state, at(hour), policy, Pace::Run);
            reported.push(o);
            state = next;
        }
        (reported, state)
    }

    #[test]
    fn the_fourth_degraded_run_in_a_row_is_a_fail_naming_the_cause_and_how_long() {
        let (out, state) = runs(&DegradedPolicy::default(), (0..5).map(|i| (i * 6, degraded())).collect());
        let statuses: Vec<Status> = out.iter().map(|o| o.status).collect();
        assert_eq!(statuses, [Status::Degraded, Status::Degraded, Status::Degraded, Status::Fail, Status::Fail]);
        let fail = &out[3];
        assert_eq!(
            (fail.reason, fail.action, fail.exit_code()),
            (Some(Reason::DegradedPersistent), Some(Action::BackupPending), ExitCode::Fail)
        );
        let line = fail.logfmt("alice", at(18));
        assert!(
            line.contains(" status=FAIL user=alice reason=degraded_persistent action=backup_pending probe=ok cause=vault_unreachable degraded_runs=4 degraded_for=18h "),
            "{line}"
        );
        assert!(
            line.contains("DEGRADED (vault_unreachable) for 4 runs in a row over 18h")
                && line.contains("did not answer"),
            "{line}"
        );
        let streak = state.degraded.unwrap();
        assert_eq!(
            (streak.runs, streak.since.as_str(), streak.reason.as_str()),
            (5, "2027-01-15T08:00:00Z", "vault_unreachable")
        );
        assert_eq!(state.last.unwrap().reason.as_deref(), Some("degraded_persistent"));
    }

    #[test]
    fn a_streak_older_than_fail_after_fails_before_the_run_count() {
        // A laptop that is mostly off: two runs, a day and a half apart.
        let (out, _) = runs(&DegradedPolicy::default(), vec![(0, degraded()), (36, degraded())]);
        assert_eq!((out[0].status, out[1].status), (Status::Degraded, Status::Fail));
        assert!(out[1].logfmt("alice", at(36)).contains(" degraded_runs=2 degraded_for=1d12h "));
    }

    #[test]
    fn any_other_outcome_ends_the_streak() {
        let policy = DegradedPolicy::default();
        for other in [Outcome::ok(Action::Verified), Outcome::fail(Reason::LoginRequired, "log in")] {
            let mut seq: Vec<(u64, Outcome)> = (0..3).map(|i| (i, degraded())).collect();
            seq.push((3, other.clone()));
            seq.extend((4..7).map(|i| (i, degraded())));
            let (out, state) = runs(&policy, seq);
            assert!(out.iter().all(|o| o.reason != Some(Reason::DegradedPersistent)), "{other:?}: {out:?}");
            assert_eq!(state.degraded.unwrap().runs, 3);
        }
    }

    #[test]
    fn cycles_between_full_ones_count_toward_the_time_limit_only() {
        let policy = DegradedPolicy::default();
        let mut state = State::default();
        // A resident agent retrying a pending backup every few seconds while Vault is away.
        for _ in 0..20 {
            let (o, next) = escalate(degraded(), &state, at(0), &policy, Pace::Between);
            assert_eq!(o.status, Status::Degraded, "{o:?}");
            state = next;
        }
        assert_eq!(state.degraded.as_ref().unwrap().runs, 0, "no timer run among them");
        let (o, state) = escalate(degraded(), &state, at(6), &policy, Pace::Run);
        assert_eq!((o.status, state.degraded.as_ref().unwrap().runs), (Status::Degraded, 1), "a full cycle counts");
        let (o, _) = escalate(degraded(), &state, at(24), &policy, Pace::Between);
        assert_eq!(o.reason, Some(Reason::DegradedPersistent), "fail_after still ends the streak: {o:?}");
    }

    #[test]
    fn the_thresholds_are_configurable_and_a_clock_stepped_back_counts_no_time() {
        let policy = DegradedPolicy { fail_after_runs: 2, fail_after: Duration::from_secs(3 * 86_400) };
        let (out, _) = runs(&policy, vec![(10, degraded()), (0, degraded())]);
        assert_eq!(out[1].status, Status::Fail);
        assert!(out[1].logfmt("alice", at(0)).contains(" degraded_runs=2 degraded_for=0s "));
        let policy = DegradedPolicy { fail_after_runs: 100, fail_after: HOUR * 5 };
        let (out, _) = runs(&policy, vec![(0, degraded()), (4, degraded()), (5, degraded())]);
        let statuses: Vec<Status> = out.iter().map(|o| o.status).collect();
        assert_eq!(statuses, [Status::Degraded, Status::Degraded, Status::Fail]);
    }

    #[test]
    fn the_state_remembers_the_last_run_and_the_last_ok() {
        let (_, state) = runs(&DegradedPolicy::default(), vec![(0, Outcome::ok(Action::BackedUp)), (6, degraded())]);
        assert_eq!(state.last_ok_at.as_deref(), Some("2027-01-15T08:00:00Z"));
        let last = state.last.unwrap();
        assert_eq!(
            (last.status.as_str(), last.reason.as_deref(), last.action.as_deref(), last.at.as_str()),
            ("DEGRADED", Some("vault_unreachable"), Some("backup_pending"), "2027-01-15T14:00:00Z")
        );
    }

    #[test]
    fn the_file_is_private_and_a_broken_one_is_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/claude-auth-sync/state.json");
        let policy = DegradedPolicy { fail_after_runs: 2, ..DegradedPolicy::default() };
        assert_eq!(record(degraded(), &path, &policy, at(0), Pace::Run).0.status, Status::Degraded);
        assert_eq!(
            record(degraded(), &path, &policy, at(6), Pace::Run).0.status,
            Status::Fail,
            "the count survived the process"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        // What an agent killed while writing leaves behind goes with the next run.
        let stray = path.with_file_name(".state.json.tmp.0123456789abcdef");
        std::fs::write(&stray, "half").unwrap();
        std::fs::write(&path, "{ not json").unwrap();
        assert_eq!(
            record(degraded(), &path, &policy, at(12), Pace::Run).0.status,
            Status::Degraded,
            "a broken file starts afresh"
        );
        assert_eq!(load(&path).unwrap().degraded.unwrap().runs, 1, "and is replaced by a good one");
        assert!(!stray.exists());
    }

    #[test]
    fn the_totals_grow_by_what_each_run_spent_and_survive_the_process() {
        let spent = Spent { probes: 1, vault_requests: 2 };
        let t = Totals::default().after_run(spent).after_run(Spent { probes: 0, vault_requests: 1 });
        assert_eq!(t, Totals { runs: 2, probes: 1, vault_requests: 3 });
        // Through the file (the process-wide counts are other tests' too: only the runs are exact here).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        record(Outcome::ok(Action::Verified), &path, &DegradedPolicy::default(), at(0), Pace::Run);
        record(degraded(), &path, &DegradedPolicy::default(), at(6), Pace::Run);
        assert_eq!(load(&path).unwrap().totals.runs, 2);
        // A file from before the totals were kept reads as zero totals.
        std::fs::write(&path, r#"{"last":null,"last_ok_at":null,"degraded":null}"#).unwrap();
        assert_eq!(load(&path).unwrap().totals, Totals::default());
    }

    #[test]
    fn a_symlinked_state_file_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let (target, path) = test_fs::file_behind_link(dir.path(), "state.json");
        let (o, _) = record(degraded(), &path, &DegradedPolicy::default(), at(0), Pace::Run);
        assert_eq!(o.status, Status::Degraded, "the run's outcome stands");
        assert_eq!(std::fs::read(&target).unwrap(), test_fs::KEPT);
    }
}
