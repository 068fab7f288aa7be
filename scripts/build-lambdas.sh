#!/usr/bin/env bash
# Release build of every function for Lambda on Graviton (arm64), with cargo-lambda and zig.
# librdkafka's configure script reads CC/AR rather than the per-target variables that
# cargo-lambda sets, so it is given zig's aarch64 compiler here; host code keeps gcc.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
ensure_pip cargo-lambda "$CARGO_LAMBDA_VERSION"
wrappers=$(mktemp -d)
trap 'rm -rf "$wrappers"' EXIT
printf '#!/bin/sh\nexec python3 -m ziglang cc -target aarch64-linux-gnu.2.17 "$@"\n' > "$wrappers/cc"
printf '#!/bin/sh\nexec python3 -m ziglang ar "$@"\n' > "$wrappers/ar"
chmod +x "$wrappers/cc" "$wrappers/ar"
export CARGO_TARGET_DIR="${LAMBDA_TARGET_DIR:-$HOME/.cache/shutter-lambda-target}"
# Only the function crates: the devstack and the tests are not deployed.
packages=()
for manifest in functions/*/Cargo.toml; do
  packages+=(-p "$(sed -n 's/^name = "\(.*\)"/\1/p' "$manifest" | head -1)")
done
CC="$wrappers/cc" AR="$wrappers/ar" HOST_CC=gcc HOST_AR=ar CC_x86_64_unknown_linux_gnu=gcc AR_x86_64_unknown_linux_gnu=ar \
  cargo lambda build --release --arm64 "${packages[@]}" "$@"
echo "built $(ls "$CARGO_TARGET_DIR/lambda" | wc -l) functions in $CARGO_TARGET_DIR/lambda:"
for dir in "$CARGO_TARGET_DIR"/lambda/*/; do
  printf '  %-28s %s bytes\n' "$(basename "$dir")" "$(stat -c %s "$dir/bootstrap")"
done
