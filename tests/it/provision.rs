//! The provisioner as root against a real OpenBao, with throwaway OS users: isolation
//! of each user's Vault identity (token and AppRole), symlink and hard-link attacks on
//! the writes into homes (also one swapped in mid-repair), hostile rosters,
//! idempotence, the routine run, --prune, rotations and auth mode switches that leave
//! no old credential alive, the version history a user cannot shorten, KV mounts,
//! cleartext addresses, and the children's environment.
//!
//! Every admin run uses a token with only deploy/vault/provisioner-admin.hcl, the
//! policy operators install, so that file is exactly what the provisioner needs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::common::agent::run::{Run, agent};
use crate::common::bao::server::cleartext_listener;
use crate::common::bao::{Bao, bao};
use crate::common::files::{mode_of, uid_of, write_file};
use crate::common::net::{free_port, non_loopback_ipv4};
use crate::common::secrets::{assert_no_leaks, random_secret, secret};
use crate::common::users::{TestUser, UserExe};
use serde_json::{Value, json};

/// The agent run as `u` with a clean environment and `args`; asserts no leak in its output.
fn as_user(u: &TestUser, args: &[&str]) -> std::process::Output {
    // A copy the user can execute, whatever the checkout's directory allows.
    let exe = UserExe::new();
    let out = Command::new("runuser")
        .args(["-u", &u.name, "--"])
        .arg(&exe.path)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_no_leaks(&format!("claude-auth-sync {} as {}", args.join(" "), u.name), &all);
    out
}

/// `check-config` as the user must pass: their agent accepts what was written. Its output.
fn check_config_as(u: &TestUser) -> String {
    let out = as_user(u, &["check-config"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The admin policy operators install.
const ADMIN_POLICY: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/vault/provisioner-admin.hcl"));

/// A token with only `policy` (named `name`, outside claude-auth-sync-*); registered as a secret.
fn token_with_policy(b: &Bao, name: &str, policy: &str) -> String {
    b.root("PUT", &format!("sys/policies/acl/{name}"), Some(json!({ "policy": policy })));
    b.token(json!({ "policies": [name], "no_default_policy": true, "period": "1h" })).0
}

/// A token with only the shipped admin policy, its KV paths moved to `mount` (the file
/// says to edit them when the roster's kv_mount differs); one per server and mount.
fn admin_token(b: &Bao, mount: &str) -> String {
    static TOKENS: Mutex<Vec<(String, String, String)>> = Mutex::new(Vec::new());
    let mut tokens = TOKENS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, t)) = tokens.iter().find(|(addr, m, _)| *addr == b.addr && m == mount) {
        return t.clone();
    }
    assert!(ADMIN_POLICY.contains("\"secret/metadata/workstation/claude-users/*\""), "the admin policy changed shape");
    let policy = ADMIN_POLICY.replace("\"secret/metadata/", &format!("\"{mount}/metadata/"));
    let token = token_with_policy(b, &format!("provision-claude-auth-sync-{}", mount.replace('/', "-")), &policy);
    tokens.push((b.addr.clone(), mount.to_string(), token.clone()));
    token
}

/// The Vault KV path of a user's secret.
fn kv(mount: &str, what: &str, user: &str) -> String {
    format!("{mount}/{what}/workstation/claude-users/{user}")
}

/// A roster's `vault:` section, key by key, in order.
struct Roster(Vec<(&'static str, String)>);

impl Roster {
    /// `address` only.
    fn at(address: &str) -> Roster {
        Roster(vec![("address", address.to_string())])
    }

    /// No `address`: it comes from VAULT_ADDR or BAO_ADDR.
    fn without_address() -> Roster {
        Roster(Vec::new())
    }

    /// `b`'s address, `auth: token` and `token_period: 32d`: what most tests provision.
    fn token(b: &Bao) -> Roster {
        Roster::at(&b.addr).auth("token").token_period("32d")
    }

    /// [`Roster::token`] with `auth: approle`.
    fn approle(b: &Bao) -> Roster {
        Roster::token(b).auth("approle")
    }

    /// `auth`: `token` or `approle`.
    fn auth(self, mode: &str) -> Roster {
        self.set("auth", mode)
    }

    fn token_period(self, period: &str) -> Roster {
        self.set("token_period", period)
    }

    fn kv_mount(self, mount: &str) -> Roster {
        self.set("kv_mount", mount)
    }

    fn allow_cleartext_tokens(self) -> Roster {
        self.set("allow_cleartext_tokens", "true")
    }

    fn set(mut self, key: &'static str, value: &str) -> Roster {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.0.push((key, value.to_string())),
        }
        self
    }
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

    /// Writes a roster with `vault` as its `vault:` section and `users`, each with an email.
    fn roster(&self, vault: Roster, users: &[&str]) -> PathBuf {
        let mut text = String::from("vault:\n");
        for (key, value) in &vault.0 {
            text.push_str(&format!("  {key}: {value}\n"));
        }
        text.push_str("users:\n");
        for u in users {
            text.push_str(&format!("  - name: {u}\n    email: {u}@example.com\n"));
        }
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        write_file(self.dir.path(), &format!("roster-{n}.yaml"), &text, 0o600)
    }

    /// A roster ([`Provisioner::roster`]) that an admin run has provisioned.
    fn provisioned(&self, b: &Bao, vault: Roster, users: &[&str]) -> PathBuf {
        let roster = self.roster(vault, users);
        let run = self.admin_run(b, &roster, &[]);
        assert_eq!(run.code, 0, "provision:\n{}\n{}", run.stdout, run.stderr);
        roster
    }

    /// `provision` with the shipped admin policy's token and `extra` flags.
    fn admin_run(&self, b: &Bao, roster: &Path, extra: &[&str]) -> Run {
        self.run_env(roster, &[("VAULT_TOKEN", &admin_token(b, "secret"))], extra)
    }

    /// `provision` without an admin token: the routine check.
    fn routine_run(&self, roster: &Path) -> Run {
        self.run_env(roster, &[], &[])
    }

    /// `provision` with exactly `env` (an admin token, VAULT_ADDR, ...).
    fn run_env(&self, roster: &Path, env: &[(&str, &str)], extra: &[&str]) -> Run {
        let mut args = vec!["provision", "--roster", roster.to_str().unwrap(), "--state", self.state.to_str().unwrap()];
        args.extend_from_slice(extra);
        agent(&args, env)
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
    let roster = p.provisioned(b, Roster::token(b), &[&alice.name, &bob.name]);
    for u in [&alice, &bob] {
        let token_file = u.file("vault-token");
        assert_eq!((mode_of(&token_file), uid_of(&token_file)), (0o600, u.uid));
        assert_eq!((mode_of(&u.agent_dir()), uid_of(&u.agent_dir())), (0o700, u.uid));
        assert_eq!(uid_of(&u.file("config.hcl")), u.uid);
        let token = secret(std::fs::read_to_string(&token_file).unwrap());
        let info = b.lookup(&token);
        assert_eq!(info["policies"], json!([format!("claude-auth-sync-{}", u.name)]), "that policy only");
        assert_eq!(info["meta"]["os_user"], u.name.as_str());
        // Periodic through the user's own token role, which allows that policy only.
        let role = format!("claude-auth-sync-{}", u.name);
        assert_eq!(info["path"], format!("auth/token/create/{role}"));
        assert_eq!(info["creation_ttl"], 32 * 86_400);
        let r = b.root("GET", &format!("auth/token/roles/{role}"), None)["data"].clone();
        assert_eq!((&r["token_period"], &r["allowed_policies"]), (&json!(32 * 86_400), &json!([role])));
        assert_eq!(info["orphan"], true);
        // The user's own agent accepts what was written.
        check_config_as(u);
    }
    let alice_token = std::fs::read_to_string(alice.file("vault-token")).unwrap();
    let bob_token = std::fs::read_to_string(bob.file("vault-token")).unwrap();
    assert_isolated(b, &alice_token, &alice.name, &bob.name);
    assert_isolated(b, &bob_token, &bob.name, &alice.name);

    // Idempotent: nothing minted, nothing rewritten.
    let config_before = std::fs::read(alice.file("config.hcl")).unwrap();
    let run = p.admin_run(b, &roster, &["--json"]);
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
    let run = p.admin_run(b, &roster, &["--rotate", &alice.name]);
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
    let roster = p.provisioned(b, Roster::approle(b), &[&alice.name, &bob.name]);
    for u in [&alice, &bob] {
        for f in ["role-id", "secret-id"] {
            assert_eq!((mode_of(&u.file(f)), uid_of(&u.file(f))), (0o600, u.uid), "{f}");
        }
        check_config_as(u);
    }
    let (ta, tb) = (approle_token(b, &alice), approle_token(b, &bob));
    assert_eq!(b.lookup(&ta)["policies"], json!([format!("claude-auth-sync-{}", alice.name)]));
    assert_isolated(b, &ta, &alice.name, &bob.name);
    assert_isolated(b, &tb, &bob.name, &alice.name);

    let secret_before = std::fs::read(alice.file("secret-id")).unwrap();
    let run = p.admin_run(b, &roster, &["--json"]);
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

#[test]
fn the_routine_run_reports_revoked_and_expired_credentials_without_an_admin_token() {
    let b = bao();
    let (revoked, expired, fine) = (TestUser::new(), TestUser::new(), TestUser::new());
    let p = Provisioner::new();
    p.provisioned(b, Roster::token(b).token_period("1h"), &[&revoked.name, &fine.name]);
    p.provisioned(b, Roster::token(b).token_period("2s"), &[&expired.name]);
    b.revoke(&std::fs::read_to_string(revoked.file("vault-token")).unwrap());
    std::thread::sleep(std::time::Duration::from_millis(3500));
    // A mode that needs no admin to fix.
    std::fs::set_permissions(fine.file("vault-token"), std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();

    let all = p.roster(Roster::token(b).token_period("1h"), &[&revoked.name, &expired.name, &fine.name]);
    let run = p.routine_run(&all);
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
    p.provisioned(b, Roster::token(b), &[&stay.name, &leave.name]);
    let leave_token = secret(std::fs::read_to_string(leave.file("vault-token")).unwrap());
    b.kv_put(&leave.name, json!({ "claudeAiOauth": { "kept": true } }));
    let stay_token = std::fs::read_to_string(stay.file("vault-token")).unwrap();

    let only_stay = p.roster(Roster::token(b), &[&stay.name]);
    let run = p.admin_run(b, &only_stay, &["--prune", "--json"]);
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

/// Whether Vault still knows `token` (looked up by root).
fn alive(b: &Bao, token: &str) -> bool {
    let (s, _) = b.api(&b.root, "POST", "auth/token/lookup", Some(json!({ "token": token })));
    s == 200
}

/// Logs in with `role_id` and `secret_id`: the HTTP status.
fn approle_login(b: &Bao, role_id: &str, secret_id: &str) -> u16 {
    b.api("", "POST", "auth/approle/login", Some(json!({ "role_id": role_id.trim(), "secret_id": secret_id.trim() }))).0
}

/// The secret-id accessors of a user's AppRole role, listed by root.
fn secret_ids(b: &Bao, u: &TestUser) -> Vec<String> {
    let (s, v) = b.api(&b.root, "LIST", &format!("auth/approle/role/claude-auth-sync-{}/secret-id", u.name), None);
    if s == 404 {
        return Vec::new();
    }
    serde_json::from_value(v["data"]["keys"].clone()).unwrap()
}

/// Writes `text` into the user's agent directory as a file the user owns.
fn user_file(u: &TestUser, name: &str, text: &str) -> PathBuf {
    let p = write_file(&u.agent_dir(), name, text, 0o600);
    std::os::unix::fs::chown(&p, Some(u.uid), Some(u.uid)).unwrap();
    p
}

fn read_secret(p: &Path) -> String {
    secret(std::fs::read_to_string(p).unwrap().trim().to_string())
}

/// Issue 10.1: a re-mint revokes the previous token by the accessor the state file
/// remembers, whatever the home holds (a garbled or a missing vault-token), and says so.
#[test]
fn a_remint_revokes_the_remembered_token_whatever_the_home_holds() {
    let b = bao();
    let u = TestUser::new();
    let p = Provisioner::new();
    let roster = p.provisioned(b, Roster::token(b), &[&u.name]);
    let first = read_secret(&u.file("vault-token"));

    user_file(&u, "vault-token", "not-a-token-at-all");
    let run = p.admin_run(b, &roster, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!alive(b, &first), "the token the garbled file no longer held is revoked");
    assert!(run.stdout.contains("vault-token holds no token Vault knows"), "{}", run.stdout);
    assert!(run.stdout.contains("revoked the previous token remembered in the state file"), "{}", run.stdout);
    let second = read_secret(&u.file("vault-token"));
    assert!(alive(b, &second));

    std::fs::remove_file(u.file("vault-token")).unwrap();
    let run = p.admin_run(b, &roster, &["--rotate", &u.name]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!alive(b, &second), "a missing vault-token does not keep the old token alive");
    let third = read_secret(&u.file("vault-token"));
    assert_eq!(b.live_tokens("os_user", &u.name), vec![b.lookup(&third)["accessor"].as_str().unwrap().to_string()]);
}

/// Issue 10.1, AppRole: a new secret-id leaves the role with exactly that one, whatever
/// the home held; --rotate also revokes the login the agent kept from the old one.
#[test]
fn a_new_secret_id_leaves_the_role_with_that_one_only() {
    let b = bao();
    let u = TestUser::new();
    let p = Provisioner::new();
    let roster = p.provisioned(b, Roster::approle(b), &[&u.name]);
    let role_id = std::fs::read_to_string(u.file("role-id")).unwrap();
    let first = read_secret(&u.file("secret-id"));

    user_file(&u, "secret-id", "garbled");
    let run = p.admin_run(b, &roster, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(secret_ids(b, &u).len(), 1, "the role lists one secret-id");
    assert_ne!(approle_login(b, &role_id, &first), 200, "the old secret-id no longer logs in");
    assert!(run.stdout.contains("destroyed 1 previous secret-id(s)"), "{}", run.stdout);
    let second = read_secret(&u.file("secret-id"));

    // The agent's kept login, from the current secret-id.
    let kept = approle_token(b, &u);
    user_file(&u, "approle-token", &kept);
    let run = p.admin_run(b, &roster, &["--rotate", &u.name]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("revoked the AppRole token the agent kept"), "{}", run.stdout);
    assert_eq!(secret_ids(b, &u).len(), 1);
    assert_ne!(approle_login(b, &role_id, &second), 200);
    assert!(!alive(b, &kept), "the login from the rotated secret-id is revoked");
    assert_eq!(approle_login(b, &role_id, &read_secret(&u.file("secret-id"))), 200);
}

/// Issue 10.2: the user's policy lets the agent set custom_metadata only; the admin run
/// resets every version setting it owns to the roster's values.
#[test]
fn a_user_cannot_shorten_the_version_history() {
    let b = bao();
    let u = TestUser::new();
    let p = Provisioner::new();
    let roster = p.provisioned(b, Roster::token(b), &[&u.name]);
    let token = read_secret(&u.file("vault-token"));
    let meta = kv("secret", "metadata", &u.name);
    let (s, v) = b.api(&token, "POST", &kv("secret", "data", &u.name), Some(json!({ "data": { "x": 1 } })));
    assert_eq!(s, 200, "{v}");
    for abuse in
        [json!({ "max_versions": 1 }), json!({ "delete_version_after": "1s" }), json!({ "cas_required": true })]
    {
        let (s, _) = b.api(&token, "POST", &meta, Some(abuse.clone()));
        assert_eq!(s, 403, "the user may not write {abuse}");
    }
    let (s, v) = b.api(&token, "POST", &meta, Some(json!({ "custom_metadata": { "host": "ws1" } })));
    assert_eq!(s, 204, "the agent's metadata write works: {v}");
    let (s, _) = b.api(&token, "GET", &meta, None);
    assert_eq!(s, 200, "the agent may read its metadata (for metadata check-and-set)");

    // Settings changed behind the provisioner's back (an older policy allowed it): reset.
    b.root("POST", &meta, Some(json!({ "max_versions": 1, "delete_version_after": "1h", "cas_required": true })));
    let run = p.admin_run(b, &roster, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("set max_versions=10, delete_version_after=0s, cas_required=false"), "{}", run.stdout);
    let m = b.root("GET", &meta, None)["data"].clone();
    assert_eq!(
        (&m["max_versions"], &m["delete_version_after"], &m["cas_required"]),
        (&json!(10), &json!("0s"), &json!(false))
    );
    assert_eq!(m["custom_metadata"]["host"], "ws1", "the agent's facts are kept");
    let run = p.admin_run(b, &roster, &[]);
    assert!(!run.stdout.contains("set max_versions"), "nothing to reset: {}", run.stdout);
}

/// Issue 10.3: an admin token without `auth/token/lookup` stops the run with the missing
/// capability named, instead of minting a token every run; an unknown admin token is
/// said to be unknown, and nothing is changed.
#[test]
fn an_admin_token_that_lacks_a_capability_stops_the_run_and_names_it() {
    let b = bao();
    let (u, later, untouched) = (TestUser::new(), TestUser::new(), TestUser::new());
    let p = Provisioner::new();
    let lookup_block = "path \"auth/token/lookup\" {\n  capabilities = [\"update\"]\n}\n";
    assert!(ADMIN_POLICY.contains(lookup_block));
    let weak = token_with_policy(b, &format!("provision-weak-{}", u.name), &ADMIN_POLICY.replace(lookup_block, ""));
    let roster = p.roster(Roster::token(b), &[&u.name, &later.name]);
    for i in 0..3 {
        let run = p.run_env(&roster, &[("VAULT_TOKEN", &weak)], &[]);
        if i == 0 {
            // Nothing to look up yet: the first run mints.
            assert_eq!(run.code, 0, "{}", run.stdout);
            continue;
        }
        assert_eq!(run.code, 1, "{}", run.stdout);
        for want in ["Stopped:", "path \"auth/token/lookup\"", "\"update\"", "provisioner-admin.hcl", "not attempted"] {
            assert!(run.stdout.contains(want), "names {want}: {}", run.stdout);
        }
    }
    assert_eq!(b.live_tokens("os_user", &u.name).len(), 1, "three runs, one token");

    let nobody = Provisioner::new();
    let roster = nobody.roster(Roster::token(b), &[&untouched.name]);
    let unknown = random_secret("s.unknown-admin-");
    let run = nobody.run_env(&roster, &[("VAULT_TOKEN", &unknown)], &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("the admin token is not valid") && run.stderr.contains("nothing was changed"),
        "{}",
        run.stderr
    );
    assert!(!untouched.home.join(".config").exists() && !nobody.state.exists());
}

/// Issue 10.4: switching the roster's auth mode retires the other mode's credential
/// (revoked, its files removed) and rewrites only the auth block of the user's config;
/// --prune removes both modes' files.
#[test]
fn an_auth_mode_switch_retires_the_old_credential_and_rewrites_the_auth_block() {
    let b = bao();
    let u = TestUser::new();
    let p = Provisioner::new();
    let as_token = p.roster(Roster::token(b), &[&u.name]);
    let as_approle = p.roster(Roster::approle(b), &[&u.name]);
    assert_eq!(p.admin_run(b, &as_token, &[]).code, 0);
    let token = read_secret(&u.file("vault-token"));
    let mut edited = std::fs::read_to_string(u.file("config.hcl")).unwrap();
    edited.push_str("\n# my own setting\nenv_shadowing = \"fail\"\n");
    user_file(&u, "config.hcl", &edited);

    let run = p.admin_run(b, &as_approle, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!alive(b, &token), "the periodic token is revoked");
    assert!(!u.file("vault-token").exists());
    let (s, _) = b.api(&b.root, "GET", &format!("auth/token/roles/claude-auth-sync-{}", u.name), None);
    assert_eq!(s, 404, "no token can be minted for the user any more");
    let config = std::fs::read_to_string(u.file("config.hcl")).unwrap();
    assert!(
        config.contains("method \"approle\"") && config.contains("# my own setting\nenv_shadowing = \"fail\""),
        "{config}"
    );
    let shown = check_config_as(&u);
    assert!(shown.contains("method \"approle\"") && shown.contains("env_shadowing = \"fail\""), "{shown}");

    // The agent's kept AppRole login, then back to token.
    let role_id = std::fs::read_to_string(u.file("role-id")).unwrap();
    let secret_id = read_secret(&u.file("secret-id"));
    let kept = approle_token(b, &u);
    user_file(&u, "approle-token", &kept);
    let run = p.admin_run(b, &as_token, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let (s, _) = b.api(&b.root, "GET", &format!("auth/approle/role/claude-auth-sync-{}", u.name), None);
    assert_eq!(s, 404, "the role is deleted");
    assert_ne!(approle_login(b, &role_id, &secret_id), 200, "the secret-id no longer logs in");
    assert!(!alive(b, &kept), "the agent's kept AppRole token is revoked");
    for f in ["role-id", "secret-id", "approle-token"] {
        assert!(!u.file(f).exists(), "{f} removed");
    }
    let back = std::fs::read_to_string(u.file("config.hcl")).unwrap();
    assert_eq!(back, edited, "back to token: the user's file as they left it");
    check_config_as(&u);

    // Leftovers of the other mode, then the user leaves: every credential file goes.
    user_file(&u, "role-id", "stale-role-id");
    user_file(&u, "secret-id", "stale-secret-id");
    let token = read_secret(&u.file("vault-token"));
    let nobody = p.roster(Roster::token(b), &[]);
    let run = p.admin_run(b, &nobody, &["--prune"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!alive(b, &token));
    for f in ["vault-token", "role-id", "secret-id"] {
        assert!(!u.file(f).exists(), "prune removes {f}");
    }
}

/// Issue 10.5: a roster address of http:// to another machine is refused before any
/// change (the admin token and every user's would travel in clear text), unless
/// `allow_cleartext_tokens: true`, which is then carried into the users' configs.
#[test]
fn a_cleartext_address_to_another_machine_is_refused_unless_opted_in() {
    let ip = non_loopback_ipv4();
    let port = free_port();
    let b = Bao::start_with_listener(cleartext_listener(&format!("{ip}:{port}")));
    let u = TestUser::new();
    let p = Provisioner::new();
    let admin = admin_token(&b, "secret");
    let remote = Roster::at(&format!("http://{ip}:{port}")).auth("token");
    let run = p.run_env(&p.roster(remote, &[&u.name]), &[("VAULT_TOKEN", &admin)], &[]);
    assert_eq!(run.code, 78, "{}", run.stdout);
    assert!(run.stderr.contains("clear text") && run.stderr.contains("allow_cleartext_tokens: true"), "{}", run.stderr);
    assert!(!u.home.join(".config").exists() && !p.state.exists(), "nothing was changed");

    let remote = Roster::at(&format!("http://{ip}:{port}")).auth("token");
    let opted_in = p.roster(remote.allow_cleartext_tokens(), &[&u.name]);
    let run = p.run_env(&opted_in, &[("VAULT_TOKEN", &admin)], &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let config = std::fs::read_to_string(u.file("config.hcl")).unwrap();
    assert!(config.contains("allow_cleartext_tokens = true"), "{config}");
    check_config_as(&u);
}

/// Issue 10.7: the KV mount is checked once, before anything changes: a nested mount
/// works, KV v1, a missing mount and a path inside a mount are refused with what to do.
#[test]
fn the_kv_mount_is_checked_first_and_nested_mounts_work() {
    let b = bao();
    let u = TestUser::new();
    let p = Provisioner::new();
    let tag = &random_secret("mount-")[6..14];
    let nested = format!("team{tag}/kv");
    b.root("POST", &format!("sys/mounts/{nested}"), Some(json!({ "type": "kv", "options": { "version": "2" } })));
    let roster = p.roster(Roster::at(&b.addr).kv_mount(&nested), &[&u.name]);
    let run = p.run_env(&roster, &[("VAULT_TOKEN", &admin_token(b, &nested))], &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let token = read_secret(&u.file("vault-token"));
    let (s, v) = b.api(&token, "POST", &kv(&nested, "data", &u.name), Some(json!({ "data": { "x": 1 } })));
    assert_eq!(s, 200, "the user writes under the nested mount: {v}");
    let config = std::fs::read_to_string(u.file("config.hcl")).unwrap();
    assert!(config.contains(&format!("secret = \"{nested}/workstation/claude-users/")), "{config}");

    let v1 = format!("v1{tag}");
    b.root("POST", &format!("sys/mounts/{v1}"), Some(json!({ "type": "kv", "options": { "version": "1" } })));
    let other = TestUser::new();
    for (mount, why) in [
        (v1.clone(), "KV version 1".to_string()),
        (format!("none{tag}"), "has no mount there".to_string()),
        (format!("{nested}/sub"), format!("inside the mount {nested}/")),
    ] {
        let roster = p.roster(Roster::at(&b.addr).kv_mount(&mount), &[&other.name]);
        let run = p.run_env(&roster, &[("VAULT_TOKEN", &admin_token(b, &mount))], &[]);
        assert_eq!(run.code, 1, "{mount}: {}", run.stdout);
        assert!(run.stderr.contains(&why) && run.stderr.contains("nothing was changed"), "{mount}: {}", run.stderr);
        let (s, _) = b.api(&b.root, "GET", &format!("sys/policies/acl/claude-auth-sync-{}", other.name), None);
        assert_eq!(s, 404, "{mount}: no policy written");
        assert!(!other.home.join(".config").exists(), "{mount}: nothing in the home");
    }
    let (s, v) = b.api(&b.root, "LIST", &format!("{v1}/metadata/workstation/claude-users"), None);
    assert_eq!(s, 404, "no junk metadata written into the KV v1 mount: {v}");
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
    let u = TestUser::new();
    let p = Provisioner::new();
    let roster = p.provisioned(b, Roster::token(b), &[&u.name]);
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

/// Issue 9.9: AppRole logins do not pile up: the routine check revokes its own login
/// and the agent keeps one login across runs. Live tokens counted by root.
#[test]
fn approle_checks_and_agent_runs_leave_one_live_token() {
    let b = bao();
    let u = TestUser::new();
    let p = Provisioner::new();
    let roster = p.provisioned(b, Roster::approle(b), &[&u.name]);
    let config = std::fs::read_to_string(u.file("config.hcl")).unwrap();
    let auth_only = user_file(&u, "auth-only.hcl", &format!("{config}\nexit_after_auth = true\n"));
    for _ in 0..4 {
        let out = as_user(&u, &["run", "--once", "--config", auth_only.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let routine = p.routine_run(&roster);
        assert_eq!(routine.code, 0, "{}", routine.stdout);
        assert!(routine.stdout.contains("AppRole login works"), "{}", routine.stdout);
    }
    let live = b.live_tokens("role_name", &format!("claude-auth-sync-{}", u.name));
    assert_eq!(live.len(), 1, "4 agent runs and 4 routine checks leave {} live tokens", live.len());
    let kept = u.file("approle-token");
    assert_eq!((mode_of(&kept), uid_of(&kept)), (0o600, u.uid));
    assert_eq!(b.lookup(&read_secret(&kept))["accessor"], live[0].as_str(), "the live one is the agent's");
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

/// Issue 9.11: the routine run uses the agent's identity check: a token carrying
/// another user's policy besides its own is drift.
#[test]
fn the_routine_run_finds_a_token_that_can_do_more_than_its_user() {
    let b = bao();
    let (u, other) = (TestUser::new(), TestUser::new());
    let p = Provisioner::new();
    let roster = p.provisioned(b, Roster::token(b), &[&u.name, &other.name]);
    let (wide, _) = b.token(json!({
        "policies": [format!("claude-auth-sync-{}", u.name), format!("claude-auth-sync-{}", other.name)],
        "no_default_policy": true, "period": "1h", "meta": { "os_user": u.name }
    }));
    user_file(&u, "vault-token", &wide);
    let run = p.routine_run(&roster);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("  {}: drift: policies also grant claude-auth-sync-{}", u.name, other.name)),
        "{}",
        run.stdout
    );
}

/// Issue 9.12: the roster's address may come from VAULT_ADDR or BAO_ADDR, as in the
/// runbook's `sudo --preserve-env=VAULT_ADDR,VAULT_TOKEN`; neither is a clear error.
#[test]
fn the_address_falls_back_to_vault_addr_and_bao_addr() {
    let b = bao();
    let u = TestUser::new();
    let p = Provisioner::new();
    let roster = p.roster(Roster::without_address().auth("token"), &[&u.name]);
    let admin = admin_token(b, "secret");
    for var in ["VAULT_ADDR", "BAO_ADDR"] {
        let run = p.run_env(&roster, &[("VAULT_TOKEN", &admin), (var, &b.addr)], &[]);
        assert_eq!(run.code, 0, "{var}: {}\n{}", run.stdout, run.stderr);
    }
    let config = std::fs::read_to_string(u.file("config.hcl")).unwrap();
    assert!(config.contains(&format!("address = \"{}\"", b.addr)), "{config}");
    let run = p.run_env(&roster, &[("VAULT_TOKEN", &admin)], &[]);
    assert_eq!(run.code, 78, "{}", run.stderr);
    assert!(run.stderr.contains("neither VAULT_ADDR nor BAO_ADDR is set"), "{}", run.stderr);
}
