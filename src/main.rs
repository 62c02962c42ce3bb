//! The command line: parse arguments, load the config, call one entry point, map
//! the result to an exit code. Nothing else lives here.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::Context;
use clap::{Parser, Subcommand};

use claude_auth_sync::config::{self, Config};
use claude_auth_sync::exit::ExitCode;
use claude_auth_sync::os_user::OsUser;
use claude_auth_sync::{cycle, provision, report, store};

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
    Run {
        /// Run one cycle and exit (the systemd timer mode; the only mode so far).
        #[arg(long)]
        once: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    Provision(provision::cli::ProvisionArgs),
    Policy(provision::cli::PolicyArgs),
    /// Validate the config, then print it interpolated, with defaults and secrets redacted.
    #[command(
        after_help = "Examples:\n  claude-auth-sync check-config\n  claude-auth-sync check-config --config ./config.hcl"
    )]
    CheckConfig {
        #[command(flatten)]
        config: ConfigArg,
    },
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
        Command::CheckConfig { config } => {
            let Some(cfg) = load(config.config, &user) else { return Ok(ExitCode::Config) };
            print!("{}", cfg.to_hcl());
            Ok(ExitCode::Ok)
        }
        Command::Run { once, config } => {
            if !once {
                eprintln!(
                    "claude-auth-sync: run needs --once; the long-running mode is not built yet (use the systemd timer)"
                );
                return Ok(ExitCode::Usage);
            }
            let Some(cfg) = load(config.config, &user) else { return Ok(ExitCode::Config) };
            init_logging(&cfg);
            run_once(&cfg)
        }
    }
}

/// Loads the config or prints why not; `None` means exit 78.
fn load(path: Option<PathBuf>, user: &OsUser) -> Option<Config> {
    let path = path.unwrap_or_else(|| config::default_path(user));
    match config::load(&path, user, &|k| std::env::var(k).ok()) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("claude-auth-sync: config error: {e}");
            None
        }
    }
}

fn init_logging(cfg: &Config) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    // Only this crate's events: vaultrs and reqwest trace request details.
    let filter = Targets::new().with_target("claude_auth_sync", cfg.log.level);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).event_format(Plain);
    tracing_subscriber::registry().with(fmt).with(filter).init();
}

/// `claude-auth-sync: warning: <message>`, the shape of every other line this tool prints.
struct Plain;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Plain
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut w: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            _ => "debug",
        };
        write!(w, "claude-auth-sync: {level}: ")?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

fn run_once(cfg: &Config) -> anyhow::Result<ExitCode> {
    // vaultrs is built without a default TLS provider; ring keeps builds small.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Some(pid_file) = &cfg.pid_file {
        store::atomic::replace(pid_file, format!("{}\n", std::process::id()).as_bytes(), 0o644)
            .context("cannot write pid_file")?;
    }
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let outcome = runtime.block_on(cycle::run_once(cfg, &|var| std::env::var_os(var).is_some()));
    let now = SystemTime::now();
    let outcome = report::state::record(outcome, &cfg.log.state_file, &cfg.degraded, now);
    report::emit(&outcome, &cfg.log, &cfg.user.name, now);
    if let Some(pid_file) = &cfg.pid_file {
        let _ = std::fs::remove_file(pid_file);
    }
    Ok(outcome.exit_code())
}
