//! The Vault policy of one user: exactly what that user's agent needs on exactly that
//! user's secret (create/read/update its data; read its metadata and set only its
//! `custom_metadata`, so the user cannot shorten the version history), plus looking
//! up, renewing and revoking its own token. No list, no delete, no other path.

use super::roster::VaultSection;

pub fn name(user: &str) -> String {
    format!("claude-auth-sync-{user}")
}

/// `mount/prefix/user`, the secret the user's template names.
pub fn secret(v: &VaultSection, user: &str) -> String {
    format!("{}/{}/{user}", v.kv_mount, v.path_prefix)
}

pub fn hcl(mount: &str, prefix: &str, user: &str) -> String {
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
        let p = hcl(&v.kv_mount, &v.path_prefix, "alice");
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
    }
}
