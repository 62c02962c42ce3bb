//! The Debian package as `scripts/package.sh` builds it (the test runs the script once,
//! a release build): unpacked with `dpkg-deb -x` into a scratch root, it holds exactly
//! the files the repository says it should (every unit of systemd/ and systemd/user/,
//! everything under docs/, the alert rules...), with their modes; its units name
//! /usr/bin, every command they run exists, and `systemd-analyze verify` accepts them;
//! its maintainer scripts reload systemd only when it runs and never enable or start
//! anything.
//!
//! `systemd-analyze verify` checks that each ExecStart= program exists on the running
//! system, where /usr/bin/claude-auth-sync is not installed: it runs in a private mount
//! namespace (`unshare --mount`, as root) whose /usr/bin is a read-only overlay of the
//! scratch root's /usr/bin over the host's, so nothing outside that namespace changes.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{BIN, ok, run};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const DOC: &str = "usr/share/doc/claude-auth-sync";

/// Runs scripts/package.sh once for the whole test binary; the .deb's path.
pub fn package() -> PathBuf {
    static DEB: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = DEB.get_or_init(|| {
        // The environment an operator's shell has, not cargo test's (its CARGO_* variables
        // would make the release build differ from one run by hand, and redo it).
        let mut cmd = Command::new(Path::new(REPO).join("scripts/package.sh"));
        cmd.current_dir(REPO).env_clear();
        for keep in ["PATH", "HOME", "CARGO_HOME", "RUSTUP_HOME", "CARGO_TARGET_DIR", "TMPDIR", "LANG"] {
            if let Some(v) = std::env::var_os(keep) {
                cmd.env(keep, v);
            }
        }
        let out = run(&mut cmd, "bash");
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "scripts/package.sh: {}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let deb = stdout.lines().last().map(|l| Path::new(REPO).join(l.trim())).unwrap_or_default();
        if deb.extension().is_some_and(|e| e == "deb") && deb.is_file() {
            Ok(deb)
        } else {
            Err(format!("scripts/package.sh did not print the path of a .deb: {stdout}"))
        }
    });
    built.clone().unwrap_or_else(|e| panic!("{e}"))
}

/// `dpkg-deb -x` of the package into a fresh scratch root.
pub fn unpack(deb: &Path) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    ok(&run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(root.path()), "dpkg"), "dpkg-deb -x");
    root
}

/// Every regular file under `root`, relative, with its mode.
fn files(root: &Path) -> BTreeMap<String, u32> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, u32>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                walk(root, &e.path(), out);
            } else {
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, meta.permissions().mode() & 0o7777);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The unit files of a directory of the repository (not its subdirectories).
fn unit_sources(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(Path::new(REPO).join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| [".service", ".timer", ".socket", ".path", ".target"].iter().any(|s| n.ends_with(s)))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "{dir} has unit files");
    names
}

/// What the package must hold, from the repository: (path, mode).
fn expected() -> BTreeMap<String, u32> {
    let mut want = BTreeMap::from([("usr/bin/claude-auth-sync".to_string(), 0o755)]);
    let mut add = |p: String| want.insert(p, 0o644);
    for u in unit_sources("systemd") {
        add(format!("lib/systemd/system/{u}"));
    }
    for u in unit_sources("systemd/user") {
        add(format!("usr/lib/systemd/user/{u}"));
    }
    add("usr/share/polkit-1/rules.d/10-claude-auth-sync.rules".into());
    add("usr/share/bash-completion/completions/claude-auth-sync".into());
    add("usr/share/zsh/vendor-completions/_claude-auth-sync".into());
    add("usr/share/fish/vendor_completions.d/claude-auth-sync.fish".into());
    add("usr/share/man/man1/claude-auth-sync.1.gz".into());
    for f in ["README.md", "copyright", "config.hcl.example", "vault/provisioner-admin.hcl"] {
        add(format!("{DOC}/{f}"));
    }
    for f in files(&Path::new(REPO).join("docs")).into_keys() {
        add(format!("{DOC}/{f}"));
    }
    for f in files(&Path::new(REPO).join("deploy/alerting")).into_keys() {
        add(format!("{DOC}/alerting/{f}"));
    }
    want
}

/// The program a unit's Exec*= line runs (its `-+!@:` prefixes dropped).
fn program(line: &str) -> &str {
    let value = line.split_once('=').unwrap().1;
    value.trim_start_matches(['-', '+', '!', '@', ':']).split_whitespace().next().unwrap()
}

fn exec_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("ExecStart") || l.starts_with("ExecStop")).collect()
}

#[test]
fn the_package_holds_the_binary_units_completions_man_page_docs_and_rules() {
    let root = unpack(&package());
    let r = root.path();
    assert_eq!(files(r), expected(), "the package's files and modes");
    let version = ok(&run(Command::new(r.join("usr/bin/claude-auth-sync")).arg("--version"), "dpkg"), "--version");
    assert_eq!(version.trim(), format!("claude-auth-sync {}", env!("CARGO_PKG_VERSION")));

    // The units: the repository's, with the binary where the package puts it.
    for (dir, to) in [("systemd", "lib/systemd/system"), ("systemd/user", "usr/lib/systemd/user")] {
        for u in unit_sources(dir) {
            let source = std::fs::read_to_string(Path::new(REPO).join(dir).join(&u)).unwrap();
            let packaged = std::fs::read_to_string(r.join(to).join(&u)).unwrap();
            assert!(!packaged.contains("/usr/local/bin/"), "{to}/{u} still names /usr/local/bin");
            assert_eq!(packaged, source.replace("/usr/local/bin/claude-auth-sync", "/usr/bin/claude-auth-sync"), "{u}");
            for line in exec_lines(&packaged) {
                let prog = program(line);
                let inside = r.join(prog.trim_start_matches('/'));
                assert!(
                    inside.exists() || Path::new(prog).exists(),
                    "{to}/{u}: {prog} is neither packaged nor on the system"
                );
            }
        }
    }
    let service = std::fs::read_to_string(r.join("lib/systemd/system/claude-auth-sync@.service")).unwrap();
    assert!(service.contains("\nExecStart=/usr/bin/claude-auth-sync run"), "{service}");

    // Completions and the man page are the binary's own output (tests/it/package/docs.rs
    // checks that output).
    for (path, args) in [
        ("usr/share/bash-completion/completions/claude-auth-sync", &["completions", "bash"][..]),
        ("usr/share/zsh/vendor-completions/_claude-auth-sync", &["completions", "zsh"]),
        ("usr/share/fish/vendor_completions.d/claude-auth-sync.fish", &["completions", "fish"]),
    ] {
        let generated = ok(&run(Command::new(BIN).args(args), "claude-auth-sync"), path);
        assert_eq!(std::fs::read_to_string(r.join(path)).unwrap(), generated, "{path}");
    }
    let man = ok(
        &run(Command::new("gzip").arg("-dc").arg(r.join("usr/share/man/man1/claude-auth-sync.1.gz")), "gzip"),
        "gunzip",
    );
    assert_eq!(man, ok(&run(Command::new(BIN).arg("man"), "claude-auth-sync"), "man"), "the packaged man page");
}

/// The maintainer scripts' lines that are not comments.
fn code(script: &str) -> String {
    script.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join("\n")
}

/// Whether `script`'s code (comments aside) has `word` as a word.
fn has_word(script: &str, word: &str) -> bool {
    code(script).split(|c: char| !(c.is_alphanumeric() || c == '-')).any(|w| w == word)
}

const NEVER: &[&str] = &[
    "enable",
    "reenable",
    "start",
    "restart",
    "try-restart",
    "--now",
    "preset",
    "deb-systemd-invoke",
    "deb-systemd-helper",
];

#[test]
fn the_maintainer_scripts_reload_a_running_systemd_and_never_enable_or_start_anything() {
    let deb = package();
    let info = ok(&run(Command::new("dpkg-deb").arg("-I").arg(&deb), "dpkg"), "dpkg-deb -I");
    let control = tempfile::tempdir().unwrap();
    ok(&run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(control.path()), "dpkg"), "dpkg-deb -e");
    for name in ["postinst", "prerm", "postrm"] {
        assert!(info.lines().any(|l| l.split_whitespace().any(|w| w == name)), "dpkg-deb -I lists {name}:\n{info}");
        let path = control.path().join(name);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o755, "{name}'s mode");
        let text = std::fs::read_to_string(&path).unwrap();
        ok(&run(Command::new("sh").arg("-n").arg(&path), "dash"), name);
        for never in NEVER {
            assert!(!has_word(&text, never), "{name} runs `{never}`:\n{text}");
        }
        if text.contains("systemctl") {
            assert!(
                code(&text).contains("[ -d /run/systemd/system ]"),
                "{name} calls systemctl only when systemd runs"
            );
        }
    }
    for name in ["postinst", "postrm"] {
        let text = std::fs::read_to_string(control.path().join(name)).unwrap();
        assert!(code(&text).contains("systemctl daemon-reload"), "{name} reloads systemd:\n{text}");
    }
    // The check can fail: an `enable` or `--now` is found, in code only.
    let script = "#!/bin/sh\n# enable nothing\nsystemctl enable --now x.timer\n";
    assert!(has_word(script, "enable") && has_word(script, "--now") && !has_word("# start\n", "start"));
}

fn verify(root: &Path, dir: &Path, user: bool, units: &[String]) -> std::process::Output {
    let script = r#"mount -t overlay overlay -o "ro,lowerdir=$1/usr/bin:/usr/bin" /usr/bin && shift && cd "$0" && exec systemd-analyze verify --man=no "$@""#;
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", script]).arg(dir).arg(root);
    if user {
        cmd.arg("--user");
    }
    cmd.args(units).env("XDG_RUNTIME_DIR", dir);
    run(&mut cmd, "util-linux systemd")
}

/// The units of `from` copied into a fresh directory, templates with instance `alice`.
fn instances(from: &Path) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for e in std::fs::read_dir(from).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().replace("@.", "@alice.");
        std::fs::copy(from.join(name.replace("@alice.", "@.")), dir.path().join(&name)).unwrap();
        names.push(format!("./{name}"));
    }
    names.sort();
    (dir, names)
}

#[test]
fn systemd_analyze_verify_accepts_the_packaged_units() {
    assert!(rustix::process::geteuid().is_root(), "the private mount namespace needs root (CI runs as root)");
    let root = unpack(&package());
    for (units, user) in [("lib/systemd/system", false), ("usr/lib/systemd/user", true)] {
        let (dir, names) = instances(&root.path().join(units));
        let out = verify(root.path(), dir.path(), user, &names);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "systemd-analyze verify {units}: {text}");
    }
    // The check can fail: a unit whose program is missing is refused.
    let (dir, _) = instances(&root.path().join("lib/systemd/system"));
    let unit = dir.path().join("claude-auth-provision.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    std::fs::write(&unit, text.replace("/usr/bin/claude-auth-sync", "/usr/bin/claude-auth-sync-missing")).unwrap();
    let out = verify(root.path(), dir.path(), false, &["./claude-auth-provision.service".to_string()]);
    assert!(!out.status.success(), "verify refuses a missing program");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("claude-auth-sync-missing"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
