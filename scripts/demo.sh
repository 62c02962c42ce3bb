#!/usr/bin/env bash
# A first look at claude-auth-sync, on this machine only. It starts a throwaway
# OpenBao dev server on loopback, gives you an isolated Vault identity, and uses a
# stand-in `claude` (scripts/fake-claude, which accepts a made-up login) so that no
# real account is touched. Then: a backup, Vault's metadata, a recovery after the
# login file is blanked, and what Vault trouble looks like. Everything lives in a
# temp dir and is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

BAO_BIN="$(scripts/install-openbao.sh)"
echo "==> building claude-auth-sync"
cargo build --locked --quiet
AGENT="$PWD/target/debug/claude-auth-sync"

WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
ROOT="demo-root-$(od -An -tx8 -N8 /dev/urandom | tr -d ' ')"
ME="$(id -un)"
cleanup() {
  [ -n "${BAO_PID:-}" ] && kill "$BAO_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
bao() { BAO_TOKEN="$ROOT" "$BAO_BIN" "$@"; }

echo "==> starting an OpenBao dev server on 127.0.0.1:$PORT"
HOME="$WORK" "$BAO_BIN" server -dev -dev-no-store-token -dev-root-token-id="$ROOT" \
  -dev-listen-address="127.0.0.1:$PORT" >"$WORK/bao.log" 2>&1 &
BAO_PID=$!
export BAO_ADDR="http://127.0.0.1:$PORT"
for _ in $(seq 100); do bao status >/dev/null 2>&1 && break; sleep 0.1; done

echo "==> an isolated identity for $ME: policy claude-auth-sync-$ME (only your path) and an orphan periodic token"
# The provisioner's own policy for this user (claude-auth-sync policy prints it).
"$AGENT" policy --user "$ME" | bao policy write "claude-auth-sync-$ME" - >/dev/null
mkdir -p "$WORK/cfg" "$WORK/claude" "$WORK/bin"
chmod 700 "$WORK/claude"
(umask 077 && bao token create -orphan -no-default-policy -period=32d -policy="claude-auth-sync-$ME" \
  -metadata="os_user=$ME" -field=token >"$WORK/cfg/vault-token")

echo "==> a stand-in Claude Code login (made-up tokens the stand-in CLI accepts), beside an mcpOAuth entry"
ln -s "$PWD/scripts/fake-claude" "$WORK/bin/claude"
export PATH="$WORK/bin:$PATH" CLAUDE_CONFIG_DIR="$WORK/claude" FAKE_CLAUDE_STATE="$WORK/fake-claude.json"
python3 - "$WORK" <<'PY'
import json, secrets, sys, time
work = sys.argv[1]
access, refresh = "sk-ant-oat01-demo-" + secrets.token_hex(8), "sk-ant-ort01-demo-" + secrets.token_hex(8)
now = int(time.time() * 1000)
json.dump({"access": [access], "refresh": [refresh], "mode": "normal"}, open(work + "/fake-claude.json", "w"))
login = {"accessToken": access, "refreshToken": refresh, "expiresAt": now + 8 * 3600_000,
         "refreshTokenExpiresAt": now + 23 * 86400_000, "scopes": ["user:inference"], "subscriptionType": "enterprise"}
doc = {"claudeAiOauth": login, "mcpOAuth": {"linear|demo": {"accessToken": "mcp-demo"}}}
with open(work + "/claude/.credentials.json", "w") as f:
    json.dump(doc, f, separators=(",", ":"))
PY
chmod 600 "$WORK/claude/.credentials.json"

CONFIG="$WORK/cfg/config.hcl"
cat >"$CONFIG" <<HCL
vault {
  address = "$BAO_ADDR"
  timeout = "5s"
  retry {
    num_retries = 2
    min_backoff = "200ms"
    max_backoff = "1s"
  }
}
auto_auth {
  method "token_file" {
    config = { token_file_path = "$WORK/cfg/vault-token" }
  }
  expect {
    policies = ["claude-auth-sync-\${user}"]
    meta     = { os_user = "\${user}" }
  }
}
template {
  secret = "secret/workstation/claude-users/\${user}"
}
log {
  path     = "$WORK/state/sync.log"
  journald = false
}
HCL
run() { "$AGENT" run --once --config "$CONFIG" 2>&1 | sed 's/^/    /'; return "${PIPESTATUS[0]}"; }
# One run that must end with exit code $1; anything else stops the demo (and the test
# command, which runs it).
expect() {
  local rc=0
  run || rc=$?
  echo "    exit code $rc"
  [ "$rc" = "$1" ] || { echo "demo.sh: expected exit code $1, got $rc (the line above says why)" >&2; exit 1; }
}

echo
echo "==> claude-auth-sync run --once: renew the Vault token, prove the login, back it up"
expect 0
echo "    the private log: $(stat -c '%A' "$WORK/state/sync.log") $WORK/state/sync.log"

echo
echo "==> Vault's copy: only claudeAiOauth, and metadata without any secret"
bao kv get -format=json "secret/workstation/claude-users/$ME" |
  python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]; print("    keys:", list(d["data"])); print("    version:", d["metadata"]["version"]); print("    custom_metadata:", json.dumps(d["metadata"]["custom_metadata"]))'

echo
echo "==> the login file gets blanked (what Claude Code leaves after a refused refresh)"
python3 - "$WORK/claude/.credentials.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["claudeAiOauth"].update(accessToken="", refreshToken="", expiresAt=0)
json.dump(doc, open(sys.argv[1], "w"))
PY
expect 0
python3 - "$WORK/claude/.credentials.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
print("    restored: accessToken set:", bool(doc["claudeAiOauth"]["accessToken"]), "| mcpOAuth kept:", "mcpOAuth" in doc)
PY

echo
echo "==> Vault goes down: the login still works, so the run is DEGRADED (exit 75) and nobody is paged"
kill "$BAO_PID"; wait "$BAO_PID" 2>/dev/null || true; BAO_PID=
expect 75
echo
echo "Done. Config reference: docs/config.md"
