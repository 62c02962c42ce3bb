//! `claude-auth-sync provision`: turns a roster into per-user Vault policies and
//! credentials, files in each home, and timers.
//!
//! With an admin token it first proves the token valid and the KV mount usable (KV
//! v2, nested mounts allowed), then creates and repairs everything, minting a
//! credential only when the existing one is invalid, different, past half its period,
//! or `--rotate`d. Whatever replaces a credential revokes the old one by what Vault
//! and the state file know, not only by what the home still holds; a switch of the
//! roster's auth mode retires the other mode's credential and rewrites the agent's
//! auth block. Without an admin token (the hourly routine run) it checks each user
//! with the user's own credential, fixes what needs no admin (modes, owners, a
//! missing config, the timer), and lists the users who need an admin.
//!
//! Each user's home is checked before anything is changed for that user, and one
//! user's failure never stops the others, except a capability the admin token lacks:
//! every later user would fail the same way, so the run stops there and says which.

pub mod home;
pub mod policy;
pub mod roster;
mod state;
mod systemd;
mod user_config;
mod vault_ops;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::{Expect, Retry, VaultConfig};
use crate::os_user::OsUser;
use crate::secret::Secret;
use crate::vault::auth::check_identity;
use crate::vault::token::TokenInfo;
use crate::vault::{Vault, VaultError};
use home::{AgentDir, HomeError};
use roster::{AuthMode, Roster, RosterUser, VaultSection};
use state::{State, UserState};
use systemd::Timer;
use vault_ops::OpsError;

pub const TOKEN_FILE: &str = "vault-token";
pub const ROLE_ID_FILE: &str = "role-id";
pub const SECRET_ID_FILE: &str = "secret-id";
/// The token of the agent's AppRole login, kept by the agent between runs.
pub const APPROLE_TOKEN_FILE: &str = "approle-token";
pub const CONFIG_FILE: &str = "config.hcl";
pub const DEFAULT_STATE: &str = "/var/lib/claude-auth-sync/provision-state.json";

pub struct Options {
    pub roster: Roster,
    pub admin_token: Option<Secret>,
    pub rotate: Vec<String>,
    pub prune: bool,
    pub dry_run: bool,
    pub state: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub dry_run: bool,
    pub users: Vec<UserReport>,
    pub pruned: Vec<UserReport>,
    /// Why the run stopped before the end of the roster (a capability the admin token lacks).
    pub stopped: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct UserReport {
    pub user: String,
    pub status: UserStatus,
    pub actions: Vec<String>,
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Ok,
    Changed,
    Failed,
    NeedsAdmin,
}

impl UserReport {
    fn new(user: &str) -> Self {
        UserReport { user: user.into(), status: UserStatus::Ok, actions: Vec::new(), problem: None }
    }
    fn did(&mut self, action: String) {
        self.status = UserStatus::Changed;
        self.actions.push(action);
    }
    fn note(&mut self, note: String) {
        self.actions.push(note);
    }
    fn fail(mut self, problem: impl std::fmt::Display) -> Self {
        self.status = UserStatus::Failed;
        self.problem = Some(format!("{problem}; nothing more was changed for this user"));
        self
    }
    fn needs_admin(mut self, why: impl Into<String>) -> Self {
        self.status = UserStatus::NeedsAdmin;
        self.problem = Some(why.into());
        self
    }
}

impl Report {
    /// 0 when every user is fine, 1 when anyone failed or needs an admin, or the run stopped.
    pub fn exit_code(&self) -> u8 {
        let bad = |u: &UserReport| matches!(u.status, UserStatus::Failed | UserStatus::NeedsAdmin);
        if self.stopped.is_some() || self.users.iter().chain(&self.pruned).any(bad) { 1 } else { 0 }
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let line = |u: &UserReport| {
            let status = match u.status {
                UserStatus::Ok => "ok",
                UserStatus::Changed => "changed",
                UserStatus::Failed => "FAILED",
                UserStatus::NeedsAdmin => "NEEDS ADMIN",
            };
            let mut l = format!("{}: {status}", u.user);
            if !u.actions.is_empty() {
                l.push_str(&format!(": {}", u.actions.join("; ")));
            }
            if let Some(p) = &u.problem {
                l.push_str(&format!(" — {p}"));
            }
            l + "\n"
        };
        for u in &self.users {
            out.push_str(&line(u));
        }
        for u in &self.pruned {
            out.push_str(&format!("pruned {}", line(u)));
        }
        let admin: Vec<&UserReport> = self.users.iter().filter(|u| u.status == UserStatus::NeedsAdmin).collect();
        if !admin.is_empty() {
            out.push_str("Users that need an admin (re-run with an admin token):\n");
            for u in admin {
                out.push_str(&format!("  {}: {}\n", u.user, u.problem.as_deref().unwrap_or_default()));
            }
        }
        if let Some(why) = &self.stopped {
            out.push_str(&format!("Stopped: {why}\n"));
        }
        out
    }
}

/// Why a user could not be provisioned.
enum Failure {
    /// Trouble with this user only.
    User(String),
    /// The admin token lacks a capability: every later user would fail the same way.
    Stop(String),
}

impl From<OpsError> for Failure {
    fn from(e: OpsError) -> Self {
        match e {
            OpsError::MissingCapability { .. } => Failure::Stop(e.to_string()),
            e => Failure::User(e.to_string()),
        }
    }
}

impl From<HomeError> for Failure {
    fn from(e: HomeError) -> Self {
        Failure::User(e.to_string())
    }
}

/// The identity a user's credential must carry, as the agent's `expect` says it.
fn expect_for(user: &str, auth: AuthMode) -> Expect {
    let role = policy::name(user);
    let meta = match auth {
        AuthMode::Token => ("os_user".to_string(), user.to_string()),
        AuthMode::Approle => ("role_name".to_string(), role.clone()),
    };
    Expect { policies: vec![role], meta: [meta].into() }
}

struct Ctx<'a> {
    opts: &'a Options,
    vault: Vault,
    state: State,
    approle_ready: bool,
    stopped: Option<String>,
}

/// Runs the whole roster. An `Err` is a setup problem (Vault client, admin token, KV
/// mount, state file), found before anything is changed.
pub async fn run(opts: &Options) -> Result<Report, String> {
    let v = &opts.roster.vault;
    let cfg = VaultConfig {
        address: v.address.clone(),
        ca_cert: v.ca_cert.clone(),
        tls_skip_verify: false,
        allow_cleartext_tokens: v.allow_cleartext_tokens,
        timeout: Duration::from_secs(10),
        retry: Retry::default(),
    };
    let mut vault = Vault::new(&cfg).map_err(|e| e.to_string())?;
    if let Some(t) = &opts.admin_token {
        vault.set_token(t);
        vault_ops::check_admin(&vault).await?;
        check_kv_mount(&vault, v).await?;
    }
    let state = State::load(&opts.state)?;
    let mut ctx = Ctx { opts, vault, state, approle_ready: false, stopped: None };
    let progress = std::io::stdout().is_terminal();
    let total = opts.roster.users.len();

    let mut users = Vec::with_capacity(total);
    for (i, user) in opts.roster.users.iter().enumerate() {
        if progress {
            println!("[{}/{total}] {}", i + 1, user.name);
        }
        let r = match opts.admin_token {
            Some(_) => ctx.admin_user(user).await,
            None => ctx.routine_user(user, &cfg).await,
        };
        users.push(r);
        if let Some(why) = &mut ctx.stopped {
            let rest: Vec<&str> = opts.roster.users[i + 1..].iter().map(|u| u.name.as_str()).collect();
            if !rest.is_empty() {
                why.push_str(&format!(" (not attempted: {})", rest.join(", ")));
            }
            break;
        }
    }
    let pruned = if opts.prune && ctx.stopped.is_none() { ctx.prune().await } else { Vec::new() };
    if !opts.dry_run {
        ctx.state.save(&opts.state)?;
    }
    Ok(Report {
        mode: if opts.admin_token.is_some() { "admin" } else { "routine" },
        dry_run: opts.dry_run,
        users,
        pruned,
        stopped: ctx.stopped,
    })
}

/// The roster's `kv_mount` must be exactly a KV v2 mount.
async fn check_kv_mount(vault: &Vault, v: &VaultSection) -> Result<(), String> {
    let what = format!("vault.kv_mount {}", v.kv_mount);
    let mount = vault.mount_of(&format!("{}/{}", v.kv_mount, v.path_prefix)).await.map_err(|e| match e {
        VaultError::Denied { .. } => format!(
            "{what}: Vault has no mount there, or the admin token has no capability under it; enable one with \
             `bao secrets enable -path={} kv-v2`; nothing was changed",
            v.kv_mount
        ),
        e => format!("{what}: {e}; nothing was changed"),
    })?;
    mount.require_kv2(&what).map_err(|e| format!("{e}; nothing was changed"))?;
    if mount.path != v.kv_mount {
        return Err(format!(
            "{what} is not a mount but a path inside the mount {m}/: set kv_mount: {m} and put the rest into \
             path_prefix; nothing was changed",
            m = mount.path
        ));
    }
    Ok(())
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn cred_files(auth: AuthMode) -> &'static [&'static str] {
    match auth {
        AuthMode::Token => &[TOKEN_FILE],
        AuthMode::Approle => &[ROLE_ID_FILE, SECRET_ID_FILE],
    }
}

impl Ctx<'_> {
    fn dry(&self) -> bool {
        self.opts.dry_run
    }

    fn section(&self) -> &VaultSection {
        &self.opts.roster.vault
    }

    /// Whether to do `what` (an imperative: "write policy x"); records "would write
    /// policy x" on a dry run, "wrote policy x" otherwise.
    fn act(&self, r: &mut UserReport, what: String) -> bool {
        if self.dry() {
            r.did(format!("would {what}"));
            return false;
        }
        let (verb, rest) = what.split_once(' ').unwrap_or((&what, ""));
        let past = match verb {
            "write" => "wrote",
            "rewrite" => "rewrote",
            "mint" => "minted",
            "create" => "created",
            "revoke" => "revoked",
            "delete" => "deleted",
            "destroy" => "destroyed",
            "remove" => "removed",
            other => other, // "set"
        };
        r.did(format!("{past} {rest}"));
        true
    }

    async fn admin_user(&mut self, user: &RosterUser) -> UserReport {
        let mut r = UserReport::new(&user.name);
        let auth = self.section().auth;
        // The home first: a hostile path aborts before Vault is touched.
        let dir = match AgentDir::open(&user.os, !self.dry()) {
            Ok(d) => d,
            Err(e) => return r.fail(e),
        };
        if let Some(d) = &dir {
            for f in cred_files(auth).iter().chain([&CONFIG_FILE]) {
                if let Err(e) = d.inspect(f) {
                    return r.fail(e);
                }
            }
        }
        match self.admin_vault(user, dir.as_ref(), &mut r).await {
            Ok(()) => {}
            Err(Failure::User(p)) => return r.fail(p),
            Err(Failure::Stop(p)) => {
                self.stopped = Some(format!("{}: {p}", user.name));
                return r.fail(p);
            }
        }
        if let Some(d) = &dir
            && let Err(e) = self.write_config(d, user, true, &mut r)
        {
            return r.fail(e);
        }
        self.timer(user, &mut r);
        r
    }

    async fn admin_vault(
        &mut self,
        user: &RosterUser,
        dir: Option<&AgentDir>,
        r: &mut UserReport,
    ) -> Result<(), Failure> {
        let v = self.section().clone();
        let name = &user.name;
        let pname = policy::name(name);
        let want = policy::hcl(&v.kv_mount, &v.path_prefix, name);
        if vault_ops::policy(&self.vault, &pname).await?.as_deref() != Some(want.as_str())
            && self.act(r, format!("write policy {pname}"))
        {
            vault_ops::put_policy(&self.vault, &pname, &want).await?;
        }
        self.version_settings(user, r).await?;
        let rotate = self.opts.rotate.iter().any(|u| u == name);
        match v.auth {
            AuthMode::Token => {
                if self.used(name, dir, AuthMode::Approle) {
                    self.retire_approle(name, dir, r).await?;
                }
                self.admin_token(user, dir, rotate, r).await
            }
            AuthMode::Approle => {
                if self.used(name, dir, AuthMode::Token) {
                    self.retire_token(name, dir, r).await?;
                }
                self.admin_approle(user, dir, rotate, r).await
            }
        }
    }

    /// Resets the settings of the user's versions (the user may only set custom_metadata).
    async fn version_settings(&self, user: &RosterUser, r: &mut UserReport) -> Result<(), Failure> {
        let v = self.section();
        let want = vault_ops::VersionSettings {
            max_versions: v.max_versions,
            delete_version_after: v.delete_version_after,
            cas_required: v.cas_required,
        };
        let path = format!("{}/{}", v.path_prefix, user.name);
        let have = vault_ops::version_settings(&self.vault, &v.kv_mount, &path).await?;
        if have.is_some_and(|(h, _)| h == want) {
            return Ok(());
        }
        let what = format!(
            "set max_versions={}, delete_version_after={}s, cas_required={} on {}",
            want.max_versions,
            want.delete_version_after.as_secs(),
            want.cas_required,
            policy::secret(v, &user.name)
        );
        if self.act(r, what) {
            let metadata_version = have.map_or(0, |(_, version)| version);
            vault_ops::set_version_settings(&self.vault, &v.kv_mount, &path, want, metadata_version).await?;
        }
        Ok(())
    }

    async fn admin_token(
        &mut self,
        user: &RosterUser,
        dir: Option<&AgentDir>,
        rotate: bool,
        r: &mut UserReport,
    ) -> Result<(), Failure> {
        let v = self.section().clone();
        let pname = policy::name(&user.name);
        let want_role = vault_ops::token_role_body(&pname, v.token_period);
        let have_role = vault_ops::token_role(&self.vault, &pname).await?;
        if !have_role.as_ref().is_some_and(|h| vault_ops::role_matches(h, &want_role))
            && self.act(r, format!("write token role {pname}"))
        {
            vault_ops::put_token_role(&self.vault, &pname, want_role).await?;
        }
        let existing = match dir {
            Some(d) => d.read(TOKEN_FILE)?.map(|t| Secret::new(t.trim())),
            None => None,
        };
        let current = match &existing {
            Some(t) if !t.expose().is_empty() => vault_ops::lookup(&self.vault, t).await?,
            _ => None,
        };
        let expect = expect_for(&user.name, AuthMode::Token);
        let why_new = match &current {
            None if existing.is_some() => {
                Some("vault-token holds no token Vault knows (revoked, expired or garbled)".into())
            }
            None => Some("there is no token".into()),
            Some(_) if rotate => Some("--rotate".into()),
            Some(t) => match check_identity(&expect, t) {
                Err(why) => Some(format!("the existing token is not this user's identity: {why}")),
                Ok(()) if t.ttl * 2 < v.token_period => {
                    Some("the existing token has less than half its period left".into())
                }
                Ok(()) => None,
            },
        };
        let remembered = self.remembered(&user.name, AuthMode::Token);
        let Some(why) = why_new else {
            let t = current.expect("kept only when valid");
            r.note(format!("token kept (ttl {})", crate::report::duration(t.ttl)));
            if let Some(old) = remembered.filter(|a| *a != t.accessor) {
                self.revoke_remembered(&old, "a leftover token remembered in the state file", r).await?;
            }
            self.remember(&user.name, AuthMode::Token, Some(t.accessor), t.expires_at);
            return Ok(());
        };
        if !self.act(r, format!("mint a new token ({why})")) {
            return Ok(());
        }
        let (token, info) = vault_ops::mint(&self.vault, &user.name, &pname).await?;
        let dir = dir.expect("created when not a dry run");
        dir.write(TOKEN_FILE, token.expose().as_bytes(), 0o600)?;
        r.did(format!("wrote {}", dir.path().join(TOKEN_FILE).display()));
        self.remember(&user.name, AuthMode::Token, Some(info.accessor.clone()), info.expires_at);
        if let Some(old) = &current {
            vault_ops::revoke_accessor(&self.vault, &old.accessor).await?;
            r.did("revoked the previous token (the one vault-token held)".into());
        }
        let current_accessor = current.map(|t| t.accessor);
        if let Some(old) = remembered.filter(|a| Some(a) != current_accessor.as_ref() && *a != info.accessor) {
            self.revoke_remembered(&old, "the previous token remembered in the state file", r).await?;
        }
        Ok(())
    }

    /// Revokes a token known only by the accessor the state file remembers, saying truthfully what happened.
    async fn revoke_remembered(&self, accessor: &str, what: &str, r: &mut UserReport) -> Result<(), Failure> {
        match vault_ops::lookup_accessor(&self.vault, accessor).await? {
            None => r.note(format!("{what} was already revoked or expired")),
            Some(_) => {
                if self.act(r, format!("revoke {what}")) {
                    vault_ops::revoke_accessor(&self.vault, accessor).await?;
                }
            }
        }
        Ok(())
    }

    /// Whether the user has been on `auth` mode: the state remembers it, or its files are in the home.
    fn used(&self, user: &str, dir: Option<&AgentDir>, auth: AuthMode) -> bool {
        let files: &[&str] = match auth {
            AuthMode::Token => &[TOKEN_FILE],
            AuthMode::Approle => &[ROLE_ID_FILE, SECRET_ID_FILE, APPROLE_TOKEN_FILE],
        };
        self.state.users.get(user).is_some_and(|s| s.auth == auth)
            || dir.is_some_and(|d| files.iter().any(|f| !matches!(d.inspect(f), Ok(None))))
    }

    /// The accessor the state file remembers for this user's credential in `auth` mode.
    fn remembered(&self, user: &str, auth: AuthMode) -> Option<String> {
        self.state.users.get(user).filter(|s| s.auth == auth).and_then(|s| s.accessor.clone())
    }

    async fn admin_approle(
        &mut self,
        user: &RosterUser,
        dir: Option<&AgentDir>,
        rotate: bool,
        r: &mut UserReport,
    ) -> Result<(), Failure> {
        let v = self.section().clone();
        let (mount, role) = (v.approle_mount.clone(), policy::name(&user.name));
        if !self.approle_ready {
            if self.dry() {
                r.note(format!("would make sure auth/{mount} is an AppRole mount"));
            } else if vault_ops::ensure_approle(&self.vault, &mount).await? {
                r.did(format!("enabled AppRole at auth/{mount}"));
            }
            self.approle_ready = true;
        }
        let want = vault_ops::role_body(&role, v.token_period);
        let have = vault_ops::role(&self.vault, &mount, &role).await?;
        if !have.as_ref().is_some_and(|h| vault_ops::role_matches(h, &want))
            && self.act(r, format!("write AppRole role {role}"))
        {
            vault_ops::put_role(&self.vault, &mount, &role, want).await?;
        }
        // A dry run has neither the role (to read its role-id) nor, maybe, the directory.
        let Some(dir) = dir.filter(|_| !(self.dry() && have.is_none())) else {
            r.did("would write role-id and a new secret-id".into());
            return Ok(());
        };
        let role_id = vault_ops::role_id(&self.vault, &mount, &role).await?;
        if dir.read(ROLE_ID_FILE)?.as_deref().map(str::trim) != Some(role_id.as_str())
            && self.act(r, format!("write {}", dir.path().join(ROLE_ID_FILE).display()))
        {
            dir.write(ROLE_ID_FILE, role_id.as_bytes(), 0o600)?;
        }
        let existing = dir.read(SECRET_ID_FILE)?.map(|s| Secret::new(s.trim()));
        let current = match &existing {
            Some(s) if !s.expose().is_empty() => vault_ops::secret_id_accessor(&self.vault, &mount, &role, s).await?,
            _ => None,
        };
        if let (Some(accessor), false) = (&current, rotate) {
            r.note("secret-id kept".into());
            self.destroy_other_secret_ids(&role, accessor, "stray", r).await?;
            self.remember(&user.name, AuthMode::Approle, Some(accessor.clone()), None);
            return Ok(());
        }
        let why = if rotate {
            "--rotate"
        } else if existing.is_some() {
            "the existing secret-id is invalid"
        } else {
            "there is no secret-id"
        };
        if !self.act(r, format!("create a new secret-id ({why})")) {
            return Ok(());
        }
        let (secret_id, accessor) = vault_ops::new_secret_id(&self.vault, &mount, &role).await?;
        dir.write(SECRET_ID_FILE, secret_id.expose().as_bytes(), 0o600)?;
        r.did(format!("wrote {}", dir.path().join(SECRET_ID_FILE).display()));
        self.remember(&user.name, AuthMode::Approle, Some(accessor.clone()), None);
        self.destroy_other_secret_ids(&role, &accessor, "previous", r).await?;
        // The agent's kept login came from an old secret-id: it goes too.
        self.revoke_kept_approle_token(Some(dir), r).await
    }

    /// Destroys every secret-id of the role but `keep`, whatever the home or the state still knows.
    async fn destroy_other_secret_ids(
        &self,
        role: &str,
        keep: &str,
        what: &str,
        r: &mut UserReport,
    ) -> Result<(), Failure> {
        let mount = &self.section().approle_mount;
        let others: Vec<String> =
            vault_ops::secret_id_accessors(&self.vault, mount, role).await?.into_iter().filter(|a| a != keep).collect();
        if others.is_empty() {
            return Ok(());
        }
        if self.act(r, format!("destroy {} {what} secret-id(s) of AppRole role {role}", others.len())) {
            for a in &others {
                vault_ops::destroy_secret_id_accessor(&self.vault, mount, role, a).await?;
            }
        }
        Ok(())
    }

    /// Revokes the AppRole token the agent keeps in the home, if Vault still knows it.
    async fn revoke_kept_approle_token(&self, dir: Option<&AgentDir>, r: &mut UserReport) -> Result<(), Failure> {
        let Some(kept) = dir.map(|d| d.read(APPROLE_TOKEN_FILE)).transpose()?.flatten() else { return Ok(()) };
        let kept = Secret::new(kept.trim());
        if kept.expose().is_empty() {
            return Ok(());
        }
        if let Some(t) = vault_ops::lookup(&self.vault, &kept).await?
            && self.act(r, "revoke the AppRole token the agent kept (its next run logs in again)".into())
        {
            vault_ops::revoke_accessor(&self.vault, &t.accessor).await?;
        }
        Ok(())
    }

    /// Retires a periodic token of this user (the mode is AppRole now, or the user left):
    /// the token vault-token holds, the one the state remembers, the token role, the file.
    async fn retire_token(&mut self, name: &str, dir: Option<&AgentDir>, r: &mut UserReport) -> Result<(), Failure> {
        let remembered = self.remembered(name, AuthMode::Token);
        let in_home = match dir {
            Some(d) => d.read(TOKEN_FILE).ok().flatten().map(|t| Secret::new(t.trim())),
            None => None,
        };
        let home_token: Option<TokenInfo> = match &in_home {
            Some(t) if !t.expose().is_empty() => vault_ops::lookup(&self.vault, t).await?,
            _ => None,
        };
        // Only this user's own token is revoked from the home file.
        let home_token = home_token.filter(|t| t.meta.get("os_user").map(String::as_str) == Some(name));
        if let Some(t) = &home_token
            && self.act(r, "revoke the periodic token (the one vault-token held)".into())
        {
            vault_ops::revoke_accessor(&self.vault, &t.accessor).await?;
        }
        if let Some(old) = remembered.filter(|a| home_token.as_ref().is_none_or(|t| &t.accessor != a)) {
            self.revoke_remembered(&old, "the periodic token remembered in the state file", r).await?;
        }
        let role = policy::name(name);
        if vault_ops::token_role(&self.vault, &role).await?.is_some()
            && self.act(r, format!("delete token role {role}"))
        {
            vault_ops::delete_token_role(&self.vault, &role).await?;
        }
        self.remove_files(dir, &[TOKEN_FILE], r);
        Ok(())
    }

    /// Retires this user's AppRole (the mode is token now, or the user left): the role
    /// with its secret-ids, the login token the agent kept, the files.
    async fn retire_approle(&mut self, name: &str, dir: Option<&AgentDir>, r: &mut UserReport) -> Result<(), Failure> {
        let (mount, role) = (self.section().approle_mount.clone(), policy::name(name));
        self.revoke_kept_approle_token(dir, r).await?;
        if vault_ops::role(&self.vault, &mount, &role).await?.is_some()
            && self.act(r, format!("delete AppRole role {role} (and with it every secret-id)"))
        {
            vault_ops::delete_role(&self.vault, &mount, &role).await?;
        }
        self.remove_files(dir, &[ROLE_ID_FILE, SECRET_ID_FILE, APPROLE_TOKEN_FILE], r);
        Ok(())
    }

    fn remove_files(&self, dir: Option<&AgentDir>, files: &[&str], r: &mut UserReport) {
        let Some(dir) = dir else { return };
        for f in files {
            if matches!(dir.inspect(f), Ok(Some(_)) | Err(HomeError::HardLink { .. } | HomeError::Symlink(_)))
                && self.act(r, format!("remove {}", dir.path().join(f).display()))
                && let Err(e) = dir.remove(f)
            {
                r.note(format!("could not remove {f}: {e}"));
            }
        }
    }

    fn remember(&mut self, user: &str, auth: AuthMode, accessor: Option<String>, expires_at: Option<u64>) {
        self.state.users.insert(user.to_string(), UserState { auth, accessor, expires_at });
    }

    /// Writes a missing `config.hcl`; with `switch`, rewrites the auth block of one
    /// that uses the other auth mode, keeping the rest of the user's file.
    fn write_config(&self, dir: &AgentDir, user: &RosterUser, switch: bool, r: &mut UserReport) -> Result<(), String> {
        let path = dir.path().join(CONFIG_FILE);
        let Some(info) = dir.inspect(CONFIG_FILE).map_err(|e| e.to_string())? else {
            if self.act(r, format!("write {}", path.display())) {
                let text = user_config::render(self.section(), user);
                dir.write(CONFIG_FILE, text.as_bytes(), 0o600).map_err(|e| e.to_string())?;
            }
            return Ok(());
        };
        if !switch {
            return Ok(());
        }
        let text = dir.read(CONFIG_FILE).map_err(|e| e.to_string())?.unwrap_or_default();
        let switched = user_config::switch_auth(&text, self.section(), user).map_err(|e| {
            format!(
                "{} {e}; give it the roster's auth method by hand (docs/provisioning.md), or remove it",
                path.display()
            )
        })?;
        if let Some(new) = switched
            && self.act(
                r,
                format!("rewrite the auth block of {} for auth: {}", path.display(), mode_name(self.section().auth)),
            )
        {
            dir.write(CONFIG_FILE, new.as_bytes(), info.mode).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn timer(&self, user: &RosterUser, r: &mut UserReport) {
        match systemd::enable(&user.name, self.dry()) {
            Ok(Timer::Done(what)) => r.did(what),
            Ok(Timer::Unchanged(what)) => r.note(what),
            Ok(Timer::Skipped) => r.note("timer: skipped (systemd is not running)".into()),
            Err(e) => {
                r.note(format!("timer: {e}"));
                r.status = UserStatus::Failed;
            }
        }
    }

    /// The routine run: the user's own credential, no admin token.
    async fn routine_user(&mut self, user: &RosterUser, cfg: &VaultConfig) -> UserReport {
        let mut r = UserReport::new(&user.name);
        let auth = self.section().auth;
        let dir = match AgentDir::open(&user.os, false) {
            Ok(Some(d)) => d,
            Ok(None) => return r.needs_admin("not provisioned: ~/.config/claude-auth-sync is missing"),
            Err(e) => return r.fail(e),
        };
        for f in cred_files(auth) {
            match dir.inspect(f) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return r.needs_admin(format!("no credential: {} is missing", dir.path().join(f).display()));
                }
                Err(e) => return r.fail(e),
            }
        }
        let optional: &[&str] = if auth == AuthMode::Approle { &[APPROLE_TOKEN_FILE] } else { &[] };
        if !self.dry() {
            for f in cred_files(auth).iter().chain(optional) {
                match dir.fix(f, 0o600) {
                    Ok(fixed) => fixed.into_iter().for_each(|f| r.did(f)),
                    Err(e) => return r.fail(e),
                }
            }
        }
        if let Err(e) = self.write_config(&dir, user, false, &mut r) {
            return r.fail(e);
        }
        let checked = match auth {
            AuthMode::Token => self.check_token(user, &dir, cfg).await,
            AuthMode::Approle => self.check_approle(user, &dir, cfg).await,
        };
        match checked {
            Ok(note) => r.note(note),
            Err(Check::NeedsAdmin(why)) => return r.needs_admin(why),
            Err(Check::Failed(why)) => return r.fail(why),
        }
        self.timer(user, &mut r);
        r
    }

    async fn check_token(&mut self, user: &RosterUser, dir: &AgentDir, cfg: &VaultConfig) -> Result<String, Check> {
        let token = dir.read(TOKEN_FILE).map_err(|e| Check::Failed(e.to_string()))?.unwrap_or_default();
        let mut as_user = Vault::new(cfg).map_err(|e| Check::Failed(e.to_string()))?;
        as_user.set_token(&Secret::new(token.trim()));
        match as_user.lookup_self(as_user.default_backoff()).await {
            Ok(info) => {
                drift(&expect_for(&user.name, AuthMode::Token), &info)?;
                self.remember(&user.name, AuthMode::Token, Some(info.accessor.clone()), info.expires_at);
                Ok(format!("token valid (ttl {})", crate::report::duration(info.ttl)))
            }
            Err(VaultError::Denied { .. }) => {
                let expired =
                    self.state.users.get(&user.name).and_then(|s| s.expires_at).is_some_and(|t| t <= now_secs());
                Err(Check::NeedsAdmin(if expired {
                    "credential expired (not renewed within its period; is the timer running?)".into()
                } else {
                    "credential revoked (Vault no longer knows the token)".into()
                }))
            }
            Err(e) => Err(Check::Failed(e.to_string())),
        }
    }

    async fn check_approle(&mut self, user: &RosterUser, dir: &AgentDir, cfg: &VaultConfig) -> Result<String, Check> {
        let read = |f| {
            dir.read(f).map_err(|e| Check::Failed(e.to_string())).map(|s| Secret::new(s.unwrap_or_default().trim()))
        };
        let (role_id, secret_id) = (read(ROLE_ID_FILE)?, read(SECRET_ID_FILE)?);
        let mount = self.section().approle_mount.clone();
        let mut as_user = Vault::new(cfg).map_err(|e| Check::Failed(e.to_string()))?;
        let backoff = as_user.default_backoff();
        let (token, info) = match as_user.approle_login(backoff, &mount, &role_id, &secret_id).await {
            Ok(login) => login,
            Err(VaultError::Rejected { status: 400, .. } | VaultError::Denied { .. }) => {
                return Err(Check::NeedsAdmin("AppRole login refused: the secret-id or the role is gone".into()));
            }
            Err(e) => return Err(Check::Failed(e.to_string())),
        };
        as_user.set_token(&token);
        let checked =
            drift(&expect_for(&user.name, AuthMode::Approle), &info).map(|()| "AppRole login works".to_string());
        // The check's own token is of no further use; the user's policy lets it end itself.
        match as_user.revoke_self(backoff).await {
            Ok(()) => checked,
            Err(VaultError::Denied { .. }) => Err(Check::NeedsAdmin(
                "the check's AppRole login cannot revoke itself: the user's policy predates revoke-self; \
                 an admin run rewrites it"
                    .into(),
            )),
            Err(e) => Err(Check::Failed(format!("the check's AppRole login could not be revoked: {e}"))),
        }
    }

    /// Users the state knows and the roster no longer lists: revoke, disable, forget.
    async fn prune(&mut self) -> Vec<UserReport> {
        let gone: Vec<String> = self
            .state
            .users
            .keys()
            .filter(|u| !self.opts.roster.users.iter().any(|r| &r.name == *u))
            .cloned()
            .collect();
        let mut out = Vec::new();
        for name in gone {
            let mut r = UserReport::new(&name);
            let dir = OsUser::by_name(&name).ok().flatten().and_then(|os| AgentDir::open(&os, false).ok().flatten());
            let pname = policy::name(&name);
            let retired: Result<(), Failure> = async {
                // Each mode the user has been on: a user may have left right after a switch.
                if self.used(&name, dir.as_ref(), AuthMode::Token) {
                    self.retire_token(&name, dir.as_ref(), &mut r).await?;
                }
                if self.used(&name, dir.as_ref(), AuthMode::Approle) {
                    self.retire_approle(&name, dir.as_ref(), &mut r).await?;
                }
                if self.act(&mut r, format!("delete policy {pname} (the data is kept)")) {
                    vault_ops::delete_policy(&self.vault, &pname).await?;
                }
                Ok(())
            }
            .await;
            match retired {
                Ok(()) => {}
                Err(Failure::User(p)) => {
                    out.push(r.fail(p));
                    continue;
                }
                Err(Failure::Stop(p)) => {
                    self.stopped = Some(format!("pruning {name}: {p}"));
                    out.push(r.fail(p));
                    break;
                }
            }
            match systemd::disable(&name, self.dry()) {
                Ok(Timer::Done(what) | Timer::Unchanged(what)) => r.did(what),
                Ok(Timer::Skipped) => r.note("timer: skipped (systemd is not running)".into()),
                Err(err) => r.note(format!("timer: {err}")),
            }
            if !self.dry() {
                self.state.users.remove(&name);
            }
            out.push(r);
        }
        out
    }
}

fn mode_name(auth: AuthMode) -> &'static str {
    match auth {
        AuthMode::Token => "token",
        AuthMode::Approle => "approle",
    }
}

/// The shared identity check, as the routine run reports it.
fn drift(expect: &Expect, info: &TokenInfo) -> Result<(), Check> {
    check_identity(expect, info).map_err(|why| Check::NeedsAdmin(format!("drift: {why}")))
}

enum Check {
    NeedsAdmin(String),
    Failed(String),
}
