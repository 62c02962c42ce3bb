//! The config as parsed and printed: every block, every default, every refusal, on config texts.

use std::path::Path;
use std::time::Duration;

use super::*;

fn alice() -> OsUser {
    OsUser { name: "alice".into(), uid: 1000, gid: 1000, home: "/home/alice".into() }
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn load_str(text: &str) -> Result<Config, ConfigError> {
    parse(text, Path::new("/etc/test.hcl"), &alice(), &no_env)
}

const MINIMAL: &str = r#"
vault { address = "https://vault.example.com:8200" }
auto_auth {
  method "token_file" {
    config = { token_file_path = "~/.config/claude-auth-sync/vault-token" }
  }
}
template { secret = "secret/workstation/claude-users/${user}" }
"#;

#[test]
fn the_shortest_useful_config_gets_claude_code_defaults() {
    let c = load_str(MINIMAL).unwrap();
    assert_eq!(c.vault.timeout, Duration::from_secs(10));
    assert_eq!(c.vault.retry, Retry::default());
    assert_eq!(
        c.auto_auth.method,
        Method::TokenFile { token_file_path: "/home/alice/.config/claude-auth-sync/vault-token".into() }
    );
    assert_eq!(c.auto_auth.min_backoff, c.vault.retry.min_backoff);
    let t = &c.templates[0];
    assert_eq!(t.secret.as_str(), "secret/workstation/claude-users/alice");
    assert_eq!(t.destination, Path::new("/home/alice/.claude/.credentials.json"));
    assert_eq!(t.perms, 0o600);
    let TemplateKind::Json(j) = &t.kind else { panic!("a JSON template by default") };
    assert_eq!((j.field.as_str(), j.json_key.as_str()), ("claudeAiOauth", "claudeAiOauth"));
    assert_eq!((j.lock, j.restore, j.writeback), (Lock::ClaudeCode, Restore::OnFailure, true));
    let Probe::Command { command, timeout } = &j.probe else { panic!("command probe by default") };
    assert_eq!(command[0], "claude");
    assert!(!command.contains(&"--bare".to_string()));
    assert_eq!(*timeout, Duration::from_secs(120));
    assert_eq!(c.log.path, Path::new("/home/alice/.local/state/claude-auth-sync/sync.log"));
    assert!(!c.exit_after_auth);
}

#[test]
fn claude_config_dir_variables_move_the_default_destination() {
    let env = |k: &str| match k {
        "CLAUDE_CONFIG_DIR" => Some("/srv/claude".to_string()),
        _ => None,
    };
    let c = parse(MINIMAL, Path::new("/c.hcl"), &alice(), &env).unwrap();
    assert_eq!(c.templates[0].destination, Path::new("/srv/claude/.credentials.json"));
    let env = |k: &str| match k {
        "CLAUDE_CONFIG_DIR" => Some("/srv/claude".to_string()),
        "CLAUDE_SECURESTORAGE_CONFIG_DIR" => Some("/srv/secure".to_string()),
        _ => None,
    };
    let c = parse(MINIMAL, Path::new("/c.hcl"), &alice(), &env).unwrap();
    assert_eq!(c.templates[0].destination, Path::new("/srv/secure/.credentials.json"));
}

#[test]
fn environment_fallbacks_apply_only_when_the_key_is_absent() {
    let text = MINIMAL.replace("vault { address = \"https://vault.example.com:8200\" }", "");
    let env = |k: &str| match k {
        "VAULT_ADDR" => Some("https://from-vault-addr:8200".to_string()),
        "BAO_ADDR" => Some("https://from-bao-addr:8200".to_string()),
        "VAULT_CACERT" => Some("/etc/ca.pem".to_string()),
        _ => None,
    };
    let c = parse(&text, Path::new("/c.hcl"), &alice(), &env).unwrap();
    assert_eq!(c.vault.address.as_str(), "https://from-vault-addr:8200/");
    assert_eq!(c.vault.ca_cert.as_deref(), Some(Path::new("/etc/ca.pem")));
    let c = parse(MINIMAL, Path::new("/c.hcl"), &alice(), &env).unwrap();
    assert_eq!(c.vault.address.as_str(), "https://vault.example.com:8200/");
}

#[test]
fn printed_config_loads_back_to_the_same_config() {
    // Every block and most keys; the config fuzz target starts from this same file.
    let full = include_str!("../../fuzz/seeds/config_parse/full.hcl");
    let c = load_str(full).unwrap();
    assert_eq!(c.templates.len(), 3);
    assert_eq!(c.auto_auth.sinks.len(), 2);
    assert_eq!(c.auto_auth.sinks[0].mode, 0o640);
    let printed = c.to_hcl();
    let again = load_str(&printed).unwrap_or_else(|e| panic!("{e}\n{printed}"));
    assert_eq!(again, c, "{printed}");
}

#[test]
fn a_single_template_block_and_repeated_ones_both_work() {
    assert_eq!(load_str(MINIMAL).unwrap().templates.len(), 1);
    let two = format!("{MINIMAL}\ntemplate {{\n secret = \"secret/x/${{user}}\"\n destination = \"~/x.json\"\n}}\n");
    let c = load_str(&two).unwrap();
    assert_eq!(c.templates.len(), 2);
    assert_eq!(c.templates[1].name, "template #2");
    let none = MINIMAL.replace("template { secret = \"secret/workstation/claude-users/${user}\" }", "");
    assert!(load_str(&none).unwrap().templates.is_empty());
}

#[test]
fn json_key_slash_is_the_whole_file_and_an_empty_one_is_refused() {
    let one = "template { secret = \"secret/workstation/claude-users/${user}\" }";
    let with =
        |keys: &str| MINIMAL.replace(one, &format!("template {{\n secret = \"secret/x/${{user}}\"\n {keys}\n}}"));
    let whole = with("json_key = \"/\"\n field = \"adc\"");
    let c = load_str(&whole).unwrap();
    let TemplateKind::Json(j) = &c.templates[0].kind else { panic!("a JSON template") };
    assert_eq!((j.json_key.as_str(), j.refresh_token_rotates), ("/", false));
    let empty = with("json_key = \"\"");
    let err = load_str(&empty).unwrap_err().to_string();
    assert!(err.contains("key json_key: is empty") && err.contains("or / for the whole file"), "{err}");
}

#[test]
fn errors_never_quote_the_offending_value() {
    let pasted = "hvs.CAESIpasted-token-value";
    let text = MINIMAL.replace("~/.config/claude-auth-sync/vault-token", pasted);
    let e = load_str(&text).unwrap_err().to_string();
    assert!(e.contains("relative path") && !e.contains(pasted), "{e}");
    let text = format!("{MINIMAL}\nstray = \"{pasted}\"\n");
    let e = load_str(&text).unwrap_err().to_string();
    assert!(e.contains("key stray: unknown key") && !e.contains(pasted), "{e}");
    let text = format!("{MINIMAL}\nstray = \"{pasted}\" oops\n");
    let e = load_str(&text).unwrap_err().to_string();
    assert!(e.contains("syntax error") && !e.contains(pasted), "{e}");
}

#[test]
fn fuzz_findings_stay_fixed() {
    // `%{` must print escaped, or check-config's output does not load back.
    let text = MINIMAL.replace("~/.config/claude-auth-sync/vault-token", "/t/100%%{x}");
    let c = load_str(&text).unwrap();
    assert_eq!(c.auto_auth.method, Method::TokenFile { token_file_path: "/t/100%{x}".into() });
    assert_eq!(load_str(&c.to_hcl()).unwrap(), c);
    // An expression as an object key is an error, not a key named after its debug form.
    let text = MINIMAL.replace("auto_auth {", "auto_auth {\n expect {\n meta = { r+ole = \"x\" }\n }");
    assert!(load_str(&text).unwrap_err().problem.contains("key that is an expression"));
    // No path holds a NUL byte.
    let text = MINIMAL.replace("~/.config/claude-auth-sync/vault-token", "/t/a\\u0000b");
    assert!(load_str(&text).unwrap_err().problem.contains("NUL"));
}

#[test]
fn modes_are_octal_digits() {
    let sink = |mode: &str| {
        load_str(&MINIMAL.replace(
            "auto_auth {",
            &format!("auto_auth {{\n sink \"file\" {{ config = {{ path = \"/t\", mode = {mode} }} }}"),
        ))
    };
    assert_eq!(sink("0600").unwrap().auto_auth.sinks[0].mode, 0o600);
    assert_eq!(sink("\"0640\"").unwrap().auto_auth.sinks[0].mode, 0o640);
    assert!(sink("0999").is_err());
    assert!(sink("17777").is_err());
    assert!(sink("0606").unwrap_err().problem.contains("every user"));
    assert!(sink("0400").unwrap_err().problem.contains("read and write"));
}

#[test]
fn a_persistent_degraded_fails_after_four_runs_or_a_day_unless_configured_otherwise() {
    let c = load_str(MINIMAL).unwrap();
    assert_eq!(c.degraded, DegradedPolicy { fail_after_runs: 4, fail_after: Duration::from_secs(86_400) });
    assert_eq!(c.log.state_file, Path::new("/home/alice/.local/state/claude-auth-sync/state.json"));

    let text = format!(
        "{MINIMAL}degraded {{\n  fail_after_runs = 2\n  fail_after = \"12h\"\n}}\nlog {{ path = \"/srv/cas/${{user}}/sync.log\" }}\n"
    );
    let c = load_str(&text).unwrap();
    assert_eq!(c.degraded, DegradedPolicy { fail_after_runs: 2, fail_after: Duration::from_secs(12 * 3600) });
    assert_eq!(c.log.state_file, Path::new("/srv/cas/alice/state.json"), "beside a moved log");
    assert_eq!(load_str(&c.to_hcl()).unwrap(), c, "check-config prints it back");
    let c = load_str(&format!("{MINIMAL}log {{\n  state_file = \"~/s.json\"\n}}\n")).unwrap();
    assert_eq!(c.log.state_file, Path::new("/home/alice/s.json"));

    for (body, key, why) in [
        ("fail_after_runs = 0", "fail_after_runs", "between 1 and 10000"),
        ("fail_after_runs = -1", "fail_after_runs", "a whole number"),
        ("fail_after = \"0s\"", "fail_after", "at least"),
        ("fail_after = \"soon\"", "fail_after", "not a duration"),
        ("fail_after_count = 4", "fail_after_count", "unknown key; known keys here: fail_after, fail_after_runs"),
    ] {
        let e = load_str(&format!("{MINIMAL}degraded {{\n  {body}\n}}\n")).unwrap_err();
        assert_eq!((e.block.as_deref(), e.key.as_deref()), (Some("degraded"), Some(key)), "{body}: {e}");
        assert!(e.problem.contains(why), "{body}: {e}");
    }
    let twice = format!("{MINIMAL}degraded {{}}\ndegraded {{}}\n");
    assert!(load_str(&twice).unwrap_err().problem.contains("appears 2 times"));
}

#[test]
fn every_keyword_prints_as_a_word_that_parses_back() {
    fn each<T: Copy + PartialEq + std::fmt::Debug>(words: &Keywords<T>, values: &[T]) {
        for v in values {
            assert_eq!(words.parse(words.word(*v)), Some(*v));
        }
    }
    each(&template::LOCKS, &[Lock::ClaudeCode, Lock::Flock, Lock::None]);
    each(&template::RESTORES, &[Restore::OnFailure, Restore::IfMissing, Restore::Always, Restore::Never]);
    each(&log::JOURNALD, &[Journald::Auto, Journald::On, Journald::Off]);
    each(&log::LEVELS, &[tracing::Level::ERROR, tracing::Level::WARN, tracing::Level::INFO, tracing::Level::DEBUG]);
    each(&ENV_SHADOWING, &[EnvShadowing::Warn, EnvShadowing::Fail]);
}

mod format_parity;
mod reference;
