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
}

fn lookup_uid(uid: u32) -> io::Result<Option<OsUser>> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `pwd` and `buf` outlive the call; getpwuid_r writes only into them and
        // sets `result` to null or to `&pwd`.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result) };
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
    }
}
