#!/usr/bin/env bash
# Installs Grafana's LogQL parser (@grafana/lezer-logql, pinned) from the npm registry
# into a cache directory outside the repository and prints that directory. The tests
# parse deploy/alerting/'s LogQL with it (tests/it/common/logql.mjs).
set -euo pipefail

VERSION="${LEZER_LOGQL_VERSION:-0.4.2}"
CACHE="${CLAUDE_AUTH_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/claude-auth-sync}"
DIR="$CACHE/lezer-logql-$VERSION"
PKG="$DIR/node_modules/@grafana/lezer-logql/package.json"

works() { [ -f "$PKG" ] && node -e "process.exit(require('$PKG').version === '$VERSION' ? 0 : 1)" 2>/dev/null; }

if ! works; then
  . "$(dirname "$0")/lib/npm.sh"
  npm_install_into "$DIR" "@grafana/lezer-logql@$VERSION" install-lezer-logql
  works || { echo "install-lezer-logql: $PKG is not version $VERSION" >&2; exit 1; }
fi
echo "$DIR"
