//! `--prune` (admin run only): users the state file knows and the roster no longer
//! lists lose every credential of each auth mode they have been on, their policy and
//! their timer, and the state forgets them.
//!
//! Their Vault data is kept, and nothing is done for a user the roster still lists. A
//! home that is gone or hostile is not entered: what Vault and the state know is
//! revoked all the same.

use super::credentials::Target;
use super::error::UserError;
use super::home::{AgentDir, IfMissing};
use super::roster::AuthMode;
use super::summary::{Change, UserSummary, Verb};
use super::{Ctx, TIMER_SKIPPED, policy, systemd, vault_ops};
use crate::os_user::OsUser;

impl Ctx<'_> {
    /// Users the state knows and the roster no longer lists: revoke, disable, forget.
    pub(super) async fn prune(&mut self) -> Vec<UserSummary> {
        let gone: Vec<String> = self
            .state
            .users
            .keys()
            .filter(|u| !self.opts.roster.users.iter().any(|r| &r.name == *u))
            .cloned()
            .collect();
        let mut out = Vec::new();
        for name in gone {
            let mut r = UserSummary::new(&name);
            let dir = OsUser::by_name(&name)
                .ok()
                .flatten()
                .and_then(|os| AgentDir::open(&os, IfMissing::Leave).ok().flatten());
            match self.retire(Target { name: &name, dir: dir.as_ref() }, &mut r).await {
                Ok(()) => {}
                Err(e) if e.stops_the_run() => {
                    self.stopped = Some(format!("pruning {name}: {e}"));
                    out.push(r.fail(e));
                    break;
                }
                Err(e) => {
                    out.push(r.fail(e));
                    continue;
                }
            }
            self.disable_timer(&name, &mut r);
            if !self.dry() {
                self.state.users.remove(&name);
            }
            out.push(r);
        }
        out
    }

    /// Each mode the user has been on (a user may have left right after a switch), then the policy.
    async fn retire(&mut self, user: Target<'_>, r: &mut UserSummary) -> Result<(), UserError> {
        if self.used(user, AuthMode::Token) {
            self.retire_token(user, r).await?;
        }
        if self.used(user, AuthMode::Approle) {
            self.retire_approle(user, r).await?;
        }
        let pname = policy::name(user.name);
        if self.act(r, Change::new(Verb::Delete, format!("policy {pname} (the data is kept)"))) {
            vault_ops::delete_policy(&self.vault, &pname).await?;
        }
        Ok(())
    }

    /// Disables the timer; a failure is noted and fails nothing (the user is gone).
    fn disable_timer(&self, user: &str, r: &mut UserSummary) {
        let unit = systemd::unit(user);
        let disable = Change::new(Verb::Disable, unit.clone());
        if !systemd::running() {
            r.note(TIMER_SKIPPED.into());
        } else if self.dry() {
            r.would(&disable);
        } else if let Err(e) = systemd::disable(&unit) {
            r.note(format!("timer: {e}"));
        } else {
            r.done(&disable);
        }
    }
}
