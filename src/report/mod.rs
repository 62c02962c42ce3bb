//! The result of one run, [`Outcome`], and where it goes: one logfmt line to the
//! private log (`~/.local/state/claude-auth-sync/sync.log`, dir 0700, file 0600) and
//! to journald (or stderr without a journal), and an exit code. [`state`] keeps what
//! the next run must know (a DEGRADED streak becomes a FAIL).
//!
//! Every reporter consumes an `Outcome`, which holds statuses, reasons, times and
//! fingerprints only: it has no field that could carry a secret.

pub mod counters;
mod journal;
pub mod metrics;
pub mod state;

use std::fmt::Write;
use std::io::{IsTerminal, Write as _};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::SystemTime;

use crate::config::{Journald, LogConfig};
use crate::exit::ExitCode;

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
    fn severity(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Degraded => 1,
            Status::Fail => 2,
        }
    }

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
    /// The local login is rejected and Vault's latest copy is rejected, absent or the same: log in again.
    LoginRequired,
    /// The local login is rejected and Vault cannot be reached to mend it.
    VaultUnreachableDuringRecovery,
    /// A credential variable in the environment outranks the login (with `env_shadowing = "fail"`).
    EnvShadowing,
    /// The probe could not judge the login (timeout, 429, 5xx): nothing was changed.
    ProbeInconclusive,
    /// The probe cannot run at all (the CLI is missing).
    ProbeError,
    /// The local file is a symlink, FIFO, huge, or has the wrong shape: left alone.
    CredentialsFileInvalid,
    /// The local file could not be written.
    LocalWriteFailed,
    /// Another writer holds the file's locks for too long.
    LocalBusy,
    /// The user's Vault policy does not cover the secret.
    VaultPermissionDenied,
    /// Vault's data for the secret has the wrong shape: left alone.
    VaultDataInvalid,
    /// Vault kept answering with newer versions while writing.
    VaultConflict,
    /// A rendered template could not be rendered or its command failed.
    TemplateError,
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
    /// The local login had its tokens but lacked fields the CLI needs; it was repaired.
    LoginIncomplete,
    /// The local login works, but Vault holds another one that cannot be ordered against
    /// it (later `expiresAt`, no lineage): it is not backed up until someone decides.
    BackupUndecided,
    /// DEGRADED for too many runs in a row or too long (`degraded { }`): the cause is
    /// no longer transient; the line's `cause=` names it.
    DegradedPersistent,
}

/// The words of [`Reason`] (`reason=` in the line) and [`Reason::ALL`], from one list:
/// `as_str`'s match is exhaustive, so a new reason cannot be left out of `ALL`, which the
/// troubleshooting table (docs/troubleshooting.md) is checked against.
macro_rules! reason_words {
    ($($variant:ident => $word:literal,)*) => {
        impl Reason {
            /// Every reason, in the order of the words below.
            pub const ALL: &[Reason] = &[$(Reason::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$variant => $word,)*
                }
            }
        }
    };
}

reason_words! {
    LoginRequired => "login_required",
    VaultUnreachableDuringRecovery => "vault_unreachable_during_recovery",
    EnvShadowing => "env_shadowing",
    ProbeInconclusive => "probe_inconclusive",
    ProbeError => "probe_error",
    CredentialsFileInvalid => "credentials_file_invalid",
    LocalWriteFailed => "local_write_failed",
    LocalBusy => "local_busy",
    VaultPermissionDenied => "vault_permission_denied",
    VaultDataInvalid => "vault_data_invalid",
    VaultConflict => "vault_conflict",
    TemplateError => "template_error",
    VaultUnreachable => "vault_unreachable",
    VaultTokenInvalid => "vault_token_invalid",
    VaultTokenDrift => "vault_token_drift",
    VaultCredentialUnusable => "vault_credential_unusable",
    SinkWriteFailed => "sink_write_failed",
    VaultTlsError => "vault_tls_error",
    VaultError => "vault_error",
    LoginIncomplete => "login_incomplete",
    BackupUndecided => "backup_undecided",
    DegradedPersistent => "degraded_persistent",
}

/// What a run did, as the line's `action=` and the journal's `CLAUDE_AUTH_SYNC_ACTION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Vault accepted this user's token; nothing else was asked (no template, `exit_after_auth`).
    Authenticated,
    /// The local login works and Vault now holds it.
    BackedUp,
    /// The local login works and Vault already holds it (or, provably, its successor).
    Verified,
    /// The local login was broken; Vault's copy was restored and works.
    Recovered,
    /// The local login works, but Vault could not take its backup.
    BackupPending,
    /// Vault's copy was restored, but the probe could not judge it.
    RestoredUnverified,
    /// A rendered file already held what its template renders.
    Unchanged,
    /// A rendered file was written (and its command run).
    Rendered,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Authenticated => "authenticated",
            Action::BackedUp => "backed_up",
            Action::Verified => "verified",
            Action::Recovered => "recovered",
            Action::BackupPending => "backup_pending",
            Action::RestoredUnverified => "restored_unverified",
            Action::Unchanged => "unchanged",
            Action::Rendered => "rendered",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub reason: Option<Reason>,
    pub action: Option<Action>,
    /// Non-secret facts: durations, versions, fingerprints.
    pub facts: Vec<(&'static str, String)>,
    /// A sentence for the person reading the log; built from typed errors, never from a secret.
    pub message: Option<String>,
    /// The Vault token's time to live after this run's renewal (for the metrics).
    pub token_ttl: Option<std::time::Duration>,
}

impl Outcome {
    pub fn ok(action: Action) -> Self {
        Outcome {
            status: Status::Ok,
            reason: None,
            action: Some(action),
            facts: Vec::new(),
            message: None,
            token_ttl: None,
        }
    }

    pub fn degraded(reason: Reason, message: impl Into<String>) -> Self {
        Outcome {
            status: Status::Degraded,
            reason: Some(reason),
            action: None,
            facts: Vec::new(),
            message: Some(message.into()),
            token_ttl: None,
        }
    }

    pub fn fail(reason: Reason, message: impl Into<String>) -> Self {
        Outcome {
            status: Status::Fail,
            reason: Some(reason),
            action: None,
            facts: Vec::new(),
            message: Some(message.into()),
            token_ttl: None,
        }
    }

    pub fn action(mut self, action: Action) -> Self {
        self.action = Some(action);
        self
    }

    /// What happened in one word: the action when it went well, else the reason (for
    /// `templates=backed_up,login_required`, one word per template).
    pub fn in_a_word(&self) -> &'static str {
        match (self.status, self.action, self.reason) {
            (Status::Ok, Some(a), _) => a.as_str(),
            (_, _, Some(r)) => r.as_str(),
            (s, _, None) => s.as_str(),
        }
    }

    /// The worse of two outcomes (FAIL over DEGRADED over OK; the first of equals).
    pub fn worst(self, other: Outcome) -> Outcome {
        if other.status.severity() > self.status.severity() { other } else { self }
    }

    pub fn fact(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.facts.push((key, value.into()));
        self
    }

    /// OK, DEGRADED (EX_TEMPFAIL) or FAIL, as DESIGN.md's outcome table says.
    pub fn exit_code(&self) -> ExitCode {
        match self.status {
            Status::Ok => ExitCode::Ok,
            Status::Degraded => ExitCode::TempFail,
            Status::Fail => ExitCode::Fail,
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
            let _ = write!(line, " action={}", a.as_str());
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

/// Writes the outcome's line to the private log and to journald (stderr without one).
/// A reporter that fails is warned about; the outcome stays what it is.
pub fn emit(outcome: &Outcome, log: &LogConfig, user: &str, now: SystemTime) {
    let line = outcome.logfmt(user, now);
    if let Err(e) = append(&log.path, &line) {
        tracing::warn!("cannot write the log {}: {e}", log.path.display());
    }
    let journal = match log.journald {
        Journald::Off => false,
        Journald::Auto if !log.journald_socket.exists() => false,
        Journald::Auto | Journald::On => {
            let priority = match outcome.status {
                Status::Ok => "6",
                Status::Degraded => "4",
                Status::Fail => "3",
            };
            let sent = journal::send(
                &log.journald_socket,
                &[
                    ("MESSAGE", &line),
                    ("PRIORITY", priority),
                    ("SYSLOG_IDENTIFIER", "claude-auth-sync"),
                    ("CLAUDE_AUTH_SYNC_STATUS", outcome.status.as_str()),
                    ("CLAUDE_AUTH_SYNC_REASON", outcome.reason.map_or("none", Reason::as_str)),
                    ("CLAUDE_AUTH_SYNC_ACTION", outcome.action.map_or("none", Action::as_str)),
                    ("OS_USER", user),
                ],
            );
            if let Err(e) = &sent {
                tracing::warn!("cannot write to journald at {}: {e}", log.journald_socket.display());
            }
            sent.is_ok()
        }
    };
    // Under systemd stderr goes to the journal too: print only when it is not already there.
    if !journal || std::io::stderr().is_terminal() {
        eprintln!("{line}");
    }
}

/// Appends one line; creates the directory (0700) and the file (0600) when missing.
fn append(path: &Path, line: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let mut f =
        std::fs::OpenOptions::new().append(true).create(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path)?;
    f.write_all(format!("{line}\n").as_bytes())
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
    fn docs_troubleshooting_md_has_a_row_for_every_reason_and_no_other() {
        let words: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        let mut unique = words.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), words.len(), "every reason once, each with its own word");
        let doc =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/troubleshooting.md")).unwrap();
        let rows: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once("` |"))
            .map(|(reason, _)| reason)
            .collect();
        let missing: Vec<&&str> = words.iter().filter(|w| !rows.contains(w)).collect();
        assert!(missing.is_empty(), "docs/troubleshooting.md has no row for reason(s) {missing:?}");
        let unknown: Vec<&&str> = rows.iter().filter(|r| !words.contains(r)).collect();
        assert!(unknown.is_empty(), "docs/troubleshooting.md has rows for reasons that do not exist: {unknown:?}");
        assert_eq!(rows.len(), words.len(), "one row per reason");
    }

    #[test]
    fn line_shape_and_quoting() {
        let o = Outcome::fail(Reason::VaultTokenDrift, "meta os_user is \"bob\"").fact("token_ttl", "1h");
        let line = o.logfmt("alice", UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        assert_eq!(
            line,
            r#"ts=2027-01-15T08:00:00Z status=FAIL user=alice reason=vault_token_drift token_ttl=1h msg="meta os_user is \"bob\"""#
        );
        assert_eq!(o.exit_code().code(), 1);
        assert_eq!(Outcome::degraded(Reason::VaultUnreachable, "x").exit_code().code(), 75);
        assert_eq!(Outcome::ok(Action::Authenticated).exit_code().code(), 0);
    }

    #[test]
    fn in_a_word_is_the_action_when_ok_else_the_reason() {
        assert_eq!(Outcome::ok(Action::BackedUp).in_a_word(), "backed_up");
        assert_eq!(Outcome::fail(Reason::LoginRequired, "x").action(Action::Verified).in_a_word(), "login_required");
        assert_eq!(Outcome::degraded(Reason::ProbeInconclusive, "x").in_a_word(), "probe_inconclusive");
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
