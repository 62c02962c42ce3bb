//! Locks held while a credentials file is rewritten.
//!
//! First an exclusive `flock` on a sidecar file beside the target
//! (`.credentials.json.claude-auth-sync.lock`, never renamed, so every agent locks the same
//! inode); then, for `lock = "claude-code"`, Claude Code's own directory locks
//! (proper-lockfile: `mkdir` succeeds for exactly one holder), in the CLI's order:
//! `.oauth_refresh.lock` (only while restoring), then `.storage-write.lock`. A lock
//! directory older than the CLI's staleness limit (10 s refresh, 15 s write) is
//! abandoned and taken over, as the CLI does. Every wait is bounded.
//!
//! It must never follow a symlink and never hold a lock past the write it guards.

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::config::Lock;

/// How long to wait for any one lock before giving up.
const WAIT: Duration = Duration::from_secs(20);
pub const REFRESH_LOCK: &str = ".oauth_refresh.lock";
pub const WRITE_LOCK: &str = ".storage-write.lock";
const REFRESH_STALE: Duration = Duration::from_secs(10);
const WRITE_STALE: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{} is held by another writer for more than {}s; try again later", .lock.display(), WAIT.as_secs())]
    Busy { lock: PathBuf },
    #[error("cannot lock {}: {source}", .lock.display())]
    Io { lock: PathBuf, source: std::io::Error },
}

/// Locks held until dropped; directory locks are removed in reverse order.
pub struct Held<'d> {
    dir: &'d OwnedFd,
    _flock: Option<std::fs::File>,
    /// The directory locks we made, oldest first.
    dir_locks: Vec<DirLock>,
}

/// A lock directory we made, known by inode and change time: one that someone took over
/// (removed and made again) is not ours to touch or remove, even if it got our inode back.
struct DirLock {
    name: &'static str,
    id: (u64, i64, i64),
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        for lock in self.dir_locks.iter().rev() {
            if identity(self.dir, lock.name) == Some(lock.id) {
                let _ = rustix::fs::unlinkat(self.dir, lock.name, AtFlags::REMOVEDIR);
            }
        }
    }
}

fn identity(dir: &OwnedFd, name: &str) -> Option<(u64, i64, i64)> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
    Some((st.st_ino, st.st_ctime, st.st_ctime_nsec as i64))
}

/// Touches our held lock directories, as proper-lockfile holders do, so that a CLI
/// waiting meanwhile never takes them for abandoned.
fn keep_alive(dir: &OwnedFd, held: &mut [DirLock]) {
    for lock in held {
        if identity(dir, lock.name) != Some(lock.id) {
            continue;
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        if let Ok(fd) = rustix::fs::openat(dir, lock.name, flags, Mode::empty()) {
            let _ = std::fs::File::from(fd).set_modified(SystemTime::now());
            // Touching changes the change time: remember the new one.
            if let Some(id) = identity(dir, lock.name) {
                lock.id = id;
            }
        }
    }
}

/// Takes the locks `kind` asks for on the file `name` in `dir`; `restoring` adds the refresh lock.
pub fn acquire<'d>(
    dir: &'d OwnedFd,
    dir_path: &Path,
    name: &OsStr,
    kind: Lock,
    restoring: bool,
) -> Result<Held<'d>, LockError> {
    let mut held = Held { dir, _flock: None, dir_locks: Vec::new() };
    if kind == Lock::None {
        return Ok(held);
    }
    held._flock = Some(flock_sidecar(dir, dir_path, name)?);
    if kind == Lock::ClaudeCode {
        if restoring {
            let id = mkdir_lock(dir, dir_path, REFRESH_LOCK, REFRESH_STALE, &mut held.dir_locks)?;
            held.dir_locks.push(DirLock { name: REFRESH_LOCK, id });
        }
        let id = mkdir_lock(dir, dir_path, WRITE_LOCK, WRITE_STALE, &mut held.dir_locks)?;
        held.dir_locks.push(DirLock { name: WRITE_LOCK, id });
    }
    Ok(held)
}

/// `.credentials.json.claude-auth-sync.lock`; hidden like the file it guards, or made hidden.
fn sidecar_name(name: &OsStr) -> OsString {
    let mut s = OsString::new();
    if !name.as_encoded_bytes().starts_with(b".") {
        s.push(".");
    }
    s.push(name);
    s.push(".claude-auth-sync.lock");
    s
}

fn flock_sidecar(dir: &OwnedFd, dir_path: &Path, name: &OsStr) -> Result<std::fs::File, LockError> {
    let sidecar = sidecar_name(name);
    let lock = dir_path.join(&sidecar);
    let io = |source: std::io::Error| LockError::Io { lock: lock.clone(), source };
    let fd = rustix::fs::openat(
        dir,
        sidecar.as_os_str(),
        OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| io(e.into()))?;
    let file = std::fs::File::from(fd);
    let deadline = Instant::now() + WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => pause(),
            Err(std::fs::TryLockError::WouldBlock) => return Err(LockError::Busy { lock }),
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
    }
}

/// proper-lockfile's protocol: `mkdir` wins; an existing lock older than `stale` is abandoned.
/// Returns the new lock directory's identity. While waiting, keeps `held` fresh.
fn mkdir_lock(
    dir: &OwnedFd,
    dir_path: &Path,
    name: &'static str,
    stale: Duration,
    held: &mut [DirLock],
) -> Result<(u64, i64, i64), LockError> {
    let lock = dir_path.join(name);
    let io = |e: Errno| LockError::Io { lock: lock.clone(), source: e.into() };
    let deadline = Instant::now() + WAIT;
    let mut touched = Instant::now();
    loop {
        match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
            Ok(()) => return identity(dir, name).ok_or_else(|| io(Errno::NOENT)),
            Err(Errno::EXIST) => {}
            Err(e) => return Err(io(e)),
        }
        // Half of the shortest staleness limit, as proper-lockfile's holders update.
        if touched.elapsed() >= REFRESH_STALE / 2 {
            keep_alive(dir, held);
            touched = Instant::now();
        }
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if age(st.st_mtime) > stale => {
                let flags = if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    AtFlags::REMOVEDIR
                } else {
                    AtFlags::empty()
                };
                tracing::warn!("taking over the abandoned lock {} (older than {}s)", lock.display(), stale.as_secs());
                match rustix::fs::unlinkat(dir, name, flags) {
                    Ok(()) | Err(Errno::NOENT) => continue,
                    Err(e) => return Err(io(e)),
                }
            }
            Ok(_) | Err(Errno::NOENT) => {}
            Err(e) => return Err(io(e)),
        }
        if Instant::now() >= deadline {
            return Err(LockError::Busy { lock });
        }
        pause();
    }
}

fn age(mtime_secs: i64) -> Duration {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    Duration::from_secs(now.saturating_sub(mtime_secs).max(0) as u64)
}

/// 50-150 ms, so that waiters do not move in step.
fn pause() {
    let jitter = std::process::id().wrapping_mul(2_654_435_761) ^ Instant::now().elapsed().subsec_nanos();
    std::thread::sleep(Duration::from_millis(50 + u64::from(jitter % 100)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> OwnedFd {
        rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap()
    }

    #[test]
    fn claude_code_locks_are_directories_removed_on_drop() {
        let d = tempfile::tempdir().unwrap();
        let fd = open(d.path());
        {
            let _held = acquire(&fd, d.path(), OsStr::new(".credentials.json"), Lock::ClaudeCode, true).unwrap();
            assert!(d.path().join(REFRESH_LOCK).is_dir());
            assert!(d.path().join(WRITE_LOCK).is_dir());
            assert!(d.path().join(".credentials.json.claude-auth-sync.lock").is_file());
        }
        assert!(!d.path().join(REFRESH_LOCK).exists());
        assert!(!d.path().join(WRITE_LOCK).exists());
    }

    #[test]
    fn an_abandoned_lock_is_taken_over() {
        let d = tempfile::tempdir().unwrap();
        let stale = d.path().join(WRITE_LOCK);
        std::fs::create_dir(&stale).unwrap();
        let old = SystemTime::now() - Duration::from_secs(60);
        std::fs::File::open(&stale).unwrap().set_modified(old).unwrap();
        let fd = open(d.path());
        let held = acquire(&fd, d.path(), OsStr::new("f"), Lock::ClaudeCode, false).unwrap();
        assert!(stale.is_dir(), "now held by us");
        drop(held);
        assert!(!stale.exists());
    }

    #[test]
    fn a_lock_someone_else_took_over_is_not_removed_on_drop() {
        let d = tempfile::tempdir().unwrap();
        let fd = open(d.path());
        let held = acquire(&fd, d.path(), OsStr::new("f"), Lock::ClaudeCode, false).unwrap();
        // Another process judged it abandoned, removed it, and made its own.
        std::fs::remove_dir(d.path().join(WRITE_LOCK)).unwrap();
        std::fs::create_dir(d.path().join(WRITE_LOCK)).unwrap();
        drop(held);
        assert!(d.path().join(WRITE_LOCK).is_dir(), "their live lock survives our release");
    }

    #[test]
    fn flock_serialises_two_holders() {
        let d = tempfile::tempdir().unwrap();
        let fd = open(d.path());
        let first = acquire(&fd, d.path(), OsStr::new("f"), Lock::Flock, false).unwrap();
        let path = d.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let fd = open(&path);
            let start = Instant::now();
            let _second = acquire(&fd, &path, OsStr::new("f"), Lock::Flock, false).unwrap();
            start.elapsed()
        });
        std::thread::sleep(Duration::from_millis(300));
        drop(first);
        assert!(waiter.join().unwrap() >= Duration::from_millis(250), "the second holder waited for the first");
    }
}
