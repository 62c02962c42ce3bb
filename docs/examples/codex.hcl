# OpenAI Codex's ChatGPT login (~/.codex/auth.json), kept valid and recoverable
# through Vault the way Claude Code's is: proven by a real request, backed up when it
# works, restored from Vault's latest copy when Codex rejects it.
#
# The provisioner grants the path when the roster says `secrets: [codex]`
# (docs/provisioning.md). To keep Codex beside Claude Code in one agent, use
# claude-and-codex.hcl instead: one agent per user, one Vault identity.
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

# ~/.codex/auth.json is {"OPENAI_API_KEY": ..., "tokens": {id_token, access_token,
# refresh_token, account_id}, "last_refresh": ...}. Only `tokens` is kept in Vault
# and restored; OPENAI_API_KEY, last_refresh and any other key stay as they are on disk.
template {
  # A secret of its own under the user's path: the Claude Code login's lineage
  # (custom_metadata) stays separate from Codex's.
  secret      = "secret/workstation/claude-users/${user}/codex"
  destination = "~/.codex/auth.json"

  # The JSON pointer of the subtree in the file, and its key in the secret's data.
  json_key = "/tokens"
  field    = "tokens"

  # Codex rotates the refresh token on every refresh (single use): an older copy
  # is never replayed over a newer one, and restore = "always" is refused.
  refresh_token_rotates = true
  restore               = "on_failure"

  # Codex takes no lock on auth.json that the agent knows how to join (Claude Code's
  # directory locks mean nothing to it): agents serialise among themselves with a
  # flock, and a restore re-reads the file under it and merges into what is there.
  lock = "flock"

  # The proof: one real request through the CLI (`codex exec` sends a prompt to the
  # model with the file's access token), never a status command, which reads local
  # state only. Its exit code and its "unexpected status 401" say whether the login
  # works. --ephemeral leaves no session file behind, --skip-git-repo-check lets it
  # run outside a repository, and the read-only sandbox lets the model change
  # nothing. Under systemd give the absolute path of `codex`.
  probe "command" {
    command = ["codex", "exec", "--ephemeral", "--skip-git-repo-check", "--sandbox", "read-only", "Reply with the single word OK"]
    timeout = "120s"
  }
}

log {
  path = "~/.local/state/claude-auth-sync/sync.log"
}
