//! The provisioner's command line: the arguments of `provision` and `policy` (clap
//! `Args`, with their help) and one entry point each, which checks what the run needs
//! (root, the roster, the admin token, the flags that need it), runs, prints the
//! summary as text or JSON and returns the exit code.
//!
//! This is the provisioner's only edge: the one place in provision/ that turns an
//! error into a line on stderr. It never prints a secret: the admin token is read
//! here and handed to the run, nothing else.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use super::{DEFAULT_STATE, Options, roster};
use crate::exit::ExitCode;
use crate::runtime;
use crate::secret::Secret;
use crate::vault::auth::credential_file::{self, ModeCheck};

/// As root: turn a roster into per-user Vault policies, credentials, configs and timers.
#[derive(Debug, clap::Args)]
#[command(after_help = "Without an admin token (VAULT_TOKEN, BAO_TOKEN or --admin-token-file) this is the routine \
        run: it checks every user with the user's own credential, fixes modes, owners and timers, and lists \
        the users that need an admin (exit 1 when there are any).\n\n\
        The admin token needs the policy in deploy/vault/provisioner-admin.hcl. Vault's address is the roster's \
        vault.address, else VAULT_ADDR, else BAO_ADDR. Children (systemctl) get none of this environment.\n\n\
        Examples:\n  \
        sudo --preserve-env=VAULT_ADDR claude-auth-sync provision --roster /etc/claude-auth-sync/roster.yaml --admin-token-file ~/.vault-token\n  \
        claude-auth-sync provision --roster /etc/claude-auth-sync/roster.yaml --admin-token-file /root/.vault-admin --rotate alice\n  \
        claude-auth-sync provision --roster /etc/claude-auth-sync/roster.yaml              # routine check\n  \
        claude-auth-sync provision --roster roster.yaml --dry-run --json")]
pub struct ProvisionArgs {
    /// The roster (YAML): the Vault section and the users
    #[arg(long, value_name = "FILE")]
    pub roster: PathBuf,
    /// A file holding the admin token (else VAULT_TOKEN, else BAO_TOKEN)
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Mint a new credential for USER and revoke the old one (repeatable)
    #[arg(long, value_name = "USER")]
    pub rotate: Vec<String>,
    /// Revoke the credentials and disable the timers of users no longer in the roster
    #[arg(long)]
    pub prune: bool,
    /// Print the plan; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
    /// Where the provisioner remembers credential accessors (no secrets)
    #[arg(long, value_name = "FILE", default_value = DEFAULT_STATE)]
    pub state: PathBuf,
}

/// Print the Vault policy of one user, for operators who manage Vault with Terraform.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  claude-auth-sync policy --user alice\n  claude-auth-sync policy --user alice --roster /etc/claude-auth-sync/roster.yaml > alice.hcl"
)]
pub struct PolicyArgs {
    #[arg(long)]
    pub user: String,
    /// Take kv_mount and path_prefix from this roster
    #[arg(long, value_name = "FILE")]
    pub roster: Option<PathBuf>,
    #[arg(long, default_value = roster::DEFAULT_KV_MOUNT)]
    pub kv_mount: String,
    #[arg(long, default_value = roster::DEFAULT_PATH_PREFIX)]
    pub path_prefix: String,
}

/// `claude-auth-sync provision`: checks, runs the roster, prints the summary.
pub fn provision(args: ProvisionArgs) -> ExitCode {
    if !rustix::process::geteuid().is_root() {
        eprintln!("claude-auth-sync: provision must run as root: it writes into users' homes");
        return ExitCode::NoPerm;
    }
    let roster = match roster::load(&args.roster) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("claude-auth-sync: roster error: {e}; nothing was changed");
            return ExitCode::Config;
        }
    };
    let admin_token = match admin_token(args.admin_token_file.as_deref()) {
        Ok(t) => t,
        Err(e) => return error(e),
    };
    if admin_token.is_none() && (args.prune || !args.rotate.is_empty()) {
        eprintln!(
            "claude-auth-sync: --rotate and --prune need an admin token (VAULT_TOKEN, BAO_TOKEN or --admin-token-file)"
        );
        return ExitCode::Usage;
    }
    if let Some(unknown) = args.rotate.iter().find(|u| !roster.users.iter().any(|r| &r.name == *u)) {
        eprintln!("claude-auth-sync: --rotate {unknown}: not in the roster");
        return ExitCode::Usage;
    }
    let opts = Options {
        roster,
        admin_token,
        rotate: args.rotate,
        prune: args.prune,
        dry_run: args.dry_run,
        state: args.state,
    };
    let summary = match runtime::block_on(super::run(&opts)) {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return error(e),
        Err(e) => return error(format_args!("cannot start the async runtime: {e}")),
    };
    if args.json {
        match serde_json::to_string_pretty(&summary) {
            Ok(json) => println!("{json}"),
            Err(e) => return error(e),
        }
    } else {
        print!("{}", summary.text());
    }
    summary.exit_code()
}

/// `claude-auth-sync policy`: prints one user's policy.
pub fn policy(args: PolicyArgs) -> ExitCode {
    if !roster::valid_name(&args.user) {
        eprintln!("claude-auth-sync: --user must match ^[a-z_][a-z0-9_-]{{0,31}}$");
        return ExitCode::Usage;
    }
    let (mount, prefix, secrets) = match args.roster {
        Some(file) => match roster::load_paths(&file) {
            Ok(v) => {
                let secrets = v.secrets_of(&args.user);
                (v.kv_mount, v.path_prefix, secrets)
            }
            Err(e) => {
                eprintln!("claude-auth-sync: roster error: {e}");
                return ExitCode::Config;
            }
        },
        None => (args.kv_mount, args.path_prefix, Vec::new()),
    };
    print!("{}", super::policy::hcl(&mount, &prefix, &args.user, &secrets));
    ExitCode::Ok
}

/// The admin token: from `file` (private, one line), else VAULT_TOKEN, else BAO_TOKEN;
/// `None` for the routine run.
fn admin_token(file: Option<&Path>) -> Result<Option<Secret>, credential_file::CredentialError> {
    match file {
        Some(f) => credential_file::read(f, "admin token file", ModeCheck::OwnerOnly).map(Some),
        None => Ok(std::env::var("VAULT_TOKEN")
            .or_else(|_| std::env::var("BAO_TOKEN"))
            .ok()
            .filter(|t| !t.is_empty())
            .map(Secret::new)),
    }
}

/// Says why the run could not be done, on stderr; exit 1.
fn error(e: impl Display) -> ExitCode {
    eprintln!("claude-auth-sync: error: {e}");
    ExitCode::Fail
}
