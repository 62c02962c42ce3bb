vault {
  address = "https://vault.example.com:8200"
  ca_cert = "/etc/ssl/vault-ca.pem"
  timeout = "7s"
  retry {
    num_retries = 2
    min_backoff = "250ms"
    max_backoff = "3s"
  }
}
auto_auth {
  method "approle" {
    mount_path = "auth/people"
    config = {
      role_id_file_path   = "~/.config/claude-auth-sync/role-id"
      secret_id_file_path = "~/.config/claude-auth-sync/secret-id"
    }
  }
  expect {
    policies = ["claude-auth-sync-${user}"]
    meta     = { role_name = "claude-auth-sync-${user}" }
  }
  sink "file" { config = { path = "/run/user/1000/vault-token", mode = 0640 } }
}
template {
  secret = "secret/workstation/claude-users/${user}"
  probe "http" { timeout = "30s" }
}
template {
  secret      = "secret/workstation/codex/${user}"
  destination = "~/.codex/auth.json"
  json_key    = "/tokens"
  lock        = "flock"
  restore     = "if_missing"
}
log {
  path     = "/var/log/cas/${user}.log"
  journald = false
}
exit_after_auth = true
