//! `method "approle"`: log in with this user's own role-id and secret-id, once, and
//! keep that token for the next runs (`token_cache_path`, 0600, replaced atomically and
//! never through a symlink), renewing it each run like a token file.
//!
//! A new login happens only when the kept token is missing or dead; a kept token that
//! is still alive but is replaced (drifted, no longer renewable) is revoked first, and
//! a fresh login that drifted is revoked at once: logins never pile up in Vault. A
//! token handed to a sink stays valid across runs, which is what its consumers need.

use std::path::Path;

use super::credential_file::{self, ModeCheck};
use super::{AuthError, check_identity, vault_err};
use crate::config::{Expect, Method};
use crate::secret::Secret;
use crate::store::atomic;
use crate::vault::client::Backoff;
use crate::vault::token::{AppRoleLogin, TokenInfo};
use crate::vault::{Vault, VaultError};

pub async fn authenticate(
    vault: &mut Vault,
    backoff: Backoff,
    method: &Method,
    expect: &Expect,
) -> Result<(Secret, TokenInfo), AuthError> {
    let Method::AppRole {
        mount,
        role_id_file_path,
        secret_id_file_path,
        remove_secret_id_file_after_reading,
        token_cache_path,
    } = method
    else {
        unreachable!("called for the approle method only")
    };
    if let Some((kept, exposed)) = kept_token(token_cache_path) {
        vault.set_token(&kept);
        let reused = match exposed {
            Some(why) => Reuse::Replace(why),
            None => reuse(vault, backoff, expect).await,
        };
        match reused {
            Reuse::Renewed(info) => return Ok((kept, info)),
            Reuse::Dead => tracing::debug!("the kept AppRole token is no longer valid; logging in again"),
            Reuse::Replace(why) => {
                tracing::warn!(
                    "the kept AppRole token {}: {why}; it is revoked and replaced",
                    token_cache_path.display()
                );
                if let Err(e) = vault.revoke_self(backoff).await {
                    tracing::warn!("could not revoke the replaced AppRole token: {e}");
                }
            }
            Reuse::Failed(e) => return Err(e),
        }
    }

    let role_id = credential_file::read(role_id_file_path, "AppRole role-id file", ModeCheck::Skip)?;
    let secret_id = credential_file::read(secret_id_file_path, "AppRole secret-id file", ModeCheck::OwnerOnly)?;
    let login = AppRoleLogin { mount, role_id: &role_id, secret_id: &secret_id };
    let (token, info) = vault.approle_login(backoff, &login).await.map_err(|e| match e {
        // "invalid role or secret ID" comes back as a 400.
        VaultError::Rejected { status: 400, .. } => AuthError::Invalid(e),
        e => vault_err(e),
    })?;
    if *remove_secret_id_file_after_reading && let Err(e) = std::fs::remove_file(secret_id_file_path) {
        tracing::warn!("could not remove the secret-id file {} after reading: {e}", secret_id_file_path.display());
    }
    vault.set_token(&token);
    if let Err(drift) = check_identity(expect, &info) {
        // Not this user's identity: it must not live on, nor be kept for the next run.
        let _ = vault.revoke_self(backoff).await;
        let _ = std::fs::remove_file(token_cache_path);
        return Err(AuthError::Drift(drift));
    }
    if let Err(e) = atomic::replace(token_cache_path, token.expose().as_bytes(), 0o600) {
        tracing::warn!("{e}; the AppRole token is not kept, so the next run logs in again");
    }
    Ok((token, info))
}

/// The token kept by an earlier run, and why it must be replaced unused (it was
/// readable by others); `None` when there is none or it is garbled.
fn kept_token(path: &Path) -> Option<(Secret, Option<String>)> {
    let what = "kept AppRole token";
    match credential_file::read(path, what, ModeCheck::OwnerOnly) {
        Ok(t) => Some((t, None)),
        Err(credential_file::CredentialError::Missing { .. }) => None,
        Err(credential_file::CredentialError::TooOpen { mode, .. }) => {
            // Someone may have read it: it must not live on.
            let exposed = format!("was readable by group or others (mode {mode:04o})");
            credential_file::read(path, what, ModeCheck::Skip).ok().map(|t| (t, Some(exposed)))
        }
        Err(e) => {
            tracing::warn!("{e}; logging in again");
            None
        }
    }
}

enum Reuse {
    Renewed(TokenInfo),
    /// Revoked or expired: nothing to clean up.
    Dead,
    /// Alive but unfit (drifted, cannot be renewed): revoke it, log in again.
    Replace(String),
    /// Vault trouble that a new login would meet too.
    Failed(AuthError),
}

async fn reuse(vault: &Vault, backoff: Backoff, expect: &Expect) -> Reuse {
    let info = match vault.lookup_self(backoff).await {
        Ok(info) => info,
        Err(VaultError::Denied { .. }) => return Reuse::Dead,
        // A login would meet the same trouble.
        Err(e) => return Reuse::Failed(vault_err(e)),
    };
    if let Err(why) = check_identity(expect, &info) {
        return Reuse::Replace(format!("drifted ({why})"));
    }
    if !info.renewable {
        return Reuse::Replace("can no longer be renewed".into());
    }
    match vault.renew_self(backoff).await {
        Ok(info) => Reuse::Renewed(info),
        Err(VaultError::Denied { .. }) => Reuse::Dead,
        Err(e @ VaultError::Unreachable { status: None, .. }) => Reuse::Failed(AuthError::Vault(e)),
        // Vault answered but would not renew it (its role is gone, ...): a login decides.
        Err(e) => Reuse::Replace(format!("could not be renewed ({e})")),
    }
}
