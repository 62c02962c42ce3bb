//! The alert rules of deploy/alerting/: every LogQL expression parses with Grafana's
//! own parser (@grafana/lezer-logql), the rules carry what the runbook promises, and
//! the Alloy config gives them their labels. What the rules match is proven on a real
//! journal in systemd.rs; here, a synthetic one checks the evaluator's reading of
//! each construct the rules use, so that a mistake in it cannot hide there.

use crate::common::alerting::{self, rule, rules, syntax_errors};
use serde_json::{Value, json};

#[test]
fn every_rule_parses_and_a_broken_expression_would_be_caught() {
    let rules = rules();
    let names: Vec<&str> = rules.iter().map(|r| r.alert.as_str()).collect();
    assert_eq!(
        names,
        ["WorkstationClaudeAuthInvalid", "WorkstationClaudeReloginDue", "WorkstationClaudeAuthSyncSilent"]
    );
    let exprs: Vec<&str> = rules.iter().map(|r| r.expr.as_str()).collect();
    for (r, err) in rules.iter().zip(syntax_errors(&exprs)) {
        assert_eq!(err, None, "{}: {}", r.alert, r.expr);
        assert!(r.annotations.contains_key("summary"), "{} has a summary", r.alert);
    }
    // The check can fail: the same rule with a typo is refused.
    let broken = rules[0].expr.replace("| logfmt |", "| logfmt ||");
    assert!(syntax_errors(&[&broken])[0].is_some(), "a syntax error must be reported");
    assert_eq!(rule("WorkstationClaudeAuthInvalid").labels["severity"], "page");
    assert_eq!(rule("WorkstationClaudeReloginDue").labels["severity"], "warning");
    assert_eq!(rule("WorkstationClaudeAuthSyncSilent").for_.as_deref(), Some("30m"));
}

fn entry(cursor: &str, at_s: u64, fields: &[(&str, &str)]) -> Value {
    let mut e =
        json!({ "__CURSOR": cursor, "__REALTIME_TIMESTAMP": (at_s * 1_000_000).to_string(), "_HOSTNAME": "ws1" });
    for (k, v) in fields {
        e[*k] = json!(v);
    }
    e
}

fn agent(cursor: &str, at_s: u64, user: &str, line: &str) -> Value {
    let unit = format!("claude-auth-sync@{user}.service");
    entry(
        cursor,
        at_s,
        &[("SYSLOG_IDENTIFIER", "claude-auth-sync"), ("OS_USER", user), ("_SYSTEMD_UNIT", &unit), ("MESSAGE", line)],
    )
}

#[test]
fn the_evaluator_reads_labels_pipelines_windows_and_unless_as_loki_does() {
    let t = 1_800_000_000;
    let journal = vec![
        agent("c1", t - 3600, "alice", "ts=x status=FAIL user=alice reason=login_required msg=\"log in\""),
        agent("c2", t - 60, "alice", "ts=x status=OK user=alice action=verified warning=relogin_due"),
        agent(
            "c3",
            t - 60,
            "bob",
            "ts=x status=DEGRADED user=bob reason=vault_unreachable msg=\"status=FAIL in a message\"",
        ),
        agent("c4", t - 8 * 3600, "bob", "ts=x status=FAIL user=bob reason=vault_token_invalid"),
        agent("c5", t - 2 * 86_400, "carol", "ts=x status=OK user=carol"),
        // Not ours: dropped by the Alloy config's keep rule, whatever it says.
        entry(
            "c6",
            t - 60,
            &[("SYSLOG_IDENTIFIER", "sshd"), ("OS_USER", "alice"), ("MESSAGE", "status=FAIL user=alice")],
        ),
        // The agent's stderr (a warning) carries no OS_USER and no status.
        entry("c7", t - 60, &[("SYSLOG_IDENTIFIER", "claude-auth-sync"), ("MESSAGE", "claude-auth-sync: warning: x")]),
    ];
    let exprs: Vec<String> = rules().into_iter().map(|r| r.expr).collect();
    let refs: Vec<&str> = exprs.iter().map(String::as_str).collect();
    let ev = alerting::evaluate(&refs, &journal, t * 1000);

    // FAIL: alice's FAIL within 7 h; not bob's DEGRADED (whose message says status=FAIL),
    // not bob's FAIL 8 h ago, not sshd's line.
    let cursors: Vec<&str> = ev[0].lines.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(cursors, ["c1"]);
    assert_eq!(ev[0].series, [(json!({ "host": "ws1", "user": "alice", "reason": "login_required" }), 1.0)]);
    let labels = &ev[0].lines[0].1;
    assert_eq!(
        (&labels["syslog_identifier"], &labels["unit"], &labels["job"], &labels["user_extracted"]),
        (
            &json!("claude-auth-sync"),
            &json!("claude-auth-sync@alice.service"),
            &json!("claude-auth-sync"),
            &json!("alice")
        )
    );
    // Relogin due: alice only.
    assert_eq!(ev[1].series, [(json!({ "host": "ws1", "user": "alice" }), 1.0)]);
    // Silent: carol (seen 2 days ago, nothing in 12 h); bob's line 8 h ago keeps him off.
    assert_eq!(ev[2].series, [(json!({ "host": "ws1", "user": "carol" }), 1.0)]);
}
