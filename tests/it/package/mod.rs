//! What the Debian package ships beside the binary, and the package itself:
//! [`docs`] checks the completions and the man page the binary generates from its clap
//! definitions (bash loads its script, groff renders the page without a warning);
//! [`deb`] builds the package with scripts/package.sh and checks what it installs.
//! A missing tool fails with the command that installs it.

pub mod deb;
mod docs;

use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_claude-auth-sync");

/// Runs `cmd`; a missing program fails with the apt package that brings it.
pub fn run(cmd: &mut Command, package: &str) -> Output {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.output().unwrap_or_else(|e| {
        panic!("{program} cannot run ({e}); install it with: apt-get install --no-install-recommends {package}")
    })
}

/// Asserts exit 0, naming `what` and both outputs otherwise; returns stdout.
pub fn ok(out: &Output, what: &str) -> String {
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what}: {}\n{stdout}\n{stderr}", out.status);
    stdout.into_owned()
}

/// The subcommands `--help` lists (without clap's `help`): whatever is added later is
/// checked too.
pub fn subcommands() -> Vec<String> {
    let help = ok(&run(Command::new(BIN).arg("--help"), "claude-auth-sync"), "--help");
    let list = help.split("Commands:\n").nth(1).expect("--help lists its commands");
    let names: Vec<String> = list
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(String::from)
        .collect();
    for known in ["run", "provision", "check-config", "completions", "man"] {
        assert!(names.iter().any(|n| n == known), "--help lists {known}: {names:?}");
    }
    names
}
