# Pinned tools of the local stack. Sourced by scripts/test.sh and scripts/dev.sh;
# each install is skipped when the pinned version is already there.
# shellcheck shell=bash

MOTO_VERSION="5.2.1"
OSMEM_VERSION="0.1.6"
TANSU_VERSION="0.6.0"
CARGO_LAMBDA_VERSION="1.9.2"

# Share one target directory between the CLI, tests and CI's cache.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shutter-target}"

log() { printf '[tools] %s\n' "$*" >&2; }

pip_has() { python3 -m pip show "$1" 2>/dev/null | grep -qx "Version: $2"; }

ensure_pip() {
  local pkg=$1 version=$2 spec=${3:-$1}
  if pip_has "$pkg" "$version"; then return; fi
  log "installing $spec==$version"
  python3 -m pip install --quiet --disable-pip-version-check "$spec==$version"
}

ensure_tools() {
  :
}
