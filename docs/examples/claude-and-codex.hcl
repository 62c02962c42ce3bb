# Claude Code and OpenAI Codex in one agent: one run, one Vault identity (the user's
# own token and policy), one report line. Each template is synced on its own: trouble
# with one never skips the other, and the line reports the worse of the two, says
# which (template=) and what each one did (templates=verified,recovered).
#
# The provisioner writes the first two blocks and the Claude Code template; add the
# Codex template, and `secrets: [codex]` to the user's roster entry so that the
# user's policy grants its path (docs/provisioning.md).
#
# Tests run this file as it is (tests/it/examples.rs), with three placeholders replaced:
# the Vault address below, `~/` (a scratch home) and `${user}` (a throwaway user).

vault {
  address = "https://vault.example.com:8200"
}

auto_auth {
  # One token for both templates: the user's own, written by the provisioner.
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

# template #1: Claude Code's login. Everything but `secret` has Claude Code's
# defaults: the claudeAiOauth object of ~/.claude/.credentials.json (or of
# $CLAUDE_CONFIG_DIR), Claude Code's own locks, and a real inference call through
# `claude -p` as the probe.
template {
  secret = "secret/workstation/claude-users/${user}"
}

# template #2: Codex's login, as in codex.hcl: the tokens object of
# ~/.codex/auth.json, in a secret of its own beside Claude Code's.
template {
  secret      = "secret/workstation/claude-users/${user}/codex"
  destination = "~/.codex/auth.json"
  json_key    = "/tokens"
  field       = "tokens"

  # Single-use refresh tokens: never replay an older copy.
  refresh_token_rotates = true
  # Codex has no lock of its own on the file: agents serialise with a flock.
  lock = "flock"

  # A real request through the CLI, never a status command.
  probe "command" {
    command = ["codex", "exec", "--ephemeral", "--skip-git-repo-check", "--sandbox", "read-only", "Reply with the single word OK"]
    timeout = "120s"
  }
}

log {
  path = "~/.local/state/claude-auth-sync/sync.log"
}
