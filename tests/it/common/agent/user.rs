//! A user of the agent for integration tests: their own Vault identity (a periodic
//! token with exactly their policy), a stand-in Claude Code, a config, and captures of
//! the private log and the journal, each leak-checked.

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

use serde_json::Value;

use super::run::{Run, Running, agent_start};
use crate::common::bao::{Bao, user_policy_name};
use crate::common::claude::stand_in::{FakeClaude, HOUR_MS, now_ms, oauth};
use crate::common::files::write_file;
use crate::common::secrets::{assert_no_leaks, claude_token, random_secret};

/// A run in progress (see [`Setup::start`]).
pub struct Started {
    pub agent: Running,
    lines_before: usize,
}

pub struct Setup<'b> {
    pub b: &'b Bao,
    pub dir: tempfile::TempDir,
    pub claude: FakeClaude,
    pub name: String,
    /// The accessor of the user's token file token; empty for [`Auth::AppRole`], where
    /// every login mints a new token.
    pub accessor: String,
    pub cfg: PathBuf,
    journal: UnixDatagram,
    /// Journal entries received so far, leak-checked on arrival.
    received: std::sync::Mutex<Vec<HashMap<String, String>>>,
}

/// A user with their own Vault identity, a stand-in CLI, and a config whose template
/// block gets `template_extra`.
pub fn setup<'b>(b: &'b Bao, template_extra: &str, top_extra: &str) -> Setup<'b> {
    setup_with(b, &b.addr, "5s", template_extra, top_extra)
}

/// [`setup`] talking to Vault at `vault_addr` (a fault proxy) with a request `timeout`.
pub fn setup_with<'b>(b: &'b Bao, vault_addr: &str, timeout: &str, template_extra: &str, top_extra: &str) -> Setup<'b> {
    setup_as(b, Auth::TokenFile, vault_addr, timeout, template_extra, top_extra)
}

/// [`setup`] with the user's secret on the KV mount `mount` instead of `secret`.
pub fn setup_on<'b>(b: &'b Bao, mount: &str) -> Setup<'b> {
    setup_full(b, Auth::TokenFile, &b.addr, "5s", mount, "", "")
}

/// How the user's agent logs in to Vault.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Auth {
    /// An orphan periodic token in a file, as the provisioner's token mode writes it.
    TokenFile,
    /// The user's own AppRole role (`claude-auth-sync-NAME`): role-id and secret-id files.
    AppRole,
}

/// [`setup_with`] with the user's agent logging in by `auth`.
pub fn setup_as<'b>(
    b: &'b Bao,
    auth: Auth,
    vault_addr: &str,
    timeout: &str,
    template_extra: &str,
    top_extra: &str,
) -> Setup<'b> {
    setup_full(b, auth, vault_addr, timeout, "secret", template_extra, top_extra)
}

fn setup_full<'b>(
    b: &'b Bao,
    auth: Auth,
    vault_addr: &str,
    timeout: &str,
    mount: &str,
    template_extra: &str,
    top_extra: &str,
) -> Setup<'b> {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("u{}", &random_secret("name-")[5..17]);
    let policy = user_policy_name(&name);
    let (method, identity, accessor) = match auth {
        Auth::TokenFile => {
            let (token, accessor) = b.user_token_on(mount, &name);
            let token_file = write_file(dir.path(), "vault-token", &token, 0o600);
            let method = format!(
                "method \"token_file\" {{\n    config = {{ token_file_path = \"{}\" }}\n  }}",
                token_file.display()
            );
            (method, format!("os_user = \"{name}\""), accessor)
        }
        Auth::AppRole => {
            b.user_policy_on(mount, &name);
            let (role_id, secret_id) = b.approle(&policy, &[&policy]);
            let role_file = write_file(dir.path(), "role-id", &role_id, 0o600);
            let secret_file = write_file(dir.path(), "secret-id", &secret_id, 0o600);
            let method = format!(
                "method \"approle\" {{\n    mount_path = \"auth/approle\"\n    config = {{\n      role_id_file_path   = \"{}\"\n      secret_id_file_path = \"{}\"\n    }}\n  }}",
                role_file.display(),
                secret_file.display()
            );
            (method, format!("role_name = \"{policy}\""), String::new())
        }
    };
    let claude = FakeClaude::new(dir.path());
    let d = dir.path().display();
    let text = format!(
        r#"
vault {{
  address = "{vault_addr}"
  timeout = "{timeout}"
  retry {{
    num_retries = 1
    min_backoff = "100ms"
    max_backoff = "200ms"
  }}
}}
auto_auth {{
  {method}
  expect {{
    policies = ["{policy}"]
    meta     = {{ {identity} }}
  }}
}}
template {{
  secret = "{mount}/workstation/claude-users/{name}"
  {template_extra}
}}
log {{
  path            = "{d}/state/claude-auth-sync/sync.log"
  journald        = true
  journald_socket = "{d}/journal.sock"
}}
{top_extra}
"#
    );
    let cfg = write_file(dir.path(), "config.hcl", &text, 0o600);
    let journal = UnixDatagram::bind(dir.path().join("journal.sock")).unwrap();
    journal.set_nonblocking(true).unwrap();
    Setup { b, dir, claude, name, accessor, cfg, journal, received: Default::default() }
}

impl Setup<'_> {
    pub fn run(&self) -> Run {
        self.run_with(&[])
    }

    /// Runs `run --once`; leak-checks the private log and the journal capture as well.
    pub fn run_with(&self, extra_env: &[(&str, &str)]) -> Run {
        self.run_cmd(std::process::Command::new(env!("CARGO_BIN_EXE_claude-auth-sync")), extra_env)
    }

    /// [`Setup::run_with`] with a prepared command (another copy of the binary, another uid).
    pub fn run_cmd(&self, cmd: std::process::Command, extra_env: &[(&str, &str)]) -> Run {
        self.finish(self.start_cmd(cmd, extra_env))
    }

    /// Starts `run --once`, for a test that watches it meanwhile; [`Setup::finish`] ends it.
    pub fn start(&self, extra_env: &[(&str, &str)]) -> Started {
        self.start_cmd(std::process::Command::new(env!("CARGO_BIN_EXE_claude-auth-sync")), extra_env)
    }

    fn start_cmd(&self, cmd: std::process::Command, extra_env: &[(&str, &str)]) -> Started {
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

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("state/claude-auth-sync/sync.log")
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
        let (a, r) = (claude_token("access"), claude_token("refresh"));
        self.claude.accept(&a, &r);
        let login = oauth(&a, &r, expires_at);
        let bytes = self.claude.write_login(&login, &random_secret("mcp-token-"));
        (login, bytes)
    }

    /// A login the stand-in does not know (and that is not expired: it answers 401).
    pub fn dead_login(&self) -> Value {
        oauth(&claude_token("access"), &claude_token("refresh"), now_ms() + 8 * HOUR_MS)
    }

    pub fn vault_copy(&self) -> Option<(u64, Value)> {
        self.b.kv_latest(&self.name)
    }
}
