#!/usr/bin/env bash
# Runs the fuzz targets (fuzz/) for SECONDS each (default 20), on stable Rust through
# RUSTC_BOOTSTRAP=1, installing cargo-fuzz from crates.io when it is missing. Each run
# starts from the committed seeds in a scratch corpus, so the tree stays clean.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-20}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(config_parse json_merge)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz from crates.io" >&2
  cargo install cargo-fuzz --locked --quiet
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build --fuzz-dir fuzz >&2

for t in "${TARGETS[@]}"; do
  corpus="$(mktemp -d)"
  log="$(mktemp)"
  if ! cargo fuzz run --fuzz-dir fuzz "$t" "$corpus" "fuzz/seeds/$t" -- \
      -max_total_time="$SECONDS_EACH" -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz.sh: $t found a failure (see above; the input is under fuzz/artifacts/$t)" >&2
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  echo "fuzz.sh: $t: $runs executions in ${SECONDS_EACH}s, no failure"
  rm -rf "$corpus" "$log"
done
