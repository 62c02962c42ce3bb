//! A JSON template's run: read the local object, read Vault's latest, probe, then
//! back up (a working login that Vault does not hold yet) or recover (restore
//! Vault's latest, probe once more, write back what the CLI refreshed).
//!
//! Rules kept here: only an auth rejection leads to a restore; a blanked or incomplete
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

use super::lineage::{self, Order};
use super::{Clock, Local, Phase, Prober, Remote, Trouble};
use crate::config::{JsonTemplate, Restore, TemplateConfig};
use crate::probe::Verdict;
use crate::report::{self, Action, Outcome, Reason, Status};
use crate::store::json_file::{FileState, LocalError, ReplaceOutcome, Replaced, Snapshot};
use crate::template::oauth;
use crate::vault::kv::{Versioned, Written};

pub struct Binding<'a> {
    pub template: &'a TemplateConfig,
    pub json: &'a JsonTemplate,
}

/// What a run keeps after a good probe: it names the run's action, and says whether
/// Vault's copy still counts against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kept {
    /// The local login (as the CLI may have refreshed it during the probe).
    Local,
    /// Vault's copy, restored by this run.
    Restored,
    /// The local login, put back after Vault's copy was restored and rejected: that copy
    /// is worth nothing against it.
    LocalOverRejected,
}

impl Kept {
    /// The action when Vault receives the login.
    fn stored(self) -> Action {
        if self == Kept::Restored { Action::Recovered } else { Action::BackedUp }
    }

    /// The action when Vault already holds the login or, provably, its successor.
    fn unchanged(self) -> Action {
        if self == Kept::Restored { Action::Recovered } else { Action::Verified }
    }
}

/// Why a recovery starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// The probe rejected the local login.
    Rejected,
    /// A rule restores before any probe (`restore` first, an incomplete login whose
    /// successor Vault holds): the local login itself was never judged.
    Unprobed,
}

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

    /// After a good probe of `probed`: re-read the file (the probe may have refreshed the
    /// token) and store what is there: that login, or the whole one that replaced it on
    /// disk meanwhile.
    async fn keep(&self, copy: Result<Option<VaultCopy>, Trouble>, probed: &Map<String, Value>, kept: Kept) -> Outcome {
        let now = match self.local.read() {
            Ok(s) => s,
            Err(e) => return local_error(e),
        };
        let Some(obj) = now.login() else {
            return Outcome::degraded(
                Reason::ProbeInconclusive,
                "the login changed on disk during the probe; nothing was changed",
            )
            .fact("probe", "ok");
        };
        let o = match copy {
            Err(t) => t.outcome(Phase::Backup),
            Ok(c) if !self.b.json.writeback => {
                Outcome::ok(kept.unchanged()).fact("vault_version", c.map_or(0, |c| c.version).to_string())
            }
            // What replaced the probed login during the probe is newer than it.
            Ok(copy) => self.store(obj.clone(), copy, kept, (obj != probed).then_some(probed)).await,
        };
        self.facts(o.fact("probe", "ok"), obj)
    }

    /// Writes `obj` (a verified login) to Vault unless Vault holds it or, provably, its
    /// successor. A copy that only `expiresAt` calls newer is left alone and reported.
    /// `rotated_from`: the login `obj` replaced on disk during this run's probe.
    async fn store(
        &self,
        mut obj: Map<String, Value>,
        mut copy: Option<VaultCopy>,
        kept: Kept,
        mut rotated_from: Option<&Map<String, Value>>,
    ) -> Outcome {
        for _ in 0..2 {
            if let Some(c) = &copy {
                if c.obj == obj {
                    return Outcome::ok(kept.unchanged()).fact("vault_version", c.version.to_string());
                }
                match lineage::order(&obj, &c.obj, &c.meta, rotated_from) {
                    // A rejected copy is worth nothing against a verified login.
                    _ if kept == Kept::LocalOverRejected => {}
                    Order::VaultNewer { proven: true } => {
                        return Outcome::ok(kept.unchanged())
                            .fact("vault_version", c.version.to_string())
                            .fact("vault_newer", "true");
                    }
                    Order::VaultNewer { proven: false } => {
                        let o = self.undecided(c);
                        return if kept == Kept::Restored { o.action(Action::Recovered) } else { o };
                    }
                    Order::Same | Order::LocalNewer | Order::Unknown => {}
                }
            }
            let mut data = copy.as_ref().map(|c| c.data.clone()).unwrap_or_default();
            data.insert(self.b.json.field.clone(), Value::Object(obj.clone()));
            let cas = copy.as_ref().map_or(self.deleted_version.get(), |c| c.version);
            let meta = lineage::metadata(&obj, copy.as_ref().map(|c| (&c.obj, &c.meta)), self.host.as_deref());
            match self.remote.write(&data, cas, &meta).await {
                Ok(Written::Version(v)) => return Outcome::ok(kept.stored()).fact("vault_version", v.to_string()),
                // Someone wrote meanwhile: look again (Vault, then the file), and never regress.
                Ok(Written::Conflict) => match self.remote.latest().await.and_then(|v| self.copy(v)) {
                    Ok(c) => copy = c,
                    Err(t) => return t.outcome(Phase::Backup),
                },
                Err(t) => return t.outcome(Phase::Backup),
            }
            match self.local.read() {
                Ok(now) => match now.login() {
                    Some(o) if *o == obj => {}
                    Some(o) => {
                        obj = o.clone();
                        rotated_from = None;
                    }
                    None => {
                        return Outcome::degraded(
                            Reason::ProbeInconclusive,
                            "the login changed on disk while backing it up; nothing was changed",
                        );
                    }
                },
                Err(e) => return local_error(e),
            }
        }
        Outcome::degraded(Reason::VaultConflict, "Vault's copy kept changing while writing; the backup is pending")
    }

    /// The local login works, and Vault holds another one that only its `expiresAt`
    /// calls newer: backing up could regress Vault, not backing up leaves this login
    /// without a backup. Neither happens silently.
    fn undecided(&self, c: &VaultCopy) -> Outcome {
        let secret = &self.b.template.secret;
        Outcome::degraded(
            Reason::BackupUndecided,
            format!(
                "the local login works but is not backed up: Vault's latest copy of {secret} (version {}) is another login with a later expiresAt, and nothing shows it was written after the local one (a kv put by hand, another host writing the same secret, or a clock step?). Nothing was changed; if the local login is the one to keep, delete that version (vault kv delete {secret}) and the next run backs it up",
                c.version
            ),
        )
        .fact("vault_version", c.version.to_string())
    }

    /// The local login is rejected, or a rule restores first: restore Vault's latest,
    /// probe once more, write back.
    async fn recover(
        &self,
        before: &Snapshot,
        copy: Result<Option<VaultCopy>, Trouble>,
        why: &str,
        trigger: Trigger,
    ) -> Outcome {
        let copy = match copy {
            Err(t) => return t.outcome(Phase::Recovery).fact("probe", "auth_rejected"),
            Ok(None) => return login_required(format!("the local login is rejected ({why}) and Vault holds no copy")),
            Ok(Some(c)) => c,
        };
        if !oauth::usable(&copy.obj) {
            return login_required(format!(
                "the local login is rejected ({why}) and Vault's copy is blanked or incomplete"
            ));
        }
        // What the probe judged may no longer be on disk: another writer may have
        // clobbered the file, restored it, or put a login there while the probe ran.
        let mut base = before.clone();
        let mut judged = true;
        if trigger == Trigger::Rejected {
            let now = match self.local.read() {
                Ok(s) => s,
                Err(e) => return local_error(e),
            };
            if !now.same_file(before) {
                match now.login().cloned() {
                    // Not what the probe saw: judge it before anything is restored over it.
                    Some(current) => match self.prober.probe(&current).await {
                        Verdict::Ok => return self.keep(Ok(Some(copy)), &current, Kept::Local).await,
                        Verdict::AuthRejected(_) => {}
                        Verdict::Transient(again) => return inconclusive(&again),
                        Verdict::Broken(again) => return Outcome::fail(Reason::ProbeError, again),
                    },
                    None => judged = false,
                }
                base = now;
            }
        }
        // Never replay an older login: the newer local one descends from it, so its
        // refresh token is spent, and presenting it could get the whole login revoked.
        if [before.login(), base.login()]
            .into_iter()
            .flatten()
            .any(|local| self.order(local, &copy) == Order::LocalNewer)
        {
            return login_required(format!(
                "the local login is rejected ({why}) and Vault's latest copy is older than it; an older login is never replayed"
            ));
        }
        if judged && base.login().is_some_and(|local| same_login(local, &copy.obj)) {
            return login_required(format!("the local login is rejected ({why}) and Vault holds the same login"));
        }

        match self.replace(&copy.obj, &base) {
            Ok(ReplaceOutcome::Replaced(r)) => {
                let restored = copy.obj.clone();
                self.judge(Some(r), restored, copy, why, trigger).await
            }
            // Another program (the CLI, a person) put a login there meanwhile: that is the
            // newest one; judge it instead of overwriting it.
            Ok(ReplaceOutcome::Changed(now)) => match now.login().cloned() {
                Some(o) => self.judge(None, o, copy, why, trigger).await,
                None => login_required(format!("the local login is rejected ({why}) and changed while restoring")),
            },
            Err(e) => local_error(e),
        }
    }

    /// The one retry: probe what is on disk after the restore (or what another writer put
    /// there); keep it and write it back if it works, undo the restore if it does not.
    async fn judge(
        &self,
        replaced: Option<Replaced>,
        on_disk: Map<String, Value>,
        copy: VaultCopy,
        why: &str,
        trigger: Trigger,
    ) -> Outcome {
        let version = copy.version.to_string();
        match self.prober.probe(&on_disk).await {
            Verdict::Ok => {
                let kept = if replaced.is_some() { Kept::Restored } else { Kept::Local };
                self.keep(Ok(Some(copy)), &on_disk, kept).await
            }
            Verdict::AuthRejected(again) => {
                let rolled_back = match &replaced {
                    Some(r) => self.local.rollback(r).unwrap_or_else(|e| {
                        tracing::warn!("could not put the previous login back: {e}");
                        false
                    }),
                    None => false,
                };
                // With a restore-first policy the local login itself was never probed;
                // if it works, it is backed up over the copy that was just rejected.
                if trigger == Trigger::Unprobed
                    && rolled_back
                    && let Some(previous) = replaced.as_ref().and_then(|r| r.previous.login())
                    && self.prober.probe(previous).await == Verdict::Ok
                {
                    return self.keep(Ok(Some(copy)), previous, Kept::LocalOverRejected).await;
                }
                let what = if replaced.is_some() { "Vault's latest copy" } else { "the login now on disk" };
                login_required(format!("the local login is rejected ({why}) and {what} is rejected too ({again})"))
                    .fact("vault_version", version)
            }
            Verdict::Transient(again) => {
                let o = Outcome::degraded(
                    Reason::ProbeInconclusive,
                    format!("the login now on disk could not be judged: {again}"),
                )
                .fact("vault_version", version);
                if replaced.is_some() { o.action(Action::RestoredUnverified) } else { o }
            }
            Verdict::Broken(again) => Outcome::fail(Reason::ProbeError, again),
        }
    }

    /// Time facts of the object that ends up on disk, and the relogin warning.
    fn facts(&self, mut o: Outcome, obj: &Map<String, Value>) -> Outcome {
        let f = oauth::facts(obj);
        let now = self.clock.now_ms();
        if let Some(e) = f.expires_at_ms {
            o = o.fact("access_expires_in", until(now, e));
        }
        if let Some(r) = f.refresh_expires_at_ms {
            o = o.fact("relogin_due_in", until(now, r));
            if r.saturating_sub(now) < self.b.json.warn_before.as_millis() as u64 {
                tracing::warn!(
                    "{}: the login ends in {}; log in again soon with `claude auth login`",
                    self.b.template.name,
                    until(now, r)
                );
                o = o.fact("warning", "relogin_due");
            }
        }
        o
    }
}

/// The same object, or the same refresh token.
fn same_login(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    let fp = oauth::facts(a).refresh_fp;
    a == b || (fp.is_some() && fp == oauth::facts(b).refresh_fp)
}

fn inconclusive(why: &str) -> Outcome {
    Outcome::degraded(Reason::ProbeInconclusive, format!("the login could not be judged: {why}; nothing was changed"))
        .fact("probe", "transient")
}

fn until(now_ms: u64, at_ms: u64) -> String {
    if at_ms <= now_ms {
        return "expired".into();
    }
    report::duration(std::time::Duration::from_millis(at_ms - now_ms))
}

fn login_required(msg: String) -> Outcome {
    Outcome::fail(Reason::LoginRequired, format!("{msg}; the user must log in again: claude auth login"))
        .fact("probe", "auth_rejected")
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
