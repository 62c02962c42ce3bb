//! The `auto_auth { }` block: one `method` that yields this user's Vault token, the
//! identity the token must carry (`expect`), and `sink "file"` blocks that receive it.
//! Keys and shapes are Vault Agent's; `expect` is this agent's addition. The method
//! and sink kinds, the defaults and the block's printing live here.
//!
//! It must never accept a sink mode that lets every user read the token.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::error::ConfigError;
use super::hcl_writer::{Hcl, label};
use super::keyword::either;
use super::reader::{LabeledBlock, Table};
use super::vault::Retry;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoAuthConfig {
    pub method: Method,
    /// Pauses between retried login/renew attempts.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub expect: Expect,
    pub sinks: Vec<FileSink>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    TokenFile {
        token_file_path: PathBuf,
    },
    AppRole {
        /// The auth mount, without the `auth/` prefix.
        mount: String,
        role_id_file_path: PathBuf,
        secret_id_file_path: PathBuf,
        remove_secret_id_file_after_reading: bool,
        /// Where the login's token is kept (0600) for the next run: one login, renewed,
        /// instead of a new token every run. Default: the secret-id file's path + `.token`.
        token_cache_path: PathBuf,
    },
}

/// The method kinds, as their block labels: `method "approle"`.
const TOKEN_FILE: &str = "token_file";
const APPROLE: &str = "approle";
const METHODS: [&str; 2] = [TOKEN_FILE, APPROLE];
/// The one sink kind: `sink "file"`.
const FILE: &str = "file";

const DEFAULT_APPROLE_MOUNT: &str = "auth/approle";
/// The kept AppRole token's default path: the secret-id file's, plus this.
const TOKEN_CACHE_SUFFIX: &str = ".token";
const DEFAULT_SINK_MODE: u32 = 0o600;

impl Method {
    pub fn kind(&self) -> &'static str {
        match self {
            Method::TokenFile { .. } => TOKEN_FILE,
            Method::AppRole { .. } => APPROLE,
        }
    }

    fn print(&self, w: &mut Hcl) {
        w.open_labeled("method", self.kind());
        match self {
            Method::TokenFile { token_file_path } => {
                w.open("config");
                w.path("token_file_path", token_file_path);
                w.close();
            }
            Method::AppRole {
                mount,
                role_id_file_path,
                secret_id_file_path,
                remove_secret_id_file_after_reading,
                token_cache_path,
            } => {
                w.str("mount_path", &format!("auth/{mount}"));
                w.open("config");
                w.path("role_id_file_path", role_id_file_path);
                w.path("secret_id_file_path", secret_id_file_path);
                w.raw("remove_secret_id_file_after_reading", remove_secret_id_file_after_reading);
                w.path("token_cache_path", token_cache_path);
                w.close();
            }
        }
        w.close();
    }
}

impl AutoAuthConfig {
    pub(super) fn print(&self, w: &mut Hcl) {
        w.open("auto_auth");
        w.dur("min_backoff", self.min_backoff);
        w.dur("max_backoff", self.max_backoff);
        self.method.print(w);
        self.expect.print(w);
        for sink in &self.sinks {
            sink.print(w);
        }
        w.close();
    }
}

/// What the token must carry; anything else is identity drift.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    /// Exactly the token's policies (`default` included only when listed); unchecked when empty.
    pub policies: Vec<String>,
    /// Pairs the token's metadata must hold.
    pub meta: BTreeMap<String, String>,
}

impl Expect {
    fn print(&self, w: &mut Hcl) {
        w.open("expect");
        w.list("policies", &self.policies);
        w.map("meta", &self.meta);
        w.close();
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSink {
    pub path: PathBuf,
    pub mode: u32,
}

impl FileSink {
    fn print(&self, w: &mut Hcl) {
        w.open_labeled("sink", FILE);
        w.open("config");
        w.path("path", &self.path);
        w.mode("mode", self.mode);
        w.close();
        w.close();
    }
}

const VAULT_AGENT_METHODS: &[&str] = &[
    "alicloud",
    "aws",
    "azure",
    "cert",
    "cf",
    "gcp",
    "jwt",
    "kerberos",
    "kubernetes",
    "ldap",
    "oci",
    "pcf",
    "userpass",
];
const VAULT_AGENT_ONLY: &[&str] = &["enable_reauth_on_new_credentials"];
const METHOD_VAULT_AGENT_ONLY: &[&str] = &["namespace", "wrap_ttl", "exit_on_err"];
const SINK_VAULT_AGENT_ONLY: &[&str] = &["wrap_ttl", "dh_type", "dh_path", "derive_key", "aad", "aad_env_var"];

pub(super) fn parse(t: Table<'_>, retry: &Retry) -> Result<AutoAuthConfig, ConfigError> {
    let mut methods = t.blocks("method")?;
    let method_block = match methods.len() {
        1 => methods.remove(0),
        0 => return Err(t.block_err(format!("has no method block; add {}", method_kinds()))),
        n => return Err(t.err("method", format!("appears {n} times; exactly one method is allowed"))),
    };
    let (method, method_backoff) = parse_method(method_block)?;

    let min_backoff =
        pick(&t, "min_backoff", t.duration("min_backoff")?, method_backoff.0)?.unwrap_or(retry.min_backoff);
    let max_backoff = pick(&t, "max_backoff", t.duration("max_backoff")?, method_backoff.1)?
        .unwrap_or(retry.max_backoff.max(min_backoff));
    if min_backoff > max_backoff {
        return Err(t.err("min_backoff", "is larger than max_backoff; make min_backoff the smaller of the two"));
    }

    let expect = match t.table("expect")? {
        None => Expect::default(),
        Some(e) => {
            let expect = Expect {
                policies: e.strings("policies")?.unwrap_or_default(),
                meta: e.string_map("meta")?.unwrap_or_default(),
            };
            e.finish(&[])?;
            expect
        }
    };

    let sinks = t.blocks("sink")?.into_iter().map(parse_sink).collect::<Result<Vec<_>, _>>()?;
    t.finish(VAULT_AGENT_ONLY)?;
    Ok(AutoAuthConfig { method, min_backoff, max_backoff, expect, sinks })
}

/// Vault Agent puts the backoff in the method block; this agent also takes it in auto_auth.
fn pick(
    t: &Table<'_>,
    key: &str,
    here: Option<Duration>,
    in_method: Option<Duration>,
) -> Result<Option<Duration>, ConfigError> {
    match (here, in_method) {
        (Some(_), Some(_)) => Err(t.err(key, "is set both here and in the method block; keep one")),
        (a, b) => Ok(a.or(b)),
    }
}

type MethodBackoff = (Option<Duration>, Option<Duration>);

/// `method "token_file" { ... } or method "approle" { ... }`, for messages.
fn method_kinds() -> String {
    either(METHODS.map(|m| format!("{} {{ ... }}", label("method", m))))
}

fn parse_method(block: LabeledBlock<'_>) -> Result<(Method, MethodBackoff), ConfigError> {
    let (ty, t) = block.into_kind(&method_kinds())?;
    let backoff = (t.duration("min_backoff")?, t.duration("max_backoff")?);
    let method = match ty.as_str() {
        TOKEN_FILE => {
            let c = t
                .table("config")?
                .ok_or_else(|| t.err("config", "is missing; add config = { token_file_path = \"...\" }"))?;
            let token_file_path = c
                .path("token_file_path")?
                .ok_or_else(|| c.block_err("has no token_file_path; name the file that holds your Vault token"))?;
            c.finish(&[])?;
            Method::TokenFile { token_file_path }
        }
        APPROLE => {
            let mount_path = t.string("mount_path")?.unwrap_or_else(|| DEFAULT_APPROLE_MOUNT.into());
            let mount = mount_path.trim_matches('/').trim_start_matches("auth/").to_string();
            if mount.is_empty() || mount.contains(['?', '#', ' ']) {
                return Err(t.err("mount_path", "is not an auth mount path such as auth/approle"));
            }
            let c = t.table("config")?.ok_or_else(|| {
                t.err(
                    "config",
                    "is missing; add config = { role_id_file_path = \"...\", secret_id_file_path = \"...\" }",
                )
            })?;
            let role_id_file_path =
                c.path("role_id_file_path")?.ok_or_else(|| c.block_err("has no role_id_file_path; name the file that holds your AppRole role-id (the provisioner writes ~/.config/claude-auth-sync/role-id)"))?;
            let secret_id_file_path =
                c.path("secret_id_file_path")?.ok_or_else(|| c.block_err("has no secret_id_file_path; name the file that holds your AppRole secret-id (the provisioner writes ~/.config/claude-auth-sync/secret-id)"))?;
            // Vault Agent defaults to true; a oneshot timer needs the secret-id again next run.
            let remove = c.bool("remove_secret_id_file_after_reading")?.unwrap_or(false);
            let token_cache_path = match c.path("token_cache_path")? {
                Some(p) if p == secret_id_file_path || p == role_id_file_path => {
                    return Err(c.err("token_cache_path", "must not be the role-id or the secret-id file; give the kept token a file of its own, such as ~/.config/claude-auth-sync/approle-token"));
                }
                Some(p) => p,
                None => {
                    let mut p = secret_id_file_path.clone().into_os_string();
                    p.push(TOKEN_CACHE_SUFFIX);
                    p.into()
                }
            };
            c.finish(&["secret_id_response_wrapping_path"])?;
            Method::AppRole {
                mount,
                role_id_file_path,
                secret_id_file_path,
                remove_secret_id_file_after_reading: remove,
                token_cache_path,
            }
        }
        other if VAULT_AGENT_METHODS.contains(&other) => {
            let methods = METHODS.join(", ");
            return Err(t.block_err(format!("auth method \"{other}\" is not supported; use one of: {methods}")));
        }
        _ => return Err(t.block_err(format!("unknown auth method; use one of: {}", METHODS.join(", ")))),
    };
    t.finish(METHOD_VAULT_AGENT_ONLY)?;
    Ok((method, backoff))
}

fn parse_sink(block: LabeledBlock<'_>) -> Result<FileSink, ConfigError> {
    let (ty, t) = block.into_kind(&format!("{} {{ ... }}", label("sink", FILE)))?;
    if ty != FILE {
        return Err(t.block_err(format!(
            "only {} is supported; write {} {{ config = {{ path = \"...\" }} }}",
            label("sink", FILE),
            label("sink", FILE)
        )));
    }
    let c = t.table("config")?.ok_or_else(|| t.err("config", "is missing; add config = { path = \"...\" }"))?;
    let path = c.path("path")?.ok_or_else(|| c.block_err("has no path; name the file the token is written to, such as path = \"~/.config/claude-auth-sync/agent-token\""))?;
    let mode = c.mode("mode")?.unwrap_or(DEFAULT_SINK_MODE);
    if mode & 0o007 != 0 {
        return Err(
            c.err("mode", "lets every user on the machine read or write the token; use 0600 (or 0640 for a group)")
        );
    }
    if mode & 0o600 != 0o600 {
        return Err(c.err("mode", "must let the owner read and write (0600 or 0640)"));
    }
    c.finish(&[])?;
    t.finish(SINK_VAULT_AGENT_ONLY)?;
    Ok(FileSink { path, mode })
}
