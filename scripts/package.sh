#!/usr/bin/env bash
# Builds the Debian package and prints its path:
#   scripts/package.sh                # -> target/debian/claude-auth-sync_<version>-1_<arch>.deb
#   apt install ./target/debian/claude-auth-sync_*.deb
# What goes in is [package.metadata.deb] in Cargo.toml. Generated first, under
# target/package/: every unit of systemd/ and systemd/user/ (a new one is packaged
# without editing this) with the binary's path rewritten to /usr/bin (the sources say
# /usr/local/bin, for the manual install of docs/runbook.md), the shell completions and
# the man page (from the release binary's own clap definitions).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo_deb="$(scripts/install-cargo-deb.sh)"
echo "package.sh: building the release binary (a no-op when it is current)" >&2
cargo build --locked --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/claude-auth-sync"

out=target/package
rm -rf "$out"
mkdir -p "$out/system" "$out/user" "$out/completions"

units() {
  local dir="$1" to="$2" f n=0
  for f in "$dir"/*; do
    case "$f" in
      *.service | *.timer | *.socket | *.path | *.target)
        sed 's#/usr/local/bin/claude-auth-sync#/usr/bin/claude-auth-sync#g' "$f" > "$to/${f##*/}"
        n=$((n + 1))
        ;;
    esac
  done
  [ "$n" -gt 0 ] || { echo "package.sh: no unit files in $dir" >&2; exit 1; }
}
units systemd "$out/system"
units systemd/user "$out/user"

"$bin" completions bash > "$out/completions/claude-auth-sync"
"$bin" completions zsh > "$out/completions/_claude-auth-sync"
"$bin" completions fish > "$out/completions/claude-auth-sync.fish"
"$bin" man | gzip -9n > "$out/claude-auth-sync.1.gz"

# --no-build: the binary above is the one packaged; --no-strip: the release profile
# strips it already (no binutils needed).
"$cargo_deb" --no-build --no-strip --locked --output target/debian/ --quiet
