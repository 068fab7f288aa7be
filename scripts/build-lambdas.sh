#!/usr/bin/env bash
# Release build of every function for Lambda on Graviton (arm64), with cargo-lambda and zig.
# `build-lambdas.sh sam [args]` runs `sam build --beta-features [args]` instead, with the
# same compilers: SAM's rust-cargolambda builder then needs no Docker.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
ensure_pip cargo-lambda "$CARGO_LAMBDA_VERSION"
if [ "${1:-}" = "sam" ]; then
  shift
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
echo "built $(ls "$CARGO_TARGET_DIR/lambda" | wc -l) functions in $CARGO_TARGET_DIR/lambda:"
for dir in "$CARGO_TARGET_DIR"/lambda/*/; do
  printf '  %-28s %s bytes\n' "$(basename "$dir")" "$(stat -c %s "$dir/bootstrap")"
done
