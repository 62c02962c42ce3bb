#!/usr/bin/env bash
# Makes sure cargo-deb (the Debian packager scripts/package.sh uses) is available, at
# the pinned version, and prints its path. Installs it from crates.io with
# `cargo install --locked` into ~/.cargo/bin when missing (a minute or two, once: CI
# caches ~/.cargo/bin). Nothing is fetched from anywhere else.
set -euo pipefail

CARGO_DEB_VERSION="${CARGO_DEB_VERSION:-3.8.0}"
bin="${CARGO_HOME:-$HOME/.cargo}/bin/cargo-deb"

works() { [ -x "$1" ] && [ "$("$1" --version 2>/dev/null)" = "cargo-deb $CARGO_DEB_VERSION" ] ; }

if ! works "$bin"; then
  echo "install-cargo-deb: installing cargo-deb $CARGO_DEB_VERSION (cargo install --locked)" >&2
  cargo install --quiet --locked --version "$CARGO_DEB_VERSION" cargo-deb >&2
fi
if ! works "$bin"; then
  echo "install-cargo-deb: $bin is not cargo-deb $CARGO_DEB_VERSION after installing it." >&2
  echo "install-cargo-deb: try by hand: cargo install --locked --version $CARGO_DEB_VERSION cargo-deb" >&2
  exit 1
fi
echo "$bin"
