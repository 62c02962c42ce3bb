//! [`Agent`]: one user of the agent, as the provisioner leaves them: their own Vault
//! identity (a periodic token with exactly their policy, or their AppRole role), a
//! stand-in Claude Code, a config ([`AgentConfig`], which a test edits with
//! [`Agent::configure`]), and captures of the private log and the journal, each
//! leak-checked.

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;

use super::config::{AgentConfig, Method, Template};
use super::run::{Run, Running, agent_start};
use crate::common::bao::{Bao, user_policy_name};
use crate::common::claude::stand_in::{FakeClaude, HOUR_MS, now_ms, oauth};
use crate::common::files::write_file;
use crate::common::secrets::{access_token, assert_no_leaks, random_secret, refresh_token};

/// How the user's agent logs in to Vault.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Auth {
    /// An orphan periodic token in a file, as the provisioner's token mode writes it.
    TokenFile,
    /// The user's own AppRole role (`claude-auth-sync-NAME`): role-id and secret-id files.
    AppRole,
}

/// Where an [`Agent`] finds Vault and how it logs in; [`AgentBuilder::build`] makes it.
pub struct AgentBuilder<'b> {
    b: &'b Bao,
    vault_addr: String,
    timeout: String,
    auth: Auth,
    mount: String,
}

impl<'b> AgentBuilder<'b> {
    /// The `vault.address` the agent talks to (a fault proxy, a load balancer) instead of the server's.
    pub fn vault_addr(mut self, addr: &str) -> Self {
        self.vault_addr = addr.to_string();
        self
    }

    /// `vault.timeout` (default 5s).
    pub fn vault_timeout(mut self, timeout: &str) -> Self {
        self.timeout = timeout.to_string();
        self
    }

    /// How the agent logs in (default [`Auth::TokenFile`]).
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// The KV mount of the user's secret (default `secret`).
    pub fn kv_mount(mut self, mount: &str) -> Self {
        self.mount = mount.to_string();
        self
    }

    /// A new user with their own Vault identity and a config: `vault` (one quick retry),
    /// `auto_auth` with the user's `expect`, one `template` for the login, and `log`
    /// with the journal captured.
    pub fn build(self) -> Agent<'b> {
        let b = self.b;
        let dir = tempfile::tempdir().unwrap();
        let name = format!("u{}", &random_secret("name-")[5..17]);
        let policy = user_policy_name(&name);
        let (method, identity, accessor) = match self.auth {
            Auth::TokenFile => {
                let (token, accessor) = b.user_token_on(&self.mount, &name);
                let token_file = write_file(dir.path(), "vault-token", &token, 0o600);
                (Method::token_file(&token_file), ("os_user", name.clone()), accessor)
            }
            Auth::AppRole => {
                b.user_policy_on(&self.mount, &name);
                let (role_id, secret_id) = b.approle(&policy, &[&policy]);
                let role_file = write_file(dir.path(), "role-id", &role_id, 0o600);
                let secret_file = write_file(dir.path(), "secret-id", &secret_id, 0o600);
                let method = Method::approle(&role_file, &secret_file).mount_path("auth/approle");
                (method, ("role_name", policy.clone()), String::new())
            }
        };
        let claude = FakeClaude::new(dir.path());
        let secret_path = format!("{}/workstation/claude-users/{name}", self.mount);
        let config = AgentConfig::new(&self.vault_addr)
            .timeout(&self.timeout)
            .quick_retry()
            .method(method)
            .expect(&[&policy], &[(identity.0, &identity.1)])
            .template(Template::new(&secret_path))
            .log(&dir.path().join("state/claude-auth-sync/sync.log"))
            .journald_socket(&dir.path().join("journal.sock"));
        let cfg = config.write(dir.path(), "config.hcl");
        let log = dir.path().join("state/claude-auth-sync/sync.log");
        let journal = UnixDatagram::bind(dir.path().join("journal.sock")).unwrap();
        journal.set_nonblocking(true).unwrap();
        Agent {
            b,
            dir,
            claude,
            name,
            accessor,
            cfg,
            secret_path,
            config: Mutex::new(config),
            log,
            journal,
            received: Default::default(),
        }
    }
}

/// A run in progress (see [`Agent::start`]).
pub struct Started {
    pub agent: Running,
    lines_before: usize,
}

pub struct Agent<'b> {
    pub b: &'b Bao,
    pub dir: tempfile::TempDir,
    pub claude: FakeClaude,
    pub name: String,
    /// The accessor of the user's token file token; empty for [`Auth::AppRole`], where
    /// every login mints a new token.
    pub accessor: String,
    pub cfg: PathBuf,
    /// `MOUNT/workstation/claude-users/NAME`: the user's secret.
    pub secret_path: String,
    config: Mutex<AgentConfig>,
    /// The private log the config names.
    log: PathBuf,
    journal: UnixDatagram,
    /// Journal entries received so far, leak-checked on arrival.
    received: Mutex<Vec<HashMap<String, String>>>,
}

impl<'b> Agent<'b> {
    /// A user logging in with a token file, talking to `b` directly.
    pub fn new(b: &'b Bao) -> Agent<'b> {
        Agent::builder(b).build()
    }

    pub fn builder(b: &'b Bao) -> AgentBuilder<'b> {
        AgentBuilder {
            b,
            vault_addr: b.addr.clone(),
            timeout: "5s".into(),
            auth: Auth::TokenFile,
            mount: "secret".into(),
        }
    }

    /// The agent with its config edited.
    pub fn configure(self, edit: impl FnOnce(AgentConfig) -> AgentConfig) -> Agent<'b> {
        self.reconfigure(edit);
        self
    }

    /// The agent with `text` as its config.hcl instead of the built one (a file of
    /// docs/examples as it is), whose `log.path` is `log`.
    pub fn with_config_text(mut self, text: &str, log: PathBuf) -> Agent<'b> {
        std::fs::write(&self.cfg, text).unwrap();
        self.log = log;
        self
    }

    /// Edits the config and rewrites config.hcl.
    pub fn reconfigure(&self, edit: impl FnOnce(AgentConfig) -> AgentConfig) {
        let mut config = self.config.lock().unwrap();
        *config = edit(config.clone());
        std::fs::write(&self.cfg, config.render()).unwrap();
    }
}

impl Agent<'_> {
    pub fn run(&self) -> Run {
        self.run_with(&[])
    }

    /// Two runs at once, as two timers firing together would.
    pub fn run_two_at_once(&self) -> [Run; 2] {
        std::thread::scope(|scope| {
            let first = scope.spawn(|| self.run());
            let second = scope.spawn(|| self.run());
            [first.join().unwrap(), second.join().unwrap()]
        })
    }

    /// Runs `run --once` with `extra_env`; leak-checks the private log and the journal capture as well.
    pub fn run_with(&self, extra_env: &[(&str, &str)]) -> Run {
        self.run_cmd(Command::new(env!("CARGO_BIN_EXE_claude-auth-sync")), extra_env)
    }

    /// [`Agent::run_with`] with a prepared command (another copy of the binary, another uid).
    pub fn run_cmd(&self, cmd: Command, extra_env: &[(&str, &str)]) -> Run {
        self.finish(self.start_cmd(cmd, extra_env))
    }

    /// Starts `run --once`, for a test that watches it meanwhile; [`Agent::finish`] ends it.
    pub fn start(&self, extra_env: &[(&str, &str)]) -> Started {
        self.start_cmd(Command::new(env!("CARGO_BIN_EXE_claude-auth-sync")), extra_env)
    }

    fn start_cmd(&self, cmd: Command, extra_env: &[(&str, &str)]) -> Started {
        let mut env = self.claude.env();
        env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let lines_before = std::fs::read_to_string(self.log()).unwrap_or_default().lines().count();
        let agent = agent_start(cmd, &["run", "--once", "--config", self.cfg.to_str().unwrap()], env);
        Started { agent, lines_before }
    }

    /// Waits for a started run; leak-checks the private log and the journal capture as well.
    pub fn finish(&self, started: Started) -> Run {
        let mut run = started.agent.finish();
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        assert_no_leaks("sync.log", &log);
        self.drain_journal();
        let new: Vec<&str> = log.lines().skip(started.lines_before).collect();
        // With two agents at once the new line may not be this run's: then there is none.
        if let [line] = new.as_slice() {
            run.logged = Some(line.to_string());
        }
        run
    }

    /// `status` (with `--json`: parsed) with the stand-in's environment; output leak-checked.
    pub fn status(&self, json: bool) -> Run {
        let mut args = vec!["status", "--config", self.cfg.to_str().unwrap()];
        if json {
            args.push("--json");
        }
        agent_start(Command::new(env!("CARGO_BIN_EXE_claude-auth-sync")), &args, self.claude.env()).finish()
    }

    pub fn log(&self) -> PathBuf {
        self.log.clone()
    }

    /// Receives what the agent sent to the journal, leak-checking every entry.
    fn drain_journal(&self) {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = self.journal.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            assert_no_leaks("a journal entry", &text);
            let entry =
                text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
            self.received.lock().unwrap().push(entry);
        }
    }

    /// Every journal entry received since the last call, as field maps.
    pub fn journal_entries(&self) -> Vec<HashMap<String, String>> {
        self.drain_journal();
        std::mem::take(&mut *self.received.lock().unwrap())
    }

    /// A login the stand-in accepts, written with siblings; returns (login, file bytes).
    pub fn good_login(&self, expires_at: u64) -> (Value, Vec<u8>) {
        let (a, r) = (access_token(), refresh_token());
        self.claude.accept(&a, &r);
        let login = oauth(&a, &r, expires_at);
        let bytes = self.claude.write_login(&login, &random_secret("mcp-token-"));
        (login, bytes)
    }

    /// A login the stand-in does not know (and that is not expired: it answers 401).
    pub fn dead_login(&self) -> Value {
        oauth(&access_token(), &refresh_token(), now_ms() + 8 * HOUR_MS)
    }

    pub fn vault_copy(&self) -> Option<(u64, Value)> {
        self.b.kv_latest(&self.name)
    }
}
