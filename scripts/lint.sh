#!/usr/bin/env bash
# Lints the CloudFormation: template.yaml (SAM) and the infra stacks in infra/*.yaml, as a
# reviewer would before a deploy. Fails on any finding. Offline: the tools come from PyPI
# once (scripts/tools.sh, pinned, each in its own virtualenv), and nothing here calls AWS.
#   cfn-lint             every template against the CloudFormation resource specification
#   sam validate --lint  template.yaml through the SAM transform, then cfn-lint on the result
#   checkov              security checks; the checks skipped, each with its reason: .checkov.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
ensure_lint_tools

templates=(template.yaml infra/*.yaml)
echo "[lint] cfn-lint $CFN_LINT_VERSION: ${templates[*]}" >&2
cfn-lint "${templates[@]}"

# SAM validates locally; a region and dummy credentials keep it from looking for either
# (no AWS call is made), and no telemetry is sent.
echo "[lint] sam validate --lint (SAM CLI $SAM_CLI_VERSION)" >&2
SAM_CLI_TELEMETRY=0 AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=lint AWS_SECRET_ACCESS_KEY=lint AWS_EC2_METADATA_DISABLED=true \
  sam validate --lint --template template.yaml --region us-east-1

echo "[lint] checkov $CHECKOV_VERSION" >&2
files=()
for t in "${templates[@]}"; do files+=(--file "$t"); done
checkov --config-file .checkov.yaml "${files[@]}"
echo "[lint] no findings" >&2
