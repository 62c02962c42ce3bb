//! The result of one run, [`Outcome`], and its one logfmt line and exit code.
//!
//! Every reporter consumes an `Outcome`, which holds statuses, reasons, times and
//! fingerprints only: it has no field that could carry a secret.

use std::fmt::Write;
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything verified.
    Ok,
    /// Something non-fatal is off; nothing was changed and nobody is paged.
    Degraded,
    /// A person must act; [`Reason`] says who.
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Degraded => "DEGRADED",
            Status::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Vault is down, sealed, overloaded or slow; it may pass.
    VaultUnreachable,
    /// The Vault credential was refused (revoked, expired): an admin re-provisions.
    VaultTokenInvalid,
    /// The token is not this user's expected identity: an admin re-provisions.
    VaultTokenDrift,
    /// The local credential file is missing, unreadable or too open: the message says the fix.
    VaultCredentialUnusable,
    /// A sink could not be written.
    SinkWriteFailed,
    /// Vault's TLS certificate is not trusted: the config or the server needs fixing.
    VaultTlsError,
    /// Vault answered something this agent cannot read, or the client could not be set up.
    VaultError,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::VaultUnreachable => "vault_unreachable",
            Reason::VaultTokenInvalid => "vault_token_invalid",
            Reason::VaultTokenDrift => "vault_token_drift",
            Reason::VaultCredentialUnusable => "vault_credential_unusable",
            Reason::SinkWriteFailed => "sink_write_failed",
            Reason::VaultTlsError => "vault_tls_error",
            Reason::VaultError => "vault_error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub reason: Option<Reason>,
    pub action: Option<&'static str>,
    /// Non-secret facts: durations, versions, fingerprints.
    pub facts: Vec<(&'static str, String)>,
    /// A sentence for the person reading the log; built from typed errors, never from a secret.
    pub message: Option<String>,
}

impl Outcome {
    pub fn ok(action: &'static str) -> Self {
        Outcome { status: Status::Ok, reason: None, action: Some(action), facts: Vec::new(), message: None }
    }

    pub fn degraded(reason: Reason, message: impl Into<String>) -> Self {
        Outcome {
            status: Status::Degraded,
            reason: Some(reason),
            action: None,
            facts: Vec::new(),
            message: Some(message.into()),
        }
    }

    pub fn fail(reason: Reason, message: impl Into<String>) -> Self {
        Outcome {
            status: Status::Fail,
            reason: Some(reason),
            action: None,
            facts: Vec::new(),
            message: Some(message.into()),
        }
    }

    pub fn fact(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.facts.push((key, value.into()));
        self
    }

    /// 0, 75 (EX_TEMPFAIL) or 1, as DESIGN.md's outcome table says.
    pub fn exit_code(&self) -> u8 {
        match self.status {
            Status::Ok => 0,
            Status::Degraded => 75,
            Status::Fail => 1,
        }
    }

    /// `ts=... status=OK user=alice action=... key=value ... msg="..."`
    pub fn logfmt(&self, user: &str, now: SystemTime) -> String {
        let mut line = format!(
            "ts={} status={} user={}",
            humantime::format_rfc3339_seconds(now),
            self.status.as_str(),
            value(user)
        );
        if let Some(r) = self.reason {
            let _ = write!(line, " reason={}", r.as_str());
        }
        if let Some(a) = self.action {
            let _ = write!(line, " action={a}");
        }
        for (k, v) in &self.facts {
            let _ = write!(line, " {k}={}", value(v));
        }
        if let Some(m) = &self.message {
            let _ = write!(line, " msg={}", value(m));
        }
        line
    }
}

/// A logfmt value: bare when it is safe, else quoted with `"` and `\` escaped.
fn value(v: &str) -> String {
    if !v.is_empty() && v.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '=' && c != '\\') {
        return v.to_string();
    }
    let mut q = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            c if c.is_control() => q.push(' '),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// A duration for a log line: its two largest units of d/h/m/s, e.g. `7h12m`, `32d`, `1s`.
pub fn duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let parts = [(s / 86_400, "d"), (s / 3600 % 24, "h"), (s / 60 % 60, "m"), (s % 60, "s")];
    let first = parts.iter().position(|(n, _)| *n > 0).unwrap_or(3);
    parts[first..].iter().take(2).filter(|(n, _)| *n > 0 || first == 3).map(|(n, u)| format!("{n}{u}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn line_shape_and_quoting() {
        let o = Outcome::fail(Reason::VaultTokenDrift, "meta os_user is \"bob\"").fact("token_ttl", "1h");
        let line = o.logfmt("alice", UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        assert_eq!(
            line,
            r#"ts=2027-01-15T08:00:00Z status=FAIL user=alice reason=vault_token_drift token_ttl=1h msg="meta os_user is \"bob\"""#
        );
        assert_eq!(o.exit_code(), 1);
        assert_eq!(Outcome::degraded(Reason::VaultUnreachable, "x").exit_code(), 75);
        assert_eq!(Outcome::ok("authenticated").exit_code(), 0);
    }

    #[test]
    fn durations_are_compact() {
        assert_eq!(duration(Duration::from_secs(7 * 3600 + 12 * 60)), "7h12m");
        assert_eq!(duration(Duration::from_millis(1500)), "1s");
        assert_eq!(duration(Duration::from_secs(32 * 86_400)), "32d");
        assert_eq!(duration(Duration::from_secs(23 * 86_400 + 3 * 3600 + 5)), "23d3h");
        assert_eq!(duration(Duration::from_secs(150)), "2m30s");
        assert_eq!(duration(Duration::ZERO), "0s");
    }
}
