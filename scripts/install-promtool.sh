#!/usr/bin/env bash
# Prints the path of a working promtool (Prometheus' rule and metrics checker), for the
# tests that check deploy/alerting/prometheus-rules.yml and the agent's metrics file.
# A promtool on PATH is used as it is; otherwise the one in Debian's `prometheus`
# package is extracted into a cache directory (apt-get download + dpkg-deb -x): no
# package is installed, so no Prometheus server is started and none outlives the tests.
set -euo pipefail

if command -v promtool >/dev/null; then
  command -v promtool
  exit 0
fi

CACHE="${CLAUDE_AUTH_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/claude-auth-sync}"
fail() {
  echo "install-promtool: $1; install it with: apt-get install --no-install-recommends prometheus (or put promtool on PATH)" >&2
  exit 1
}
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || fail "no promtool, and no apt-get/dpkg-deb to fetch it"

version="$(apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ { print $2 }')"
if { [ -z "$version" ] || [ "$version" = "(none)" ]; } && [ "$(id -u)" = 0 ]; then
  apt-get update -qq >&2
  version="$(apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ { print $2 }')"
fi
{ [ -n "$version" ] && [ "$version" != "(none)" ]; } || fail "apt knows no prometheus package"

dir="$CACHE/promtool-${version//[^A-Za-z0-9.+-]/_}"
bin="$dir/usr/bin/promtool"
if ! [ -x "$bin" ]; then
  mkdir -p "$CACHE"
  work="$(mktemp -d "$CACHE/.promtool.XXXXXX")"
  chmod 0755 "$work" # apt-get download fetches as _apt where it can
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get download -qq "prometheus=$version" >&2) || fail "apt-get download prometheus=$version failed"
  dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
  [ -x "$work/root/usr/bin/promtool" ] || fail "the prometheus package holds no usr/bin/promtool"
  mkdir -p "$dir/usr/bin"
  mv "$work/root/usr/bin/promtool" "$bin.tmp" && mv "$bin.tmp" "$bin"
fi
"$bin" --version >/dev/null 2>&1 || fail "$bin does not run"
echo "$bin"
