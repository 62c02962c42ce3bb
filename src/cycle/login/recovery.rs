//! The recovery half of a login's run: the local login is rejected (or a rule restores
//! first), so Vault's latest copy is restored, probed once more, and kept or undone.
//!
//! It must never replay a login older than the local one (its refresh token is spent),
//! never restore over a login another writer just put there, and never leave a rejected
//! restore in place.

use serde_json::{Map, Value};

use super::backup::Kept;
use super::{Run, VaultCopy, inconclusive, local_error};
use crate::cycle::lineage::Order;
use crate::cycle::{Clock, Local, Phase, Prober, Remote, Trouble};
use crate::probe::Verdict;
use crate::report::{Action, Outcome, Reason};
use crate::store::json_file::{ReplaceOutcome, Replaced, Snapshot};
use crate::template::oauth;

/// Why a recovery starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trigger {
    /// The probe rejected the local login.
    Rejected,
    /// A rule restores before any probe (`restore` first, an incomplete login whose
    /// successor Vault holds): the local login itself was never judged.
    Unprobed,
}

impl<R: Remote, L: Local, P: Prober, C: Clock> Run<'_, R, L, P, C> {
    /// The local login is rejected, or a rule restores first: restore Vault's latest,
    /// probe once more, write back.
    pub(super) async fn recover(
        &self,
        before: &Snapshot,
        copy: Result<Option<VaultCopy>, Trouble>,
        why: &str,
        trigger: Trigger,
    ) -> Outcome {
        let copy = match copy {
            Err(t) => return t.outcome(Phase::Recovery).fact("probe", "auth_rejected"),
            Ok(None) => {
                return self.login_required(format!("the local login is rejected ({why}) and Vault holds no copy"));
            }
            Ok(Some(c)) => c,
        };
        if !oauth::usable(&copy.obj) {
            return self.login_required(format!(
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
            return self.login_required(format!(
                "the local login is rejected ({why}) and Vault's latest copy is older than it; an older login is never replayed"
            ));
        }
        if judged && base.login().is_some_and(|local| same_login(local, &copy.obj)) {
            return self.login_required(format!("the local login is rejected ({why}) and Vault holds the same login"));
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
                None => self.login_required(format!("the local login is rejected ({why}) and changed while restoring")),
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
                self.login_required(format!("the local login is rejected ({why}) and {what} is rejected too ({again})"))
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

    fn login_required(&self, msg: String) -> Outcome {
        Outcome::fail(Reason::LoginRequired, format!("{msg}; {}", self.b.relogin())).fact("probe", "auth_rejected")
    }
}

/// The same object, or the same refresh token.
fn same_login(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    let fp = oauth::facts(a).refresh_fp;
    a == b || (fp.is_some() && fp == oauth::facts(b).refresh_fp)
}
