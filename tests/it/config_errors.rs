//! Malformed configs: each one is refused with exit code 78 and a message naming the
//! block and the key, by `check-config` and by `run --once`, before any file is
//! written or any connection is made.

use std::net::TcpListener;
use std::path::Path;

use crate::common::agent::run::agent;
use crate::common::files::{tree, write_file};
use crate::common::secrets::random_secret;

/// A valid config; each case below breaks one thing in its text (so it is written out,
/// not built: the cases edit it by line and column).
const VALID: &str = r#"
vault {
  address = "@ADDR@"
  timeout = "5s"
  retry {
    num_retries = 1
  }
}
auto_auth {
  method "token_file" {
    config = { token_file_path = "@DIR@/vault-token" }
  }
  expect {
    policies = ["claude-auth-sync-${user}"]
  }
  sink "file" {
    config = { path = "@DIR@/out/agent-token", mode = 0600 }
  }
}
template {
  secret = "secret/workstation/claude-users/${user}"
  destination = "@DIR@/out/credentials.json"
}
log {
  path = "@DIR@/out/sync.log"
}
pid_file = "@DIR@/out/agent.pid"
"#;

/// [`VALID`] for files in `dir` and Vault at `addr`.
fn valid(dir: &Path, addr: &str) -> String {
    VALID.replace("@ADDR@", addr).replace("@DIR@", &dir.display().to_string())
}

struct Case {
    name: &'static str,
    /// (from, to) replacements applied to the valid config; `None` replaces it all.
    edit: Edit,
    /// Every one must appear in the error message.
    expect: &'static [&'static str],
}

enum Edit {
    Replace(&'static str, &'static str),
    Append(&'static str),
    Whole(&'static str),
}

const CASES: &[Case] = &[
    Case {
        name: "syntax error",
        edit: Edit::Replace("timeout = \"5s\"", "timeout = "),
        expect: &["HCL syntax error at line 4, column"],
    },
    Case {
        name: "unknown key",
        edit: Edit::Replace("timeout = \"5s\"", "timeuot = \"5s\""),
        expect: &["block vault, key timeuot: unknown key", "timeout"],
    },
    Case {
        name: "wrong type",
        edit: Edit::Replace("num_retries = 1", "num_retries = \"lots\""),
        expect: &["block vault, key retry.num_retries: expected a whole number"],
    },
    Case {
        name: "missing address",
        edit: Edit::Replace("address = ", "# address = "),
        expect: &["block vault, key address: is missing", "VAULT_ADDR"],
    },
    Case {
        name: "bad duration",
        edit: Edit::Replace("timeout = \"5s\"", "timeout = \"5 parsecs\""),
        expect: &["block vault, key timeout: is not a duration"],
    },
    Case {
        name: "bad mode",
        edit: Edit::Replace("mode = 0600", "mode = 0999"),
        expect: &["block auto_auth.sink \"file\", key config.mode: is not a file mode"],
    },
    Case {
        name: "world-readable sink mode",
        edit: Edit::Replace("mode = 0600", "mode = 0644"),
        expect: &["block auto_auth.sink \"file\", key config.mode", "every user"],
    },
    Case {
        name: "Vault Agent auth method not supported here",
        edit: Edit::Replace("method \"token_file\"", "method \"kubernetes\""),
        expect: &["block auto_auth.method \"kubernetes\"", "not supported", "token_file, approle"],
    },
    Case {
        name: "unknown auth method",
        edit: Edit::Replace("method \"token_file\"", "method \"magic\""),
        expect: &["block auto_auth.method \"magic\"", "unknown auth method"],
    },
    Case {
        name: "two methods",
        edit: Edit::Replace(
            "  expect {",
            "  method \"approle\" {\n    config = { role_id_file_path = \"/r\", secret_id_file_path = \"/s\" }\n  }\n  expect {",
        ),
        expect: &["block auto_auth, key method: appears 2 times"],
    },
    Case {
        name: "empty token path",
        edit: Edit::Replace("token_file_path = \"", "token_file_path = \"\", unused = \""),
        expect: &["block auto_auth.method \"token_file\", key config.token_file_path: is empty"],
    },
    Case {
        name: "relative path",
        edit: Edit::Replace("log {\n  path = \"", "log {\n  path = \"relative/"),
        expect: &["block log, key path: is a relative path"],
    },
    Case {
        name: "relative token path",
        edit: Edit::Replace("token_file_path = \"/", "token_file_path = \""),
        expect: &["block auto_auth.method \"token_file\", key config.token_file_path: is a relative path"],
    },
    Case {
        name: "unknown variable",
        edit: Edit::Replace("claude-users/${user}", "claude-users/${users}"),
        expect: &["block template #1, key secret: unknown variable ${users}"],
    },
    Case {
        name: "key set twice",
        edit: Edit::Replace("timeout = \"5s\"", "timeout = \"5s\"\n  timeout = \"6s\""),
        expect: &["line 5, column 3", "redefined attribute"],
    },
    Case {
        name: "a table written both as `key = {}` and as a block",
        edit: Edit::Replace(
            "    config = { token_file_path = ",
            "    config {\n      token_file_path = \"/a\"\n    }\n    config = { token_file_path = ",
        ),
        expect: &["block auto_auth.method \"token_file\", key config: is set more than once"],
    },
    Case {
        name: "Vault Agent block not supported",
        edit: Edit::Append("cache {\n  use_auto_auth_token = true\n}\n"),
        expect: &["top level, key cache", "Vault Agent setting that claude-auth-sync does not support"],
    },
    Case {
        name: "Vault Agent template key not supported",
        edit: Edit::Replace("  secret = ", "  left_delimiter = \"[[\"\n  secret = "),
        expect: &["block template #1, key left_delimiter", "does not support"],
    },
    Case {
        name: "contents and source together",
        edit: Edit::Append(
            "template {\n  contents = \"x\"\n  source = \"/etc/hostname\"\n  destination = \"/tmp/x\"\n}\n",
        ),
        expect: &["block template #2, key source: and contents are both set"],
    },
    Case {
        name: "write-back of a rendered template",
        edit: Edit::Append("template {\n  contents = \"x\"\n  destination = \"/tmp/x\"\n  writeback = true\n}\n"),
        expect: &["block template #2, key writeback: needs json_key"],
    },
    Case {
        name: "probe with --bare",
        edit: Edit::Replace(
            "  destination = ",
            "  probe \"command\" {\n    command = [\"claude\", \"--bare\", \"-p\", \"hi\"]\n  }\n  destination = ",
        ),
        expect: &["block template #1.probe \"command\", key command", "--bare"],
    },
    Case {
        name: "destination outside the home, in a directory everyone can write",
        edit: Edit::Replace("  destination = ", "  destination = \"/tmp/claude-auth-sync-test\"\n  # was "),
        expect: &["block template #1, key destination: is outside your home", "every user can write"],
    },
    Case {
        name: "destination with ..",
        edit: Edit::Replace("/out/credentials.json", "/out/../../etc/x.json"),
        expect: &["block template #1, key destination: must not contain `..`"],
    },
    Case {
        name: "no auto_auth",
        edit: Edit::Whole("vault {\n  address = \"http://127.0.0.1:1\"\n}\n"),
        expect: &["block auto_auth: is missing"],
    },
    Case {
        name: "address that is not a URL",
        edit: Edit::Replace("address = \"", "address = \"vault example "),
        expect: &["block vault, key address: (from this key) is not a URL"],
    },
];

#[test]
fn every_malformed_config_is_refused_with_block_key_and_exit_78_and_nothing_happens() {
    assert!(CASES.len() >= 10);
    // Any connection attempt would land here; none may.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());

    for case in CASES {
        let dir = tempfile::tempdir().unwrap();
        write_file(dir.path(), "vault-token", &random_secret("s.config-case-"), 0o600);
        std::fs::create_dir(dir.path().join("out")).unwrap();
        let good = valid(dir.path(), &addr);
        let text = match case.edit {
            Edit::Replace(from, to) => {
                assert!(good.contains(from), "case {}: the valid config has no {from:?}", case.name);
                good.replacen(from, to, 1)
            }
            Edit::Append(more) => format!("{good}{more}"),
            Edit::Whole(all) => all.to_string(),
        };
        let cfg = write_file(dir.path(), "config.hcl", &text, 0o600);
        let before = tree(dir.path());

        for args in [&["check-config", "--config"][..], &["run", "--once", "--config"][..]] {
            let mut args = args.to_vec();
            args.push(cfg.to_str().unwrap());
            let out = dir.path().join("out");
            let run = agent(&args, &[("CLAUDE_CONFIG_DIR", out.to_str().unwrap())]);
            assert_eq!(run.code, 78, "case {} ({}): exit code; stderr: {}", case.name, args[0], run.stderr);
            assert!(
                run.stderr.contains(&cfg.display().to_string()),
                "case {}: names the file: {}",
                case.name,
                run.stderr
            );
            for want in case.expect {
                assert!(run.stderr.contains(want), "case {}: expected {want:?} in: {}", case.name, run.stderr);
            }
            assert!(run.stdout.is_empty(), "case {}: printed a config anyway: {}", case.name, run.stdout);
            assert_eq!(tree(dir.path()), before, "case {}: files changed", case.name);
        }
    }
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a malformed config led to a connection to Vault"
    );
}

#[test]
fn the_valid_base_config_is_accepted() {
    // Guards the cases above: each must fail because of its own edit, not the base.
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(dir.path(), "config.hcl", &valid(dir.path(), "http://127.0.0.1:1"), 0o600);
    let out = dir.path().join("out");
    // The sink and the pid file go there: a directory that does not exist is refused.
    std::fs::create_dir(&out).unwrap();
    let run =
        agent(&["check-config", "--config", cfg.to_str().unwrap()], &[("CLAUDE_CONFIG_DIR", out.to_str().unwrap())]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn a_missing_config_file_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.hcl");
    let run = agent(&["run", "--once", "--config", missing.to_str().unwrap()], &[]);
    assert_eq!(run.code, 78, "{}", run.stderr);
    assert!(run.stderr.contains("does not exist") && run.stderr.contains("config.hcl.example"), "{}", run.stderr);
    assert!(tree(dir.path()).is_empty());
}

#[test]
fn the_config_path_comes_from_the_environment_when_not_given() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(dir.path(), "from-env.hcl", &valid(dir.path(), "http://127.0.0.1:1"), 0o600);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let run = agent(
        &["check-config"],
        &[("CLAUDE_AUTH_SYNC_CONFIG", cfg.to_str().unwrap()), ("CLAUDE_CONFIG_DIR", out.to_str().unwrap())],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("from-env.hcl"), "{}", run.stdout);
}

#[test]
fn vault_addr_fills_in_a_missing_address() {
    let dir = tempfile::tempdir().unwrap();
    let text = valid(dir.path(), "x").replace("address = \"x\"", "");
    let cfg = write_file(dir.path(), "config.hcl", &text, 0o600);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let run = agent(
        &["check-config", "--config", cfg.to_str().unwrap()],
        &[("BAO_ADDR", "https://bao.example.com:8200"), ("CLAUDE_CONFIG_DIR", out.to_str().unwrap())],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("address = \"https://bao.example.com:8200\""), "{}", run.stdout);
}

#[test]
fn a_vault_agent_config_with_a_secret_per_template_parses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // Every template names its secret: this agent has no `{{ with secret }}`.
    write_file(dir.path(), "agent.tmpl", "password={{password}}\n", 0o600);
    let text = r#"
pid_file = "@DIR@/pidfile"
exit_after_auth = true

vault {
  address = "https://vault.example.com:8200"
  retry {
    num_retries = 5
  }
}

auto_auth {
  method "approle" {
    mount_path = "auth/approle"
    config = {
      role_id_file_path = "@DIR@/roleid"
      secret_id_file_path = "@DIR@/secretid"
      remove_secret_id_file_after_reading = false
    }
  }

  sink "file" {
    config = {
      path = "@DIR@/vault-token-via-agent"
      mode = 0640
    }
  }
}

template {
  secret      = "secret/workstation/app/${user}"
  source      = "@DIR@/agent.tmpl"
  destination = "@DIR@/render.txt"
  perms       = "0640"
}

template {
  secret      = "secret/workstation/app/${user}"
  contents    = "{{ data.password }}"
  destination = "@DIR@/render-2.txt"
  command     = "systemctl --user reload app"
}
"#
    .replace("@DIR@", &d.to_string());
    let cfg = write_file(dir.path(), "agent.hcl", &text, 0o600);
    let run = agent(&["check-config", "--config", cfg.to_str().unwrap()], &[("CLAUDE_CONFIG_DIR", &d.to_string())]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("method \"approle\""), "{}", run.stdout);
    assert!(run.stdout.contains("command = [\"/bin/sh\", \"-c\", \"systemctl --user reload app\"]"), "{}", run.stdout);
}

#[test]
fn check_config_redacts_inline_template_contents() {
    let dir = tempfile::tempdir().unwrap();
    let planted = random_secret("inline-password-");
    let inline = r#"
template {
  secret = "secret/app"
  contents = "password=@PLANTED@"
  destination = "@DIR@/app.conf"
}
"#;
    let inline = inline.replace("@PLANTED@", &planted).replace("@DIR@", &dir.path().display().to_string());
    let text = valid(dir.path(), "http://127.0.0.1:1") + &inline;
    let cfg = write_file(dir.path(), "config.hcl", &text, 0o600);
    std::fs::create_dir(dir.path().join("out")).unwrap();
    // `agent` fails the test if the planted value shows up in any output.
    let run = agent(
        &["check-config", "--config", cfg.to_str().unwrap()],
        &[("CLAUDE_CONFIG_DIR", dir.path().to_str().unwrap())],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("contents = \"<redacted>\""), "{}", run.stdout);
}

#[test]
fn help_explains_with_examples_and_version_prints() {
    let run = agent(&["--help"], &[]);
    assert_eq!(run.code, 0);
    for want in ["run", "check-config", "Examples:", "Exit codes"] {
        assert!(run.stdout.contains(want), "--help lacks {want:?}: {}", run.stdout);
    }
    let run = agent(&["run", "--help"], &[]);
    assert!(run.stdout.contains("--once") && run.stdout.contains("--config"), "{}", run.stdout);
    let run = agent(&["--version"], &[]);
    assert_eq!(run.stdout.trim(), format!("claude-auth-sync {}", env!("CARGO_PKG_VERSION")));
}
