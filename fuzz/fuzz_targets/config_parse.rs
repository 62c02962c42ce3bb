//! Any text given as a config, HCL or TOML: a clean error or a config, never a panic; and
//! a config that loads prints (check-config) to HCL and to TOML that load back to it.
#![no_main]

use std::path::Path;

use claude_auth_sync::config::{self, TemplateBody, TemplateKind};
use claude_auth_sync::os_user::OsUser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let user = OsUser { name: "alice".into(), uid: 1000, gid: 1000, home: "/home/alice".into() };
    let env = |k: &str| (k == "CLAUDE_CONFIG_DIR").then(|| "/srv/claude".to_string());
    let _ = config::parse(text, Path::new("/fuzz.toml"), &user, &env);
    let Ok(cfg) = config::parse(text, Path::new("/fuzz.hcl"), &user, &env) else { return };
    // Inline contents print redacted, so they cannot round-trip.
    let redacted = cfg.templates.iter().any(|t| matches!(&t.kind, TemplateKind::Render(r) if matches!(r.body, TemplateBody::Contents(_))));
    if redacted {
        return;
    }
    let printed = cfg.to_hcl();
    let again = config::parse(&printed, Path::new("/fuzz.hcl"), &user, &env)
        .unwrap_or_else(|e| panic!("check-config printed a config that does not load: {e}\n{printed}"));
    assert_eq!(again, cfg, "the printed config loads back differently:\n{printed}");
    let toml = cfg.to_toml();
    let again = config::parse(&toml, Path::new("/fuzz.toml"), &user, &env)
        .unwrap_or_else(|e| panic!("check-config printed TOML that does not load: {e}\n{toml}"));
    assert_eq!(config::Config { file: cfg.file.clone(), ..again }, cfg, "the TOML loads back differently:\n{toml}");
});
