//! Proving the local login with a real inference call, and sorting the answer into
//! [`Verdict`]s: it works, it is rejected (restore from Vault), or it cannot be
//! judged now (change nothing).
//!
//! Only an auth rejection may lead to a restore: an unknown failure is inconclusive,
//! never a reason to replace a login. Probe output is classified, never logged: the
//! detail is a short description such as `HTTP 401`.

mod classify;
mod command;
mod http;

use serde_json::{Map, Value};

use crate::config::Probe;

pub use classify::classify;

/// Variables that outrank the per-user login in Claude Code; never passed to a probe.
pub const SHADOWING_ENV: [&str; 3] = ["CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// 401/403, "Not logged in", an expired or refused token, a blanked object.
    AuthRejected(String),
    /// No network, a timeout, 429, 5xx, overloaded: try again later.
    Transient(String),
    /// The probe itself cannot run (the program is missing): a person must fix it.
    Broken(String),
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::AuthRejected(_) => "auth_rejected",
            Verdict::Transient(_) => "transient",
            Verdict::Broken(_) => "broken",
        }
    }
}

/// Runs the configured probe against the login in `obj` (the local object as read).
pub async fn run(probe: &Probe, obj: &Map<String, Value>, now_ms: u64) -> Verdict {
    if *probe != Probe::None {
        crate::report::counters::probe();
    }
    match probe {
        Probe::Command { command, timeout } => command::run(command, *timeout).await,
        Probe::Http { url, model, timeout } => http::run(url, model, *timeout, obj, now_ms).await,
        Probe::None => Verdict::Ok,
    }
}
