//! Every subcommand's `--help` ends with examples: the list of subcommands is read from
//! the top-level help, so a new one is held to it too.

use crate::common::agent::run::agent;

/// The subcommands the top-level `--help` lists (without `help`); a line indented
/// deeper continues the one-line help of the subcommand above it.
pub fn subcommands() -> Vec<String> {
    let run = agent(&["--help"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let listing = run.stdout.split("Commands:\n").nth(1).expect("--help lists its commands");
    listing
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect()
}

#[test]
fn every_subcommand_help_has_examples() {
    let names = subcommands();
    for expected in ["run", "provision", "policy", "check-config"] {
        assert!(names.iter().any(|n| n == expected), "--help lists {expected}: {names:?}");
    }
    for name in &names {
        let run = agent(&[name, "--help"], &[]);
        assert_eq!(run.code, 0, "{name} --help: {}", run.stderr);
        let examples = run.stdout.split("Examples:\n").nth(1);
        let first = examples.and_then(|e| e.lines().next()).unwrap_or("");
        assert!(
            first.trim_start().starts_with("claude-auth-sync ") || first.trim_start().starts_with("sudo "),
            "{name} --help has an \"Examples:\" section starting with a command line:\n{}",
            run.stdout
        );
    }
}
