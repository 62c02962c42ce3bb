//! Writing the file: the synced object merged into the document as it is under the
//! locks, bytes that are not strict JSON kept beside the file first, the replacement
//! done atomically unless a lock was taken over meanwhile.
//!
//! It must never drop a sibling key, never discard bytes it could not parse, and never
//! rename over the file once a lock it holds has been taken over.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::{FileState, JsonFile, LocalError, Snapshot};
use crate::store::atomic::{self, NewFile, Owner, Target};
use crate::store::lock;
use crate::template::lenient::{self, Reading};
use crate::template::oauth;
use crate::template::subtree;

impl JsonFile {
    /// Writes `current`'s document with the synced object set to `obj`; bytes that are
    /// not strict JSON are kept beside the file first. Returns what was written and where
    /// the old bytes were kept.
    pub(super) fn merge(
        &self,
        dir: &OwnedFd,
        held: &lock::Held,
        current: &Snapshot,
        obj: &Map<String, Value>,
    ) -> Result<(Vec<u8>, Option<PathBuf>), LocalError> {
        let mut doc = match current.bytes.as_deref().map(lenient::read) {
            Some(Reading::Strict(doc) | Reading::Lenient(doc)) => doc,
            // Nothing there, or bytes no reading recovers (kept beside the file below).
            None | Some(Reading::NotJson) => Value::Object(Map::new()),
            Some(Reading::TooDeep) => return Err(self.too_deep()),
        };
        subtree::set(&mut doc, &self.key, obj.clone())
            .map_err(|s| LocalError::WrongShape { path: self.path.clone(), problem: s.to_string() })?;
        let written = serde_json::to_vec(&doc).map_err(|e| self.io(e.into()))?;
        let kept = match &current.bytes {
            Some(b) if current.lenient || current.state == FileState::NotJson => Some(self.keep_beside(dir, b)?),
            _ => None,
        };
        self.write_under(dir, held, &written)?;
        Ok((written, kept))
    }

    /// Keeps `bytes` (the file's, which are not strict JSON) beside it, 0600, under a
    /// name derived from their digest: the same bytes are kept once.
    fn keep_beside(&self, dir: &OwnedFd, bytes: &[u8]) -> Result<PathBuf, LocalError> {
        let mut name = self.name().to_os_string();
        name.push(format!(".claude-auth-sync.unparsed-{}", oauth::fingerprint_bytes(bytes)));
        let name = match name.as_encoded_bytes().first() {
            Some(b'.') => name,
            _ => [std::ffi::OsStr::new("."), &name].into_iter().collect(),
        };
        let path = self.dir_path().join(&name);
        let target = Target { dir, name: &name, path: &path };
        atomic::replace_in(target, NewFile { contents: bytes, mode: 0o600, owner: Owner::Keep })?;
        tracing::warn!(
            "{} is not valid JSON; its bytes are kept as they were in {}",
            self.path.display(),
            path.display()
        );
        Ok(path)
    }

    /// Replaces the file with `bytes`, unless a lock in `held` was taken over meanwhile.
    pub(super) fn write_under(&self, dir: &OwnedFd, held: &lock::Held, bytes: &[u8]) -> Result<(), LocalError> {
        let target = Target { dir, name: self.name(), path: &self.path };
        let new = NewFile { contents: bytes, mode: self.perms, owner: Owner::Keep };
        atomic::replace_in_guarded(target, new, || held.verify())?.map_err(LocalError::Busy)
    }
}
