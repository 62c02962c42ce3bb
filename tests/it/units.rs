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

/// The figures of every service, as the table between the markers of docs/reliability.md.
fn security_table() -> String {
    let mut rows = String::new();
    for (file, user) in [
        ("claude-auth-sync@.service", false),
        ("user/claude-auth-sync.service", true),
        ("claude-auth-provision.service", false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let staged = stage(&[file], dir.path(), "alice");
        let (figure, rating) = exposure(&staged[0], user, dir.path());
        assert!(matches!(rating.as_str(), "SAFE" | "OK"), "{file}: {figure} {rating}");
        rows.push_str(&format!("| `systemd/{file}` | {figure:.1} {rating} |\n"));
    }
    format!("| unit | `systemd-analyze security --offline` (systemd 252) |\n|---|---|\n{rows}")
}

#[test]
fn every_service_is_rated_ok_or_better_and_the_docs_say_how_exposed() {
    let table = security_table();
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reliability.md")).unwrap();
    let recorded = docs
        .split_once("<!-- security:begin -->\n")
        .and_then(|(_, rest)| rest.split_once("<!-- security:end -->"))
        .map(|(t, _)| t)
        .expect("docs/reliability.md has a security:begin/end table");
    assert_eq!(recorded, table, "docs/reliability.md's exposure table is stale; the current one:\n{table}");
}

/// `key=` lines of a unit, in order.
fn values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines().filter_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('='))).collect()
}

#[test]
fn the_units_say_what_the_product_needs() {
    let service = unit_text("claude-auth-sync@.service");
    for want in [
        "Type=oneshot",
        "User=%i",
        "ExecStart=/usr/local/bin/claude-auth-sync run --once",
        "SyslogIdentifier=claude-auth-sync",
        "SuccessExitStatus=75",
        "UnsetEnvironment=CLAUDE_CODE_OAUTH_TOKEN ANTHROPIC_API_KEY ANTHROPIC_AUTH_TOKEN",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        "PrivateTmp=yes",
        "MemoryDenyWriteExecute=yes",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        // The private log's directory, made as the user before the sandbox exists.
        "ExecStartPre=-+/usr/sbin/runuser -u %i -- /usr/bin/mkdir -p -m 0700 /home/%i/.local/state/claude-auth-sync",
    ] {
        assert!(service.contains(want), "claude-auth-sync@.service lacks {want}");
    }
    let user = unit_text("user/claude-auth-sync.service");
    assert!(user.contains("ExecStartPre=-+/usr/bin/mkdir -p -m 0700 %h/.local/state/claude-auth-sync"));
    for (name, text, home) in [("claude-auth-sync@.service", &service, "/home/%i"), ("user", &user, "%h")] {
        // Every writable path may be missing: a missing one must never be a 226/NAMESPACE.
        let paths: Vec<&str> = values(text, "ReadWritePaths").iter().flat_map(|v| v.split_whitespace()).collect();
        let mut want: Vec<String> =
            [".claude", ".claude.json", ".config/claude-auth-sync", ".local/state/claude-auth-sync"]
                .iter()
                .map(|p| format!("-{home}/{p}"))
                .collect();
        // node_exporter's textfile directory, where `telemetry { textfile }` points.
        want.push("-/var/lib/node_exporter/textfile".into());
        assert_eq!(paths, want, "{name}: ReadWritePaths=");
        // The system-call filter: @system-service without @privileged and @resources,
        // nothing allowed back, and a denied call fails instead of killing the probe.
        assert_eq!(values(text, "SystemCallFilter"), ["@system-service", "~@privileged @resources"], "{name}");
        assert_eq!(values(text, "SystemCallErrorNumber"), ["EPERM"], "{name}");
    }

    // Every 6 hours on the calendar, so that Persistent= catches up after downtime
    // (systemd honours it only with OnCalendar=), spread over a fixed delay per unit.
    for (name, period) in [
        ("claude-auth-sync@.timer", "*-*-* 00/6:00:00"),
        ("user/claude-auth-sync.timer", "*-*-* 00/6:00:00"),
        ("claude-auth-provision.timer", "hourly"),
    ] {
        let timer = unit_text(name);
        assert_eq!(values(&timer, "OnCalendar"), [period], "{name}");
        assert_eq!(values(&timer, "Persistent"), ["true"], "{name}");
        assert_eq!(values(&timer, "FixedRandomDelay"), ["true"], "{name}");
        assert_eq!(values(&timer, "RandomizedDelaySec").len(), 1, "{name}");
        for monotonic in ["OnBootSec", "OnUnitActiveSec", "OnActiveSec", "OnStartupSec"] {
            assert!(values(&timer, monotonic).is_empty(), "{name}: {monotonic}= makes Persistent= do nothing");
        }
        assert!(timer.contains("WantedBy=timers.target"), "{name}");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = analyze(&["calendar", "--iterations=5", "*-*-* 00/6:00:00"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    let hours: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("UTC") || l.contains("Iter") || l.contains("Next elapse"))
        .filter_map(|l| l.split_whitespace().find(|w| w.len() == 8 && w.as_bytes()[2] == b':'))
        .collect();
    assert_eq!(hours.len(), 5, "{text}");
    let mut seen: Vec<&str> = hours.clone();
    seen.sort();
    seen.dedup();
    assert!(seen.iter().all(|h| ["00:00:00", "06:00:00", "12:00:00", "18:00:00"].contains(h)), "{text}");

    let provision = unit_text("claude-auth-provision.service");
    assert!(provision.contains("provision --roster") && provision.contains("UnsetEnvironment=VAULT_TOKEN BAO_TOKEN"));
    // The polkit rule: the caller's own instance, start and restart only (systemd.rs
    // proves what polkitd makes of it).
    let rule = unit_text("polkit/10-claude-auth-sync.rules");
    for want in [
        "action.id === \"org.freedesktop.systemd1.manage-units\"",
        "action.lookup(\"unit\") === \"claude-auth-sync@\" + subject.user + \".service\"",
        "action.lookup(\"verb\") === \"start\" || action.lookup(\"verb\") === \"restart\"",
    ] {
        assert!(rule.contains(want), "the polkit rule lacks {want}");
    }
}
