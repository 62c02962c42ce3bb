//! The roster (`roster.yaml`): where Vault is, how users authenticate, and who the
//! users are. Every entry is checked before anything is changed: a name must match
//! `^[a-z_][a-z0-9_-]{0,31}$`, appear once, and exist in the passwd database.
//!
//! An error names the entry (by position and, when printable, by name).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::os_user::OsUser;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// An orphan periodic token per user, in `vault-token`.
    Token,
    /// An AppRole role per user, `role-id` + `secret-id`.
    Approle,
}

#[derive(Debug, Clone)]
pub struct Roster {
    pub vault: VaultSection,
    pub users: Vec<RosterUser>,
}

#[derive(Debug, Clone)]
pub struct VaultSection {
    pub address: url::Url,
    pub ca_cert: Option<PathBuf>,
    pub kv_mount: String,
    pub path_prefix: String,
    pub auth: AuthMode,
    pub approle_mount: String,
    pub token_period: Duration,
    pub max_versions: u64,
}

#[derive(Debug, Clone)]
pub struct RosterUser {
    pub name: String,
    pub email: Option<String>,
    pub os: OsUser,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoster {
    vault: RawVault,
    #[serde(default)]
    users: Vec<RawUser>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVault {
    address: String,
    ca_cert: Option<PathBuf>,
    #[serde(default = "default_mount")]
    kv_mount: String,
    #[serde(default = "default_prefix")]
    path_prefix: String,
    #[serde(default = "default_auth")]
    auth: AuthMode,
    #[serde(default = "default_approle_mount")]
    approle_mount: String,
    #[serde(default = "default_period")]
    token_period: String,
    #[serde(default = "default_max_versions")]
    max_versions: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: String,
    email: Option<String>,
}

fn default_mount() -> String {
    "secret".into()
}
fn default_prefix() -> String {
    "workstation/claude-users".into()
}
fn default_auth() -> AuthMode {
    AuthMode::Token
}
fn default_approle_mount() -> String {
    "approle".into()
}
fn default_period() -> String {
    "32d".into()
}
fn default_max_versions() -> u64 {
    10
}

#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", .file.display())]
pub struct RosterError {
    pub file: PathBuf,
    pub problem: String,
}

/// The user-name rule: lowercase, a letter or `_` first, at most 32 characters.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b[1..].iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

/// A KV mount or path prefix: slash-separated segments of safe characters, no `.` or `..`.
fn valid_path(p: &str) -> bool {
    !p.is_empty()
        && p.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg.bytes().all(|c| c.is_ascii_alphanumeric() || b"_-.".contains(&c))
        })
}

/// Only the Vault section, for printing policies; users are not checked.
pub fn load_unchecked(file: &Path) -> Result<VaultSection, RosterError> {
    let err = |problem: String| RosterError { file: file.to_path_buf(), problem };
    let text = std::fs::read_to_string(file).map_err(|e| err(format!("cannot be read: {e}")))?;
    let stripped: serde_norway::Value = serde_norway::from_str(&text).map_err(|e| err(format!("is not YAML: {e}")))?;
    let vault_only = serde_norway::to_string(&serde_norway::Mapping::from_iter([(
        serde_norway::Value::from("vault"),
        stripped.get("vault").cloned().unwrap_or_default(),
    )]))
    .map_err(|e| err(e.to_string()))?;
    parse(&vault_only, file, &|_| Ok(None)).map(|r| r.vault)
}

pub fn load(file: &Path) -> Result<Roster, RosterError> {
    let err = |problem: String| RosterError { file: file.to_path_buf(), problem };
    let text = std::fs::read_to_string(file).map_err(|e| err(format!("cannot be read: {e}")))?;
    parse(&text, file, &|name| OsUser::by_name(name))
}

/// Parses and checks the roster; `lookup` finds a user in the passwd database.
pub fn parse(
    text: &str,
    file: &Path,
    lookup: &dyn Fn(&str) -> std::io::Result<Option<OsUser>>,
) -> Result<Roster, RosterError> {
    let err = |problem: String| RosterError { file: file.to_path_buf(), problem };
    let raw: RawRoster = serde_norway::from_str(text).map_err(|e| err(format!("is not a valid roster: {e}")))?;
    let v = raw.vault;
    let address = crate::config::parse_vault_address(&v.address).map_err(|p| err(format!("vault.address {p}")))?;
    if v.ca_cert.as_ref().is_some_and(|p| !p.is_absolute()) {
        return Err(err("vault.ca_cert must be an absolute path".into()));
    }
    for (key, value) in
        [("kv_mount", &v.kv_mount), ("path_prefix", &v.path_prefix), ("approle_mount", &v.approle_mount)]
    {
        if !valid_path(value) {
            return Err(err(format!("vault.{key} must be slash-separated names without `.`, `..` or empty parts")));
        }
    }
    let token_period = humantime::parse_duration(&v.token_period)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| err("vault.token_period is not a duration such as \"32d\"".into()))?;
    if v.max_versions == 0 {
        return Err(err("vault.max_versions must be at least 1".into()));
    }

    let mut users: Vec<RosterUser> = Vec::with_capacity(raw.users.len());
    for (i, u) in raw.users.into_iter().enumerate() {
        let entry = |problem: &str| {
            let shown = if u.name.chars().all(|c| c.is_ascii_graphic()) && u.name.len() <= 64 {
                format!(" ({:?})", u.name)
            } else {
                String::new()
            };
            err(format!("users[{i}]{shown}: {problem}"))
        };
        if !valid_name(&u.name) {
            return Err(entry("is not a valid user name: it must match ^[a-z_][a-z0-9_-]{0,31}$"));
        }
        if users.iter().any(|seen| seen.name == u.name) {
            return Err(entry("appears more than once"));
        }
        let os = match lookup(&u.name) {
            Ok(Some(os)) => os,
            Ok(None) => return Err(entry("has no account on this machine (not in the passwd database)")),
            Err(e) => return Err(entry(&format!("cannot be looked up: {e}"))),
        };
        if os.uid == 0 {
            return Err(entry("is root; the agent runs as an unprivileged user"));
        }
        users.push(RosterUser { name: u.name, email: u.email, os });
    }
    Ok(Roster {
        vault: VaultSection {
            address,
            ca_cert: v.ca_cert,
            kv_mount: v.kv_mount,
            path_prefix: v.path_prefix,
            auth: v.auth,
            approle_mount: v.approle_mount,
            token_period,
            max_versions: v.max_versions,
        },
        users,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_passwd(name: &str) -> std::io::Result<Option<OsUser>> {
        let uid = match name {
            "alice" => 1001,
            "bob" => 1002,
            "root" => 0,
            _ => return Ok(None),
        };
        Ok(Some(OsUser { name: name.into(), uid, gid: uid, home: format!("/home/{name}").into() }))
    }

    fn roster(users: &str) -> Result<Roster, RosterError> {
        let text = format!("vault:\n  address: https://vault.example.com:8200\nusers:\n{users}");
        parse(&text, Path::new("/etc/roster.yaml"), &fake_passwd)
    }

    #[test]
    fn a_good_roster_with_defaults() {
        let r = roster("  - name: alice\n    email: alice@example.com\n  - name: bob\n").unwrap();
        assert_eq!(r.users.len(), 2);
        assert_eq!(r.users[0].os.uid, 1001);
        assert_eq!((r.vault.kv_mount.as_str(), r.vault.path_prefix.as_str()), ("secret", "workstation/claude-users"));
        assert_eq!(r.vault.auth, AuthMode::Token);
        assert_eq!(r.vault.token_period, Duration::from_secs(32 * 86_400));
    }

    #[test]
    fn hostile_entries_are_named_and_refused() {
        for (users, want) in [
            ("  - name: ../root\n", "users[0] (\"../root\"): is not a valid user name"),
            ("  - name: \"alice;rm -rf /\"\n", "users[0]: is not a valid user name"),
            (&format!("  - name: a{}\n", "b".repeat(32)), "is not a valid user name"),
            ("  - name: alice\n  - name: alice\n", "users[1] (\"alice\"): appears more than once"),
            ("  - name: carol\n", "users[0] (\"carol\"): has no account on this machine"),
            ("  - name: root\n", "is root"),
            ("  - name: Alice\n", "is not a valid user name"),
            ("  - name: alice\n    shell: /bin/sh\n", "unknown field"),
        ] {
            let e = roster(users).unwrap_err().to_string();
            assert!(e.contains(want), "{users:?}: {e}");
        }
    }

    #[test]
    fn the_name_rule() {
        for ok in ["a", "_svc", "alice-2", "a_b", &"a".repeat(32)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "1alice", "-a", "a.b", "a b", "A", &"a".repeat(33), "ä"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
