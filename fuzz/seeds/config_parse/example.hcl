# claude-auth-sync config: Vault Agent's vocabulary, one file per OS user.
# Default location: ~/.config/claude-auth-sync/config.hcl
# ${user} is your OS user name (from the passwd database); a leading ~ is your home.
# Reference: docs/config.md

vault {
  address = "https://vault.example.com:8200"
  # ca_cert = "/etc/ssl/certs/vault-ca.pem"

  # Per request. With these numbers a Vault that is down or stalls is given up on
  # within (1 + num_retries) * timeout + the pauses: 4 * 5s + under 3.5s.
  timeout = "5s"
  retry {
    num_retries = 3
    min_backoff = "500ms"
    max_backoff = "2s"
  }
}

auto_auth {
  # Your own orphan periodic token, written by the provisioner (mode 0600).
  method "token_file" {
    config = {
      token_file_path = "~/.config/claude-auth-sync/vault-token"
    }
  }

  # Or your own AppRole (role-id + secret-id, written by the provisioner):
  # method "approle" {
  #   mount_path = "auth/approle"
  #   config = {
  #     role_id_file_path   = "~/.config/claude-auth-sync/role-id"
  #     secret_id_file_path = "~/.config/claude-auth-sync/secret-id"
  #   }
  # }

  # The identity the token must carry; anything else is refused as drift.
  expect {
    policies = ["claude-auth-sync-${user}"]
    meta     = { os_user = "${user}" }
  }

  # Optional: hand the renewed token to your other programs.
  # sink "file" {
  #   config = {
  #     path = "~/.config/claude-auth-sync/agent-token"
  #     mode = 0600
  #   }
  # }
}

# Claude Code's login, backed up to and restored from Vault. Everything but
# `secret` has Claude Code's defaults.
template {
  secret = "secret/workstation/claude-users/${user}"
}

log {
  path = "~/.local/state/claude-auth-sync/sync.log"
}
