//! `claude-auth-sync provision`: turns a roster into per-user Vault policies and
//! credentials, files in each home, and timers.
//!
//! With an admin token it creates and repairs everything, minting a credential only
//! when the existing one is invalid, different, past half its period, or `--rotate`d.
//! Without one (the hourly routine run) it checks each user with the user's own
//! credential, fixes what needs no admin (modes, owners, a missing config, the
//! timer), and lists the users who need an admin. Each user's home is checked
//! before anything is changed for that user, and one user's failure never stops
//! the others.

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

use crate::config::{Retry, VaultConfig};
use crate::os_user::OsUser;
use crate::secret::Secret;
use crate::vault::{Vault, VaultError};
use home::AgentDir;
use roster::{AuthMode, Roster, RosterUser};
use state::{State, UserState};
use systemd::Timer;

pub const TOKEN_FILE: &str = "vault-token";
pub const ROLE_ID_FILE: &str = "role-id";
pub const SECRET_ID_FILE: &str = "secret-id";
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
    /// 0 when every user is fine, 1 when anyone failed or needs an admin.
    pub fn exit_code(&self) -> u8 {
        let bad = |u: &UserReport| matches!(u.status, UserStatus::Failed | UserStatus::NeedsAdmin);
        if self.users.iter().chain(&self.pruned).any(bad) { 1 } else { 0 }
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
        out
    }
}

struct Ctx<'a> {
    opts: &'a Options,
    vault: Vault,
    state: State,
    approle_ready: bool,
}

/// Runs the whole roster. An `Err` is a setup problem (Vault client, state file).
pub async fn run(opts: &Options) -> Result<Report, String> {
    let v = &opts.roster.vault;
    let cfg = VaultConfig {
        address: v.address.clone(),
        ca_cert: v.ca_cert.clone(),
        tls_skip_verify: false,
        timeout: Duration::from_secs(10),
        retry: Retry::default(),
    };
    let mut vault = Vault::new(&cfg).map_err(|e| e.to_string())?;
    if let Some(t) = &opts.admin_token {
        vault.set_token(t);
    }
    let state = State::load(&opts.state)?;
    let mut ctx = Ctx { opts, vault, state, approle_ready: false };
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
    }
    let pruned = if opts.prune { ctx.prune().await } else { Vec::new() };
    if !opts.dry_run {
        ctx.state.save(&opts.state)?;
    }
    Ok(Report {
        mode: if opts.admin_token.is_some() { "admin" } else { "routine" },
        dry_run: opts.dry_run,
        users,
        pruned,
    })
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
            "mint" => "minted",
            "create" => "created",
            "revoke" => "revoked",
            "delete" => "deleted",
            "remove" => "removed",
            other => other, // "set"
        };
        r.did(format!("{past} {rest}"));
        true
    }

    async fn admin_user(&mut self, user: &RosterUser) -> UserReport {
        let mut r = UserReport::new(&user.name);
        let v = self.opts.roster.vault.clone();
        // The home first: a hostile path aborts before Vault is touched.
        let dir = match AgentDir::open(&user.os, !self.dry()) {
            Ok(d) => d,
            Err(e) => return r.fail(e),
        };
        if let Some(d) = &dir {
            for f in cred_files(v.auth).iter().chain([&CONFIG_FILE]) {
                if let Err(e) = d.inspect(f) {
                    return r.fail(e);
                }
            }
        }
        match self.admin_vault(user, dir.as_ref(), &mut r).await {
            Ok(()) => {}
            Err(e) => return r.fail(e),
        }
        if let Some(d) = &dir
            && let Err(e) = self.write_config(d, user, &mut r)
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
    ) -> Result<(), String> {
        let v = self.opts.roster.vault.clone();
        let name = &user.name;
        let pname = policy::name(name);
        let want = policy::hcl(&v.kv_mount, &v.path_prefix, name);
        let e = |e: VaultError| e.to_string();
        if vault_ops::policy(&self.vault, &pname).await.map_err(e)?.as_deref() != Some(want.as_str())
            && self.act(r, format!("write policy {pname}"))
        {
            vault_ops::put_policy(&self.vault, &pname, &want).await.map_err(e)?;
        }
        let path = format!("{}/{name}", v.path_prefix);
        if vault_ops::max_versions(&self.vault, &v.kv_mount, &path).await.map_err(e)? != Some(v.max_versions)
            && self.act(r, format!("set max_versions={} on {}", v.max_versions, policy::secret(&v, name)))
        {
            vault_ops::set_max_versions(&self.vault, &v.kv_mount, &path, v.max_versions).await.map_err(e)?;
        }
        let rotate = self.opts.rotate.iter().any(|u| u == name);
        match v.auth {
            AuthMode::Token => self.admin_token(user, dir, rotate, r).await,
            AuthMode::Approle => self.admin_approle(user, dir, rotate, r).await,
        }
    }

    async fn admin_token(
        &mut self,
        user: &RosterUser,
        dir: Option<&AgentDir>,
        rotate: bool,
        r: &mut UserReport,
    ) -> Result<(), String> {
        let v = self.opts.roster.vault.clone();
        let pname = policy::name(&user.name);
        let e = |e: VaultError| e.to_string();
        let existing = match dir {
            Some(d) => d.read(TOKEN_FILE).map_err(|e| e.to_string())?.map(|t| Secret::new(t.trim())),
            None => None,
        };
        let current = match &existing {
            Some(t) if !t.expose().is_empty() => vault_ops::lookup(&self.vault, t).await.map_err(e)?,
            _ => None,
        };
        let why_new = match &current {
            None if existing.is_some() => Some("the existing token is revoked or expired"),
            None => Some("there is no token"),
            Some(_) if rotate => Some("--rotate"),
            Some(t) if t.policies != [pname.clone()] => Some("the existing token has other policies"),
            Some(t) if t.meta.get("os_user") != Some(&user.name) => Some("the existing token belongs to another user"),
            Some(t) if t.ttl * 2 < v.token_period => Some("the existing token has less than half its period left"),
            Some(_) => None,
        };
        let Some(why) = why_new else {
            let t = current.expect("kept only when valid");
            r.note(format!("token kept (ttl {})", crate::report::duration(t.ttl)));
            self.remember(&user.name, Some(t.accessor), t.expires_at);
            return Ok(());
        };
        if !self.act(r, format!("mint a new token ({why})")) {
            return Ok(());
        }
        let (token, info) = vault_ops::mint(&self.vault, &user.name, &pname, v.token_period).await.map_err(e)?;
        let dir = dir.expect("created when not a dry run");
        dir.write(TOKEN_FILE, token.expose().as_bytes(), 0o600).map_err(|e| e.to_string())?;
        r.did(format!("wrote {}", dir.path().join(TOKEN_FILE).display()));
        self.remember(&user.name, Some(info.accessor), Some(now_secs() + info.ttl.as_secs()));
        if let Some(old) = current {
            vault_ops::revoke_accessor(&self.vault, &old.accessor).await.map_err(e)?;
            r.did("revoked the previous token".into());
        }
        Ok(())
    }

    async fn admin_approle(
        &mut self,
        user: &RosterUser,
        dir: Option<&AgentDir>,
        rotate: bool,
        r: &mut UserReport,
    ) -> Result<(), String> {
        let v = self.opts.roster.vault.clone();
        let (mount, role) = (v.approle_mount.clone(), policy::name(&user.name));
        let e = |e: VaultError| e.to_string();
        if !self.approle_ready {
            if self.dry() {
                r.note(format!("would make sure auth/{mount} is an AppRole mount"));
            } else if vault_ops::ensure_approle(&self.vault, &mount).await.map_err(e)? {
                r.did(format!("enabled AppRole at auth/{mount}"));
            }
            self.approle_ready = true;
        }
        let want = vault_ops::role_body(&role, v.token_period);
        let have = vault_ops::role(&self.vault, &mount, &role).await.map_err(e)?;
        if !have.as_ref().is_some_and(|h| vault_ops::role_matches(h, &want))
            && self.act(r, format!("write AppRole role {role}"))
        {
            vault_ops::put_role(&self.vault, &mount, &role, want).await.map_err(e)?;
        }
        // A dry run has neither the role (to read its role-id) nor, maybe, the directory.
        let Some(dir) = dir.filter(|_| !(self.dry() && have.is_none())) else {
            r.did("would write role-id and a new secret-id".into());
            return Ok(());
        };
        let role_id = vault_ops::role_id(&self.vault, &mount, &role).await.map_err(e)?;
        if dir.read(ROLE_ID_FILE).map_err(|e| e.to_string())?.as_deref().map(str::trim) != Some(role_id.as_str())
            && self.act(r, format!("write {}", dir.path().join(ROLE_ID_FILE).display()))
        {
            dir.write(ROLE_ID_FILE, role_id.as_bytes(), 0o600).map_err(|e| e.to_string())?;
        }
        let existing = dir.read(SECRET_ID_FILE).map_err(|e| e.to_string())?.map(|s| Secret::new(s.trim()));
        let current = match &existing {
            Some(s) if !s.expose().is_empty() => {
                vault_ops::secret_id_accessor(&self.vault, &mount, &role, s).await.map_err(e)?
            }
            _ => None,
        };
        if let (Some(accessor), false) = (&current, rotate) {
            r.note("secret-id kept".into());
            self.remember(&user.name, Some(accessor.clone()), None);
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
        let (secret_id, accessor) = vault_ops::new_secret_id(&self.vault, &mount, &role).await.map_err(e)?;
        dir.write(SECRET_ID_FILE, secret_id.expose().as_bytes(), 0o600).map_err(|e| e.to_string())?;
        r.did(format!("wrote {}", dir.path().join(SECRET_ID_FILE).display()));
        self.remember(&user.name, Some(accessor), None);
        if let Some(old) = current {
            vault_ops::destroy_secret_id_accessor(&self.vault, &mount, &role, &old).await.map_err(e)?;
            r.did("destroyed the previous secret-id".into());
        }
        Ok(())
    }

    fn remember(&mut self, user: &str, accessor: Option<String>, expires_at: Option<u64>) {
        let auth = self.opts.roster.vault.auth;
        self.state.users.insert(user.to_string(), UserState { auth, accessor, expires_at });
    }

    fn write_config(&self, dir: &AgentDir, user: &RosterUser, r: &mut UserReport) -> Result<(), String> {
        if dir.inspect(CONFIG_FILE).map_err(|e| e.to_string())?.is_some() {
            return Ok(());
        }
        if self.act(r, format!("write {}", dir.path().join(CONFIG_FILE).display())) {
            let text = user_config::render(&self.opts.roster.vault, user);
            dir.write(CONFIG_FILE, text.as_bytes(), 0o600).map_err(|e| e.to_string())?;
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
        let auth = self.opts.roster.vault.auth;
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
            if self.dry() {
                continue;
            }
            match dir.fix(f, 0o600) {
                Ok(fixed) => fixed.into_iter().for_each(|f| r.did(f)),
                Err(e) => return r.fail(e),
            }
        }
        if let Err(e) = self.write_config(&dir, user, &mut r) {
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
        match vault_ops::lookup_self(&as_user).await {
            Ok(info) => {
                self.check_identity(user, &info, "os_user", &user.name)?;
                let accessor = Some(info.accessor.clone());
                self.remember(&user.name, accessor, info.expires_at);
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
        let mount = self.opts.roster.vault.approle_mount.clone();
        let login = Vault::new(cfg).map_err(|e| Check::Failed(e.to_string()))?;
        let token = match vault_ops::approle_login(&login, &mount, &role_id, &secret_id).await {
            Ok(t) => t,
            Err(VaultError::Rejected { status: 400, .. } | VaultError::Denied { .. }) => {
                return Err(Check::NeedsAdmin("AppRole login refused: the secret-id or the role is gone".into()));
            }
            Err(e) => return Err(Check::Failed(e.to_string())),
        };
        let mut as_user = login;
        as_user.set_token(&token);
        let checked = match vault_ops::lookup_self(&as_user).await {
            Ok(info) => self
                .check_identity(user, &info, "role_name", &policy::name(&user.name))
                .map(|()| "AppRole login works".to_string()),
            Err(e) => Err(Check::Failed(e.to_string())),
        };
        // The check's own token is of no further use.
        let _ = vault_ops::revoke_self(&as_user).await;
        checked
    }

    fn check_identity(
        &self,
        user: &RosterUser,
        info: &vault_ops::TokenInfo,
        meta_key: &str,
        meta_want: &str,
    ) -> Result<(), Check> {
        let pname = policy::name(&user.name);
        if !info.policies.contains(&pname) {
            return Err(Check::NeedsAdmin(format!("drift: the credential lacks policy {pname}")));
        }
        if info.meta.get(meta_key).map(String::as_str) != Some(meta_want) {
            return Err(Check::NeedsAdmin(format!("drift: the credential's {meta_key} is not {meta_want}")));
        }
        Ok(())
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
            let st = self.state.users[&name].clone();
            let v = self.opts.roster.vault.clone();
            let e = |e: VaultError| e.to_string();
            let revoked: Result<(), String> = async {
                match (st.auth, &st.accessor) {
                    (AuthMode::Token, Some(a)) => {
                        if self.act(&mut r, "revoke the token".into()) {
                            vault_ops::revoke_accessor(&self.vault, a).await.map_err(e)?;
                        }
                    }
                    (AuthMode::Approle, _) => {
                        if self.act(&mut r, format!("delete AppRole role {}", policy::name(&name))) {
                            vault_ops::delete_role(&self.vault, &v.approle_mount, &policy::name(&name))
                                .await
                                .map_err(e)?;
                        }
                    }
                    (AuthMode::Token, None) => {}
                }
                if self.act(&mut r, format!("delete policy {} (the data is kept)", policy::name(&name))) {
                    vault_ops::delete_policy(&self.vault, &policy::name(&name)).await.map_err(e)?;
                }
                Ok(())
            }
            .await;
            if let Err(problem) = revoked {
                out.push(r.fail(problem));
                continue;
            }
            match systemd::disable(&name, self.dry()) {
                Ok(Timer::Done(what) | Timer::Unchanged(what)) => r.did(what),
                Ok(Timer::Skipped) => r.note("timer: skipped (systemd is not running)".into()),
                Err(err) => r.note(format!("timer: {err}")),
            }
            if let Ok(Some(os)) = OsUser::by_name(&name)
                && let Ok(Some(dir)) = AgentDir::open(&os, false)
            {
                for f in cred_files(st.auth) {
                    if dir.inspect(f).is_ok_and(|i| i.is_some())
                        && self.act(&mut r, format!("remove {}", dir.path().join(f).display()))
                    {
                        let _ = dir.remove(f);
                    }
                }
            }
            if !self.dry() {
                self.state.users.remove(&name);
            }
            out.push(r);
        }
        out
    }
}

enum Check {
    NeedsAdmin(String),
    Failed(String),
}
