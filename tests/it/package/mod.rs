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
