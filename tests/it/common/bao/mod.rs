//! A real OpenBao, never a mocked one: [`Bao`], a root handle on a server with the
//! helpers the tests set Vault up with (tokens, AppRole, the provisioner's policies, KV,
//! the audit log); the servers themselves ([`server`]: dev servers, TLS); a 3-node Raft
//! cluster ([`raft`]); and a proxy that injects faults between the agent and a server
//! ([`fault_proxy`]).

pub mod fault_proxy;
pub mod raft;
pub mod server;

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};

use super::net::{Call, http};
use super::secrets::secret;

/// How long a request to a server may take before the harness calls it down.
const PATIENCE: Duration = Duration::from_secs(30);

pub struct Bao {
    /// `http://127.0.0.1:PORT`
    pub addr: String,
    pub root: String,
    pub audit_log: PathBuf,
    /// The dev server this handle started; `None` for a handle that does not own one.
    pid: Option<u32>,
}

static SHARED: OnceLock<Bao> = OnceLock::new();

/// The shared dev server, started on first use; tests on it use their own users,
/// tokens, mounts and paths. A test that stops, seals or reconfigures a server starts
/// its own.
pub fn bao() -> &'static Bao {
    SHARED.get_or_init(|| {
        let b = Bao::start();
        // Before any test: the provisioner enables AppRole where it is missing, and must
        // not race a test doing the same on this server.
        b.enable_approle();
        b
    })
}

/// The name of a user's own policy (and of their AppRole role).
pub fn user_policy_name(name: &str) -> String {
    format!("claude-auth-sync-{name}")
}

impl Bao {
    /// A root handle on this server that does not own it (it cannot stop it), e.g. for
    /// a thread that outlives a borrow.
    pub fn handle(&self) -> Bao {
        Bao { addr: self.addr.clone(), root: self.root.clone(), audit_log: self.audit_log.clone(), pid: None }
    }

    pub fn host_port(&self) -> &str {
        self.addr.trim_start_matches("http://")
    }

    pub fn try_api(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> std::io::Result<(u16, Value)> {
        http(self.host_port(), Call { method, path: &format!("/v1/{path}"), token, body }, PATIENCE)
    }

    /// A request with `token`; panics on a network error, returns status and JSON.
    pub fn api(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.try_api(Some(token), method, path, body.as_ref()).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// A request with the root token that must succeed (2xx).
    pub fn root(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.api(&self.root, method, path, body);
        assert!((200..300).contains(&status), "{method} {path} -> {status}: {v}");
        v
    }

    /// Mounts a KV engine at `path`. A version 2 mount upgrades its storage in the
    /// background and refuses requests until then ("Upgrading from non-versioned to
    /// versioned data"): this returns once its config answers.
    pub fn mount_kv(&self, path: &str, version: &str) {
        self.root(
            "POST",
            &format!("sys/mounts/{path}"),
            Some(json!({ "type": "kv", "options": { "version": version } })),
        );
        if version == "2" {
            let deadline = std::time::Instant::now() + PATIENCE;
            while self.api(&self.root, "GET", &format!("{path}/config"), None).0 != 200 {
                assert!(std::time::Instant::now() < deadline, "the KV v2 mount {path} never finished upgrading");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }

    /// Creates an orphan token; returns (token, accessor). The token is registered as a secret.
    pub fn token(&self, spec: Value) -> (String, String) {
        let v = self.root("POST", "auth/token/create-orphan", Some(spec));
        let token = secret(v["auth"]["client_token"].as_str().unwrap());
        (token, v["auth"]["accessor"].as_str().unwrap().to_string())
    }

    /// The token's current state, looked up by root.
    pub fn lookup(&self, token: &str) -> Value {
        self.root("POST", "auth/token/lookup", Some(json!({ "token": token })))["data"].clone()
    }

    pub fn revoke(&self, token: &str) {
        self.root("POST", "auth/token/revoke", Some(json!({ "token": token })));
    }

    /// Enables AppRole at `approle/` once per server.
    pub fn enable_approle(&self) {
        static DONE: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let mut done = DONE.lock().unwrap();
        if !done.contains(&self.addr) {
            self.root("POST", "sys/auth/approle", Some(json!({ "type": "approle" })));
            done.push(self.addr.clone());
        }
    }

    /// Creates role `name` with exactly `policies` (no default policy); returns
    /// (role_id, secret_id), both registered as secrets.
    pub fn approle(&self, name: &str, policies: &[&str]) -> (String, String) {
        self.enable_approle();
        self.root(
            "POST",
            &format!("auth/approle/role/{name}"),
            Some(json!({ "token_policies": policies, "token_no_default_policy": true, "token_period": "1h" })),
        );
        let role_id = self.root("GET", &format!("auth/approle/role/{name}/role-id"), None)["data"]["role_id"]
            .as_str()
            .unwrap()
            .to_string();
        let secret_id = self.root("POST", &format!("auth/approle/role/{name}/secret-id"), None)["data"]["secret_id"]
            .as_str()
            .unwrap()
            .to_string();
        (secret(role_id), secret(secret_id))
    }

    /// The policy the provisioner writes for `name` (on `secret/workstation/claude-users/<name>`);
    /// returns its name.
    pub fn user_policy(&self, name: &str) -> String {
        self.user_policy_on("secret", name)
    }

    /// [`Bao::user_policy`] for a secret on the KV mount `mount`.
    pub fn user_policy_on(&self, mount: &str, name: &str) -> String {
        let policy = claude_auth_sync::provision::policy::hcl(mount, "workstation/claude-users", name, &[]);
        let policy_name = user_policy_name(name);
        self.root("PUT", &format!("sys/policies/acl/{policy_name}"), Some(json!({ "policy": policy })));
        policy_name
    }

    /// A user's own policy (the provisioner's) and an orphan periodic token with exactly
    /// it, as the provisioner mints. Returns (token, accessor).
    pub fn user_token(&self, name: &str) -> (String, String) {
        self.user_token_on("secret", name)
    }

    /// [`Bao::user_token`] for a secret on the KV mount `mount`.
    pub fn user_token_on(&self, mount: &str, name: &str) -> (String, String) {
        let policy = self.user_policy_on(mount, name);
        self.token(json!({
            "policies": [policy],
            "no_default_policy": true,
            "period": "1h",
            "meta": { "os_user": name }
        }))
    }

    /// The user's policy (the provisioner's) with the roster's extra `secrets` granted
    /// too: `secret/workstation/claude-users/<name>/<secret>`.
    pub fn grant_secrets(&self, name: &str, secrets: &[&str]) {
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        let policy = claude_auth_sync::provision::policy::hcl("secret", "workstation/claude-users", name, &secrets);
        self.root("PUT", &format!("sys/policies/acl/{}", user_policy_name(name)), Some(json!({ "policy": policy })));
    }

    /// The latest version and data of a user's KV secret, read by root; `None` when absent.
    pub fn kv_latest(&self, name: &str) -> Option<(u64, Value)> {
        self.kv_latest_at(&format!("workstation/claude-users/{name}"))
    }

    /// [`Bao::kv_latest`] of any path on the `secret` mount.
    pub fn kv_latest_at(&self, path: &str) -> Option<(u64, Value)> {
        let (status, v) = self.api(&self.root, "GET", &format!("secret/data/{path}"), None);
        if status == 404 {
            return None;
        }
        assert_eq!(status, 200, "{v}");
        Some((v["data"]["metadata"]["version"].as_u64().unwrap(), v["data"]["data"].clone()))
    }

    /// Writes a user's KV secret as root (a new version).
    pub fn kv_put(&self, name: &str, data: Value) -> u64 {
        self.kv_put_at(&format!("workstation/claude-users/{name}"), data)
    }

    /// [`Bao::kv_put`] at any path on the `secret` mount.
    pub fn kv_put_at(&self, path: &str, data: Value) -> u64 {
        let v = self.root("POST", &format!("secret/data/{path}"), Some(json!({ "data": data })));
        v["data"]["version"].as_u64().unwrap()
    }

    /// The secret's custom_metadata, read by root.
    pub fn kv_custom_metadata(&self, name: &str) -> Value {
        self.root("GET", &format!("secret/metadata/workstation/claude-users/{name}"), None)["data"]["custom_metadata"]
            .clone()
    }

    /// Every audit entry of a request made with the token of this accessor.
    pub fn audit_requests(&self, accessor: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.audit_log).unwrap_or_default();
        // Accessors are logged in clear (hmac_accessor = false): a line without it is
        // someone else's, and the shared server's log is long.
        text.lines()
            .filter(|l| l.contains(accessor))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["type"] == "request" && e["auth"]["accessor"] == accessor)
            .collect()
    }

    /// Accessors of every live token whose metadata has `key = value`, listed by root.
    pub fn live_tokens(&self, key: &str, value: &str) -> Vec<String> {
        let keys = self.root("LIST", "auth/token/accessors", None)["data"]["keys"].clone();
        let accessors: Vec<String> = serde_json::from_value(keys).unwrap_or_default();
        accessors
            .into_iter()
            .filter(|a| {
                let (status, v) =
                    self.api(&self.root, "POST", "auth/token/lookup-accessor", Some(json!({ "accessor": a })));
                status == 200 && v["data"]["meta"][key] == value
            })
            .collect()
    }

    /// The paths of every request made with the token of this accessor, from the audit log.
    pub fn requests_by(&self, accessor: &str) -> Vec<String> {
        self.audit_requests(accessor)
            .iter()
            .map(|e| e["request"]["path"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}
