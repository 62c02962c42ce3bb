//! Where this agent may write a file (a template's destination, a sink, the pid file):
//! inside the user's home, inside a Claude Code config directory the user chose
//! through the environment (templates only), or in a directory the user owns that no
//! one else can write: `$XDG_RUNTIME_DIR` (`/run/user/<uid>`), a directory made for it.
//! A directory every user or a group can write (`/tmp`) or another user's directory is
//! refused, with the reason: someone else could replace or pre-create the file there.
//!
//! It only looks (a stat): loading a config writes nothing and makes no connection. A
//! message never repeats the path, which could be a value pasted into the wrong key.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::os_user::OsUser;

/// Whether `path` may be written for `user`; `chosen`: Claude Code config directories
/// set in the environment. The error says why not and what to use instead.
pub(super) fn check(path: &Path, user: &OsUser, chosen: &[PathBuf]) -> Result<(), String> {
    if path.components().any(|c| c == Component::ParentDir) {
        return Err("must not contain `..`".into());
    }
    let inside = |dir: &Path| path.starts_with(dir) && path != dir;
    if inside(&user.home) || chosen.iter().any(|d| inside(d)) {
        return Ok(());
    }
    let outside = format!("is outside your home ({})", user.home.display());
    let instead = format!(
        "use a path in your home, in $XDG_RUNTIME_DIR (/run/user/{}), or in a directory that is yours and that only you can write",
        user.uid
    );
    let dir = path.parent().unwrap_or(Path::new("/"));
    let meta = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => return Err(format!("{outside}, and what should be its directory is not a directory; {instead}")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{outside}, and its directory does not exist; create it (yours, mode 0700), or {instead}"
            ));
        }
        Err(e) => return Err(format!("{outside}, and its directory cannot be examined ({e}); {instead}")),
    };
    let mode = meta.mode() & 0o7777;
    let writable_by = if mode & 0o002 != 0 {
        Some("every user")
    } else if mode & 0o020 != 0 {
        Some("its group")
    } else {
        None
    };
    if let Some(who) = writable_by {
        return Err(format!(
            "{outside}, in a directory {who} can write (mode {mode:04o}, like /tmp): another user could replace or pre-create the file there; {instead}"
        ));
    }
    if meta.uid() != user.uid {
        return Err(format!(
            "{outside}, in a directory that belongs to uid {}, not to you (uid {}): the agent runs as you, and that directory's owner could replace the file; {instead}",
            meta.uid(),
            user.uid
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn me(home: &Path) -> OsUser {
        let uid = rustix::process::geteuid().as_raw();
        OsUser { name: "me".into(), uid, gid: 0, home: home.to_path_buf() }
    }

    #[test]
    fn a_directory_of_ones_own_that_only_one_can_write_is_allowed_others_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().join("home");
        let user = me(&home);
        // In the home, or in a chosen Claude Code dir: as always (the home's own business).
        assert_eq!(check(&home.join(".claude/.credentials.json"), &user, &[]), Ok(()));
        assert_eq!(check(&PathBuf::from("/srv/claude/x.json"), &user, &[PathBuf::from("/srv/claude")]), Ok(()));
        // Like $XDG_RUNTIME_DIR: one's own, 0700.
        let runtime = d.path().join("run-user");
        std::fs::create_dir(&runtime).unwrap();
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(check(&runtime.join("token"), &user, &[]), Ok(()));

        let err = check(Path::new("/tmp/x.json"), &user, &[]).unwrap_err();
        assert!(err.contains("every user can write (mode 1777, like /tmp)") && err.contains("/run/user/"), "{err}");
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o770)).unwrap();
        assert!(check(&runtime.join("token"), &user, &[]).unwrap_err().contains("its group can write"));
        let err = check(&d.path().join("missing/token"), &user, &[]).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
        let someone_else = OsUser { uid: user.uid + 1, ..user.clone() };
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        let err = check(&runtime.join("token"), &someone_else, &[]).unwrap_err();
        assert!(err.contains("belongs to uid") && err.contains("not to you"), "{err}");
        assert!(check(&home.join("../etc/x"), &user, &[]).unwrap_err().contains("`..`"));
        assert!(!err.contains("token"), "the path is not repeated: {err}");
    }
}
