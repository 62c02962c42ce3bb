//! The systemd units: `systemd-analyze verify` accepts them (system and user manager),
//! and `systemd-analyze security` rates the per-user service "OK" or better.
//! A missing systemd-analyze fails with the command that installs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const UNITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd");

fn analyze(args: &[&str], dir: &Path) -> Output {
    let out = Command::new("systemd-analyze").args(args).current_dir(dir).env("XDG_RUNTIME_DIR", dir).output();
    out.unwrap_or_else(|e| {
        panic!("systemd-analyze cannot run ({e}); install it with: apt-get install --no-install-recommends systemd")
    })
}

/// The units copied into `dir`, with ExecStart= pointing at the binary under test
/// (verify checks that the command exists); `instance` is filled into template names.
fn stage(files: &[&str], dir: &Path, instance: &str) -> Vec<String> {
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(Path::new(UNITS).join(f)).unwrap();
            let text = text.replace("/usr/local/bin/claude-auth-sync", env!("CARGO_BIN_EXE_claude-auth-sync"));
            let name = Path::new(f).file_name().unwrap().to_str().unwrap().replace("@.", &format!("@{instance}."));
            std::fs::write(dir.join(&name), text).unwrap();
            format!("./{name}")
        })
        .collect()
}

fn unit_text(f: &str) -> String {
    std::fs::read_to_string(PathBuf::from(UNITS).join(f)).unwrap()
}

#[test]
fn the_system_units_verify() {
    let dir = tempfile::tempdir().unwrap();
    let units = stage(
        &[
            "claude-auth-sync@.service",
            "claude-auth-sync@.timer",
            "claude-auth-provision.service",
            "claude-auth-provision.timer",
        ],
        dir.path(),
        "alice",
    );
    let mut args = vec!["verify", "--man=no"];
    args.extend(units.iter().map(String::as_str));
    let out = analyze(&args, dir.path());
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_user_units_verify() {
    let dir = tempfile::tempdir().unwrap();
    let units = stage(&["user/claude-auth-sync.service", "user/claude-auth-sync.timer"], dir.path(), "");
    let mut args = vec!["verify", "--user", "--man=no"];
    args.extend(units.iter().map(String::as_str));
    let out = analyze(&args, dir.path());
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// The figure `systemd-analyze security --offline` gives, and its rating.
fn exposure(unit: &str, user: bool, dir: &Path) -> (f64, String) {
    let mut args = vec!["security", "--offline=true"];
    if user {
        args.push("--user");
    }
    args.push(unit);
    let out = analyze(&args, dir);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_else(|| panic!("{text}"));
    let tail = line.rsplit(':').next().unwrap().trim();
    let mut parts = tail.split_whitespace();
    let figure = parts.next().unwrap().parse().unwrap();
    (figure, parts.next().unwrap().to_string())
}

#[test]
fn the_per_user_service_is_rated_ok_or_better() {
    let dir = tempfile::tempdir().unwrap();
    let system = stage(&["claude-auth-sync@.service"], dir.path(), "alice");
    let (figure, rating) = exposure(&system[0], false, dir.path());
    assert!(matches!(rating.as_str(), "SAFE" | "OK"), "claude-auth-sync@.service: {figure} {rating}");
    let user = stage(&["user/claude-auth-sync.service"], dir.path(), "");
    let (figure, rating) = exposure(&user[0], true, dir.path());
    assert!(matches!(rating.as_str(), "SAFE" | "OK"), "user/claude-auth-sync.service: {figure} {rating}");
}

#[test]
fn the_units_say_what_the_product_needs() {
    let service = unit_text("claude-auth-sync@.service");
    for want in [
        "Type=oneshot",
        "User=%i",
        "ExecStart=/usr/local/bin/claude-auth-sync run --once",
        "SyslogIdentifier=claude-auth-sync",
        "UnsetEnvironment=CLAUDE_CODE_OAUTH_TOKEN ANTHROPIC_API_KEY ANTHROPIC_AUTH_TOKEN",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/home/%i/.claude /home/%i/.config/claude-auth-sync /home/%i/.local/state/claude-auth-sync",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=",
        "SystemCallFilter=",
    ] {
        assert!(service.contains(want), "claude-auth-sync@.service lacks {want}");
    }
    let timer = unit_text("claude-auth-sync@.timer");
    for want in ["OnUnitActiveSec=6h", "RandomizedDelaySec=", "Persistent=true", "WantedBy=timers.target"] {
        assert!(timer.contains(want), "claude-auth-sync@.timer lacks {want}");
    }
    let provision = unit_text("claude-auth-provision.service");
    assert!(provision.contains("provision --roster") && provision.contains("UnsetEnvironment=VAULT_TOKEN BAO_TOKEN"));
    assert!(unit_text("claude-auth-provision.timer").contains("OnUnitActiveSec=1h"));
}
