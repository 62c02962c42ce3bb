//! A JSON template's run: read the local object, read Vault's latest, probe, then
//! back up (a working login that Vault does not hold yet) or recover (restore
//! Vault's latest, probe once more, write back what the CLI refreshed).
//!
//! Rules kept here: only an auth rejection leads to a restore; a blanked object is
//! never backed up; Vault never regresses to an object with an older `expiresAt`;
//! a restore that the probe rejects is undone; a transient probe result changes
//! nothing anywhere.

use std::cell::Cell;
use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{Clock, Local, Phase, Prober, Remote, Trouble};
use crate::config::{JsonTemplate, Restore, TemplateConfig};
use crate::probe::Verdict;
use crate::report::{self, Outcome, Reason};
use crate::store::json_file::{Local as LocalState, LocalError, ReplaceOutcome, Replaced, Snapshot};
use crate::template::oauth;
use crate::vault::kv::{Versioned, Written};

pub struct Binding<'a> {
    pub template: &'a TemplateConfig,
    pub json: &'a JsonTemplate,
}

/// Vault's latest version, with the synced object taken out of its data.
struct Copy {
    version: u64,
    data: Map<String, Value>,
    obj: Map<String, Value>,
}

pub async fn sync(
    b: &Binding<'_>,
    remote: &impl Remote,
    local: &impl Local,
    prober: &impl Prober,
    clock: &impl Clock,
) -> Outcome {
    let run = Run { b, remote, local, prober, clock, deleted_version: Cell::new(0) };
    let before = match local.read() {
        Ok(s) => s,
        Err(e) => return local_error(e),
    };
    let copy = match remote.latest().await {
        Ok(v) => run.copy(v),
        Err(t) => Err(t),
    };
    let local_login = before.login();

    let restore_first = match b.json.restore {
        // Vault is the source of truth, but never replays an older login over a newer one.
        Restore::Always => copy
            .as_ref()
            .is_ok_and(|c| c.as_ref().is_some_and(|c| local_login.is_none_or(|local| newer(&c.obj, local)))),
        Restore::IfMissing => local_login.is_none(),
        Restore::OnFailure | Restore::Never => false,
    };
    if restore_first {
        return run.recover(&before, copy, "restore is configured before the probe", false).await;
    }

    let verdict = match local_login {
        Some(obj) => prober.probe(obj).await,
        None => Verdict::AuthRejected(describe(&before, b)),
    };
    match verdict {
        Verdict::Ok => run.keep(copy, local_login.expect("probed"), "backed_up").await,
        Verdict::Transient(why) => inconclusive(&why),
        Verdict::Broken(why) => Outcome::fail(Reason::ProbeError, why).fact("probe", "broken"),
        Verdict::AuthRejected(why) if b.json.restore == Restore::Never => {
            Outcome::fail(Reason::LoginRequired, format!("the local login is rejected ({why}); restore = \"never\""))
                .fact("probe", "auth_rejected")
        }
        Verdict::AuthRejected(why) => run.recover(&before, copy, &why, true).await,
    }
}

struct Run<'a, R, L, P, C> {
    b: &'a Binding<'a>,
    remote: &'a R,
    local: &'a L,
    prober: &'a P,
    clock: &'a C,
    /// The version of a soft-deleted latest version: the next write's check-and-set base.
    deleted_version: Cell<u64>,
}

impl<R: Remote, L: Local, P: Prober, C: Clock> Run<'_, R, L, P, C> {
    /// Takes the synced object out of Vault's data; any other shape is left alone.
    fn copy(&self, v: Option<Versioned>) -> Result<Option<Copy>, Trouble> {
        let Some(v) = v else { return Ok(None) };
        if v.deleted {
            self.deleted_version.set(v.version);
            return Ok(None);
        }
        let field = &self.b.json.field;
        match v.data.get(field) {
            Some(Value::Object(obj)) => Ok(Some(Copy { version: v.version, obj: obj.clone(), data: v.data })),
            other => Err(Trouble::DataInvalid(format!(
                "Vault's {} (version {}) holds {} under {field}, not an object; it is left as it is: fix or delete it in Vault",
                self.b.template.secret.as_deref().unwrap_or_default(),
                v.version,
                if other.is_none() { "nothing" } else { "something else" },
            ))),
        }
    }

    /// After a good probe of `probed`: re-read the file (the probe may have refreshed the
    /// token) and store what is there, if it is that login or a newer one.
    async fn keep(
        &self,
        copy: Result<Option<Copy>, Trouble>,
        probed: &Map<String, Value>,
        action: &'static str,
    ) -> Outcome {
        let now = match self.local.read() {
            Ok(s) => s,
            Err(e) => return local_error(e),
        };
        let Some(obj) = now.login().filter(|o| *o == probed || newer(o, probed)) else {
            return Outcome::degraded(
                Reason::ProbeInconclusive,
                "the login changed on disk during the probe; nothing was changed",
            )
            .fact("probe", "ok");
        };
        let o = match copy {
            Err(t) => t.outcome(Phase::Backup),
            Ok(c) if !self.b.json.writeback => Outcome::ok(if action == "recovered" { action } else { "verified" })
                .fact("vault_version", c.map_or(0, |c| c.version).to_string()),
            Ok(copy) => self.store(obj, copy, action).await,
        };
        self.facts(o.fact("probe", "ok"), obj)
    }

    /// Writes `obj` to Vault unless Vault already holds it or something newer.
    async fn store(&self, obj: &Map<String, Value>, mut copy: Option<Copy>, action: &'static str) -> Outcome {
        let mine = oauth::facts(obj);
        let unchanged = if action == "recovered" { action } else { "verified" };
        for _ in 0..2 {
            if let Some(c) = &copy {
                if &c.obj == obj {
                    return Outcome::ok(unchanged).fact("vault_version", c.version.to_string());
                }
                if newer(&c.obj, obj) {
                    return Outcome::ok(unchanged)
                        .fact("vault_version", c.version.to_string())
                        .fact("vault_newer", "true");
                }
            }
            let mut data = copy.as_ref().map(|c| c.data.clone()).unwrap_or_default();
            data.insert(self.b.json.field.clone(), Value::Object(obj.clone()));
            let cas = copy.as_ref().map_or(self.deleted_version.get(), |c| c.version);
            match self.remote.write(&data, cas, &metadata(&mine)).await {
                Ok(Written::Version(v)) => return Outcome::ok(action).fact("vault_version", v.to_string()),
                // Someone wrote meanwhile: look again, and never regress.
                Ok(Written::Conflict) => match self.remote.latest().await.and_then(|v| self.copy(v)) {
                    Ok(c) => copy = c,
                    Err(t) => return t.outcome(Phase::Backup),
                },
                Err(t) => return t.outcome(Phase::Backup),
            }
        }
        Outcome::degraded(Reason::VaultConflict, "Vault's copy kept changing while writing; the backup is pending")
    }

    /// The local login is rejected: restore Vault's latest, probe once more, write back.
    /// `probed`: `before` went through a probe (not a restore-first policy).
    async fn recover(
        &self,
        before: &Snapshot,
        copy: Result<Option<Copy>, Trouble>,
        why: &str,
        probed: bool,
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
        if probed {
            let now = match self.local.read() {
                Ok(s) => s,
                Err(e) => return local_error(e),
            };
            if now.stamp != before.stamp {
                match now.login().cloned() {
                    // Not what the probe saw: judge it before anything is restored over it.
                    Some(current) => match self.prober.probe(&current).await {
                        Verdict::Ok => return self.keep(Ok(Some(copy)), &current, "backed_up").await,
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
        if [before.login(), base.login()].into_iter().flatten().any(|local| newer(local, &copy.obj)) {
            return login_required(format!(
                "the local login is rejected ({why}) and Vault's latest copy is older than it; an older login is never replayed"
            ));
        }
        if judged && base.login().is_some_and(|local| same_login(local, &copy.obj)) {
            return login_required(format!("the local login is rejected ({why}) and Vault holds the same login"));
        }

        match self.local.replace(&copy.obj, &base) {
            Ok(ReplaceOutcome::Replaced(r)) => {
                let restored = copy.obj.clone();
                self.judge(Some(r), restored, copy, why, probed).await
            }
            // Another program (the CLI, a person) put a login there meanwhile: that is the
            // newest one; judge it instead of overwriting it.
            Ok(ReplaceOutcome::Changed(now)) => match now.login().cloned() {
                Some(o) => self.judge(None, o, copy, why, probed).await,
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
        copy: Copy,
        why: &str,
        probed: bool,
    ) -> Outcome {
        let version = copy.version.to_string();
        match self.prober.probe(&on_disk).await {
            Verdict::Ok => {
                let action = if replaced.is_some() { "recovered" } else { "backed_up" };
                self.keep(Ok(Some(copy)), &on_disk, action).await
            }
            Verdict::AuthRejected(again) => {
                let rolled_back = match &replaced {
                    Some(r) => self.local.rollback(r).unwrap_or_else(|e| {
                        tracing::warn!("could not put the previous login back: {e}");
                        false
                    }),
                    None => false,
                };
                // With a restore-first policy the local login itself was never probed.
                if !probed
                    && rolled_back
                    && let Some(previous) = replaced.as_ref().and_then(|r| r.previous.login())
                    && self.prober.probe(previous).await == Verdict::Ok
                {
                    return self.keep(Ok(Some(copy)), previous, "backed_up").await;
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
                if replaced.is_some() { o.action("restored_unverified") } else { o }
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

/// `a` expires later than `b`: a later refresh of the same login.
fn newer(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    oauth::facts(a).expires_at_ms > oauth::facts(b).expires_at_ms
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
        LocalState::Missing => "not logged in: the file does not exist".into(),
        LocalState::NotJson => "the file is not JSON".into(),
        LocalState::NoObject => format!("the file has no {key}"),
        LocalState::Object(_) => format!("{key} is blanked"),
    }
}

/// Non-secret facts stored beside the secret in Vault.
fn metadata(f: &oauth::Facts) -> HashMap<String, String> {
    let mut m = HashMap::new();
    if let Ok(u) = rustix::system::uname().nodename().to_str() {
        m.insert("host".into(), u.to_string());
    }
    m.insert("agent_version".into(), env!("CARGO_PKG_VERSION").into());
    if let Some(fp) = &f.refresh_fp {
        m.insert("refresh_token_sha256_prefix".into(), fp.clone());
    }
    if let Some(e) = f.expires_at_ms {
        m.insert("expires_at".into(), e.to_string());
    }
    if let Some(r) = f.refresh_expires_at_ms {
        m.insert("refresh_token_expires_at".into(), r.to_string());
    }
    m
}

#[cfg(test)]
mod tests;
