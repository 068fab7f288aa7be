#!/usr/bin/env bash
# Runs every test of the workspace: unit tests of the rules, and end-to-end tests that
# start the devstack (moto, tansu, osmem-server and the real function binaries).
# Installs the pinned local-stack tools first, skipping those already present.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
# A full run lints the CloudFormation first (cfn-lint, sam validate --lint, checkov; a
# finding fails the run), in seconds, before the long build. A run with arguments is for
# the tests they select only; scripts/lint.sh runs the lint on its own.
if [ $# -eq 0 ]; then bash scripts/lint.sh; fi
ensure_tools
# The admin panel's test drives a real browser (the devstack alone does not need one).
ensure_chromium
# CI builds once from a clean clone: incremental compilation only costs it time and disk.
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL=0; fi
# The end-to-end tests run the functions' real binaries, so build them first.
cargo build --workspace --bins
# With no arguments, everything; otherwise what they select (e.g. -p shutter-e2e).
full=$(($# == 0))
if [ $# -eq 0 ]; then set -- --workspace --all-targets; fi
cargo test "$@"
# A full run then runs the end-to-end suite again with every batch of every event source
# mapping delivered twice and each Kafka batch's partitions in a random order, as Lambda
# may (docs/devstack.md, "Delivery switches"): every effect must end as once leaves it.
if [ "$full" = 1 ]; then DEVSTACK_DELIVERY=twice,reorder cargo test -p shutter-e2e; fi
