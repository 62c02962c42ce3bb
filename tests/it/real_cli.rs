//! The agent with the real Claude Code CLI (pinned, from npm), offline: a mock Messages
//! API and an intercepted token endpoint (see common::claude::real). These prove our
//! reading of the CLI: it picks up a restored file, its refresh is backed up, its lock
//! protocol and ours interleave without losing its tokens, and a refused refresh leads
//! to a recovery or to login_required.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::common::agent::config::{Probe, Template};
use crate::common::agent::run::{Run, pairs};
use crate::common::agent::user::Agent;
use crate::common::bao::{Bao, bao};
use crate::common::claude::real::{RealCli, claude_bin, issue};
use crate::common::claude::stand_in::{HOUR_MS, blanked, now_ms, oauth};
use crate::common::secrets::{assert_no_leaks, random_secret};
use serde_json::{Value, json};

struct World<'b> {
    s: Agent<'b>,
    cli: RealCli,
}

/// A world whose agent probes with the real CLI, the `claude` on its PATH, with the
/// default command (`claude -p --model haiku ...`); `edit` edits the login's template.
fn world<'b>(b: &'b Bao, edit: impl FnOnce(Template) -> Template) -> World<'b> {
    let s = Agent::new(b).configure(|c| c.login(|t| edit(t.probe(Probe::command().timeout("90s")))));
    s.claude.replace_with(&claude_bin());
    let cli = RealCli::start(s.dir.path());
    World { s, cli }
}

/// A world whose agent probes with a direct Messages API call (it cannot refresh), while
/// the real CLI is the user's.
fn http_probe_world(b: &Bao) -> World<'_> {
    let s = Agent::new(b);
    let cli = RealCli::start(s.dir.path());
    s.reconfigure(|c| c.login(|t| t.probe(Probe::http(&cli.api_url))));
    World { s, cli }
}

impl World<'_> {
    fn env(&self) -> Vec<(String, String)> {
        self.cli.env(self.s.dir.path(), &self.s.claude.config_dir)
    }

    fn run(&self) -> Run {
        let env = self.env();
        self.s.run_with(&pairs(&env))
    }

    fn login(&self, access: &str, refresh: &str, expires_at: u64) -> Value {
        // Claude Code keeps `user:inference`; without `user:profile` it skips a profile fetch.
        let mut l = oauth(access, refresh, expires_at);
        l["scopes"] = json!(["user:inference"]);
        l
    }

    /// A login the mock API accepts, expiring in 8 h, as Vault's copy: its (access, refresh).
    fn good_login_in_vault(&self) -> (String, String) {
        let (access, refresh) = issue(&self.cli.backend, "good");
        let good = self.login(&access, &refresh, now_ms() + 8 * HOUR_MS);
        self.s.b.kv_put(&self.s.name, json!({ "claudeAiOauth": good }));
        (access, refresh)
    }

    fn doc(&self) -> Value {
        self.s.claude.read_doc()
    }
}

#[test]
fn a_restored_file_is_what_the_real_cli_uses_next() {
    let b = bao();
    let w = world(b, |t| t);
    let (access, _) = w.good_login_in_vault();
    let mcp = random_secret("mcp-real-");
    w.s.claude.write_login(&blanked(), &mcp);

    let run = w.run();
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().action(), Some("recovered"), "{}", run.line());
    let bearers = w.cli.backend.bearers.lock().unwrap().clone();
    assert_same!(bearers.last(), Some(&access), "the real CLI's next request carried the restored access token");
    assert_same!(w.doc()["claudeAiOauth"]["accessToken"], access.as_str());
    assert_same!(w.doc()["mcpOAuth"]["linear|abc123"]["accessToken"], mcp.as_str());
}

#[test]
fn the_real_clis_refresh_during_the_probe_is_backed_up() {
    let b = bao();
    let w = world(b, |t| t);
    let (access, refresh) = issue(&w.cli.backend, "expired");
    let expired = w.login(&access, &refresh, now_ms() - HOUR_MS);
    b.kv_put(&w.s.name, json!({ "claudeAiOauth": expired }));
    w.s.claude.write_login(&expired, &random_secret("mcp-real-"));

    let run = w.run();
    run.assert_outcome(0, "OK", None);
    let r = run.report();
    assert_eq!((r.action(), r.fact("vault_version")), (Some("backed_up"), Some("2")), "{r}");
    assert_same!(w.cli.backend.refreshes.load(Ordering::SeqCst), 1, "the real CLI refreshed");
    let (new_access, new_refresh) = w.cli.backend.last_issued.lock().unwrap().clone().unwrap();
    let local = w.doc()["claudeAiOauth"].clone();
    assert_same!(
        (local["accessToken"].as_str(), local["refreshToken"].as_str()),
        (Some(new_access.as_str()), Some(new_refresh.as_str()))
    );
    assert_same!(w.s.vault_copy().unwrap().1["claudeAiOauth"], local, "Vault's latest matches the file");
}

#[test]
fn the_agent_writing_while_the_real_cli_refreshes_keeps_the_clis_tokens() {
    let b = bao();
    // The API rejects the local access token: the user's CLI refreshes (holding its
    // refresh lock for 3 s), and the agent, whose http probe cannot refresh, wants to put
    // Vault's copy down meanwhile.
    let w = http_probe_world(b);
    let (access, refresh) = (random_secret("sk-ant-oat01-rejected-"), random_secret("sk-ant-ort01-live-"));
    w.cli.backend.valid_refresh.lock().unwrap().insert(refresh.clone());
    let rejected = w.login(&access, &refresh, now_ms() + HOUR_MS);
    let mcp = random_secret("mcp-real-");
    w.s.claude.write_login(&rejected, &mcp);
    let (va, vr) = issue(&w.cli.backend, "vault");
    b.kv_put(&w.s.name, json!({ "claudeAiOauth": w.login(&va, &vr, now_ms() + 2 * HOUR_MS) }));
    *w.cli.backend.delay.lock().unwrap() = Duration::from_secs(3);

    let cli = std::process::Command::new(claude_bin())
        .args(["-p", "--model", "haiku", "--no-session-persistence", "--output-format", "json", "hi"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .envs(w.env())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lock = w.s.claude.config_dir.join(".oauth_refresh.lock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lock.exists() {
        assert!(Instant::now() < deadline, "the CLI never took its refresh lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The CLI now holds its refresh lock until the token endpoint answers (3 s).
    let run = w.run();
    let out = cli.wait_with_output().unwrap();
    assert_no_leaks("the real CLI's output", &String::from_utf8_lossy(&out.stdout));
    assert!(out.status.success(), "the CLI: {}", String::from_utf8_lossy(&out.stdout));

    run.assert_outcome(0, "OK", None);
    // Wherever the agent met the CLI's refresh (waiting for its lock and finding the new
    // login under it, or after it), it judged the CLI's new login and backed it up, never
    // putting Vault's copy over it.
    let r = run.report();
    assert_eq!((r.action(), r.fact("vault_version")), (Some("backed_up"), Some("2")), "{r}");
    let (new_access, new_refresh) = w.cli.backend.last_issued.lock().unwrap().clone().unwrap();
    let doc = w.doc();
    assert_same!(doc["claudeAiOauth"]["accessToken"], new_access.as_str(), "the CLI's newest tokens are on disk");
    assert_same!(doc["claudeAiOauth"]["refreshToken"], new_refresh.as_str());
    assert_same!(doc["mcpOAuth"]["linear|abc123"]["accessToken"], mcp.as_str(), "every sibling key survived");
    assert_eq!(doc["pluginSecrets"], json!({ "kept": true }));
    assert_same!(w.s.vault_copy().unwrap().1["claudeAiOauth"], doc["claudeAiOauth"], "and they were backed up");
    assert_eq!(w.cli.backend.refused.load(Ordering::SeqCst), 0);
}

#[test]
fn a_refused_refresh_is_recovered_from_a_good_copy_or_is_login_required() {
    let b = bao();
    // Vault holds a good login: the CLI's 401, refused refresh and blanking are mended.
    let w = world(b, |t| t);
    let (ga, _) = w.good_login_in_vault();
    let dead = w.login(&random_secret("sk-ant-oat01-dead-"), &random_secret("sk-ant-ort01-dead-"), now_ms() + HOUR_MS);
    let mcp = random_secret("mcp-real-");
    w.s.claude.write_login(&dead, &mcp);

    let run = w.run();
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().action(), Some("recovered"), "{}", run.line());
    assert!(w.cli.backend.refused.load(Ordering::SeqCst) >= 1, "the real CLI's refresh was refused first");
    assert_same!(w.doc()["claudeAiOauth"]["accessToken"], ga.as_str());
    assert_same!(w.doc()["mcpOAuth"]["linear|abc123"]["accessToken"], mcp.as_str());

    // Vault holds the same dead login: a person must log in again.
    let w = world(b, |t| t);
    let dead = w.login(&random_secret("sk-ant-oat01-dead-"), &random_secret("sk-ant-ort01-dead-"), now_ms() + HOUR_MS);
    let version = b.kv_put(&w.s.name, json!({ "claudeAiOauth": dead }));
    w.s.claude.write_login(&dead, &random_secret("mcp-real-"));
    let run = w.run();
    run.assert_outcome(1, "FAIL", Some("login_required"));
    assert_eq!(w.s.vault_copy().unwrap().0, version, "Vault is not overwritten");
    assert_same!(w.doc()["claudeAiOauth"]["refreshToken"], "", "the CLI blanked its dead login, as it does");
}

#[test]
fn a_restore_the_real_cli_blanked_is_undone_and_the_working_login_kept() {
    let b = bao();
    // Declared, wrongly, as a secret that does not rotate: the agent puts Vault's copy
    // (dead tokens, later expiry) over a working login before any probe. The real CLI's
    // forced refresh of that copy is refused and it blanks the file.
    let w = world(b, |t| t.restore("always").refresh_token_rotates(false));
    let (la, lr) = issue(&w.cli.backend, "local");
    let working = w.login(&la, &lr, now_ms() + HOUR_MS);
    let mcp = random_secret("mcp-real-");
    w.s.claude.write_login(&working, &mcp);
    let dead =
        w.login(&random_secret("sk-ant-oat01-dead-"), &random_secret("sk-ant-ort01-dead-"), now_ms() + 8 * HOUR_MS);
    b.kv_put(&w.s.name, json!({ "claudeAiOauth": dead }));

    let run = w.run();
    run.assert_outcome(0, "OK", None);
    assert!(w.cli.backend.refused.load(Ordering::SeqCst) >= 1, "the real CLI's refresh of Vault's copy was refused");
    let doc = w.doc();
    assert_same!(doc["claudeAiOauth"]["refreshToken"], lr.as_str(), "the working login is back, not the blank");
    assert_same!(doc["mcpOAuth"]["linear|abc123"]["accessToken"], mcp.as_str());
    assert_same!(
        w.s.vault_copy().unwrap().1["claudeAiOauth"],
        doc["claudeAiOauth"],
        "and backed up over the dead copy"
    );
}

#[test]
fn a_login_a_cli_release_rewrote_without_fields_is_repaired_not_replaced_by_an_older_copy() {
    let b = bao();
    let w = world(b, |t| t);
    // Vault's copy is an older rotation: its refresh token is spent.
    let spent =
        w.login(&random_secret("sk-ant-oat01-old-"), &random_secret("sk-ant-ort01-spent-"), now_ms() + 2 * HOUR_MS);
    b.kv_put(&w.s.name, json!({ "claudeAiOauth": spent }));
    // The live login, as a release rewrote it: tokens, but no expiresAt and no scopes.
    let (la, lr) = issue(&w.cli.backend, "live");
    let mut broken = w.login(&la, &lr, 0);
    let obj = broken.as_object_mut().unwrap();
    obj.remove("expiresAt");
    obj.remove("scopes");
    obj.remove("refreshTokenExpiresAt");
    let mcp = random_secret("mcp-real-");
    w.s.claude.write_login(&broken, &mcp);

    let run = w.run();
    run.assert_outcome(75, "DEGRADED", Some("login_incomplete"));
    assert!(
        run.report().action() == Some("backed_up") && run.report().fact("repaired") == Some("expiresAt,scopes"),
        "{}",
        run.line()
    );
    assert_eq!(w.cli.backend.refused.load(Ordering::SeqCst), 0, "no refresh token was ever refused");
    assert_same!(w.cli.backend.refreshes.load(Ordering::SeqCst), 1, "the CLI refreshed with the live refresh token");
    let (new_access, new_refresh) = w.cli.backend.last_issued.lock().unwrap().clone().unwrap();
    let doc = w.doc();
    assert_same!(doc["claudeAiOauth"]["accessToken"], new_access.as_str());
    assert_same!(doc["claudeAiOauth"]["refreshToken"], new_refresh.as_str());
    assert_same!(doc["mcpOAuth"]["linear|abc123"]["accessToken"], mcp.as_str());
    let vaults = w.s.vault_copy().unwrap().1["claudeAiOauth"].clone();
    assert_same!(vaults, doc["claudeAiOauth"], "the refreshed, whole login is backed up");
    assert!(vaults["scopes"].as_array().unwrap().iter().any(|s| s == "user:inference"));
    assert!(vaults["expiresAt"].as_u64().unwrap() > now_ms());
}
