#!/usr/bin/env bash
# Installs the pinned Claude Code CLI from the npm registry into a cache directory
# outside the repository (nothing is vendored) and prints the path of its `claude`.
# The real-CLI tests run it offline against local mocks.
set -euo pipefail

VERSION="${CLAUDE_CODE_VERSION:-2.1.197}"
CACHE="${CLAUDE_AUTH_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/claude-auth-sync}"
DIR="$CACHE/claude-code-$VERSION"
BIN="$DIR/node_modules/.bin/claude"

works() { [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "^$VERSION "; }

if ! works; then
  . "$(dirname "$0")/lib/npm.sh"
  npm_install_into "$DIR" "@anthropic-ai/claude-code@$VERSION" install-claude-code
  # npm may skip the package's postinstall, which puts the native binary in place.
  works || (cd "$DIR/node_modules/@anthropic-ai/claude-code" && node install.cjs >&2) || true
  works || {
    echo "install-claude-code: $BIN does not run or is not version $VERSION" >&2
    exit 1
  }
fi
echo "$BIN"
