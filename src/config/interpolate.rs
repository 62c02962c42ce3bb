//! `${user}` and a leading `~` in config strings, both taken from the passwd entry of
//! the effective uid. `$${` is a literal `${` and `%%{` a literal `%{`, as in HCL; HCL's
//! `%{ ... }` directives are refused.
//!
//! It must never read the environment: `$USER` and `$HOME` are not trusted here.

use std::path::PathBuf;

use crate::os_user::OsUser;

/// Replaces `${user}` in an HCL template string; any other `${...}` is an error that
/// names the variable.
pub fn vars(raw: &str, user: &OsUser) -> Result<String, String> {
    expand(raw, Some(user))
}

/// Decodes the escapes of an HCL template string without interpolating anything.
pub fn unescape(raw: &str) -> Result<String, String> {
    expand(raw, None)
}

fn expand(raw: &str, user: Option<&OsUser>) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(pos) = rest.find(['$', '%']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("%%{") {
            out.push_str("%{");
            rest = after;
        } else if tail.starts_with("%{") {
            return Err(
                "uses an HCL template directive (%{ ... }), which is not supported; write %%{ for a literal %{".into(),
            );
        } else if let (Some(user), Some(after)) = (user, tail.strip_prefix("${")) {
            let end = after.find('}').ok_or_else(|| "an unterminated ${ (write $${ for a literal ${)".to_string())?;
            match after[..end].trim() {
                "user" => out.push_str(&user.name),
                other => {
                    return Err(format!(
                        "unknown variable ${{{other}}}; the only variable is ${{user}} (write $${{ for a literal ${{)"
                    ));
                }
            }
            rest = &after[end + 1..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands a leading `~` or `~/` to the user's home; `~name` is refused.
pub fn home(path: &str, user: &OsUser) -> Result<PathBuf, String> {
    if path == "~" {
        return Ok(user.home.clone());
    }
    if let Some(rest) = path.strip_prefix("~/") {
        return Ok(user.home.join(rest));
    }
    if path.starts_with('~') {
        return Err("~name is not supported; only ~ (your own home) is".to_string());
    }
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> OsUser {
        OsUser { name: "alice".into(), uid: 1000, gid: 1000, home: "/home/alice".into() }
    }

    #[test]
    fn user_and_escapes() {
        let u = alice();
        assert_eq!(vars("secret/claude-users/${user}", &u).unwrap(), "secret/claude-users/alice");
        assert_eq!(vars("${ user }-${user}", &u).unwrap(), "alice-alice");
        assert_eq!(vars("cost $5 and $${user}", &u).unwrap(), "cost $5 and ${user}");
        assert!(vars("${home}", &u).unwrap_err().contains("${home}"));
        assert!(vars("${user", &u).unwrap_err().contains("unterminated"));
        assert_eq!(vars("50%% and %%{x} and 100%", &u).unwrap(), "50%% and %{x} and 100%");
        assert!(vars("%{ if true }x%{ endif }", &u).unwrap_err().contains("directive"));
        assert_eq!(unescape("$${user} ${user} %%{").unwrap(), "${user} ${user} %{");
    }

    #[test]
    fn tilde() {
        let u = alice();
        assert_eq!(home("~/.claude/x", &u).unwrap(), PathBuf::from("/home/alice/.claude/x"));
        assert_eq!(home("~", &u).unwrap(), PathBuf::from("/home/alice"));
        assert_eq!(home("/etc/x", &u).unwrap(), PathBuf::from("/etc/x"));
        assert!(home("~bob/x", &u).is_err());
    }
}
