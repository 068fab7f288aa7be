#!/usr/bin/env bash
# Starts the whole of Shutter locally, with no Docker: installs the pinned local-stack
# tools when missing, builds the functions and the devstack, then runs the devstack with
# the demo users alice, bob and carol. Extra arguments go to the devstack (e.g. --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
ensure_tools
log "building the functions and the devstack (debug)"
cargo build --workspace --bins --quiet
exec "$CARGO_TARGET_DIR/debug/devstack" --demo-data "$@"
