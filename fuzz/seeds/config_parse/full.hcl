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
    min_backoff = "1s"
    config = {
      role_id_file_path   = "~/.config/claude-auth-sync/role-id"
      secret_id_file_path = "~/.config/claude-auth-sync/secret-id"
    }
  }
  expect {
    policies = ["claude-auth-sync-${user}", "default"]
    meta     = { role_name = "claude-auth-sync-${user}" }
  }
  sink "file" { config = { path = "/run/user/1000/vault-token", mode = 0640 } }
  sink {
    type   = "file"
    config = { path = "~/vault-token" }
  }
}
template {
  secret = "secret/workstation/claude-users/${user}"
  probe "http" { timeout = "30s" }
}
template {
  secret      = "secret/workstation/codex/${user}"
  destination = "~/.codex/auth.json"
  field       = "auth"
  json_key    = "/tokens"
  lock        = "flock"
  restore     = "if_missing"
  writeback   = false
  probe "command" {
    command = ["codex", "login", "status"]
    timeout = "20s"
  }
}
template {
  secret      = "secret/workstation/gcloud/${user}"
  source      = "~/.config/claude-auth-sync/adc.json.hbs"
  destination = "~/.config/gcloud/application_default_credentials.json"
  command     = ["gcloud", "auth", "application-default", "print-access-token"]
}
log {
  path     = "/var/log/cas/${user}.log"
  journald = false
  level    = "debug"
}
pid_file = "/run/user/1000/claude-auth-sync.pid"
exit_after_auth = true
