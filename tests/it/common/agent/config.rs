//! The agent's config.hcl, built from named parts: `vault`, `auto_auth` (a [`Method`],
//! `expect`, sinks), [`Template`] blocks with their [`Probe`], `log` and the top-level
//! keys. Each setter is named after the HCL key it writes, so a test says what it
//! configures instead of splicing HCL fragments into a text at positions.

use std::path::{Path, PathBuf};

use super::super::files::write_file;
use super::super::hcl::{Block, Body, Value, object};

#[derive(Clone, Debug)]
pub struct AgentConfig {
    vault: Block,
    auto_auth: Block,
    templates: Vec<Template>,
    log: Option<Block>,
    top: Body,
}

impl AgentConfig {
    /// `vault { address = ... }` and an empty `auto_auth`.
    pub fn new(address: &str) -> AgentConfig {
        AgentConfig {
            vault: Block::new("vault", &[]).attr("address", address),
            auto_auth: Block::new("auto_auth", &[]),
            templates: Vec::new(),
            log: None,
            top: Body::default(),
        }
    }

    /// `vault.address`, replacing the one the config was made with.
    pub fn address(mut self, address: &str) -> AgentConfig {
        self.vault = self.vault.attr("address", address);
        self
    }

    /// No `vault.address`: it comes from VAULT_ADDR or BAO_ADDR.
    pub fn without_address(mut self) -> AgentConfig {
        self.vault = self.vault.without("address");
        self
    }

    /// `vault.timeout`.
    pub fn timeout(mut self, timeout: &str) -> AgentConfig {
        self.vault = self.vault.attr("timeout", timeout);
        self
    }

    /// `vault.ca_cert`.
    pub fn ca_cert(mut self, ca: &Path) -> AgentConfig {
        self.vault = self.vault.attr("ca_cert", ca);
        self
    }

    /// `vault.allow_cleartext_tokens = true`.
    pub fn allow_cleartext_tokens(mut self) -> AgentConfig {
        self.vault = self.vault.attr("allow_cleartext_tokens", true);
        self
    }

    /// `vault.retry.num_retries`.
    pub fn retries(mut self, n: u32) -> AgentConfig {
        self.vault = self.vault.edit("retry", |r| r.attr("num_retries", n));
        self
    }

    /// One retry after 100-200 ms: what a test wants where Vault is up.
    pub fn quick_retry(mut self) -> AgentConfig {
        self = self.retries(1);
        self.vault = self.vault.edit("retry", |r| r.attr("min_backoff", "100ms").attr("max_backoff", "200ms"));
        self
    }

    /// `auto_auth { method ... }`.
    pub fn method(mut self, method: Method) -> AgentConfig {
        self.auto_auth = self.auto_auth.block(method.0);
        self
    }

    /// `auto_auth { expect { policies = [...], meta = { ... } } }`; no `meta` when it is empty.
    pub fn expect(mut self, policies: &[&str], meta: &[(&str, &str)]) -> AgentConfig {
        let mut expect = Block::new("expect", &[]).attr("policies", policies);
        if !meta.is_empty() {
            expect = expect.attr("meta", object(&meta.iter().map(|(k, v)| (*k, Value::from(*v))).collect::<Vec<_>>()));
        }
        self.auto_auth = self.auto_auth.block(expect);
        self
    }

    /// `auto_auth { sink "file" { config = { path = ... } } }`.
    pub fn sink(mut self, path: &Path) -> AgentConfig {
        let sink = Block::new("sink", &["file"]).attr("config", object(&[("path", path.into())]));
        self.auto_auth = self.auto_auth.block(sink);
        self
    }

    /// One more `template` block, after the others.
    pub fn template(mut self, template: Template) -> AgentConfig {
        self.templates.push(template);
        self
    }

    /// Edits the first `template` block: the login's, in an [`super::Agent`]'s config.
    pub fn login(mut self, edit: impl FnOnce(Template) -> Template) -> AgentConfig {
        assert!(!self.templates.is_empty(), "no template block to edit");
        let first = self.templates.remove(0);
        self.templates.insert(0, edit(first));
        self
    }

    /// `log { path = ... }`.
    pub fn log(mut self, path: &Path) -> AgentConfig {
        self.log = Some(Block::new("log", &[]).attr("path", path));
        self
    }

    /// `log.journald` (`log` must be set).
    pub fn journald(mut self, on: bool) -> AgentConfig {
        self.log = Some(self.log.expect("journald without a log block").attr("journald", on));
        self
    }

    /// `log.journald = true` with the journal's socket at `socket`.
    pub fn journald_socket(self, socket: &Path) -> AgentConfig {
        let mut c = self.journald(true);
        c.log = c.log.map(|l| l.attr("journald_socket", socket));
        c
    }

    /// The top-level `pid_file`.
    pub fn pid_file(mut self, path: &Path) -> AgentConfig {
        self.top = self.top.attr("pid_file", path);
        self
    }

    /// The top-level `exit_after_auth = true`.
    pub fn exit_after_auth(mut self) -> AgentConfig {
        self.top = self.top.attr("exit_after_auth", true);
        self
    }

    /// The top-level `env_shadowing` (`"warn"` or `"fail"`).
    pub fn env_shadowing(mut self, what: &str) -> AgentConfig {
        self.top = self.top.attr("env_shadowing", what);
        self
    }

    /// `degraded { fail_after_runs = n }`.
    pub fn fail_after_degraded_runs(mut self, n: u32) -> AgentConfig {
        self.top = self.top.edit("degraded", |d| d.attr("fail_after_runs", n));
        self
    }

    /// `telemetry { textfile = ... }`.
    pub fn telemetry_textfile(mut self, path: &Path) -> AgentConfig {
        self.top = self.top.edit("telemetry", |t| t.attr("textfile", path));
        self
    }

    /// Any other key of the `telemetry` block (Vault Agent's, which the agent refuses).
    pub fn telemetry_key(mut self, key: &str, value: &str) -> AgentConfig {
        self.top = self.top.edit("telemetry", |t| t.attr(key, value));
        self
    }

    /// The HCL text.
    pub fn render(&self) -> String {
        let mut body = Body::default().block(self.vault.clone()).block(self.auto_auth.clone());
        for t in &self.templates {
            body = body.block(t.0.clone());
        }
        if let Some(log) = &self.log {
            body = body.block(log.clone());
        }
        format!("{}{}", body.render(), self.top.render())
    }

    /// Writes the config to `dir/name` (mode 0600) and returns its path.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        write_file(dir, name, &self.render(), 0o600)
    }
}

/// An `auto_auth` method block.
#[derive(Clone, Debug)]
pub struct Method(Block);

impl Method {
    /// `method "token_file" { config = { token_file_path = ... } }`.
    pub fn token_file(path: &Path) -> Method {
        Method(Block::new("method", &["token_file"]).attr("config", object(&[("token_file_path", path.into())])))
    }

    /// `method "approle" { config = { role_id_file_path = ..., secret_id_file_path = ... } }`.
    pub fn approle(role_id: &Path, secret_id: &Path) -> Method {
        let config = object(&[("role_id_file_path", role_id.into()), ("secret_id_file_path", secret_id.into())]);
        Method(Block::new("method", &["approle"]).attr("config", config))
    }

    /// The method's `mount_path`.
    pub fn mount_path(self, path: &str) -> Method {
        Method(self.0.attr("mount_path", path))
    }
}

/// A `template` block.
#[derive(Clone, Debug)]
pub struct Template(Block);

impl Template {
    /// `template { secret = ... }`.
    pub fn new(secret: &str) -> Template {
        Template::empty().secret(secret)
    }

    /// `template {}`: not even a secret.
    pub fn empty() -> Template {
        Template(Block::new("template", &[]))
    }

    pub fn secret(self, path: &str) -> Template {
        self.set("secret", path)
    }

    pub fn destination(self, path: &Path) -> Template {
        self.set("destination", path)
    }

    /// An inline handlebars template (a newline is written as `\n`).
    pub fn contents(self, text: &str) -> Template {
        self.set("contents", text)
    }

    pub fn source(self, path: &Path) -> Template {
        self.set("source", path)
    }

    /// The rendered file's mode, e.g. `"0640"`.
    pub fn perms(self, mode: &str) -> Template {
        self.set("perms", mode)
    }

    /// `"on_failure"` or `"always"`.
    pub fn restore(self, when: &str) -> Template {
        self.set("restore", when)
    }

    pub fn refresh_token_rotates(self, rotates: bool) -> Template {
        self.set("refresh_token_rotates", rotates)
    }

    /// The JSON pointer of the subtree the template owns in its destination.
    pub fn json_key(self, pointer: &str) -> Template {
        self.set("json_key", pointer)
    }

    /// The field of the secret that holds the subtree.
    pub fn field(self, name: &str) -> Template {
        self.set("field", name)
    }

    /// The template's `probe` block.
    pub fn probe(self, probe: Probe) -> Template {
        Template(self.0.block(probe.0))
    }

    fn set(self, key: &str, value: impl Into<Value>) -> Template {
        Template(self.0.attr(key, value))
    }
}

/// A template's `probe` block.
#[derive(Clone, Debug)]
pub struct Probe(Block);

impl Probe {
    /// `probe "command" {}`: the default command (the `claude` on PATH).
    pub fn command() -> Probe {
        Probe(Block::new("probe", &["command"]))
    }

    /// `probe "http" { url = ... }`: a direct Messages API call.
    pub fn http(url: &str) -> Probe {
        Probe(Block::new("probe", &["http"]).attr("url", url))
    }

    /// `probe "none" {}`.
    pub fn none() -> Probe {
        Probe(Block::new("probe", &["none"]))
    }

    pub fn timeout(self, timeout: &str) -> Probe {
        Probe(self.0.attr("timeout", timeout))
    }
}
