//! The command line: parse arguments, load the config, call one entry point, map
//! the result to an exit code. Nothing else lives here: what a run does is in the
//! library ([`claude_auth_sync::run`], the provisioner's entry point).
//!
//! It must never print a secret: errors are the library's, which hold none.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use claude_auth_sync::config::{self, Config};
use claude_auth_sync::exit::ExitCode;
use claude_auth_sync::os_user::OsUser;
use claude_auth_sync::secret::Secret;
use claude_auth_sync::vault::auth::credential_file::{self, ModeCheck};
use claude_auth_sync::{provision, run, runtime};

#[derive(Parser)]
#[command(
    name = "claude-auth-sync",
    version,
    about = "Keeps your Claude Code login valid and recoverable through Vault/OpenBao",
    long_about = "Keeps your Claude Code login valid and recoverable through Vault/OpenBao.\n\n\
        Run per OS user from a systemd timer: authenticates to Vault with your own identity \
        (periodic token or AppRole) and renews it, proves the local Claude Code login with a \
        real inference call, backs it up to Vault, restores Vault's latest copy when the \
        login is rejected, and reports OK, DEGRADED or FAIL to a private log and journald.",
    after_help = "Examples:\n  \
        claude-auth-sync check-config\n  \
        claude-auth-sync run --once\n  \
        claude-auth-sync run --once --config /etc/claude-auth-sync/alice.hcl\n\n\
        Exit codes: 0 OK, 75 DEGRADED (transient, nobody paged), 1 FAIL (a person must act), \
        78 config error, 64 usage error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one cycle: authenticate, probe the login, back up or recover, report.
    #[command(
        after_help = "Examples:\n  claude-auth-sync run --once\n  CLAUDE_AUTH_SYNC_CONFIG=/tmp/test.hcl claude-auth-sync run --once"
    )]
    Run(RunArgs),
    /// As root: turn a roster into per-user Vault policies, credentials, configs and timers.
    #[command(
        after_help = "Without an admin token (VAULT_TOKEN, BAO_TOKEN or --admin-token-file) this is the routine \
        run: it checks every user with the user's own credential, fixes modes, owners and timers, and lists \
        the users that need an admin (exit 1 when there are any).\n\n\
        The admin token needs the policy in deploy/vault/provisioner-admin.hcl. Vault's address is the roster's \
        vault.address, else VAULT_ADDR, else BAO_ADDR. Children (systemctl) get none of this environment.\n\n\
        Examples:\n  \
        sudo --preserve-env=VAULT_ADDR,VAULT_TOKEN claude-auth-sync provision --roster /etc/claude-auth-sync/roster.yaml\n  \
        claude-auth-sync provision --roster /etc/claude-auth-sync/roster.yaml --admin-token-file /root/.vault-admin --rotate alice\n  \
        claude-auth-sync provision --roster /etc/claude-auth-sync/roster.yaml              # routine check\n  \
        claude-auth-sync provision --roster roster.yaml --dry-run --json"
    )]
    Provision {
        /// The roster (YAML): the Vault section and the users
        #[arg(long, value_name = "FILE")]
        roster: PathBuf,
        /// A file holding the admin token (else VAULT_TOKEN, else BAO_TOKEN)
        #[arg(long, value_name = "FILE")]
        admin_token_file: Option<PathBuf>,
        /// Mint a new credential for USER and revoke the old one (repeatable)
        #[arg(long, value_name = "USER")]
        rotate: Vec<String>,
        /// Revoke the credentials and disable the timers of users no longer in the roster
        #[arg(long)]
        prune: bool,
        /// Print the plan; change nothing
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
        /// Where the provisioner remembers credential accessors (no secrets)
        #[arg(long, value_name = "FILE", default_value = provision::DEFAULT_STATE)]
        state: PathBuf,
    },
    /// Print the Vault policy of one user, for operators who manage Vault with Terraform.
    #[command(
        after_help = "Examples:\n  claude-auth-sync policy --user alice\n  claude-auth-sync policy --user alice --roster /etc/claude-auth-sync/roster.yaml > alice.hcl"
    )]
    Policy {
        #[arg(long)]
        user: String,
        /// Take kv_mount and path_prefix from this roster
        #[arg(long, value_name = "FILE")]
        roster: Option<PathBuf>,
        #[arg(long, default_value = "secret")]
        kv_mount: String,
        #[arg(long, default_value = "workstation/claude-users")]
        path_prefix: String,
    },
    /// Validate the config, then print it interpolated, with defaults and secrets redacted.
    #[command(
        after_help = "Examples:\n  claude-auth-sync check-config\n  claude-auth-sync check-config --config ./config.hcl"
    )]
    CheckConfig(ConfigArg),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Run one cycle and exit (the systemd timer mode; the only mode so far).
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    config: ConfigArg,
}

#[derive(clap::Args)]
struct ConfigArg {
    /// The config file [default: ~/.config/claude-auth-sync/config.hcl]
    #[arg(long, value_name = "PATH", env = "CLAUDE_AUTH_SYNC_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code.into(),
        Err(e) => {
            eprintln!("claude-auth-sync: error: {e:#}");
            ExitCode::Fail.into()
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let user = OsUser::current().context("cannot tell which user this is")?;
    match cli.command {
        Command::Provision { roster, admin_token_file, rotate, prune, dry_run, json, state } => {
            provision(roster, admin_token_file, rotate, prune, dry_run, json, state)
        }
        Command::Policy { user, roster, kv_mount, path_prefix } => {
            if !provision::roster::valid_name(&user) {
                eprintln!("claude-auth-sync: --user must match ^[a-z_][a-z0-9_-]{{0,31}}$");
                return Ok(ExitCode::Usage);
            }
            let (mount, prefix) = match roster {
                Some(file) => match provision::roster::load_paths(&file) {
                    Ok(v) => (v.kv_mount, v.path_prefix),
                    Err(e) => {
                        eprintln!("claude-auth-sync: roster error: {e}");
                        return Ok(ExitCode::Config);
                    }
                },
                None => (kv_mount, path_prefix),
            };
            print!("{}", provision::policy::hcl(&mount, &prefix, &user));
            Ok(ExitCode::Ok)
        }
        Command::CheckConfig(config) => {
            let Some(cfg) = load(&config, &user) else { return Ok(ExitCode::Config) };
            print!("{}", cfg.to_hcl());
            Ok(ExitCode::Ok)
        }
        Command::Run(args) => {
            if !args.once {
                eprintln!(
                    "claude-auth-sync: run needs --once; the long-running mode is not built yet (use the systemd timer)"
                );
                return Ok(ExitCode::Usage);
            }
            let Some(cfg) = load(&args.config, &user) else { return Ok(ExitCode::Config) };
            Ok(run::once(&cfg)?)
        }
    }
}

fn provision(
    roster: PathBuf,
    admin_token_file: Option<PathBuf>,
    rotate: Vec<String>,
    prune: bool,
    dry_run: bool,
    json: bool,
    state: PathBuf,
) -> anyhow::Result<ExitCode> {
    if !rustix::process::geteuid().is_root() {
        eprintln!("claude-auth-sync: provision must run as root: it writes into users' homes");
        return Ok(ExitCode::NoPerm);
    }
    let roster = match provision::roster::load(&roster) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("claude-auth-sync: roster error: {e}; nothing was changed");
            return Ok(ExitCode::Config);
        }
    };
    let admin_token = match admin_token_file {
        Some(f) => Some(credential_file::read(&f, "admin token file", ModeCheck::OwnerOnly)?),
        None => std::env::var("VAULT_TOKEN")
            .or_else(|_| std::env::var("BAO_TOKEN"))
            .ok()
            .filter(|t| !t.is_empty())
            .map(Secret::new),
    };
    if admin_token.is_none() && (prune || !rotate.is_empty()) {
        eprintln!(
            "claude-auth-sync: --rotate and --prune need an admin token (VAULT_TOKEN, BAO_TOKEN or --admin-token-file)"
        );
        return Ok(ExitCode::Usage);
    }
    if let Some(unknown) = rotate.iter().find(|u| !roster.users.iter().any(|r| &r.name == *u)) {
        eprintln!("claude-auth-sync: --rotate {unknown}: not in the roster");
        return Ok(ExitCode::Usage);
    }
    let opts = provision::Options { roster, admin_token, rotate, prune, dry_run, state };
    let report = runtime::block_on(provision::run(&opts))
        .context("cannot start the async runtime")?
        .map_err(anyhow::Error::msg)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(report.exit_code())
}

/// Loads the config or prints why not; `None` means exit 78.
fn load(arg: &ConfigArg, user: &OsUser) -> Option<Config> {
    let path = arg.config.clone().unwrap_or_else(|| config::default_path(user));
    match config::load(&path, user, &|k| std::env::var(k).ok()) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("claude-auth-sync: config error: {e}");
            None
        }
    }
}
