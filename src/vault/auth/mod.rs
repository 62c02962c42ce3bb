//! `auto_auth`: get this user's token from the configured method, check that it
//! carries exactly the identity the config expects (`expect`), then renew it.
//!
//! The identity is checked on Vault's own answer before the token is extended or used:
//! a token from a file is looked up (lookup-self) before renew-self; a fresh AppRole
//! login is judged by the login's answer. A token that fails the check is renewed for
//! nothing and used for nothing (an AppRole token of ours that drifted is revoked).
//! [`check_identity`] (in `identity.rs`) is the one identity check; the provisioner
//! uses it too.
//!
//! It must never renew or use a token before its identity has been checked.

mod approle;
pub mod credential_file;
mod identity;
mod token_file;

use std::time::Duration;

pub use credential_file::CredentialError;
pub use identity::{Drift, MetaDrift, check_identity};

use super::client::Backoff;
use super::token::TokenInfo;
use super::{Vault, VaultError};
use crate::config::{AutoAuthConfig, Expect, Method};
use crate::secret::Secret;

/// A renewed token whose identity matched `expect`.
#[derive(Debug)]
pub struct Authenticated {
    pub token: Secret,
    pub method: &'static str,
    /// Time to live after this run's renewal (for a periodic token, its period).
    pub ttl: Duration,
    pub renewable: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The local credential file is missing, unreadable or too open.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// Vault refused the credential: revoked, expired, or a bad role/secret-id.
    #[error("{0}; an admin re-runs the provisioner to issue a new credential")]
    Invalid(VaultError),
    /// The token works but is not the identity this user's config expects.
    #[error(
        "the Vault token's identity drifted: {0}; the token was neither renewed nor used for anything else; an admin re-runs the provisioner"
    )]
    Drift(Drift),
    /// Any other Vault trouble; transient or not, see [`VaultError::is_transient`].
    #[error(transparent)]
    Vault(VaultError),
}

pub async fn authenticate(cfg: &AutoAuthConfig, vault: &mut Vault) -> Result<Authenticated, AuthError> {
    let backoff = Backoff { min: cfg.min_backoff, max: cfg.max_backoff };
    let (token, info) = match &cfg.method {
        Method::TokenFile { token_file_path } => {
            let token = token_file::read(token_file_path)?;
            vault.set_token(&token);
            let info = verify_and_renew(vault, backoff, &cfg.expect).await?;
            (token, info)
        }
        Method::AppRole { .. } => approle::authenticate(vault, backoff, &cfg.method, &cfg.expect).await?,
    };
    Ok(Authenticated { token, method: cfg.method.kind(), ttl: info.ttl, renewable: info.renewable })
}

/// The token a resident agent keeps, its identity checked again by the same rules as a
/// timer run's (lookup-self, nothing extended). Not renewed: the agent renews it on its
/// own schedule, so a full cycle costs one request for the token, not two.
pub async fn reverify(cfg: &AutoAuthConfig, vault: &Vault) -> Result<TokenInfo, AuthError> {
    verify(vault, Backoff { min: cfg.min_backoff, max: cfg.max_backoff }, &cfg.expect).await
}

/// Looks the client's token up (nothing is extended) and checks its identity.
async fn verify(vault: &Vault, backoff: Backoff, expect: &Expect) -> Result<TokenInfo, AuthError> {
    let info = vault.lookup_self(backoff).await.map_err(vault_err)?;
    check_identity(expect, &info).map_err(AuthError::Drift)?;
    Ok(info)
}

/// Looks the client's token up, checks its identity, then renews it.
async fn verify_and_renew(vault: &Vault, backoff: Backoff, expect: &Expect) -> Result<TokenInfo, AuthError> {
    let info = verify(vault, backoff, expect).await?;
    if !info.renewable {
        // Root and other non-renewable tokens still work until they expire.
        tracing::warn!("the Vault token cannot be renewed; it expires in {}", humantime::format_duration(info.ttl));
        return Ok(info);
    }
    vault.renew_self(backoff).await.map_err(vault_err)
}

/// The token the agent already holds, without logging in or renewing anything (what
/// `status` asks Vault with): the token file's, or the AppRole token a run kept.
/// `None`: an AppRole agent that has not kept a token yet.
pub fn held_token(cfg: &AutoAuthConfig) -> Result<Option<Secret>, CredentialError> {
    use credential_file::ModeCheck;
    match &cfg.method {
        Method::TokenFile { token_file_path } => token_file::read(token_file_path).map(Some),
        Method::AppRole { token_cache_path, .. } => {
            match credential_file::read(token_cache_path, "kept AppRole token", ModeCheck::OwnerOnly) {
                Ok(t) => Ok(Some(t)),
                Err(CredentialError::Missing { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        }
    }
}

fn vault_err(e: VaultError) -> AuthError {
    match e {
        VaultError::Denied { .. } => AuthError::Invalid(e),
        e => AuthError::Vault(e),
    }
}
