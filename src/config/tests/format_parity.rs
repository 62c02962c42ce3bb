//! HCL and TOML are one schema: every example config converted to TOML loads to the same
//! config, check-config's TOML loads back to what it printed, and every malformed case
//! written in both languages gets the same message (block, key and problem).

use std::path::{Path, PathBuf};

use super::*;

fn load_as(text: &str, name: &str) -> Result<Config, ConfigError> {
    parse(text, Path::new(name), &alice(), &no_env)
}

/// The environment the examples are read in: an example may leave `vault.address` to `VAULT_ADDR`.
pub(super) fn example_env(k: &str) -> Option<String> {
    (k == "VAULT_ADDR").then(|| "https://vault.example.com:8200".to_string())
}

/// Every config the project ships or tests with: docs/examples/*.hcl (whatever is there),
/// config.hcl.example and the config fuzz seeds.
pub(super) fn every_example() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("config.hcl.example")];
    for dir in ["docs/examples", "fuzz/seeds/config_parse"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
        let mut found: Vec<PathBuf> =
            entries.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "hcl")).collect();
        found.sort();
        files.extend(found);
    }
    files
}

#[test]
fn every_example_converted_to_toml_loads_to_the_same_config() {
    let files = every_example();
    assert!(files.len() >= 4, "config.hcl.example and the fuzz seeds at least: {files:?}");
    let load_as = |text: &str, name: &str| parse(text, Path::new(name), &alice(), &example_env);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let hcl = load_as(&text, "/etc/c.hcl").unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let toml = hcl_to_toml(&text, "converted").unwrap_or_else(|| panic!("{} converts", file.display()));
        let from_toml = load_as(&toml, "/etc/c.toml").unwrap_or_else(|e| panic!("{}: {e}\n{toml}", file.display()));
        assert_eq!(Config { file: hcl.file.clone(), ..from_toml }, hcl, "{}:\n{toml}", file.display());

        // A conversion (check-config --print-as) loads back to the very same config,
        // inline contents included.
        for format in [Format::Toml, Format::Hcl] {
            let printed = hcl.print_as(format, Contents::Shown);
            let name = if format == Format::Toml { "/etc/c.toml" } else { "/etc/c.hcl" };
            let again = load_as(&printed, name).unwrap_or_else(|e| panic!("{e}\n{printed}"));
            assert_eq!(Config { file: hcl.file.clone(), ..again }, hcl, "{}:\n{printed}", file.display());
        }
        // check-config's own output redacts inline contents; the rest loads back the same.
        if !hcl.has_inline_contents() {
            assert_eq!(load_as(&hcl.to_hcl(), "/etc/c.hcl").unwrap(), hcl, "the printed config is the config");
        }
    }
}

#[test]
fn the_toml_shapes_of_blocks_labels_and_modes() {
    let text = r#"
pid_file = "~/agent.pid"

[vault]
address = "https://vault.example.com:8200"
retry = { num_retries = 1 }

[auto_auth.method]
type = "approle"
config = { role_id_file_path = "~/role-id", secret_id_file_path = "~/secret-id" }

[auto_auth.expect]
meta = { type = "person", role_name = "claude-auth-sync-${user}" }

[[auto_auth.sink]]
type = "file"
config = { path = "~/t1", mode = 0o640 }

[[auto_auth.sink]]
type = "file"
config = { path = "~/t2", mode = "0600" }

[[template]]
secret = "secret/workstation/claude-users/${user}"

[template.probe]
type = "http"
timeout = "30s"

[[template]]
secret = "secret/x/${user}"
destination = "~/cost-$${user}-100%%{x}.json"
"#;
    let c = load_as(text, "/etc/c.toml").unwrap();
    assert_eq!(c.pid_file.as_deref(), Some(Path::new("/home/alice/agent.pid")));
    assert_eq!(c.vault.retry.num_retries, 1);
    assert_eq!(c.auto_auth.method.kind(), "approle");
    assert_eq!(c.auto_auth.expect.meta["type"], "person", "a map's `type` is just a key");
    assert_eq!(c.auto_auth.sinks.iter().map(|s| s.mode).collect::<Vec<_>>(), [0o640, 0o600]);
    assert_eq!(c.templates.len(), 2);
    assert_eq!(c.templates[0].secret.as_str(), "secret/workstation/claude-users/alice");
    let TemplateKind::Json(j) = &c.templates[0].kind else { panic!("a JSON template") };
    assert!(matches!(j.probe, Probe::Http { timeout, .. } if timeout == Duration::from_secs(30)));
    assert_eq!(c.templates[1].destination, Path::new("/home/alice/cost-${user}-100%{x}.json"));
    // Printed, it is the same config in TOML and in HCL.
    assert_eq!(load_as(&c.to_toml(Contents::Shown), "/etc/c.toml").unwrap(), c, "{}", c.to_toml(Contents::Shown));
    assert_eq!(Config { file: "/etc/c.toml".into(), ..load_as(&c.to_hcl(), "/etc/c.hcl").unwrap() }, c);
}

/// One malformed case in both languages.
struct Case {
    what: &'static str,
    hcl: String,
    toml: String,
    /// The message (without the file name) both must give.
    says: &'static str,
}

const VAULT_HCL: &str = "vault { address = \"https://vault.example.com:8200\" }\n";
const VAULT_TOML: &str = "[vault]\naddress = \"https://vault.example.com:8200\"\n";
const METHOD_HCL: &str =
    "auto_auth {\n  method \"token_file\" {\n    config = { token_file_path = \"~/vault-token\" }\n  }\n}\n";
const METHOD_TOML: &str =
    "[auto_auth.method]\ntype = \"token_file\"\nconfig = { token_file_path = \"~/vault-token\" }\n";

fn cases() -> Vec<Case> {
    let both = |what, hcl: &str, toml: &str, says| Case { what, hcl: hcl.into(), toml: toml.into(), says };
    vec![
        both(
            "unknown key",
            &format!("{METHOD_HCL}vault {{\n  address = \"https://v:8200\"\n  adress = \"x\"\n}}\n"),
            &format!("{METHOD_TOML}[vault]\naddress = \"https://v:8200\"\nadress = \"x\"\n"),
            "block vault, key adress: unknown key; known keys here: address, allow_cleartext_tokens, ca_cert, retry, timeout, tls_skip_verify",
        ),
        both(
            "wrong type",
            &format!("{METHOD_HCL}vault {{\n  address = \"https://v:8200\"\n  tls_skip_verify = 3\n}}\n"),
            &format!("{METHOD_TOML}[vault]\naddress = \"https://v:8200\"\ntls_skip_verify = 3\n"),
            "block vault, key tls_skip_verify: expected true or false, found a number",
        ),
        both(
            "missing required block",
            VAULT_HCL,
            VAULT_TOML,
            "block auto_auth: is missing; add auto_auth { method \"token_file\" { ... } } (see config.hcl.example)",
        ),
        both(
            "missing required key",
            &format!("{VAULT_HCL}auto_auth {{\n  method \"token_file\" {{\n    config = {{}}\n  }}\n}}\n"),
            &format!("{VAULT_TOML}[auto_auth.method]\ntype = \"token_file\"\nconfig = {{}}\n"),
            "block auto_auth.method \"token_file\", key config: has no token_file_path; name the file that holds your Vault token",
        ),
        both(
            "unimplemented Vault Agent key",
            &format!("{VAULT_HCL}{METHOD_HCL}cache {{\n  use_auto_auth_token = true\n}}\n"),
            &format!("cache = {{ use_auto_auth_token = true }}\n{VAULT_TOML}{METHOD_TOML}"),
            "top level, key cache: is a Vault Agent setting that claude-auth-sync does not support; remove it",
        ),
        both(
            "unimplemented Vault Agent auth method",
            &format!("{VAULT_HCL}auto_auth {{\n  method \"aws\" {{\n    config = {{}}\n  }}\n}}\n"),
            &format!("{VAULT_TOML}[auto_auth.method]\ntype = \"aws\"\nconfig = {{}}\n"),
            "block auto_auth.method \"aws\": auth method \"aws\" is not supported; use one of: token_file, approle",
        ),
        both(
            "bad duration",
            &format!("{METHOD_HCL}vault {{\n  address = \"https://v:8200\"\n  timeout = \"soon\"\n}}\n"),
            &format!("{METHOD_TOML}[vault]\naddress = \"https://v:8200\"\ntimeout = \"soon\"\n"),
            "block vault, key timeout: is not a duration; write a number and a unit, such as \"500ms\", \"30s\", \"6h\" or \"32d\"",
        ),
        both(
            "bad path",
            &format!(
                "{VAULT_HCL}auto_auth {{\n  method \"token_file\" {{\n    config = {{ token_file_path = \"vault-token\" }}\n  }}\n}}\n"
            ),
            &format!(
                "{VAULT_TOML}[auto_auth.method]\ntype = \"token_file\"\nconfig = {{ token_file_path = \"vault-token\" }}\n"
            ),
            "block auto_auth.method \"token_file\", key config.token_file_path: is a relative path; give an absolute path (a leading ~ means your home), because the agent runs from systemd with no useful working directory",
        ),
        both(
            "duplicate block",
            &format!("{VAULT_HCL}{METHOD_HCL}{VAULT_HCL}"),
            &format!("{METHOD_TOML}[[vault]]\naddress = \"https://v:8200\"\n[[vault]]\naddress = \"https://v:8200\"\n"),
            "top level, key vault: appears 2 times; write one vault block",
        ),
        both(
            "a sink every user can read",
            &format!(
                "{VAULT_HCL}auto_auth {{\n  method \"token_file\" {{\n    config = {{ token_file_path = \"~/t\" }}\n  }}\n  sink \"file\" {{\n    config = {{ path = \"~/s\", mode = 0606 }}\n  }}\n}}\n"
            ),
            &format!(
                "{VAULT_TOML}[auto_auth.method]\ntype = \"token_file\"\nconfig = {{ token_file_path = \"~/t\" }}\n[[auto_auth.sink]]\ntype = \"file\"\nconfig = {{ path = \"~/s\", mode = 0o606 }}\n"
            ),
            "block auto_auth.sink \"file\", key config.mode: lets every user on the machine read or write the token; use 0600 (or 0640 for a group)",
        ),
        both(
            "a sink without a path",
            &format!(
                "{VAULT_HCL}auto_auth {{\n  method \"token_file\" {{\n    config = {{ token_file_path = \"~/t\" }}\n  }}\n  sink \"file\" {{\n    config = {{}}\n  }}\n}}\n"
            ),
            &format!("{VAULT_TOML}{METHOD_TOML}[[auto_auth.sink]]\ntype = \"file\"\nconfig = {{}}\n"),
            "block auto_auth.sink \"file\", key config: has no path; name the file the token is written to, such as path = \"~/.config/claude-auth-sync/agent-token\"",
        ),
        both(
            "a type where the block has none",
            &format!("{VAULT_HCL}{METHOD_HCL}log {{\n  type = \"main\"\n}}\n"),
            &format!("{VAULT_TOML}{METHOD_TOML}[log]\ntype = \"main\"\n"),
            "block log, key type: unknown key; known keys here: journald, journald_socket, level, path, state_file",
        ),
        both(
            "a probe without a kind",
            &format!("{VAULT_HCL}{METHOD_HCL}template {{\n  secret = \"secret/x\"\n  probe {{}}\n}}\n"),
            &format!("{VAULT_TOML}{METHOD_TOML}[[template]]\nsecret = \"secret/x\"\n[template.probe]\n"),
            "block template #1.probe: has no type; write probe \"command\", probe \"http\" or probe \"none\"",
        ),
        both(
            "an unknown variable",
            &format!("{METHOD_HCL}vault {{ address = \"https://${{host}}:8200\" }}\n"),
            &format!("{METHOD_TOML}[vault]\naddress = \"https://${{host}}:8200\"\n"),
            "block vault, key address: unknown variable ${host}; the only variable is ${user} (write $${ for a literal ${)",
        ),
    ]
}

#[test]
fn every_malformed_case_gets_the_same_message_in_hcl_and_toml() {
    for case in cases() {
        let from_hcl = load_as(&case.hcl, "/etc/c.hcl").expect_err(case.what);
        let from_toml = load_as(&case.toml, "/etc/c.toml").expect_err(case.what);
        assert_eq!(from_hcl.to_string(), format!("/etc/c.hcl: {}", case.says), "{}: HCL", case.what);
        assert_eq!(from_toml.to_string(), format!("/etc/c.toml: {}", case.says), "{}: TOML", case.what);
    }
}

#[test]
fn toml_syntax_errors_give_the_line_and_never_the_value() {
    let pasted = "hvs.CAESIpasted-token-value";
    let text = format!("{VAULT_TOML}{METHOD_TOML}\nstray = \"{pasted}\" oops\n");
    let e = load_as(&text, "/etc/c.toml").unwrap_err();
    assert!(e.problem.starts_with("TOML syntax error at line 7, column "), "{e}");
    assert!(!e.to_string().contains(pasted), "{e}");
    let e = load_as(&format!("{VAULT_TOML}when = 1979-05-27\n"), "/etc/c.toml").unwrap_err();
    assert!(e.problem.contains("line 3, key when: is a TOML date/time"), "{e}");
    // A TOML duplicate table is TOML's own error, at the second one.
    let e = load_as(&format!("{VAULT_TOML}{VAULT_TOML}"), "/etc/c.toml").unwrap_err();
    assert!(e.problem.starts_with("TOML syntax error at line 3"), "{e}");
}

#[test]
fn any_text_in_a_value_or_a_map_key_prints_back_in_both_languages() {
    let text = format!("{VAULT_HCL}{METHOD_HCL}template {{\n  secret = \"secret/x/${{user}}\"\n}}\n");
    let mut c = load_as(&text, "/etc/c.hcl").unwrap();
    let tricky =
        ["a b", "k\"q", "back\\slash", "line\nbreak\ttab", "$${not} ${user} %{x} %%{y}", "ctl\u{1}\u{7f}", "ünï 名"];
    c.auto_auth.expect.meta = tricky.iter().map(|t| (t.to_string(), format!("v-{t}"))).collect();
    c.auto_auth.expect.policies = tricky.iter().map(|t| t.to_string()).collect();
    let TemplateKind::Json(j) = &mut c.templates[0].kind else { panic!("a JSON template") };
    j.field = tricky.concat();
    j.probe =
        Probe::Command { command: tricky.iter().map(|t| t.to_string()).collect(), timeout: Duration::from_secs(9) };
    let hcl = c.to_hcl();
    assert_eq!(load_as(&hcl, "/etc/c.hcl").unwrap_or_else(|e| panic!("{e}\n{hcl}")), c, "{hcl}");
    let toml = c.to_toml(Contents::Shown);
    let from_toml = load_as(&toml, "/etc/c.toml").unwrap_or_else(|e| panic!("{e}\n{toml}"));
    assert_eq!(Config { file: c.file.clone(), ..from_toml }, c, "{toml}");
}
