//! The resident agent (`claude-auth-sync run` without `--once`) against a real OpenBao
//! and the stand-in CLI: a login renamed over the file reaches Vault as a new version
//! with no timer involved; a blanked file is recovered at once, even inside the probe
//! interval, while a changed login waits for it; the Vault token stays alive across
//! several TTLs with one AppRole login for the process's life, and a token Vault no
//! longer renews is replaced by exactly one new login; systemd hears READY, WATCHDOG,
//! RELOADING and STOPPING; SIGHUP reloads a valid config and refuses an invalid one;
//! SIGTERM and SIGINT end it with exit 0, even in the middle of a hanging probe. Every
//! wait is on an event (Vault's version, a report line, a log line) with a generous
//! deadline; nothing asserts on speed. Every output is leak-checked.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::agent::report::Report;
use crate::common::agent::user::{Agent, Auth};
use crate::common::bao::{Bao, bao, user_policy_name};
use crate::common::claude::stand_in::{HOUR_MS, blanked, now_ms, oauth};
use crate::common::secrets::{access_token, assert_no_leaks, random_secret, refresh_token};

/// Long enough for any load this machine sees; the tests never wait this long when
/// the agent works.
const DEADLINE: Duration = Duration::from_secs(120);

/// Waits until `done` says so, looking every 50 ms; panics with `what` at the deadline.
pub(crate) fn wait_for<T>(what: &str, mut done: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = done() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A resident agent of one [`Agent`], its stderr in a file so a test can wait on it
/// (ha.rs starts them against a Raft cluster too).
pub(crate) struct Resident<'a, 'b> {
    s: &'a Agent<'b>,
    child: Option<Child>,
    stderr: PathBuf,
}

impl<'a, 'b> Resident<'a, 'b> {
    fn start(s: &'a Agent<'b>) -> Self {
        Self::start_with(s, &[])
    }

    pub(crate) fn start_with(s: &'a Agent<'b>, env: &[(&str, &str)]) -> Self {
        let stderr = s.dir.path().join("resident.stderr");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_claude-auth-sync"));
        cmd.args(["run", "--config", s.cfg.to_str().unwrap()]).env_clear();
        for key in ["PATH", "HOME", "LANG", "TMPDIR"] {
            if let Ok(v) = std::env::var(key) {
                cmd.env(key, v);
            }
        }
        cmd.envs(s.claude.env()).envs(env.iter().copied()).stdin(Stdio::null()).stdout(Stdio::null());
        cmd.stderr(File::create(&stderr).unwrap());
        Resident { s, child: Some(cmd.spawn().expect("start claude-auth-sync run")), stderr }
    }

    fn stderr(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        assert_no_leaks("the resident agent's stderr", &text);
        text
    }

    /// Report lines in `log`, parsed, leak-checked.
    pub(crate) fn lines_in(log: &std::path::Path) -> Vec<String> {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        assert_no_leaks("sync.log", &text);
        text.lines().map(String::from).collect()
    }

    /// Waits for the `n`-th report line of the agent's log and returns it.
    pub(crate) fn line(&self, n: usize) -> Report {
        self.line_in(&self.s.log(), n)
    }

    fn line_in(&self, log: &std::path::Path, n: usize) -> Report {
        let line = wait_for(&format!("report line {n} in {}", log.display()), || {
            self.assert_running();
            Self::lines_in(log).get(n - 1).cloned()
        });
        Report::of(&line)
    }

    fn wait_stderr(&self, what: &str) {
        wait_for(&format!("\"{what}\" on stderr"), || {
            self.assert_running();
            self.stderr().contains(what).then_some(())
        });
    }

    /// Waits until Vault's latest version is `version`; returns its data.
    fn vault_version(&self, version: u64) -> Value {
        wait_for(&format!("Vault version {version}"), || {
            self.assert_running();
            self.s.vault_copy().filter(|(v, _)| *v >= version)
        })
        .1
    }

    pub(crate) fn assert_running(&self) {
        let status = self.child.as_ref().map(|c| c.id()).map(|pid| unsafe { libc::kill(pid as i32, 0) });
        assert_eq!(status, Some(0), "the agent is gone; stderr:\n{}", self.stderr());
    }

    fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().unwrap().id() as i32;
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }

    /// Sends `sig` and waits for the exit; the exit code.
    pub(crate) fn stop_with(self, sig: i32) -> i32 {
        self.signal(sig);
        self.wait_exit()
    }

    /// Waits for the exit; the exit code.
    fn wait_exit(mut self) -> i32 {
        let mut child = self.child.take().unwrap();
        let status = wait_for("the agent to exit", || child.try_wait().unwrap());
        self.stderr();
        self.s.journal_entries();
        status.code().unwrap_or(-1)
    }
}

impl Drop for Resident<'_, '_> {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A login written as Claude Code writes it: a temp file renamed over the credentials.
fn rename_in(s: &Agent, login: &Value) {
    let mut doc = s.claude.read_doc();
    doc["claudeAiOauth"] = login.clone();
    let tmp = s.claude.creds().with_extension("json.tmp.1a2b3c4d");
    std::fs::write(&tmp, serde_json::to_vec(&doc).unwrap()).unwrap();
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::rename(&tmp, s.claude.creds()).unwrap();
}

/// A refresh as Claude Code makes it: new tokens (accepted by the stand-in), a later expiry.
fn refreshed(s: &Agent) -> Value {
    let (a, r) = (access_token(), refresh_token());
    s.claude.accept(&a, &r);
    oauth(&a, &r, now_ms() + 9 * HOUR_MS)
}

fn resident_agent<'b>(b: &'b Bao, probe_min_interval: &str) -> Agent<'b> {
    Agent::new(b).configure(|c| c.resident("probe_min_interval", probe_min_interval))
}

#[test]
fn a_refresh_renamed_over_the_file_reaches_vault_at_once_and_a_blanked_file_is_recovered() {
    let b = bao();
    let s = resident_agent(b, "0s");
    let (login, _) = s.good_login(now_ms() + 8 * HOUR_MS);
    let r = Resident::start(&s);

    let first = r.line(1);
    assert_eq!((first.status(), first.action(), first.fact("trigger")), ("OK", Some("backed_up"), Some("interval")));
    assert_eq!(first.fact("probes_today"), Some("1"), "{first}");
    assert_same!(r.vault_version(1)["claudeAiOauth"], login);

    // Claude Code refreshes: no timer runs for hours, the change alone drives the cycle.
    let new = refreshed(&s);
    rename_in(&s, &new);
    assert_same!(r.vault_version(2)["claudeAiOauth"], new, "the refreshed login is Vault's latest");
    let second = r.line(2);
    assert_eq!(
        (second.status(), second.action(), second.fact("trigger")),
        ("OK", Some("backed_up"), Some("file_changed"))
    );

    // The file is blanked (a refresh answered invalid_grant elsewhere, a bad restore).
    rename_in(&s, &blanked());
    let third = r.line(3);
    assert_eq!((third.status(), third.action(), third.fact("trigger")), ("OK", Some("recovered"), Some("file_broken")));
    assert_same!(s.claude.read_doc()["claudeAiOauth"], new, "Vault's latest is back in the file");
    assert_eq!(s.claude.read_doc()["pluginSecrets"], json!({ "kept": true }), "siblings kept");
    assert_eq!(s.vault_copy().unwrap().0, 2, "a blanked login is never backed up");

    // The agent's own restore started no cycle: the next line is this sibling-free edit's,
    // and there is none for a change to a sibling key either.
    let mut doc = s.claude.read_doc();
    doc["mcpOAuth"]["linear|abc123"]["accessToken"] = json!(random_secret("mcp-token-"));
    std::fs::write(s.claude.creds(), serde_json::to_vec(&doc).unwrap()).unwrap();
    let newest = refreshed(&s);
    rename_in(&s, &newest);
    assert_same!(r.vault_version(3)["claudeAiOauth"], newest);
    let fourth = r.line(4);
    assert_eq!((fourth.action(), fourth.fact("trigger")), (Some("backed_up"), Some("file_changed")), "{fourth}");
    assert_eq!(Resident::lines_in(&s.log()).len(), 4, "no cycle for the agent's own write or a sibling key");

    assert_eq!(r.stop_with(libc::SIGTERM), 0, "SIGTERM ends it with exit 0");
}

#[test]
fn inside_the_probe_interval_a_blanked_file_is_recovered_and_a_changed_login_waits() {
    let b = bao();
    let s = resident_agent(b, "1h");
    let (login, _) = s.good_login(now_ms() + 8 * HOUR_MS);
    let r = Resident::start(&s);
    assert_eq!(r.line(1).action(), Some("backed_up"));

    rename_in(&s, &blanked());
    let second = r.line(2);
    assert_eq!((second.action(), second.fact("trigger")), (Some("recovered"), Some("file_broken")), "{second}");
    assert_same!(s.claude.read_doc()["claudeAiOauth"], login);

    rename_in(&s, &refreshed(&s));
    r.wait_stderr("it is probed once probe_min_interval has passed");
    assert_eq!(s.vault_copy().unwrap().0, 1, "no probe yet, so no backup yet");
    assert_eq!(Resident::lines_in(&s.log()).len(), 2, "no cycle for it yet");

    assert_eq!(r.stop_with(libc::SIGINT), 0, "SIGINT ends it with exit 0");
}

/// Logins to `auth/approle` for `role`, from the audit log's responses.
fn approle_logins(b: &Bao, role: &str) -> usize {
    let text = std::fs::read_to_string(&b.audit_log).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("auth/approle/login") && l.contains(role))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == "response" && e["auth"]["metadata"]["role_name"] == role)
        .count()
}

/// An AppRole user logged in, whose role's tokens live 15 s: they die unless the agent
/// renews them in time. Returns the agent and its role's name.
fn short_lived_approle_agent(b: &Bao) -> (Agent<'_>, String) {
    let s = Agent::builder(b).auth(Auth::AppRole).build().configure(|c| c.resident("probe_min_interval", "0s"));
    let role = user_policy_name(&s.name);
    b.root("POST", &format!("auth/approle/role/{role}"), Some(json!({ "token_period": "15s" })));
    s.good_login(now_ms() + 8 * HOUR_MS);
    (s, role)
}

#[test]
fn the_token_stays_alive_across_several_ttls_with_one_approle_login() {
    let b = bao();
    let (s, role) = short_lived_approle_agent(b);
    let r = Resident::start(&s);
    assert_eq!(r.line(1).status(), "OK");

    let accessor = wait_for("the agent's token", || b.live_tokens("role_name", &role).pop());
    wait_for("four renewals (more than two TTLs)", || {
        r.assert_running();
        let renewals = b.requests_by(&accessor).iter().filter(|p| *p == "auth/token/renew-self").count();
        (renewals >= 4).then_some(())
    });
    let new = refreshed(&s);
    rename_in(&s, &new);
    assert_same!(r.vault_version(2)["claudeAiOauth"], new, "the kept token still works");
    assert_eq!(approle_logins(b, &role), 1, "one AppRole login for the process's life");
    assert_eq!(b.live_tokens("role_name", &role), [accessor], "the same token throughout");

    assert_eq!(r.stop_with(libc::SIGTERM), 0);
}

#[test]
fn a_token_vault_no_longer_renews_is_replaced_by_one_new_login() {
    let b = bao();
    let (s, role) = short_lived_approle_agent(b);
    let r = Resident::start(&s);
    assert_eq!(r.line(1).status(), "OK");
    let first = wait_for("the agent's token", || b.live_tokens("role_name", &role).pop());

    // Revoked behind the agent's back: its next renewal is refused.
    b.root("POST", "auth/token/revoke-accessor", Some(json!({ "accessor": first })));
    let second = wait_for("a new login", || b.live_tokens("role_name", &role).pop());
    assert_ne!(second, first);
    assert_eq!(approle_logins(b, &role), 2, "one login at the start, one for the refused renewal");
    r.wait_stderr("authenticating again");

    let new = refreshed(&s);
    rename_in(&s, &new);
    assert_same!(r.vault_version(2)["claudeAiOauth"], new, "the new token serves the next cycle");
    assert_eq!(approle_logins(b, &role), 2, "and no cycle logged in again");
    assert_eq!(r.stop_with(libc::SIGTERM), 0);
}

/// Issue 12.5: a full cycle with nothing changed costs two Vault requests: the kept
/// token's identity checked (lookup-self; it is renewed on its own schedule) and the read.
#[test]
fn a_full_cycle_with_nothing_changed_makes_two_vault_requests() {
    let b = bao();
    let s = resident_agent(b, "0s");
    s.good_login(now_ms() + 8 * HOUR_MS);
    let r = Resident::start(&s);
    assert_eq!(r.line(1).action(), Some("backed_up"), "{}", r.line(1));
    let before = b.requests_by(&s.accessor).len();
    r.signal(libc::SIGHUP); // the same config: a full cycle with the kept token
    let line = r.line(2);
    assert_eq!(
        (line.status(), line.fact("trigger"), line.action()),
        ("OK", Some("reload"), Some("verified")),
        "{line}"
    );
    let paths = b.requests_by(&s.accessor).split_off(before);
    let read = format!("secret/data/workstation/claude-users/{}", s.name);
    assert_eq!(paths, ["auth/token/lookup-self".to_string(), read], "the cycle's requests");
    assert_eq!(r.stop_with(libc::SIGTERM), 0);
}

#[test]
fn sighup_applies_a_valid_config_and_keeps_the_old_one_when_the_new_one_is_invalid() {
    let b = bao();
    let s = resident_agent(b, "0s");
    s.good_login(now_ms() + 8 * HOUR_MS);
    let r = Resident::start(&s);
    assert_eq!(r.line(1).status(), "OK");

    let moved = s.dir.path().join("state/claude-auth-sync/moved.log");
    s.reconfigure(|c| c.log(&moved).journald(false));
    r.signal(libc::SIGHUP);
    let reloaded = r.line_in(&moved, 1);
    assert_eq!((reloaded.status(), reloaded.fact("trigger")), ("OK", Some("reload")), "{reloaded}");

    let valid = std::fs::read_to_string(&s.cfg).unwrap();
    std::fs::write(&s.cfg, "vault { address = \"not a url\" }\n").unwrap();
    r.signal(libc::SIGHUP);
    r.wait_stderr("the config loaded before stays in use");
    let new = refreshed(&s);
    rename_in(&s, &new);
    assert_same!(r.vault_version(2)["claudeAiOauth"], new, "still running, with the config before");
    assert_eq!(r.line_in(&moved, 2).fact("trigger"), Some("file_changed"));
    std::fs::write(&s.cfg, valid).unwrap();

    assert_eq!(r.stop_with(libc::SIGTERM), 0);
}

#[test]
fn sigterm_during_a_hanging_probe_ends_the_agent_and_its_probe_with_exit_0() {
    let b = bao();
    let s = resident_agent(b, "0s");
    let (login, _) = s.good_login(now_ms() + 8 * HOUR_MS);
    let r = Resident::start(&s);
    assert_eq!(r.line(1).status(), "OK");

    s.claude.set_mode("hang");
    let new = refreshed(&s);
    rename_in(&s, &new);
    let probe = wait_for("the probe to hang", || s.claude.state()["hung_pid"].as_i64());
    assert_eq!(r.stop_with(libc::SIGTERM), 0, "a stop in the middle of a cycle is still a clean stop");
    assert!(r_stderr_says(&s, "SIGTERM during a cycle"), "the stop is told");
    wait_for("the hung probe to be gone", || {
        let gone = std::fs::read_to_string(format!("/proc/{probe}/stat"))
            .map_or(true, |st| st.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')));
        gone.then_some(())
    });
    assert_eq!(Resident::lines_in(&s.log()).len(), 1, "the interrupted cycle reports nothing");
    assert_same!(s.vault_copy().unwrap().1["claudeAiOauth"], login, "nothing half-done reached Vault");
    assert_same!(s.claude.read_doc()["claudeAiOauth"], new, "the file is the refresh, untouched by the agent");
}

fn r_stderr_says(s: &Agent, what: &str) -> bool {
    let text = std::fs::read_to_string(s.dir.path().join("resident.stderr")).unwrap();
    assert_no_leaks("the resident agent's stderr", &text);
    text.contains(what)
}

#[test]
fn systemd_hears_ready_after_the_first_cycle_then_watchdog_reloading_and_stopping() {
    let b = bao();
    let s = resident_agent(b, "0s");
    s.good_login(now_ms() + 8 * HOUR_MS);
    let socket_path = s.dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    let next = || {
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).expect("a notification before the deadline");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert_no_leaks("an sd_notify message", &text);
        text
    };
    // WATCHDOG_USEC of 0.2 s: a ping every 0.1 s (only while a watchdog is asked for).
    let env = [("NOTIFY_SOCKET", socket_path.to_str().unwrap()), ("WATCHDOG_USEC", "200000")];
    let r = Resident::start_with(&s, &env);
    let until = |want: &str| loop {
        let m = next();
        if m == want {
            return;
        }
        assert_eq!(m, "WATCHDOG=1", "only watchdog pings between the states");
    };
    until("READY=1");
    assert_eq!(Resident::lines_in(&s.log()).len(), 1, "READY=1 comes after the first cycle's report");
    until("WATCHDOG=1");
    r.signal(libc::SIGHUP);
    until("RELOADING=1");
    until("READY=1");
    r.signal(libc::SIGTERM);
    until("STOPPING=1");
    assert_eq!(r.wait_exit(), 0);
}
