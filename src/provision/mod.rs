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
//!
//! One file per flow: [`cli`] (the command line of `provision` and `policy`), [`admin`]
//! (the admin run, with `credentials` for each user's credential), [`routine`] (the
//! routine run), [`prune`] (users who left the roster) and [`summary`] (what a run did).
//! This file holds what they share: the run over the roster, the config file and the
//! timer; [`files`] names what each user's agent directory holds. A dry run changes nothing anywhere: every change asks [`Ctx::act`] (or, where
//! it is recorded only once made, `Ctx::dry`) first.

mod admin;
pub mod cli;
mod credentials;
pub mod error;
pub mod fake_homes;
pub mod files;
pub mod home;
pub mod policy;
mod prune;
pub mod roster;
mod routine;
mod state;
pub mod summary;
mod systemd;
mod user_config;
mod vault_ops;

use crate::config::{DEFAULT_VAULT_TIMEOUT, Expect, Retry, VaultConfig};
use crate::secret::Secret;
use crate::vault::Vault;
pub use error::ProvisionError;
use error::UserError;
use files::CONFIG_FILE;
use home::AgentDir;
use roster::{AuthMode, Roster, RosterUser, VaultSection};
use state::{State, UserState};
use std::io::IsTerminal;
use std::path::PathBuf;
use summary::{Change, Mode, Summary, UserStatus, UserSummary, Verb};
use user_config::SwitchError;

pub const DEFAULT_STATE: &str = "/var/lib/claude-auth-sync/provision-state.json";

/// What the timer step says where systemd is not the running init.
const TIMER_SKIPPED: &str = "timer: skipped (systemd is not running)";

/// One run, as the command line asked for it (checked: every `rotate` is in the roster,
/// and `rotate` or `prune` come with an admin token).
pub struct Options {
    pub roster: Roster,
    /// With it, the admin run; without, the routine run.
    pub admin_token: Option<Secret>,
    pub rotate: Vec<String>,
    pub prune: bool,
    pub dry_run: bool,
    pub state: PathBuf,
}

/// What to do with a `config.hcl` the user already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExistingConfig {
    /// It is the user's: leave it.
    Keep,
    /// Rewrite its auth block when it uses the other auth mode (the admin run).
    SwitchAuth,
}

/// One run's state, shared by its flows.
struct Ctx<'a> {
    opts: &'a Options,
    /// The client for every user's own checks.
    vault_config: VaultConfig,
    /// With the admin token, when there is one.
    vault: Vault,
    state: State,
    /// The AppRole mount was checked in this run.
    approle_ready: bool,
    stopped: Option<String>,
}

/// Runs the whole roster. An `Err` is a setup problem (Vault client, admin token, KV
/// mount, state file), found before anything is changed.
pub async fn run(opts: &Options) -> Result<Summary, ProvisionError> {
    let vault_config = vault_config(&opts.roster.vault);
    let mut vault = Vault::new(&vault_config).map_err(ProvisionError::Client)?;
    if let Some(t) = &opts.admin_token {
        vault.set_token(t);
        admin::preflight(&vault, &opts.roster.vault).await?;
    }
    let state = State::load(&opts.state)?;
    let mut ctx = Ctx { opts, vault_config, vault, state, approle_ready: false, stopped: None };
    let progress = std::io::stdout().is_terminal();
    let total = opts.roster.users.len();

    let mut users = Vec::with_capacity(total);
    for (i, user) in opts.roster.users.iter().enumerate() {
        if progress {
            println!("[{}/{total}] {}", i + 1, user.name);
        }
        let r = match opts.admin_token {
            Some(_) => ctx.admin_user(user).await,
            None => ctx.routine_user(user).await,
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
    Ok(Summary {
        mode: if opts.admin_token.is_some() { Mode::Admin } else { Mode::Routine },
        dry_run: opts.dry_run,
        users,
        pruned,
        stopped: ctx.stopped,
    })
}

/// The client settings for the roster's Vault (the agent's own defaults for the rest).
fn vault_config(v: &VaultSection) -> VaultConfig {
    VaultConfig {
        address: v.address.clone(),
        ca_cert: v.ca_cert.clone(),
        tls_skip_verify: false,
        allow_cleartext_tokens: v.allow_cleartext_tokens,
        timeout: DEFAULT_VAULT_TIMEOUT,
        retry: Retry::default(),
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

    fn remember(&mut self, user: &str, state: UserState) {
        self.state.users.insert(user.to_string(), state);
    }

    /// Writes a missing `config.hcl`; what happens to an existing one, `existing` says.
    fn write_config(
        &self,
        dir: &AgentDir,
        user: &RosterUser,
        existing: ExistingConfig,
        r: &mut UserSummary,
    ) -> Result<(), UserError> {
        let path = dir.path().join(CONFIG_FILE);
        let Some(info) = dir.inspect(CONFIG_FILE)? else {
            if self.act(r, Change::new(Verb::Write, path.display())) {
                let text = user_config::render(self.section(), user);
                dir.write(CONFIG_FILE, text.as_bytes(), 0o600)?;
            }
            return Ok(());
        };
        if existing == ExistingConfig::Keep {
            return Ok(());
        }
        let text = dir.read(CONFIG_FILE)?.unwrap_or_default();
        let unswitchable = |error: SwitchError| UserError::Unswitchable { path: path.clone(), error };
        let switched = user_config::switch_auth(&text, self.section(), user).map_err(unswitchable)?;
        let auth = self.section().auth.keyword();
        if let Some(new) = switched
            && self.act(r, Change::new(Verb::Rewrite, format!("the auth block of {} for auth: {auth}", path.display())))
        {
            dir.write(CONFIG_FILE, new.as_bytes(), info.mode)?;
        }
        Ok(())
    }

    /// Enables the user's timer unless it is; a failure fails the user but stops nothing.
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
}
