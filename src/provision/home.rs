//! Root writing into a directory the user controls, without being tricked: every
//! component from `/` to `~user/.config/claude-auth-sync` is opened with `openat` and
//! `O_NOFOLLOW`, and nothing after that first walk uses a path. Files are created
//! under a temp name with `O_EXCL` and renamed into place, owner and mode set on the
//! descriptor.
//!
//! A symlink on the way, a hard-linked or non-regular target, or a directory owned
//! by another user aborts with a message that names the path; nothing is written
//! outside that home. A file is judged through the descriptor that is then changed
//! (fstat, fchown, fchmod), never by a name that could be swapped in between.

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::os_user::OsUser;
use crate::store::atomic::{self, Owner};
use crate::store::{self, dir::DirError};

/// The agent's directory inside a home.
pub const AGENT_DIR: [&str; 2] = [".config", "claude-auth-sync"];

#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("{} is a symbolic link; refusing to follow it", .0.display())]
    Symlink(PathBuf),
    #[error("{} is owned by uid {owner}, neither root nor the user", .path.display())]
    OwnedByOther { path: PathBuf, owner: u32 },
    #[error("{} is a hard link ({links} names); refusing to write through it", .path.display())]
    HardLink { path: PathBuf, links: u64 },
    #[error("{} is not a regular file", .0.display())]
    NotRegular(PathBuf),
    #[error("{} does not exist", .0.display())]
    Missing(PathBuf),
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// `~user/.config/claude-auth-sync`, opened safely.
pub struct AgentDir {
    fd: OwnedFd,
    path: PathBuf,
    uid: u32,
    gid: u32,
}

/// What [`AgentDir::open`] does when the agent directory does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMissing {
    /// Make the missing parts (mode 0700, owned by the user).
    Create,
    /// Leave the home as it is and say the directory is not there.
    Leave,
}

/// A file's state, when it exists as a plain file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileInfo {
    pub mode: u32,
    pub uid: u32,
}

fn io(path: &Path) -> impl Fn(Errno) -> HomeError + '_ {
    move |e| HomeError::Io { path: path.to_path_buf(), source: e.into() }
}

/// Opens `name` in `dir` as a directory without following a symlink.
fn open_dir_at(dir: &OwnedFd, name: &OsStr, path: &Path) -> Result<Option<OwnedFd>, HomeError> {
    match store::dir::open_at(dir, name) {
        Ok(fd) => Ok(Some(fd)),
        Err(DirError::Missing) => Ok(None),
        Err(DirError::Symlink) => Err(HomeError::Symlink(path.to_path_buf())),
        Err(DirError::Other(Errno::LOOP | Errno::NOTDIR)) => Err(HomeError::NotRegular(path.to_path_buf())),
        Err(DirError::Other(e)) => Err(io(path)(e)),
    }
}

impl AgentDir {
    /// Walks to the user's agent directory, creating it or not as `missing` says.
    /// `None` when it is missing and not created.
    pub fn open(user: &OsUser, missing: IfMissing) -> Result<Option<AgentDir>, HomeError> {
        let create = missing == IfMissing::Create;
        let root = Path::new("/");
        let mut fd = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(io(root))?;
        let mut path = PathBuf::from("/");
        let home_parts: Vec<&OsStr> = user
            .home
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s),
                _ => None,
            })
            .collect();
        // Above the home and the home itself: root's or the user's, never someone else's.
        for part in &home_parts {
            path.push(part);
            fd = open_dir_at(&fd, part, &path)?.ok_or_else(|| HomeError::Missing(path.clone()))?;
            check_owner(&fd, &path, &[0, user.uid])?;
        }
        for part in AGENT_DIR {
            path.push(part);
            fd = match open_dir_at(&fd, OsStr::new(part), &path)? {
                Some(next) => next,
                None if create => {
                    rustix::fs::mkdirat(&fd, part, Mode::from_raw_mode(0o700)).map_err(io(&path))?;
                    let next =
                        open_dir_at(&fd, OsStr::new(part), &path)?.ok_or_else(|| HomeError::Missing(path.clone()))?;
                    chown(&next, &path, user.uid, user.gid)?;
                    next
                }
                None => return Ok(None),
            };
            check_owner(&fd, &path, &[0, user.uid])?;
        }
        // The agent's own directory belongs to the user and is private.
        chown(&fd, &path, user.uid, user.gid)?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700)).map_err(io(&path))?;
        Ok(Some(AgentDir { fd, path, uid: user.uid, gid: user.gid }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's mode and owner; an error for a symlink, a hard link or a non-file.
    pub fn inspect(&self, name: &str) -> Result<Option<FileInfo>, HomeError> {
        let path = self.path.join(name);
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(io(&path)(e)),
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                FileType::Symlink => Err(HomeError::Symlink(path)),
                FileType::RegularFile if st.st_nlink > 1 => Err(HomeError::HardLink { path, links: st.st_nlink }),
                FileType::RegularFile => Ok(Some(FileInfo { mode: st.st_mode & 0o7777, uid: st.st_uid })),
                _ => Err(HomeError::NotRegular(path)),
            },
        }
    }

    /// The content of a plain file (see [`AgentDir::inspect`] for what is refused).
    pub fn read(&self, name: &str) -> Result<Option<String>, HomeError> {
        if self.inspect(name)?.is_none() {
            return Ok(None);
        }
        let path = self.path.join(name);
        let fd = self.open_file(name, &path)?;
        let st = rustix::fs::fstat(&fd).map_err(io(&path))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile || st.st_nlink > 1 {
            return Err(HomeError::NotRegular(path));
        }
        let mut text = String::new();
        std::fs::File::from(fd)
            .take(64 * 1024)
            .read_to_string(&mut text)
            .map_err(|source| HomeError::Io { path: path.clone(), source })?;
        Ok(Some(text))
    }

    /// Replaces `name` with `contents`, owned by the user, mode `mode`.
    pub fn write(&self, name: &str, contents: &[u8], mode: u32) -> Result<(), HomeError> {
        self.inspect(name)?;
        let path = self.path.join(name);
        let target = atomic::Target { dir: &self.fd, name: OsStr::new(name), path: &path };
        atomic::replace_in(target, atomic::NewFile { contents, mode, owner: Owner::Set(self.uid, self.gid) }).map_err(
            |e| match e {
                atomic::WriteError::Symlink { .. } => HomeError::Symlink(path.clone()),
                atomic::WriteError::NotRegular { .. } => HomeError::NotRegular(path.clone()),
                atomic::WriteError::Io { source, .. } => HomeError::Io { path: path.clone(), source },
            },
        )
    }

    /// Gives `name` the user as owner and `mode`; returns what it changed. The file is
    /// opened once and judged by that descriptor (type, links, owner) before anything
    /// is changed through it: a hard link swapped in after any earlier check is refused.
    pub fn fix(&self, name: &str, mode: u32) -> Result<Vec<String>, HomeError> {
        let path = self.path.join(name);
        pause(&format!("fix {name}"));
        let fd = match self.open_file(name, &path) {
            Ok(fd) => fd,
            Err(HomeError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let st = rustix::fs::fstat(&fd).map_err(io(&path))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(HomeError::NotRegular(path));
        }
        if st.st_nlink > 1 {
            return Err(HomeError::HardLink { path, links: st.st_nlink });
        }
        if st.st_uid != 0 && st.st_uid != self.uid {
            return Err(HomeError::OwnedByOther { path, owner: st.st_uid });
        }
        let mut fixed = Vec::new();
        if st.st_uid != self.uid {
            chown(&fd, &path, self.uid, self.gid)?;
            fixed.push(format!("{name}: owner set to the user (was uid {})", st.st_uid));
        }
        let had = st.st_mode & 0o7777;
        if had != mode {
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(io(&path))?;
            fixed.push(format!("{name}: mode set to {mode:04o} (was {had:04o})"));
        }
        Ok(fixed)
    }

    /// Opens `name` for reading without following a symlink (or blocking on a FIFO).
    fn open_file(&self, name: &str, path: &Path) -> Result<OwnedFd, HomeError> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        rustix::fs::openat(&self.fd, name, flags, Mode::empty()).map_err(|e| match e {
            Errno::LOOP => HomeError::Symlink(path.to_path_buf()),
            e => io(path)(e),
        })
    }

    pub fn remove(&self, name: &str) -> Result<bool, HomeError> {
        let path = self.path.join(name);
        match self.inspect(name) {
            Ok(None) => return Ok(false),
            Ok(Some(_)) | Err(HomeError::HardLink { .. }) | Err(HomeError::Symlink(_)) => {}
            Err(e) => return Err(e),
        }
        // unlinkat removes the name itself, never what a link points to.
        rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()).map_err(io(&path))?;
        Ok(true)
    }
}

/// In test builds, where `$CLAUDE_AUTH_SYNC_TEST_PAUSE_AT` names `step`: announces it
/// on the FIFO `$CLAUDE_AUTH_SYNC_TEST_PAUSE_FIFO` (the open blocks until the test
/// reads) and waits there until the test writes, so that a test can act at exactly
/// this point. Never in a release build.
#[cfg(feature = "test-hooks")]
fn pause(step: &str) {
    let (Ok(at), Ok(fifo)) =
        (std::env::var("CLAUDE_AUTH_SYNC_TEST_PAUSE_AT"), std::env::var("CLAUDE_AUTH_SYNC_TEST_PAUSE_FIFO"))
    else {
        return;
    };
    if at == step {
        let _ = std::fs::write(&fifo, step);
        let _ = std::fs::read(&fifo);
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
fn pause(_step: &str) {}

fn check_owner(fd: &OwnedFd, path: &Path, allowed: &[u32]) -> Result<(), HomeError> {
    let st = rustix::fs::fstat(fd).map_err(io(path))?;
    if allowed.contains(&st.st_uid) {
        Ok(())
    } else {
        Err(HomeError::OwnedByOther { path: path.to_path_buf(), owner: st.st_uid })
    }
}

fn chown(fd: &OwnedFd, path: &Path, uid: u32, gid: u32) -> Result<(), HomeError> {
    let (u, g) = (rustix::fs::Uid::from_raw(uid), rustix::fs::Gid::from_raw(gid));
    rustix::fs::fchown(fd, Some(u), Some(g)).map_err(io(path))
}
