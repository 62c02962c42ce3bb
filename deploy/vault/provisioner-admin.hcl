# The Vault/OpenBao policy of the admin token that `claude-auth-sync provision` uses
# (VAULT_TOKEN, BAO_TOKEN or --admin-token-file). Exactly the requests the provisioner
# makes, for the roster defaults below; tests/provision.rs runs every admin run with a
# token that has only this policy.
#
#   bao policy write provision-claude-auth-sync deploy/vault/provisioner-admin.hcl
#   bao token create -policy=provision-claude-auth-sync -no-default-policy -orphan -period=24h
#
# Name it outside claude-auth-sync-*: that glob is the users' policies, which this
# token may write.
#
# Paths to change when the roster does:
#   kv_mount: secret, path_prefix: workstation/claude-users -> "secret/metadata/workstation/claude-users/*"
#   approle_mount: approle                                  -> "auth/approle/..." and "sys/auth/approle"
#
# Guard this token like a root token: it writes the policies named claude-auth-sync-*,
# and a token that can write a policy can grant that policy anything. Give it to admin
# runs only; the hourly routine run needs no admin token at all.

# Proves the token valid before any 403 is read as a missing capability.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# Each user's policy, claude-auth-sync-<user> (written when it differs, deleted by --prune).
path "sys/policies/acl/claude-auth-sync-*" {
  capabilities = ["create", "read", "update", "delete"]
}

# Each user's secret: its version settings (max_versions, delete_version_after,
# cas_required). The mount check (sys/internal/ui/mounts/...) needs a capability here too.
# No data: the provisioner never reads or writes a login.
path "secret/metadata/workstation/claude-users/*" {
  capabilities = ["create", "read", "update"]
  allowed_parameters = {
    "max_versions"         = []
    "delete_version_after" = []
    "cas_required"         = []
    "metadata_cas"         = []
  }
}

# auth: token. One token role per user allows that user's policy only, so no mint can
# give a token more; periodic orphan tokens are minted from it without sudo.
path "auth/token/roles/claude-auth-sync-*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "auth/token/create/claude-auth-sync-*" {
  capabilities = ["update"]
}

# Finding and revoking credentials: the token in a home, the accessor in the state file,
# the token the agent keeps from its AppRole login.
path "auth/token/lookup" {
  capabilities = ["update"]
}
path "auth/token/lookup-accessor" {
  capabilities = ["update"]
}
path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}

# auth: approle only. Whether AppRole is mounted, and mounting it the first time
# (sudo); without the second, an operator mounts it: `bao auth enable approle`.
path "sys/auth" {
  capabilities = ["read"]
}
path "sys/auth/approle" {
  capabilities = ["create", "update", "sudo"]
}

# One AppRole role per user: the role, its role-id, its secret-ids (create, look up,
# list, destroy).
path "auth/approle/role/claude-auth-sync-*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
