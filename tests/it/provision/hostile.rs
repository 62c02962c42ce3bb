//! Hostile homes and rosters: symlink and hard-link attacks on the writes into homes
//! (also one swapped in mid-repair) fail that user only and touch nothing; hostile user
//! names and an email that would inject HCL are refused before any change; systemctl
//! runs by its absolute path, without the admin token in its environment.

use crate::common::bao::bao;
use crate::common::files::{uid_of, write_file};
use crate::common::secrets::assert_no_leaks;
use crate::common::users::TestUser;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

use super::{Provisioner, Roster, admin_token, provisioned_users, report_json, user_entry};

#[test]
fn symlink_and_hard_link_attacks_fail_that_user_only_and_touch_nothing() {
    let b = bao();
    let users: Vec<TestUser> = (0..6).map(|_| TestUser::new()).collect();
    let [dot_config, agent_link, token_link, token_hardlink, foreign_dir, clean] = users.as_slice() else {
        unreachable!()
    };
    let other = TestUser::new();

    // ~/.config is a symlink to /root.
    std::os::unix::fs::symlink("/root", dot_config.home.join(".config")).unwrap();
    let root_had = std::fs::read_dir("/root").unwrap().count();
    // ~/.config/claude-auth-sync is a symlink to a root-owned directory.
    let target_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(agent_link.home.join(".config")).unwrap();
    std::os::unix::fs::symlink(target_dir.path(), agent_link.agent_dir()).unwrap();
    // The token file is a symlink, or a hard link, to a root-owned file.
    let root_file = |u: &TestUser| {
        let f = u.home.join("root-owned-secret");
        std::fs::write(&f, "root's content").unwrap();
        f
    };
    for u in [token_link, token_hardlink] {
        std::fs::create_dir_all(u.agent_dir()).unwrap();
    }
    let link_target = root_file(token_link);
    std::os::unix::fs::symlink(&link_target, token_link.file("vault-token")).unwrap();
    let hard_target = root_file(token_hardlink);
    std::fs::hard_link(&hard_target, token_hardlink.file("vault-token")).unwrap();
    // A directory on the way is owned by another user (what a swap would leave behind).
    std::fs::create_dir_all(foreign_dir.agent_dir()).unwrap();
    std::os::unix::fs::chown(foreign_dir.agent_dir(), Some(other.uid), Some(other.uid)).unwrap();

    let p = Provisioner::new();
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    let roster = p.roster(Roster::token(b), &names);
    let run = p.admin_run(b, &roster, &["--json"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let report = report_json(&run);

    for (u, why) in [
        (dot_config, "is a symbolic link"),
        (agent_link, "is a symbolic link"),
        (token_link, "is a symbolic link"),
        (token_hardlink, "is a hard link"),
        (foreign_dir, &format!("is owned by uid {}", other.uid)),
    ] {
        let e = user_entry(&report, &u.name);
        assert_eq!(e["status"], "failed", "{e}");
        assert!(e["problem"].as_str().unwrap().contains(why), "{}: {e}", u.name);
        // Nothing in Vault either: the home is checked first.
        let (s, _) = b.api(&b.root, "GET", &format!("sys/policies/acl/claude-auth-sync-{}", u.name), None);
        assert_eq!(s, 404, "no policy for a user whose home is hostile");
    }
    assert_eq!(std::fs::read_dir("/root").unwrap().count(), root_had, "nothing written into /root");
    assert!(!Path::new("/root/claude-auth-sync").exists());
    assert_eq!(std::fs::read_dir(target_dir.path()).unwrap().count(), 0, "the symlinked directory stays empty");
    assert_eq!(std::fs::read_to_string(&link_target).unwrap(), "root's content");
    assert_eq!(std::fs::read_to_string(&hard_target).unwrap(), "root's content");
    assert_eq!(std::fs::read_dir(foreign_dir.agent_dir()).unwrap().count(), 0);
    assert_eq!(uid_of(&foreign_dir.agent_dir()), other.uid);

    let e = user_entry(&report, &clean.name);
    assert_eq!(e["status"], "changed", "the other users are still provisioned: {e}");
    assert_eq!(uid_of(&clean.file("vault-token")), clean.uid);
}

#[test]
fn a_hostile_roster_is_rejected_before_any_change() {
    let b = bao();
    let sentinel = TestUser::new();
    let p = Provisioner::new();
    let long = "a".repeat(33);
    for (bad, why) in [
        ("../root", "is not a valid user name"),
        ("\"alice;rm -rf /\"", "is not a valid user name"),
        (long.as_str(), "is not a valid user name"),
        (sentinel.name.as_str(), "appears more than once"),
        ("nosuchuserhere", "has no account on this machine"),
    ] {
        let text = format!("vault:\n  address: {}\nusers:\n  - name: {}\n  - name: {bad}\n", b.addr, sentinel.name);
        let roster = write_file(p.dir.path(), "hostile.yaml", &text, 0o600);
        let run = p.admin_run(b, &roster, &[]);
        assert_eq!(run.code, 78, "{bad}: {}", run.stderr);
        assert!(run.stderr.contains("users[1]") && run.stderr.contains(why), "{bad}: {}", run.stderr);
        assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
        let (s, _) = b.api(&b.root, "GET", &format!("sys/policies/acl/claude-auth-sync-{}", sentinel.name), None);
        assert_eq!(s, 404, "{bad}: Vault unchanged");
        assert!(!sentinel.home.join(".config").exists(), "{bad}: disk unchanged");
        assert!(!p.state.exists());
    }
}

/// Issue 10.8: systemctl is run by its absolute path with a clean environment: a
/// `systemctl` earlier in PATH is never run, and the admin token never reaches it.
/// Runs the provisioner in a private mount namespace where systemd looks booted
/// (a tmpfs on /run) and /usr/bin/systemctl is a recorder.
#[test]
fn systemctl_runs_by_absolute_path_without_the_admin_token() {
    assert!(Path::new("/usr/bin/systemctl").is_file(), "needs /usr/bin/systemctl: apt-get install systemd");
    let b = bao();
    let u = TestUser::new();
    let p = Provisioner::new();
    let dir = p.dir.path();
    let log = dir.join("systemctl.log");
    let recorder = |name: &str, tag: &str| {
        let script = format!(
            "#!/bin/sh\necho \"{tag} $*\" >> {log}\nenv >> {log}\n[ \"$1\" = is-enabled ] && exit 1\nexit 0\n",
            log = log.display()
        );
        write_file(dir, name, &script, 0o755)
    };
    let real_path = recorder("systemctl-recorder", "ABSOLUTE");
    std::fs::create_dir(dir.join("bin")).unwrap();
    recorder("bin/systemctl", "FROM-PATH");
    let roster = p.roster(Roster::token(b), &[&u.name]);
    let admin = admin_token(b, "secret");
    let script = "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system && mount --bind \"$1\" /usr/bin/systemctl && shift && exec \"$@\"";
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-c", script, "sh"])
        .arg(&real_path)
        .args([env!("CARGO_BIN_EXE_claude-auth-sync"), "provision", "--roster", roster.to_str().unwrap()])
        .args(["--state", p.state.to_str().unwrap()])
        .env_clear()
        .env("PATH", format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", dir.join("bin").display()))
        .env("VAULT_TOKEN", &admin)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_no_leaks("provision output", &format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let recorded = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!recorded.contains("FROM-PATH"), "systemctl was found through PATH");
    assert!(recorded.contains(&format!("ABSOLUTE enable --now claude-auth-sync@{}.timer", u.name)), "{stdout}");
    assert_no_leaks("systemctl's environment", &recorded);
    assert!(!recorded.lines().any(|l| l.starts_with("VAULT_TOKEN=")), "VAULT_TOKEN reached systemctl");
}

/// Issue 9.7: the routine run's repair is not fooled by a hard link swapped in after
/// its first look: paused (by a FIFO, no timing) right before it opens the file, the
/// test replaces vault-token with a hard link to a root-owned 0666 file outside the
/// agent directory; the file keeps its mode and owner and the user fails.
#[test]
fn the_repair_is_not_fooled_by_a_hard_link_swapped_in() {
    let b = bao();
    let ([u], p, roster) = provisioned_users(b, Roster::token(b));
    std::fs::set_permissions(u.file("vault-token"), std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    // Outside the agent directory, on the same filesystem (a hard link cannot cross one).
    let target = u.home.with_file_name(format!("{}-root-file", u.name));
    std::fs::write(&target, "root's").unwrap();
    std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let fifo = p.dir.path().join("pause");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());

    let child = Command::new(env!("CARGO_BIN_EXE_claude-auth-sync"))
        .args(["provision", "--roster", roster.to_str().unwrap(), "--state", p.state.to_str().unwrap(), "--json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("CLAUDE_AUTH_SYNC_TEST_PAUSE_AT", "fix vault-token")
        .env("CLAUDE_AUTH_SYNC_TEST_PAUSE_FIFO", &fifo)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(std::fs::read_to_string(&fifo).unwrap(), "fix vault-token", "the repair reached the pause");
    std::fs::remove_file(u.file("vault-token")).unwrap();
    std::fs::hard_link(&target, u.file("vault-token")).unwrap();
    std::fs::write(&fifo, "go").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_no_leaks("provision output", &stdout);
    let _ = std::fs::remove_file(u.file("vault-token"));
    let meta = std::fs::metadata(&target).unwrap();
    std::fs::remove_file(&target).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!((meta.permissions().mode() & 0o7777, meta.uid()), (0o666, 0), "root's file was changed: {stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let e = user_entry(&report, &u.name);
    assert_eq!(e["status"], "failed", "{e}");
    assert!(e["problem"].as_str().unwrap().contains("is a hard link"), "{e}");
}

/// Issue 9.10: a roster email that would add HCL to the user's config is refused
/// before any change.
#[test]
fn an_email_that_would_inject_hcl_is_refused() {
    let b = bao();
    let u = TestUser::new();
    let p = Provisioner::new();
    let text = format!(
        "vault:\n  address: {}\nusers:\n  - name: {}\n    email: \"x@example.com\\nlog {{\\n  path = \\\"/tmp/x\\\"\\n}}\"\n",
        b.addr, u.name
    );
    let roster = write_file(p.dir.path(), "inject.yaml", &text, 0o600);
    let run = p.admin_run(b, &roster, &[]);
    assert_eq!(run.code, 78, "{}", run.stdout);
    assert!(run.stderr.contains("users[0]") && run.stderr.contains("email"), "{}", run.stderr);
    assert!(!u.home.join(".config").exists(), "nothing written");
}
