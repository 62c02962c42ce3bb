//! The command line: parse arguments, load the config, call one entry point, map
//! the result to an exit code. Nothing else lives here: what a run does is in the
//! library ([`claude_auth_sync::run`], the provisioner's entry point).
//!
//! It must never print a secret: errors are the library's, which hold none.

use std::path::PathBuf;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};

use claude_auth_sync::config::{self, Config};
use claude_auth_sync::exit::ExitCode;
use claude_auth_sync::os_user::OsUser;
use claude_auth_sync::{cli_docs, provision, run};

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
    /// Run the agent: one cycle (--once), or resident, acting on every change of the file.
    #[command(
        after_help = "Examples:\n  claude-auth-sync run --once\n  claude-auth-sync run    (resident; see the claude-auth-sync-agent units)\n  CLAUDE_AUTH_SYNC_CONFIG=/tmp/test.hcl claude-auth-sync run --once"
    )]
    Run(RunArgs),
    Provision(provision::cli::ProvisionArgs),
    Policy(provision::cli::PolicyArgs),
    /// Validate the config, then print it interpolated, with defaults and secrets redacted.
    #[command(
        after_help = "Examples:\n  claude-auth-sync check-config\n  claude-auth-sync check-config --config ./config.hcl\n  \
            claude-auth-sync check-config --config ./config.hcl --print-as toml > config.toml"
    )]
    CheckConfig(CheckConfigArgs),
    /// Show the last run, the Vault token's time left, the login's expiry and Vault's copy; writes nothing.
    #[command(after_help = "Examples:\n  claude-auth-sync status\n  claude-auth-sync status --json\n\n\
        Reads the state file, the local files and, with the token the agent already holds, \
        Vault (lookup-self and the secret's latest version). It never logs in, renews or writes.\n\
        Exit codes: 0 everything read, 75 Vault unreachable (local facts still shown), \
        1 Vault could not be asked (no token kept yet, token refused, access denied), 78 config error.")]
    Status(StatusArgs),
    /// Print the shell completion script for bash, zsh or fish (also elvish, powershell).
    #[command(after_help = "Examples:\n  \
        claude-auth-sync completions bash > ~/.local/share/bash-completion/completions/claude-auth-sync\n  \
        claude-auth-sync completions zsh > ~/.zfunc/_claude-auth-sync\n  \
        claude-auth-sync completions fish > ~/.config/fish/completions/claude-auth-sync.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from this command line.
    #[command(
        after_help = "Examples:\n  claude-auth-sync man | man -l -\n  claude-auth-sync man | gzip -9 > claude-auth-sync.1.gz"
    )]
    Man,
}

#[derive(clap::Args)]
struct StatusArgs {
    /// Print one JSON object (stable keys, null when unknown) instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    config: ConfigArg,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Run one cycle and exit (the systemd timer mode). Without it the agent stays
    /// resident: it acts on every change of the credentials file at once, runs a full
    /// cycle every `resident.interval`, reloads its config on SIGHUP and stops on SIGTERM.
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    config: ConfigArg,
}

#[derive(clap::Args)]
struct CheckConfigArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Convert: print in this language, inline template contents included [default: the file's own, redacted]
    #[arg(long, value_name = "FORMAT", value_parser = ["hcl", "toml"])]
    print_as: Option<String>,
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
        Command::Provision(args) => Ok(provision::cli::provision(args)),
        Command::Policy(args) => Ok(provision::cli::policy(args)),
        Command::CheckConfig(args) => {
            let Some(cfg) = load(&args.config, &user) else { return Ok(ExitCode::Config) };
            let (format, contents) = match args.print_as.as_deref() {
                Some("toml") => (config::Format::Toml, config::Contents::Shown),
                Some(_) => (config::Format::Hcl, config::Contents::Shown),
                None => (config::Format::of(&cfg.file), config::Contents::Redacted),
            };
            if contents == config::Contents::Shown && cfg.has_inline_contents() {
                eprintln!(
                    "claude-auth-sync: note: inline template contents are printed as written (a conversion keeps them); keep the output as private as the config"
                );
            }
            print!("{}", cfg.print_as(format, contents));
            Ok(ExitCode::Ok)
        }
        Command::Status(args) => {
            let Some(cfg) = load(&args.config, &user) else { return Ok(ExitCode::Config) };
            Ok(claude_auth_sync::status::show(&cfg, args.json)?)
        }
        Command::Completions { shell } => {
            cli_docs::completions(shell, Cli::command(), &mut std::io::stdout()).context("cannot write the script")?;
            Ok(ExitCode::Ok)
        }
        Command::Man => {
            cli_docs::man(Cli::command(), &mut std::io::stdout().lock()).context("cannot write the man page")?;
            Ok(ExitCode::Ok)
        }
        Command::Run(args) => {
            let Some(cfg) = load(&args.config, &user) else { return Ok(ExitCode::Config) };
            if args.once {
                return Ok(run::once(&cfg)?);
            }
            let path = cfg.file.clone();
            Ok(run::resident(cfg, &|| config::load(&path, &user, &|k| std::env::var(k).ok()))?)
        }
    }
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
