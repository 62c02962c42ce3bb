//! The `template { }` blocks: each binds one Vault KV v2 secret to one local file.
//!
//! A JSON template (`json_key`, the default) keeps one subtree of a JSON file in sync
//! with the secret's `field`, probes it, and writes it back; its defaults are Claude
//! Code's. A rendered template (`contents` or `source`, Vault Agent style) writes a
//! whole file from the secret's data and never writes back.
//!
//! Its keywords (`lock`, `restore`), defaults and printing live here. It must never
//! print inline `contents` (they may embed literal values): only their size.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::hcl_writer::Hcl;
use super::keyword::Keywords;
use super::probe::{self, Probe};
use super::reader::{LabeledBlock, OneOrMany, Table};
use super::secret_path::SecretPath;
use super::{ConfigError, Env, location};
use crate::os_user::OsUser;
use crate::secret::Secret;
use crate::template::handlebars;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateConfig {
    /// `template #1`, `template #2`, ... for messages.
    pub name: String,
    /// KV v2 mount and path, e.g. `secret/workstation/claude-users/alice`.
    pub secret: SecretPath,
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
    /// A top-level key, a JSON pointer such as `/tokens`, or `/`: the whole file.
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

pub(super) const LOCKS: Keywords<Lock> =
    Keywords::one_of(&[("claude-code", Lock::ClaudeCode), ("flock", Lock::Flock), ("none", Lock::None)]);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    OnFailure,
    IfMissing,
    Always,
    Never,
}

pub(super) const RESTORES: Keywords<Restore> = Keywords::one_of(&[
    ("on_failure", Restore::OnFailure),
    ("if_missing", Restore::IfMissing),
    ("always", Restore::Always),
    ("never", Restore::Never),
]);

/// Claude Code's login: the secret's field and the credentials file's key.
const DEFAULT_FIELD: &str = "claudeAiOauth";
/// The credentials file is as private as Claude Code keeps it.
const DEFAULT_PERMS: u32 = 0o600;
/// Claude Code's own directory locks, so that its writes and ours never interleave.
const DEFAULT_LOCK: Lock = Lock::ClaudeCode;
/// Vault's copy replaces the local login only once the probe rejected it.
const DEFAULT_RESTORE: Restore = Restore::OnFailure;
const DEFAULT_WRITEBACK: bool = true;
const DEFAULT_WARN_BEFORE: Duration = Duration::from_secs(5 * 86_400);
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

impl TemplateConfig {
    pub(super) fn print(&self, w: &mut Hcl) {
        w.comment(&self.name);
        w.open("template");
        w.str("secret", self.secret.as_str());
        w.path("destination", &self.destination);
        w.mode("perms", self.perms);
        match &self.kind {
            TemplateKind::Json(j) => j.print(w),
            TemplateKind::Render(r) => r.print(w),
        }
        w.close();
    }
}

impl JsonTemplate {
    fn print(&self, w: &mut Hcl) {
        w.str("field", &self.field);
        w.str("json_key", &self.json_key);
        w.keyword("lock", LOCKS.word(self.lock));
        w.keyword("restore", RESTORES.word(self.restore));
        w.raw("refresh_token_rotates", self.refresh_token_rotates);
        w.raw("writeback", self.writeback);
        w.dur("warn_before", self.warn_before);
        self.probe.print(w);
    }
}

impl RenderTemplate {
    /// Inline `contents` may embed literal values: only their size is shown, unless the
    /// config is being converted (`check-config --print-as`), which must keep them.
    fn print(&self, w: &mut Hcl) {
        match &self.body {
            TemplateBody::Contents(c) if w.contents_shown => w.str("contents", c.expose()),
            TemplateBody::Contents(c) => {
                w.comment(&format!("contents: {} bytes, not shown", c.expose().len()));
                w.str("contents", "<redacted>");
            }
            TemplateBody::Source(p) => w.path("source", p),
        }
        if let Some(cmd) = &self.command {
            w.list("command", cmd);
        }
    }
}

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
        return Err(t.block_err("takes no label; write template { ... }"));
    }
    let secret = t
        .string("secret")?
        .map(|s| {
            SecretPath::parse(&s).ok_or_else(|| {
                t.err("secret", "must be a KV v2 mount and path such as \"secret/workstation/claude-users/${user}\"")
            })
        })
        .transpose()?;
    let contents = t.raw_string("contents")?;
    let source = t.path("source")?;
    let destination = t.path("destination")?;
    let perms = t.mode("perms")?.unwrap_or(DEFAULT_PERMS);
    let keys = KindKeys::read(&t)?;

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
            let render = rendered(&t, body, keys)?;
            if destination.is_none() {
                return Err(t.err("destination", "is missing; a rendered template must say which file it writes"));
            }
            TemplateKind::Render(render)
        }
        None => TemplateKind::Json(json(&t, keys)?),
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

/// The keys that say which kind a template is, as written: each kind refuses the others'.
struct KindKeys<'a> {
    json_key: Option<String>,
    field: Option<String>,
    lock: Option<String>,
    restore: Option<String>,
    rotates: Option<bool>,
    writeback: Option<bool>,
    warn_before: Option<Duration>,
    command: Option<Vec<String>>,
    probes: Vec<LabeledBlock<'a>>,
}

impl<'a> KindKeys<'a> {
    fn read(t: &Table<'a>) -> Result<Self, ConfigError> {
        Ok(KindKeys {
            json_key: t.string("json_key")?,
            field: t.string("field")?,
            lock: t.string("lock")?,
            restore: t.string("restore")?,
            rotates: t.bool("refresh_token_rotates")?,
            writeback: t.bool("writeback")?,
            warn_before: t.duration("warn_before")?,
            command: t.string_or_strings("command")?.map(|c| match c {
                // Vault Agent's `command` is one shell command line.
                OneOrMany::One(line) => vec!["/bin/sh".into(), "-c".into(), line],
                OneOrMany::Many(argv) => argv,
            }),
            probes: t.blocks("probe")?,
        })
    }
}

/// A template with `contents` or `source`: Vault Agent's kind, which renders a whole file.
fn rendered(t: &Table<'_>, body: TemplateBody, k: KindKeys<'_>) -> Result<RenderTemplate, ConfigError> {
    for (key, set) in [
        ("json_key", k.json_key.is_some()),
        ("field", k.field.is_some()),
        ("restore", k.restore.is_some()),
        ("refresh_token_rotates", k.rotates.is_some()),
        ("probe", !k.probes.is_empty()),
        ("warn_before", k.warn_before.is_some()),
    ] {
        if set {
            return Err(t.err(
                key,
                "applies only to JSON templates; a template with contents or source renders the whole file",
            ));
        }
    }
    if k.writeback == Some(true) {
        return Err(t.err("writeback", "needs json_key; a rendered file cannot be written back to Vault"));
    }
    if let Some(lock) = &k.lock {
        t.keyword_of("lock", &LOCKS, lock)?;
    }
    Ok(RenderTemplate { body, command: k.command })
}

/// A JSON template: one subtree of a JSON file, probed and written back; Claude Code's
/// login by default.
fn json(t: &Table<'_>, mut k: KindKeys<'_>) -> Result<JsonTemplate, ConfigError> {
    if k.command.is_some() {
        return Err(t.err("command", "applies only to rendered templates (contents or source); a JSON template's check goes in probe \"command\" { command = [...] }"));
    }
    let json_key = k.json_key.unwrap_or_else(|| DEFAULT_FIELD.into());
    if json_key.is_empty() {
        return Err(t.err(
            "json_key",
            "is empty; give a top-level key, a JSON pointer such as /tokens, or / for the whole file",
        ));
    }
    let probe = match k.probes.len() {
        0 => Probe::default_command(),
        1 => probe::parse(k.probes.remove(0))?,
        n => return Err(t.err("probe", format!("appears {n} times; keep one"))),
    };
    let field = k.field.unwrap_or_else(|| DEFAULT_FIELD.into());
    // Claude Code's login rotates; another tool's secret says so itself.
    let refresh_token_rotates = k.rotates.unwrap_or(json_key == DEFAULT_FIELD || field == DEFAULT_FIELD);
    let restore = k.restore.map(|r| t.keyword_of("restore", &RESTORES, &r)).transpose()?.unwrap_or(DEFAULT_RESTORE);
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
    Ok(JsonTemplate {
        field,
        json_key,
        lock: k.lock.map(|l| t.keyword_of("lock", &LOCKS, &l)).transpose()?.unwrap_or(DEFAULT_LOCK),
        restore,
        refresh_token_rotates,
        writeback: k.writeback.unwrap_or(DEFAULT_WRITEBACK),
        probe,
        warn_before: k.warn_before.unwrap_or(DEFAULT_WARN_BEFORE),
    })
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
