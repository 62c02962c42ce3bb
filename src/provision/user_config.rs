//! The per-user `config.hcl` the provisioner writes when a user has none (it never
//! overwrites one: the user may have edited it).

use super::policy;
use super::roster::{AuthMode, RosterUser, VaultSection};

pub fn render(v: &VaultSection, user: &RosterUser) -> String {
    let mut out = format!(
        "# claude-auth-sync for {name}, written by `claude-auth-sync provision`.\n\
         # Edit freely: the provisioner never overwrites this file. Reference: docs/config.md\n",
        name = user.name
    );
    if let Some(email) = &user.email {
        out.push_str(&format!("# One-time login: claude auth login --claudeai --sso --email {email}\n"));
    }
    out.push_str(&format!("\nvault {{\n  address = \"{}\"\n", v.address.as_str().trim_end_matches('/')));
    if let Some(ca) = &v.ca_cert {
        out.push_str(&format!("  ca_cert = \"{}\"\n", ca.display()));
    }
    out.push_str("}\n\nauto_auth {\n");
    match v.auth {
        AuthMode::Token => out.push_str(
            "  method \"token_file\" {\n    config = { token_file_path = \"~/.config/claude-auth-sync/vault-token\" }\n  }\n\
             \x20 expect {\n    policies = [\"claude-auth-sync-${user}\"]\n    meta     = { os_user = \"${user}\" }\n  }\n",
        ),
        AuthMode::Approle => out.push_str(&format!(
            "  method \"approle\" {{\n    mount_path = \"auth/{mount}\"\n    config = {{\n\
             \x20     role_id_file_path   = \"~/.config/claude-auth-sync/role-id\"\n\
             \x20     secret_id_file_path = \"~/.config/claude-auth-sync/secret-id\"\n    }}\n  }}\n\
             \x20 expect {{\n    policies = [\"claude-auth-sync-${{user}}\"]\n    meta     = {{ role_name = \"claude-auth-sync-${{user}}\" }}\n  }}\n",
            mount = v.approle_mount
        )),
    }
    out.push_str(&format!("}}\n\ntemplate {{\n  secret = \"{}\"\n}}\n", policy::secret(v, "${user}")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::os_user::OsUser;
    use std::path::Path;

    #[test]
    fn the_written_config_loads_and_names_the_users_own_identity() {
        let os = OsUser { name: "alice".into(), uid: 1001, gid: 1001, home: "/home/alice".into() };
        let user = RosterUser { name: "alice".into(), email: Some("alice@example.com".into()), os: os.clone() };
        for auth in [AuthMode::Token, AuthMode::Approle] {
            let v = VaultSection {
                address: "https://vault.example.com:8200".parse().unwrap(),
                ca_cert: Some("/etc/ssl/vault-ca.pem".into()),
                kv_mount: "secret".into(),
                path_prefix: "workstation/claude-users".into(),
                auth,
                approle_mount: "approle".into(),
                token_period: std::time::Duration::from_secs(60),
                max_versions: 10,
            };
            let text = render(&v, &user);
            let c = config::parse(&text, Path::new("/home/alice/.config/claude-auth-sync/config.hcl"), &os, &|_| None)
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(c.templates[0].secret, "secret/workstation/claude-users/alice");
            assert_eq!(c.auto_auth.expect.policies, ["claude-auth-sync-alice"]);
            assert!(text.contains("--email alice@example.com"));
        }
    }
}
