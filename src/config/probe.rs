//! The `probe` block of a JSON template: how a login is proven to work. By default the
//! real `claude` CLI makes one minimal inference call; `probe "http"` calls the API
//! directly; `probe "none"` trusts the file.
//!
//! It must never accept a probe that cannot prove the OAuth login (`--bare` ignores it).

use std::time::Duration;

use super::error::ConfigError;
use super::hcl_writer::{Hcl, label};
use super::keyword::either;
use super::reader::LabeledBlock;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Command { command: Vec<String>, timeout: Duration },
    Http { url: url::Url, model: String, timeout: Duration },
    None,
}

/// The probe kinds, as their block labels: `probe "command"`.
const COMMAND: &str = "command";
const HTTP: &str = "http";
const NONE: &str = "none";
const KINDS: [&str; 3] = [COMMAND, HTTP, NONE];

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
const DEFAULT_HTTP_URL: &str = "https://api.anthropic.com";
/// The smallest model: the probe proves the login, not the model.
const DEFAULT_HTTP_MODEL: &str = "claude-haiku-4-5";
/// One real inference call, as small as it gets, that leaves no session behind.
const DEFAULT_COMMAND: [&str; 8] = [
    "claude",
    "-p",
    "--model",
    "haiku",
    "--no-session-persistence",
    "--output-format",
    "json",
    "Reply with the single word OK",
];

impl Probe {
    /// The probe of a JSON template without a `probe` block.
    pub fn default_command() -> Probe {
        Probe::Command { command: default_command(), timeout: DEFAULT_TIMEOUT }
    }

    fn kind(&self) -> &'static str {
        match self {
            Probe::Command { .. } => COMMAND,
            Probe::Http { .. } => HTTP,
            Probe::None => NONE,
        }
    }

    pub(super) fn print(&self, w: &mut Hcl) {
        w.open_labeled("probe", self.kind());
        match self {
            Probe::Command { command, timeout } => {
                w.list("command", command);
                w.dur("timeout", *timeout);
            }
            Probe::Http { url, model, timeout } => {
                w.str("url", url.as_str());
                w.str("model", model);
                w.dur("timeout", *timeout);
            }
            Probe::None => {}
        }
        w.close();
    }
}

fn default_command() -> Vec<String> {
    DEFAULT_COMMAND.map(String::from).to_vec()
}

/// `probe "command"`, `probe "http" or probe "none"`, for messages.
fn kinds() -> String {
    either(KINDS.map(|k| label("probe", k)))
}

pub(super) fn parse(block: LabeledBlock<'_>) -> Result<Probe, ConfigError> {
    let (kind, t) = block.into_kind(&kinds())?;
    let kind = kind.as_str();
    let timeout = t.duration("timeout")?.unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() {
        return Err(t.err("timeout", "must be more than zero, such as \"120s\""));
    }
    let probe = match kind {
        COMMAND => {
            let command = t.strings("command")?.unwrap_or_else(default_command);
            if command.is_empty() || command[0].is_empty() {
                return Err(t.err("command", "is empty; give the program and its arguments as a list"));
            }
            if command.iter().any(|a| a == "--bare") {
                return Err(
                    t.err("command", "uses --bare, which ignores the OAuth login the probe must prove; remove --bare")
                );
            }
            Probe::Command { command, timeout }
        }
        HTTP => {
            let raw = t.string("url")?.unwrap_or_else(|| DEFAULT_HTTP_URL.into());
            let url =
                url::Url::parse(&raw).ok().filter(|u| matches!(u.scheme(), "http" | "https")).ok_or_else(|| {
                    t.err("url", "is not an http(s) URL; write one such as \"https://api.anthropic.com\"")
                })?;
            let model = t.string("model")?.unwrap_or_else(|| DEFAULT_HTTP_MODEL.into());
            Probe::Http { url, model, timeout }
        }
        NONE => Probe::None,
        _ => return Err(t.block_err(format!("unknown probe kind; use {}", kinds()))),
    };
    t.finish(&[])?;
    Ok(probe)
}
