//! `method "approle"`: log in with this user's own role-id and secret-id.

use std::path::Path;

use super::{AuthError, credential_file, vault_err};
use crate::secret::Secret;
use crate::vault::client::Backoff;
use crate::vault::{Vault, VaultError};

pub async fn login(
    vault: &Vault,
    backoff: Backoff,
    mount: &str,
    role_id_path: &Path,
    secret_id_path: &Path,
    remove_secret_id: bool,
) -> Result<Secret, AuthError> {
    let role_id = credential_file::read(role_id_path, "AppRole role-id file", false)?;
    let secret_id = credential_file::read(secret_id_path, "AppRole secret-id file", true)?;
    let auth = vault
        .call_with("AppRole login", backoff, async |c| {
            vaultrs::auth::approle::login(c, mount, role_id.expose(), secret_id.expose()).await
        })
        .await
        .map_err(|e| match e {
            // "invalid role or secret ID" comes back as a 400.
            VaultError::Rejected { status: 400, .. } => AuthError::Invalid(e),
            e => vault_err(e),
        })?;
    if remove_secret_id && let Err(e) = std::fs::remove_file(secret_id_path) {
        tracing::warn!("could not remove the secret-id file {} after reading: {e}", secret_id_path.display());
    }
    Ok(Secret::new(auth.client_token))
}
