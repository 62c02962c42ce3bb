//! The config as `check-config` shows it: every default filled in, `${user}` and `~`
//! already expanded, in HCL that loads back to the same config.
//!
//! It must never print a secret-bearing value: inline template `contents` are shown
//! as `<redacted>` with their size.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use super::{Config, EnvShadowing, Journald, Lock, Method, Probe, Restore, TemplateBody, TemplateKind};

pub fn to_hcl(c: &Config) -> String {
    let mut w = Hcl::default();
    w.comment(&format!("{} for user {} (uid {})", c.file.display(), c.user.name, c.user.uid));
    w.open("vault");
    w.str("address", c.vault.address.as_str().trim_end_matches('/'));
    if let Some(ca) = &c.vault.ca_cert {
        w.path("ca_cert", ca);
    }
    w.raw("tls_skip_verify", c.vault.tls_skip_verify);
    w.raw("allow_cleartext_tokens", c.vault.allow_cleartext_tokens);
    w.dur("timeout", c.vault.timeout);
    w.open("retry");
    w.raw("num_retries", c.vault.retry.num_retries);
    w.dur("min_backoff", c.vault.retry.min_backoff);
    w.dur("max_backoff", c.vault.retry.max_backoff);
    w.close();
    w.close();

    let a = &c.auto_auth;
    w.open("auto_auth");
    w.dur("min_backoff", a.min_backoff);
    w.dur("max_backoff", a.max_backoff);
    w.open(&label("method", a.method.kind()));
    match &a.method {
        Method::TokenFile { token_file_path } => {
            w.open("config");
            w.path("token_file_path", token_file_path);
            w.close();
        }
        Method::AppRole {
            mount,
            role_id_file_path,
            secret_id_file_path,
            remove_secret_id_file_after_reading,
            token_cache_path,
        } => {
            w.str("mount_path", &format!("auth/{mount}"));
            w.open("config");
            w.path("role_id_file_path", role_id_file_path);
            w.path("secret_id_file_path", secret_id_file_path);
            w.raw("remove_secret_id_file_after_reading", remove_secret_id_file_after_reading);
            w.path("token_cache_path", token_cache_path);
            w.close();
        }
    }
    w.close();
    w.open("expect");
    w.list("policies", &a.expect.policies);
    w.open("meta");
    for (k, v) in &a.expect.meta {
        w.str(k, v);
    }
    w.close();
    w.close();
    for sink in &a.sinks {
        w.open("sink \"file\"");
        w.open("config");
        w.path("path", &sink.path);
        w.str("mode", &format!("{:04o}", sink.mode));
        w.close();
        w.close();
    }
    w.close();

    for t in &c.templates {
        w.comment(&t.name);
        w.open("template");
        w.str("secret", &t.secret);
        w.path("destination", &t.destination);
        w.str("perms", &format!("{:04o}", t.perms));
        match &t.kind {
            TemplateKind::Json(j) => {
                w.str("field", &j.field);
                w.str("json_key", &j.json_key);
                w.str("lock", lock_name(j.lock));
                w.str("restore", restore_name(j.restore));
                w.raw("refresh_token_rotates", j.refresh_token_rotates);
                w.raw("writeback", j.writeback);
                w.dur("warn_before", j.warn_before);
                match &j.probe {
                    Probe::Command { command, timeout } => {
                        w.open("probe \"command\"");
                        w.list("command", command);
                        w.dur("timeout", *timeout);
                        w.close();
                    }
                    Probe::Http { url, model, timeout } => {
                        w.open("probe \"http\"");
                        w.str("url", url.as_str());
                        w.str("model", model);
                        w.dur("timeout", *timeout);
                        w.close();
                    }
                    Probe::None => {
                        w.open("probe \"none\"");
                        w.close();
                    }
                }
            }
            TemplateKind::Render(r) => {
                match &r.body {
                    TemplateBody::Contents(c) => {
                        w.comment(&format!("contents: {} bytes, not shown", c.expose().len()));
                        w.str("contents", "<redacted>");
                    }
                    TemplateBody::Source(p) => w.path("source", p),
                }
                if let Some(cmd) = &r.command {
                    w.list("command", cmd);
                }
            }
        }
        w.close();
    }

    w.open("log");
    w.path("path", &c.log.path);
    w.path("state_file", &c.log.state_file);
    match c.log.journald {
        Journald::Auto => w.str("journald", "auto"),
        Journald::On => w.raw("journald", true),
        Journald::Off => w.raw("journald", false),
    }
    w.path("journald_socket", &c.log.journald_socket);
    w.str("level", &c.log.level.to_string().to_lowercase());
    w.close();
    w.open("degraded");
    w.raw("fail_after_runs", c.degraded.fail_after_runs);
    w.dur("fail_after", c.degraded.fail_after);
    w.close();
    if let Some(p) = &c.pid_file {
        w.path("pid_file", p);
    }
    w.raw("exit_after_auth", c.exit_after_auth);
    w.str(
        "env_shadowing",
        match c.env_shadowing {
            EnvShadowing::Warn => "warn",
            EnvShadowing::Fail => "fail",
        },
    );
    w.finish()
}

fn lock_name(l: Lock) -> &'static str {
    match l {
        Lock::ClaudeCode => "claude-code",
        Lock::Flock => "flock",
        Lock::None => "none",
    }
}

fn restore_name(r: Restore) -> &'static str {
    match r {
        Restore::OnFailure => "on_failure",
        Restore::IfMissing => "if_missing",
        Restore::Always => "always",
        Restore::Never => "never",
    }
}

/// The one HCL printer: every string goes through [`quote`], a comment cannot end its
/// line early, so no value can add a key or a block (check-config, and the config the
/// provisioner writes for each user).
#[derive(Default)]
pub(crate) struct Hcl {
    out: String,
    depth: usize,
}

impl Hcl {
    pub(crate) fn finish(self) -> String {
        self.out
    }
    pub(crate) fn blank(&mut self) {
        self.out.push('\n');
    }
    fn line(&mut self, s: &str) {
        let _ = writeln!(self.out, "{:indent$}{s}", "", indent = self.depth * 2);
    }
    pub(crate) fn comment(&mut self, s: &str) {
        let flat: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        self.line(&format!("# {flat}"));
    }
    /// `head {`; `head` is a block type and its labels (see [`Hcl::label`]).
    pub(crate) fn open(&mut self, head: &str) {
        self.line(&format!("{head} {{"));
        self.depth += 1;
    }
    pub(crate) fn close(&mut self) {
        self.depth -= 1;
        self.line("}");
    }
    pub(crate) fn raw(&mut self, key: &str, v: impl std::fmt::Display) {
        self.line(&format!("{key} = {v}"));
    }
    pub(crate) fn str(&mut self, key: &str, v: &str) {
        self.line(&format!("{key} = {}", quote(v)));
    }
    pub(crate) fn path(&mut self, key: &str, p: &Path) {
        self.str(key, &p.to_string_lossy());
    }
    fn dur(&mut self, key: &str, d: Duration) {
        self.str(key, &humantime::format_duration(d).to_string());
    }
    pub(crate) fn list(&mut self, key: &str, items: &[String]) {
        let items: Vec<String> = items.iter().map(|i| quote(i)).collect();
        self.line(&format!("{key} = [{}]", items.join(", ")));
    }
}

/// `kind "label"`, a block head with its label quoted.
pub(crate) fn label(kind: &str, label: &str) -> String {
    format!("{kind} {}", quote(label))
}

/// An HCL string literal that reads back as `s` (`${` and `%{` escaped: nothing is a template).
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for ch in s.chars() {
        match ch {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(q, "\\u{:04x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q.replace("${", "$${").replace("%{", "%%{")
}
