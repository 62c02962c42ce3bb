#!/usr/bin/env bash
# Benchmark: provision N throwaway OS users (default 200) against a local OpenBao dev
# server, as root. Times the first admin run, a second (idempotent) run and the
# routine run without an admin token; removes the users afterwards. Not a test: the
# figures go into docs/provisioning.md by hand.
#   sudo scripts/bench-provision.sh [N] [token|approle]
# With --ha: the same three runs against a real 3-node OpenBao Raft cluster behind a
# load balancer, N roster users (default 1000) without OS accounts (the debug build's
# test-only CLAUDE_AUTH_SYNC_TEST_ONLY_FAKE_HOMES): tests/it/ha.rs's fleet test with
# HA_FLEET_USERS=N, its figures printed (docs/performance.md, docs/reliability.md).
#   sudo scripts/bench-provision.sh --ha [N]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --ha ]; then
  N="${2:-1000}"
  [[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "bench-provision: --ha expects a number of users, got '$N'" >&2; exit 2; }
  HA_FLEET_USERS="$N" scripts/test.sh --test it -- --exact ha::a_fleet_is_provisioned_through_the_balancer_of_an_ha_cluster \
    --nocapture 2>&1 | grep -E '^ha fleet|^test result|panicked'
  exit "${PIPESTATUS[0]}"
fi
N="${1:-200}"
AUTH="${2:-token}"
[ "$(id -u)" = 0 ] || { echo "bench-provision: run as root (it creates OS users)" >&2; exit 1; }

BAO_BIN="$(scripts/install-openbao.sh)"
cargo build --locked --release --quiet
AGENT="$PWD/target/release/claude-auth-sync"
WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
ROOT="bench-root-$(od -An -tx8 -N8 /dev/urandom | tr -d ' ')"
PREFIX="cb$(od -An -tx2 -N2 /dev/urandom | tr -d ' ')"
users=()
cleanup() {
  [ -n "${BAO_PID:-}" ] && kill "$BAO_PID" 2>/dev/null || true
  for u in "${users[@]}"; do userdel --remove --force "$u" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

HOME="$WORK" "$BAO_BIN" server -dev -dev-no-store-token -dev-root-token-id="$ROOT" \
  -dev-listen-address="127.0.0.1:$PORT" >"$WORK/bao.log" 2>&1 &
BAO_PID=$!
for _ in $(seq 100); do BAO_ADDR="http://127.0.0.1:$PORT" "$BAO_BIN" status >/dev/null 2>&1 && break; sleep 0.1; done

echo "creating $N users ($PREFIX...)" >&2
printf 'vault:\n  address: http://127.0.0.1:%s\n  auth: %s\nusers:\n' "$PORT" "$AUTH" >"$WORK/roster.yaml"
for i in $(seq -w 1 "$N"); do
  u="${PREFIX}u$i"
  useradd --create-home --shell /usr/sbin/nologin "$u"
  users+=("$u")
  printf '  - name: %s\n' "$u" >>"$WORK/roster.yaml"
done

measure() {
  local label="$1"; shift
  local start end
  start=$(date +%s.%N)
  "$@" >"$WORK/out.txt" 2>&1 || true
  end=$(date +%s.%N)
  printf '%-34s %6.2f s  (%s)\n' "$label" "$(python3 -c "print($end - $start)")" "$(grep -c ': changed\|: ok' "$WORK/out.txt") users ok/changed"
}
echo "claude-auth-sync $("$AGENT" --version | cut -d' ' -f2), OpenBao $("$BAO_BIN" version | cut -d' ' -f2), $N users, auth=$AUTH, $(nproc) cores"
measure "first run (admin, mints all)" env VAULT_TOKEN="$ROOT" "$AGENT" provision --roster "$WORK/roster.yaml" --state "$WORK/state.json"
measure "second run (admin, mints nothing)" env VAULT_TOKEN="$ROOT" "$AGENT" provision --roster "$WORK/roster.yaml" --state "$WORK/state.json"
measure "routine run (no admin token)" "$AGENT" provision --roster "$WORK/roster.yaml" --state "$WORK/state.json"
