#!/usr/bin/env bash
# Runs every test of the workspace. Installs the pinned local-stack tools first
# (skipping any already present at the pinned version).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
ensure_tools
cargo test --workspace --all-targets "$@"
