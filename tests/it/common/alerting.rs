//! The alert rules of deploy/alerting/, read as the Loki ruler reads them, and
//! logql.mjs beside this file, which parses their LogQL with Grafana's parser and
//! evaluates it over exported journal entries (see that file for what it implements).
//! A missing node or parser fails loudly with the command that installs it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/alerting/loki-rules.yaml");
pub const ALLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/alerting/claude-auth-sync.alloy");
const EVALUATOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/common/logql.mjs");

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Rule {
    pub alert: String,
    pub expr: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    #[serde(rename = "for")]
    pub for_: Option<String>,
}

#[derive(serde::Deserialize)]
struct Group {
    name: String,
    rules: Vec<Rule>,
}

#[derive(serde::Deserialize)]
struct RuleFile {
    groups: Vec<Group>,
}

/// Every rule of loki-rules.yaml (one group, `claude-auth-sync`).
pub fn rules() -> Vec<Rule> {
    let text = std::fs::read_to_string(RULES).unwrap();
    let file: RuleFile = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{RULES}: {e}"));
    assert_eq!(file.groups.len(), 1, "one rule group");
    assert_eq!(file.groups[0].name, "claude-auth-sync");
    file.groups.into_iter().next().unwrap().rules
}

pub fn rule(alert: &str) -> Rule {
    rules().into_iter().find(|r| r.alert == alert).unwrap_or_else(|| panic!("no rule {alert} in {RULES}"))
}

fn lezer_dir() -> PathBuf {
    let dir = std::env::var("LEZER_LOGQL_DIR").map(PathBuf::from).unwrap_or_else(|_| {
        panic!(
            "LEZER_LOGQL_DIR is not set: the LogQL checks need Grafana's parser.\n\
             Install it with: scripts/install-lezer-logql.sh (npm install @grafana/lezer-logql), \
             or run the suite with scripts/test.sh"
        )
    });
    assert!(
        dir.join("node_modules/@grafana/lezer-logql").is_dir(),
        "LEZER_LOGQL_DIR={} holds no @grafana/lezer-logql; run scripts/install-lezer-logql.sh",
        dir.display()
    );
    dir
}

fn node(args: &[&Path], tail: &[&str]) -> Value {
    let out = Command::new("node")
        .arg(EVALUATOR)
        .arg(lezer_dir())
        .args(args)
        .args(tail)
        .output()
        .unwrap_or_else(|e| panic!("node cannot run ({e}); install it with: apt-get install nodejs"));
    assert!(out.status.success(), "logql.mjs failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn exprs_file(dir: &Path, exprs: &[&str]) -> PathBuf {
    let p = dir.join("exprs.json");
    std::fs::write(&p, serde_json::to_string(exprs).unwrap()).unwrap();
    p
}

/// For each expression, the parser's first syntax error, if any.
pub fn syntax_errors(exprs: &[&str]) -> Vec<Option<String>> {
    let dir = tempfile::tempdir().unwrap();
    let file = exprs_file(dir.path(), exprs);
    let v = node(&[Path::new("parse"), &file], &[]);
    v.as_array().unwrap().iter().map(|r| r["error"].as_str().map(str::to_string)).collect()
}

/// What an expression gives at one instant over journal entries labelled by the Alloy config.
pub struct Evaluated {
    /// `(labels, value)` of every resulting series.
    pub series: Vec<(Value, f64)>,
    /// `(journal cursor, labels)` of every entry that passed a log pipeline.
    pub lines: Vec<(String, Value)>,
}

/// Evaluates `exprs` at `at_ms` (epoch ms) over `journal` (entries of `journalctl -o json`).
pub fn evaluate(exprs: &[&str], journal: &[Value], at_ms: u64) -> Vec<Evaluated> {
    let dir = tempfile::tempdir().unwrap();
    let file = exprs_file(dir.path(), exprs);
    let export = dir.path().join("journal.jsonl");
    let text: String = journal.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&export, text).unwrap();
    let v = node(&[Path::new("eval"), &file, Path::new(ALLOY), &export], &[&at_ms.to_string()]);
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| Evaluated {
            series: r["series"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (s["labels"].clone(), s["value"].as_f64().unwrap()))
                .collect(),
            lines: r["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| (l["cursor"].as_str().unwrap().to_string(), l["labels"].clone()))
                .collect(),
        })
        .collect()
}
