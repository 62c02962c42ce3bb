//! The routine run (hourly, as root, no admin token): each user is checked with the
//! user's own credential (a token looked up with itself, or an AppRole login that then
//! revokes itself), what needs no admin is fixed (modes, owners, a missing config, the
//! timer), and the users who need an admin are listed with the reason.
//!
//! It never holds or asks for an admin token.

use super::home::{AgentDir, IfMissing};
use super::roster::{AuthMode, RosterUser};
use super::{
    APPROLE_TOKEN_FILE, Ctx, ROLE_ID_FILE, SECRET_ID_FILE, TOKEN_FILE, UserSummary, cred_files, expect_for, now_secs,
};
use crate::config::{Expect, VaultConfig};
use crate::secret::Secret;
use crate::vault::auth::check_identity;
use crate::vault::token::TokenInfo;
use crate::vault::{Vault, VaultError};

impl Ctx<'_> {
    /// The routine run: the user's own credential, no admin token.
    pub(super) async fn routine_user(&mut self, user: &RosterUser, cfg: &VaultConfig) -> UserSummary {
        let mut r = UserSummary::new(&user.name);
        let auth = self.section().auth;
        let dir = match AgentDir::open(&user.os, IfMissing::Leave) {
            Ok(Some(d)) => d,
            Ok(None) => return r.needs_admin("not provisioned: ~/.config/claude-auth-sync is missing"),
            Err(e) => return r.fail(e),
        };
        for f in cred_files(auth) {
            match dir.inspect(f) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return r.needs_admin(format!("no credential: {} is missing", dir.path().join(f).display()));
                }
                Err(e) => return r.fail(e),
            }
        }
        let optional: &[&str] = if auth == AuthMode::Approle { &[APPROLE_TOKEN_FILE] } else { &[] };
        if !self.dry() {
            for f in cred_files(auth).iter().chain(optional) {
                match dir.fix(f, 0o600) {
                    Ok(fixed) => fixed.into_iter().for_each(|f| r.changed(f)),
                    Err(e) => return r.fail(e),
                }
            }
        }
        if let Err(e) = self.write_config(&dir, user, false, &mut r) {
            return r.fail(e);
        }
        let checked = match auth {
            AuthMode::Token => self.check_token(user, &dir, cfg).await,
            AuthMode::Approle => self.check_approle(user, &dir, cfg).await,
        };
        match checked {
            Ok(note) => r.note(note),
            Err(Check::NeedsAdmin(why)) => return r.needs_admin(why),
            Err(Check::Failed(why)) => return r.fail(why),
        }
        self.timer(user, &mut r);
        r
    }

    async fn check_token(&mut self, user: &RosterUser, dir: &AgentDir, cfg: &VaultConfig) -> Result<String, Check> {
        let token = dir.read(TOKEN_FILE).map_err(|e| Check::Failed(e.to_string()))?.unwrap_or_default();
        let mut as_user = Vault::new(cfg).map_err(|e| Check::Failed(e.to_string()))?;
        as_user.set_token(&Secret::new(token.trim()));
        match as_user.lookup_self(as_user.default_backoff()).await {
            Ok(info) => {
                drift(&expect_for(&user.name, AuthMode::Token), &info)?;
                self.remember(&user.name, AuthMode::Token, Some(info.accessor.clone()), info.expires_at);
                Ok(format!("token valid (ttl {})", crate::report::duration(info.ttl)))
            }
            Err(VaultError::Denied { .. }) => {
                let expired =
                    self.state.users.get(&user.name).and_then(|s| s.expires_at).is_some_and(|t| t <= now_secs());
                Err(Check::NeedsAdmin(if expired {
                    "credential expired (not renewed within its period; is the timer running?)".into()
                } else {
                    "credential revoked (Vault no longer knows the token)".into()
                }))
            }
            Err(e) => Err(Check::Failed(e.to_string())),
        }
    }

    async fn check_approle(&mut self, user: &RosterUser, dir: &AgentDir, cfg: &VaultConfig) -> Result<String, Check> {
        let read = |f| {
            dir.read(f).map_err(|e| Check::Failed(e.to_string())).map(|s| Secret::new(s.unwrap_or_default().trim()))
        };
        let (role_id, secret_id) = (read(ROLE_ID_FILE)?, read(SECRET_ID_FILE)?);
        let mount = self.section().approle_mount.clone();
        let mut as_user = Vault::new(cfg).map_err(|e| Check::Failed(e.to_string()))?;
        let backoff = as_user.default_backoff();
        let (token, info) = match as_user.approle_login(backoff, &mount, &role_id, &secret_id).await {
            Ok(login) => login,
            Err(VaultError::Rejected { status: 400, .. } | VaultError::Denied { .. }) => {
                return Err(Check::NeedsAdmin("AppRole login refused: the secret-id or the role is gone".into()));
            }
            Err(e) => return Err(Check::Failed(e.to_string())),
        };
        as_user.set_token(&token);
        let checked =
            drift(&expect_for(&user.name, AuthMode::Approle), &info).map(|()| "AppRole login works".to_string());
        // The check's own token is of no further use; the user's policy lets it end itself.
        match as_user.revoke_self(backoff).await {
            Ok(()) => checked,
            Err(VaultError::Denied { .. }) => Err(Check::NeedsAdmin(
                "the check's AppRole login cannot revoke itself: the user's policy predates revoke-self; \
                 an admin run rewrites it"
                    .into(),
            )),
            Err(e) => Err(Check::Failed(format!("the check's AppRole login could not be revoked: {e}"))),
        }
    }
}

/// The shared identity check, as the routine run reports it.
fn drift(expect: &Expect, info: &TokenInfo) -> Result<(), Check> {
    check_identity(expect, info).map_err(|why| Check::NeedsAdmin(format!("drift: {why}")))
}

enum Check {
    NeedsAdmin(String),
    Failed(String),
}
