//! The Vault policy of one user: exactly what that user's agent needs on exactly that
//! user's secret (create/read/update its data, update its metadata), plus renewing
//! and looking up its own token. No list, no delete, no other path.

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

path "{mount}/metadata/{prefix}/{user}" {{
  capabilities = ["update"]
}}

path "auth/token/renew-self" {{
  capabilities = ["update"]
}}

path "auth/token/lookup-self" {{
  capabilities = ["read"]
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
            kv_mount: "secret".into(),
            path_prefix: "workstation/claude-users".into(),
            auth: AuthMode::Token,
            approle_mount: "approle".into(),
            token_period: std::time::Duration::from_secs(60),
            max_versions: 10,
        };
        let p = hcl(&v.kv_mount, &v.path_prefix, "alice");
        let paths: Vec<&str> = p.lines().filter(|l| l.starts_with("path ")).collect();
        assert_eq!(
            paths,
            [
                "path \"secret/data/workstation/claude-users/alice\" {",
                "path \"secret/metadata/workstation/claude-users/alice\" {",
                "path \"auth/token/renew-self\" {",
                "path \"auth/token/lookup-self\" {",
            ]
        );
        assert!(!p.contains("list") && !p.contains("delete") && !p.contains('*') && !p.contains('+'));
        assert_eq!(name("alice"), "claude-auth-sync-alice");
        assert_eq!(secret(&v, "alice"), "secret/workstation/claude-users/alice");
    }
}
