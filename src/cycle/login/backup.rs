//! The backup half of a login's run: after a good probe, keep what is on disk and
//! write it to Vault unless Vault holds it or, provably, its successor; the outcome
//! names what was kept ([`Kept`]) and the login's times.
//!
//! It must never write a login Vault provably replaced, nor one only `expiresAt` calls
//! older (that is reported, not decided), nor anything but a whole login.

use serde_json::{Map, Value};

use super::{Run, VaultCopy, local_error};
use crate::cycle::lineage::{self, Order};
use crate::cycle::{Clock, Local, NewVersion, Phase, Prober, Remote, Trouble};
use crate::report::{self, Action, Outcome, Reason};
use crate::template::oauth;
use crate::vault::kv::Written;

/// What a run keeps after a good probe: it names the run's action, and says whether
/// Vault's copy still counts against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kept {
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

impl<R: Remote, L: Local, P: Prober, C: Clock> Run<'_, R, L, P, C> {
    /// After a good probe of `probed`: re-read the file (the probe may have refreshed the
    /// token) and store what is there: that login, or the whole one that replaced it on
    /// disk meanwhile.
    pub(super) async fn keep(
        &self,
        copy: Result<Option<VaultCopy>, Trouble>,
        probed: &Map<String, Value>,
        kept: Kept,
    ) -> Outcome {
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
            match self.remote.write(NewVersion { data: &data, cas, meta: &meta }).await {
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

fn until(now_ms: u64, at_ms: u64) -> String {
    if at_ms <= now_ms {
        return "expired".into();
    }
    report::duration(std::time::Duration::from_millis(at_ms - now_ms))
}
