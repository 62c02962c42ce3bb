#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test.
#   scripts/test.sh                       # everything
#   scripts/test.sh --test it sync::      # one topic of the integration tests (tests/it/sync.rs)
#   scripts/test.sh --test it -- --exact sync::a_valid_login_is_ok_and_vault_holds_exactly_the_oauth_object
#   scripts/test.sh --lib                 # the unit tests only
# Extra arguments go to cargo test (and skip the fuzz run).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: systemd (systemd-analyze for the unit checks, and the systemd that
# tests/it/systemd.rs boots in namespaces), dbus, polkitd (the polkit rule) and
# libpam-systemd (user managers for linger) for that boot, sudo (the runbook's command),
# groff-base (the man page renders without warnings: tests/it/package/).
packages=(systemd dbus polkitd libpam-systemd sudo groff-base)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing ${missing[*]} (apt-get)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "test.sh: missing ${missing[*]}; install with: apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi
[ "$(id -u)" = 0 ] || echo "test.sh: not root: the provisioning and systemd tests (they create OS users) will fail; CI runs as root" >&2

BAO_BIN="$(scripts/install-openbao.sh)"
export BAO_BIN
CLAUDE_CODE_BIN="$(scripts/install-claude-code.sh)"
export CLAUDE_CODE_BIN
LEZER_LOGQL_DIR="$(scripts/install-lezer-logql.sh)"
export LEZER_LOGQL_DIR
# promtool (from Debian's prometheus package, extracted, never installed): the alert rules and the metrics file.
PROMTOOL_BIN="$(scripts/install-promtool.sh)"
export PROMTOOL_BIN
echo "test.sh: OpenBao: $("$BAO_BIN" version)"
# cargo-deb for scripts/package.sh, which tests/it/package/deb.rs runs (cargo install, once).
scripts/install-cargo-deb.sh >/dev/null

cargo test --locked "$@"

# A short fuzz run of the config parser and the JSON merge (scripts/fuzz.sh SECONDS for longer).
if [ $# -eq 0 ]; then
  scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
fi

# A smoke run of the side-by-side benchmark (scripts/bench.sh --smoke, about 20 s): both
# tools a few times against one dev server, the debug build, no thresholds; it fails
# only when a tool fails or leaves the wrong file.
if [ $# -eq 0 ]; then
  scripts/bench.sh --smoke
fi

# The README's first command, as a newcomer runs it: it stops with an error when a run
# ends otherwise than it says (OK, recovered, DEGRADED with Vault down).
if [ $# -eq 0 ]; then
  scripts/demo.sh >/dev/null
  echo "test.sh: scripts/demo.sh ran as the README shows"
fi
