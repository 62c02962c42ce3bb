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

pub mod cli;
mod credentials;
pub mod home;
pub mod policy;
pub mod roster;
mod routine;
mod state;
pub mod summary;
mod systemd;
mod user_config;
mod vault_ops;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{Expect, Retry, VaultConfig};
use crate::os_user::OsUser;
use crate::secret::Secret;
use crate::vault::{Vault, VaultError};
use home::{AgentDir, HomeError, IfMissing};
use roster::{AuthMode, Roster, RosterUser, VaultSection};
use state::{State, UserState};
use summary::{Change, Mode, Summary, UserStatus, UserSummary, Verb};
use vault_ops::OpsError;

pub const TOKEN_FILE: &str = "vault-token";
pub const ROLE_ID_FILE: &str = "role-id";
pub const SECRET_ID_FILE: &str = "secret-id";
/// The token of the agent's AppRole login, kept by the agent between runs.
pub const APPROLE_TOKEN_FILE: &str = "approle-token";
pub const CONFIG_FILE: &str = "config.hcl";
pub const DEFAULT_STATE: &str = "/var/lib/claude-auth-sync/provision-state.json";

/// What the timer step says where systemd is not the running init.
const TIMER_SKIPPED: &str = "timer: skipped (systemd is not running)";

pub struct Options {
    pub roster: Roster,
    pub admin_token: Option<Secret>,
    pub rotate: Vec<String>,
    pub prune: bool,
    pub dry_run: bool,
    pub state: PathBuf,
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
pub async fn run(opts: &Options) -> Result<Summary, String> {
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
    let state = State::load(&opts.state).map_err(|e| e.to_string())?;
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
        ctx.state.save(&opts.state).map_err(|e| e.to_string())?;
    }
    Ok(Summary {
        mode: if opts.admin_token.is_some() { Mode::Admin } else { Mode::Routine },
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

    /// Whether to make `change`: a dry run records "would <change>" and says no; a real
    /// run records it as made and says yes (the caller then makes it).
    fn act(&self, r: &mut UserSummary, change: Change) -> bool {
        if self.dry() {
            r.would(&change);
            return false;
        }
        r.done(&change);
        true
    }

    async fn admin_user(&mut self, user: &RosterUser) -> UserSummary {
        let mut r = UserSummary::new(&user.name);
        let auth = self.section().auth;
        // The home first: a hostile path aborts before Vault is touched.
        let missing = if self.dry() { IfMissing::Leave } else { IfMissing::Create };
        let dir = match AgentDir::open(&user.os, missing) {
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
        r: &mut UserSummary,
    ) -> Result<(), Failure> {
        let v = self.section().clone();
        let name = &user.name;
        let pname = policy::name(name);
        let want = policy::hcl(&v.kv_mount, &v.path_prefix, name);
        if vault_ops::policy(&self.vault, &pname).await?.as_deref() != Some(want.as_str())
            && self.act(r, Change::new(Verb::Write, format!("policy {pname}")))
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
    async fn version_settings(&self, user: &RosterUser, r: &mut UserSummary) -> Result<(), Failure> {
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
        let set = Change::new(
            Verb::Set,
            format!(
                "max_versions={}, delete_version_after={}s, cas_required={} on {}",
                want.max_versions,
                want.delete_version_after.as_secs(),
                want.cas_required,
                policy::secret(v, &user.name)
            ),
        );
        if self.act(r, set) {
            let metadata_version = have.map_or(0, |(_, version)| version);
            vault_ops::set_version_settings(&self.vault, &v.kv_mount, &path, want, metadata_version).await?;
        }
        Ok(())
    }

    fn remember(&mut self, user: &str, auth: AuthMode, accessor: Option<String>, expires_at: Option<u64>) {
        self.state.users.insert(user.to_string(), UserState { auth, accessor, expires_at });
    }

    /// Writes a missing `config.hcl`; with `switch`, rewrites the auth block of one
    /// that uses the other auth mode, keeping the rest of the user's file.
    fn write_config(&self, dir: &AgentDir, user: &RosterUser, switch: bool, r: &mut UserSummary) -> Result<(), String> {
        let path = dir.path().join(CONFIG_FILE);
        let Some(info) = dir.inspect(CONFIG_FILE).map_err(|e| e.to_string())? else {
            if self.act(r, Change::new(Verb::Write, path.display())) {
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
        let auth = self.section().auth.keyword();
        if let Some(new) = switched
            && self.act(r, Change::new(Verb::Rewrite, format!("the auth block of {} for auth: {auth}", path.display())))
        {
            dir.write(CONFIG_FILE, new.as_bytes(), info.mode).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn timer(&self, user: &RosterUser, r: &mut UserSummary) {
        let unit = systemd::unit(&user.name);
        let enable = Change::new(Verb::Enable, unit.clone());
        if !systemd::running() {
            r.note(TIMER_SKIPPED.into());
        } else if systemd::is_enabled(&unit) {
            r.note(format!("{unit} enabled"));
        } else if self.dry() {
            r.would(&enable);
        } else if let Err(e) = systemd::enable(&unit) {
            r.note(format!("timer: {e}"));
            r.status = UserStatus::Failed;
        } else {
            r.done(&enable);
        }
    }

    /// Users the state knows and the roster no longer lists: revoke, disable, forget.
    async fn prune(&mut self) -> Vec<UserSummary> {
        let gone: Vec<String> = self
            .state
            .users
            .keys()
            .filter(|u| !self.opts.roster.users.iter().any(|r| &r.name == *u))
            .cloned()
            .collect();
        let mut out = Vec::new();
        for name in gone {
            let mut r = UserSummary::new(&name);
            let dir = OsUser::by_name(&name)
                .ok()
                .flatten()
                .and_then(|os| AgentDir::open(&os, IfMissing::Leave).ok().flatten());
            let pname = policy::name(&name);
            let retired: Result<(), Failure> = async {
                // Each mode the user has been on: a user may have left right after a switch.
                if self.used(&name, dir.as_ref(), AuthMode::Token) {
                    self.retire_token(&name, dir.as_ref(), &mut r).await?;
                }
                if self.used(&name, dir.as_ref(), AuthMode::Approle) {
                    self.retire_approle(&name, dir.as_ref(), &mut r).await?;
                }
                if self.act(&mut r, Change::new(Verb::Delete, format!("policy {pname} (the data is kept)"))) {
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
            let unit = systemd::unit(&name);
            let disable = Change::new(Verb::Disable, unit.clone());
            if !systemd::running() {
                r.note(TIMER_SKIPPED.into());
            } else if self.dry() {
                r.would(&disable);
            } else if let Err(e) = systemd::disable(&unit) {
                r.note(format!("timer: {e}"));
            } else {
                r.done(&disable);
            }
            if !self.dry() {
                self.state.users.remove(&name);
            }
            out.push(r);
        }
        out
    }
}
