#!/usr/bin/env bash
# A first look at claude-auth-sync, on this machine only: starts a throwaway OpenBao
# dev server on loopback, gives the current user an isolated periodic token, writes a
# config, and runs the agent. Everything lives in a temp dir and is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

BAO_BIN="$(scripts/install-openbao.sh)"
echo "==> building claude-auth-sync"
cargo build --locked --quiet
AGENT="$PWD/target/debug/claude-auth-sync"

WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
ROOT="demo-root-$(od -An -tx8 -N8 /dev/urandom | tr -d ' ')"
USER_NAME="$(id -un)"
cleanup() {
  [ -n "${BAO_PID:-}" ] && kill "$BAO_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "==> starting an OpenBao dev server on 127.0.0.1:$PORT (log: $WORK/bao.log)"
HOME="$WORK" "$BAO_BIN" server -dev -dev-no-store-token -dev-root-token-id="$ROOT" \
  -dev-listen-address="127.0.0.1:$PORT" >"$WORK/bao.log" 2>&1 &
BAO_PID=$!
export BAO_ADDR="http://127.0.0.1:$PORT"
for _ in $(seq 100); do
  BAO_TOKEN="$ROOT" "$BAO_BIN" status >/dev/null 2>&1 && break
  sleep 0.1
done

echo "==> giving $USER_NAME an isolated identity: policy claude-auth-sync-$USER_NAME and an orphan periodic token"
BAO_TOKEN="$ROOT" "$BAO_BIN" policy write "claude-auth-sync-$USER_NAME" - >/dev/null <<POLICY
path "secret/data/workstation/claude-users/$USER_NAME" { capabilities = ["create", "read", "update"] }
path "secret/metadata/workstation/claude-users/$USER_NAME" { capabilities = ["read", "update"] }
POLICY
mkdir -p "$WORK/home/.config/claude-auth-sync"
(umask 077 && BAO_TOKEN="$ROOT" "$BAO_BIN" token create -orphan -period=32d \
  -policy="claude-auth-sync-$USER_NAME" -metadata="os_user=$USER_NAME" -field=token \
  >"$WORK/home/.config/claude-auth-sync/vault-token")

CONFIG="$WORK/home/.config/claude-auth-sync/config.hcl"
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
    config = { token_file_path = "$WORK/home/.config/claude-auth-sync/vault-token" }
  }
  expect {
    policies = ["claude-auth-sync-\${user}"]
    meta     = { os_user = "\${user}" }
  }
  sink "file" {
    config = { path = "$WORK/home/.config/claude-auth-sync/agent-token", mode = 0600 }
  }
}
log {
  path = "$WORK/home/.local/state/claude-auth-sync/sync.log"
}
HCL

echo
echo "==> claude-auth-sync check-config   (the config, interpolated, defaults filled in)"
"$AGENT" check-config --config "$CONFIG" | sed -n '/^auto_auth/,/^}/p'

echo
echo "==> claude-auth-sync run --once   (auth, renew, identity check, sink)"
"$AGENT" run --once --config "$CONFIG" && echo "exit code 0"
echo "    sink written: $(stat -c '%A %n' "$WORK/home/.config/claude-auth-sync/agent-token")"

echo
echo "==> an admin revokes the token: the next run fails and says who must act"
BAO_TOKEN="$ROOT" "$BAO_BIN" token revoke "$(cat "$WORK/home/.config/claude-auth-sync/vault-token")" >/dev/null
"$AGENT" run --once --config "$CONFIG" || echo "exit code $?"

echo
echo "==> Vault goes down: the run is DEGRADED (exit 75), nobody is paged"
kill "$BAO_PID"; wait "$BAO_PID" 2>/dev/null || true; BAO_PID=
"$AGENT" run --once --config "$CONFIG" || echo "exit code $?"
echo
echo "Done. Config reference: docs/config.md"
