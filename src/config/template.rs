//! The `template { }` blocks: each binds one Vault KV v2 secret to one local file.
//!
//! A JSON template (`json_key`, the default) keeps one subtree of a JSON file in sync
//! with the secret's `field`, probes it, and writes it back; its defaults are Claude
//! Code's. A rendered template (`contents` or `source`, Vault Agent style) writes a
//! whole file from the secret's data and never writes back.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::reader::{LabeledBlock, OneOrMany, Table};
use super::{ConfigError, Env, location};
use crate::os_user::OsUser;
use crate::secret::Secret;
use crate::template::handlebars;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateConfig {
    /// `template #1`, `template #2`, ... for messages.
    pub name: String,
    /// KV v2 mount and path, e.g. `secret/workstation/claude-users/alice`.
    pub secret: String,
    pub destination: PathBuf,
    pub perms: u32,
    pub kind: TemplateKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateKind {
    Json(JsonTemplate),
    Render(RenderTemplate),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonTemplate {
    /// The key inside the secret's data.
    pub field: String,
    /// A top-level key, or a JSON pointer such as `/tokens`.
    pub json_key: String,
    pub lock: Lock,
    pub restore: Restore,
    /// Every refresh of this secret replaces its refresh token (Claude Code's does): an
    /// older copy's refresh token is spent, and presenting it can revoke the login.
    pub refresh_token_rotates: bool,
    pub writeback: bool,
    pub probe: Probe,
    /// Warn when the login's hard end (`refreshTokenExpiresAt`) is this close.
    pub warn_before: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderTemplate {
    pub body: TemplateBody,
    /// Run after the rendered output changed.
    pub command: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateBody {
    /// Inline handlebars; may embed literal values, so it is printed redacted.
    Contents(Secret),
    Source(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    ClaudeCode,
    Flock,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    OnFailure,
    IfMissing,
    Always,
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Command { command: Vec<String>, timeout: Duration },
    Http { url: url::Url, model: String, timeout: Duration },
    None,
}

pub const DEFAULT_FIELD: &str = "claudeAiOauth";
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(120);
pub const DEFAULT_WARN_BEFORE: Duration = Duration::from_secs(5 * 86_400);

pub fn default_probe_command() -> Vec<String> {
    [
        "claude",
        "-p",
        "--model",
        "haiku",
        "--no-session-persistence",
        "--output-format",
        "json",
        "Reply with the single word OK",
    ]
    .map(String::from)
    .to_vec()
}

const VAULT_AGENT_ONLY: &[&str] = &[
    "command_timeout",
    "error_on_missing_key",
    "exec",
    "backup",
    "left_delimiter",
    "right_delimiter",
    "function_denylist",
    "function_blacklist",
    "sandbox_path",
    "wait",
    "create_dest_dirs",
    "user",
    "group",
    "error_fatal",
];

/// Where Claude Code keeps its login, by its own lookup order.
pub fn claude_credentials_path(user: &OsUser, env: &Env<'_>) -> PathBuf {
    let dir = env("CLAUDE_SECURESTORAGE_CONFIG_DIR")
        .or_else(|| env("CLAUDE_CONFIG_DIR"))
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| user.home.join(".claude"));
    dir.join(".credentials.json")
}

pub(super) fn parse(index: usize, block: LabeledBlock<'_>, env: &Env<'_>) -> Result<TemplateConfig, ConfigError> {
    let name = format!("template #{}", index + 1);
    let t = block.table.with_block_name(name.clone());
    if !block.labels.is_empty() {
        return Err(t.block_err("takes no label"));
    }
    let secret = t.string("secret")?;
    if let Some(s) = &secret {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() < 2 || parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..") {
            return Err(
                t.err("secret", "must be a KV v2 mount and path such as \"secret/workstation/claude-users/${user}\"")
            );
        }
    }
    let contents = t.raw_string("contents")?;
    let source = t.path("source")?;
    let destination = t.path("destination")?;
    let perms = t.mode("perms")?.unwrap_or(0o600);
    let json_key = t.string("json_key")?;
    let field = t.string("field")?;
    let lock = t.string("lock")?;
    let restore = t.string("restore")?;
    let rotates = t.bool("refresh_token_rotates")?;
    let writeback = t.bool("writeback")?;
    let warn_before = t.duration("warn_before")?;
    let command = t.string_or_strings("command")?.map(|c| match c {
        // Vault Agent's `command` is one shell command line.
        OneOrMany::One(line) => vec!["/bin/sh".into(), "-c".into(), line],
        OneOrMany::Many(argv) => argv,
    });
    let mut probes = t.blocks("probe")?;

    let body = match (contents, source) {
        (Some(_), Some(_)) => return Err(t.err("source", "and contents are both set; keep one")),
        (Some(c), None) => {
            handlebars::check(&c).map_err(|e| t.err("contents", e))?;
            Some(TemplateBody::Contents(Secret::new(c)))
        }
        (None, Some(s)) => Some(TemplateBody::Source(s)),
        (None, None) => None,
    };
    let kind = match body {
        Some(body) => {
            for (key, set) in [
                ("json_key", json_key.is_some()),
                ("field", field.is_some()),
                ("restore", restore.is_some()),
                ("refresh_token_rotates", rotates.is_some()),
                ("probe", !probes.is_empty()),
                ("warn_before", warn_before.is_some()),
            ] {
                if set {
                    return Err(t.err(
                        key,
                        "applies only to JSON templates; a template with contents or source renders the whole file",
                    ));
                }
            }
            if writeback == Some(true) {
                return Err(t.err("writeback", "needs json_key; a rendered file cannot be written back to Vault"));
            }
            if let Some(lock) = lock {
                parse_lock(&t, &lock)?;
            }
            if destination.is_none() {
                return Err(t.err("destination", "is missing; a rendered template must say which file it writes"));
            }
            TemplateKind::Render(RenderTemplate { body, command })
        }
        None => {
            if command.is_some() {
                return Err(t.err("command", "applies only to rendered templates (contents or source)"));
            }
            let json_key = json_key.unwrap_or_else(|| DEFAULT_FIELD.into());
            if json_key.is_empty() || (json_key.starts_with('/') && json_key.len() == 1) {
                return Err(t.err("json_key", "is empty; give a top-level key or a JSON pointer such as /tokens"));
            }
            let probe = match probes.len() {
                0 => Probe::Command { command: default_probe_command(), timeout: DEFAULT_PROBE_TIMEOUT },
                1 => parse_probe(probes.remove(0))?,
                n => return Err(t.err("probe", format!("appears {n} times; keep one"))),
            };
            let field = field.unwrap_or_else(|| DEFAULT_FIELD.into());
            // Claude Code's login rotates; another tool's secret says so itself.
            let refresh_token_rotates = rotates.unwrap_or(json_key == DEFAULT_FIELD || field == DEFAULT_FIELD);
            let restore = restore.map(|r| parse_restore(&t, &r)).transpose()?.unwrap_or(Restore::OnFailure);
            if restore == Restore::Always && refresh_token_rotates {
                return Err(t.err(
                    "restore",
                    format!(
                        "= \"always\" would put Vault's copy in place of a working login before proving it, and the refresh token of {field} rotates: an unproven older copy's refresh token is spent, and presenting it can get the whole login revoked. Use \"on_failure\" (the default: restore only when the probe rejects the local login){}",
                        if field == DEFAULT_FIELD && json_key == DEFAULT_FIELD {
                            ""
                        } else {
                            ", or set refresh_token_rotates = false if this secret's refresh token never changes"
                        }
                    ),
                ));
            }
            TemplateKind::Json(JsonTemplate {
                field,
                json_key,
                lock: lock.map(|l| parse_lock(&t, &l)).transpose()?.unwrap_or(Lock::ClaudeCode),
                restore,
                refresh_token_rotates,
                writeback: writeback.unwrap_or(true),
                probe,
                warn_before: warn_before.unwrap_or(DEFAULT_WARN_BEFORE),
            })
        }
    };
    // Every template is bound to one secret: this agent has no `{{ with secret }}`.
    let secret = secret.ok_or_else(|| {
        t.err(
            "secret",
            "is missing; each template keeps one file in sync with one KV v2 secret, e.g. secret = \"secret/workstation/claude-users/${user}\"",
        )
    })?;
    let destination = destination.unwrap_or_else(|| claude_credentials_path(t.user(), env));
    t.finish(VAULT_AGENT_ONLY)?;
    Ok(TemplateConfig { name, secret, destination, perms, kind })
}

/// The checks that read files (a stat, a template source), run by [`super::load`]
/// after the text has parsed: every template's destination may be written, and every
/// `source` can be read and parses.
pub(super) fn check_files(cfg: &super::Config, env: &Env<'_>) -> Result<(), ConfigError> {
    for t in &cfg.templates {
        let err = |key: &str, problem: String| ConfigError {
            file: cfg.file.clone(),
            block: Some(t.name.clone()),
            key: Some(key.into()),
            problem,
        };
        location::check(&t.destination, &cfg.user, &claude_dirs(env)).map_err(|p| err("destination", p))?;
        if let TemplateKind::Render(RenderTemplate { body: TemplateBody::Source(p), .. }) = &t.kind {
            let text = read_source(p).map_err(|e| err("source", e))?;
            handlebars::check(&text).map_err(|e| err("source", e))?;
        }
    }
    Ok(())
}

/// The Claude Code config directories the user chose through the environment.
fn claude_dirs(env: &Env<'_>) -> Vec<PathBuf> {
    ["CLAUDE_SECURESTORAGE_CONFIG_DIR", "CLAUDE_CONFIG_DIR"]
        .iter()
        .filter_map(|v| env(v))
        .map(PathBuf::from)
        .filter(|d| d.is_absolute() && !d.components().any(|c| c == Component::ParentDir))
        .collect()
}

/// A template source is a few lines; anything near this is the wrong file.
const MAX_SOURCE_BYTES: u64 = 1 << 20;

/// The text of a template `source`, read for checking (and again at every run).
pub fn read_source(p: &Path) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let cannot = |e: std::io::Error| format!("cannot be read ({e}); create it, or fix the path");
    // Non-blocking: a FIFO given by mistake must not hang check-config.
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(p).map_err(cannot)?;
    if !file.metadata().map_err(cannot)?.is_file() {
        return Err("is not a regular file".into());
    }
    let mut text = String::new();
    file.take(MAX_SOURCE_BYTES + 1).read_to_string(&mut text).map_err(cannot)?;
    if text.len() as u64 > MAX_SOURCE_BYTES {
        return Err("is over 1 MiB; a template is a few lines".into());
    }
    Ok(text)
}

fn parse_lock(t: &Table<'_>, s: &str) -> Result<Lock, ConfigError> {
    match s {
        "claude-code" => Ok(Lock::ClaudeCode),
        "flock" => Ok(Lock::Flock),
        "none" => Ok(Lock::None),
        _ => Err(t.err("lock", "must be one of: claude-code, flock, none")),
    }
}

fn parse_restore(t: &Table<'_>, s: &str) -> Result<Restore, ConfigError> {
    match s {
        "on_failure" => Ok(Restore::OnFailure),
        "if_missing" => Ok(Restore::IfMissing),
        "always" => Ok(Restore::Always),
        "never" => Ok(Restore::Never),
        _ => Err(t.err("restore", "must be one of: on_failure, if_missing, always, never")),
    }
}

fn parse_probe(block: LabeledBlock<'_>) -> Result<Probe, ConfigError> {
    let t = block.table;
    let kind = match block.labels.as_slice() {
        [k] => k.as_str(),
        _ => return Err(t.block_err("takes one label: probe \"command\", probe \"http\" or probe \"none\"")),
    };
    let timeout = t.duration("timeout")?.unwrap_or(DEFAULT_PROBE_TIMEOUT);
    if timeout.is_zero() {
        return Err(t.err("timeout", "must be more than zero"));
    }
    let probe = match kind {
        "command" => {
            let command = t.strings("command")?.unwrap_or_else(default_probe_command);
            if command.is_empty() || command[0].is_empty() {
                return Err(t.err("command", "is empty; give the program and its arguments as a list"));
            }
            if command.iter().any(|a| a == "--bare") {
                return Err(t.err("command", "uses --bare, which ignores the OAuth login the probe must prove"));
            }
            Probe::Command { command, timeout }
        }
        "http" => {
            let raw = t.string("url")?.unwrap_or_else(|| "https://api.anthropic.com".into());
            let url = url::Url::parse(&raw)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| t.err("url", "is not an http(s) URL"))?;
            let model = t.string("model")?.unwrap_or_else(|| "claude-haiku-4-5".into());
            Probe::Http { url, model, timeout }
        }
        "none" => Probe::None,
        _ => return Err(t.block_err("unknown probe kind; use probe \"command\", probe \"http\" or probe \"none\"")),
    };
    t.finish(&[])?;
    Ok(probe)
}
