//! Throwaway OS users for the tests that run as root (the provisioner, the units under
//! a real systemd): created with a home under /home, removed with it on drop. And the
//! agent binary where such a user can execute it: the checkout may sit in a directory
//! other users cannot traverse (root's home is 0700, so is a Debian 12 home).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use super::secrets::random_secret;

/// useradd and userdel lock /etc/passwd: one at a time.
static PASSWD: Mutex<()> = Mutex::new(());

/// A throwaway OS user with a home under /home, removed (with the home) on drop.
pub struct TestUser {
    pub name: String,
    pub home: PathBuf,
    pub uid: u32,
}

impl TestUser {
    pub fn new() -> TestUser {
        assert!(
            rustix::process::geteuid().is_root(),
            "this test creates OS users and must run as root (CI does: scripts/test.sh as root)"
        );
        let name = format!("cas{}", &random_secret("user-name-")[10..20]);
        let _guard = PASSWD.lock().unwrap_or_else(|e| e.into_inner());
        let out =
            Command::new("useradd").args(["--create-home", "--shell", "/usr/sbin/nologin", &name]).output().unwrap();
        assert!(out.status.success(), "useradd {name}: {}", String::from_utf8_lossy(&out.stderr));
        let id = Command::new("id").args(["-u", &name]).output().unwrap();
        let uid = String::from_utf8_lossy(&id.stdout).trim().parse().unwrap();
        TestUser { home: PathBuf::from(format!("/home/{name}")), name, uid }
    }

    /// `~/.config/claude-auth-sync`, where the provisioner writes.
    pub fn agent_dir(&self) -> PathBuf {
        self.home.join(".config/claude-auth-sync")
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.agent_dir().join(name)
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _guard = PASSWD.lock().unwrap_or_else(|e| e.into_inner());
        let _ = Command::new("userdel").args(["--remove", "--force", &self.name]).output();
    }
}

/// The agent binary copied into a world-readable temporary directory (removed on drop),
/// for `runuser -u <test user> -- ...`.
pub struct UserExe {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl UserExe {
    pub fn new() -> UserExe {
        let dir = tempfile::Builder::new().prefix("claude-auth-sync-exe-").tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("claude-auth-sync");
        // Copied by another process: a write descriptor of ours, inherited by a child that
        // another test thread forks meanwhile, would make executing the copy fail with
        // "Text file busy" (ETXTBSY).
        let cp = Command::new("cp").arg(env!("CARGO_BIN_EXE_claude-auth-sync")).arg(&path).status().unwrap();
        assert!(cp.success(), "cp the agent binary to {}", path.display());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        UserExe { _dir: dir, path }
    }
}
