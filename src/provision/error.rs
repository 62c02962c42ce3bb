//! The provisioner's errors, by how far they reach: a [`ProvisionError`] is found before
//! anything is changed and ends the run; a [`UserError`] ends one user's provisioning
//! (and the run, when the admin token lacks a capability: every later user would fail
//! the same way); [`NeedsAdmin`] is what the routine run finds but may not fix.
//!
//! Each message names the file, the path or the capability and the next step. None ever
//! holds a token, a secret-id or any other credential; only the CLI prints them.

use std::path::PathBuf;

use super::home::HomeError;
use super::state::StateError;
use super::user_config::SwitchError;
use super::vault_ops::OpsError;
use crate::vault::VaultError;
use crate::vault::auth::Drift;

/// Trouble found before anything was changed: the Vault client, the admin token, the
/// KV mount, the state file.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Client(VaultError),
    #[error(
        "the admin token is not valid: Vault does not know it (revoked, expired or mistyped), or its policy lacks \
         `read` on `auth/token/lookup-self` (see deploy/vault/provisioner-admin.hcl); nothing was changed"
    )]
    AdminTokenUnknown,
    #[error("{0}; nothing was changed")]
    AdminTokenLookup(VaultError),
    #[error(
        "vault.kv_mount {mount}: Vault has no mount there, or the admin token has no capability under it; enable one \
         with `bao secrets enable -path={mount} kv-v2`; nothing was changed"
    )]
    KvMountMissing { mount: String },
    #[error("vault.kv_mount {mount}: {error}; nothing was changed")]
    KvMountLookup { mount: String, error: VaultError },
    /// A KV version 1 mount, or no KV mount at all.
    #[error("{0}; nothing was changed")]
    KvMountNotKv2(VaultError),
    #[error(
        "vault.kv_mount {mount} is not a mount but a path inside the mount {actual}/: set kv_mount: {actual} and put \
         the rest into path_prefix; nothing was changed"
    )]
    KvMountInside { mount: String, actual: String },
    #[error(transparent)]
    State(#[from] StateError),
}

/// Why one user could not be provisioned or checked.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(transparent)]
    Vault(#[from] OpsError),
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The user's config.hcl uses the other auth mode and cannot be rewritten.
    #[error(
        "{} {error}; give it the roster's auth method by hand (docs/provisioning.md), or remove it",
        .path.display()
    )]
    Unswitchable { path: PathBuf, error: SwitchError },
    /// The routine check's own AppRole login is still alive.
    #[error("the check's AppRole login could not be revoked: {0}")]
    CheckLoginKept(VaultError),
}

impl From<VaultError> for UserError {
    fn from(e: VaultError) -> Self {
        UserError::Vault(OpsError::Vault(e))
    }
}

impl UserError {
    /// The admin token lacks a capability: the run stops here rather than fail every later user.
    pub fn stops_the_run(&self) -> bool {
        matches!(self, UserError::Vault(OpsError::MissingCapability { .. }))
    }
}

/// What the routine run found that only an admin run can fix.
#[derive(Debug, thiserror::Error)]
pub enum NeedsAdmin {
    #[error("not provisioned: ~/.config/claude-auth-sync is missing")]
    NotProvisioned,
    #[error("no credential: {} is missing", .0.display())]
    NoCredential(PathBuf),
    #[error("credential expired (not renewed within its period; is the timer running?)")]
    Expired,
    #[error("credential revoked (Vault no longer knows the token)")]
    Revoked,
    #[error("AppRole login refused: the secret-id or the role is gone")]
    LoginRefused,
    /// The roster's `secrets:` names a secret the user's policy in Vault does not grant.
    #[error("the user's policy does not grant {0}, which the roster's secrets: lists; an admin run rewrites it")]
    NotGranted(String),
    #[error(
        "the check's AppRole login cannot revoke itself: the user's policy predates revoke-self; an admin run \
         rewrites it"
    )]
    CannotRevokeSelf,
    /// The credential's identity differs from what the user's `expect` says.
    #[error("drift: {0}")]
    Drift(Drift),
}
