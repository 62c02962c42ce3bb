//! The provisioner as root against a real OpenBao, with throwaway OS users: isolation
//! of each user's Vault identity (token and AppRole), symlink and hard-link attacks on
//! the writes into homes (also one swapped in mid-repair), hostile rosters,
//! idempotence, the routine run, --prune, rotations and auth mode switches that leave
//! no old credential alive, the version history a user cannot shorten, KV mounts,
//! cleartext addresses, and the children's environment.
//!
//! Every admin run uses a token with only deploy/vault/provisioner-admin.hcl, the
//! policy operators install, so that file is exactly what the provisioner needs.
//!
//! One module per topic ([`isolation`], [`hostile`], [`routine`], [`credentials`],
//! [`vault`], [`cli`], [`secrets`]); this file holds what they share: the [`Roster`] builder, the
//! [`Provisioner`] runs, the admin token, and the agent run as a provisioned user.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::common::agent::run::{Run, agent};
use crate::common::bao::Bao;
use crate::common::files::write_file;
use crate::common::secrets::{assert_no_leaks, secret};
use crate::common::users::{TestUser, UserExe};
use serde_json::{Value, json};

mod cli;
mod credentials;
mod hostile;
mod isolation;
mod routine;
mod secrets;
mod vault;

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

/// `N` throwaway users whom an admin run has provisioned from `vault`: the users, the
/// provisioner (its state file) and the roster.
fn provisioned_users<const N: usize>(b: &Bao, vault: Roster) -> ([TestUser; N], Provisioner, PathBuf) {
    let users: [TestUser; N] = std::array::from_fn(|_| TestUser::new());
    let p = Provisioner::new();
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    let roster = p.provisioned(b, vault, &names);
    (users, p, roster)
}

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
        let users: Vec<(&str, &[&str])> = users.iter().map(|u| (*u, &[][..])).collect();
        self.roster_with_secrets(vault, &users)
    }

    /// [`Provisioner::roster`] with each user's `secrets:` (none when empty).
    fn roster_with_secrets(&self, vault: Roster, users: &[(&str, &[&str])]) -> PathBuf {
        let mut text = String::from("vault:\n");
        for (key, value) in &vault.0 {
            text.push_str(&format!("  {key}: {value}\n"));
        }
        text.push_str("users:\n");
        for (u, secrets) in users {
            text.push_str(&format!("  - name: {u}\n    email: {u}@example.com\n"));
            if !secrets.is_empty() {
                text.push_str(&format!("    secrets: [{}]\n", secrets.join(", ")));
            }
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

fn approle_token(b: &Bao, u: &TestUser) -> String {
    let role_id = std::fs::read_to_string(u.file("role-id")).unwrap();
    let secret_id = secret(std::fs::read_to_string(u.file("secret-id")).unwrap());
    let (s, v) = b.api("", "POST", "auth/approle/login", Some(json!({ "role_id": role_id, "secret_id": secret_id })));
    assert_eq!(s, 200, "{v}");
    secret(v["auth"]["client_token"].as_str().unwrap())
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
