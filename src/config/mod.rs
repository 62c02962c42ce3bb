//! The HCL config, in Vault Agent's vocabulary: `vault`, `auto_auth` (`method`,
//! `sink`, and this agent's `expect`), `template`, `log`, `telemetry` (with a
//! textfile sink), plus Vault Agent's `pid_file` and `exit_after_auth`, and this
//! agent's `degraded`. One file per block, which owns the block's keys, its keyword
//! tables ([`keyword`]), its defaults (named constants) and its printing (through the
//! one [`hcl_writer`]); this file owns the top-level keys.
//!
//! Loading reads the whole file, interpolates `${user}` and `~` from the passwd
//! entry, and validates every key before anything else happens ([`parse`], the text
//! alone), then checks what needs the filesystem: where each file goes and every
//! template `source` ([`load`]); an error names the file, the block and the key. It
//! must never touch the network or write a file (a stat and a read are all it does).

mod auto_auth;
mod degraded;
mod error;
mod hcl_writer;
mod interpolate;
mod keyword;
mod location;
mod log;
mod probe;
mod reader;
mod resident;
mod secret_path;
mod telemetry;
mod template;
mod toml_writer;
mod vault;

use std::cell::RefCell;
use std::path::{Path, PathBuf};

pub use auto_auth::{AutoAuthConfig, Expect, FileSink, Method};
pub use degraded::DegradedPolicy;
pub use error::ConfigError;
pub use log::{Journald, LogConfig};
pub use probe::Probe;
pub use resident::ResidentConfig;
pub use secret_path::SecretPath;
pub use telemetry::TelemetryConfig;
pub use template::{
    JsonTemplate, Lock, RenderTemplate, Restore, TemplateBody, TemplateConfig, TemplateKind, claude_credentials_path,
    read_source,
};
pub use vault::{
    DEFAULT_TIMEOUT as DEFAULT_VAULT_TIMEOUT, Retry, VaultConfig, check_cleartext, parse_address as parse_vault_address,
};

pub(crate) use hcl_writer::{Hcl, label as hcl_label};

use crate::os_user::OsUser;
use keyword::Keywords;
#[cfg(test)]
pub(crate) use reader::Shape;
use reader::{Asked, Source, Table};

/// Reads an environment variable; injected so that tests need not touch the process's.
pub type Env<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// The config file's size limit: it is a few dozen lines; anything near this is a mistake.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub file: PathBuf,
    /// The user `${user}` and `~` stand for.
    pub user: OsUser,
    pub vault: VaultConfig,
    pub auto_auth: AutoAuthConfig,
    pub templates: Vec<TemplateConfig>,
    pub log: LogConfig,
    pub pid_file: Option<PathBuf>,
    /// As in Vault Agent: authenticate, write the sinks, and stop (no templates).
    pub exit_after_auth: bool,
    /// What a credential variable in the environment (`ANTHROPIC_API_KEY`, ...) means.
    pub env_shadowing: EnvShadowing,
    /// When a DEGRADED that keeps coming back becomes a FAIL.
    pub degraded: DegradedPolicy,
    /// Where the metrics go (`telemetry { textfile }`).
    pub telemetry: TelemetryConfig,
    /// How `run` without `--once` paces itself.
    pub resident: ResidentConfig,
}

/// `env_shadowing`: such a variable outranks the per-user login in Claude Code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvShadowing {
    /// Remove it from the probe's environment and warn.
    Warn,
    /// Also end the run with `FAIL reason=env_shadowing`.
    Fail,
}

const ENV_SHADOWING: Keywords<EnvShadowing> =
    Keywords::either(&[("warn", EnvShadowing::Warn), ("fail", EnvShadowing::Fail)]);
const DEFAULT_ENV_SHADOWING: EnvShadowing = EnvShadowing::Warn;

/// A config file's language, told by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Hcl,
    Toml,
}

impl Format {
    /// TOML for a name ending in `.toml`, else HCL (`.hcl`, and any other name, as before).
    pub fn of(file: &Path) -> Format {
        match file.extension() {
            Some(ext) if ext == "toml" => Format::Toml,
            _ => Format::Hcl,
        }
    }
}

/// `~/.config/claude-auth-sync/config.hcl` of the given user.
pub fn default_path(user: &OsUser) -> PathBuf {
    user.home.join(".config/claude-auth-sync/config.hcl")
}

const VAULT_AGENT_ONLY: &[&str] = &[
    "cache",
    "listener",
    "api_proxy",
    "template_config",
    "env_template",
    "exec",
    "disable_idle_connections",
    "disable_keep_alives",
    "log_level",
    "log_file",
    "log_format",
    "log_rotate_bytes",
    "log_rotate_duration",
    "log_rotate_max_files",
    "persist",
];

/// Reads and validates the config file.
pub fn load(file: &Path, user: &OsUser, env: &Env<'_>) -> Result<Config, ConfigError> {
    let whole = |problem: String| ConfigError { file: file.to_path_buf(), block: None, key: None, problem };
    let meta = std::fs::metadata(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            whole("does not exist; copy config.hcl.example there and edit it, or pass --config PATH".into())
        }
        _ => whole(format!("cannot be read: {e}; check its permissions (the agent runs as you)")),
    })?;
    if !meta.is_file() {
        return Err(whole("is not a regular file; point --config at the config file itself".into()));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(whole(format!("is {} bytes; a config file is at most 1 MiB", meta.len())));
    }
    let bytes = std::fs::read(file)
        .map_err(|e| whole(format!("cannot be read: {e}; check its permissions (the agent runs as you)")))?;
    let text = String::from_utf8(bytes).map_err(|_| whole("is not UTF-8 text; save it as UTF-8".into()))?;
    let cfg = parse(&text, file, user, env)?;
    check_files(&cfg, env)?;
    Ok(cfg)
}

/// The checks that need the filesystem, once the text is valid: where each file goes
/// (see [`location`]) and every template `source`. Stats and reads only.
fn check_files(cfg: &Config, env: &Env<'_>) -> Result<(), ConfigError> {
    let err = |block: Option<&str>, key: &str, problem| ConfigError {
        file: cfg.file.clone(),
        block: block.map(str::to_string),
        key: Some(key.into()),
        problem,
    };
    for sink in &cfg.auto_auth.sinks {
        location::check(&sink.path, &cfg.user, &[])
            .map_err(|p| err(Some("auto_auth.sink \"file\""), "config.path", p))?;
    }
    if let Some(p) = &cfg.pid_file {
        location::check(p, &cfg.user, &[]).map_err(|p| err(None, "pid_file", p))?;
    }
    template::check_files(cfg, env)
}

/// Parses config text; `file` is used for messages and for the format: a name ending in
/// `.toml` is TOML ([`reader::toml`]), anything else HCL. Both are read by the one schema.
pub fn parse(text: &str, file: &Path, user: &OsUser, env: &Env<'_>) -> Result<Config, ConfigError> {
    read(text, file, user, env, None)
}

/// [`parse`], noting every key the reader asks for in `trace`: the schema as the one
/// reader walks it, for checking the reference (docs/config.md) against.
#[cfg(test)]
pub(crate) fn parse_traced(
    text: &str,
    file: &Path,
    user: &OsUser,
    env: &Env<'_>,
    trace: &RefCell<Vec<Asked>>,
) -> Result<Config, ConfigError> {
    read(text, file, user, env, Some(trace))
}

fn read(
    text: &str,
    file: &Path,
    user: &OsUser,
    env: &Env<'_>,
    trace: Option<&RefCell<Vec<Asked>>>,
) -> Result<Config, ConfigError> {
    let whole = |problem| ConfigError { file: file.to_path_buf(), block: None, key: None, problem };
    let body = match Format::of(file) {
        Format::Toml => reader::toml::parse(text).map_err(whole)?,
        Format::Hcl => hcl::parse(text).map_err(|e| {
            whole(match e {
                // The offending line is not quoted: it may hold a secret.
                hcl::Error::Parse(p) => format!(
                    "HCL syntax error at line {}, column {}: {}",
                    p.location().line(),
                    p.location().column(),
                    p.message()
                ),
                other => format!("HCL syntax error: {other}"),
            })
        })?,
    };
    let src = Source { file, user, trace };
    let top = Table::top(&src, &body);

    let vault = vault::parse(top.single_block("vault")?, &top, env)?;
    let auto_auth = match top.single_block("auto_auth")? {
        Some(t) => auto_auth::parse(t, &vault.retry)?,
        None => {
            return Err(ConfigError {
                block: Some("auto_auth".into()),
                ..top.err("", "is missing; add auto_auth { method \"token_file\" { ... } } (see config.hcl.example)")
            }
            .without_key());
        }
    };
    let templates = top
        .blocks("template")?
        .into_iter()
        .enumerate()
        .map(|(i, b)| template::parse(i, b, env))
        .collect::<Result<Vec<_>, _>>()?;
    let log = log::parse(top.single_block("log")?, user)?;
    let degraded = degraded::parse(top.single_block("degraded")?)?;
    let telemetry = telemetry::parse(top.single_block("telemetry")?)?;
    let resident = resident::parse(top.single_block("resident")?)?;
    let pid_file = top.path("pid_file")?;
    let exit_after_auth = top.bool("exit_after_auth")?.unwrap_or(false);
    let env_shadowing = top.keyword("env_shadowing", &ENV_SHADOWING)?.unwrap_or(DEFAULT_ENV_SHADOWING);
    top.finish(VAULT_AGENT_ONLY)?;

    Ok(Config {
        file: file.to_path_buf(),
        user: user.clone(),
        vault,
        auto_auth,
        templates,
        log,
        pid_file,
        exit_after_auth,
        env_shadowing,
        degraded,
        telemetry,
        resident,
    })
}

impl ConfigError {
    fn without_key(mut self) -> Self {
        self.key = None;
        self
    }
}

impl Config {
    /// The config as `check-config` prints it: interpolated, every default filled in,
    /// in HCL that loads back to the same config. Each block prints itself; no block
    /// prints a secret-bearing value (inline template `contents` show only their size).
    pub fn to_hcl(&self) -> String {
        self.hcl(Contents::Redacted)
    }

    fn hcl(&self, contents: Contents) -> String {
        let mut w = Hcl::default();
        w.contents_shown = contents == Contents::Shown;
        w.comment(&self.header());
        self.vault.print(&mut w);
        self.auto_auth.print(&mut w);
        for t in &self.templates {
            t.print(&mut w);
        }
        self.log.print(&mut w);
        self.degraded.print(&mut w);
        self.telemetry.print(&mut w);
        self.resident.print(&mut w);
        if let Some(p) = &self.pid_file {
            w.path("pid_file", p);
        }
        w.raw("exit_after_auth", self.exit_after_auth);
        w.keyword("env_shadowing", ENV_SHADOWING.word(self.env_shadowing));
        w.finish()
    }

    /// The same config in TOML, which loads back to it.
    pub fn to_toml(&self, contents: Contents) -> String {
        let body = hcl::parse(&self.hcl(contents)).expect("the HCL printer writes HCL that parses");
        toml_writer::print(&self.header(), &body, REPEATABLE).expect("the HCL printer writes only literal values")
    }

    /// Whether a template holds inline `contents` (which check-config redacts).
    pub fn has_inline_contents(&self) -> bool {
        self.templates
            .iter()
            .any(|t| matches!(&t.kind, TemplateKind::Render(r) if matches!(r.body, TemplateBody::Contents(_))))
    }

    /// In `format`, as check-config prints it.
    pub fn print_as(&self, format: Format, contents: Contents) -> String {
        match format {
            Format::Hcl => self.hcl(contents),
            Format::Toml => self.to_toml(contents),
        }
    }

    fn header(&self) -> String {
        format!("{} for user {} (uid {})", self.file.display(), self.user.name, self.user.uid)
    }
}

/// Inline template `contents` may embed literal values: check-config shows only their
/// size; a conversion (`--print-as`) must keep them, or the converted config would
/// render `<redacted>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contents {
    Redacted,
    Shown,
}

/// The blocks a config may repeat: TOML prints them as arrays of tables (`[[template]]`).
const REPEATABLE: &[&str] = &["template", "sink"];

/// HCL config text as TOML, key for key, as written (nothing interpolated or defaulted):
/// the TOML reads back to the same config. `None` for text that is not HCL of literals.
#[cfg(test)]
pub(crate) fn hcl_to_toml(text: &str, header: &str) -> Option<String> {
    toml_writer::print(header, &hcl::parse(text).ok()?, REPEATABLE).ok()
}

#[cfg(test)]
mod tests;
