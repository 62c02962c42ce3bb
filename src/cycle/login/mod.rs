//! A JSON template's run: read the local object, read Vault's latest, probe, then
//! back up (a working login that Vault does not hold yet: [`backup`]) or recover
//! (restore Vault's latest, probe once more, write back what the CLI refreshed:
//! [`recovery`]). This file reads, repairs, and decides which of the two runs.
//!
//! Rules it must never break: only an auth rejection leads to a restore; a blanked or incomplete
//! object is never backed up; a login whose tokens are there but whose fields are not
//! is repaired, never replaced by an older copy; which login is newer comes from the
//! lineage Vault keeps ([`lineage`]), never from `expiresAt` alone, and where nobody can
//! tell the run says so; Vault never regresses; a restore that the probe rejects is
//! undone, even when the CLI blanked the restored copy meanwhile; a transient probe
//! result changes nothing anywhere; a file that is not strict JSON is rewritten only
//! with its bytes kept beside it.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use serde_json::{Map, Value};

mod backup;
mod recovery;

use backup::Kept;
use recovery::Trigger;

use super::lineage::{self, Order};
use super::{Clock, Local, Prober, Remote, Trouble};
use crate::config::{JsonTemplate, Restore, TemplateConfig};
use crate::probe::Verdict;
use crate::report::{Outcome, Reason, Status};
use crate::store::json_file::{FileState, LocalError, ReplaceOutcome, Replaced, Snapshot};
use crate::template::oauth;
use crate::vault::kv::Versioned;

pub struct Binding<'a> {
    pub template: &'a TemplateConfig,
    pub json: &'a JsonTemplate,
}

impl Binding<'_> {
    /// Who acts when the login is gone: Claude Code's command for its login, else the
    /// tool that writes the file (this agent cannot know its login command).
    fn relogin(&self) -> String {
        if self.json.field == CLAUDE_LOGIN && self.json.json_key == CLAUDE_LOGIN {
            "the user must log in again: claude auth login".into()
        } else {
            format!("the user must log in again with the tool that writes {}", self.template.destination.display())
        }
    }
}

/// Claude Code's login object, in its credentials file and in Vault.
const CLAUDE_LOGIN: &str = "claudeAiOauth";

/// Vault's latest version, with the synced object taken out of its data.
struct VaultCopy {
    version: u64,
    data: Map<String, Value>,
    obj: Map<String, Value>,
    /// The secret's custom_metadata: the lineage (see [`lineage`]).
    meta: HashMap<String, String>,
}

pub async fn sync(
    b: &Binding<'_>,
    remote: &impl Remote,
    local: &impl Local,
    prober: &impl Prober,
    clock: &impl Clock,
) -> Outcome {
    let run = Run {
        b,
        remote,
        local,
        prober,
        clock,
        deleted_version: Cell::new(0),
        host: lineage::this_host(),
        notes: RefCell::default(),
    };
    let o = run.sync().await;
    run.notes.take().into_iter().fold(o, |o, (k, v)| o.fact(k, v))
}

struct Run<'a, R, L, P, C> {
    b: &'a Binding<'a>,
    remote: &'a R,
    local: &'a L,
    prober: &'a P,
    clock: &'a C,
    /// The version of a soft-deleted latest version: the next write's check-and-set base.
    deleted_version: Cell<u64>,
    /// This machine's name, for the lineage.
    host: Option<String>,
    /// Facts for the log line about local repairs along the way.
    notes: RefCell<Vec<(&'static str, String)>>,
}

impl<R: Remote, L: Local, P: Prober, C: Clock> Run<'_, R, L, P, C> {
    async fn sync(&self) -> Outcome {
        // Vault first, then the file: the login judged against Vault's copy is the newest
        // the file held, never a read from before another writer's backup.
        let copy = match self.remote.latest().await {
            Ok(v) => self.copy(v),
            Err(t) => Err(t),
        };
        let mut before = match self.local.read() {
            Ok(s) => s,
            Err(e) => return local_error(e),
        };
        // A whole login in a file that is not strict JSON (a trailing comma, a comment):
        // the CLI cannot read it. Rewrite it as JSON first, its bytes kept beside it.
        if before.lenient
            && let Some(login) = before.login().cloned()
        {
            before = match self.replace(&login, &before).and_then(|_| self.local.read()) {
                Ok(s) => s,
                Err(e) => return local_error(e),
            };
        }
        let missing = before.object().map(|o| oauth::facts(o).missing).unwrap_or_default();
        if missing.is_empty() {
            return self.judge_local(before, copy).await;
        }
        let o = self.mend(before, copy).await;
        self.repaired(o, &missing)
    }

    /// The local login's tokens are there, but not everything the CLI needs (a Claude
    /// Code release rewrote it): repair it in place, keeping the tokens, then judge it.
    /// Only a copy Vault provably holds as its successor is restored instead: refreshing
    /// with a spent refresh token could get the login revoked.
    async fn mend(&self, before: Snapshot, copy: Result<Option<VaultCopy>, Trouble>) -> Outcome {
        let local = before.object().expect("an incomplete object").clone();
        let vaults = copy.as_ref().ok().and_then(Option::as_ref).filter(|c| oauth::usable(&c.obj));
        if let Some(c) = vaults
            && self.order(&local, c) == (Order::VaultNewer { proven: true })
        {
            return self
                .recover(
                    &before,
                    copy,
                    "the local login is incomplete, and Vault holds its successor",
                    Trigger::Unprobed,
                )
                .await;
        }
        let fixed = oauth::repair(&local, vaults.map(|c| &c.obj), self.clock.now_ms());
        match self.replace(&fixed, &before).and_then(|_| self.local.read()) {
            Ok(now) => self.judge_local(now, copy).await,
            Err(e) => local_error(e),
        }
    }

    /// The outcome of a run that repaired an incomplete login: the run's own, and at
    /// best `DEGRADED` with its own reason: whatever broke the object may do it again.
    fn repaired(&self, o: Outcome, missing: &[&str]) -> Outcome {
        let o = o.fact("repaired", missing.join(","));
        if o.status != Status::Ok {
            return o;
        }
        let message = format!(
            "{} had its tokens but no valid {} (rewritten by a Claude Code release?); repaired in place keeping the tokens{}",
            self.b.json.json_key,
            missing.join(" or "),
            if missing.contains(&"expiresAt") { ", with an expiry that makes the CLI refresh them" } else { "" },
        );
        Outcome { status: Status::Degraded, reason: Some(Reason::LoginIncomplete), message: Some(message), ..o }
    }

    /// The decision for a local object that is whole, blanked or missing.
    async fn judge_local(&self, before: Snapshot, copy: Result<Option<VaultCopy>, Trouble>) -> Outcome {
        let b = self.b;
        let local_login = before.login();
        let restore_first = match b.json.restore {
            // Only for secrets that do not rotate (config refuses the others): Vault's
            // copy is the truth whenever it differs.
            Restore::Always => {
                copy.as_ref().is_ok_and(|c| c.as_ref().is_some_and(|c| local_login.is_none_or(|local| *local != c.obj)))
            }
            Restore::IfMissing => local_login.is_none(),
            Restore::OnFailure | Restore::Never => false,
        };
        if restore_first {
            return self.recover(&before, copy, "restore is configured before the probe", Trigger::Unprobed).await;
        }

        let verdict = match local_login {
            Some(obj) => self.prober.probe(obj).await,
            None => Verdict::AuthRejected(describe(&before, b)),
        };
        match verdict {
            Verdict::Ok => self.keep(copy, local_login.expect("probed"), Kept::Local).await,
            Verdict::Transient(why) => inconclusive(&why),
            Verdict::Broken(why) => Outcome::fail(Reason::ProbeError, why).fact("probe", "broken"),
            Verdict::AuthRejected(why) if b.json.restore == Restore::Never => Outcome::fail(
                Reason::LoginRequired,
                format!("the local login is rejected ({why}); restore = \"never\""),
            )
            .fact("probe", "auth_rejected"),
            Verdict::AuthRejected(why) => self.recover(&before, copy, &why, Trigger::Rejected).await,
        }
    }

    /// [`Local::replace`], noting where bytes that were not strict JSON were kept.
    fn replace(&self, obj: &Map<String, Value>, expected: &Snapshot) -> Result<ReplaceOutcome, LocalError> {
        let r = self.local.replace(obj, expected)?;
        if let ReplaceOutcome::Replaced(Replaced { kept: Some(kept), .. }) = &r {
            let name = kept.file_name().unwrap_or_default().to_string_lossy().into_owned();
            self.notes.borrow_mut().push(("original_kept", name));
        }
        Ok(r)
    }

    fn order(&self, local: &Map<String, Value>, c: &VaultCopy) -> Order {
        lineage::order(local, &c.obj, &c.meta, None)
    }

    /// Takes the synced object out of Vault's data; any other shape is left alone.
    fn copy(&self, v: Option<Versioned>) -> Result<Option<VaultCopy>, Trouble> {
        let Some(v) = v else { return Ok(None) };
        if v.deleted {
            self.deleted_version.set(v.version);
            return Ok(None);
        }
        let field = &self.b.json.field;
        match v.data.get(field) {
            Some(Value::Object(obj)) => {
                Ok(Some(VaultCopy { version: v.version, obj: obj.clone(), data: v.data, meta: v.custom_metadata }))
            }
            other => Err(Trouble::DataInvalid(format!(
                "Vault's {} (version {}) holds {} under {field}, not an object; it is left as it is: fix or delete it in Vault",
                &self.b.template.secret,
                v.version,
                if other.is_none() { "nothing" } else { "something else" },
            ))),
        }
    }
}

fn inconclusive(why: &str) -> Outcome {
    Outcome::degraded(Reason::ProbeInconclusive, format!("the login could not be judged: {why}; nothing was changed"))
        .fact("probe", "transient")
}

fn local_error(e: LocalError) -> Outcome {
    let reason = match &e {
        e if e.is_transient() => return Outcome::degraded(Reason::LocalBusy, e.to_string()),
        LocalError::Write(_) | LocalError::Io { .. } | LocalError::Busy(_) => Reason::LocalWriteFailed,
        _ => Reason::CredentialsFileInvalid,
    };
    Outcome::fail(reason, e.to_string())
}

/// Why there is nothing to probe.
fn describe(s: &Snapshot, b: &Binding<'_>) -> String {
    let key = &b.json.json_key;
    match s.state {
        FileState::Missing => "not logged in: the file does not exist".into(),
        FileState::NotJson => "the file is not JSON".into(),
        FileState::NoObject => format!("the file has no {key}"),
        FileState::Object(_) => format!("{key} is blanked"),
    }
}

#[cfg(test)]
mod tests;
