//! TOML configs on the binary: `check-config --print-as toml` converts a test's HCL
//! config, `check-config` reads the TOML back to the same config, and `run --once` with
//! the TOML config syncs against the real OpenBao exactly as with the HCL.

use crate::common::agent::run::agent_env;
use crate::common::agent::user::Agent;
use crate::common::bao::bao;
use crate::common::claude::stand_in::{HOUR_MS, now_ms};
use crate::common::files::write_file;

/// check-config's output without its first line, which names the file.
fn body(printed: &str) -> &str {
    printed.split_once('\n').map_or("", |(_, rest)| rest)
}

#[test]
fn a_config_converted_to_toml_checks_and_syncs_the_same() {
    let b = bao();
    let mut s = Agent::new(b);
    let env = s.claude.env();
    let hcl = s.cfg.to_str().unwrap().to_string();

    let as_hcl = agent_env(&["check-config", "--config", &hcl], env.clone());
    assert_eq!(as_hcl.code, 0, "{}", as_hcl.stderr);
    assert!(as_hcl.stdout.contains("auto_auth {"), "HCL by default for a .hcl file: {}", as_hcl.stdout);
    let as_toml = agent_env(&["check-config", "--config", &hcl, "--print-as", "toml"], env.clone());
    assert_eq!(as_toml.code, 0, "{}", as_toml.stderr);
    assert!(as_toml.stdout.contains("[auto_auth.method]\ntype = \"token_file\""), "{}", as_toml.stdout);

    let toml = write_file(s.dir.path(), "config.toml", &as_toml.stdout, 0o600);
    let toml = toml.to_str().unwrap().to_string();
    let back = agent_env(&["check-config", "--config", &toml], env.clone());
    assert_eq!(back.code, 0, "{}", back.stderr);
    assert_eq!(body(&back.stdout), body(&as_toml.stdout), "TOML by default for a .toml file, printed the same");
    let back_as_hcl = agent_env(&["check-config", "--config", &toml, "--print-as", "hcl"], env.clone());
    assert_eq!(body(&back_as_hcl.stdout), body(&as_hcl.stdout), "the same config as the HCL it came from");

    // A TOML error names the file, the block and the key, as the HCL one would.
    let broken = as_toml.stdout.replace("[vault]\n", "[vault]\ntimeuot = \"5s\"\n");
    let bad = write_file(s.dir.path(), "broken.toml", &broken, 0o600);
    let run = agent_env(&["check-config", "--config", bad.to_str().unwrap()], env.clone());
    assert_eq!(run.code, 78, "{}", run.stderr);
    let want = format!("{}: block vault, key timeuot: unknown key; known keys here:", bad.display());
    assert!(run.stderr.contains(&want), "{}", run.stderr);

    s.good_login(now_ms() + 8 * HOUR_MS);
    s.cfg = toml.into();
    let run = s.run();
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().action(), Some("backed_up"), "{}", run.all());
    assert_eq!(s.vault_copy().map(|(v, _)| v), Some(1));
}
