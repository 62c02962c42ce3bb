# Sourced by the install-*.sh scripts: npm_install_into DIR PACKAGE@VERSION NAME installs
# one pinned package from the npm registry into DIR (a cache outside the repository),
# or exits with what to do. Messages go to stderr, prefixed with NAME.
npm_install_into() {
  local dir="$1" spec="$2" name="$3"
  command -v npm >/dev/null || {
    echo "$name: npm is missing; install Node.js and npm (Debian: apt-get install nodejs npm)" >&2
    exit 1
  }
  echo "$name: installing $spec into $dir" >&2
  mkdir -p "$dir"
  if ! npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error "$spec" >&2; then
    echo "$name: npm could not install $spec (is the npm registry reachable?)" >&2
    exit 1
  fi
}
