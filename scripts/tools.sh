# Pinned tools of the local stack. Sourced by scripts/test.sh and scripts/dev.sh;
# each install is skipped when the pinned version is already there.
# shellcheck shell=bash

MOTO_VERSION="5.2.1"
OSMEM_VERSION="0.1.6"
TANSU_VERSION="0.6.0"
CARGO_LAMBDA_VERSION="1.9.2"
SCHEMATHESIS_VERSION="4.32.5"
SAM_CLI_VERSION="1.170.0"
CFN_LINT_VERSION="1.58.0"
CHECKOV_VERSION="3.3.30"

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

# ensure_venv NAME PACKAGE VERSION COMMAND: PACKAGE==VERSION in a virtualenv of its own,
# ~/.cache/shutter-tools/NAME-VERSION (the version is in its name, so a present COMMAND is
# the pinned one), and its bin/ first on PATH. For tools that pin many libraries of their
# own (SAM CLI, cfn-lint, checkov), which would fight each other and moto beside them.
ensure_venv() {
  local name=$1 package=$2 version=$3 command=$4
  local venv="$HOME/.cache/shutter-tools/$name-$version"
  if [ ! -x "$venv/bin/$command" ]; then
    log "installing $package==$version in $venv"
    rm -rf "$venv" # what an interrupted install left
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$package==$version"
  fi
  export PATH="$venv/bin:$PATH"
}

# SAM CLI: packaging (scripts/build-lambdas.sh sam) and `sam validate --lint`.
ensure_sam() {
  ensure_venv sam aws-sam-cli "$SAM_CLI_VERSION" sam
}

# What scripts/lint.sh runs on the CloudFormation templates.
ensure_lint_tools() {
  command -v python3 >/dev/null || { log "python3 with pip is required"; return 1; }
  ensure_venv cfn-lint cfn-lint "$CFN_LINT_VERSION" cfn-lint
  ensure_venv checkov checkov "$CHECKOV_VERSION" checkov
  ensure_sam
}

# Headless Chromium and its chromedriver, for the admin panel's real-browser test
# (tests/tests/admin_panel.rs): Debian's packages, installed when either is missing.
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then return; fi
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  log "installing chromium and chromium-driver (Debian packages)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
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
