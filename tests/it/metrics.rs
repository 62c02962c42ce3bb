//! The metrics file for node_exporter's textfile collector (`telemetry { textfile }`):
//! written after every run, 0644, in the exposition format `promtool check metrics`
//! accepts, with no secret in it; its counters grow across runs (totals kept in the
//! state file; the Vault requests counted are exactly those in Vault's audit log); a
//! FAIL sets the status and relogin series, and the alert rules of
//! deploy/alerting/prometheus-rules.yml fire on the very file the agent wrote. The rules
//! pass `promtool check rules` and their own tests (`promtool test rules`), which a
//! broken rule fails. A metrics file that cannot be written is warned about and leaves
//! the outcome as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::agent::user::Agent;
use crate::common::bao::bao;
use crate::common::claude::stand_in::{HOUR_MS, now_ms};
use crate::common::files::mode_of;
use crate::common::promtool::{self, RULE_TESTS, RULES};
use crate::common::secrets::{assert_no_leaks, random_secret};

/// One sample: the metric's name, its labels, its value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
    /// The series as written, `name{labels}`.
    series: String,
}

fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("a sample line: {l}"));
            let (name, rest) = series.split_once('{').unwrap_or((series, "}"));
            let mut labels = BTreeMap::new();
            let mut body = rest.strip_suffix('}').unwrap_or_else(|| panic!("labels end with }}: {l}"));
            while let Some((key, after)) = body.split_once("=\"") {
                let mut value = String::new();
                let mut chars = after.char_indices();
                let end = loop {
                    match chars.next().unwrap_or_else(|| panic!("an unterminated label value: {l}")) {
                        (_, '\\') => match chars.next().unwrap().1 {
                            'n' => value.push('\n'),
                            c => value.push(c),
                        },
                        (i, '"') => break i,
                        (_, c) => value.push(c),
                    }
                };
                labels.insert(key.trim_start_matches(',').to_string(), value);
                body = &after[end + 1..];
            }
            Sample { name: name.to_string(), labels, value: value.parse().unwrap(), series: series.to_string() }
        })
        .collect()
}

/// The one sample of `name` whose labels include `with`.
fn value(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name && with.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .collect();
    assert!(found.len() <= 1, "one series of {name} with {with:?}: {found:?}");
    found.first().map(|s| s.value)
}

/// An agent whose config writes its metrics to `<dir>/textfile/claude-auth-sync.prom`.
fn with_metrics(s: Agent<'_>) -> (Agent<'_>, PathBuf) {
    let dir = s.dir.path().join("textfile");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("claude-auth-sync.prom");
    (s.configure(|c| c.telemetry_textfile(&file)), file)
}

/// Reads the metrics file, leak-checks it and runs `promtool check metrics` on it.
fn read_checked(file: &Path) -> (String, Vec<Sample>) {
    let text = std::fs::read_to_string(file).unwrap();
    assert_no_leaks("the metrics file", &text);
    let check = promtool::check_metrics(&text);
    assert!(check.ok && check.output.trim().is_empty(), "promtool check metrics:\n{}\n{text}", check.output);
    assert_eq!(mode_of(file), 0o644, "node_exporter reads it as another user");
    let s = samples(&text);
    (text, s)
}

/// `promtool test rules` over the agent's own file: each of its series, constant for 10
/// minutes, evaluated at 5 minutes; `expect` lists the alerts that must fire
/// (alertname, extra labels beyond the series'), every other rule must not.
fn rules_over(file_samples: &[Sample], expect: &[(&str, &Sample)]) -> promtool::Checked {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(RULES, dir.path().join("prometheus-rules.yml")).unwrap();
    // As node_exporter's scrape serves them: with the workstation as `instance`.
    let input: Vec<Value> = file_samples
        .iter()
        .map(|s| json!({ "series": s.series.replacen('{', "{instance=\"ws1\",", 1), "values": format!("{}x10", s.value) }))
        .collect();
    let severity = |alert: &str| if alert == "WorkstationClaudeReloginDue" { "warning" } else { "page" };
    let tests: Vec<Value> =
        ["WorkstationClaudeAuthInvalid", "WorkstationClaudeReloginDue", "WorkstationClaudeAuthSyncSilent"]
            .into_iter()
            .map(|alert| {
                let alerts: Vec<Value> = expect
                    .iter()
                    .filter(|(a, _)| *a == alert)
                    .map(|(_, s)| {
                        let mut labels = json!(s.labels);
                        labels["severity"] = json!(severity(alert));
                        labels["instance"] = json!("ws1");
                        json!({ "exp_labels": labels, "exp_annotations": annotations(alert, &labels) })
                    })
                    .collect();
                json!({ "eval_time": "5m", "alertname": alert, "exp_alerts": alerts })
            })
            .collect();
    let test = json!({
        "rule_files": ["prometheus-rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{ "interval": "1m", "input_series": input, "alert_rule_test": tests }],
    });
    // JSON is YAML: promtool reads it as it is.
    let path = dir.path().join("agent.test.yml");
    std::fs::write(&path, serde_json::to_string_pretty(&test).unwrap()).unwrap();
    promtool::test_rules(&path)
}

/// The annotations prometheus-rules.yml gives `alert` with these labels.
fn annotations(alert: &str, labels: &Value) -> Value {
    let l = |k: &str| labels[k].as_str().unwrap_or_default().to_string();
    match alert {
        "WorkstationClaudeAuthInvalid" => json!({
            "summary": format!("Claude Code login of {} on {} needs a person: {}", l("user"), l("instance"), l("reason")),
            "runbook": "docs/runbook.md, Recovery that needs a person",
        }),
        other => panic!("no annotations written down for {other}"),
    }
}

#[test]
fn an_ok_run_writes_metrics_promtool_accepts_and_the_counters_grow_across_runs() {
    let b = bao();
    let (s, file) = with_metrics(Agent::new(b));
    let (login, _) = s.good_login(now_ms() + 8 * HOUR_MS);
    s.run().assert_outcome(0, "OK", None);

    let (text, m) = read_checked(&file);
    let me = m.iter().find(|x| x.name == "claude_auth_sync_status").unwrap().labels["user"].clone();
    assert!(m.iter().all(|x| x.labels.get("user") == Some(&me)), "every series is labelled by user:\n{text}");
    let u = ("user", me.as_str());
    assert_eq!(value(&m, "claude_auth_sync_status", &[u, ("status", "OK")]), Some(1.0));
    assert_eq!(value(&m, "claude_auth_sync_status", &[u, ("status", "DEGRADED")]), Some(0.0));
    assert_eq!(value(&m, "claude_auth_sync_status", &[u, ("status", "FAIL")]), Some(0.0));
    assert_eq!(value(&m, "claude_auth_sync_relogin_required", &[u]), Some(0.0));
    let last_run = value(&m, "claude_auth_sync_last_run_timestamp_seconds", &[u]).unwrap();
    assert_eq!(value(&m, "claude_auth_sync_last_success_timestamp_seconds", &[u]), Some(last_run));
    assert!((last_run - now_ms() as f64 / 1000.0).abs() < 3600.0, "a Unix time: {last_run}");
    let template = ("template", s.claude.creds().to_str().unwrap().to_string());
    let t = (template.0, template.1.as_str());
    assert_eq!(
        value(&m, "claude_auth_sync_access_token_expiry_timestamp_seconds", &[u, t]),
        Some((login["expiresAt"].as_u64().unwrap() / 1000) as f64)
    );
    assert_eq!(
        value(&m, "claude_auth_sync_refresh_token_expiry_timestamp_seconds", &[u, t]),
        Some((login["refreshTokenExpiresAt"].as_u64().unwrap() / 1000) as f64)
    );
    assert!(value(&m, "claude_auth_sync_vault_token_ttl_seconds", &[u]).unwrap() > 0.0);
    assert_eq!(value(&m, "claude_auth_sync_runs_total", &[u]), Some(1.0));
    assert_eq!(value(&m, "claude_auth_sync_probes_total", &[u]), Some(1.0));
    let requests = value(&m, "claude_auth_sync_vault_requests_total", &[u]).unwrap();
    let audited = b.requests_by(&s.accessor).len();
    assert_eq!(requests, audited as f64, "every request Vault's audit log saw with the token, no more");

    // The next run adds to the totals kept in the state file.
    s.run().assert_outcome(0, "OK", None);
    let (_, m2) = read_checked(&file);
    assert_eq!(value(&m2, "claude_auth_sync_runs_total", &[u]), Some(2.0));
    assert_eq!(value(&m2, "claude_auth_sync_probes_total", &[u]), Some(2.0));
    let requests2 = value(&m2, "claude_auth_sync_vault_requests_total", &[u]).unwrap();
    assert!(requests2 > requests && requests2 == b.requests_by(&s.accessor).len() as f64, "{requests2}");

    // An OK file fires no alert.
    let r = rules_over(&m2, &[]);
    assert!(r.ok, "promtool test rules over the agent's file:\n{}", r.output);
}

#[test]
fn a_fail_sets_relogin_required_and_the_fail_alert_fires_on_the_agents_own_file() {
    let b = bao();
    let (s, file) = with_metrics(Agent::new(b));
    s.claude.write_login(&s.dead_login(), &random_secret("mcp-token-"));
    s.run().assert_outcome(1, "FAIL", Some("login_required"));

    let (text, m) = read_checked(&file);
    let me = m[0].labels["user"].clone();
    let u = ("user", me.as_str());
    assert_eq!(value(&m, "claude_auth_sync_status", &[u, ("status", "FAIL")]), Some(1.0));
    assert_eq!(value(&m, "claude_auth_sync_status", &[u, ("status", "OK")]), Some(0.0));
    assert_eq!(value(&m, "claude_auth_sync_relogin_required", &[u]), Some(1.0));
    assert_eq!(value(&m, "claude_auth_sync_last_success_timestamp_seconds", &[u]), None, "never OK:\n{text}");
    let info = m.iter().find(|x| x.name == "claude_auth_sync_last_run_info").unwrap();
    assert_eq!((info.labels["status"].as_str(), info.labels["reason"].as_str()), ("FAIL", "login_required"));

    let r = rules_over(&m, &[("WorkstationClaudeAuthInvalid", info)]);
    assert!(r.ok, "promtool test rules over the agent's file:\n{}", r.output);
    // The check can fail: the same file does not make the alert fire for OK.
    let r = rules_over(&m, &[]);
    assert!(!r.ok && r.output.contains("WorkstationClaudeAuthInvalid"), "{}", r.output);
}

#[test]
fn the_rules_pass_promtool_and_their_tests_and_a_broken_rule_fails_them() {
    let check = promtool::check_rules(Path::new(RULES));
    assert!(check.ok && check.output.contains("SUCCESS: 3 rules found"), "{}", check.output);
    let test = promtool::test_rules(Path::new(RULE_TESTS));
    assert!(test.ok && test.output.contains("SUCCESS"), "{}", test.output);

    // Relogin due at 1 day instead of 5: the tests catch it.
    let dir = tempfile::tempdir().unwrap();
    let rules = std::fs::read_to_string(RULES).unwrap();
    assert!(rules.contains("< 5 * 86400"));
    std::fs::write(dir.path().join("prometheus-rules.yml"), rules.replace("< 5 * 86400", "< 1 * 86400")).unwrap();
    std::fs::copy(RULE_TESTS, dir.path().join("prometheus-rules.test.yml")).unwrap();
    let broken = promtool::test_rules(&dir.path().join("prometheus-rules.test.yml"));
    assert!(!broken.ok && broken.output.contains("WorkstationClaudeReloginDue"), "{}", broken.output);
}

#[test]
fn a_metrics_file_that_cannot_be_written_is_warned_about_and_changes_no_outcome() {
    let b = bao();
    let (s, file) = with_metrics(Agent::new(b));
    s.good_login(now_ms() + 8 * HOUR_MS);
    // A link where the file goes: never written through.
    let target = s.dir.path().join("elsewhere.prom");
    std::fs::write(&target, "kept\n").unwrap();
    std::os::unix::fs::symlink(&target, &file).unwrap();
    let run = s.run();
    run.assert_outcome(0, "OK", None);
    assert!(run.stderr.contains("claude-auth-sync.prom") && run.stderr.contains("symbolic link"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "kept\n");

    // Its directory gone: the same.
    std::fs::remove_file(&file).unwrap();
    std::fs::remove_dir(file.parent().unwrap()).unwrap();
    let run = s.run();
    run.assert_outcome(0, "OK", None);
    assert!(run.stderr.contains("no metrics for this run"), "{}", run.stderr);
}

#[test]
fn vault_agents_telemetry_keys_are_a_config_error_that_says_so_and_status_refuses_them_too() {
    let b = bao();
    let (s, _) = with_metrics(Agent::new(b));
    s.reconfigure(|c| c.telemetry_textfile(Path::new("/x/a.prom")).telemetry_key("prometheus_retention_time", "24h"));
    s.good_login(now_ms() + 8 * HOUR_MS);
    let before = std::fs::read(s.claude.creds()).unwrap();
    for run in [s.run(), s.status(false)] {
        assert_eq!(run.code, 78, "{}", run.stderr);
        assert!(
            run.stderr.contains("telemetry")
                && run.stderr.contains("prometheus_retention_time")
                && run.stderr.contains("does not support"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(std::fs::read(s.claude.creds()).unwrap(), before, "nothing touched");
    assert!(s.vault_copy().is_none(), "nothing sent to Vault");
}
