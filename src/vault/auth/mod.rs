//! `auto_auth`: get this user's token from the configured method, check that it
//! carries exactly the identity the config expects (`expect`), then renew it.
//!
//! The identity is checked on Vault's own answer before the token is extended or used:
//! a token from a file is looked up (lookup-self) before renew-self; a fresh AppRole
//! login is judged by the login's answer. A token that fails the check is renewed for
//! nothing and used for nothing (an AppRole token of ours that drifted is revoked).
//! [`check_identity`] is the one identity check; the provisioner uses it too.

mod approle;
pub mod credential_file;
mod token_file;

use std::time::Duration;

pub use credential_file::CredentialError;

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
    Drift(String),
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

/// Looks the client's token up (nothing is extended), checks its identity, then renews it.
async fn verify_and_renew(vault: &Vault, backoff: Backoff, expect: &Expect) -> Result<TokenInfo, AuthError> {
    let info = vault.lookup_self(backoff).await.map_err(vault_err)?;
    check_identity(expect, &info).map_err(AuthError::Drift)?;
    if !info.renewable {
        // Root and other non-renewable tokens still work until they expire.
        tracing::warn!("the Vault token cannot be renewed; it expires in {}", humantime::format_duration(info.ttl));
        return Ok(info);
    }
    vault.renew_self(backoff).await.map_err(vault_err)
}

fn vault_err(e: VaultError) -> AuthError {
    match e {
        VaultError::Denied { .. } => AuthError::Invalid(e),
        e => AuthError::Vault(e),
    }
}

/// Exactly the expected policies (when `expect` lists any; `default` counts like any
/// other) and every expected meta pair; else what differs.
pub fn check_identity(expect: &Expect, token: &TokenInfo) -> Result<(), String> {
    let mut problems = Vec::new();
    if !expect.policies.is_empty() {
        let missing: Vec<&str> =
            expect.policies.iter().filter(|p| !token.policies.contains(p)).map(String::as_str).collect();
        if !missing.is_empty() {
            problems.push(format!("policies lack {}", missing.join(", ")));
        }
        let extra: Vec<&str> =
            token.policies.iter().filter(|p| !expect.policies.contains(p)).map(String::as_str).collect();
        if !extra.is_empty() {
            problems.push(format!("policies also grant {}, which expect does not list", extra.join(", ")));
        }
    }
    for (k, want) in &expect.meta {
        match token.meta.get(k) {
            Some(have) if have == want => {}
            Some(have) => problems.push(format!("meta {k} is \"{have}\", expected \"{want}\"")),
            None => problems.push(format!("meta {k} is missing, expected \"{want}\"")),
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(policies: &[&str], meta: &[(&str, &str)]) -> TokenInfo {
        TokenInfo {
            accessor: String::new(),
            policies: policies.iter().map(|p| p.to_string()).collect(),
            meta: meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ttl: Duration::from_secs(60),
            renewable: true,
            expires_at: None,
        }
    }

    fn expect(policies: &[&str], meta: &[(&str, &str)]) -> Expect {
        Expect {
            policies: policies.iter().map(|p| p.to_string()).collect(),
            meta: meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn identity_matches_exactly_the_expected_policies() {
        let e = expect(&["claude-auth-sync-alice"], &[("os_user", "alice")]);
        assert!(check_identity(&e, &id(&["claude-auth-sync-alice"], &[("os_user", "alice"), ("x", "y")])).is_ok());
        assert!(check_identity(&Expect::default(), &id(&["anything"], &[])).is_ok(), "no expect, no check");
        let err = check_identity(&e, &id(&["claude-auth-sync-alice", "claude-auth-sync-bob"], &[("os_user", "alice")]))
            .unwrap_err();
        assert!(err.contains("policies also grant claude-auth-sync-bob"), "{err}");
        let err = check_identity(&e, &id(&["default", "claude-auth-sync-alice"], &[("os_user", "alice")])).unwrap_err();
        assert!(err.contains("also grant default"), "{err}");
        let with_default = expect(&["claude-auth-sync-alice", "default"], &[]);
        assert!(check_identity(&with_default, &id(&["default", "claude-auth-sync-alice"], &[])).is_ok());
    }

    #[test]
    fn drift_names_what_differs() {
        let e = expect(&["claude-auth-sync-alice"], &[("os_user", "alice")]);
        let err = check_identity(&e, &id(&["claude-auth-sync-bob"], &[("os_user", "bob")])).unwrap_err();
        assert!(err.contains("policies lack claude-auth-sync-alice"), "{err}");
        assert!(err.contains("meta os_user is \"bob\", expected \"alice\""), "{err}");
        let err = check_identity(&e, &id(&["claude-auth-sync-alice"], &[])).unwrap_err();
        assert!(err.contains("meta os_user is missing"), "{err}");
    }
}
