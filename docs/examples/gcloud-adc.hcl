# gcloud's application default credentials
# (~/.config/gcloud/application_default_credentials.json, what
# `gcloud auth application-default login` writes and every Google client library
# reads): the whole file is one secret, backed up to Vault while it works and put back
# when it is gone, clobbered or rejected.
#
# The provisioner grants the path when the roster says `secrets: [gcloud]`
# (docs/provisioning.md). Add the template block to the user's existing config to
# keep it beside Claude Code's login in one agent.
#
# Tests run this file as it is (tests/it/examples.rs), with three placeholders replaced:
# the Vault address below, `~/` (a scratch home) and `${user}` (a throwaway user).

vault {
  address = "https://vault.example.com:8200"
}

auto_auth {
  # The user's own periodic token, written by the provisioner (mode 0600).
  method "token_file" {
    config = {
      token_file_path = "~/.config/claude-auth-sync/vault-token"
    }
  }

  # The identity the token must carry; anything else is refused as drift.
  expect {
    policies = ["claude-auth-sync-${user}"]
    meta     = { os_user = "${user}" }
  }
}

template {
  secret      = "secret/workstation/claude-users/${user}/gcloud"
  destination = "~/.config/gcloud/application_default_credentials.json"

  # "/" is the whole document: the file has nothing but the credentials
  # (type, client_id, client_secret, refresh_token, quota_project_id, ...). Vault
  # keeps it under the field adc.
  json_key = "/"
  field    = "adc"

  # A Google user refresh token is not rotated by a refresh: an older copy is the
  # same login. (Keep the default restore = "on_failure": the probe decides.)
  refresh_token_rotates = false

  # gcloud takes no lock on this file: agents serialise among themselves.
  lock = "flock"

  # The proof: gcloud exchanges the refresh token for an access token at Google's
  # token endpoint, a real request that fails with invalid_grant once the login is
  # revoked or expired. The access token it prints is read by the agent, never
  # logged. Under systemd give the absolute path of `gcloud`.
  probe "command" {
    command = ["gcloud", "auth", "application-default", "print-access-token"]
    timeout = "60s"
  }
}

log {
  path = "~/.local/state/claude-auth-sync/sync.log"
}
