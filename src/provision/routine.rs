//! The routine run (hourly, as root, no admin token): each user is checked with the
//! user's own credential (a token looked up with itself, or an AppRole login that then
//! revokes itself; either then reads the metadata of each extra secret the roster
//! grants, so that a policy that lost a grant is found), what needs no admin is fixed (modes, owners, a missing config, the
//! timer), and the users who need an admin are listed with the reason.
//!
//! It never holds or asks for an admin token, and never changes a user's credential
//! or existing config.

use std::time::{SystemTime, UNIX_EPOCH};

use super::error::{NeedsAdmin, UserError};
use super::files::{ROLE_ID_FILE, SECRET_ID_FILE, TOKEN_FILE, cred_files, mode_files};
use super::home::{AgentDir, HomeError, IfMissing};
use super::roster::{AuthMode, RosterUser};
use super::state::UserState;
use super::summary::UserSummary;
use super::{Ctx, ExistingConfig, expect_for, policy};
use crate::config::Expect;
use crate::secret::Secret;
use crate::vault::auth::check_identity;
use crate::vault::client::Method;
use crate::vault::token::{AppRoleLogin, TokenInfo};
use crate::vault::{Vault, VaultError};

/// Why a user's check did not pass.
enum CheckError {
    NeedsAdmin(NeedsAdmin),
    Failed(UserError),
}

impl From<NeedsAdmin> for CheckError {
    fn from(why: NeedsAdmin) -> Self {
        CheckError::NeedsAdmin(why)
    }
}

impl From<UserError> for CheckError {
    fn from(e: UserError) -> Self {
        CheckError::Failed(e)
    }
}

impl From<HomeError> for CheckError {
    fn from(e: HomeError) -> Self {
        CheckError::Failed(e.into())
    }
}

impl From<VaultError> for CheckError {
    fn from(e: VaultError) -> Self {
        CheckError::Failed(e.into())
    }
}

impl Ctx<'_> {
    /// The routine run: the user's own credential, no admin token.
    pub(super) async fn routine_user(&mut self, user: &RosterUser) -> UserSummary {
        let mut r = UserSummary::new(&user.name);
        match self.routine_steps(user, &mut r).await {
            Ok(()) => r,
            Err(CheckError::NeedsAdmin(why)) => r.needs_admin(why),
            Err(CheckError::Failed(e)) => r.fail(e),
        }
    }

    async fn routine_steps(&mut self, user: &RosterUser, r: &mut UserSummary) -> Result<(), CheckError> {
        let auth = self.section().auth;
        let dir = AgentDir::open(&user.os, IfMissing::Leave)?.ok_or(NeedsAdmin::NotProvisioned)?;
        for f in cred_files(auth) {
            if dir.inspect(f)?.is_none() {
                return Err(NeedsAdmin::NoCredential(dir.path().join(f)).into());
            }
        }
        if !self.dry() {
            for f in mode_files(auth) {
                dir.fix(f, 0o600)?.into_iter().for_each(|fixed| r.changed(fixed));
            }
        }
        self.write_config(&dir, user, ExistingConfig::Keep, r)?;
        let checked = match auth {
            AuthMode::Token => self.check_token(user, &dir).await?,
            AuthMode::Approle => self.check_approle(user, &dir).await?,
        };
        r.note(checked);
        self.timer(user, r);
        Ok(())
    }

    async fn check_token(&mut self, user: &RosterUser, dir: &AgentDir) -> Result<String, CheckError> {
        let token = dir.read(TOKEN_FILE)?.unwrap_or_default();
        let mut as_user = Vault::new(&self.vault_config)?;
        as_user.set_token(&Secret::new(token.trim()));
        match as_user.lookup_self(as_user.default_backoff()).await {
            Ok(info) => {
                drift(&expect_for(&user.name, AuthMode::Token), &info)?;
                self.remember(&user.name, UserState::token(info.accessor.clone(), info.expires_at));
                self.check_grants(user, &as_user).await?;
                Ok(format!("token valid (ttl {}){}", crate::report::duration(info.ttl), grants(user)))
            }
            Err(VaultError::Denied { .. }) => {
                let expired =
                    self.state.users.get(&user.name).and_then(|s| s.expires_at).is_some_and(|t| t <= now_secs());
                Err(if expired { NeedsAdmin::Expired } else { NeedsAdmin::Revoked }.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn check_approle(&mut self, user: &RosterUser, dir: &AgentDir) -> Result<String, CheckError> {
        let read = |f| dir.read(f).map(|s| Secret::new(s.unwrap_or_default().trim()));
        let (role_id, secret_id) = (read(ROLE_ID_FILE)?, read(SECRET_ID_FILE)?);
        let mount = self.section().approle_mount.clone();
        let mut as_user = Vault::new(&self.vault_config)?;
        let backoff = as_user.default_backoff();
        let login = AppRoleLogin { mount: &mount, role_id: &role_id, secret_id: &secret_id };
        let (token, info) = match as_user.approle_login(backoff, &login).await {
            Ok(login) => login,
            Err(VaultError::Rejected { status: 400, .. } | VaultError::Denied { .. }) => {
                return Err(NeedsAdmin::LoginRefused.into());
            }
            Err(e) => return Err(e.into()),
        };
        as_user.set_token(&token);
        let checked = match drift(&expect_for(&user.name, AuthMode::Approle), &info) {
            Ok(()) => self.check_grants(user, &as_user).await,
            Err(d) => Err(d.into()),
        };
        // The check's own token is of no further use; the user's policy lets it end itself.
        match as_user.revoke_self(backoff).await {
            Ok(()) => checked.map(|()| format!("AppRole login works{}", grants(user))),
            Err(VaultError::Denied { .. }) => Err(NeedsAdmin::CannotRevokeSelf.into()),
            Err(e) => Err(UserError::CheckLoginKept(e).into()),
        }
    }
}

impl Ctx<'_> {
    /// Each extra secret the roster lists is granted by the policy Vault has: the user's
    /// own credential may read its metadata (404 while nothing is stored there). The
    /// metadata holds no secret; the data is never read.
    async fn check_grants(&self, user: &RosterUser, as_user: &Vault) -> Result<(), CheckError> {
        let v = self.section();
        for name in &user.secrets {
            let path = format!("{}/metadata/{}/{}/{name}", v.kv_mount, v.path_prefix, user.name);
            match as_user.raw("read an extra secret's metadata", Method::GET, &path, None).await {
                Ok(_) | Err(VaultError::Rejected { status: 404, .. }) => {}
                Err(VaultError::Denied { status: 403, .. }) => {
                    return Err(NeedsAdmin::NotGranted(policy::extra_secret(v, &user.name, name)).into());
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// `; grants codex, gcloud` for the summary, or nothing.
fn grants(user: &RosterUser) -> String {
    if user.secrets.is_empty() { String::new() } else { format!("; grants {}", user.secrets.join(", ")) }
}

/// The shared identity check, as the routine run reports it.
fn drift(expect: &Expect, info: &TokenInfo) -> Result<(), NeedsAdmin> {
    check_identity(expect, info).map_err(NeedsAdmin::Drift)
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
