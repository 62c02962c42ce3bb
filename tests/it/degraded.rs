//! A DEGRADED that never ends is not a silent failure: the agent binary, run after run
//! with the stand-in CLI answering 529, reports DEGRADED (exit 75) three times, then
//! FAIL reason=degraded_persistent (exit 1) naming the cause and how long, in the
//! private log and the journal alike; an OK ends the streak. The thresholds themselves
//! are unit-tested with a fake clock in src/report/state.rs.

use crate::common::agent::user::Agent;
use crate::common::bao::bao;
use crate::common::claude::stand_in::{HOUR_MS, now_ms};
use crate::common::files::mode_of;
use crate::common::secrets::assert_no_leaks;
use serde_json::Value;

#[test]
fn the_fourth_degraded_run_in_a_row_fails_in_the_log_the_journal_and_the_exit_code() {
    let b = bao();
    let s = Agent::new(b);
    let (_, before) = s.good_login(now_ms() + 8 * HOUR_MS);
    s.claude.set_mode("529");

    for run in 1..=3 {
        s.run().assert_outcome(75, "DEGRADED", Some("probe_inconclusive"));
        let e = s.journal_entries().pop().unwrap();
        assert_eq!((e["PRIORITY"].as_str(), e["CLAUDE_AUTH_SYNC_STATUS"].as_str()), ("4", "DEGRADED"), "run {run}");
    }
    let run = s.run();
    run.assert_outcome(1, "FAIL", Some("degraded_persistent"));
    let line = run.report();
    assert_eq!((line.fact("cause"), line.fact("degraded_runs")), (Some("probe_inconclusive"), Some("4")), "{line}");
    assert!(line.keys().windows(3).any(|k| k == ["cause", "degraded_runs", "degraded_for"]), "{line}");
    assert!(line.msg().contains("DEGRADED (probe_inconclusive) for 4 runs in a row"), "{line}");
    let e = s.journal_entries().pop().unwrap();
    assert_eq!(
        (e["PRIORITY"].as_str(), e["CLAUDE_AUTH_SYNC_STATUS"].as_str(), e["CLAUDE_AUTH_SYNC_REASON"].as_str()),
        ("3", "FAIL", "degraded_persistent")
    );
    assert_eq!(e["MESSAGE"], line.line(), "the journal holds the same line as sync.log");
    assert_eq!(std::fs::read(s.claude.creds()).unwrap(), before, "nothing was changed meanwhile");

    // The state file beside the log: private, and no secret in it.
    let state_file = s.log().with_file_name("state.json");
    let text = std::fs::read_to_string(&state_file).unwrap();
    assert_no_leaks("state.json", &text);
    assert_eq!(mode_of(&state_file), 0o600);
    let state: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((state["degraded"]["runs"].as_u64(), state["last"]["status"].as_str()), (Some(4), Some("FAIL")));

    // The inference endpoint is back: OK, and the streak is over.
    s.claude.set_mode("normal");
    s.run().assert_outcome(0, "OK", None);
    s.claude.set_mode("529");
    s.run().assert_outcome(75, "DEGRADED", Some("probe_inconclusive"));
}

#[test]
fn the_thresholds_come_from_the_config() {
    let b = bao();
    let s = Agent::new(b).configure(|c| c.fail_after_degraded_runs(2));
    s.good_login(now_ms() + 8 * HOUR_MS);
    s.claude.set_mode("529");
    s.run().assert_outcome(75, "DEGRADED", Some("probe_inconclusive"));
    s.run().assert_outcome(1, "FAIL", Some("degraded_persistent"));
}
