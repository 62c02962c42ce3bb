//! Any text given as a config, HCL or TOML: a clean error or a config, never a panic; and
//! a config that loads converts (check-config --print-as) to HCL and to TOML that load
//! back to it, inline contents included.
#![no_main]

use std::path::Path;

use claude_auth_sync::config::{self, Contents, Format};
use claude_auth_sync::os_user::OsUser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let user = OsUser { name: "alice".into(), uid: 1000, gid: 1000, home: "/home/alice".into() };
    let env = |k: &str| (k == "CLAUDE_CONFIG_DIR").then(|| "/srv/claude".to_string());
    let _ = config::parse(text, Path::new("/fuzz.toml"), &user, &env);
    let Ok(cfg) = config::parse(text, Path::new("/fuzz.hcl"), &user, &env) else { return };
    for (format, name) in [(Format::Hcl, "/fuzz.hcl"), (Format::Toml, "/fuzz.toml")] {
        let printed = cfg.print_as(format, Contents::Shown);
        let again = config::parse(&printed, Path::new(name), &user, &env)
            .unwrap_or_else(|e| panic!("check-config --print-as printed a config that does not load: {e}\n{printed}"));
        assert_eq!(
            config::Config { file: cfg.file.clone(), ..again },
            cfg,
            "the printed config loads back differently:\n{printed}"
        );
    }
    // check-config's own output (inline contents redacted) still loads.
    let printed = cfg.to_hcl();
    config::parse(&printed, Path::new("/fuzz.hcl"), &user, &env)
        .unwrap_or_else(|e| panic!("check-config printed a config that does not load: {e}\n{printed}"));
});
