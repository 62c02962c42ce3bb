//! The sync cycle against a real OpenBao and the stand-in `claude` (scripts/fake-claude):
//! back up, refresh, recover, login required, inconclusive probes, Vault down, the
//! report in the private log and the journal, and two agents racing a refreshing CLI.

use std::time::{Duration, Instant};

use crate::common::agent::config::{Probe, Template};
use crate::common::agent::report::Report;
use crate::common::agent::user::Agent;
use crate::common::bao::{Bao, bao};
use crate::common::claude::stand_in::{HOUR_MS, blanked, now_ms, oauth};
use crate::common::files::{mode_of, owner_of, tree};
use crate::common::secrets::{access_token, assert_no_leaks, random_secret, refresh_token};
use serde_json::{Value, json};

fn local_obj(s: &Agent) -> Value {
    s.claude.read_doc()["claudeAiOauth"].clone()
}

#[test]
fn a_valid_login_is_ok_and_vault_holds_exactly_the_oauth_object() {
    let b = bao();
    let s = Agent::new(b);
    let (login, before) = s.good_login(now_ms() + 8 * HOUR_MS);

    let run = s.run();
    run.assert_outcome(0, "OK", None);
    let line = run.report();
    assert_eq!((line.action(), line.fact("vault_version")), (Some("backed_up"), Some("1")), "{line}");
    let (access, relogin) = (line.fact("access_expires_in"), line.fact("relogin_due_in"));
    assert!(access.is_some_and(|a| a.starts_with("7h")) && relogin.is_some_and(|r| r.starts_with("19d")), "{line}");

    let (version, data) = s.vault_copy().expect("backed up");
    assert_eq!(version, 1);
    assert_same!(data, json!({ "claudeAiOauth": login }), "exactly {{claudeAiOauth}}, nothing from mcpOAuth");
    assert_eq!(std::fs::read(s.claude.creds()).unwrap(), before, "a backup does not touch the local file");

    let meta = b.kv_custom_metadata(&s.name);
    assert_eq!(meta["agent_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(meta["refresh_token_sha256_prefix"].as_str().map(str::len), Some(12));
    assert_eq!(meta["expires_at"], login["expiresAt"].to_string());
    assert!(meta["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert_no_leaks("Vault custom_metadata", &meta.to_string());

    // The private log and the journal carry the same line.
    assert_eq!(mode_of(&s.log()), 0o600);
    assert_eq!(mode_of(s.log().parent().unwrap()), 0o700);
    let logged = std::fs::read_to_string(s.log()).unwrap();
    assert_eq!(logged.lines().count(), 1);
    let in_log = Report::of(logged.trim_end());
    assert_eq!((in_log.status(), in_log.action()), ("OK", Some("backed_up")), "{logged}");
    let entries = s.journal_entries();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(e["SYSLOG_IDENTIFIER"], "claude-auth-sync");
    assert_eq!(e["PRIORITY"], "6");
    assert_eq!(e["CLAUDE_AUTH_SYNC_STATUS"], "OK");
    assert_eq!(e["CLAUDE_AUTH_SYNC_REASON"], "none");
    assert!(!e["OS_USER"].is_empty());
    assert_eq!(e["MESSAGE"].trim(), logged.trim());

    // Nothing changed: three Vault requests, the identity before any renewal
    // (lookup-self), the renewal, and one read that also finds the secret's mount.
    let before_count = b.requests_by(&s.accessor).len();
    let run = s.run();
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().action(), Some("verified"), "{}", run.line());
    let paths: Vec<String> = b.requests_by(&s.accessor).split_off(before_count);
    let read = format!("secret/data/workstation/claude-users/{}", s.name);
    assert_eq!(paths, ["auth/token/lookup-self", "auth/token/renew-self", read.as_str()], "an unchanged run");
    assert_eq!(s.vault_copy().unwrap().0, 1, "no new version");
}

#[test]
fn a_refresh_during_the_probe_is_backed_up_as_one_new_version_with_cas() {
    let b = bao();
    let s = Agent::new(b);
    let (expired, _) = s.good_login(now_ms() - HOUR_MS);
    b.kv_put(&s.name, json!({ "claudeAiOauth": expired }));

    let run = s.run();
    run.assert_outcome(0, "OK", None);
    let r = run.report();
    assert_eq!((r.action(), r.fact("vault_version")), (Some("backed_up"), Some("2")), "{r}");
    assert_eq!(s.claude.state()["rotations"], 1, "the stand-in refreshed during the probe");

    let rotated = local_obj(&s);
    assert_ne!(rotated["refreshToken"], expired["refreshToken"]);
    let (version, data) = s.vault_copy().unwrap();
    assert_eq!((version, &data["claudeAiOauth"]), (2, &rotated), "Vault's latest is the rotated object");

    let writes: Vec<Value> = b
        .audit_requests(&s.accessor)
        .into_iter()
        .filter(|e| {
            e["request"]["operation"] == "update" && e["request"]["path"].as_str().unwrap().starts_with("secret/data/")
        })
        .collect();
    assert_eq!(writes.len(), 1, "one write");
    assert_same!(writes[0]["request"]["data"]["options"]["cas"], 1, "check-and-set against the version read");
}

#[test]
fn a_broken_local_file_is_recovered_from_vault_keeping_every_other_key() {
    let b = bao();
    for (case, keeps_siblings) in
        [("deleted", false), ("blanked", true), ("not JSON", false), ("no claudeAiOauth", true)]
    {
        let s = Agent::new(b);
        let (good, _) = s.good_login(now_ms() + 8 * HOUR_MS);
        b.kv_put(&s.name, json!({ "claudeAiOauth": good }));
        let mcp = random_secret("mcp-token-");
        s.claude.write_login(&blanked(), &mcp);
        match case {
            "deleted" => std::fs::remove_file(s.claude.creds()).unwrap(),
            "not JSON" => std::fs::write(s.claude.creds(), b"{\"claudeAiOauth\": {\"accessTo").unwrap(),
            "no claudeAiOauth" => {
                let mut doc = s.claude.read_doc();
                doc.as_object_mut().unwrap().remove("claudeAiOauth");
                std::fs::write(s.claude.creds(), doc.to_string()).unwrap();
            }
            _ => {}
        }

        let run = s.run();
        run.assert_outcome(0, "OK", None);
        assert_eq!(run.report().action(), Some("recovered"), "{case}: {}", run.line());
        let doc = s.claude.read_doc();
        assert_same!(doc["claudeAiOauth"], good, "{case}");
        if keeps_siblings {
            assert_same!(doc["mcpOAuth"]["linear|abc123"]["accessToken"], mcp.as_str(), "{case}: mcpOAuth kept");
            assert_eq!(doc["pluginSecrets"], json!({ "kept": true }), "{case}: unknown keys kept");
        }
        assert_eq!(mode_of(&s.claude.creds()), 0o600, "{case}");
        assert_eq!(s.vault_copy().unwrap().0, 1, "{case}: nothing new to write back");
        assert_eq!(s.journal_entries()[0]["CLAUDE_AUTH_SYNC_ACTION"], "recovered");
    }
}

#[test]
fn a_restored_login_that_the_cli_refreshes_is_written_back() {
    let b = bao();
    let s = Agent::new(b);
    let (expired_good, _) = s.good_login(now_ms() - HOUR_MS);
    b.kv_put(&s.name, json!({ "claudeAiOauth": expired_good }));
    // An older, dead login: the stand-in's refresh is refused and it blanks the file,
    // as Claude Code does on invalid_grant; the agent restores over the blanked file.
    let dead = oauth(&access_token(), &refresh_token(), now_ms() - 2 * HOUR_MS);
    let mcp = random_secret("mcp-token-");
    s.claude.write_login(&dead, &mcp);

    let run = s.run();
    run.assert_outcome(0, "OK", None);
    let r = run.report();
    assert_eq!((r.action(), r.fact("vault_version")), (Some("recovered"), Some("2")), "{r}");
    let (_, data) = s.vault_copy().unwrap();
    assert_same!(data["claudeAiOauth"], local_obj(&s), "the refreshed object went back to Vault");
    assert_ne!(data["claudeAiOauth"]["refreshToken"], expired_good["refreshToken"]);
    assert_eq!(s.claude.state()["refused"], 1, "the stand-in refused the dead login's refresh first");
    assert_same!(s.claude.read_doc()["mcpOAuth"]["linear|abc123"]["accessToken"], mcp.as_str());
}

#[test]
fn local_and_vault_both_rejected_is_login_required_and_changes_nothing() {
    let b = bao();
    let s = Agent::new(b);
    let before = s.claude.write_login(&s.dead_login(), &random_secret("mcp-token-"));
    b.kv_put(&s.name, json!({ "claudeAiOauth": s.dead_login() }));

    let run = s.run();
    run.assert_outcome(1, "FAIL", Some("login_required"));
    assert!(run.report().msg().contains("claude auth login"), "says what to do: {}", run.line());
    assert_eq!(std::fs::read(s.claude.creds()).unwrap(), before, "the local file is not made worse");
    assert_eq!(s.vault_copy().unwrap().0, 1, "Vault is not overwritten");
    let e = &s.journal_entries()[0];
    assert_eq!((e["PRIORITY"].as_str(), e["CLAUDE_AUTH_SYNC_REASON"].as_str()), ("3", "login_required"));
}

#[test]
fn an_overloaded_or_hanging_probe_is_degraded_and_writes_nothing() {
    let b = bao();
    for mode in ["529", "hang"] {
        let s = Agent::new(b).configure(|c| c.login(|t| t.probe(Probe::command().timeout("2s"))));
        let (login, before) = s.good_login(now_ms() + 8 * HOUR_MS);
        let mut older = login.clone();
        older["expiresAt"] = json!(now_ms());
        b.kv_put(&s.name, json!({ "claudeAiOauth": older }));
        s.claude.set_mode(mode);

        let run = s.run();
        run.assert_outcome(75, "DEGRADED", Some("probe_inconclusive"));
        assert_eq!(std::fs::read(s.claude.creds()).unwrap(), before, "{mode}: local untouched");
        assert_eq!(s.vault_copy().unwrap().0, 1, "{mode}: Vault untouched");
        assert_eq!(s.journal_entries()[0]["PRIORITY"], "4");
        if mode == "hang" {
            let pid = s.claude.state()["hung_pid"].as_i64().expect("the stand-in hung");
            // Gone, or a zombie waiting for a reaper (in a container, pid 1 may not reap);
            // SIGKILL takes effect asynchronously, so allow the kernel a moment.
            let dead = || {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                matches!(stat.rsplit(')').next().unwrap_or_default().trim().chars().next(), None | Some('Z' | 'X'))
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while !dead() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(dead(), "the hung probe was killed");
        }
    }
}

#[test]
fn with_vault_stopped_the_local_check_still_runs_and_is_degraded() {
    let own = Bao::start();
    let s = Agent::new(&own);
    let (_, before) = s.good_login(now_ms() + 8 * HOUR_MS);
    s.run().assert_outcome(0, "OK", None);
    own.stop();

    let calls = s.claude.state()["calls"].as_u64().unwrap();
    let run = s.run();
    run.assert_outcome(75, "DEGRADED", Some("vault_unreachable"));
    assert_eq!(run.report().action(), Some("backup_pending"), "{}", run.line());
    assert_eq!(s.claude.state()["calls"].as_u64().unwrap(), calls + 1, "the probe ran");
    assert_eq!(std::fs::read(s.claude.creds()).unwrap(), before, "local file untouched");
}

#[test]
fn shadowing_variables_are_kept_from_the_probe_and_can_fail_the_run() {
    let b = bao();
    let s = Agent::new(b);
    s.good_login(now_ms() + 8 * HOUR_MS);
    let key = random_secret("sk-ant-api03-");
    let run = s.run_with(&[("ANTHROPIC_API_KEY", &key)]);
    run.assert_outcome(0, "OK", None);
    assert!(run.stderr.contains("ANTHROPIC_API_KEY set in the environment outranks"), "{}", run.stderr);
    let shadowing = run.report().fact("env_shadowing").map(|v| v.split(',').any(|var| var == "ANTHROPIC_API_KEY"));
    assert_eq!(shadowing, Some(true), "{}", run.line());
    assert_eq!(s.claude.state().get("shadowed"), None, "the probe never saw the variable");

    let strict = Agent::new(b).configure(|c| c.env_shadowing("fail"));
    strict.good_login(now_ms() + 8 * HOUR_MS);
    let run = strict.run_with(&[("CLAUDE_CODE_OAUTH_TOKEN", &access_token())]);
    run.assert_outcome(1, "FAIL", Some("env_shadowing"));
    assert_eq!(strict.vault_copy(), None, "nothing else happened");
}

#[test]
fn two_agents_and_a_refreshing_cli_lose_no_update() {
    let b = bao();
    let s = Agent::new(b);
    s.good_login(now_ms() + 8 * HOUR_MS);
    let stop = Instant::now() + Duration::from_secs(30);

    std::thread::scope(|scope| {
        // The CLI refreshing in a loop, as a busy user's sessions do.
        let cli = scope.spawn(|| {
            let (mut ok, mut failed) = (0, 0);
            while Instant::now() < stop {
                if s.claude.call(&[("FAKE_CLAUDE_FORCE_REFRESH", "1")]) {
                    ok += 1
                } else {
                    failed += 1
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (ok, failed)
        });
        // A reader that must always find a whole file.
        let reader = scope.spawn(|| {
            let mut reads = 0;
            while Instant::now() < stop {
                let doc: Value = serde_json::from_slice(&std::fs::read(s.claude.creds()).unwrap())
                    .expect("every read of the credentials file parses");
                let token = doc["claudeAiOauth"]["refreshToken"].as_str().unwrap_or_default();
                assert!(!token.is_empty(), "never a blanked login");
                assert!(doc["mcpOAuth"].is_object(), "never without mcpOAuth");
                reads += 1;
            }
            reads
        });
        // Two agents at once, again and again.
        let mut runs = 0;
        while Instant::now() < stop {
            for r in s.run_two_at_once() {
                assert_eq!(r.code, 0, "{}", r.stderr);
            }
            runs += 2;
        }
        let (ok, failed) = cli.join().unwrap();
        let reads = reader.join().unwrap();
        assert_eq!(failed, 0, "the CLI lost its login {failed} times (a lost update)");
        assert!(ok > 10 && runs >= 4 && reads > 100, "too little happened: {ok} refreshes, {runs} runs, {reads} reads");
        eprintln!("race: {ok} CLI refreshes, {runs} agent runs, {reads} reads, 0 lost updates");
    });

    let log = std::fs::read_to_string(s.log()).unwrap();
    assert!(log.lines().map(Report::of).all(|r| r.status() == "OK"), "every racing run was OK:\n{log}");
    s.run().assert_outcome(0, "OK", None);
    let final_local = local_obj(&s);
    assert_same!(final_local["refreshToken"], s.claude.state()["latest_refresh"], "the newest rotation is on disk");
    assert_same!(
        s.vault_copy().unwrap().1["claudeAiOauth"],
        final_local,
        "Vault's latest equals the final local object"
    );
}

#[test]
fn a_rendered_template_and_the_login_share_one_secret() {
    let b = bao();
    let s = Agent::new(b);
    // Inside $CLAUDE_CONFIG_DIR: a destination outside the user's own files is refused.
    let out = s.claude.config_dir.join("app.conf");
    // A second template block renders a file from the same secret's other keys.
    s.reconfigure(|c| {
        c.template(
            Template::new(&s.secret_path)
                .contents("user={{user}} password={{password}}\n")
                .destination(&out)
                .perms("0640"),
        )
    });
    let (expired, _) = s.good_login(now_ms() - HOUR_MS);
    let password = random_secret("db-password-");
    b.kv_put(&s.name, json!({ "claudeAiOauth": expired, "password": password, "user": "svc" }));

    let run = s.run();
    run.assert_outcome(0, "OK", None);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), format!("user=svc password={password}\n"));
    assert_eq!(mode_of(&out), 0o640);
    let (version, data) = s.vault_copy().unwrap();
    assert_eq!(version, 2, "the refreshed login was backed up");
    assert_same!(data["password"], password.as_str(), "the write-back kept the secret's other keys");
    assert_same!(data["claudeAiOauth"], local_obj(&s));

    let run = s.run();
    run.assert_outcome(0, "OK", None);
}

/// A Messages API that accepts one bearer token; records what it was sent.
struct MockApi {
    url: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl MockApi {
    fn start(accepted: String) -> MockApi {
        use crate::common::http1::{read_request, respond};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let Some(req) = read_request(&mut reader) else { continue };
                let ok = req.header("authorization") == Some(format!("Bearer {accepted}").as_str());
                let headers: String = req.headers.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
                log.lock().unwrap().push(format!(
                    "{} {} \n{headers}\n{}",
                    req.method,
                    req.path,
                    String::from_utf8_lossy(&req.body)
                ));
                match ok {
                    true => respond(&mut stream, "200 OK", "application/json", "{\"type\":\"message\"}"),
                    false => respond(&mut stream, "401 Unauthorized", "application/json", "{\"type\":\"error\"}"),
                }
            }
        });
        MockApi { url, seen }
    }
}

#[test]
fn the_http_probe_calls_the_messages_api_like_claude_code_and_drives_recovery() {
    let b = bao();
    let good_access = access_token();
    let api = MockApi::start(good_access.clone());
    let s = Agent::new(b).configure(|c| c.login(|t| t.probe(Probe::http(&api.url).timeout("5s"))));
    let good = oauth(&good_access, &refresh_token(), now_ms() + 8 * HOUR_MS);
    s.claude.write_login(&good, &random_secret("mcp-token-"));

    let run = s.run();
    run.assert_outcome(0, "OK", None);
    {
        let seen = api.seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let req = seen[0].to_lowercase();
        assert!(req.starts_with("post /v1/messages "), "{req}");
        assert!(
            req.contains("anthropic-beta: oauth-2025-04-20") && req.contains("anthropic-version: 2023-06-01"),
            "{req}"
        );
        assert!(req.contains("\"max_tokens\":1"), "{req}");
    }

    // The API rejects the local token: Vault's copy (which it accepts) is restored.
    b.kv_put(&s.name, json!({ "claudeAiOauth": good }));
    let older_dead = oauth(&access_token(), &refresh_token(), now_ms() + HOUR_MS);
    s.claude.write_login(&older_dead, &random_secret("mcp-token-"));
    let run = s.run();
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().action(), Some("recovered"), "{}", run.line());
    assert_same!(local_obj(&s), good);
}

#[test]
fn exit_after_auth_stops_before_the_templates() {
    let b = bao();
    let s = Agent::new(b).configure(|c| c.exit_after_auth());
    let before = s.claude.write_login(&s.dead_login(), &random_secret("mcp-token-"));
    let run = s.run();
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().action(), Some("authenticated"), "{}", run.line());
    assert_eq!(s.claude.state().get("calls"), None, "no probe");
    assert_eq!(std::fs::read(s.claude.creds()).unwrap(), before);
    assert_eq!(s.vault_copy(), None);
}

/// nobody:nogroup, the unprivileged user the ownership tests run the agent as.
const NOBODY: (u32, u32) = (65534, 65534);

/// The agent as an unprivileged user: `s`'s files handed to that user, the binary and the
/// stand-in CLI copied where it can run them (the checkout may be in a 0700 directory).
fn as_nobody(s: &Agent) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    assert!(
        rustix::process::geteuid().is_root(),
        "this test switches to an unprivileged uid and must run as root (CI does)"
    );
    let bin = s.dir.path().join("claude-auth-sync");
    std::fs::copy(env!("CARGO_BIN_EXE_claude-auth-sync"), &bin).unwrap();
    let claude = s.claude.bin.join("claude");
    std::fs::remove_file(&claude).unwrap();
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fake-claude"), &claude).unwrap();
    let (uid, gid) = NOBODY;
    for p in tree(s.dir.path()).iter().map(|p| s.dir.path().join(p)).chain([s.dir.path().to_path_buf()]) {
        std::os::unix::fs::lchown(&p, Some(uid), Some(gid)).unwrap();
    }
    let mut cmd = std::process::Command::new(bin);
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

#[test]
fn files_whose_group_is_not_the_users_are_replaced_all_the_same() {
    let b = bao();
    let s = Agent::new(b);
    let d = s.dir.path();
    let (sink, rendered) = (d.join("agent-token"), s.claude.config_dir.join("app.conf"));
    s.reconfigure(|c| {
        c.sink(&sink)
            .template(Template::new(&s.secret_path).contents("user={{user}}\n").destination(&rendered).perms("0640"))
    });
    let (good, _) = s.good_login(now_ms() + 8 * HOUR_MS);
    b.kv_put(&s.name, json!({ "claudeAiOauth": good, "user": "svc" }));
    let mcp = random_secret("mcp-token-");
    s.claude.write_login(&blanked(), &mcp);
    std::fs::write(&sink, "old").unwrap();
    std::fs::write(&rendered, "old").unwrap();
    let cmd = as_nobody(&s);
    // Made by root, then handed to the user without the group: `chown nobody FILE`.
    for f in [s.claude.creds(), sink.clone(), rendered.clone()] {
        std::os::unix::fs::chown(&f, Some(NOBODY.0), Some(0)).unwrap();
    }
    std::fs::set_permissions(&rendered, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();

    let run = s.run_cmd(cmd, &[]);
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().action(), Some("recovered"), "{}", run.line());
    let doc = s.claude.read_doc();
    assert_same!(doc["claudeAiOauth"], good);
    assert_same!(doc["mcpOAuth"]["linear|abc123"]["accessToken"], mcp.as_str(), "mcpOAuth kept");
    // The owner is kept; the group becomes the user's own (a 0600 file's group grants nothing).
    assert_eq!((owner_of(&s.claude.creds()), mode_of(&s.claude.creds())), (NOBODY, 0o600));
    assert_eq!((owner_of(&sink), mode_of(&sink)), (NOBODY, 0o600));
    assert!(std::fs::read_to_string(&sink).unwrap() != "old", "the sink was written");
    // A group-readable file whose group cannot be kept grants no group anything.
    assert_eq!(std::fs::read_to_string(&rendered).unwrap(), "user=svc\n");
    assert_eq!((owner_of(&rendered), mode_of(&rendered)), (NOBODY, 0o600));
    assert!(run.stderr.contains("cannot be kept"), "says why the mode is narrower: {}", run.stderr);
}

/// The file names beside the credentials file where unparsable bytes were kept.
fn kept_beside(s: &Agent) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(&s.claude.config_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name().unwrap().to_string_lossy().starts_with(".credentials.json.claude-auth-sync.unparsed-")
        })
        .collect()
}

#[test]
fn a_credentials_file_that_is_not_strict_json_keeps_every_key_and_its_bytes() {
    let b = bao();
    for case in ["trailing comma, working login", "BOM and comments, blanked login", "garbage"] {
        let s = Agent::new(b);
        let (good, bytes) = s.good_login(now_ms() + 8 * HOUR_MS);
        b.kv_put(&s.name, json!({ "claudeAiOauth": good }));
        let mcp = random_secret("mcp-token-");
        let text = match case {
            "trailing comma, working login" => {
                let strict = String::from_utf8(s.claude.write_login(&good, &mcp)).unwrap();
                format!("{},}}", &strict[..strict.len() - 1])
            }
            "BOM and comments, blanked login" => {
                let strict = String::from_utf8(s.claude.write_login(&blanked(), &mcp)).unwrap();
                format!("\u{feff}// written by hand\n{} /* done */\n", strict.replacen("{", "{\n  // mine\n", 1))
            }
            _ => String::from_utf8_lossy(&bytes[..bytes.len() / 3]).into_owned() + "\u{0}garbage",
        };
        std::fs::write(s.claude.creds(), &text).unwrap();

        let run = s.run();
        run.assert_outcome(0, "OK", None);
        let line = run.report();
        let kept_as = line.fact("original_kept").unwrap_or_default();
        assert!(kept_as.starts_with(".credentials.json.claude-auth-sync.unparsed-"), "{case}: says so: {line}");
        let doc = s.claude.read_doc();
        assert_same!(doc["claudeAiOauth"], good, "{case}");
        if case != "garbage" {
            assert_same!(doc["mcpOAuth"]["linear|abc123"]["accessToken"], mcp.as_str(), "{case}: mcpOAuth kept");
            assert_eq!(doc["pluginSecrets"], json!({ "kept": true }), "{case}: unknown keys kept");
        }
        let kept = kept_beside(&s);
        assert_eq!(kept.len(), 1, "{case}: {kept:?}");
        assert_eq!(std::fs::read_to_string(&kept[0]).unwrap(), text, "{case}: the original bytes, exactly");
        assert_eq!(mode_of(&kept[0]), 0o600, "{case}");
        // The next run finds strict JSON: nothing more is kept.
        s.run().assert_outcome(0, "OK", None);
        assert_eq!(kept_beside(&s).len(), 1, "{case}");
    }
}

#[test]
fn a_refresh_seen_during_the_probe_is_backed_up_even_after_a_clock_step() {
    let b = bao();
    let s = Agent::new(b);
    // Refreshed while the clock ran 12 h ahead: its expiresAt is far in the future.
    s.good_login(now_ms() + 20 * HOUR_MS);
    s.run().assert_outcome(0, "OK", None);
    assert_eq!(s.vault_copy().unwrap().0, 1);

    // The clock is right again; the CLI refreshes during the probe: an earlier expiresAt.
    let run = s.run_with(&[("FAKE_CLAUDE_FORCE_REFRESH", "1")]);
    run.assert_outcome(0, "OK", None);
    let r = run.report();
    assert_eq!((r.action(), r.fact("vault_version")), (Some("backed_up"), Some("2")), "{r}");
    let rotated = local_obj(&s);
    assert!(rotated["expiresAt"].as_u64().unwrap() < now_ms() + 10 * HOUR_MS);
    assert_same!(s.vault_copy().unwrap().1["claudeAiOauth"], rotated, "Vault holds the rotation");
    let meta = b.kv_custom_metadata(&s.name);
    assert!(meta["earlier_refresh_token_sha256_prefixes"].as_str().is_some_and(|e| e.len() == 12), "{meta}");
    assert_no_leaks("Vault custom_metadata", &meta.to_string());

    // A later blank restores the rotation, not the copy from before the step.
    s.claude.write_login(&blanked(), &random_secret("mcp-"));
    s.run().assert_outcome(0, "OK", None);
    assert_same!(local_obj(&s), rotated);
    assert_eq!(s.claude.state().get("refused"), None, "no refresh token was ever refused");
}

#[test]
fn a_vault_copy_only_expires_at_calls_newer_is_degraded_never_silent() {
    let b = bao();
    let s = Agent::new(b);
    let (_, before) = s.good_login(now_ms() + 8 * HOUR_MS);
    s.run().assert_outcome(0, "OK", None);
    // Someone puts another login there by hand, with a later expiresAt.
    let version = b
        .kv_put(&s.name, json!({ "claudeAiOauth": oauth(&access_token(), &refresh_token(), now_ms() + 20 * HOUR_MS) }));

    let run = s.run();
    run.assert_outcome(75, "DEGRADED", Some("backup_undecided"));
    assert!(
        run.report().msg().contains("vault kv delete secret/workstation/claude-users/"),
        "says what to do: {}",
        run.line()
    );
    assert_eq!(s.vault_copy().unwrap().0, version, "Vault is not regressed");
    assert_eq!(std::fs::read(s.claude.creds()).unwrap(), before, "the local login is not touched");
    assert_eq!(s.journal_entries().last().unwrap()["CLAUDE_AUTH_SYNC_REASON"], "backup_undecided");

    // As the message says: delete that version, and the next run backs up the local login.
    b.root("DELETE", &format!("secret/data/workstation/claude-users/{}", s.name), None);
    let run = s.run();
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().action(), Some("backed_up"), "{}", run.line());
    assert_same!(s.vault_copy().unwrap().1["claudeAiOauth"], local_obj(&s));
}
