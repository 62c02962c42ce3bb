//! One JSON file with a synced subtree (Claude Code's credentials file by default):
//! read it safely, replace only the subtree under the locks, and undo a replacement
//! that turned out useless.
//!
//! Reads refuse a symlink, a FIFO or device, and anything over 1 MiB (a credentials
//! file is about 1 KiB). A file that is not strict JSON is read leniently (a BOM,
//! comments, trailing commas: see [`lenient`]). Writes re-read the file
//! under the locks and merge into what is there *then*, so a key another program
//! changed meanwhile is kept; the file is replaced atomically with the template's mode
//! and the owner kept. Bytes that are not strict JSON are never discarded: before such
//! a file is rewritten, its exact bytes are kept beside it
//! (`.credentials.json.claude-auth-sync.unparsed-<sha256 prefix>`, 0600), a name
//! Claude Code never reads. It must never write through a symlink or drop a sibling key.
//!
//! This file holds the types and the three operations under the locks (read, replace,
//! rollback); [`read`] reads the file safely, [`merge`] writes it.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode};
use rustix::io::Errno;
use serde_json::{Map, Value};

mod merge;
mod read;

use super::atomic::{self, WriteError};
use super::dir::{self, DirError};
use super::file_id::FileId;
use super::hook;
use super::lock::{self, LockError, RefreshLocks};
use crate::config::Lock;
use crate::template::lenient;
use crate::template::oauth;
use crate::template::subtree::JsonKey;

/// Larger than any credentials file; a bigger one is refused, not parsed.
pub const MAX_BYTES: u64 = 1 << 20;

pub struct JsonFile {
    path: PathBuf,
    key: JsonKey,
    perms: u32,
    lock: Lock,
}

/// What the file held when it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The exact bytes, `None` when the file did not exist.
    pub bytes: Option<Vec<u8>>,
    pub state: FileState,
    /// The file it was read from, `None` when there was none: see [`Snapshot::same_file`].
    pub stamp: Option<FileId>,
    /// The bytes are not strict JSON; `state` comes from a lenient reading of them.
    pub lenient: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FileState {
    Missing,
    /// Not JSON even to a lenient reading (a truncated or clobbered file): replaced
    /// whole on restore, its bytes kept beside it.
    NotJson,
    /// Valid JSON without the key (or with `null` there).
    NoObject,
    Object(Map<String, Value>),
}

impl Snapshot {
    /// No file.
    pub fn missing() -> Snapshot {
        Snapshot { bytes: None, state: FileState::Missing, stamp: None, lenient: false }
    }

    pub fn object(&self) -> Option<&Map<String, Value>> {
        match &self.state {
            FileState::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The object, if it is a whole login (not blanked, nothing missing).
    pub fn login(&self) -> Option<&Map<String, Value>> {
        self.object().filter(|o| oauth::usable(o))
    }

    /// Read from the same file with the same content as `other`: a file replaced since
    /// (even with the same bytes) or written to is another; a chmod is not.
    pub fn same_file(&self, other: &Snapshot) -> bool {
        match (self.stamp, other.stamp) {
            (Some(a), Some(b)) => a.same_content(&b),
            (a, b) => a.is_none() && b.is_none(),
        }
    }

    /// A different whole login appeared since `expected` was read (a refresh, a new
    /// login): it must be kept. A file blanked or removed meanwhile does not count.
    pub fn superseded(&self, expected: &Snapshot) -> bool {
        self.state != expected.state && self.login().is_some() && self.login() != expected.login()
    }
}

/// A replacement that happened: what was there before and what was written.
#[derive(Debug, Clone)]
pub struct Replaced {
    pub previous: Snapshot,
    pub(crate) written: Vec<u8>,
    /// Where the previous bytes were kept because they were not strict JSON.
    pub kept: Option<PathBuf>,
}

#[derive(Debug)]
pub enum ReplaceOutcome {
    Replaced(Replaced),
    /// The synced object changed since it was read: nothing was written.
    Changed(Snapshot),
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{} is a symbolic link; refusing to read or write through it (replace it with a regular file)", .0.display())]
    Symlink(PathBuf),
    #[error("{} is not a regular file (a FIFO, device or directory); move it away", .0.display())]
    NotRegular(PathBuf),
    #[error("{} is {size} bytes, far more than a credentials file; move it away and log in again", .path.display())]
    TooLarge { path: PathBuf, size: u64 },
    #[error("{}: {problem}; fix or move the file (it is left as it is)", .path.display())]
    WrongShape { path: PathBuf, problem: String },
    #[error(transparent)]
    Busy(#[from] LockError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("cannot use {}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl LocalError {
    /// Lock contention passes on its own; everything else needs a person.
    pub fn is_transient(&self) -> bool {
        matches!(self, LocalError::Busy(LockError::Busy { .. } | LockError::Lost { .. }))
    }
}

impl JsonFile {
    pub fn new(path: PathBuf, json_key: &str, perms: u32, lock: Lock) -> Self {
        JsonFile { path, key: JsonKey::parse(json_key), perms, lock }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file under the flock (a plain read: Claude Code replaces it atomically).
    pub fn read(&self) -> Result<Snapshot, LocalError> {
        let Some(dir) = self.open_dir()? else {
            return Ok(Snapshot::missing());
        };
        let lock = if self.lock == Lock::None { Lock::None } else { Lock::Flock };
        let _held = lock::acquire(&dir, self.dir_path(), self.name(), lock, RefreshLocks::Skip)?;
        self.read_in(&dir)
    }

    /// Reads the file without taking any lock: nothing is created, not even the flock
    /// sidecar (what `status` uses; Claude Code replaces the file atomically).
    pub fn peek(&self) -> Result<Snapshot, LocalError> {
        match self.open_dir()? {
            Some(dir) => self.read_in(&dir),
            None => Ok(Snapshot::missing()),
        }
    }

    /// Sets the synced object to `obj` unless a different usable object appeared since
    /// `expected` was read; every other key is taken from the file as it is under the locks.
    pub fn replace(&self, obj: &Map<String, Value>, expected: &Snapshot) -> Result<ReplaceOutcome, LocalError> {
        let dir = self.open_or_create_dir()?;
        let held = lock::acquire(&dir, self.dir_path(), self.name(), self.lock, RefreshLocks::Take)?;
        hook::step("locked");
        if self.lock != Lock::None {
            // Under the writer lock, a temp file of ours is what a killed writer left.
            atomic::remove_stale_temps(&dir, self.name());
        }
        let current = self.read_in(&dir)?;
        if current.superseded(expected) {
            return Ok(ReplaceOutcome::Changed(current));
        }
        let (written, kept) = self.merge(&dir, &held, &current, obj)?;
        Ok(ReplaceOutcome::Replaced(Replaced { previous: current, written, kept }))
    }

    /// Puts back what `r` replaced: the previous bytes, if the file still holds exactly
    /// what was written; the previous login, merged into the file as it is now, if the
    /// restored copy has been blanked meanwhile (the CLI blanks a login whose refresh it
    /// was refused). A file holding tokens again, or removed (a logout), is left alone.
    /// Returns whether it put anything back.
    pub fn rollback(&self, r: &Replaced) -> Result<bool, LocalError> {
        let Some(dir) = self.open_dir()? else { return Ok(false) };
        let held = lock::acquire(&dir, self.dir_path(), self.name(), self.lock, RefreshLocks::Take)?;
        let now = self.read_in(&dir)?;
        if now.bytes.as_deref() == Some(r.written.as_slice()) {
            match &r.previous.bytes {
                Some(b) => self.write_under(&dir, &held, b)?,
                None => {
                    rustix::fs::unlinkat(&dir, self.name(), AtFlags::empty()).map_err(|e| self.io(e.into()))?;
                    rustix::fs::fsync(&dir).map_err(|e| self.io(e.into()))?;
                }
            }
            return Ok(true);
        }
        match (r.previous.login(), now.object()) {
            (Some(previous), Some(blanked)) if oauth::tokenless(blanked) => {
                self.merge(&dir, &held, &now, previous)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn name(&self) -> &OsStr {
        self.path.file_name().expect("a template destination names a file")
    }

    fn dir_path(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }

    fn io(&self, e: std::io::Error) -> LocalError {
        LocalError::Io { path: self.path.clone(), source: e }
    }

    fn too_deep(&self) -> LocalError {
        let problem = format!("its JSON is nested more than {} levels deep", lenient::MAX_DEPTH);
        LocalError::WrongShape { path: self.path.clone(), problem }
    }

    /// The parent directory, never through a symlink; `None` when it is missing.
    fn open_dir(&self) -> Result<Option<OwnedFd>, LocalError> {
        match dir::open(self.dir_path()) {
            Ok(fd) => Ok(Some(fd)),
            Err(DirError::Missing) => Ok(None),
            Err(e) => Err(self.dir_error(e)),
        }
    }

    /// [`JsonFile::open_dir`], making the directory (0700) when it is missing.
    fn open_or_create_dir(&self) -> Result<OwnedFd, LocalError> {
        if let Some(fd) = self.open_dir()? {
            return Ok(fd);
        }
        rustix::fs::mkdir(self.dir_path(), Mode::from_raw_mode(0o700))
            .or_else(|e| if e == Errno::EXIST { Ok(()) } else { Err(e) })
            .map_err(|e| self.io(e.into()))?;
        dir::open(self.dir_path()).map_err(|e| self.dir_error(e))
    }

    fn dir_error(&self, e: DirError) -> LocalError {
        match e {
            DirError::Symlink => LocalError::Symlink(self.dir_path().to_path_buf()),
            e => self.io(e.into()),
        }
    }
}

#[cfg(test)]
mod tests;
