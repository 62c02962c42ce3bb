//! Each user's Vault credential with the admin token: the periodic token (`auth:
//! token`, minted from the user's own token role) or the AppRole role and secret-id,
//! kept while valid, replaced otherwise; and retiring one (mode switch, prune).
//!
//! Whatever replaces or retires a credential revokes the old one by what Vault and the
//! state file know (the remembered accessor, every secret-id the role lists, the login
//! the agent kept), not only by what the home still holds, and the report says what
//! was revoked and what was already gone. It never revokes a token from a home file
//! that is not that user's own, and never touches a credential on a dry run.

use super::error::UserError;
use super::files::{APPROLE_TOKEN_FILE, ROLE_ID_FILE, SECRET_ID_FILE, TOKEN_FILE, mode_files};
use super::home::{AgentDir, HomeError};
use super::roster::AuthMode;
use super::state::UserState;
use super::summary::{Change, UserSummary, Verb};
use super::{Ctx, expect_for, policy, vault_ops};
use crate::secret::Secret;
use crate::vault::auth::check_identity;
use crate::vault::token::TokenInfo;

/// The user whose credential a step works on, and the agent directory when there is
/// one (a dry run may not have made it; a pruned user's home may be gone).
#[derive(Clone, Copy)]
pub(super) struct Target<'a> {
    pub name: &'a str,
    pub dir: Option<&'a AgentDir>,
}

impl Ctx<'_> {
    /// `auth: token`: the user's token role, and the periodic token in `vault-token`,
    /// kept while it is valid, this user's and past half its period, else replaced.
    pub(super) async fn admin_token(&mut self, user: Target<'_>, r: &mut UserSummary) -> Result<(), UserError> {
        let v = self.section().clone();
        let pname = policy::name(user.name);
        let want_role = vault_ops::token_role_body(&pname, v.token_period);
        let have_role = vault_ops::token_role(&self.vault, &pname).await?;
        if !have_role.as_ref().is_some_and(|h| vault_ops::role_matches(h, &want_role))
            && self.act(r, Change::new(Verb::Write, format!("token role {pname}")))
        {
            vault_ops::put_token_role(&self.vault, &pname, want_role).await?;
        }
        let existing = match user.dir {
            Some(d) => d.read(TOKEN_FILE)?.map(|t| Secret::new(t.trim())),
            None => None,
        };
        let current = match &existing {
            Some(t) if !t.expose().is_empty() => vault_ops::lookup(&self.vault, t).await?,
            _ => None,
        };
        let expect = expect_for(user.name, AuthMode::Token);
        let why_new = match &current {
            None if existing.is_some() => {
                Some("vault-token holds no token Vault knows (revoked, expired or garbled)".into())
            }
            None => Some("there is no token".into()),
            Some(_) if self.rotating(user.name) => Some("--rotate".into()),
            Some(t) => match check_identity(&expect, t) {
                Err(why) => Some(format!("the existing token is not this user's identity: {why}")),
                Ok(()) if t.ttl * 2 < v.token_period => {
                    Some("the existing token has less than half its period left".into())
                }
                Ok(()) => None,
            },
        };
        let remembered = self.remembered(user.name, AuthMode::Token);
        let Some(why) = why_new else {
            let t = current.expect("kept only when valid");
            r.note(format!("token kept (ttl {})", crate::report::duration(t.ttl)));
            if let Some(old) = remembered.filter(|a| *a != t.accessor) {
                self.revoke_remembered(&old, "a leftover token remembered in the state file", r).await?;
            }
            self.remember(user.name, UserState::token(t.accessor, t.expires_at));
            return Ok(());
        };
        if !self.act(r, Change::new(Verb::Mint, format!("a new token ({why})"))) {
            return Ok(());
        }
        let (token, info) = vault_ops::mint(&self.vault, user.name, &pname).await?;
        let dir = user.dir.expect("created when not a dry run");
        dir.write(TOKEN_FILE, token.expose().as_bytes(), 0o600)?;
        r.done(&Change::new(Verb::Write, dir.path().join(TOKEN_FILE).display()));
        self.remember(user.name, UserState::token(info.accessor.clone(), info.expires_at));
        if let Some(old) = &current {
            vault_ops::revoke_accessor(&self.vault, &old.accessor).await?;
            r.done(&Change::new(Verb::Revoke, "the previous token (the one vault-token held)"));
        }
        let current_accessor = current.map(|t| t.accessor);
        if let Some(old) = remembered.filter(|a| Some(a) != current_accessor.as_ref() && *a != info.accessor) {
            self.revoke_remembered(&old, "the previous token remembered in the state file", r).await?;
        }
        Ok(())
    }

    /// Revokes a token known only by the accessor the state file remembers, saying truthfully what happened.
    async fn revoke_remembered(&self, accessor: &str, what: &str, r: &mut UserSummary) -> Result<(), UserError> {
        match vault_ops::lookup_accessor(&self.vault, accessor).await? {
            None => r.note(format!("{what} was already revoked or expired")),
            Some(_) => {
                if self.act(r, Change::new(Verb::Revoke, what)) {
                    vault_ops::revoke_accessor(&self.vault, accessor).await?;
                }
            }
        }
        Ok(())
    }

    /// Whether the user has been on `auth` mode: the state remembers it, or its files are in the home.
    pub(super) fn used(&self, user: Target<'_>, auth: AuthMode) -> bool {
        self.state.users.get(user.name).is_some_and(|s| s.auth == auth)
            || user.dir.is_some_and(|d| mode_files(auth).iter().any(|f| !matches!(d.inspect(f), Ok(None))))
    }

    /// `--rotate` names the user.
    fn rotating(&self, user: &str) -> bool {
        self.opts.rotate.iter().any(|u| u == user)
    }

    /// The accessor the state file remembers for this user's credential in `auth` mode.
    fn remembered(&self, user: &str, auth: AuthMode) -> Option<String> {
        self.state.users.get(user).filter(|s| s.auth == auth).and_then(|s| s.accessor.clone())
    }

    /// `auth: approle`: the AppRole mount (once per run), the user's role, `role-id`,
    /// and one secret-id in `secret-id`, kept while valid unless `--rotate`d.
    pub(super) async fn admin_approle(&mut self, user: Target<'_>, r: &mut UserSummary) -> Result<(), UserError> {
        let v = self.section().clone();
        let (mount, role) = (v.approle_mount.clone(), policy::name(user.name));
        if !self.approle_ready {
            if self.dry() {
                r.note(format!("would make sure auth/{mount} is an AppRole mount"));
            } else if vault_ops::ensure_approle(&self.vault, &mount).await? {
                r.done(&Change::new(Verb::Enable, format!("AppRole at auth/{mount}")));
            }
            self.approle_ready = true;
        }
        let want = vault_ops::role_body(&role, v.token_period);
        let have = vault_ops::role(&self.vault, &mount, &role).await?;
        if !have.as_ref().is_some_and(|h| vault_ops::role_matches(h, &want))
            && self.act(r, Change::new(Verb::Write, format!("AppRole role {role}")))
        {
            vault_ops::put_role(&self.vault, &mount, &role, want).await?;
        }
        // A dry run has neither the role (to read its role-id) nor, maybe, the directory.
        let Some(dir) = user.dir.filter(|_| !(self.dry() && have.is_none())) else {
            r.would(&Change::new(Verb::Write, "role-id and a new secret-id"));
            return Ok(());
        };
        let role_id = vault_ops::role_id(&self.vault, &mount, &role).await?;
        if dir.read(ROLE_ID_FILE)?.as_deref().map(str::trim) != Some(role_id.as_str())
            && self.act(r, Change::new(Verb::Write, dir.path().join(ROLE_ID_FILE).display()))
        {
            dir.write(ROLE_ID_FILE, role_id.as_bytes(), 0o600)?;
        }
        let existing = dir.read(SECRET_ID_FILE)?.map(|s| Secret::new(s.trim()));
        let current = match &existing {
            Some(s) if !s.expose().is_empty() => vault_ops::secret_id_accessor(&self.vault, &mount, &role, s).await?,
            _ => None,
        };
        let rotate = self.rotating(user.name);
        if let (Some(accessor), false) = (&current, rotate) {
            r.note("secret-id kept".into());
            self.destroy_other_secret_ids(&role, accessor, "stray", r).await?;
            self.remember(user.name, UserState::approle(accessor.clone()));
            return Ok(());
        }
        let why = if rotate {
            "--rotate"
        } else if existing.is_some() {
            "the existing secret-id is invalid"
        } else {
            "there is no secret-id"
        };
        if !self.act(r, Change::new(Verb::Create, format!("a new secret-id ({why})"))) {
            return Ok(());
        }
        let (secret_id, accessor) = vault_ops::new_secret_id(&self.vault, &mount, &role).await?;
        dir.write(SECRET_ID_FILE, secret_id.expose().as_bytes(), 0o600)?;
        r.done(&Change::new(Verb::Write, dir.path().join(SECRET_ID_FILE).display()));
        self.remember(user.name, UserState::approle(accessor.clone()));
        self.destroy_other_secret_ids(&role, &accessor, "previous", r).await?;
        // The agent's kept login came from an old secret-id: it goes too.
        self.revoke_kept_approle_token(Some(dir), r).await
    }

    /// Destroys every secret-id of the role but `keep`, whatever the home or the state still knows.
    async fn destroy_other_secret_ids(
        &self,
        role: &str,
        keep: &str,
        what: &str,
        r: &mut UserSummary,
    ) -> Result<(), UserError> {
        let mount = &self.section().approle_mount;
        let others: Vec<String> =
            vault_ops::secret_id_accessors(&self.vault, mount, role).await?.into_iter().filter(|a| a != keep).collect();
        if others.is_empty() {
            return Ok(());
        }
        let destroy =
            Change::new(Verb::Destroy, format!("{} {what} secret-id(s) of AppRole role {role}", others.len()));
        if self.act(r, destroy) {
            for a in &others {
                vault_ops::destroy_secret_id_accessor(&self.vault, mount, role, a).await?;
            }
        }
        Ok(())
    }

    /// Revokes the AppRole token the agent keeps in the home, if Vault still knows it.
    async fn revoke_kept_approle_token(&self, dir: Option<&AgentDir>, r: &mut UserSummary) -> Result<(), UserError> {
        let Some(kept) = dir.map(|d| d.read(APPROLE_TOKEN_FILE)).transpose()?.flatten() else { return Ok(()) };
        let kept = Secret::new(kept.trim());
        if kept.expose().is_empty() {
            return Ok(());
        }
        if let Some(t) = vault_ops::lookup(&self.vault, &kept).await?
            && self.act(r, Change::new(Verb::Revoke, "the AppRole token the agent kept (its next run logs in again)"))
        {
            vault_ops::revoke_accessor(&self.vault, &t.accessor).await?;
        }
        Ok(())
    }

    /// Retires a periodic token of this user (the mode is AppRole now, or the user left):
    /// the token vault-token holds, the one the state remembers, the token role, the file.
    pub(super) async fn retire_token(&mut self, user: Target<'_>, r: &mut UserSummary) -> Result<(), UserError> {
        let name = user.name;
        let remembered = self.remembered(name, AuthMode::Token);
        let in_home = match user.dir {
            Some(d) => d.read(TOKEN_FILE).ok().flatten().map(|t| Secret::new(t.trim())),
            None => None,
        };
        let home_token: Option<TokenInfo> = match &in_home {
            Some(t) if !t.expose().is_empty() => vault_ops::lookup(&self.vault, t).await?,
            _ => None,
        };
        // Only this user's own token is revoked from the home file.
        let home_token = home_token.filter(|t| t.meta.get("os_user").map(String::as_str) == Some(name));
        if let Some(t) = &home_token
            && self.act(r, Change::new(Verb::Revoke, "the periodic token (the one vault-token held)"))
        {
            vault_ops::revoke_accessor(&self.vault, &t.accessor).await?;
        }
        if let Some(old) = remembered.filter(|a| home_token.as_ref().is_none_or(|t| &t.accessor != a)) {
            self.revoke_remembered(&old, "the periodic token remembered in the state file", r).await?;
        }
        let role = policy::name(name);
        if vault_ops::token_role(&self.vault, &role).await?.is_some()
            && self.act(r, Change::new(Verb::Delete, format!("token role {role}")))
        {
            vault_ops::delete_token_role(&self.vault, &role).await?;
        }
        self.remove_files(user.dir, mode_files(AuthMode::Token), r);
        Ok(())
    }

    /// Retires this user's AppRole (the mode is token now, or the user left): the role
    /// with its secret-ids, the login token the agent kept, the files.
    pub(super) async fn retire_approle(&mut self, user: Target<'_>, r: &mut UserSummary) -> Result<(), UserError> {
        let (mount, role) = (self.section().approle_mount.clone(), policy::name(user.name));
        self.revoke_kept_approle_token(user.dir, r).await?;
        if vault_ops::role(&self.vault, &mount, &role).await?.is_some()
            && self.act(r, Change::new(Verb::Delete, format!("AppRole role {role} (and with it every secret-id)")))
        {
            vault_ops::delete_role(&self.vault, &mount, &role).await?;
        }
        self.remove_files(user.dir, mode_files(AuthMode::Approle), r);
        Ok(())
    }

    fn remove_files(&self, dir: Option<&AgentDir>, files: &[&str], r: &mut UserSummary) {
        let Some(dir) = dir else { return };
        for f in files {
            if matches!(dir.inspect(f), Ok(Some(_)) | Err(HomeError::HardLink { .. } | HomeError::Symlink(_)))
                && self.act(r, Change::new(Verb::Remove, dir.path().join(f).display()))
                && let Err(e) = dir.remove(f)
            {
                r.note(format!("could not remove {f}: {e}"));
            }
        }
    }
}
