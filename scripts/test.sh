#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test.
#   scripts/test.sh                 # everything
#   scripts/test.sh --test auto_auth  # extra arguments go to cargo test
set -euo pipefail
cd "$(dirname "$0")/.."

BAO_BIN="$(scripts/install-openbao.sh)"
export BAO_BIN
echo "test.sh: OpenBao: $("$BAO_BIN" version)"

cargo test --locked "$@"
