//! The runbook, literally, where the product is deployed: a real systemd (the
//! machine's own, booted as PID 1 in private namespaces by common::machine), the units
//! of systemd/ installed exactly as shipped (plus a test-only drop-in that sets only the
//! mock API's, the proxy's and the test CA's environment and turns telemetry off), the
//! provisioner, throwaway OS users, a real OpenBao, and the pinned Claude Code CLI as
//! the probe inside the hardened unit, against the mocks of common::claude::real.
//!
//! Every command an operator or a user types is one of docs/runbook.md's, checked to be
//! there word for word (with `alice` for the user). The journal it leaves is exported
//! (`journalctl -o json`) and fed to the alert rules of deploy/alerting/. Where systemd
//! cannot boot, the test fails with the reason; it never passes by skipping.
//! [`deb`] installs the Debian package instead, and runs its unit.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::common::agent::report::Report;
use crate::common::alerting;
use crate::common::bao::Bao;
use crate::common::claude::real::{RealCli, claude_bin, issue};
use crate::common::claude::stand_in::{HOUR_MS, blanked, now_ms, oauth};
use crate::common::files::{mode_of, uid_of};
use crate::common::machine::{Machine, Out};
use crate::common::secrets::{assert_no_leaks, rand64, random_secret, secret};
use crate::common::users::TestUser;
use serde_json::{Value, json};

mod deb;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const RUNBOOK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/runbook.md");
/// Where the test puts what the units must read, inside the machine (a private tmpfs).
const TEST_LIB: &str = "/usr/local/lib/claude-auth-sync-test";
const PROVISION: &str = "sudo --preserve-env=VAULT_ADDR claude-auth-sync provision --roster /etc/claude-auth-sync/roster.yaml --admin-token-file ~/.vault-token";
/// The recipe this product's runbook replaces: sudo logs the values it preserves.
const LEAKY_RECIPE: &str =
    "sudo --preserve-env=VAULT_ADDR,VAULT_TOKEN claude-auth-sync provision --roster /etc/claude-auth-sync/roster.yaml";
/// The admin's home inside the machine, where `vault login` would leave ~/.vault-token.
const ADMIN_HOME: &str = "/run/claude-auth-sync-test-admin";

/// A runbook command, as docs/runbook.md writes it for `alice`, for `user`.
fn runbook(cmd: &str, user: &str) -> String {
    let text = std::fs::read_to_string(RUNBOOK).unwrap();
    assert!(text.contains(cmd), "docs/runbook.md no longer says `{cmd}`: the test and the runbook must agree");
    cmd.replace("alice", user)
}

/// The pinned CLI's npm prefix (bound read-only into the machine) and its binary inside it.
fn cli_prefix() -> (PathBuf, PathBuf) {
    let bin = claude_bin().canonicalize().unwrap();
    let prefix = bin.ancestors().find(|a| a.file_name().is_some_and(|n| n == "node_modules")).unwrap();
    let prefix = prefix.parent().unwrap().to_path_buf();
    let rel = bin.strip_prefix(&prefix).unwrap().to_path_buf();
    (prefix, rel)
}

/// A login as Claude Code writes it (only `user:inference`: no profile fetch).
fn login(access: &str, refresh: &str, expires_at: u64, hard_end: u64) -> Value {
    let mut l = oauth(access, refresh, expires_at);
    l["scopes"] = json!(["user:inference"]);
    l["refreshTokenExpiresAt"] = json!(hard_end);
    l
}

struct Station<'b> {
    m: Machine,
    cli: RealCli,
    bao: &'b Bao,
}

impl Station<'_> {
    /// `claude auth login --claudeai --sso --email ...`, replaced by writing the login as
    /// the user, beside an mcpOAuth entry that must survive every write.
    fn log_in(&self, u: &TestUser, obj: &Value) {
        let doc =
            json!({ "claudeAiOauth": obj, "mcpOAuth": { "linear|abc": { "accessToken": random_secret("mcp-") } } });
        self.m
            .sh_as_input(
                &u.name,
                u.uid,
                "umask 077 && mkdir -p .claude && cat > .claude/.credentials.json",
                doc.to_string().as_bytes(),
            )
            .ok("writing the login as the user");
    }

    fn creds(&self, u: &TestUser) -> Value {
        serde_json::from_slice(&std::fs::read(u.home.join(".claude/.credentials.json")).unwrap()).unwrap()
    }

    fn start(&self, u: &TestUser) -> Out {
        self.fresh_start_limit(u);
        self.m.sh(&runbook("systemctl start claude-auth-sync@alice.service", &u.name))
    }

    /// The test starts a unit more often than systemd's start limit (5 in 10 s) allows.
    fn fresh_start_limit(&self, u: &TestUser) {
        self.m.sh(&format!("systemctl reset-failed claude-auth-sync@{}.service", u.name)).ok("reset-failed");
    }

    /// `systemctl show` properties of the user's service.
    fn show(&self, u: &TestUser) -> (String, String) {
        let out = self
            .m
            .sh(&format!("systemctl show -p ExecMainStatus -p Result claude-auth-sync@{}.service", u.name))
            .ok("systemctl show");
        let prop =
            |k: &str| out.stdout.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).unwrap_or_default().to_string();
        (prop("ExecMainStatus"), prop("Result"))
    }

    /// The user's report lines in the machine's journal (all of it: the machine is this
    /// test's, and a run across midnight must not lose lines to `--since today`).
    fn lines(&self, u: &TestUser) -> Vec<Report> {
        // --sync: every entry sent before it is in the journal when it returns.
        let out = self.m.sh("journalctl --sync && journalctl -t claude-auth-sync --no-pager -o cat").ok("journalctl");
        assert_no_leaks("journalctl -t claude-auth-sync", &out.stdout);
        // The unit's stderr (warnings) is there too, under the same identifier.
        let reports = out.stdout.lines().filter(|l| l.starts_with("ts=")).map(Report::of);
        reports.filter(|r| r.user() == u.name).collect()
    }

    fn last_line(&self, u: &TestUser) -> Report {
        self.lines(u).pop().unwrap_or_else(|| panic!("no report line for {} in the journal", u.name))
    }

    fn sync_log(&self, u: &TestUser) -> String {
        let text = std::fs::read_to_string(u.home.join(".local/state/claude-auth-sync/sync.log")).unwrap_or_default();
        assert_no_leaks("sync.log", &text);
        text
    }

    /// Runs the service; asserts the unit's result, the exit status and the report line.
    fn sync(&self, u: &TestUser, exit: &str, status: &str, reason: Option<&str>) -> Report {
        let before = self.lines(u).len();
        let out = self.start(u);
        assert_no_leaks("systemctl start", &out.all());
        let (code, result) = self.show(u);
        let lines = self.lines(u);
        if lines.len() != before + 1 {
            let unit = self.m.sh(&format!("journalctl -u claude-auth-sync@{}.service -n 30 --no-pager", u.name));
            panic!("one journal line per run (no duplicate from stderr): {lines:#?}\n{}", unit.stdout);
        }
        let line = lines.last().unwrap().clone();
        assert_eq!(code, exit, "ExecMainStatus of {}'s run: {line}\n{}", u.name, out.all());
        assert_eq!(result, if exit == "1" { "exit-code" } else { "success" }, "{line}");
        assert_eq!(out.code == 0, exit != "1", "systemctl start's exit: {}", out.all());
        assert_eq!((line.status(), line.user()), (status, u.name.as_str()), "{line}");
        assert_eq!(line.reason(), reason, "{line}");
        assert!(self.sync_log(u).lines().last() == Some(line.line()), "sync.log ends with the journal's line");
        line
    }

    fn vault_latest(&self, u: &TestUser) -> Option<(u64, Value)> {
        self.bao.kv_latest(&u.name)
    }

    /// The provisioner as root with the admin token in ~/.vault-token, as the runbook
    /// runs it (`extra`: more flags).
    fn provision(&self, extra: &str, user: &str) -> Out {
        self.m.write(&format!("{ADMIN_HOME}/.vault-token"), &self.bao.root, 0o600);
        let cmd = runbook(&format!("{PROVISION}{extra}"), user);
        self.m
            .command("sh")
            .args(["-c", &cmd])
            .env("HOME", ADMIN_HOME)
            .env("VAULT_ADDR", &self.bao.addr)
            .output()
            .unwrap()
            .into()
    }
}

fn test_mocks_dropin(cli: &RealCli) -> String {
    format!(
        "# Test only: the mock Messages API, the proxy that intercepts the token endpoint, its CA.\n\
         [Service]\n\
         Environment=ANTHROPIC_BASE_URL={}\n\
         Environment=HTTPS_PROXY={} NO_PROXY=127.0.0.1,localhost\n\
         Environment=NODE_EXTRA_CA_CERTS={TEST_LIB}/test-ca.pem\n\
         Environment=DISABLE_TELEMETRY=1 DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1\n",
        cli.api_url, cli.proxy_url
    )
}

/// Host state the machine must not change, taken before it boots.
struct HostBefore {
    canaries: Vec<(PathBuf, String)>,
    absent: Vec<PathBuf>,
    dev: Vec<String>,
}

impl Drop for HostBefore {
    fn drop(&mut self) {
        for (p, _) in &self.canaries {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn dev_entries() -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir("/dev").unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

impl HostBefore {
    fn take(users: &[&TestUser]) -> HostBefore {
        let canaries = ["/tmp", "/var/tmp"]
            .iter()
            .map(|d| {
                // One per test: two machine tests of this process may run at once.
                let p = Path::new(d).join(format!("claude-auth-sync-canary-{}-{:016x}", std::process::id(), rand64()));
                let text = random_secret("canary-");
                std::fs::write(&p, &text).unwrap();
                (p, text)
            })
            .collect();
        let mut absent: Vec<PathBuf> = [
            "/etc/claude-auth-sync",
            "/var/lib/claude-auth-sync",
            "/usr/local/bin/claude-auth-sync",
            "/usr/local/bin/claude",
            "/usr/bin/claude-auth-sync",
            "/usr/lib/systemd/system/claude-auth-sync@.service",
            "/var/lib/dpkg/info/claude-auth-sync.list",
            "/etc/systemd/system/claude-auth-sync@.service",
            "/etc/polkit-1/rules.d/10-claude-auth-sync.rules",
            "/etc/.updated",
            "/var/.updated",
        ]
        .iter()
        .map(PathBuf::from)
        .filter(|p| !p.exists())
        .collect();
        absent.extend(users.iter().map(|u| Path::new("/var/lib/systemd/linger").join(&u.name)));
        HostBefore { canaries, absent, dev: dev_entries() }
    }

    /// Nothing the machine did is left on the host.
    fn check(&self) {
        for (p, text) in &self.canaries {
            assert_eq!(std::fs::read_to_string(p).ok().as_ref(), Some(text), "{} was wiped", p.display());
        }
        for p in &self.absent {
            assert!(!p.exists(), "{} appeared on the host", p.display());
        }
        assert_eq!(dev_entries(), self.dev, "the host's /dev changed");
    }
}

#[test]
fn the_runbook_under_a_real_systemd_with_the_real_cli() {
    let bao = Bao::start();
    let cli_dir = tempfile::tempdir().unwrap();
    let cli = RealCli::start(cli_dir.path());
    let (prefix, _) = cli_prefix();
    // Users first: the machine reads /etc/passwd through an overlay made at boot.
    let (alice, bob, carol) = (TestUser::new(), TestUser::new(), TestUser::new());
    let host = HostBefore::take(&[&alice, &bob, &carol]);
    let hostname = format!("cas-ws-{}", &random_secret("host-")[5..13]);
    let exported = {
        let m = Machine::boot(&hostname, &[(&prefix, "claude-code")]);
        let ws = Station { m, cli, bao: &bao };
        walk_the_runbook(&ws, &alice, &bob, &carol);
        let journal = ws.m.journal();
        let text: String = journal.iter().map(|e| format!("{e}\n")).collect();
        assert_no_leaks("the whole journal (journalctl -o json)", &text);
        let all = ws.m.sh("journalctl -t claude-auth-sync --no-pager");
        assert_no_leaks("journalctl -t claude-auth-sync", &all.all());
        eprintln!("--- journalctl -t claude-auth-sync\n{}", all.stdout);
        journal
    };
    check_the_alerts(&exported, &hostname, &alice, &bob, &carol);
    let names: Vec<String> = [&alice, &bob, &carol].iter().map(|u| u.name.clone()).collect();
    drop((alice, bob, carol));
    for n in names {
        assert!(!std::process::Command::new("id").arg(&n).output().unwrap().status.success(), "user {n} left behind");
        assert!(!Path::new("/home").join(&n).exists(), "/home/{n} left behind");
    }
    host.check();
}

fn walk_the_runbook(ws: &Station, alice: &TestUser, bob: &TestUser, carol: &TestUser) {
    let m = &ws.m;
    let (_, rel) = cli_prefix();

    // ---- Install, as the runbook says (the debug build stands in for the release one).
    let install = [
        runbook("install -m 0755 target/release/claude-auth-sync /usr/local/bin/", "")
            .replace("target/release/claude-auth-sync", env!("CARGO_BIN_EXE_claude-auth-sync")),
        runbook(
            "install -m 0644 systemd/claude-auth-sync@.service systemd/claude-auth-sync@.timer \\\n               systemd/claude-auth-provision.service systemd/claude-auth-provision.timer /etc/systemd/system/",
            "",
        ),
        runbook("install -m 0644 systemd/polkit/10-claude-auth-sync.rules /etc/polkit-1/rules.d/", ""),
        runbook("install -d -m 0700 /etc/claude-auth-sync", ""),
        runbook("systemctl daemon-reload", ""),
        runbook("systemctl enable --now claude-auth-provision.timer", ""),
    ];
    m.sh(&format!("cd {REPO} && {}", install.join(" && "))).ok("the runbook's install");
    // Test only: the pinned CLI where a system service's PATH finds it, the mocks' CA and
    // environment, and the user units where a user can read them.
    m.sh(&format!(
        "ln -s /usr/local/lib/claude-code/{} /usr/local/bin/claude && mkdir -p {TEST_LIB} && cp -r {REPO}/systemd {TEST_LIB}/ && chmod -R a+rX {TEST_LIB}",
        rel.display()
    ))
    .ok("the CLI link");
    m.write(&format!("{TEST_LIB}/test-ca.pem"), &std::fs::read_to_string(&ws.cli.ca_file).unwrap(), 0o644);
    m.write("/etc/systemd/system/claude-auth-sync@.service.d/test-mocks.conf", &test_mocks_dropin(&ws.cli), 0o644);
    m.sh("systemctl daemon-reload").ok("daemon-reload");

    // The exposure of the units as installed, by the running systemd.
    for unit in [format!("claude-auth-sync@{}.service", alice.name), "claude-auth-provision.service".into()] {
        let out = m.sh(&format!("systemd-analyze security --no-pager {unit}"));
        let overall = out.stdout.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_default().to_string();
        assert!(overall.contains(" OK") || overall.contains(" SAFE"), "{unit}: {}", out.all());
        eprintln!("--- systemd-analyze security {unit}: {overall}");
    }

    // ---- The roster, and the provisioner with an admin token.
    let mut roster = format!("vault:\n  address: {}\n  auth: token\n  token_period: 32d\nusers:\n", ws.bao.addr);
    for u in [alice, bob, carol] {
        roster.push_str(&format!("  - name: {}\n    email: {}@example.com\n", u.name, u.name));
    }
    m.write("/etc/claude-auth-sync/roster.yaml", &roster, 0o600);
    // The recipe this runbook replaces puts the admin token into the journal: sudo logs
    // every variable it preserves, value included. Shown with a decoy token.
    let decoy = format!("decoy-admin-token-{}", std::process::id());
    m.command("sh")
        .args(["-c", &format!("{} --dry-run", runbook(LEAKY_RECIPE, ""))])
        .env("VAULT_ADDR", &ws.bao.addr)
        .env("VAULT_TOKEN", &decoy)
        .output()
        .unwrap();
    let sudo_log = m.sh("journalctl --sync && journalctl -t sudo -o cat").ok("journalctl -t sudo");
    assert!(
        sudo_log.stdout.contains(&format!("VAULT_TOKEN={decoy}")),
        "sudo logs preserved values: {}",
        sudo_log.stdout
    );
    // The runbook's way: the token stays in a file only root and the admin read.
    let out = ws.provision("", "");
    assert_eq!(out.code, 0, "provision: {}", out.all());
    assert_no_leaks("provision", &out.all());
    for u in [alice, bob, carol] {
        secret(std::fs::read_to_string(u.file("vault-token")).unwrap());
    }
    let timers = m.sh(&runbook("systemctl list-timers 'claude-auth-sync@*'", "")).ok("list-timers");
    for u in [alice, bob, carol] {
        assert!(timers.stdout.contains(&format!("claude-auth-sync@{}.timer", u.name)), "{}", timers.stdout);
    }
    eprintln!("--- systemctl list-timers 'claude-auth-sync@*'\n{}", timers.stdout);
    // From here on the test starts every run itself: a timer that fires meanwhile (the
    // test may span 00:00, 06:00, ...) would add a run it did not ask for.
    m.sh("systemctl stop claude-auth-provision.timer 'claude-auth-sync@*.timer'").ok("stop the timers");

    // ---- A user who has not logged in yet: a clear FAIL in the journal and sync.log, no 226.
    let line = ws.sync(bob, "1", "FAIL", Some("login_required"));
    assert!(line.msg().contains("not logged in"), "{line}");
    let state_dir = bob.home.join(".local/state/claude-auth-sync");
    assert_eq!(
        (mode_of(&state_dir), uid_of(&state_dir)),
        (0o700, bob.uid),
        "the unit made the log's directory, as bob"
    );
    eprintln!("--- a user who has not logged in:\n{line}");

    // ---- The user logs in, starts the first sync, checks it.
    let (a1, r1) = issue(&ws.cli.backend, "alice");
    let first = login(&a1, &r1, now_ms() + 8 * HOUR_MS, now_ms() + 20 * 86_400_000);
    ws.log_in(alice, &first);
    let line = ws.sync(alice, "0", "OK", None);
    assert_eq!(line.action(), Some("backed_up"), "{line}");
    let status = m.sh(&runbook("systemctl status claude-auth-sync@alice.service", &alice.name));
    // The unit's result. Its report line is read from the journal below, by identifier:
    // `systemctl status` shows a line only when journald could tie it to the unit's
    // cgroup, which it cannot always do for a process that has already exited.
    assert!(status.stdout.contains("status=0/SUCCESS"), "{}", status.stdout);
    assert_no_leaks("systemctl status", &status.all());
    eprintln!("--- systemctl status claude-auth-sync@<user>.service\n{}", status.stdout);
    let today = m.sh(&runbook("journalctl -t claude-auth-sync --since today", "")).ok("journalctl");
    assert_no_leaks("journalctl -t claude-auth-sync --since today", &today.all());
    // journalctl's lines: `DATE HOST claude-auth-sync[PID]: ts=...`.
    let shown: Vec<Report> =
        today.stdout.lines().filter_map(|l| l.find(" ts=").map(|i| Report::of(&l[i + 1..]))).collect();
    assert!(shown.iter().any(|r| (r.status(), r.user()) == ("OK", alice.name.as_str())), "{}", today.stdout);
    assert_same!(ws.vault_latest(alice).unwrap().1["claudeAiOauth"], first, "Vault holds the login");
    let meta = std::process::Command::new(std::env::var("BAO_BIN").unwrap_or_else(|_| "bao".into()))
        .args(runbook("vault kv metadata get secret/workstation/claude-users/alice", &alice.name).split(' ').skip(1))
        .env("VAULT_ADDR", &ws.bao.addr)
        .env("VAULT_TOKEN", &ws.bao.root)
        .output()
        .unwrap();
    let meta = String::from_utf8_lossy(&meta.stdout).into_owned();
    assert!(meta.contains("refresh_token_sha256_prefix") && meta.contains("current_version"), "{meta}");
    assert_no_leaks("vault kv metadata get", &meta);

    // ---- An expired access token: the real CLI refreshes it inside the hardened unit;
    // the agent backs up the rotated object.
    let (a2, r2) = issue(&ws.cli.backend, "expired");
    ws.log_in(alice, &login(&a2, &r2, now_ms() - HOUR_MS, now_ms() + 20 * 86_400_000));
    let refreshes = ws.cli.backend.refreshes.load(std::sync::atomic::Ordering::SeqCst);
    let line = ws.sync(alice, "0", "OK", None);
    assert_eq!(
        ws.cli.backend.refreshes.load(std::sync::atomic::Ordering::SeqCst),
        refreshes + 1,
        "the CLI refreshed: {line}"
    );
    let (new_access, new_refresh) = ws.cli.backend.last_issued.lock().unwrap().clone().unwrap();
    let local = ws.creds(alice);
    assert_same!(local["claudeAiOauth"]["refreshToken"], new_refresh.as_str(), "the rotated login is on disk");
    assert_same!(local["claudeAiOauth"]["accessToken"], new_access.as_str());
    assert!(local["mcpOAuth"].is_object(), "mcpOAuth survived");
    assert_same!(
        ws.vault_latest(alice).unwrap().1["claudeAiOauth"],
        local["claudeAiOauth"],
        "Vault's latest is the rotated object"
    );

    // ---- A blanked file (what a refused refresh leaves): the unit restores Vault's copy.
    ws.log_in(alice, &blanked());
    let line = ws.sync(alice, "0", "OK", None);
    assert_eq!(line.action(), Some("recovered"), "{line}");
    assert_same!(ws.creds(alice)["claudeAiOauth"]["refreshToken"], new_refresh.as_str(), "restored");

    // ---- A revoked Vault token: FAIL; the routine provisioner run names the user; the
    // admin rotates; the user starts the sync again themselves (polkit).
    ws.bao.revoke(&std::fs::read_to_string(alice.file("vault-token")).unwrap());
    ws.sync(alice, "1", "FAIL", Some("vault_token_invalid"));
    let routine = m.sh("systemctl start claude-auth-provision.service");
    assert_ne!(routine.code, 0, "the routine run fails while a user needs an admin");
    let plog = m
        .sh(&format!("journalctl --sync && {}", runbook("journalctl -t claude-auth-provision -n 20", "")))
        .ok("journalctl");
    assert!(plog.stdout.contains(&format!("{}: credential revoked", alice.name)), "{}", plog.stdout);
    assert!(!plog.stdout.contains(&format!("{}: credential", bob.name)), "{}", plog.stdout);
    assert_no_leaks("the provisioner's journal", &plog.stdout);
    let out = ws.provision(" --rotate alice", &alice.name);
    assert_eq!(out.code, 0, "provision --rotate: {}", out.all());
    secret(std::fs::read_to_string(alice.file("vault-token")).unwrap());
    let before = ws.lines(alice).len();
    ws.fresh_start_limit(alice);
    let own = m.sh_as(&alice.name, alice.uid, &runbook("systemctl start claude-auth-sync@$(id -un).service", ""));
    assert_eq!(own.code, 0, "a user starts their own sync: {}", own.all());
    assert_eq!(ws.lines(alice).len(), before + 1);
    assert_eq!(ws.last_line(alice).status(), "OK", "{}", ws.last_line(alice));
    m.sh("systemctl start claude-auth-provision.service").ok("the routine provisioner run, all users fine");

    // ---- Polkit allows exactly that: bob logs in and starts his own; not alice's, and he
    // cannot stop his timer.
    let (b1, rb1) = issue(&ws.cli.backend, "bob");
    ws.log_in(bob, &login(&b1, &rb1, now_ms() + 8 * HOUR_MS, now_ms() + 20 * 86_400_000));
    ws.fresh_start_limit(bob);
    let own = m.sh_as(&bob.name, bob.uid, &runbook("systemctl start claude-auth-sync@$(id -un).service", ""));
    assert_eq!(own.code, 0, "{}", own.all());
    assert_eq!(ws.last_line(bob).status(), "OK", "{}", ws.last_line(bob));
    let before = ws.lines(alice).len();
    for denied in [
        format!("systemctl start claude-auth-sync@{}.service", alice.name),
        format!("systemctl stop claude-auth-sync@{}.timer", bob.name),
    ] {
        let out = m.sh_as(&bob.name, bob.uid, &denied);
        assert_ne!(out.code, 0, "bob may not `{denied}`");
        assert!(
            out.stderr.contains("Access denied") || out.stderr.contains("authentication required"),
            "{}",
            out.all()
        );
    }
    assert_eq!(ws.lines(alice).len(), before, "alice's sync was not started by bob");

    // ---- The `systemctl --user` variant, with linger: the first sync.
    let unit_dir = carol.home.join(".config/systemd/user/claude-auth-sync.service.d");
    let (c1, rc1) = issue(&ws.cli.backend, "carol");
    // Her login ends in two days: the relogin warning.
    ws.log_in(carol, &login(&c1, &rc1, now_ms() + 8 * HOUR_MS, now_ms() + 2 * 86_400_000));
    m.sh(&runbook("loginctl enable-linger alice", &carol.name)).ok("enable-linger");
    m.sh(&format!("systemctl start user@{}.service", carol.uid)).ok("the user manager");
    let setup = [
        format!("cd {TEST_LIB}"),
        runbook("mkdir -p ~/.config/systemd/user && cp systemd/user/* ~/.config/systemd/user/", ""),
    ];
    m.sh_as(&carol.name, carol.uid, &setup.join(" && ")).ok("the user units");
    std::fs::create_dir_all(&unit_dir).unwrap();
    std::fs::write(unit_dir.join("test-mocks.conf"), test_mocks_dropin(&ws.cli)).unwrap();
    m.sh(&format!("chown -R {0}: {1}", carol.name, carol.home.join(".config/systemd").display())).ok("chown");
    let user_cmds = [
        runbook("systemctl --user daemon-reload && systemctl --user enable --now claude-auth-sync.timer", ""),
        runbook("systemctl --user start claude-auth-sync.service", ""),
    ];
    let out = m.sh_as(&carol.name, carol.uid, &user_cmds.join(" && "));
    assert_eq!(out.code, 0, "the user variant: {}", out.all());
    let line = ws.last_line(carol);
    assert!(
        (line.status(), line.action(), line.fact("warning")) == ("OK", Some("backed_up"), Some("relogin_due")),
        "{line}"
    );
    assert!(ws.sync_log(carol).contains(line.line()));
    let timers =
        m.sh_as(&carol.name, carol.uid, "systemctl --user list-timers claude-auth-sync.timer").ok("list-timers");
    assert!(timers.stdout.contains("claude-auth-sync.timer"), "{}", timers.stdout);
    m.sh_as(&carol.name, carol.uid, "systemctl --user stop claude-auth-sync.timer").ok("stop the user timer");
    assert_same!(ws.vault_latest(carol).unwrap().1["claudeAiOauth"]["refreshToken"], rc1.as_str());

    // ---- No silent failure: Vault stays away; after three DEGRADED runs the fourth is
    // a FAIL that names the cause and how long.
    ws.bao.stop();
    for _ in 0..3 {
        let line = ws.sync(alice, "75", "DEGRADED", Some("vault_unreachable"));
        assert_eq!(line.action(), Some("backup_pending"), "{line}");
    }
    let line = ws.sync(alice, "1", "FAIL", Some("degraded_persistent"));
    assert_eq!((line.fact("cause"), line.fact("degraded_runs")), (Some("vault_unreachable"), Some("4")), "{line}");
    assert!(line.keys().windows(3).any(|k| k == ["cause", "degraded_runs", "degraded_for"]), "{line}");
    let lines = ws.lines(alice);
    let last_four: Vec<&str> = lines[lines.len() - 4..].iter().map(Report::line).collect();
    eprintln!("--- four runs without Vault:\n{}", last_four.join("\n"));
    let state = std::fs::read_to_string(alice.home.join(".local/state/claude-auth-sync/state.json")).unwrap();
    assert_no_leaks("state.json", &state);
}

fn check_the_alerts(journal: &[Value], host: &str, alice: &TestUser, bob: &TestUser, carol: &TestUser) {
    let field = |e: &Value, k: &str| e[k].as_str().unwrap_or_default().to_string();
    let ours: Vec<&Value> = journal.iter().filter(|e| field(e, "SYSLOG_IDENTIFIER") == "claude-auth-sync").collect();
    let with_status = |s: &str| ours.iter().filter(|e| field(e, "CLAUDE_AUTH_SYNC_STATUS") == s).count();
    assert!(with_status("OK") >= 6 && with_status("DEGRADED") == 3 && with_status("FAIL") == 3, "the journal's mix");
    let mut want: Vec<(String, String)> = ours
        .iter()
        .filter(|e| field(e, "CLAUDE_AUTH_SYNC_STATUS") == "FAIL")
        .map(|e| (field(e, "__CURSOR"), field(e, "OS_USER")))
        .collect();
    want.sort();

    let exprs: Vec<String> = alerting::rules().into_iter().map(|r| r.expr).collect();
    let refs: Vec<&str> = exprs.iter().map(String::as_str).collect();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let ev = alerting::evaluate(&refs, journal, now);
    let i = |name: &str| alerting::rules().iter().position(|r| r.alert == name).unwrap();

    // The FAIL rule keeps exactly the FAIL lines, each labelled with the user it was for.
    let fail = &ev[i("WorkstationClaudeAuthInvalid")];
    let mut got: Vec<(String, String)> =
        fail.lines.iter().map(|(c, l)| (c.clone(), l["user"].as_str().unwrap_or_default().to_string())).collect();
    got.sort();
    assert_eq!(got, want, "the FAIL rule's lines are exactly the journal's FAIL lines, for their users");
    let mut series: Vec<(String, String, String)> = fail
        .series
        .iter()
        .map(|(l, _)| {
            (
                l["host"].as_str().unwrap().into(),
                l["user"].as_str().unwrap().into(),
                l["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    series.sort();
    let mut expect = vec![
        (host.to_string(), alice.name.clone(), "degraded_persistent".to_string()),
        (host.to_string(), alice.name.clone(), "vault_token_invalid".to_string()),
        (host.to_string(), bob.name.clone(), "login_required".to_string()),
    ];
    expect.sort();
    assert_eq!(series, expect, "WorkstationClaudeAuthInvalid fires for these (host, user, reason)");

    // Relogin due: carol only (her login ends in two days).
    let relogin = &ev[i("WorkstationClaudeReloginDue")];
    assert_eq!(relogin.series, [(json!({ "host": host, "user": carol.name }), 1.0)]);

    // Silent: nobody now; 13 hours later with no new line, every user.
    assert!(
        ev[i("WorkstationClaudeAuthSyncSilent")].series.is_empty(),
        "{:?}",
        ev[i("WorkstationClaudeAuthSyncSilent")].series
    );
    let later = alerting::evaluate(&refs, journal, now + 13 * HOUR_MS);
    let mut silent: Vec<String> = later[i("WorkstationClaudeAuthSyncSilent")]
        .series
        .iter()
        .map(|(l, _)| l["user"].as_str().unwrap().to_string())
        .collect();
    silent.sort();
    let mut all = vec![alice.name.clone(), bob.name.clone(), carol.name.clone()];
    all.sort();
    assert_eq!(silent, all, "13 h without a line: every user's agent is reported silent");
}

/// The resident agent as the shipped `Type=notify` system unit, under a real systemd
/// with the real CLI as the probe: `systemctl start` returns once READY=1 came, after
/// the first cycle (its report line is already in the journal); a refresh renamed over
/// the credentials while the unit runs reaches Vault with no timer; `systemctl reload`
/// runs a cycle with the config read again; `systemctl stop` ends it with exit 0.
#[test]
fn the_resident_unit_under_a_real_systemd() {
    let bao = Bao::start();
    let cli_dir = tempfile::tempdir().unwrap();
    let cli = RealCli::start(cli_dir.path());
    let (prefix, rel) = cli_prefix();
    let alice = TestUser::new();
    let host = HostBefore::take(&[&alice]);
    {
        let m = Machine::boot(&format!("cas-ws-{}", &random_secret("host-")[5..13]), &[(&prefix, "claude-code")]);
        let ws = Station { m, cli, bao: &bao };
        let m = &ws.m;
        let unit = format!("claude-auth-sync-agent@{}.service", alice.name);
        m.sh(&format!(
            "install -m 0755 {} /usr/local/bin/claude-auth-sync && install -m 0644 {REPO}/systemd/claude-auth-sync-agent@.service /etc/systemd/system/ \
             && ln -s /usr/local/lib/claude-code/{} /usr/local/bin/claude && mkdir -p {TEST_LIB}",
            env!("CARGO_BIN_EXE_claude-auth-sync"),
            rel.display()
        ))
        .ok("install the agent, its unit and the CLI");
        m.write(&format!("{TEST_LIB}/test-ca.pem"), &std::fs::read_to_string(&ws.cli.ca_file).unwrap(), 0o644);
        m.write(
            "/etc/systemd/system/claude-auth-sync-agent@.service.d/test-mocks.conf",
            &test_mocks_dropin(&ws.cli),
            0o644,
        );
        m.sh("systemctl daemon-reload").ok("daemon-reload");
        let security = m.sh(&format!("systemd-analyze security --no-pager {unit}"));
        let overall = security.stdout.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_default();
        assert!(overall.contains(" OK") || overall.contains(" SAFE"), "{unit}: {}", security.all());

        // What the provisioner leaves: the user's own token and config.
        let (token, _) = bao.user_token(&alice.name);
        let config = format!(
            "vault {{ address = \"{}\" }}\nauto_auth {{\n  method \"token_file\" {{\n    config = {{ token_file_path = \"~/.config/claude-auth-sync/vault-token\" }}\n  }}\n  expect {{\n    policies = [\"{}\"]\n    meta = {{ os_user = \"{}\" }}\n  }}\n}}\ntemplate {{ secret = \"secret/workstation/claude-users/${{user}}\" }}\n\
             # The refresh comes right after the first cycle's probe; by default it would wait for\n\
             # probe_min_interval (5m) to pass.\nresident {{ probe_min_interval = \"0s\" }}\n",
            bao.addr,
            crate::common::bao::user_policy_name(&alice.name),
            alice.name
        );
        for (file, text) in [("vault-token", token.as_str()), ("config.hcl", config.as_str())] {
            let script =
                format!("umask 077 && mkdir -p .config/claude-auth-sync && cat > .config/claude-auth-sync/{file}");
            m.sh_as_input(&alice.name, alice.uid, &script, text.as_bytes()).ok("the user's agent files");
        }
        let (a1, r1) = issue(&ws.cli.backend, "alice");
        let first = login(&a1, &r1, now_ms() + 8 * HOUR_MS, now_ms() + 20 * 86_400_000);
        ws.log_in(&alice, &first);

        let started = m.sh(&runbook("systemctl enable --now claude-auth-sync-agent@alice.service", &alice.name));
        assert_no_leaks("systemctl enable --now", &started.all());
        assert_eq!(started.code, 0, "{}", started.all());
        assert_eq!(m.sh(&format!("systemctl is-active {unit}")).stdout.trim(), "active");
        // READY=1 comes after the first cycle: its line is there when start returns.
        let line = ws.last_line(&alice);
        assert_eq!((line.status(), line.action(), line.fact("trigger")), ("OK", Some("backed_up"), Some("interval")));
        assert_same!(ws.vault_latest(&alice).unwrap().1["claudeAiOauth"], first);

        // Claude Code refreshes while the unit runs: temp file, rename.
        let (a2, r2) = issue(&ws.cli.backend, "refreshed");
        let second = login(&a2, &r2, now_ms() + 9 * HOUR_MS, now_ms() + 20 * 86_400_000);
        let mut doc = ws.creds(&alice);
        doc["claudeAiOauth"] = second.clone();
        let rename = "umask 077 && cat > .claude/.credentials.json.tmp.5e1f2a3b && mv .claude/.credentials.json.tmp.5e1f2a3b .claude/.credentials.json";
        m.sh_as_input(&alice.name, alice.uid, rename, doc.to_string().as_bytes()).ok("the refresh");
        // Waits on what the unit does (Vault's version, the journal), never on a clock.
        let wait = |what: &str, done: &dyn Fn() -> bool| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while !done() {
                if std::time::Instant::now() > deadline {
                    let unit_log = m.sh(&format!("journalctl -u {unit} --no-pager -n 50"));
                    panic!("{what} never happened: {:?}\n{}", ws.lines(&alice), unit_log.stdout);
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        };
        wait("the refresh reaching Vault", &|| ws.vault_latest(&alice).is_some_and(|(v, _)| v >= 2));
        assert_same!(ws.vault_latest(&alice).unwrap().1["claudeAiOauth"], second, "the refresh is Vault's latest");
        wait("the refresh's report line", &|| ws.last_line(&alice).fact("trigger") == Some("file_changed"));
        assert_eq!(ws.last_line(&alice).action(), Some("backed_up"));

        let reload = m.sh(&runbook("systemctl reload claude-auth-sync-agent@alice.service", &alice.name));
        assert_eq!(reload.code, 0, "{}", reload.all());
        wait("a cycle after the reload", &|| ws.last_line(&alice).fact("trigger") == Some("reload"));

        m.sh(&format!("systemctl stop {unit}")).ok("systemctl stop");
        let shown = m.sh(&format!("systemctl show -p Result -p ExecMainStatus {unit}")).ok("systemctl show");
        assert!(
            shown.stdout.contains("Result=success") && shown.stdout.contains("ExecMainStatus=0"),
            "{}",
            shown.stdout
        );
        m.sh(&format!("systemctl disable {unit}")).ok("systemctl disable");
        let journal = m.sh("journalctl --sync && journalctl --no-pager -o verbose");
        assert_no_leaks("the whole journal", &journal.all());
    }
    drop(alice);
    host.check();
}
