//! `auto_auth`: get this user's token from the configured method, renew it, and check
//! that it still carries the identity the config expects (`expect`).
//!
//! A token that fails the identity check is used for nothing else: the only requests
//! ever made with it are renew-self and, for a non-renewable token, lookup-self.

mod approle;
pub mod credential_file;
mod token_file;

use std::collections::HashMap;
use std::time::Duration;

pub use credential_file::CredentialError;

use super::client::Backoff;
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
        "the Vault token's identity drifted: {0}; the token was used for nothing else; an admin re-runs the provisioner"
    )]
    Drift(String),
    /// Any other Vault trouble; transient or not, see [`VaultError::is_transient`].
    #[error(transparent)]
    Vault(VaultError),
}

/// What Vault says about the token: from renew-self, or lookup-self when it cannot be renewed.
struct Identity {
    policies: Vec<String>,
    meta: HashMap<String, String>,
    ttl: Duration,
    renewable: bool,
}

pub async fn authenticate(cfg: &AutoAuthConfig, vault: &mut Vault) -> Result<Authenticated, AuthError> {
    let backoff = Backoff { min: cfg.min_backoff, max: cfg.max_backoff };
    let token = match &cfg.method {
        Method::TokenFile { token_file_path } => token_file::read(token_file_path)?,
        Method::AppRole { mount, role_id_file_path, secret_id_file_path, remove_secret_id_file_after_reading } => {
            approle::login(
                vault,
                backoff,
                mount,
                role_id_file_path,
                secret_id_file_path,
                *remove_secret_id_file_after_reading,
            )
            .await?
        }
    };
    vault.set_token(&token);
    let identity = renew_self(vault, backoff).await?;
    check_identity(&cfg.expect, &identity).map_err(AuthError::Drift)?;
    Ok(Authenticated { token, method: cfg.method.kind(), ttl: identity.ttl, renewable: identity.renewable })
}

async fn renew_self(vault: &Vault, backoff: Backoff) -> Result<Identity, AuthError> {
    match vault.call_with("token renew-self", backoff, async |c| vaultrs::token::renew_self(c, None).await).await {
        Ok(auth) => Ok(Identity {
            policies: auth.policies,
            meta: auth.metadata.unwrap_or_default(),
            ttl: Duration::from_secs(auth.lease_duration),
            renewable: auth.renewable,
        }),
        // Root and other non-renewable tokens still work until they expire.
        Err(VaultError::Rejected { status: 400, detail, .. }) if detail.contains("not renewable") => {
            let t = vault
                .call_with("token lookup-self", backoff, async |c| vaultrs::token::lookup_self(c).await)
                .await
                .map_err(vault_err)?;
            tracing::warn!(
                "the Vault token cannot be renewed; it expires in {}",
                humantime::format_duration(Duration::from_secs(t.ttl))
            );
            let mut policies = t.policies;
            policies.extend(t.identity_policies.unwrap_or_default());
            Ok(Identity {
                policies,
                meta: t.meta.unwrap_or_default(),
                ttl: Duration::from_secs(t.ttl),
                renewable: false,
            })
        }
        Err(e) => Err(vault_err(e)),
    }
}

fn vault_err(e: VaultError) -> AuthError {
    match e {
        VaultError::Denied { .. } => AuthError::Invalid(e),
        e => AuthError::Vault(e),
    }
}

/// Every expected policy present and every expected meta pair equal; else what differs.
fn check_identity(expect: &Expect, id: &Identity) -> Result<(), String> {
    let mut problems = Vec::new();
    let missing: Vec<&str> = expect.policies.iter().filter(|p| !id.policies.contains(p)).map(String::as_str).collect();
    if !missing.is_empty() {
        problems.push(format!("policies lack {}", missing.join(", ")));
    }
    for (k, want) in &expect.meta {
        match id.meta.get(k) {
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

    fn id(policies: &[&str], meta: &[(&str, &str)]) -> Identity {
        Identity {
            policies: policies.iter().map(|p| p.to_string()).collect(),
            meta: meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ttl: Duration::from_secs(60),
            renewable: true,
        }
    }

    fn expect(policies: &[&str], meta: &[(&str, &str)]) -> Expect {
        Expect {
            policies: policies.iter().map(|p| p.to_string()).collect(),
            meta: meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn identity_matches_when_everything_expected_is_there() {
        let e = expect(&["claude-auth-sync-alice"], &[("os_user", "alice")]);
        assert!(
            check_identity(&e, &id(&["default", "claude-auth-sync-alice"], &[("os_user", "alice"), ("x", "y")]))
                .is_ok()
        );
        assert!(check_identity(&Expect::default(), &id(&[], &[])).is_ok());
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
