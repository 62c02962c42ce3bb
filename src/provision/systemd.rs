//! The user's timer, `claude-auth-sync@<user>.timer`, through systemctl. Where systemd
//! is not running (containers, CI) every step is reported as skipped, not failed.
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

/// What happened to a timer.
pub enum Timer {
    Done(String),
    Unchanged(String),
    Skipped,
}

pub fn enable(user: &str, dry_run: bool) -> Result<Timer, String> {
    let unit = unit(user);
    if !running() {
        return Ok(Timer::Skipped);
    }
    if systemctl(&["is-enabled", "--quiet", &unit]).is_ok() {
        return Ok(Timer::Unchanged(format!("{unit} enabled")));
    }
    if dry_run {
        return Ok(Timer::Done(format!("would enable {unit}")));
    }
    systemctl(&["enable", "--now", &unit]).map(|()| Timer::Done(format!("enabled {unit}")))
}

pub fn disable(user: &str, dry_run: bool) -> Result<Timer, String> {
    let unit = unit(user);
    if !running() {
        return Ok(Timer::Skipped);
    }
    if dry_run {
        return Ok(Timer::Done(format!("would disable {unit}")));
    }
    systemctl(&["disable", "--now", &unit]).map(|()| Timer::Done(format!("disabled {unit}")))
}

/// Where Debian (merged /usr or not) and every other distribution put it.
const SYSTEMCTL: [&str; 2] = ["/usr/bin/systemctl", "/bin/systemctl"];

fn systemctl(args: &[&str]) -> Result<(), String> {
    let bin = SYSTEMCTL
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .ok_or_else(|| format!("systemd is running but systemctl is in none of {}", SYSTEMCTL.join(", ")))?;
    let out = Command::new(bin)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .map_err(|e| format!("cannot run {bin}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("systemctl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}
