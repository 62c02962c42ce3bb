//! The stand-in `claude` (scripts/fake-claude): a Claude Code config dir, the
//! stand-in's state (which tokens its API accepts, how it answers), and `bin/claude`
//! for PATH; and logins shaped as Claude Code writes them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// A Claude Code config dir, its state, and `bin/claude` (scripts/fake-claude) for PATH.
pub struct FakeClaude {
    pub config_dir: PathBuf,
    pub state: PathBuf,
    pub bin: PathBuf,
}

/// A `claudeAiOauth` object as Claude Code writes it.
pub fn oauth(access: &str, refresh: &str, expires_at_ms: u64) -> Value {
    json!({
        "accessToken": access,
        "refreshToken": refresh,
        "expiresAt": expires_at_ms,
        "refreshTokenExpiresAt": now_ms() + 20 * 86_400_000,
        "scopes": ["user:inference", "user:profile"],
        "subscriptionType": "enterprise",
        "rateLimitTier": "default_claude_max_20x"
    })
}

/// The login as Claude Code leaves it after a refused refresh: tokens blanked.
pub fn blanked() -> Value {
    json!({ "accessToken": "", "refreshToken": "", "expiresAt": 0 })
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

pub const HOUR_MS: u64 = 3_600_000;

impl FakeClaude {
    pub fn new(root: &Path) -> FakeClaude {
        let config_dir = root.join("claude");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::set_permissions(&config_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fake-claude"), bin.join("claude"))
            .unwrap();
        let state = root.join("fake-claude-state.json");
        std::fs::write(&state, r#"{"access": [], "refresh": [], "mode": "normal"}"#).unwrap();
        FakeClaude { config_dir, state, bin }
    }

    /// Puts another CLI (the real one) where `bin/claude` is, in the stand-in's place.
    pub fn replace_with(&self, cli: &Path) {
        let link = self.bin.join("claude");
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(cli, link).unwrap();
    }

    pub fn creds(&self) -> PathBuf {
        self.config_dir.join(".credentials.json")
    }

    /// Writes the credentials file: `login` as claudeAiOauth beside an mcpOAuth and an unknown key.
    pub fn write_login(&self, login: &Value, mcp_token: &str) -> Vec<u8> {
        let doc = json!({
            "mcpOAuth": { "linear|abc123": { "accessToken": mcp_token, "expiresAt": 1 } },
            "claudeAiOauth": login,
            "pluginSecrets": { "kept": true }
        });
        let bytes = serde_json::to_vec(&doc).unwrap();
        std::fs::write(self.creds(), &bytes).unwrap();
        std::fs::set_permissions(self.creds(), std::fs::Permissions::from_mode(0o600)).unwrap();
        bytes
    }

    pub fn read_doc(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.creds()).unwrap()).unwrap()
    }

    /// Makes the stand-in's API accept these tokens.
    pub fn accept(&self, access: &str, refresh: &str) {
        self.edit_state(|s| {
            s["access"].as_array_mut().unwrap().push(json!(access));
            s["refresh"].as_array_mut().unwrap().push(json!(refresh));
        });
    }

    /// `normal`, `401`, `529` or `hang`.
    pub fn set_mode(&self, mode: &str) {
        self.edit_state(|s| s["mode"] = json!(mode));
    }

    pub fn state(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(&self.state).unwrap()).unwrap()
    }

    fn edit_state(&self, f: impl FnOnce(&mut Value)) {
        let mut s = self.state();
        f(&mut s);
        std::fs::write(&self.state, s.to_string()).unwrap();
    }

    /// `claude -p --output-format json hi` with `env`, as a user's session runs it:
    /// whether it succeeded.
    pub fn call(&self, env: &[(&str, &str)]) -> bool {
        std::process::Command::new(self.bin.join("claude"))
            .args(["-p", "--output-format", "json", "hi"])
            .envs(self.env())
            .envs(env.iter().copied())
            .output()
            .unwrap()
            .status
            .success()
    }

    /// The environment the agent (and through it the stand-in) needs.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("CLAUDE_CONFIG_DIR".into(), self.config_dir.display().to_string()),
            ("FAKE_CLAUDE_STATE".into(), self.state.display().to_string()),
            ("PATH".into(), format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap_or_default())),
        ]
    }
}
