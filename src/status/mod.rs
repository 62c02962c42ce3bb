//! `claude-auth-sync status [--json]`: what the agent knows now, without running a
//! cycle: the last run's outcome (from the state file the runs keep), the Vault
//! token's remaining time, each login's expiry and hard end, and whether Vault's
//! latest version holds the local login (compared by refresh-token fingerprint).
//!
//! It must never write anything: no state file, no lock file, no login, no renewal.
//! It asks Vault with the token the agent already holds (the token file, or the token
//! an AppRole run kept) and only reads: lookup-self, the secret's mount, its latest
//! version. Nothing it prints or returns holds a secret. Exit codes: 0 when it could
//! read everything it shows, 75 when Vault could not be reached (the local facts are
//! still shown), 1 when Vault could not be asked for another reason a person must see
//! to (no token held yet, the token refused, access denied).

pub mod humane;
pub mod local;
mod render;

use std::time::{Duration, SystemTime};

use crate::config::{Config, TemplateConfig, TemplateKind};
use crate::exit::ExitCode;
use crate::report::state::{self, State};
use crate::template::oauth;
use crate::vault::{Vault, VaultError, auth};
use local::LocalFile;

/// Everything `status` shows.
#[derive(Debug, Clone)]
pub struct Status {
    pub user: String,
    pub config: std::path::PathBuf,
    /// `vault.address` (it never carries credentials: the config refuses them).
    pub address: String,
    /// What the runs recorded; `Err`: the state file could not be read (why).
    pub state: Result<State, String>,
    pub vault: VaultSide,
    pub templates: Vec<TemplateStatus>,
}

/// What Vault says about the token the agent holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultSide {
    /// lookup-self answered.
    Token { ttl: Duration, renewable: bool, drift: Option<String> },
    /// Vault did not answer (down, sealed, timing out): may pass on its own.
    Unreachable(String),
    /// No token to ask with, or Vault refused it: a person must act (the reason).
    Unusable(&'static str, String),
}

#[derive(Debug, Clone)]
pub struct TemplateStatus {
    pub name: String,
    pub json: bool,
    pub destination: std::path::PathBuf,
    pub secret: String,
    pub local: LocalFile,
    pub vault: Result<Latest, String>,
}

/// The secret's latest version in Vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Latest {
    /// Vault could not be asked at all (see [`Status::vault`]).
    NotAsked,
    /// No version at all.
    None,
    Deleted(u64),
    /// `matches`: Vault's copy has the local login's refresh token (`None`: cannot tell).
    Version {
        version: u64,
        matches: Option<bool>,
    },
}

impl Status {
    /// 0, 75 or 1, as the module's comment says.
    pub fn exit_code(&self) -> ExitCode {
        match &self.vault {
            VaultSide::Unreachable(_) => ExitCode::TempFail,
            VaultSide::Unusable(..) => ExitCode::Fail,
            VaultSide::Token { .. } if self.templates.iter().any(|t| t.vault.is_err()) => ExitCode::Fail,
            VaultSide::Token { .. } => ExitCode::Ok,
        }
    }
}

/// Gathers the status and prints it (a table, or JSON with `json`).
pub fn show(cfg: &Config, json: bool) -> Result<ExitCode, std::io::Error> {
    let status = crate::runtime::block_on(gather(cfg))?;
    let now = SystemTime::now();
    if json {
        println!("{}", serde_json::to_string_pretty(&render::json(&status, now)).expect("the status serializes"));
    } else {
        print!("{}", render::table(&status, now));
    }
    Ok(status.exit_code())
}

/// Reads the state file and each template's file, then asks Vault (once, no retries).
pub async fn gather(cfg: &Config) -> Status {
    let state = state::load(&cfg.log.state_file).map_err(|e| e.to_string());
    let locals: Vec<LocalFile> = cfg.templates.iter().map(local::inspect).collect();
    let (vault, client) = ask_vault(cfg).await;
    let mut templates = Vec::with_capacity(cfg.templates.len());
    for (t, local) in cfg.templates.iter().zip(locals) {
        let latest = match &client {
            Some(v) => latest(v, t, &local).await.map_err(|e| e.to_string()),
            None => Ok(Latest::NotAsked),
        };
        templates.push(TemplateStatus {
            name: t.name.clone(),
            json: matches!(t.kind, TemplateKind::Json(_)),
            destination: t.destination.clone(),
            secret: t.secret.to_string(),
            local,
            vault: latest,
        });
    }
    Status {
        user: cfg.user.name.clone(),
        config: cfg.file.clone(),
        address: cfg.vault.address.to_string(),
        state,
        vault,
        templates,
    }
}

async fn ask_vault(cfg: &Config) -> (VaultSide, Option<Vault>) {
    let token = match auth::held_token(&cfg.auto_auth) {
        Ok(Some(t)) => t,
        Ok(None) => {
            let why = "no AppRole token is kept yet (status never logs in); the next run logs in and keeps one";
            return (VaultSide::Unusable("no_token", why.into()), None);
        }
        Err(e) => return (VaultSide::Unusable("credential_unusable", e.to_string()), None),
    };
    // One attempt per request: status answers now, it does not wait for Vault.
    let mut vault_cfg = cfg.vault.clone();
    vault_cfg.retry.num_retries = 0;
    let mut vault = match Vault::new(&vault_cfg) {
        Ok(v) => v,
        Err(e) => return (VaultSide::Unusable("vault_error", e.to_string()), None),
    };
    vault.set_token(&token);
    match vault.lookup_self(vault.default_backoff()).await {
        Ok(info) => {
            let drift = auth::check_identity(&cfg.auto_auth.expect, &info).err().map(|d| d.to_string());
            (VaultSide::Token { ttl: info.ttl, renewable: info.renewable, drift }, Some(vault))
        }
        Err(e) if e.is_transient() => (VaultSide::Unreachable(e.to_string()), None),
        Err(e @ VaultError::Denied { .. }) => (VaultSide::Unusable("token_invalid", e.to_string()), None),
        Err(e) => (VaultSide::Unusable("vault_error", e.to_string()), None),
    }
}

/// The template's latest version and, for a JSON template, whether it holds the local login.
async fn latest(vault: &Vault, t: &TemplateConfig, local: &LocalFile) -> Result<Latest, VaultError> {
    let path = vault.kv_locate(&t.secret).await?;
    let Some(v) = vault.kv_read_latest(&path).await? else { return Ok(Latest::None) };
    if v.deleted {
        return Ok(Latest::Deleted(v.version));
    }
    let matches = match (&t.kind, local.facts().and_then(|f| f.refresh_fp.as_ref())) {
        (TemplateKind::Json(j), Some(mine)) => {
            let theirs = v.data.get(&j.field).and_then(|o| o.as_object()).and_then(|o| oauth::facts(o).refresh_fp);
            Some(theirs.as_ref() == Some(mine))
        }
        _ => None,
    };
    Ok(Latest::Version { version: v.version, matches })
}
