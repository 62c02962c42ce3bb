//! auto_auth against a real OpenBao dev server: token_file and AppRole login, renewal,
//! the identity check, invalid tokens, sinks, and Vault being down or stalled.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::json;

/// A config with a fast retry policy, `method` and `extra` inside auto_auth.
fn config(dir: &Path, addr: &str, method: &str, extra: &str) -> PathBuf {
    let text = format!(
        r#"
vault {{
  address = "{addr}"
  timeout = "5s"
  retry {{
    num_retries = 1
    min_backoff = "100ms"
    max_backoff = "200ms"
  }}
}}
auto_auth {{
  {method}
  {extra}
}}
log {{
  path = "{dir}/state/sync.log"
}}
"#,
        dir = dir.display()
    );
    write_file(dir, "config.hcl", &text, 0o600)
}

fn token_method(path: &Path) -> String {
    format!("method \"token_file\" {{\n config = {{ token_file_path = \"{}\" }}\n }}", path.display())
}

fn sink(path: &Path) -> String {
    format!("sink \"file\" {{\n config = {{ path = \"{}\" }}\n }}", path.display())
}

const EXPECT_ALICE: &str = r#"expect {
    policies = ["claude-auth-sync-alice"]
    meta     = { os_user = "alice" }
  }"#;

fn alice_token(b: &Bao) -> (String, String) {
    b.token(json!({ "policies": ["claude-auth-sync-alice"], "period": "1h", "meta": { "os_user": "alice" } }))
}

fn run_once(cfg: &Path) -> Run {
    agent(&["run", "--once", "--config", cfg.to_str().unwrap()], &[])
}

#[test]
fn token_file_login_renews_the_token_and_writes_the_sink_0600() {
    let b = bao();
    let dir = tempfile::tempdir().unwrap();
    let (token, _) = alice_token(b);
    let token_file = write_file(dir.path(), "vault-token", &token, 0o600);
    let sink_path = dir.path().join("agent-token");
    let cfg = config(dir.path(), &b.addr, &token_method(&token_file), &format!("{EXPECT_ALICE}\n{}", sink(&sink_path)));

    std::thread::sleep(Duration::from_millis(2100));
    let ttl_before = b.lookup(&token)["ttl"].as_u64().unwrap();
    let run = run_once(&cfg);
    let ttl_after = b.lookup(&token)["ttl"].as_u64().unwrap();

    run.assert_outcome(0, "OK", None);
    assert!(run.report().contains("auth=token_file"), "{}", run.report());
    assert!(ttl_after > ttl_before, "renew-self must extend the TTL: {ttl_before}s before, {ttl_after}s after");
    assert_same!(std::fs::read_to_string(&sink_path).unwrap(), token, "the sink holds the token");
    assert_eq!(mode_of(&sink_path), 0o600);
}

#[test]
fn approle_login_gets_a_working_token_into_the_sink() {
    let b = bao();
    let dir = tempfile::tempdir().unwrap();
    let (role_id, secret_id) = b.approle("claude-auth-sync-carol", &["claude-auth-sync-carol"]);
    let role_file = write_file(dir.path(), "role-id", &role_id, 0o600);
    let secret_file = write_file(dir.path(), "secret-id", &secret_id, 0o600);
    let sink_path = dir.path().join("agent-token");
    let method = format!(
        "method \"approle\" {{\n mount_path = \"auth/approle\"\n config = {{\n role_id_file_path = \"{}\"\n secret_id_file_path = \"{}\"\n }}\n }}",
        role_file.display(),
        secret_file.display()
    );
    let expect = r#"expect {
      policies = ["claude-auth-sync-carol"]
      meta = { role_name = "claude-auth-sync-carol" }
    }"#;
    let cfg = config(dir.path(), &b.addr, &method, &format!("{expect}\n{}", sink(&sink_path)));

    let run = run_once(&cfg);
    run.assert_outcome(0, "OK", None);
    assert!(run.report().contains("auth=approle"), "{}", run.report());

    let token = secret(std::fs::read_to_string(&sink_path).unwrap());
    let looked_up = b.lookup(&token);
    assert!(looked_up["policies"].as_array().unwrap().contains(&json!("claude-auth-sync-carol")), "{looked_up}");
    assert_eq!(mode_of(&sink_path), 0o600);
    assert!(secret_file.exists(), "the secret-id is kept by default: the next timer run needs it");

    // A wrong secret-id is refused by Vault: the credential is invalid, not a transient error.
    write_file(dir.path(), "secret-id", &random_secret("wrong-secret-id-"), 0o600);
    let run = run_once(&cfg);
    run.assert_outcome(1, "FAIL", Some("vault_token_invalid"));
}

/// The drifted token must be used for renew/lookup only: checked in Vault's audit log.
fn assert_drift_refused(token_spec: serde_json::Value, why: &str) {
    let b = bao();
    let dir = tempfile::tempdir().unwrap();
    let (token, accessor) = b.token(token_spec);
    let token_file = write_file(dir.path(), "vault-token", &token, 0o600);
    let sink_path = dir.path().join("agent-token");
    let cfg = config(dir.path(), &b.addr, &token_method(&token_file), &format!("{EXPECT_ALICE}\n{}", sink(&sink_path)));

    let run = run_once(&cfg);
    run.assert_outcome(1, "FAIL", Some("vault_token_drift"));
    assert!(run.report().contains(why), "the report says what drifted ({why}): {}", run.report());
    assert!(!sink_path.exists(), "a drifted token is not written to any sink");

    let paths = b.requests_by(&accessor);
    assert!(paths.iter().any(|p| p == "auth/token/renew-self"), "the audit log shows the renew: {paths:?}");
    let others: Vec<_> =
        paths.iter().filter(|p| *p != "auth/token/renew-self" && *p != "auth/token/lookup-self").collect();
    assert!(others.is_empty(), "requests beyond renew/lookup made with a drifted token: {others:?}");
}

#[test]
fn a_token_missing_an_expected_policy_is_refused_as_drift() {
    assert_drift_refused(
        json!({ "policies": ["claude-auth-sync-bob"], "period": "1h", "meta": { "os_user": "alice" } }),
        "policies lack claude-auth-sync-alice",
    );
}

#[test]
fn a_token_carrying_other_meta_is_refused_as_drift() {
    assert_drift_refused(
        json!({ "policies": ["claude-auth-sync-alice"], "period": "1h", "meta": { "os_user": "bob" } }),
        "meta os_user is",
    );
}

#[test]
fn a_revoked_token_is_vault_token_invalid() {
    let b = bao();
    let dir = tempfile::tempdir().unwrap();
    let (token, _) = alice_token(b);
    b.revoke(&token);
    let token_file = write_file(dir.path(), "vault-token", &token, 0o600);
    let cfg = config(dir.path(), &b.addr, &token_method(&token_file), EXPECT_ALICE);

    let run = run_once(&cfg);
    run.assert_outcome(1, "FAIL", Some("vault_token_invalid"));
    assert!(run.report().contains("provisioner"), "the message says who acts: {}", run.report());
    assert!(!run.stderr.contains("retrying"), "a 403 is not retried: {}", run.stderr);
}

#[test]
fn an_expired_token_is_vault_token_invalid() {
    let b = bao();
    let dir = tempfile::tempdir().unwrap();
    let (token, _) =
        b.token(json!({ "policies": ["claude-auth-sync-alice"], "ttl": "1s", "meta": { "os_user": "alice" } }));
    let token_file = write_file(dir.path(), "vault-token", &token, 0o600);
    let cfg = config(dir.path(), &b.addr, &token_method(&token_file), EXPECT_ALICE);
    std::thread::sleep(Duration::from_millis(2500));

    let run = run_once(&cfg);
    run.assert_outcome(1, "FAIL", Some("vault_token_invalid"));
}

#[test]
fn a_group_readable_token_file_is_refused_before_any_request() {
    let b = bao();
    let dir = tempfile::tempdir().unwrap();
    let (token, accessor) = alice_token(b);
    let token_file = write_file(dir.path(), "vault-token", &token, 0o640);
    let sink_path = dir.path().join("agent-token");
    let cfg = config(dir.path(), &b.addr, &token_method(&token_file), &sink(&sink_path));

    let run = run_once(&cfg);
    run.assert_outcome(1, "FAIL", Some("vault_credential_unusable"));
    assert!(run.report().contains(&format!("chmod 600 {}", token_file.display())), "says how to fix: {}", run.report());
    assert!(b.requests_by(&accessor).is_empty(), "the token was sent to Vault");
    assert!(!sink_path.exists());
}

/// The example config's `vault` block with another address, to hold the example to its promise.
fn example_config(dir: &Path, addr: &str, token_file: &Path) -> PathBuf {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.hcl.example")).unwrap();
    let text = example
        .replace("https://vault.example.com:8200", addr)
        .replace("~/.config/claude-auth-sync/vault-token", &token_file.display().to_string())
        .replace("~/.local/state/claude-auth-sync/sync.log", &dir.join("sync.log").display().to_string());
    assert!(
        text.contains(addr) && text.contains(&token_file.display().to_string()),
        "the example config changed shape"
    );
    // Auth only: the example's template would touch this user's real Claude Code login.
    write_file(dir, "config.hcl", &format!("{text}\nexit_after_auth = true\n"), 0o600)
}

#[test]
fn vault_down_is_degraded_within_the_example_retry_bound() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = write_file(dir.path(), "vault-token", &random_secret("s.down-"), 0o600);
    let cfg = example_config(dir.path(), &format!("http://127.0.0.1:{}", free_port()), &token_file);

    let run = run_once(&cfg);
    run.assert_outcome(75, "DEGRADED", Some("vault_unreachable"));
    assert_eq!(run.stderr.matches("retrying in").count(), 3, "num_retries = 3 in the example: {}", run.stderr);
    assert!(run.elapsed < Duration::from_secs(30), "gave up after {:?}", run.elapsed);
}

#[test]
fn vault_stalling_is_degraded_within_the_example_retry_bound() {
    // Accepts connections (the kernel does, through the backlog) and never answers.
    let stall = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", stall.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let token_file = write_file(dir.path(), "vault-token", &random_secret("s.stall-"), 0o600);
    let cfg = example_config(dir.path(), &addr, &token_file);

    let run = run_once(&cfg);
    run.assert_outcome(75, "DEGRADED", Some("vault_unreachable"));
    assert!(run.report().contains("no answer within 5s"), "{}", run.report());
    assert!(run.elapsed < Duration::from_secs(30), "gave up after {:?}", run.elapsed);
    drop(stall);
}

#[test]
fn tls_with_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let tls = BaoTls::start(dir.path());
    // The root token: not renewable, so this also covers the lookup-self fallback.
    let token_file = write_file(dir.path(), "vault-token", &tls.root, 0o600);
    let with_ca = format!(
        "vault {{\n address = \"{}\"\n ca_cert = \"{}\"\n timeout = \"5s\"\n retry {{ num_retries = 0 }}\n}}\nauto_auth {{\n {}\n}}\n",
        tls.addr,
        tls.ca.display(),
        token_method(&token_file)
    );
    let cfg = write_file(dir.path(), "tls.hcl", &with_ca, 0o600);
    let run = run_once(&cfg);
    run.assert_outcome(0, "OK", None);
    assert!(run.report().contains("token_renewable=false"), "{}", run.report());

    // Without the CA the server is not trusted: nothing is sent in clear, the run does not pass.
    let without_ca = with_ca.replace(&format!(" ca_cert = \"{}\"\n", tls.ca.display()), "");
    let cfg = write_file(dir.path(), "tls-no-ca.hcl", &without_ca, 0o600);
    let run = run_once(&cfg);
    run.assert_outcome(1, "FAIL", Some("vault_tls_error"));
    assert!(run.report().contains("certificate"), "{}", run.report());
}

#[test]
#[should_panic(expected = "LEAK")]
fn the_leak_check_catches_a_planted_secret() {
    let planted = random_secret("s.planted-");
    assert_no_leaks("a planted string", &format!("status=OK msg=\"{planted}\""));
}
