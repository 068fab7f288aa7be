# Pinned tools of the local stack. Sourced by scripts/test.sh and scripts/dev.sh;
# each install is skipped when the pinned version is already there.
# shellcheck shell=bash

MOTO_VERSION="5.2.1"
OSMEM_VERSION="0.1.6"
TANSU_VERSION="0.6.0"
CARGO_LAMBDA_VERSION="1.9.2"
SCHEMATHESIS_VERSION="4.32.5"
SAM_CLI_VERSION="1.170.0"

# Share one target directory between the CLI, tests and CI's cache.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shutter-target}"

log() { printf '[tools] %s\n' "$*" >&2; }

# The output is captured first: with pipefail, `grep -q` closing the pipe early would
# make a match look like a failure.
pip_has() {
  local shown
  shown=$(python3 -m pip show "$1" 2>/dev/null) || return 1
  grep -qx "Version: $2" <<<"$shown"
}

ensure_pip() {
  local pkg=$1 version=$2 spec=${3:-$1}
  if pip_has "$pkg" "$version"; then return; fi
  log "installing $spec==$version"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$spec==$version"
}

# moto's server mode needs its [server] extras (flask, flask-cors) besides moto itself.
ensure_moto() {
  if pip_has moto "$MOTO_VERSION" && python3 -c 'import moto.server, flask_cors' 2>/dev/null; then return; fi
  log "installing moto[server]==$MOTO_VERSION"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "moto[server]==$MOTO_VERSION"
}

# tansu is built from crates.io with its storage engines (the default build has none).
# It builds in a throwaway target directory, not the workspace's shared one.
ensure_tansu() {
  local bin="${CARGO_HOME:-$HOME/.cargo}/bin/tansu"
  if command -v tansu >/dev/null 2>&1; then bin=$(command -v tansu); fi
  if [ -x "$bin" ] && [[ "$("$bin" --version 2>/dev/null)" == *" $TANSU_VERSION" ]]; then return; fi
  log "building tansu $TANSU_VERSION from crates.io (about 15 minutes on 2 cores, once)"
  env -u CARGO_TARGET_DIR cargo install tansu --version "$TANSU_VERSION" --locked \
    --features dynostore,libsql --quiet
}

# SAM CLI, only for packaging (scripts/build-lambdas.sh sam). It pins many libraries of its
# own, so it lives in its own virtualenv rather than beside moto and schemathesis.
ensure_sam() {
  local venv="$HOME/.cache/shutter-tools/sam-$SAM_CLI_VERSION"
  if [ ! -x "$venv/bin/sam" ]; then
    log "installing aws-sam-cli==$SAM_CLI_VERSION in $venv"
    rm -rf "$venv" # what an interrupted install left
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "aws-sam-cli==$SAM_CLI_VERSION"
  fi
  export PATH="$venv/bin:$PATH"
}

# Installs every pinned tool of the local stack that is missing or at another version.
ensure_tools() {
  command -v python3 >/dev/null || { log "python3 with pip is required"; return 1; }
  ensure_moto
  ensure_pip osmem-server "$OSMEM_VERSION"
  ensure_pip cargo-lambda "$CARGO_LAMBDA_VERSION"
  ensure_pip schemathesis "$SCHEMATHESIS_VERSION"
  ensure_tansu
}
