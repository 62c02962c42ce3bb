//! `sink "file"`: the renewed token, written for other programs of this user.
//!
//! Each sink is replaced atomically with its configured mode (default 0600) and never
//! through a symlink; the token is written as-is, without a newline, as Vault Agent does.

use crate::config::FileSink;
use crate::secret::Secret;
use crate::store::atomic::{self, WriteError};

pub fn write_all(sinks: &[FileSink], token: &Secret) -> Result<(), WriteError> {
    for sink in sinks {
        atomic::replace(&sink.path, token.expose().as_bytes(), sink.mode)?;
    }
    Ok(())
}
