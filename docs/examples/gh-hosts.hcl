# The GitHub CLI's login (~/.config/gh/hosts.yml), rendered from a Vault secret: a
# render-only template (Vault Agent style), for a token an admin or the user keeps in
# Vault and that gh never changes on disk. The agent writes the file when Vault's copy
# changes and never writes back.
#
# The secret holds two keys, e.g.:
#   bao kv put secret/workstation/claude-users/alice/gh user=alice oauth_token=gho_...
# The provisioner grants the path when the roster says `secrets: [gh]`
# (docs/provisioning.md). gh reads the token from hosts.yml when it stores
# credentials in the file rather than a keyring (`gh auth login --insecure-storage`),
# which is what a headless workstation has.
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
  secret      = "secret/workstation/claude-users/${user}/gh"
  # The directory must exist (gh makes it on first use; or mkdir -m 700 ~/.config/gh).
  destination = "~/.config/gh/hosts.yml"
  # The token is in the file: only the user may read it.
  perms = 0600

  # Handlebars in strict mode, the secret's data as the context: a key missing from
  # the secret fails the run (FAIL reason=template_error) and leaves the file alone.
  # Every value goes through the json helper: a JSON string is a valid YAML scalar,
  # so a token or a name with YAML's special characters (: # ' " {) cannot break the
  # file or turn into another key. Multi-account layout of gh 2.40 and later.
  contents = <<-EOT
    github.com:
        users:
            {{json user}}:
                oauth_token: {{json oauth_token}}
        git_protocol: https
        oauth_token: {{json oauth_token}}
        user: {{json user}}
    EOT
}

log {
  path = "~/.local/state/claude-auth-sync/sync.log"
}
