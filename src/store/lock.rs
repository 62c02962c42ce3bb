//! Locks held while a credentials file is rewritten.
//!
//! First an exclusive `flock` on a sidecar file beside the target
//! (`.credentials.json.claude-auth-sync.lock`, never renamed, so every agent locks the same
//! inode); then, for `lock = "claude-code"`, every lock Claude Code 2.1.197 takes for a
//! write, in its order (proper-lockfile: `mkdir` succeeds for exactly one holder):
//! `.oauth_refresh.lock` and `realpath(dir) + ".lock"` (`~/.claude.lock`, the one
//! older CLIs take) only while restoring, as the CLI takes them around a refresh; then
//! `.storage-write.lock`. A lock directory older than the CLI's staleness limit (10 s
//! refresh, 15 s write) is abandoned and taken over, as the CLI does; ours are touched
//! every 2 s while held, from a thread of their own, so that a stalled write (a slow
//! fsync, a suspend) does not look abandoned; and [`Held::verify`] tells the writer,
//! right before its rename, whether another process took one over all the same. Where
//! `~/.claude.lock` cannot be made because the home is read-only (the systemd unit's
//! `ProtectHome=read-only`), it is left out, as the CLI in the same unit leaves it out.
//! Every wait is bounded.
//!
//! It must never follow a symlink and never hold a lock past the write it guards.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::dir;
use super::file_id::FileId;
use super::hook;
use crate::config::Lock;

/// How long to wait for any one lock before giving up.
const WAIT: Duration = Duration::from_secs(20);
pub const REFRESH_LOCK: &str = ".oauth_refresh.lock";
pub const WRITE_LOCK: &str = ".storage-write.lock";
const REFRESH_STALE: Duration = Duration::from_secs(10);
const WRITE_STALE: Duration = Duration::from_secs(15);
/// How often held lock directories are touched: well within the shortest staleness limit.
const KEEP_FRESH: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{} is held by another writer for more than {}s; try again later", .lock.display(), WAIT.as_secs())]
    Busy { lock: PathBuf },
    #[error(
        "another writer took over {} while this write was stalled; its update is kept and nothing was written",
        .lock.display()
    )]
    Lost { lock: PathBuf },
    #[error("cannot lock {}: {source}", .lock.display())]
    Io { lock: PathBuf, source: std::io::Error },
}

/// Locks held until dropped; directory locks are removed in reverse order.
pub struct Held {
    _flock: Option<std::fs::File>,
    /// The directory locks we made, oldest first; shared with the thread keeping them fresh.
    dir_locks: Arc<Mutex<Vec<DirLock>>>,
    /// Stops the keeper when dropped.
    keeper: Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
}

/// Where a lock directory goes.
struct LockPlace {
    /// The directory holding the lock directory.
    parent: OwnedFd,
    name: OsString,
    /// For messages.
    path: PathBuf,
}

/// A lock directory we made, known by its [`FileId`] (inode and change time): one that
/// someone took over (removed and made again) is not ours to touch or remove, even if it
/// got our inode back.
struct DirLock {
    parent: OwnedFd,
    name: OsString,
    path: PathBuf,
    id: FileId,
}

impl Held {
    /// Whether every lock directory we made is still ours: called right before the
    /// rename, so that a write that stalled past the staleness limit and lost its lock
    /// to the CLI never lands over the CLI's newer update.
    pub fn verify(&self) -> Result<(), LockError> {
        for lock in self.locks().iter() {
            if FileId::at(&lock.parent, &lock.name) != Some(lock.id) {
                return Err(LockError::Lost { lock: lock.path.clone() });
            }
        }
        Ok(())
    }

    fn locks(&self) -> MutexGuard<'_, Vec<DirLock>> {
        self.dir_locks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&mut self, lock: DirLock) {
        self.locks().push(lock);
        if self.keeper.is_none() {
            let (stop, stopped) = mpsc::channel::<()>();
            let locks = self.dir_locks.clone();
            let thread = std::thread::Builder::new().name("lock-keeper".into()).spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(KEEP_FRESH) {
                    keep_fresh(&mut locks.lock().unwrap_or_else(|e| e.into_inner()));
                    hook::step("locks_kept_fresh");
                }
            });
            // Without a thread the locks are still touched while waiting and checked
            // before the rename; only a stall past the limit goes undetected until then.
            if let Ok(thread) = thread {
                self.keeper = Some((stop, thread));
            }
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.keeper.take() {
            drop(stop);
            let _ = thread.join();
        }
        for lock in self.locks().iter().rev() {
            if FileId::at(&lock.parent, &lock.name) == Some(lock.id) {
                let _ = rustix::fs::unlinkat(&lock.parent, &lock.name, AtFlags::REMOVEDIR);
            }
        }
    }
}

/// Touches our held lock directories, as proper-lockfile holders do, so that a CLI
/// waiting meanwhile never takes them for abandoned. Each is checked and touched through
/// one descriptor: a lock someone took over meanwhile is never touched.
fn keep_fresh(held: &mut [DirLock]) {
    let id = |fd: &OwnedFd| rustix::fs::fstat(fd).ok().map(|st| FileId::of(&st));
    for lock in held {
        let Ok(fd) = dir::open_at(&lock.parent, lock.name.as_os_str()) else { continue };
        if id(&fd) != Some(lock.id) {
            continue;
        }
        // Touching changes the change time: remember the new one.
        let dir = std::fs::File::from(fd);
        if dir.set_modified(SystemTime::now()).is_ok()
            && let Some(now) = id(&dir.into())
        {
            lock.id = now;
        }
    }
}

/// Whether a `lock = "claude-code"` writer takes Claude Code's refresh locks too, as the
/// CLI takes them around a refresh: for a write that puts a login in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshLocks {
    Take,
    Skip,
}

/// Takes the locks `kind` asks for on the file `name` in `dir`.
pub fn acquire(
    dir: &OwnedFd,
    dir_path: &Path,
    name: &OsStr,
    kind: Lock,
    refresh: RefreshLocks,
) -> Result<Held, LockError> {
    let mut held = Held { _flock: None, dir_locks: Arc::default(), keeper: None };
    if kind == Lock::None {
        return Ok(held);
    }
    held._flock = Some(flock_sidecar(dir, dir_path, name)?);
    if kind == Lock::ClaudeCode {
        let beside = |name: &str| -> Result<LockPlace, LockError> {
            let path = dir_path.join(name);
            match dir.as_fd().try_clone_to_owned() {
                Ok(parent) => Ok(LockPlace { parent, name: name.into(), path }),
                Err(source) => Err(LockError::Io { lock: path, source }),
            }
        };
        if refresh == RefreshLocks::Take {
            mkdir_lock(&mut held, beside(REFRESH_LOCK)?, REFRESH_STALE)?;
            if let Some(legacy) = legacy_lock(dir_path)? {
                mkdir_lock(&mut held, legacy, REFRESH_STALE)?;
            }
        }
        mkdir_lock(&mut held, beside(WRITE_LOCK)?, WRITE_STALE)?;
    }
    Ok(held)
}

/// The CLI's `realpath(dir) + ".lock"` beside the config dir (`~/.claude.lock`), its
/// parent opened without following a symlink. `None` when the config dir is `/`.
fn legacy_lock(dir_path: &Path) -> Result<Option<LockPlace>, LockError> {
    let io = |source: std::io::Error| LockError::Io { lock: dir_path.with_extension("lock"), source };
    let real = std::fs::canonicalize(dir_path).map_err(io)?;
    let (Some(parent), Some(base)) = (real.parent(), real.file_name()) else { return Ok(None) };
    let mut name = base.to_os_string();
    name.push(".lock");
    let path = parent.join(&name);
    let parent = dir::open(parent).map_err(|e| LockError::Io { lock: path.clone(), source: e.into() })?;
    Ok(Some(LockPlace { parent, name, path }))
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

/// proper-lockfile's protocol: `mkdir` wins; an existing lock older than `stale` is
/// abandoned. On success the lock joins `held` (and is kept fresh from then on). On a
/// read-only filesystem (EROFS) the lock is left out: no one else can take it there either.
fn mkdir_lock(held: &mut Held, LockPlace { parent, name, path }: LockPlace, stale: Duration) -> Result<(), LockError> {
    let io = |e: Errno| LockError::Io { lock: path.clone(), source: e.into() };
    let read_only = || {
        tracing::debug!("{} is on a read-only filesystem; going on without that lock", path.display());
        Ok(())
    };
    let deadline = Instant::now() + WAIT;
    let mut waited = false;
    loop {
        match rustix::fs::mkdirat(&parent, name.as_os_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) => {
                let id = FileId::at(&parent, &name).ok_or_else(|| io(Errno::NOENT))?;
                held.push(DirLock { parent, name, path, id });
                return Ok(());
            }
            Err(Errno::EXIST) => {}
            Err(Errno::ROFS) => return read_only(),
            Err(e) => return Err(io(e)),
        }
        if !waited {
            hook::step(&format!("lock_wait {}", name.to_string_lossy()));
            waited = true;
        }
        match rustix::fs::statat(&parent, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if age(st.st_mtime) > stale => {
                let flags = if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    AtFlags::REMOVEDIR
                } else {
                    AtFlags::empty()
                };
                tracing::warn!("taking over the abandoned lock {} (older than {}s)", path.display(), stale.as_secs());
                match rustix::fs::unlinkat(&parent, name.as_os_str(), flags) {
                    Ok(()) | Err(Errno::NOENT) => continue,
                    Err(Errno::ROFS) => return read_only(),
                    Err(e) => return Err(io(e)),
                }
            }
            Ok(_) | Err(Errno::NOENT) => {}
            Err(e) => return Err(io(e)),
        }
        if Instant::now() >= deadline {
            return Err(LockError::Busy { lock: path });
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

    fn open(path: &Path) -> OwnedFd {
        dir::open(path).unwrap()
    }

    #[test]
    fn claude_code_locks_are_directories_removed_on_drop() {
        let d = tempfile::tempdir().unwrap();
        let config_dir = d.path().join("claude");
        std::fs::create_dir(&config_dir).unwrap();
        let fd = open(&config_dir);
        let legacy = d.path().join("claude.lock");
        {
            let _held =
                acquire(&fd, &config_dir, OsStr::new(".credentials.json"), Lock::ClaudeCode, RefreshLocks::Take)
                    .unwrap();
            assert!(config_dir.join(REFRESH_LOCK).is_dir());
            assert!(legacy.is_dir(), "realpath(dir) + .lock, as the CLI takes it");
            assert!(config_dir.join(WRITE_LOCK).is_dir());
            assert!(config_dir.join(".credentials.json.claude-auth-sync.lock").is_file());
        }
        assert!(!config_dir.join(REFRESH_LOCK).exists());
        assert!(!legacy.exists());
        assert!(!config_dir.join(WRITE_LOCK).exists());
        // Without a restore, only the write lock is taken.
        let held =
            acquire(&fd, &config_dir, OsStr::new(".credentials.json"), Lock::ClaudeCode, RefreshLocks::Skip).unwrap();
        assert!(!legacy.exists() && !config_dir.join(REFRESH_LOCK).exists());
        drop(held);
    }

    #[test]
    fn an_abandoned_lock_is_taken_over() {
        let d = tempfile::tempdir().unwrap();
        let stale = d.path().join(WRITE_LOCK);
        std::fs::create_dir(&stale).unwrap();
        let old = SystemTime::now() - Duration::from_secs(60);
        std::fs::File::open(&stale).unwrap().set_modified(old).unwrap();
        let fd = open(d.path());
        let held = acquire(&fd, d.path(), OsStr::new("f"), Lock::ClaudeCode, RefreshLocks::Skip).unwrap();
        assert!(stale.is_dir(), "now held by us");
        drop(held);
        assert!(!stale.exists());
    }

    #[test]
    fn a_lock_someone_else_took_over_is_not_removed_on_drop() {
        let d = tempfile::tempdir().unwrap();
        let fd = open(d.path());
        let held = acquire(&fd, d.path(), OsStr::new("f"), Lock::ClaudeCode, RefreshLocks::Skip).unwrap();
        // Another process judged it abandoned, removed it, and made its own.
        std::fs::remove_dir(d.path().join(WRITE_LOCK)).unwrap();
        std::fs::create_dir(d.path().join(WRITE_LOCK)).unwrap();
        assert!(matches!(held.verify(), Err(LockError::Lost { .. })), "a writer learns it lost the lock");
        drop(held);
        assert!(d.path().join(WRITE_LOCK).is_dir(), "their live lock survives our release");
    }

    #[test]
    fn flock_serialises_two_holders() {
        let d = tempfile::tempdir().unwrap();
        let fd = open(d.path());
        let first = acquire(&fd, d.path(), OsStr::new("f"), Lock::Flock, RefreshLocks::Skip).unwrap();
        // Another open file description of the sidecar, as a second agent would have.
        let other = std::fs::File::open(d.path().join(".f.claude-auth-sync.lock")).unwrap();
        assert!(
            matches!(other.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
            "a second holder must not get the lock while the first holds it"
        );
        drop(first);
        other.try_lock().expect("free once the first holder let go");
    }
}
