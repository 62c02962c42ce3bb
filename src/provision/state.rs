//! What the provisioner remembers between runs (root-only, mode 0600): per user, the
//! auth mode and the credential's accessor, so that `--prune` can revoke a user who
//! left the roster (and whose home may be gone), and the last expiry seen, so that
//! a dead credential is reported as expired or as revoked.
//!
//! Accessors identify credentials; they are not credentials. No token is stored.

use std::collections::BTreeMap;
use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::roster::AuthMode;
use crate::store::atomic;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub users: BTreeMap<String, UserState>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserState {
    pub auth: AuthMode,
    /// Token accessor (token mode) or secret-id accessor (AppRole mode).
    pub accessor: Option<String>,
    /// Epoch seconds when the credential was last seen to expire.
    pub expires_at: Option<u64>,
}

impl UserState {
    /// A periodic token, by its accessor and the expiry last seen.
    pub fn token(accessor: String, expires_at: Option<u64>) -> UserState {
        UserState { auth: AuthMode::Token, accessor: Some(accessor), expires_at }
    }

    /// An AppRole secret-id, by its accessor; it does not expire (`secret_id_ttl` 0).
    pub fn approle(accessor: String) -> UserState {
        UserState { auth: AuthMode::Approle, accessor: Some(accessor), expires_at: None }
    }
}

/// The state file cannot be read or written; nothing was changed because of it.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{} is not a provisioner state file: {error}", .path.display())]
    Garbled { path: PathBuf, error: serde_json::Error },
    #[error("cannot read {}: {error}", .path.display())]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{}: {error}", .dir.display())]
    CreateDir { dir: PathBuf, error: std::io::Error },
    #[error(transparent)]
    Write(#[from] atomic::WriteError),
}

impl State {
    pub fn load(path: &Path) -> Result<State, StateError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|error| StateError::Garbled { path: path.to_path_buf(), error })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(error) => Err(StateError::Read { path: path.to_path_buf(), error }),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        // Root's own directory for it; an empty parent (a bare file name) is the current one.
        let dir = path.parent().unwrap_or(Path::new(""));
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|error| StateError::CreateDir { dir: dir.to_path_buf(), error })?;
        let bytes = serde_json::to_vec_pretty(self).expect("state serializes");
        Ok(atomic::replace(path, &bytes, 0o600)?)
    }
}
