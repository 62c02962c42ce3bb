//! promtool, Prometheus' own checker, as the tests run it: `check rules` and `test
//! rules` on deploy/alerting/prometheus-rules.yml, `check metrics` on a file the agent
//! wrote. `PROMTOOL_BIN` names it (scripts/test.sh sets it with
//! scripts/install-promtool.sh); a missing one fails loudly with how to get it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/alerting/prometheus-rules.yml");
pub const RULE_TESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/alerting/prometheus-rules.test.yml");

fn promtool() -> PathBuf {
    let bin = std::env::var("PROMTOOL_BIN").map(PathBuf::from).unwrap_or_else(|_| {
        panic!(
            "PROMTOOL_BIN is not set: the Prometheus rule and metrics checks need promtool.\n\
             Get it with: scripts/install-promtool.sh (or apt-get install --no-install-recommends prometheus), \
             or run the suite with scripts/test.sh"
        )
    });
    assert!(bin.is_file(), "PROMTOOL_BIN={} does not exist; run scripts/install-promtool.sh", bin.display());
    bin
}

/// promtool's exit status and its whole output.
pub struct Checked {
    pub ok: bool,
    pub output: String,
}

fn checked(out: Output) -> Checked {
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Checked { ok: out.status.success(), output }
}

/// `promtool check rules FILE`.
pub fn check_rules(file: &Path) -> Checked {
    checked(Command::new(promtool()).args(["check", "rules"]).arg(file).output().unwrap())
}

/// `promtool test rules FILE` (its `rule_files` are relative to FILE).
pub fn test_rules(file: &Path) -> Checked {
    checked(Command::new(promtool()).args(["test", "rules"]).arg(file).output().unwrap())
}

/// `promtool check metrics < text`: the exposition format and its lint.
pub fn check_metrics(text: &str) -> Checked {
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    checked(child.wait_with_output().unwrap())
}
