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

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use serde_json::{Map, Value};

use super::atomic::{self, NewFile, Owner, Target, WriteError};
use super::dir::{self, DirError};
use super::file_id::FileId;
use super::hook;
use super::lock::{self, LockError, RefreshLocks};
use crate::config::Lock;
use crate::template::lenient::{self, Reading};
use crate::template::oauth;
use crate::template::subtree::{self, JsonKey};

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

    /// Writes `current`'s document with the synced object set to `obj`; bytes that are
    /// not strict JSON are kept beside the file first. Returns what was written and where
    /// the old bytes were kept.
    fn merge(
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
    fn write_under(&self, dir: &OwnedFd, held: &lock::Held, bytes: &[u8]) -> Result<(), LocalError> {
        let target = Target { dir, name: self.name(), path: &self.path };
        let new = NewFile { contents: bytes, mode: self.perms, owner: Owner::Keep };
        atomic::replace_in_guarded(target, new, || held.verify())?.map_err(LocalError::Busy)
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

    fn read_in(&self, dir: &OwnedFd) -> Result<Snapshot, LocalError> {
        let fd = match rustix::fs::openat(
            dir,
            self.name(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(Snapshot::missing()),
            Err(Errno::LOOP) => return Err(LocalError::Symlink(self.path.clone())),
            Err(e) => return Err(self.io(e.into())),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| self.io(e.into()))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(LocalError::NotRegular(self.path.clone()));
        }
        if st.st_size as u64 > MAX_BYTES {
            return Err(LocalError::TooLarge { path: self.path.clone(), size: st.st_size as u64 });
        }
        let mut bytes = Vec::with_capacity(st.st_size as usize);
        std::fs::File::from(fd).take(MAX_BYTES + 1).read_to_end(&mut bytes).map_err(|e| self.io(e))?;
        if bytes.len() as u64 > MAX_BYTES {
            return Err(LocalError::TooLarge { path: self.path.clone(), size: bytes.len() as u64 });
        }
        let (doc, lenient) = match lenient::read(&bytes) {
            Reading::Strict(doc) => (Some(doc), false),
            Reading::Lenient(doc) => (Some(doc), true),
            // Deliberately deep nesting is not a clobbered file: leave it for a person.
            Reading::TooDeep => return Err(self.too_deep()),
            Reading::NotJson => (None, false),
        };
        let state = match doc {
            None => FileState::NotJson,
            Some(doc) => match subtree::get(&doc, &self.key) {
                Ok(Some(obj)) => FileState::Object(obj.clone()),
                Ok(None) => FileState::NoObject,
                Err(shape) => {
                    return Err(LocalError::WrongShape { path: self.path.clone(), problem: shape.to_string() });
                }
            },
        };
        Ok(Snapshot { bytes: Some(bytes), state, stamp: Some(FileId::of(&st)), lenient })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    fn file(dir: &Path) -> JsonFile {
        JsonFile::new(dir.join(".credentials.json"), "claudeAiOauth", 0o600, Lock::ClaudeCode)
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn replace_keeps_siblings_and_rollback_undoes_it() {
        let d = tempfile::tempdir().unwrap();
        let f = file(d.path());
        let original = br#"{"mcpOAuth":{"srv":{"accessToken":"m"}},"claudeAiOauth":{"accessToken":""},"x":1}"#;
        std::fs::write(f.path(), original).unwrap();
        let before = f.read().unwrap();
        let ReplaceOutcome::Replaced(r) = f.replace(&obj(json!({"accessToken": "new"})), &before).unwrap() else {
            panic!("unchanged file must be replaced")
        };
        let now: Value = serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap();
        assert_eq!(now, json!({"mcpOAuth":{"srv":{"accessToken":"m"}},"claudeAiOauth":{"accessToken":"new"},"x":1}));
        assert_eq!(std::fs::metadata(f.path()).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(f.rollback(&r).unwrap());
        assert_eq!(std::fs::read(f.path()).unwrap(), original);
        assert!(!d.path().join(lock::WRITE_LOCK).exists());
    }

    #[test]
    fn replace_refuses_when_the_object_changed_since_it_was_read() {
        let d = tempfile::tempdir().unwrap();
        let f = file(d.path());
        let login = |t: &str| {
            format!(
                r#"{{"claudeAiOauth":{{"accessToken":"{t}","refreshToken":"r{t}","expiresAt":5,"scopes":["user:inference"]}}}}"#
            )
        };
        std::fs::write(f.path(), login("a")).unwrap();
        let before = f.read().unwrap();
        std::fs::write(f.path(), login("b")).unwrap();
        let c = obj(json!({"accessToken": "c", "refreshToken": "rc", "expiresAt": 5, "scopes": ["user:inference"]}));
        assert!(matches!(f.replace(&c, &before).unwrap(), ReplaceOutcome::Changed(_)));
        assert_eq!(std::fs::read_to_string(f.path()).unwrap(), login("b"));
    }

    #[test]
    fn bytes_that_are_not_strict_json_are_kept_beside_the_file_and_merged_into() {
        let d = tempfile::tempdir().unwrap();
        let f = file(d.path());
        let login = obj(json!({"accessToken": "a", "refreshToken": "r", "expiresAt": 5, "scopes": ["user:inference"]}));
        let hand_edited =
            "\u{feff}{\"mcpOAuth\": {\"srv\": 1}, // a note\n \"claudeAiOauth\": {\"accessToken\": \"\"},}";
        std::fs::write(f.path(), hand_edited).unwrap();
        let before = f.read().unwrap();
        assert!(before.lenient && before.object().is_some(), "read leniently: {before:?}");
        let ReplaceOutcome::Replaced(r) = f.replace(&login, &before).unwrap() else { panic!() };
        let now: Value = serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap();
        assert_eq!(now, json!({"mcpOAuth": {"srv": 1}, "claudeAiOauth": login}), "every other key merged");
        let kept = r.kept.expect("the original bytes were kept");
        assert_eq!(kept.parent(), Some(d.path()));
        assert!(
            kept.file_name().unwrap().to_string_lossy().starts_with(".credentials.json.claude-auth-sync.unparsed-")
        );
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), hand_edited);
        assert_eq!(std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777, 0o600);

        // Garbage no reading recovers: replaced whole, its bytes kept all the same.
        std::fs::write(f.path(), b"\x00\x01 not json at all").unwrap();
        let before = f.read().unwrap();
        assert_eq!((before.state.clone(), before.lenient), (FileState::NotJson, false));
        let ReplaceOutcome::Replaced(r) = f.replace(&login, &before).unwrap() else { panic!() };
        assert_eq!(std::fs::read(r.kept.unwrap()).unwrap(), b"\x00\x01 not json at all");
        assert_eq!(f.read().unwrap().object(), Some(&login));
    }

    #[test]
    fn a_restored_copy_blanked_meanwhile_is_rolled_back_but_a_logout_is_not() {
        let d = tempfile::tempdir().unwrap();
        let f = file(d.path());
        let mine = json!({"accessToken": "a", "refreshToken": "r", "expiresAt": 5, "scopes": ["user:inference"]});
        std::fs::write(f.path(), json!({"claudeAiOauth": mine, "mcpOAuth": {}}).to_string()).unwrap();
        let before = f.read().unwrap();
        let vaults =
            obj(json!({"accessToken": "v", "refreshToken": "rv", "expiresAt": 9, "scopes": ["user:inference"]}));
        let ReplaceOutcome::Replaced(r) = f.replace(&vaults, &before).unwrap() else { panic!() };
        // The CLI's refresh of the restored copy is refused: it blanks it, and saves a sibling.
        let blanked =
            json!({"claudeAiOauth": {"accessToken": "", "refreshToken": "", "expiresAt": 0}, "mcpOAuth": {"new": 1}});
        std::fs::write(f.path(), blanked.to_string()).unwrap();
        assert!(f.rollback(&r).unwrap());
        let now: Value = serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap();
        assert_eq!(now, json!({"claudeAiOauth": mine, "mcpOAuth": {"new": 1}}));

        let ReplaceOutcome::Replaced(r) = f.replace(&vaults, &f.read().unwrap()).unwrap() else { panic!() };
        std::fs::remove_file(f.path()).unwrap();
        assert!(!f.rollback(&r).unwrap(), "a logout removed the file: nothing is put back");
        assert!(!f.path().exists());
    }

    #[test]
    fn missing_file_and_directory_are_created_and_rolled_back_to_absent() {
        let d = tempfile::tempdir().unwrap();
        let f = file(&d.path().join("claude"));
        let before = f.read().unwrap();
        assert_eq!(before.state, FileState::Missing);
        let ReplaceOutcome::Replaced(r) = f.replace(&obj(json!({"a": 1})), &before).unwrap() else { panic!() };
        assert_eq!(std::fs::metadata(d.path().join("claude")).unwrap().permissions().mode() & 0o777, 0o700);
        assert!(f.rollback(&r).unwrap());
        assert!(!f.path().exists());
    }

    #[test]
    fn hostile_files_are_refused_without_writing() {
        let d = tempfile::tempdir().unwrap();
        let f = file(d.path());
        std::fs::write(d.path().join("target"), b"{}").unwrap();
        std::os::unix::fs::symlink(d.path().join("target"), f.path()).unwrap();
        assert!(matches!(f.read(), Err(LocalError::Symlink(_))));
        assert!(matches!(
            f.replace(&Map::new(), &Snapshot::missing()),
            Err(LocalError::Symlink(_)) | Err(LocalError::Write(WriteError::Symlink { .. }))
        ));
        assert_eq!(std::fs::read(d.path().join("target")).unwrap(), b"{}");
        std::fs::remove_file(f.path()).unwrap();

        rustix::fs::mknodat(rustix::fs::CWD, f.path(), FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        assert!(matches!(f.read(), Err(LocalError::NotRegular(_))));
        std::fs::remove_file(f.path()).unwrap();

        std::fs::write(f.path(), br#"{"claudeAiOauth":"a string"}"#).unwrap();
        let err = f.read().unwrap_err();
        assert!(err.to_string().contains("claudeAiOauth is a string"), "{err}");

        std::fs::write(f.path(), b"{not json").unwrap();
        assert_eq!(f.read().unwrap().state, FileState::NotJson);

        std::fs::write(f.path(), "[".repeat(100_000)).unwrap();
        assert!(f.read().unwrap_err().to_string().contains("nested more than 128 levels"));

        std::fs::File::create(f.path()).unwrap().set_len(2 << 30).unwrap();
        assert!(matches!(f.read(), Err(LocalError::TooLarge { .. })));
    }
}
