//! The Vault policy of one user: exactly what that user's agent needs on exactly that
//! user's secret (create/read/update its data; read its metadata and set only its
//! `custom_metadata`, so the user cannot shorten the version history), plus looking
//! up, renewing and revoking its own token; and the same on each extra secret the
//! roster grants the user (`secrets:`), each a path under the user's own
//! (`<mount>/<prefix>/<user>/<name>`, e.g. OpenAI Codex's login beside Claude Code's).
//! No list, no delete, no other path.

use super::roster::VaultSection;

pub fn name(user: &str) -> String {
    format!("claude-auth-sync-{user}")
}

/// `mount/prefix/user`, the secret the user's template names.
pub fn secret(v: &VaultSection, user: &str) -> String {
    format!("{}/{}/{user}", v.kv_mount, v.path_prefix)
}

/// `mount/prefix/user/name`: an extra secret the roster grants the user.
pub fn extra_secret(v: &VaultSection, user: &str, name: &str) -> String {
    format!("{}/{name}", secret(v, user))
}

/// The policy text; `secrets` are the extra secrets' names, in the roster's order.
pub fn hcl(mount: &str, prefix: &str, user: &str, secrets: &[String]) -> String {
    let mut text = base(mount, prefix, user);
    for name in secrets {
        text.push_str(&format!(
            r#"
# Granted by the roster (secrets: {name}): one more of {user}'s secrets.
path "{mount}/data/{prefix}/{user}/{name}" {{
  capabilities = ["create", "read", "update"]
}}

path "{mount}/metadata/{prefix}/{user}/{name}" {{
  capabilities = ["read", "update"]
  allowed_parameters = {{
    "custom_metadata" = []
    "metadata_cas"    = []
  }}
}}
"#
        ));
    }
    text
}

/// The extra secrets a policy text grants (as [`hcl`] writes them), in its order.
pub fn granted_secrets(policy: &str, mount: &str, prefix: &str, user: &str) -> Vec<String> {
    let start = format!("path \"{mount}/data/{prefix}/{user}/");
    policy
        .lines()
        .filter_map(|l| l.strip_prefix(start.as_str())?.strip_suffix("\" {"))
        .filter(|name| !name.contains('/'))
        .map(String::from)
        .collect()
}

fn base(mount: &str, prefix: &str, user: &str) -> String {
    format!(
        r#"# claude-auth-sync: what {user}'s agent needs, on exactly {user}'s secret.
path "{mount}/data/{prefix}/{user}" {{
  capabilities = ["create", "read", "update"]
}}

# The agent's non-secret facts only: max_versions, delete_version_after and
# cas_required are the admin's, so the user cannot make Vault drop old versions.
path "{mount}/metadata/{prefix}/{user}" {{
  capabilities = ["read", "update"]
  allowed_parameters = {{
    "custom_metadata" = []
    "metadata_cas"    = []
  }}
}}

path "auth/token/lookup-self" {{
  capabilities = ["read"]
}}

path "auth/token/renew-self" {{
  capabilities = ["update"]
}}

# An AppRole token that is replaced, or the provisioner's check login, ends itself.
path "auth/token/revoke-self" {{
  capabilities = ["update"]
}}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::roster::AuthMode;

    #[test]
    fn the_policy_names_only_the_users_paths() {
        let v = VaultSection {
            address: "https://v:8200".parse().unwrap(),
            ca_cert: None,
            allow_cleartext_tokens: false,
            kv_mount: "secret".into(),
            path_prefix: "workstation/claude-users".into(),
            auth: AuthMode::Token,
            approle_mount: "approle".into(),
            token_period: std::time::Duration::from_secs(60),
            max_versions: 10,
            delete_version_after: std::time::Duration::ZERO,
            cas_required: false,
        };
        let p = hcl(&v.kv_mount, &v.path_prefix, "alice", &[]);
        let paths: Vec<&str> = p.lines().filter(|l| l.starts_with("path ")).collect();
        assert_eq!(
            paths,
            [
                "path \"secret/data/workstation/claude-users/alice\" {",
                "path \"secret/metadata/workstation/claude-users/alice\" {",
                "path \"auth/token/lookup-self\" {",
                "path \"auth/token/renew-self\" {",
                "path \"auth/token/revoke-self\" {",
            ]
        );
        let caps: Vec<&str> = p.lines().filter(|l| l.trim_start().starts_with("capabilities")).collect();
        assert!(caps.iter().all(|c| !c.contains("list") && !c.contains("delete") && !c.contains("sudo")), "{caps:?}");
        assert!(!p.contains('*') && !p.contains('+'));
        assert!(p.contains("allowed_parameters"), "metadata writes are limited to custom_metadata");
        assert_eq!(name("alice"), "claude-auth-sync-alice");
        assert_eq!(secret(&v, "alice"), "secret/workstation/claude-users/alice");
        assert!(granted_secrets(&p, "secret", "workstation/claude-users", "alice").is_empty());
    }

    #[test]
    fn extra_secrets_are_paths_under_the_users_own_and_are_read_back() {
        let secrets = ["codex".to_string(), "gcloud".to_string()];
        let p = hcl("secret", "workstation/claude-users", "alice", &secrets);
        let paths: Vec<&str> = p.lines().filter(|l| l.starts_with("path ")).collect();
        assert_eq!(paths.len(), 5 + 4, "{paths:?}");
        assert!(paths.contains(&"path \"secret/data/workstation/claude-users/alice/codex\" {"));
        assert!(paths.contains(&"path \"secret/metadata/workstation/claude-users/alice/gcloud\" {"));
        assert!(!p.contains('*') && !p.contains('+') && !p.contains("\"list\"") && !p.contains("\"delete\""));
        assert_eq!(granted_secrets(&p, "secret", "workstation/claude-users", "alice"), secrets);
        assert!(granted_secrets(&p, "secret", "workstation/claude-users", "bob").is_empty(), "another user's");
        assert!(
            p.starts_with(&hcl("secret", "workstation/claude-users", "alice", &[])),
            "the base policy is unchanged"
        );
    }
}
