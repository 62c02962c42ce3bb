//! auto_auth against a real OpenBao dev server: token_file and AppRole login (one login
//! kept and renewed across runs), renewal, the exact identity check before any
//! renewal, invalid tokens, sinks, TLS pinned to `ca_cert`, no token in clear text to
//! another machine, and Vault being down or stalled.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::agent::config::{AgentConfig, Method};
use crate::common::agent::run::{Run, agent};
use crate::common::bao::server::{BaoTls, cleartext_listener, tls_listener};
use crate::common::bao::{Bao, bao};
use crate::common::files::{mode_of, write_file};
use crate::common::net::{free_port, non_loopback_ipv4};
use crate::common::secrets::{random_secret, secret};
use serde_json::json;

/// A config with a fast retry policy and a private log in `dir`; auto_auth is the test's.
fn config(dir: &Path, addr: &str) -> AgentConfig {
    AgentConfig::new(addr).timeout("5s").quick_retry().log(&dir.join("state/sync.log"))
}

/// What alice's token must be: her policy and nothing else, `os_user = "alice"`.
const ALICE_POLICIES: &[&str] = &["claude-auth-sync-alice"];
const ALICE_META: &[(&str, &str)] = &[("os_user", "alice")];

/// A config logging in with `token` from a file, expecting alice, with a file sink:
/// the config's path and the sink's.
fn as_alice_with_a_sink(dir: &Path, addr: &str, token: &str) -> (PathBuf, PathBuf) {
    let token_file = write_file(dir, "vault-token", token, 0o600);
    let sink = dir.join("agent-token");
    let cfg = config(dir, addr)
        .method(Method::token_file(&token_file))
        .expect(ALICE_POLICIES, ALICE_META)
        .sink(&sink)
        .write(dir, "config.hcl");
    (cfg, sink)
}

fn alice_token(b: &Bao) -> (String, String) {
    b.user_policy("alice");
    b.token(json!({
        "policies": ["claude-auth-sync-alice"], "no_default_policy": true, "period": "1h", "meta": { "os_user": "alice" }
    }))
}

fn run_once(cfg: &Path) -> Run {
    agent(&["run", "--once", "--config", cfg.to_str().unwrap()], &[])
}

#[test]
fn token_file_login_renews_the_token_and_writes_the_sink_0600() {
    let b = bao();
    let dir = tempfile::tempdir().unwrap();
    let (token, _) = alice_token(b);
    let (cfg, sink_path) = as_alice_with_a_sink(dir.path(), &b.addr, &token);

    std::thread::sleep(Duration::from_millis(2100));
    let ttl_before = b.lookup(&token)["ttl"].as_u64().unwrap();
    let run = run_once(&cfg);
    let ttl_after = b.lookup(&token)["ttl"].as_u64().unwrap();

    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().fact("auth"), Some("token_file"), "{}", run.line());
    assert!(ttl_after > ttl_before, "renew-self must extend the TTL: {ttl_before}s before, {ttl_after}s after");
    assert_same!(std::fs::read_to_string(&sink_path).unwrap(), token, "the sink holds the token");
    assert_eq!(mode_of(&sink_path), 0o600);
}

#[test]
fn approle_login_gets_a_working_token_into_the_sink() {
    let b = bao();
    let dir = tempfile::tempdir().unwrap();
    b.user_policy("carol");
    let (role_id, secret_id) = b.approle("claude-auth-sync-carol", &["claude-auth-sync-carol"]);
    let role_file = write_file(dir.path(), "role-id", &role_id, 0o600);
    let secret_file = write_file(dir.path(), "secret-id", &secret_id, 0o600);
    let sink_path = dir.path().join("agent-token");
    let cfg = config(dir.path(), &b.addr)
        .method(Method::approle(&role_file, &secret_file).mount_path("auth/approle"))
        .expect(&["claude-auth-sync-carol"], &[("role_name", "claude-auth-sync-carol")])
        .sink(&sink_path)
        .write(dir.path(), "config.hcl");

    let run = run_once(&cfg);
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().fact("auth"), Some("approle"), "{}", run.line());

    let token = secret(std::fs::read_to_string(&sink_path).unwrap());
    let looked_up = b.lookup(&token);
    assert!(looked_up["policies"].as_array().unwrap().contains(&json!("claude-auth-sync-carol")), "{looked_up}");
    assert_eq!(mode_of(&sink_path), 0o600);
    assert!(secret_file.exists(), "the secret-id is kept by default: the next timer run needs it");

    // A wrong secret-id is refused by Vault: the credential is invalid, not a transient
    // error. (Once the kept login is gone: until then no login is needed.)
    write_file(dir.path(), "secret-id", &random_secret("wrong-secret-id-"), 0o600);
    b.revoke(&token);
    let run = run_once(&cfg);
    run.assert_outcome(1, "FAIL", Some("vault_token_invalid"));
}

/// Issue 9.9: one AppRole login, kept 0600 and renewed across runs (its sink stays
/// valid for the sink's readers); a new login only when the kept token is dead; a kept
/// token that drifted is revoked, not left behind. Live tokens are counted by root.
#[test]
fn approle_logins_are_kept_and_renewed_instead_of_piling_up() {
    let b = bao();
    let dir = tempfile::tempdir().unwrap();
    let user = format!("r{}", &random_secret("role-user-")[10..20]);
    let role = format!("claude-auth-sync-{user}");
    b.user_policy(&user);
    let (role_id, secret_id) = b.approle(&role, &[&role]);
    let role_file = write_file(dir.path(), "role-id", &role_id, 0o600);
    let secret_file = write_file(dir.path(), "secret-id", &secret_id, 0o600);
    // token_cache_path's default: beside the secret-id.
    let kept = dir.path().join("secret-id.token");
    let sink_path = dir.path().join("agent-token");
    let cfg = config(dir.path(), &b.addr)
        .method(Method::approle(&role_file, &secret_file))
        .expect(&[&role], &[("role_name", &role)])
        .sink(&sink_path)
        .write(dir.path(), "config.hcl");

    for _ in 0..6 {
        run_once(&cfg).assert_outcome(0, "OK", None);
    }
    let live = b.live_tokens("role_name", &role);
    assert_eq!(live.len(), 1, "six runs, one login: {} live tokens", live.len());
    let token = secret(std::fs::read_to_string(&kept).unwrap());
    assert_eq!(mode_of(&kept), 0o600);
    assert_same!(std::fs::read_to_string(&sink_path).unwrap(), token, "the sink holds the kept token");
    let accessor = b.lookup(&token)["accessor"].as_str().unwrap().to_string();
    let paths = b.requests_by(&accessor);
    assert_eq!(
        paths.iter().filter(|p| *p == "auth/token/renew-self").count(),
        5,
        "renewed by every later run: {paths:?}"
    );

    // Dead (revoked): the next run logs in again and keeps the new one.
    b.revoke(&token);
    run_once(&cfg).assert_outcome(0, "OK", None);
    let relogged = secret(std::fs::read_to_string(&kept).unwrap());
    assert_ne!(relogged, token);
    assert_eq!(b.live_tokens("role_name", &role).len(), 1);

    // Readable by others: it may have been read, so it is revoked and replaced.
    std::fs::set_permissions(&kept, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    run_once(&cfg).assert_outcome(0, "OK", None);
    let (status, _) = b.api(&b.root, "POST", "auth/token/lookup", Some(json!({ "token": relogged })));
    assert_eq!(status, 403, "the exposed kept token is revoked");
    let relogged = secret(std::fs::read_to_string(&kept).unwrap());
    assert_eq!(mode_of(&kept), 0o600);
    assert_eq!(b.live_tokens("role_name", &role).len(), 1);

    // Alive but no longer this identity (the role lost its policy): revoked, not kept.
    b.root("POST", &format!("auth/approle/role/{role}"), Some(json!({ "token_policies": [&role, "default"] })));
    b.revoke(&relogged);
    let (drifted, _) = b.token(json!({
        "policies": [&role, "default"], "period": "1h", "meta": { "role_name": &role }
    }));
    write_file(dir.path(), "secret-id.token", &drifted, 0o600);
    let run = run_once(&cfg);
    run.assert_outcome(1, "FAIL", Some("vault_token_drift"));
    let (status, _) = b.api(&b.root, "POST", "auth/token/lookup", Some(json!({ "token": drifted })));
    assert_eq!(status, 403, "the drifted kept token was revoked");
    assert!(b.live_tokens("role_name", &role).is_empty(), "the drifted fresh login was revoked too");
    assert!(!kept.exists(), "no drifted token is kept");
}

/// The drifted token is looked up and nothing else, not even renewed: checked in
/// Vault's audit log and by its TTL.
fn assert_drift_refused(token_spec: serde_json::Value, why: &str) {
    let b = bao();
    for user in ["alice", "bob"] {
        b.user_policy(user);
    }
    let dir = tempfile::tempdir().unwrap();
    let (token, accessor) = b.token(token_spec);
    let (cfg, sink_path) = as_alice_with_a_sink(dir.path(), &b.addr, &token);

    std::thread::sleep(Duration::from_millis(2100));
    let ttl_before = b.lookup(&token)["ttl"].as_u64().unwrap();
    let run = run_once(&cfg);
    run.assert_outcome(1, "FAIL", Some("vault_token_drift"));
    assert!(run.report().msg().contains(why), "the report says what drifted ({why}): {}", run.line());
    assert!(!sink_path.exists(), "a drifted token is not written to any sink");
    assert!(b.lookup(&token)["ttl"].as_u64().unwrap() <= ttl_before, "a drifted token must not be extended");

    let paths = b.requests_by(&accessor);
    assert!(paths.iter().any(|p| p == "auth/token/lookup-self"), "the audit log shows the lookup: {paths:?}");
    let others: Vec<_> = paths.iter().filter(|p| *p != "auth/token/lookup-self").collect();
    assert!(others.is_empty(), "requests beyond lookup-self made with a drifted token: {others:?}");
}

#[test]
fn a_token_missing_an_expected_policy_is_refused_as_drift() {
    assert_drift_refused(
        json!({ "policies": ["claude-auth-sync-bob"], "no_default_policy": true, "period": "1h", "meta": { "os_user": "alice" } }),
        "policies lack claude-auth-sync-alice",
    );
}

#[test]
fn a_token_carrying_other_meta_is_refused_as_drift() {
    assert_drift_refused(
        json!({ "policies": ["claude-auth-sync-alice"], "no_default_policy": true, "period": "1h", "meta": { "os_user": "bob" } }),
        "meta os_user is",
    );
}

/// Issue 9.11: the expected policies are the exact set, so a token that can also read
/// another user's secret is drift, found before it is renewed.
#[test]
fn a_token_with_another_users_policy_besides_its_own_is_refused_as_drift() {
    assert_drift_refused(
        json!({
            "policies": ["claude-auth-sync-alice", "claude-auth-sync-bob"], "no_default_policy": true,
            "period": "1h", "meta": { "os_user": "alice" }
        }),
        "policies also grant claude-auth-sync-bob",
    );
}

#[test]
fn the_default_policy_is_drift_unless_expect_lists_it() {
    assert_drift_refused(
        json!({ "policies": ["claude-auth-sync-alice"], "period": "1h", "meta": { "os_user": "alice" } }),
        "policies also grant default",
    );
    let b = bao();
    let dir = tempfile::tempdir().unwrap();
    let (token, _) =
        b.token(json!({ "policies": ["claude-auth-sync-alice"], "period": "1h", "meta": { "os_user": "alice" } }));
    let token_file = write_file(dir.path(), "vault-token", &token, 0o600);
    let cfg = config(dir.path(), &b.addr)
        .method(Method::token_file(&token_file))
        .expect(&["claude-auth-sync-alice", "default"], ALICE_META)
        .write(dir.path(), "config.hcl");
    run_once(&cfg).assert_outcome(0, "OK", None);
}

#[test]
fn a_revoked_token_is_vault_token_invalid() {
    let b = bao();
    let dir = tempfile::tempdir().unwrap();
    let (token, _) = alice_token(b);
    b.revoke(&token);
    let token_file = write_file(dir.path(), "vault-token", &token, 0o600);
    let cfg = config(dir.path(), &b.addr)
        .method(Method::token_file(&token_file))
        .expect(ALICE_POLICIES, ALICE_META)
        .write(dir.path(), "config.hcl");

    let run = run_once(&cfg);
    run.assert_outcome(1, "FAIL", Some("vault_token_invalid"));
    assert!(run.report().msg().contains("provisioner"), "the message says who acts: {}", run.line());
    assert!(!run.stderr.contains("retrying"), "a 403 is not retried: {}", run.stderr);
}

#[test]
fn an_expired_token_is_vault_token_invalid() {
    let b = bao();
    let dir = tempfile::tempdir().unwrap();
    b.user_policy("alice");
    let (token, _) = b.token(
        json!({ "policies": ["claude-auth-sync-alice"], "no_default_policy": true, "ttl": "1s", "meta": { "os_user": "alice" } }),
    );
    let token_file = write_file(dir.path(), "vault-token", &token, 0o600);
    let cfg = config(dir.path(), &b.addr)
        .method(Method::token_file(&token_file))
        .expect(ALICE_POLICIES, ALICE_META)
        .write(dir.path(), "config.hcl");
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
    let cfg = config(dir.path(), &b.addr)
        .method(Method::token_file(&token_file))
        .sink(&sink_path)
        .write(dir.path(), "config.hcl");

    let run = run_once(&cfg);
    run.assert_outcome(1, "FAIL", Some("vault_credential_unusable"));
    let fix = format!("chmod 600 {}", token_file.display());
    assert!(run.report().msg().contains(&fix), "says how to fix: {}", run.line());
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
    assert!(run.report().msg().contains("no answer within 5s"), "{}", run.line());
    assert!(run.elapsed < Duration::from_secs(30), "gave up after {:?}", run.elapsed);
    drop(stall);
}

#[test]
fn tls_with_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let tls = BaoTls::start(dir.path());
    // The root token: not renewable, so this also covers the lookup-self fallback.
    let token_file = write_file(dir.path(), "vault-token", &tls.root, 0o600);
    let without_ca = AgentConfig::new(&tls.addr).timeout("5s").retries(0).method(Method::token_file(&token_file));
    let cfg = without_ca.clone().ca_cert(&tls.ca).write(dir.path(), "tls.hcl");
    let run = run_once(&cfg);
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().fact("token_renewable"), Some("false"), "{}", run.line());

    // Without the CA the server is not trusted: nothing is sent in clear, the run does not pass.
    let cfg = without_ca.write(dir.path(), "tls-no-ca.hcl");
    let run = run_once(&cfg);
    run.assert_outcome(1, "FAIL", Some("vault_tls_error"));
    assert!(run.report().msg().contains("certificate"), "{}", run.line());
}

/// A CA made here and a certificate for 127.0.0.1 that it signed: (ca, cert, key) PEM files in `dir`.
fn another_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    ca.distinguished_name.push(DnType::CommonName, "not the Vault CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &ca).unwrap();
    (
        write_file(dir, "other-ca.pem", &ca.pem(), 0o644),
        write_file(dir, "impostor.pem", &cert.pem(), 0o644),
        write_file(dir, "impostor-key.pem", &key.serialize_pem(), 0o600),
    )
}

/// Issue 10.6: with `ca_cert` set, that file is the only trust anchor. A real OpenBao
/// whose certificate another CA signed is refused, also when that CA is what the
/// platform store trusts (`SSL_CERT_FILE`); trusting its own CA, the same server works.
#[test]
fn ca_cert_is_the_only_trust_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let genuine_dir = dir.path().join("genuine");
    std::fs::create_dir(&genuine_dir).unwrap();
    let genuine = BaoTls::start(&genuine_dir);
    let (other_ca, cert, key) = another_ca(dir.path());
    let port = free_port();
    let impostor = Bao::start_with_listener(tls_listener(&format!("127.0.0.1:{port}"), &cert, &key));
    // The impostor's own root token: wherever the impostor is trusted, the run passes.
    let token_file = write_file(dir.path(), "vault-token", &impostor.root, 0o600);
    let cfg = |ca: &Path| {
        AgentConfig::new(&format!("https://127.0.0.1:{port}"))
            .ca_cert(ca)
            .timeout("5s")
            .retries(0)
            .method(Method::token_file(&token_file))
            .write(dir.path(), "pinned.hcl")
    };
    let args = |cfg: &Path| ["run", "--once", "--config", &cfg.display().to_string()].map(String::from);
    let run = |cfg: &Path, env: &[(&str, &str)]| {
        let a = args(cfg);
        agent(&a.iter().map(String::as_str).collect::<Vec<_>>(), env)
    };

    run(&cfg(&other_ca), &[]).assert_outcome(0, "OK", None);
    let lookups = || std::fs::read_to_string(&impostor.audit_log).unwrap_or_default().matches("lookup-self").count();
    let seen = lookups();
    let pinned = cfg(&genuine.ca);
    for env in [vec![], vec![("SSL_CERT_FILE", other_ca.to_str().unwrap())]] {
        let r = run(&pinned, &env);
        r.assert_outcome(1, "FAIL", Some("vault_tls_error"));
        assert!(r.report().msg().contains("certificate"), "{env:?}: {}", r.line());
    }
    assert_eq!(lookups(), seen, "no request reached the impostor");
}

/// Issue 10.5: `http://` to another machine is refused before anything is sent (the
/// token would cross the network in clear text), from the config or from VAULT_ADDR,
/// unless `allow_cleartext_tokens = true` opts in.
#[test]
fn cleartext_http_to_another_machine_is_refused_unless_opted_in() {
    let ip = non_loopback_ipv4();
    let port = free_port();
    let b = Bao::start_with_listener(cleartext_listener(&format!("{ip}:{port}")));
    let dir = tempfile::tempdir().unwrap();
    let (token, accessor) = alice_token(&b);
    let token_file = write_file(dir.path(), "vault-token", &token, 0o600);
    let addr = format!("http://{ip}:{port}");
    let base = config(dir.path(), &addr).method(Method::token_file(&token_file)).expect(ALICE_POLICIES, ALICE_META);
    let cfg = base.clone().write(dir.path(), "config.hcl");

    let run = run_once(&cfg);
    assert_eq!(run.code, 78, "{}", run.stderr);
    for want in ["vault", "address", "clear text", &ip.to_string(), "allow_cleartext_tokens = true", "https://"] {
        assert!(run.stderr.contains(want), "the error names {want}: {}", run.stderr);
    }
    let from_env = base.clone().without_address().write(dir.path(), "env.hcl");
    let run = agent(&["run", "--once", "--config", from_env.to_str().unwrap()], &[("VAULT_ADDR", &addr)]);
    assert_eq!(run.code, 78, "{}", run.stderr);
    assert!(run.stderr.contains("(from VAULT_ADDR)") && run.stderr.contains("clear text"), "{}", run.stderr);
    assert!(b.requests_by(&accessor).is_empty(), "the token was sent in clear text");

    let opted_in = base.allow_cleartext_tokens().write(dir.path(), "opted-in.hcl");
    run_once(&opted_in).assert_outcome(0, "OK", None);
    let check = agent(&["check-config", "--config", opted_in.to_str().unwrap()], &[]);
    assert!(check.stdout.contains("allow_cleartext_tokens = true"), "{}", check.stdout);
}
