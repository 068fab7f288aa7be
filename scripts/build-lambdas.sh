#!/usr/bin/env bash
# Release build of every function for Lambda on Graviton (arm64), with cargo-lambda and zig.
# `build-lambdas.sh sam [args]` runs `sam build --beta-features [args]` instead, with the
# same compilers: SAM's rust-cargolambda builder then needs no Docker.
# librdkafka's configure script reads CC/CXX/AR rather than the per-target variables that
# cargo-lambda sets, so it is given zig's aarch64 compiler here; host code keeps gcc.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
ensure_pip cargo-lambda "$CARGO_LAMBDA_VERSION"
wrappers=$(mktemp -d)
trap 'rm -rf "$wrappers"' EXIT
# lld (zig's linker) refuses librdkafka's version script, which names a symbol the
# build leaves out; GNU ld ignores it. Only librdkafka's shared-library link uses -shared.
cat > "$wrappers/cc" <<'SH'
#!/bin/sh
case " $* " in
  *" -shared "*) exec python3 -m ziglang cc -target aarch64-linux-gnu.2.17 -Wl,--undefined-version "$@" ;;
  *) exec python3 -m ziglang cc -target aarch64-linux-gnu.2.17 "$@" ;;
esac
SH
sed 's/ziglang cc/ziglang c++/g' "$wrappers/cc" > "$wrappers/cxx"
printf '#!/bin/sh\nexec python3 -m ziglang ar "$@"\n' > "$wrappers/ar"
chmod +x "$wrappers/cc" "$wrappers/cxx" "$wrappers/ar"
cross=(CC="$wrappers/cc" CXX="$wrappers/cxx" AR="$wrappers/ar" HOST_CC=gcc HOST_CXX=g++ HOST_AR=ar
  CC_x86_64_unknown_linux_gnu=gcc CXX_x86_64_unknown_linux_gnu=g++ AR_x86_64_unknown_linux_gnu=ar)
if [ "${1:-}" = "sam" ]; then
  shift
  # Each function's CodeUri is its own crate, so cargo builds it with its own features.
  exec env "${cross[@]}" sam build --beta-features "$@"
fi
export CARGO_TARGET_DIR="${LAMBDA_TARGET_DIR:-$HOME/.cache/shutter-lambda-target}"
# Only the function crates: the devstack and the tests are not deployed.
packages=()
for manifest in functions/*/Cargo.toml; do
  packages+=(-p "$(sed -n 's/^name = "\(.*\)"/\1/p' "$manifest" | head -1)")
done
env "${cross[@]}" cargo lambda build --release --arm64 "${packages[@]}" "$@"
echo "built $(ls "$CARGO_TARGET_DIR/lambda" | wc -l) functions in $CARGO_TARGET_DIR/lambda:"
for dir in "$CARGO_TARGET_DIR"/lambda/*/; do
  printf '  %-28s %s bytes\n' "$(basename "$dir")" "$(stat -c %s "$dir/bootstrap")"
done
