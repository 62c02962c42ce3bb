//! What the provisioner remembers between runs (root-only, mode 0600): per user, the
//! auth mode and the credential's accessor, so that `--prune` can revoke a user who
//! left the roster (and whose home may be gone), and the last expiry seen, so that
//! a dead credential is reported as expired or as revoked.
//!
//! Accessors identify credentials; they are not credentials. No token is stored.

use std::collections::BTreeMap;
use std::path::Path;

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

impl State {
    pub fn load(path: &Path) -> Result<State, String> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} is not a provisioner state file: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), String> {
        if let Some(dir) = path.parent() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let bytes = serde_json::to_vec_pretty(self).expect("state serializes");
        atomic::replace(path, &bytes, 0o600).map_err(|e| e.to_string())
    }
}
