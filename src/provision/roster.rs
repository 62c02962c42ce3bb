//! The roster (`roster.yaml`): where Vault is, how users authenticate, and who the
//! users are. Every entry is checked before anything is changed: a name must match
//! `^[a-z_][a-z0-9_-]{0,31}$`, appear once, and exist in the passwd database; an
//! email is a plain address; `vault.address` falls back to `VAULT_ADDR`/`BAO_ADDR`
//! and is `https://` unless it is this machine or `allow_cleartext_tokens` says so.
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

impl AuthMode {
    /// The roster's word for the mode (`auth: token`), as serde reads it.
    pub fn keyword(self) -> &'static str {
        match self {
            AuthMode::Token => "token",
            AuthMode::Approle => "approle",
        }
    }
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
    /// `http://` to another machine was accepted on purpose; copied into users' configs.
    pub allow_cleartext_tokens: bool,
    pub kv_mount: String,
    pub path_prefix: String,
    pub auth: AuthMode,
    pub approle_mount: String,
    pub token_period: Duration,
    /// The metadata settings of each user's secret, reset by every admin run.
    pub max_versions: u64,
    pub delete_version_after: Duration,
    pub cas_required: bool,
}

#[derive(Debug, Clone)]
pub struct RosterUser {
    pub name: String,
    pub email: Option<String>,
    pub os: OsUser,
    /// The extra secrets the user's policy grants (roster-wide `secrets:`, then the
    /// user's own), each `<mount>/<prefix>/<user>/<name>`; no name twice.
    pub secrets: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoster {
    vault: RawVault,
    /// Extra secrets granted to every user.
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    users: Vec<RawUser>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVault {
    address: Option<String>,
    ca_cert: Option<PathBuf>,
    #[serde(default)]
    allow_cleartext_tokens: bool,
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
    #[serde(default = "default_delete_version_after")]
    delete_version_after: String,
    #[serde(default)]
    cas_required: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: String,
    email: Option<String>,
    #[serde(default)]
    secrets: Vec<String>,
}

/// Where users' secrets live unless the roster says otherwise (also `policy`'s defaults).
pub const DEFAULT_KV_MOUNT: &str = "secret";
pub const DEFAULT_PATH_PREFIX: &str = "workstation/claude-users";
const DEFAULT_APPROLE_MOUNT: &str = "approle";
/// A periodic token lives this long unrenewed; the agent renews it every run.
const DEFAULT_TOKEN_PERIOD: &str = "32d";
const DEFAULT_MAX_VERSIONS: u64 = 10;
/// Versions are kept until `max_versions` pushes them out.
const DEFAULT_DELETE_VERSION_AFTER: &str = "0s";

fn default_mount() -> String {
    DEFAULT_KV_MOUNT.into()
}
fn default_prefix() -> String {
    DEFAULT_PATH_PREFIX.into()
}
fn default_auth() -> AuthMode {
    AuthMode::Token
}
fn default_approle_mount() -> String {
    DEFAULT_APPROLE_MOUNT.into()
}
fn default_period() -> String {
    DEFAULT_TOKEN_PERIOD.into()
}
fn default_max_versions() -> u64 {
    DEFAULT_MAX_VERSIONS
}
fn default_delete_version_after() -> String {
    DEFAULT_DELETE_VERSION_AFTER.into()
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

/// The name of an extra secret (`secrets: [codex]`): one path segment of letters,
/// digits, `_` and `-`, at most 64 characters.
pub fn valid_secret_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// `wide` then `own`, each name once, after checking every name.
fn secrets(wide: &[String], own: &[String]) -> Result<Vec<String>, String> {
    let mut all: Vec<String> = Vec::with_capacity(wide.len() + own.len());
    for name in wide.iter().chain(own) {
        if !valid_secret_name(name) {
            return Err(
                "secrets: each name is one path segment of letters, digits, `_` and `-` (e.g. codex), at most 64"
                    .into(),
            );
        }
        if !all.contains(name) {
            all.push(name.clone());
        }
    }
    Ok(all)
}

/// A plain email address (it is shown in the user's config and in a shell command):
/// `local@domain` of letters, digits and `._%+-`, at most 254 characters.
pub fn valid_email(email: &str) -> bool {
    let ok = |part: &str| !part.is_empty() && part.bytes().all(|c| c.is_ascii_alphanumeric() || b"._%+-".contains(&c));
    email.len() <= 254 && email.split_once('@').is_some_and(|(local, domain)| ok(local) && ok(domain))
}

/// The KV paths of a roster, for printing policies; users and the address are not checked.
pub struct Paths {
    pub kv_mount: String,
    pub path_prefix: String,
    /// Roster-wide `secrets:`.
    secrets: Vec<String>,
    /// Each user's own `secrets:`, by name.
    user_secrets: Vec<(String, Vec<String>)>,
}

impl Paths {
    /// The extra secrets `user`'s policy grants (as [`RosterUser::secrets`]).
    pub fn secrets_of(&self, user: &str) -> Vec<String> {
        let own = self.user_secrets.iter().find(|(n, _)| n == user).map(|(_, s)| s.as_slice()).unwrap_or_default();
        secrets(&self.secrets, own).unwrap_or_default()
    }
}

pub fn load_paths(file: &Path) -> Result<Paths, RosterError> {
    let err = |problem: String| RosterError { file: file.to_path_buf(), problem };
    let text = std::fs::read_to_string(file).map_err(|e| err(format!("cannot be read: {e}")))?;
    let raw: RawRoster = serde_norway::from_str(&text).map_err(|e| err(format!("is not a valid roster: {e}")))?;
    for (key, value) in [("kv_mount", &raw.vault.kv_mount), ("path_prefix", &raw.vault.path_prefix)] {
        if !valid_path(value) {
            return Err(err(format!("vault.{key} must be slash-separated names without `.`, `..` or empty parts")));
        }
    }
    secrets(&raw.secrets, &[]).map_err(err)?;
    let mut user_secrets = Vec::with_capacity(raw.users.len());
    for (i, u) in raw.users.into_iter().enumerate() {
        secrets(&[], &u.secrets).map_err(|p| err(format!("users[{i}]: {p}")))?;
        user_secrets.push((u.name, u.secrets));
    }
    Ok(Paths { kv_mount: raw.vault.kv_mount, path_prefix: raw.vault.path_prefix, secrets: raw.secrets, user_secrets })
}

/// Reads an environment variable (injected so that tests need not touch the process's).
pub type Env<'a> = dyn Fn(&str) -> Option<String> + 'a;

pub fn load(file: &Path) -> Result<Roster, RosterError> {
    let err = |problem: String| RosterError { file: file.to_path_buf(), problem };
    let text = std::fs::read_to_string(file).map_err(|e| err(format!("cannot be read: {e}")))?;
    parse(&text, file, &|k| std::env::var(k).ok().filter(|v| !v.is_empty()), &|name| OsUser::by_name(name))
}

/// Parses and checks the roster; `env` gives the address fallbacks, `lookup` finds a
/// user in the passwd database.
pub fn parse(
    text: &str,
    file: &Path,
    env: &Env<'_>,
    lookup: &dyn Fn(&str) -> std::io::Result<Option<OsUser>>,
) -> Result<Roster, RosterError> {
    let err = |problem: String| RosterError { file: file.to_path_buf(), problem };
    let raw: RawRoster = serde_norway::from_str(text).map_err(|e| err(format!("is not a valid roster: {e}")))?;
    let v = raw.vault;
    let (address, from) = match v.address {
        Some(a) => (a, "vault.address"),
        None => match env("VAULT_ADDR").map(|a| (a, "VAULT_ADDR")).or_else(|| env("BAO_ADDR").map(|a| (a, "BAO_ADDR")))
        {
            Some(found) => found,
            None => {
                return Err(err(
                    "vault.address is missing and neither VAULT_ADDR nor BAO_ADDR is set; add `address: https://vault.example.com:8200` under `vault:` or export VAULT_ADDR".into(),
                ));
            }
        },
    };
    let address = crate::config::parse_vault_address(&address).map_err(|p| err(format!("{from} {p}")))?;
    crate::config::check_cleartext(&address, v.allow_cleartext_tokens, "vault.allow_cleartext_tokens: true")
        .map_err(|p| err(format!("{from} {p}")))?;
    let ca_cert = match v.ca_cert {
        Some(p) => Some((p, "vault.ca_cert")),
        None => {
            env("VAULT_CACERT").or_else(|| env("BAO_CACERT")).map(|p| (PathBuf::from(p), "VAULT_CACERT/BAO_CACERT"))
        }
    };
    if let Some((p, from)) = &ca_cert
        && (!p.is_absolute() || p.to_string_lossy().chars().any(char::is_control))
    {
        return Err(err(format!("{from} must be an absolute path")));
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
    let delete_version_after = humantime::parse_duration(&v.delete_version_after).map_err(|_| {
        err("vault.delete_version_after is not a duration such as \"0s\" (keep versions until max_versions)".into())
    })?;

    secrets(&raw.secrets, &[]).map_err(err)?;
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
        if u.email.as_deref().is_some_and(|e| !valid_email(e)) {
            return Err(entry("has an email that is not a plain address such as alice@example.com"));
        }
        let secrets = secrets(&raw.secrets, &u.secrets).map_err(|p| entry(&p))?;
        users.push(RosterUser { name: u.name, email: u.email, os, secrets });
    }
    Ok(Roster {
        vault: VaultSection {
            address,
            ca_cert: ca_cert.map(|(p, _)| p),
            allow_cleartext_tokens: v.allow_cleartext_tokens,
            kv_mount: v.kv_mount,
            path_prefix: v.path_prefix,
            auth: v.auth,
            approle_mount: v.approle_mount,
            token_period,
            max_versions: v.max_versions,
            delete_version_after,
            cas_required: v.cas_required,
        },
        users,
    })
}

#[cfg(test)]
mod tests;
