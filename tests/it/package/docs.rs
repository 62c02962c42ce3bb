//! `claude-auth-sync completions bash|zsh|fish` and `claude-auth-sync man`: bash
//! parses and registers its script and completes every subcommand from it; zsh and fish
//! name every subcommand; the man page renders with `groff -man -ww` without a warning
//! and has a section for every subcommand.

use std::io::Write;
use std::process::{Command, Stdio};

use super::{BIN, ok, run};
use crate::help::subcommands;

fn generate(args: &[&str]) -> String {
    let text = ok(&run(Command::new(BIN).args(args), "claude-auth-sync"), &args.join(" "));
    assert!(!text.trim().is_empty(), "{args:?} printed nothing");
    text
}

#[test]
fn bash_loads_the_completion_script_and_completes_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("claude-auth-sync.bash");
    std::fs::write(&script, generate(&["completions", "bash"])).unwrap();
    ok(&run(Command::new("bash").arg("-n").arg(&script), "bash"), "bash -n on the completion script");
    // What bash offers after `claude-auth-sync <TAB>`, through the registered function.
    let probe = r#"source "$1" && complete -p claude-auth-sync &&
        f=$(complete -p claude-auth-sync | sed -n 's/.* -F \([^ ]*\) .*/\1/p') &&
        COMP_WORDS=(claude-auth-sync "") COMP_CWORD=1 COMP_LINE="claude-auth-sync " COMP_POINT=17 &&
        "$f" claude-auth-sync "" claude-auth-sync && printf 'offer %s\n' "${COMPREPLY[@]}""#;
    let out = ok(
        &run(Command::new("bash").args(["--norc", "--noprofile", "-c", probe, "bash"]).arg(&script), "bash"),
        "sourcing the completion script",
    );
    let registered = out.lines().next().unwrap_or_default();
    assert!(
        registered.starts_with("complete ") && registered.ends_with(" claude-auth-sync"),
        "complete -p claude-auth-sync: {out}"
    );
    let offered: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("offer ")).collect();
    for sub in subcommands() {
        assert!(offered.contains(&sub.as_str()), "bash offers {sub} after `claude-auth-sync `: {offered:?}");
    }
    // The syntax check can fail: a broken script is refused.
    std::fs::write(&script, "_f() { if then; }\n").unwrap();
    assert!(!run(Command::new("bash").arg("-n").arg(&script), "bash").status.success(), "bash -n catches errors");
}

#[test]
fn zsh_and_fish_scripts_name_every_subcommand() {
    let zsh = generate(&["completions", "zsh"]);
    let fish = generate(&["completions", "fish"]);
    assert!(zsh.starts_with("#compdef claude-auth-sync"), "{zsh}");
    assert!(fish.contains("complete -c claude-auth-sync"), "{fish}");
    for sub in subcommands() {
        assert!(zsh.contains(&format!("'{sub}:")), "zsh completes {sub}");
        assert!(fish.contains(&format!("-a \"{sub}\"")), "fish completes {sub}");
    }
    let out = run(Command::new(BIN).args(["completions", "tcsh"]), "claude-auth-sync");
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash"), "the error lists the shells");
}

/// `groff -man -Tutf8 -ww` on `page`, as plain text: (exit ok, text, warnings).
fn groff(page: &str) -> (bool, String, String) {
    let mut child = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-P-cbou"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("groff cannot run ({e}); install it with: apt-get install --no-install-recommends groff-base")
        });
    child.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn the_man_page_renders_without_warnings_and_covers_every_subcommand() {
    let page = generate(&["man"]);
    assert!(page.lines().any(|l| l.starts_with(".TH claude-auth-sync 1 ")), "{page}");
    let (ok, text, warnings) = groff(&page);
    assert!(ok && warnings.is_empty(), "groff -man -ww warned:\n{warnings}");
    for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXAMPLES"] {
        assert!(text.lines().any(|l| l == section), "the page has {section}:\n{text}");
    }
    for sub in subcommands() {
        let heading = format!("CLAUDE-AUTH-SYNC {}", sub.to_uppercase());
        assert!(text.lines().any(|l| l == heading), "the page has a section for {sub}:\n{text}");
        assert!(text.contains(&format!("claude-auth-sync {sub} ")), "{sub}'s synopsis");
    }
    assert!(text.contains("--roster <FILE>"), "subcommands' options are on the page");
    // The warning check can fail: an unknown macro is reported.
    let (_, _, warnings) = groff(&format!("{page}.nosuchmacro\n"));
    assert!(!warnings.is_empty(), "groff -ww reports an unknown macro");
}
