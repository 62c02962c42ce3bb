//! The provisioner as root against a real OpenBao, with throwaway OS users: isolation
//! of each user's Vault identity (token and AppRole), symlink and hard-link attacks on
//! the writes into homes, hostile rosters, idempotence, the routine run, and --prune.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{Value, json};

fn owner(p: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(p).unwrap().uid()
}

struct Provisioner {
    dir: tempfile::TempDir,
    state: PathBuf,
}

impl Provisioner {
    fn new() -> Provisioner {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        Provisioner { dir, state }
    }

    fn roster(&self, b: &Bao, auth: &str, period: &str, users: &[&str]) -> PathBuf {
        let mut text = format!("vault:\n  address: {}\n  auth: {auth}\n  token_period: {period}\nusers:\n", b.addr);
        for u in users {
            text.push_str(&format!("  - name: {u}\n    email: {u}@example.com\n"));
        }
        write_file(self.dir.path(), &format!("roster-{}.yaml", random_secret("roster-")), &text, 0o600)
    }

    /// `provision` with the admin token (or without, for the routine run) and `extra` flags.
    fn run(&self, b: &Bao, roster: &Path, admin: bool, extra: &[&str]) -> Run {
        let mut args = vec!["provision", "--roster", roster.to_str().unwrap(), "--state", self.state.to_str().unwrap()];
        args.extend_from_slice(extra);
        let env: Vec<(&str, &str)> = if admin { vec![("VAULT_TOKEN", b.root.as_str())] } else { vec![] };
        agent(&args, &env)
    }
}

fn report_json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn user_entry<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == name)
        .unwrap_or_else(|| panic!("{name} missing: {report}"))
}

/// Every check of the isolation promise, with `token` (alice's) against alice's and bob's paths.
fn assert_isolated(b: &Bao, token: &str, alice: &str, bob: &str) {
    let data = |u: &str| format!("secret/data/workstation/claude-users/{u}");
    let meta = |u: &str| format!("secret/metadata/workstation/claude-users/{u}");
    let (s, v) = b.api(token, "POST", &data(alice), Some(json!({ "data": { "claudeAiOauth": { "probe": 1 } } })));
    assert_eq!(s, 200, "{alice} writes their own path: {v}");
    let (s, v) = b.api(token, "GET", &data(alice), None);
    assert_same!((s, &v["data"]["data"]["claudeAiOauth"]["probe"]), (200, &json!(1)), "{alice} reads their own path");
    b.kv_put(bob, json!({ "claudeAiOauth": { "bob": true } }));
    for (method, path, body) in [
        ("GET", data(bob), None),
        ("POST", data(bob), Some(json!({ "data": { "x": 1 } }))),
        ("GET", meta(bob), None),
        ("POST", meta(bob), Some(json!({ "max_versions": 1 }))),
        ("LIST", "secret/metadata/workstation/claude-users".to_string(), None),
        ("GET", "sys/policy".to_string(), None),
        ("GET", "sys/policies/acl".to_string(), None),
        ("POST", "auth/token/create".to_string(), Some(json!({ "policies": ["default"] }))),
        ("DELETE", data(alice), None),
    ] {
        let (s, v) = b.api(token, method, &path, body);
        assert_eq!(s, 403, "{alice}'s credential must be denied {method} {path}: {s} {v}");
    }
}

fn approle_token(b: &Bao, u: &TestUser) -> String {
    let role_id = std::fs::read_to_string(u.file("role-id")).unwrap();
    let secret_id = secret(std::fs::read_to_string(u.file("secret-id")).unwrap());
    let (s, v) = b.api("", "POST", "auth/approle/login", Some(json!({ "role_id": role_id, "secret_id": secret_id })));
    assert_eq!(s, 200, "{v}");
    secret(v["auth"]["client_token"].as_str().unwrap())
}

#[test]
fn two_users_get_isolated_periodic_tokens_and_a_second_run_mints_nothing() {
    let b = bao();
    let (alice, bob) = (TestUser::new(), TestUser::new());
    let p = Provisioner::new();
    let roster = p.roster(b, "token", "32d", &[&alice.name, &bob.name]);

    let run = p.run(b, &roster, true, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let exe = UserExe::new();
    for u in [&alice, &bob] {
        let token_file = u.file("vault-token");
        assert_eq!((mode_of(&token_file), owner(&token_file)), (0o600, u.uid));
        assert_eq!((mode_of(&u.agent_dir()), owner(&u.agent_dir())), (0o700, u.uid));
        assert_eq!(owner(&u.file("config.hcl")), u.uid);
        let token = secret(std::fs::read_to_string(&token_file).unwrap());
        let info = b.lookup(&token);
        assert_eq!(info["policies"], json!([format!("claude-auth-sync-{}", u.name)]), "that policy only");
        assert_eq!(info["meta"]["os_user"], u.name.as_str());
        assert_eq!(info["period"], 32 * 86_400);
        assert_eq!(info["orphan"], true);
        // The user's own agent accepts what was written.
        let check = Command::new("runuser")
            .arg("-u")
            .arg(&u.name)
            .arg("--")
            .arg(&exe.path)
            .args(["check-config"])
            .env_remove("VAULT_ADDR")
            .output()
            .unwrap();
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
        assert_no_leaks("check-config as the user", &String::from_utf8_lossy(&check.stdout));
    }
    let alice_token = std::fs::read_to_string(alice.file("vault-token")).unwrap();
    let bob_token = std::fs::read_to_string(bob.file("vault-token")).unwrap();
    assert_isolated(b, &alice_token, &alice.name, &bob.name);
    assert_isolated(b, &bob_token, &bob.name, &alice.name);

    // Idempotent: nothing minted, nothing rewritten.
    let config_before = std::fs::read(alice.file("config.hcl")).unwrap();
    let run = p.run(b, &roster, true, &["--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = report_json(&run);
    for u in [&alice, &bob] {
        let e = user_entry(&report, &u.name);
        assert_eq!(e["status"], "ok", "{e}");
        assert!(e["actions"].as_array().unwrap().iter().any(|a| a.as_str().unwrap().starts_with("token kept")), "{e}");
    }
    assert_same!(std::fs::read_to_string(alice.file("vault-token")).unwrap(), alice_token);
    assert_eq!(std::fs::read(alice.file("config.hcl")).unwrap(), config_before);

    // --rotate mints a new one and revokes the old.
    let run = p.run(b, &roster, true, &["--rotate", &alice.name]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let rotated = secret(std::fs::read_to_string(alice.file("vault-token")).unwrap());
    assert_ne!(rotated, alice_token);
    let (s, _) = b.api(&b.root, "POST", "auth/token/lookup", Some(json!({ "token": alice_token })));
    assert_eq!(s, 403, "the old token is revoked");
    assert_same!(std::fs::read_to_string(bob.file("vault-token")).unwrap(), bob_token, "bob untouched");
}

#[test]
fn two_users_get_isolated_approles() {
    let b = bao();
    let (alice, bob) = (TestUser::new(), TestUser::new());
    let p = Provisioner::new();
    let roster = p.roster(b, "approle", "32d", &[&alice.name, &bob.name]);
    let run = p.run(b, &roster, true, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let exe = UserExe::new();
    for u in [&alice, &bob] {
        for f in ["role-id", "secret-id"] {
            assert_eq!((mode_of(&u.file(f)), owner(&u.file(f))), (0o600, u.uid), "{f}");
        }
        let check = Command::new("runuser")
            .arg("-u")
            .arg(&u.name)
            .arg("--")
            .arg(&exe.path)
            .args(["check-config"])
            .output()
            .unwrap();
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    }
    let (ta, tb) = (approle_token(b, &alice), approle_token(b, &bob));
    assert_eq!(b.lookup(&ta)["policies"], json!([format!("claude-auth-sync-{}", alice.name)]));
    assert_isolated(b, &ta, &alice.name, &bob.name);
    assert_isolated(b, &tb, &bob.name, &alice.name);

    let secret_before = std::fs::read(alice.file("secret-id")).unwrap();
    let run = p.run(b, &roster, true, &["--json"]);
    assert_eq!(run.code, 0);
    assert_eq!(user_entry(&report_json(&run), &alice.name)["status"], "ok");
    assert_same!(std::fs::read(alice.file("secret-id")).unwrap(), secret_before, "no new secret-id");
}

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
    let roster = p.roster(b, "token", "32d", &names);
    let run = p.run(b, &roster, true, &["--json"]);
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
    assert_eq!(owner(&foreign_dir.agent_dir()), other.uid);

    let e = user_entry(&report, &clean.name);
    assert_eq!(e["status"], "changed", "the other users are still provisioned: {e}");
    assert_eq!(owner(&clean.file("vault-token")), clean.uid);
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
        let run = p.run(b, &roster, true, &[]);
        assert_eq!(run.code, 78, "{bad}: {}", run.stderr);
        assert!(run.stderr.contains("users[1]") && run.stderr.contains(why), "{bad}: {}", run.stderr);
        assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
        let (s, _) = b.api(&b.root, "GET", &format!("sys/policies/acl/claude-auth-sync-{}", sentinel.name), None);
        assert_eq!(s, 404, "{bad}: Vault unchanged");
        assert!(!sentinel.home.join(".config").exists(), "{bad}: disk unchanged");
        assert!(!p.state.exists());
    }
}

#[test]
fn the_routine_run_reports_revoked_and_expired_credentials_without_an_admin_token() {
    let b = bao();
    let (revoked, expired, fine) = (TestUser::new(), TestUser::new(), TestUser::new());
    let p = Provisioner::new();
    let long = p.roster(b, "token", "1h", &[&revoked.name, &fine.name]);
    assert_eq!(p.run(b, &long, true, &[]).code, 0);
    let short = p.roster(b, "token", "2s", &[&expired.name]);
    assert_eq!(p.run(b, &short, true, &[]).code, 0);
    b.revoke(&std::fs::read_to_string(revoked.file("vault-token")).unwrap());
    std::thread::sleep(std::time::Duration::from_millis(3500));
    // A mode that needs no admin to fix.
    std::fs::set_permissions(fine.file("vault-token"), std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();

    let all = p.roster(b, "token", "1h", &[&revoked.name, &expired.name, &fine.name]);
    let run = p.run(b, &all, false, &[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(&format!("  {}: credential revoked", revoked.name)), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("  {}: credential expired", expired.name)), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("{}: changed", fine.name)), "{}", run.stdout);
    assert_eq!(mode_of(&fine.file("vault-token")), 0o600, "the mode was fixed without an admin");
    assert!(!run.stdout.contains(&format!("  {}:", fine.name)), "a healthy user is not listed for an admin");
}

#[test]
fn prune_revokes_a_removed_users_credential_and_keeps_the_data() {
    let b = bao();
    let (stay, leave) = (TestUser::new(), TestUser::new());
    let p = Provisioner::new();
    let both = p.roster(b, "token", "32d", &[&stay.name, &leave.name]);
    assert_eq!(p.run(b, &both, true, &[]).code, 0);
    let leave_token = secret(std::fs::read_to_string(leave.file("vault-token")).unwrap());
    b.kv_put(&leave.name, json!({ "claudeAiOauth": { "kept": true } }));
    let stay_token = std::fs::read_to_string(stay.file("vault-token")).unwrap();

    let only_stay = p.roster(b, "token", "32d", &[&stay.name]);
    let run = p.run(b, &only_stay, true, &["--prune", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let report = report_json(&run);
    assert_eq!(report["pruned"][0]["user"], leave.name.as_str());
    let (s, _) = b.api(&b.root, "POST", "auth/token/lookup", Some(json!({ "token": leave_token })));
    assert_eq!(s, 403, "the removed user's token is revoked");
    let (s, _) = b.api(&b.root, "GET", &format!("sys/policies/acl/claude-auth-sync-{}", leave.name), None);
    assert_eq!(s, 404, "and its policy deleted");
    assert!(!leave.file("vault-token").exists());
    assert_same!(b.kv_latest(&leave.name).unwrap().1, json!({ "claudeAiOauth": { "kept": true } }), "Vault data kept");
    assert_same!(std::fs::read_to_string(stay.file("vault-token")).unwrap(), stay_token);
    b.lookup(&stay_token);
}

#[test]
fn a_dry_run_plans_and_changes_nothing() {
    let b = bao();
    let u = TestUser::new();
    let p = Provisioner::new();
    let roster = p.roster(b, "token", "32d", &[&u.name]);
    let run = p.run(b, &roster, true, &["--dry-run"]);
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
