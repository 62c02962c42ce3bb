//! Atomic replacement of one file: a temp file in the same directory (O_EXCL,
//! O_NOFOLLOW, the final mode), write, fsync, rename over the target, fsync the
//! directory. A reader sees the old file or the new one, never a mix; a crash leaves
//! at worst a stray temp file beside the target. The owner and group of an existing file
//! are kept as far as the process may (see [`keep_owner`]).
//!
//! It must never write through a symlink: neither the file nor its parent directory
//! may be one.

use std::convert::Infallible;
use std::ffi::OsStr;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Uid};
use rustix::io::Errno;

use super::dir::{self, DirError};
use super::hook;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("refusing to write {}: {} is a symbolic link; replace it with a real {}", .path.display(), .link.display(), if .link == .path { "file" } else { "directory" })]
    Symlink { path: PathBuf, link: PathBuf },
    #[error("refusing to write {}: it exists and is not a regular file", .path.display())]
    NotRegular { path: PathBuf },
    #[error("cannot write {}: {op} failed: {source}", .path.display())]
    Io { path: PathBuf, op: &'static str, source: std::io::Error },
}

/// Who owns the replaced file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The owner of the file being replaced (the writer, for a new file).
    Keep,
    /// This uid and gid (root writing into a user's home).
    Set(u32, u32),
}

/// The file to replace: its name in an opened directory, and its path for messages.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub dir: &'a OwnedFd,
    pub name: &'a OsStr,
    pub path: &'a Path,
}

/// What goes in its place.
#[derive(Debug, Clone, Copy)]
pub struct NewFile<'a> {
    pub contents: &'a [u8],
    pub mode: u32,
    pub owner: Owner,
}

/// Replaces `path` with `contents`, mode `mode`, keeping the owner of an existing file.
pub fn replace(path: &Path, contents: &[u8], mode: u32) -> Result<(), WriteError> {
    let (dir, name) = open_parent(path)?;
    replace_in(Target { dir: &dir, name, path }, NewFile { contents, mode, owner: Owner::Keep })
}

/// The directory holding `path`, opened without following a symlink, and the file name.
pub fn open_parent(path: &Path) -> Result<(OwnedFd, &OsStr), WriteError> {
    let name = path.file_name().ok_or_else(|| WriteError::NotRegular { path: path.to_path_buf() })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = dir::open(parent).map_err(|e| match e {
        DirError::Symlink => WriteError::Symlink { path: path.to_path_buf(), link: parent.to_path_buf() },
        e => WriteError::Io { path: path.to_path_buf(), op: "opening the directory", source: e.into() },
    })?;
    Ok((dir, name))
}

/// [`replace`] inside an already opened directory.
pub fn replace_in(target: Target<'_>, new: NewFile<'_>) -> Result<(), WriteError> {
    replace_in_guarded(target, new, || Ok::<(), Infallible>(()))?.map_err(|e| match e {})
}

/// [`replace_in`], asking `before_rename` right before the new file goes in place: when it
/// refuses, the temp file is removed, nothing is replaced, and its error is returned
/// inside `Ok`. A writer whose locks may have been taken over meanwhile checks them there.
pub fn replace_in_guarded<E>(
    Target { dir, name, path }: Target<'_>,
    NewFile { contents, mode, owner }: NewFile<'_>,
    before_rename: impl FnOnce() -> Result<(), E>,
) -> Result<Result<(), E>, WriteError> {
    let io = |op: &'static str| move |e: Errno| WriteError::Io { path: path.to_path_buf(), op, source: e.into() };
    let existing = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                return Err(WriteError::Symlink { path: path.to_path_buf(), link: path.to_path_buf() });
            }
            FileType::RegularFile => Some(st),
            _ => return Err(WriteError::NotRegular { path: path.to_path_buf() }),
        },
        Err(Errno::NOENT) => None,
        Err(e) => return Err(io("stat")(e)),
    };

    let tmp = temp_name(name);
    hook::step("before_temp");
    let fd = rustix::fs::openat(
        dir,
        &tmp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )
    .map_err(io("creating the temp file"))?;

    let written = (|| {
        // The umask may have narrowed the mode given to open.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(io("chmod"))?;
        match (owner, &existing) {
            (Owner::Set(uid, gid), _) => set_owner(&fd, uid, gid, path)?,
            (Owner::Keep, Some(st)) => keep_owner(&fd, st.st_uid, st.st_gid, mode, path)?,
            (Owner::Keep, None) => {}
        }
        hook::step("temp_created");
        let write_err = |source| WriteError::Io { path: path.to_path_buf(), op: "writing the temp file", source };
        let mut file = std::fs::File::from(fd);
        let (head, tail) = contents.split_at(contents.len() / 2);
        file.write_all(head).map_err(write_err)?;
        hook::step("half_written");
        file.write_all(tail).and_then(|()| file.sync_all()).map_err(write_err)?;
        drop(file);
        hook::step("synced");
        if let Err(refused) = before_rename() {
            return Ok(Err(refused));
        }
        rustix::fs::renameat(dir, &tmp, dir, name).map_err(io("rename"))?;
        hook::step("renamed");
        // The new file is in place: a failed directory sync only weakens durability.
        if let Err(e) = rustix::fs::fsync(dir) {
            tracing::warn!("replaced {}, but syncing its directory failed: {e}", path.display());
        }
        hook::step("dir_synced");
        Ok(Ok(()))
    })();
    if !matches!(written, Ok(Ok(()))) {
        let _ = rustix::fs::unlinkat(dir, &tmp, AtFlags::empty());
    }
    written
}

/// Root writing into a user's home: exactly this owner and group, or an error.
fn set_owner(fd: &OwnedFd, uid: u32, gid: u32, path: &Path) -> Result<(), WriteError> {
    let me = rustix::fs::fstat(fd).map_err(|e| chown_err(path, e))?;
    if (me.st_uid, me.st_gid) != (uid, gid) {
        rustix::fs::fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))).map_err(|e| chown_err(path, e))?;
    }
    Ok(())
}

/// The replaced file's owner and group, as far as this process may keep them: an
/// unprivileged process cannot give a file away and can pick only one of its own groups.
/// Neither is a reason to fail the write (the directory lets this process replace the
/// file anyway). When the group cannot be kept, the group permission bits are dropped,
/// so that the new file never grants a group more than the old one did; a 0600 file's
/// group grants nothing, so nothing changes for it.
fn keep_owner(fd: &OwnedFd, uid: u32, gid: u32, mode: u32, path: &Path) -> Result<(), WriteError> {
    let me = rustix::fs::fstat(fd).map_err(|e| chown_err(path, e))?;
    if (me.st_uid, me.st_gid) == (uid, gid) {
        return Ok(());
    }
    match rustix::fs::fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))) {
        Ok(()) => return Ok(()),
        Err(Errno::PERM | Errno::INVAL) => {}
        Err(e) => return Err(chown_err(path, e)),
    }
    let group_kept = me.st_gid == gid || rustix::fs::fchown(fd, None, Some(Gid::from_raw(gid))).is_ok();
    if !group_kept && mode & 0o070 != 0 {
        let narrowed = mode & !0o070;
        rustix::fs::fchmod(fd, Mode::from_raw_mode(narrowed)).map_err(|e| WriteError::Io {
            path: path.to_path_buf(),
            op: "chmod",
            source: e.into(),
        })?;
        tracing::warn!(
            "{}: its group (gid {gid}) cannot be kept, this user is not a member of it; written with mode {narrowed:04o} instead of {mode:04o}, so that no other group can read it",
            path.display()
        );
    }
    Ok(())
}

fn chown_err(path: &Path, e: Errno) -> WriteError {
    WriteError::Io { path: path.to_path_buf(), op: "setting the owner (chown)", source: e.into() }
}

/// Removes temp files that [`replace_in`] left for `name` when its process was killed.
/// Only for a caller that holds the file's writer lock, so that no such file can be
/// another writer's work in progress.
pub fn remove_stale_temps(dir: &OwnedFd, name: &OsStr) -> usize {
    let mut prefix = b".".to_vec();
    prefix.extend_from_slice(name.as_bytes());
    prefix.extend_from_slice(b".tmp.");
    let Ok(entries) = rustix::fs::Dir::read_from(dir) else { return 0 };
    let stale: Vec<std::ffi::CString> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_owned())
        .filter(|n| {
            let b = n.as_bytes();
            b.len() == prefix.len() + 16
                && b.starts_with(&prefix)
                && b[prefix.len()..].iter().all(u8::is_ascii_hexdigit)
        })
        .collect();
    stale.iter().filter(|n| rustix::fs::unlinkat(dir, n.as_c_str(), AtFlags::empty()).is_ok()).count()
}

/// `.<name>.tmp.<16 hex>`: hidden, beside the target, unique per attempt.
fn temp_name(name: &OsStr) -> PathBuf {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let mut tmp = b".".to_vec();
    tmp.extend_from_slice(name.as_bytes());
    tmp.extend_from_slice(format!(".tmp.{:016x}", h.finish()).as_bytes());
    PathBuf::from(OsStr::from_bytes(&tmp))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::store::test_fs;

    #[test]
    fn replaces_with_mode_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "old").unwrap();
        replace(&p, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn refuses_a_symlinked_file_and_leaves_its_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (target, link) = test_fs::file_behind_link(dir.path(), "link");
        let err = replace(&link, b"evil", 0o600).unwrap_err();
        assert!(matches!(err, WriteError::Symlink { .. }), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), test_fs::KEPT);
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn refuses_a_symlinked_parent() {
        let dir = tempfile::tempdir().unwrap();
        let (real, link) = test_fs::dir_behind_link(dir.path(), "linkdir");
        let err = replace(&link.join("f"), b"x", 0o600).unwrap_err();
        assert!(matches!(err, WriteError::Symlink { .. }), "{err}");
        assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0);
    }
}
