#!/usr/bin/env bash
# Release build of every function for Lambda on Graviton (arm64), with cargo-lambda and zig,
# then each function's binary size. Extra arguments go to cargo lambda (e.g. `--bin
# outbox-publisher` for one function). `build-lambdas.sh sam [args]` runs
# `sam build --beta-features [args]` instead: SAM's rust-cargolambda builder calls the same
# cargo-lambda, so it needs no Docker.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
ensure_pip cargo-lambda "$CARGO_LAMBDA_VERSION"
if [ "${1:-}" = "sam" ]; then
  shift
  ensure_sam
  # Each function's CodeUri is its own crate, so cargo builds it with its own features.
  exec sam build --beta-features "$@"
fi
export CARGO_TARGET_DIR="${LAMBDA_TARGET_DIR:-$HOME/.cache/shutter-lambda-target}"
# Only the function crates: the devstack and the tests are not deployed.
packages=()
for manifest in functions/*/Cargo.toml; do
  packages+=(-p "$(sed -n 's/^name = "\(.*\)"/\1/p' "$manifest" | head -1)")
done
cargo lambda build --release --arm64 "${packages[@]}" "$@"
# Each function's stripped binary, largest first, against the 5 MB (5,000,000 bytes) budget.
echo "built $(ls "$CARGO_TARGET_DIR/lambda" | wc -l) functions in $CARGO_TARGET_DIR/lambda (bytes, largest first):"
for dir in "$CARGO_TARGET_DIR"/lambda/*/; do
  printf '%s %s\n' "$(stat -c %s "$dir/bootstrap")" "$(basename "$dir")"
done | sort -rn | awk '
  NR == 1 { largest = $1; name = $2 }
  { printf "  %-28s %10d\n", $2, $1 }
  END { printf "largest: %s, %d bytes (%s the 5 MB budget)\n", name, largest, largest <= 5000000 ? "within" : "over" }'
