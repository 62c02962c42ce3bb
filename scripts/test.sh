#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test.
#   scripts/test.sh                 # everything
#   scripts/test.sh --test auto_auth  # extra arguments go to cargo test (and skip the fuzz run)
set -euo pipefail
cd "$(dirname "$0")/.."

# The unit tests of systemd/ need systemd-analyze (Debian's systemd package).
if ! command -v systemd-analyze >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd >/dev/null
  else
    echo "test.sh: systemd-analyze is missing; install it with: apt-get install --no-install-recommends systemd" >&2
    exit 1
  fi
fi
[ "$(id -u)" = 0 ] || echo "test.sh: not root: the provisioning tests (they create OS users) will fail; CI runs as root" >&2

BAO_BIN="$(scripts/install-openbao.sh)"
export BAO_BIN
CLAUDE_CODE_BIN="$(scripts/install-claude-code.sh)"
export CLAUDE_CODE_BIN
echo "test.sh: OpenBao: $("$BAO_BIN" version)"

cargo test --locked "$@"

# A short fuzz run of the config parser and the JSON merge (scripts/fuzz.sh SECONDS for longer).
if [ $# -eq 0 ]; then
  scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
fi
