#!/usr/bin/env bash
# Creates or rotates the Secrets Manager secrets that Shutter's auth and list endpoints read.
#   signing-key.sh create [NAME]   new RS256 key set {"active_kid","keys":[...]}; prints the ARN
#   signing-key.sh rotate [NAME]   adds a new key beside the old ones (JWKS publishes both);
#                                  run `activate` once API Gateway's JWKS cache has refreshed
#   signing-key.sh activate KID [NAME]
#   signing-key.sh cursor [NAME]   HMAC key for pagination cursors
# Keys are generated in memory with openssl and go straight to Secrets Manager.
set -euo pipefail
cmd=${1:?usage: signing-key.sh create|rotate|activate|cursor}
name_default=shutter/signing-key
new_key_json() {
  local kid="k-$(date -u +%Y%m%d%H%M%S)"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null |
    python3 -c 'import json,sys; print(json.dumps({"kid": sys.argv[1], "private_key_pem": sys.stdin.read()}))' "$kid"
}
case "$cmd" in
  create)
    name=${2:-$name_default}
    key=$(new_key_json)
    secret=$(python3 -c 'import json,sys; k=json.loads(sys.argv[1]); print(json.dumps({"active_kid": k["kid"], "keys": [k]}))' "$key")
    aws secretsmanager create-secret --name "$name" --secret-string "$secret" --query ARN --output text ;;
  rotate)
    name=${2:-$name_default}
    current=$(aws secretsmanager get-secret-value --secret-id "$name" --query SecretString --output text)
    key=$(new_key_json)
    secret=$(python3 -c 'import json,sys; s=json.loads(sys.argv[1]); s["keys"]=s["keys"][-1:]+[json.loads(sys.argv[2])]; print(json.dumps(s))' "$current" "$key")
    aws secretsmanager put-secret-value --secret-id "$name" --secret-string "$secret" >/dev/null
    python3 -c 'import json,sys; print("added", json.loads(sys.argv[1])["kid"])' "$key" ;;
  activate)
    kid=${2:?kid}; name=${3:-$name_default}
    current=$(aws secretsmanager get-secret-value --secret-id "$name" --query SecretString --output text)
    secret=$(python3 -c 'import json,sys; s=json.loads(sys.argv[1]); assert any(k["kid"]==sys.argv[2] for k in s["keys"]), "unknown kid"; s["active_kid"]=sys.argv[2]; print(json.dumps(s))' "$current" "$kid")
    aws secretsmanager put-secret-value --secret-id "$name" --secret-string "$secret" >/dev/null ;;
  cursor)
    name=${2:-shutter/cursor-key}
    aws secretsmanager create-secret --name "$name" --secret-string "$(openssl rand -hex 32)" --query ARN --output text ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac
