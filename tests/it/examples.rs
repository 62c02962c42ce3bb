//! Every config in docs/examples/, run as the file itself against a real OpenBao and a
//! stand-in for its tool's CLI (tests/it/common/tools.rs, scripts/fake-codex,
//! scripts/fake-gcloud; Claude Code's stand-in for Claude): the file is read from
//! docs/examples and only the three placeholders every example marks are replaced
//! (the Vault address `https://vault.example.com:8200`, `~/` by a scratch home,
//! `${user}` by a throwaway user). And every example passes `check-config` as it is.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::agent::run::{Run, agent, pairs};
use crate::common::agent::user::Agent;
use crate::common::bao::{Bao, bao};
use crate::common::claude::stand_in::{HOUR_MS, now_ms};
use crate::common::files::mode_of;
use crate::common::secrets::{assert_no_leaks, random_secret};
use crate::common::tools::{Tools, codex_auth_json, codex_tokens, gcloud_adc};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples");
/// The Vault address every example names, replaced by the test server's.
const ADDRESS: &str = "https://vault.example.com:8200";

/// One user running one example: their Vault identity and Claude Code's stand-in
/// ([`Agent`]), the other tools' stand-ins in a scratch home ([`Tools`]), and the
/// example's text with its placeholders replaced as its config.
struct Example<'b> {
    s: Agent<'b>,
    tools: Tools,
}

impl<'b> Example<'b> {
    /// `file` of docs/examples for a new user whose policy also grants `secrets`
    /// (as the roster's `secrets:` does), with the user's token where the example
    /// looks for it.
    fn new(b: &'b Bao, file: &str, secrets: &[&str]) -> Example<'b> {
        let s = Agent::new(b);
        b.grant_secrets(&s.name, secrets);
        let tools = Tools::new(s.dir.path());
        let agent_dir = tools.home.join(".config/claude-auth-sync");
        std::fs::create_dir_all(&agent_dir).unwrap();
        std::fs::copy(s.dir.path().join("vault-token"), agent_dir.join("vault-token")).unwrap();
        let home = format!("{}/", tools.home.display());
        let text = instantiate(&example_text(file), &[(ADDRESS, &b.addr), ("~/", &home), ("${user}", &s.name)]);
        let s = s.with_config_text(&text, tools.home.join(".local/state/claude-auth-sync/sync.log"));
        Example { s, tools }
    }

    /// `run --once`, every output leak-checked.
    fn run(&self) -> Run {
        self.s.run_with(&pairs(&self.tools.env(&[&self.s.claude.bin])))
    }

    /// `workstation/claude-users/<user>/<name>`: one of the user's extra secrets.
    fn secret(&self, name: &str) -> String {
        format!("workstation/claude-users/{}/{name}", self.s.name)
    }

    fn vault(&self, name: &str) -> Option<(u64, Value)> {
        self.s.b.kv_latest_at(&self.secret(name))
    }
}

fn example_text(file: &str) -> String {
    let path = Path::new(EXAMPLES).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `text` with each placeholder replaced; one the text does not contain fails the
/// test, so that an example cannot silently stop being the file that is run.
fn instantiate(text: &str, replace: &[(&str, &str)]) -> String {
    replace.iter().fold(text.to_string(), |t, (from, to)| {
        assert!(t.contains(from), "the example no longer contains the placeholder {from}");
        t.replace(from, to)
    })
}

/// The file names of docs/examples/*.hcl.
fn hcl_examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(EXAMPLES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "hcl"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_passes_check_config_as_it_is_and_as_toml() {
    let files = hcl_examples();
    let names: Vec<String> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for expected in ["codex.hcl", "gcloud-adc.hcl", "gh-hosts.hcl", "claude-and-codex.hcl"] {
        assert!(names.iter().any(|n| n == expected), "docs/examples/{expected} is missing: {names:?}");
    }
    for file in &files {
        let run = agent(&["check-config", "--config", file.to_str().unwrap()], &[]);
        assert_eq!(run.code, 0, "check-config {}:\n{}", file.display(), run.stderr);
        assert!(run.stdout.contains("template {"), "{} printed no template:\n{}", file.display(), run.stdout);
        // The same config as TOML: converted by check-config, read back the same.
        let toml = agent(&["check-config", "--config", file.to_str().unwrap(), "--print-as", "toml"], &[]);
        assert_eq!(toml.code, 0, "check-config --print-as toml {}:\n{}", file.display(), toml.stderr);
        let dir = tempfile::tempdir().unwrap();
        let as_toml = dir.path().join(file.with_extension("toml").file_name().unwrap());
        std::fs::write(&as_toml, &toml.stdout).unwrap();
        let back = agent(&["check-config", "--config", as_toml.to_str().unwrap(), "--print-as", "hcl"], &[]);
        assert_eq!(back.code, 0, "check-config {} (TOML):\n{}\n{}", file.display(), back.stderr, toml.stdout);
        // The first line names the file read; the rest is the config.
        let body = |out: &str| out.split_once('\n').map(|(_, rest)| rest.to_string()).unwrap_or_default();
        let hcl = agent(&["check-config", "--config", file.to_str().unwrap(), "--print-as", "hcl"], &[]);
        assert_eq!(
            body(&back.stdout),
            body(&hcl.stdout),
            "{}: the TOML form prints back as the same config",
            file.display()
        );
    }
}

// ------------------------------------------------------------------ codex.hcl

#[test]
fn codex_a_working_login_is_proven_by_a_real_request_and_backed_up() {
    let b = bao();
    let e = Example::new(b, "codex.hcl", &["codex"]);
    let tokens = codex_tokens(&e.tools.endpoint, true);
    e.tools.write(&e.tools.codex_auth(), &codex_auth_json(&tokens));
    let before = std::fs::read(e.tools.codex_auth()).unwrap();

    let run = e.run();
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().action(), Some("backed_up"), "{}", run.line());
    let (version, data) = e.vault("codex").expect("backed up");
    assert_same!(data, json!({ "tokens": tokens }), "exactly the tokens object, under field tokens");
    assert_eq!(version, 1);
    let requests = e.tools.codex_requests();
    assert_eq!(requests.len(), 1, "one real request through the stand-in codex");
    assert_same!(requests[0], (tokens["access_token"].as_str().unwrap().to_string(), true));
    assert_eq!(std::fs::read(e.tools.codex_auth()).unwrap(), before, "a backup does not touch the file");

    let again = e.run();
    again.assert_outcome(0, "OK", None);
    assert_eq!(again.report().action(), Some("verified"), "{}", again.line());
    assert_eq!(e.vault("codex").unwrap().0, 1, "Vault already holds it: no new version");
}

#[test]
fn codex_a_clobbered_login_is_recovered_from_vault_keeping_the_files_other_keys() {
    let b = bao();
    let e = Example::new(b, "codex.hcl", &["codex"]);
    let good = codex_tokens(&e.tools.endpoint, true);
    e.tools.write(&e.tools.codex_auth(), &codex_auth_json(&good));
    e.run().assert_outcome(0, "OK", None);

    // Another login's tokens, which the API rejects, over the working one; the
    // file's other keys changed meanwhile.
    let dead = codex_tokens(&e.tools.endpoint, false);
    let mut clobbered = codex_auth_json(&dead);
    clobbered["last_refresh"] = json!("2026-12-01T08:00:00Z");
    clobbered["preferred_auth_method"] = json!("chatgpt");
    e.tools.write(&e.tools.codex_auth(), &clobbered);

    let run = e.run();
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().action(), Some("recovered"), "{}", run.line());
    let doc = e.tools.read(&e.tools.codex_auth());
    assert_same!(doc["tokens"], good, "Vault's copy of the tokens is back");
    assert_eq!(doc["last_refresh"], "2026-12-01T08:00:00Z", "the file's other keys are kept");
    assert_eq!((&doc["OPENAI_API_KEY"], &doc["preferred_auth_method"]), (&Value::Null, &json!("chatgpt")));
    assert_eq!(mode_of(&e.tools.codex_auth()), 0o600);
    let verdicts: Vec<bool> = e.tools.codex_requests().iter().map(|(_, ok)| *ok).collect();
    assert_eq!(verdicts, [true, false, true], "backup, the rejected clobber, the restored login");

    // No tokens at all (a half-written file): restored the same way.
    e.tools.write(&e.tools.codex_auth(), &json!({ "OPENAI_API_KEY": null, "last_refresh": "x" }));
    let run = e.run();
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().action(), Some("recovered"), "{}", run.line());
    assert_same!(e.tools.read(&e.tools.codex_auth())["tokens"], good);
}

#[test]
fn codex_a_login_vault_cannot_mend_names_the_codex_file_not_claude() {
    let b = bao();
    let e = Example::new(b, "codex.hcl", &["codex"]);
    let stale = codex_tokens(&e.tools.endpoint, false);
    b.kv_put_at(&e.secret("codex"), json!({ "tokens": stale }));
    let dead = codex_tokens(&e.tools.endpoint, false);
    e.tools.write(&e.tools.codex_auth(), &codex_auth_json(&dead));

    let run = e.run();
    run.assert_outcome(1, "FAIL", Some("login_required"));
    let msg = run.report().msg().to_string();
    assert!(msg.contains("the tool that writes") && msg.contains(".codex/auth.json"), "{msg}");
    assert!(!msg.contains("claude auth login"), "{msg}");
    assert_same!(e.tools.read(&e.tools.codex_auth())["tokens"], dead, "the rejected restore is undone");
}

#[test]
fn codex_without_the_roster_grant_is_denied_and_the_file_left_alone() {
    let b = bao();
    let e = Example::new(b, "codex.hcl", &[]);
    let tokens = codex_tokens(&e.tools.endpoint, true);
    e.tools.write(&e.tools.codex_auth(), &codex_auth_json(&tokens));
    let before = std::fs::read(e.tools.codex_auth()).unwrap();
    let run = e.run();
    assert_eq!(run.report().status(), "FAIL", "{}", run.line());
    assert_eq!(run.report().reason(), Some("vault_permission_denied"), "{}", run.line());
    assert_eq!(std::fs::read(e.tools.codex_auth()).unwrap(), before);
}

// ------------------------------------------------------------------ gcloud-adc.hcl

#[test]
fn gcloud_the_whole_credentials_file_is_backed_up_and_restored() {
    let b = bao();
    let e = Example::new(b, "gcloud-adc.hcl", &["gcloud"]);
    let adc = gcloud_adc(&e.tools.endpoint, true);
    let file = e.tools.gcloud_adc();
    e.tools.write(&file, &adc);

    let run = e.run();
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().action(), Some("backed_up"), "{}", run.line());
    assert_same!(e.vault("gcloud").expect("backed up").1, json!({ "adc": adc }), "the whole file, under adc");
    assert_eq!(e.tools.google_refreshes().len(), 1, "one real token refresh through the stand-in gcloud");

    // Clobbered (a truncated write): restored whole, the bytes kept beside it.
    std::fs::write(&file, b"{\"type\": \"authorized_us").unwrap();
    let run = e.run();
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().action(), Some("recovered"), "{}", run.line());
    assert!(run.report().fact("original_kept").is_some(), "{}", run.line());
    assert_same!(e.tools.read(&file), adc);
    assert_eq!(mode_of(&file), 0o600);

    // Replaced by a revoked login (Google answers invalid_grant): Vault's copy is back.
    e.tools.write(&file, &gcloud_adc(&e.tools.endpoint, false));
    let run = e.run();
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().action(), Some("recovered"), "{}", run.line());
    assert_same!(e.tools.read(&file), adc);

    // Gone (a home reset that kept the directory): restored.
    std::fs::remove_file(&file).unwrap();
    let run = e.run();
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().action(), Some("recovered"), "{}", run.line());
    assert_same!(e.tools.read(&file), adc);
    assert_eq!(mode_of(&file), 0o600);
    assert_eq!(e.vault("gcloud").unwrap().0, 1, "the same login all along: no new version");
    let verdicts: Vec<bool> = e.tools.google_refreshes().iter().map(|(_, ok)| *ok).collect();
    assert_eq!(verdicts, [true, true, false, true, true], "each file on disk was proven by a refresh");
}

// ------------------------------------------------------------------ gh-hosts.hcl

#[test]
fn gh_hosts_yml_is_rendered_private_and_again_when_vaults_copy_changes() {
    let b = bao();
    let e = Example::new(b, "gh-hosts.hcl", &["gh"]);
    let first = random_secret("gho_first");
    b.kv_put_at(&e.secret("gh"), json!({ "user": "octo-cat", "oauth_token": first }));
    let hosts = e.tools.home.join(".config/gh/hosts.yml");
    std::fs::create_dir_all(hosts.parent().unwrap()).unwrap();

    let run = e.run();
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().action(), Some("rendered"), "{}", run.line());
    assert_eq!(mode_of(&hosts), 0o600);
    let yaml = |p: &Path| -> Value { serde_norway::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let doc = yaml(&hosts);
    assert_same!(doc["github.com"]["oauth_token"], json!(first), "gh reads the token here");
    assert_same!(doc["github.com"]["users"]["octo-cat"]["oauth_token"], json!(first));
    assert_eq!((&doc["github.com"]["user"], &doc["github.com"]["git_protocol"]), (&json!("octo-cat"), &json!("https")));

    let unchanged = e.run();
    unchanged.assert_outcome(0, "OK", None);
    assert_eq!(unchanged.report().action(), Some("unchanged"), "{}", unchanged.line());

    // A new token in Vault (rotated by an admin), with YAML's special characters in it.
    let second = random_secret("gho_second: #'\"{");
    b.kv_put_at(&e.secret("gh"), json!({ "user": "octo-cat", "oauth_token": second }));
    let run = e.run();
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().action(), Some("rendered"), "{}", run.line());
    assert_same!(yaml(&hosts)["github.com"]["oauth_token"], json!(second), "the new token, one YAML scalar");
    assert_eq!(mode_of(&hosts), 0o600);
    assert_no_leaks("sync.log", &std::fs::read_to_string(e.s.log()).unwrap());
    assert_eq!(std::fs::read_to_string(e.s.log()).unwrap().lines().count(), 3, "one line per run");
}

// ------------------------------------------------------------------ claude-and-codex.hcl

#[test]
fn claude_and_codex_one_run_one_identity_one_report_line() {
    let b = bao();
    let e = Example::new(b, "claude-and-codex.hcl", &["codex"]);
    let (login, _) = e.s.good_login(now_ms() + 8 * HOUR_MS);
    let codex = codex_tokens(&e.tools.endpoint, true);
    e.tools.write(&e.tools.codex_auth(), &codex_auth_json(&codex));

    let run = e.run();
    run.assert_outcome(0, "OK", None);
    let line = run.report();
    assert_eq!((line.action(), line.fact("templates")), (Some("backed_up"), Some("backed_up,backed_up")), "{line}");
    assert_same!(e.s.vault_copy().expect("Claude's backed up").1, json!({ "claudeAiOauth": login }));
    assert_same!(e.vault("codex").expect("Codex's backed up").1, json!({ "tokens": codex }));
    let paths = b.requests_by(&e.s.accessor);
    let claude_path = format!("secret/data/workstation/claude-users/{}", e.s.name);
    for path in [claude_path.clone(), format!("{claude_path}/codex")] {
        assert!(paths.contains(&path), "{path} read and written with the user's one token: {paths:?}");
    }
    let log = std::fs::read_to_string(e.s.log()).unwrap();
    assert_eq!(log.lines().count(), 1, "one report line for both:\n{log}");

    // Only Codex's file is clobbered: the same run verifies Claude's and recovers Codex's.
    e.tools.write(&e.tools.codex_auth(), &codex_auth_json(&codex_tokens(&e.tools.endpoint, false)));
    let run = e.run();
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().fact("templates"), Some("verified,recovered"), "{}", run.line());
    assert_same!(e.tools.read(&e.tools.codex_auth())["tokens"], codex);

    // Codex's login is gone for good (Vault's copy is rejected too): the line is
    // Codex's FAIL and names it, and Claude's login was still verified.
    e.tools.write(&e.tools.codex_auth(), &codex_auth_json(&codex_tokens(&e.tools.endpoint, false)));
    b.kv_put_at(&e.secret("codex"), json!({ "tokens": codex_tokens(&e.tools.endpoint, false) }));
    let run = e.run();
    run.assert_outcome(1, "FAIL", Some("login_required"));
    let line = run.report();
    assert_eq!(
        (line.fact("template"), line.fact("templates")),
        (Some("template #2"), Some("verified,login_required")),
        "{line}"
    );
    assert!(line.msg().contains(".codex/auth.json"), "{line}");
    assert_eq!(std::fs::read_to_string(e.s.log()).unwrap().lines().count(), 3, "one line per run");
}
