//! `method "token_file"`: the token is the content of a file (for this product, an
//! orphan periodic token the provisioner minted for this user alone).

use std::path::Path;

use super::CredentialError;
use super::credential_file::{self, ModeCheck};
use crate::secret::Secret;

pub fn read(path: &Path) -> Result<Secret, CredentialError> {
    credential_file::read(path, "Vault token file", ModeCheck::OwnerOnly)
}
