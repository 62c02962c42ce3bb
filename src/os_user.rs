//! The OS user this agent runs for, read from the passwd database (NSS, so LDAP and
//! SSSD users work), never from `$USER` or `$HOME`, which a caller can set freely.
//!
//! It must never fall back to the environment: a wrong user name would point the
//! agent at another person's Vault path.

use std::ffi::CStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl OsUser {
    /// The user of the effective uid.
    pub fn current() -> io::Result<OsUser> {
        let uid = rustix::process::geteuid().as_raw();
        lookup_uid(uid)?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("uid {uid} has no entry in the passwd database"))
        })
    }

    /// The passwd entry named `name`, `None` when there is none.
    pub fn by_name(name: &str) -> io::Result<Option<OsUser>> {
        let c = std::ffi::CString::new(name)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a user name cannot contain NUL"))?;
        lookup(&|pwd, buf, len, result| unsafe { libc::getpwnam_r(c.as_ptr(), pwd, buf, len, result) })
    }
}

fn lookup_uid(uid: u32) -> io::Result<Option<OsUser>> {
    lookup(&|pwd, buf, len, result| unsafe { libc::getpwuid_r(uid, pwd, buf, len, result) })
}

type GetPw<'a> = dyn Fn(*mut libc::passwd, *mut libc::c_char, usize, *mut *mut libc::passwd) -> libc::c_int + 'a;

/// Runs a getpw*_r call with a growing buffer and copies the entry out.
fn lookup(call: &GetPw<'_>) -> io::Result<Option<OsUser>> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `pwd` and `buf` outlive the call; getpw*_r writes only into them and
        // sets `result` to null or to `&pwd`.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = call(&mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result);
        let uid = pwd.pw_uid;
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        if result.is_null() {
            return Ok(None);
        }
        // SAFETY: on success the string fields point into `buf`, NUL-terminated.
        let (name, home) = unsafe { (CStr::from_ptr(pwd.pw_name), CStr::from_ptr(pwd.pw_dir)) };
        let name = name.to_str().map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidData, format!("the user name of uid {uid} is not UTF-8"))
        })?;
        return Ok(Some(OsUser {
            name: name.to_owned(),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
            home: PathBuf::from(std::ffi::OsStr::from_bytes(home.to_bytes())),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_user_matches_the_effective_uid() {
        let me = OsUser::current().expect("the test runs as a user in passwd");
        assert_eq!(me.uid, rustix::process::geteuid().as_raw());
        assert!(!me.name.is_empty());
        assert!(me.home.is_absolute());
        assert_eq!(OsUser::by_name(&me.name).unwrap(), Some(me));
        assert_eq!(OsUser::by_name("no-such-user-here-x").unwrap(), None);
    }
}
