//! The provisioner's command line: --dry-run plans and changes nothing, `policy`
//! prints a user's policy, and `provision` needs root.

use crate::common::agent::run::agent;
use crate::common::bao::bao;
use crate::common::users::{TestUser, UserExe};
use std::process::Command;

use super::{Provisioner, Roster};

#[test]
fn a_dry_run_plans_and_changes_nothing() {
    let b = bao();
    let u = TestUser::new();
    let p = Provisioner::new();
    let roster = p.roster(Roster::token(b), &[&u.name]);
    let run = p.admin_run(b, &roster, &["--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("would write policy") && run.stdout.contains("would mint a new token"),
        "{}",
        run.stdout
    );
    let (s, _) = b.api(&b.root, "GET", &format!("sys/policies/acl/claude-auth-sync-{}", u.name), None);
    assert_eq!(s, 404);
    assert!(!u.home.join(".config").exists());
    assert!(!p.state.exists());
}

#[test]
fn policy_prints_the_users_hcl_and_provision_needs_root() {
    let run = agent(&["policy", "--user", "alice"], &[]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("path \"secret/data/workstation/claude-users/alice\""), "{}", run.stdout);
    let run = agent(&["policy", "--user", "../root"], &[]);
    assert_eq!(run.code, 64);

    let u = TestUser::new();
    let exe = UserExe::new();
    let out = Command::new("runuser")
        .arg("-u")
        .arg(&u.name)
        .arg("--")
        .arg(&exe.path)
        .args(["provision", "--roster", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(77), "{}", String::from_utf8_lossy(&out.stderr));
}
