//! What a provisioner run did, user by user: the [`Summary`] the CLI prints as text or
//! JSON, its exit code, and the typed [`Change`] every flow records (a verb with its
//! imperative and past forms, so a dry run says "would write …" and a real one "wrote …").
//!
//! It only describes: it never changes Vault, a home or systemd, and it never holds a
//! secret (changes name paths, roles and policies, never a value).

use std::fmt::Display;

use serde::Serialize;

use crate::exit::ExitCode;

/// Which run this was: with an admin token, or the routine check without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Admin,
    Routine,
}

/// The report of one run, in roster order, then the pruned users.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub mode: Mode,
    /// Nothing was changed: every action says what would be.
    pub dry_run: bool,
    /// Every user of the roster that was attempted, in roster order.
    pub users: Vec<UserSummary>,
    /// Users who left the roster (`--prune`).
    pub pruned: Vec<UserSummary>,
    /// Why the run stopped before the end of the roster (a capability the admin token lacks).
    pub stopped: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct UserSummary {
    pub user: String,
    pub status: UserStatus,
    /// What was changed (or would be, on a dry run) and what was found fine, in order.
    pub actions: Vec<String>,
    /// Why the user failed or needs an admin; what to do next.
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Ok,
    Changed,
    Failed,
    NeedsAdmin,
}

/// What the provisioner does to something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Write,
    Rewrite,
    Set,
    Mint,
    Create,
    Enable,
    Disable,
    Revoke,
    Delete,
    Destroy,
    Remove,
}

impl Verb {
    fn imperative(self) -> &'static str {
        match self {
            Verb::Write => "write",
            Verb::Rewrite => "rewrite",
            Verb::Set => "set",
            Verb::Mint => "mint",
            Verb::Create => "create",
            Verb::Enable => "enable",
            Verb::Disable => "disable",
            Verb::Revoke => "revoke",
            Verb::Delete => "delete",
            Verb::Destroy => "destroy",
            Verb::Remove => "remove",
        }
    }

    fn past(self) -> &'static str {
        match self {
            Verb::Write => "wrote",
            Verb::Rewrite => "rewrote",
            Verb::Set => "set",
            Verb::Mint => "minted",
            Verb::Create => "created",
            Verb::Enable => "enabled",
            Verb::Disable => "disabled",
            Verb::Revoke => "revoked",
            Verb::Delete => "deleted",
            Verb::Destroy => "destroyed",
            Verb::Remove => "removed",
        }
    }
}

/// One change: a verb and what it acts on ("policy claude-auth-sync-alice").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    verb: Verb,
    what: String,
}

impl Change {
    pub fn new(verb: Verb, what: impl Display) -> Change {
        Change { verb, what: what.to_string() }
    }
}

impl UserSummary {
    pub(super) fn new(user: &str) -> Self {
        UserSummary { user: user.into(), status: UserStatus::Ok, actions: Vec::new(), problem: None }
    }

    /// Records `change` as made: "wrote policy x".
    pub(super) fn done(&mut self, change: &Change) {
        self.changed(format!("{} {}", change.verb.past(), change.what));
    }

    /// Records `change` as what a dry run would make: "would write policy x".
    pub(super) fn would(&mut self, change: &Change) {
        self.changed(format!("would {} {}", change.verb.imperative(), change.what));
    }

    /// A change said in words of its own (a repair the home reports).
    pub(super) fn changed(&mut self, action: String) {
        self.status = UserStatus::Changed;
        self.actions.push(action);
    }

    /// Something found fine or left alone; the status stays as it is.
    pub(super) fn note(&mut self, note: String) {
        self.actions.push(note);
    }

    pub(super) fn fail(mut self, problem: impl Display) -> Self {
        self.status = UserStatus::Failed;
        self.problem = Some(format!("{problem}; nothing more was changed for this user"));
        self
    }

    pub(super) fn needs_admin(mut self, why: impl Display) -> Self {
        self.status = UserStatus::NeedsAdmin;
        self.problem = Some(why.to_string());
        self
    }
}

impl Summary {
    /// 0 when every user is fine, 1 when anyone failed or needs an admin, or the run stopped.
    pub fn exit_code(&self) -> ExitCode {
        let bad = |u: &UserSummary| matches!(u.status, UserStatus::Failed | UserStatus::NeedsAdmin);
        if self.stopped.is_some() || self.users.iter().chain(&self.pruned).any(bad) {
            ExitCode::Fail
        } else {
            ExitCode::Ok
        }
    }

    /// One line per user, then the users that need an admin, then why the run stopped.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let line = |u: &UserSummary| {
            let status = match u.status {
                UserStatus::Ok => "ok",
                UserStatus::Changed => "changed",
                UserStatus::Failed => "FAILED",
                UserStatus::NeedsAdmin => "NEEDS ADMIN",
            };
            let mut l = format!("{}: {status}", u.user);
            if !u.actions.is_empty() {
                l.push_str(&format!(": {}", u.actions.join("; ")));
            }
            if let Some(p) = &u.problem {
                l.push_str(&format!(" — {p}"));
            }
            l + "\n"
        };
        for u in &self.users {
            out.push_str(&line(u));
        }
        for u in &self.pruned {
            out.push_str(&format!("pruned {}", line(u)));
        }
        let admin: Vec<&UserSummary> = self.users.iter().filter(|u| u.status == UserStatus::NeedsAdmin).collect();
        if !admin.is_empty() {
            out.push_str("Users that need an admin (re-run with an admin token):\n");
            for u in admin {
                out.push_str(&format!("  {}: {}\n", u.user, u.problem.as_deref().unwrap_or_default()));
            }
        }
        if let Some(why) = &self.stopped {
            out.push_str(&format!("Stopped: {why}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_reads_as_done_or_as_what_a_dry_run_would_do() {
        let mut r = UserSummary::new("alice");
        r.note("token kept".into());
        assert_eq!(r.status, UserStatus::Ok, "a note changes nothing");
        r.done(&Change::new(Verb::Mint, "a new token (--rotate)"));
        r.would(&Change::new(Verb::Destroy, "1 stray secret-id(s)"));
        r.done(&Change::new(Verb::Set, "max_versions=10"));
        assert_eq!(r.status, UserStatus::Changed);
        assert_eq!(
            r.actions,
            [
                "token kept",
                "minted a new token (--rotate)",
                "would destroy 1 stray secret-id(s)",
                "set max_versions=10"
            ]
        );
    }

    #[test]
    fn anyone_failed_or_waiting_for_an_admin_fails_the_run() {
        let summary = |users: Vec<UserSummary>, stopped: Option<String>| Summary {
            mode: Mode::Admin,
            dry_run: false,
            users,
            pruned: Vec::new(),
            stopped,
        };
        assert_eq!(summary(vec![UserSummary::new("a")], None).exit_code(), ExitCode::Ok);
        assert_eq!(summary(vec![UserSummary::new("a").fail("x")], None).exit_code(), ExitCode::Fail);
        let waiting = summary(vec![UserSummary::new("a").needs_admin("credential revoked")], None);
        assert_eq!(waiting.exit_code(), ExitCode::Fail);
        assert_eq!(
            waiting.text(),
            "a: NEEDS ADMIN — credential revoked\nUsers that need an admin (re-run with an admin token):\n  a: credential revoked\n"
        );
        assert_eq!(summary(Vec::new(), Some("a: no".into())).exit_code(), ExitCode::Fail);
    }
}
