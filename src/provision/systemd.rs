//! The user's timer, `claude-auth-sync@<user>.timer`, through systemctl: whether
//! systemd runs, whether the timer is enabled, enabling and disabling it. Where systemd
//! is not running (containers, CI) the flows report each step as skipped, not failed.
//! It knows nothing of dry runs: a flow that only plans never calls `enable` or `disable`.
//!
//! systemctl is run by its absolute path with an empty environment (but a fixed
//! `PATH`): no `PATH` entry can stand in for it, and the admin's `VAULT_TOKEN`, like
//! anything else in the provisioner's environment, never reaches a child.

use std::path::Path;
use std::process::Command;

pub fn unit(user: &str) -> String {
    format!("claude-auth-sync@{user}.timer")
}

/// sd_booted(3): systemd is the running init.
pub fn running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// systemctl could not be found, run, or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error("systemd is running but systemctl is in none of {}", SYSTEMCTL.join(", "))]
    NoSystemctl,
    #[error("cannot run {bin}: {error}")]
    Spawn { bin: &'static str, error: std::io::Error },
    #[error("systemctl {args} failed: {stderr}")]
    Failed { args: String, stderr: String },
}

pub fn is_enabled(unit: &str) -> bool {
    systemctl(&["is-enabled", "--quiet", unit]).is_ok()
}

/// Enables and starts the unit.
pub fn enable(unit: &str) -> Result<(), SystemdError> {
    systemctl(&["enable", "--now", unit])
}

/// Disables and stops the unit.
pub fn disable(unit: &str) -> Result<(), SystemdError> {
    systemctl(&["disable", "--now", unit])
}

/// Where Debian (merged /usr or not) and every other distribution put it.
const SYSTEMCTL: [&str; 2] = ["/usr/bin/systemctl", "/bin/systemctl"];

fn systemctl(args: &[&str]) -> Result<(), SystemdError> {
    let bin = SYSTEMCTL.into_iter().find(|p| Path::new(p).is_file()).ok_or(SystemdError::NoSystemctl)?;
    let out = Command::new(bin)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .map_err(|error| SystemdError::Spawn { bin, error })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SystemdError::Failed { args: args.join(" "), stderr: String::from_utf8_lossy(&out.stderr).trim().into() })
    }
}
