#!/usr/bin/env bash
# Fills and rotates the Secrets Manager secrets that Shutter's auth and list endpoints read.
# infra/secrets.yaml creates the secrets (the signing-key and public-JWKS ones empty). Every
# command writes a new version into the secret when it exists, and creates the secret only
# when it does not. create and rotate also write the key set's public half, as the JWKS
# {"keys":[...]} that auth-jwks publishes, into its own secret (NAME with signing-key
# replaced by public-jwks, or $PUBLIC_JWKS_NAME): auth-jwks gets only that one, in its
# configuration (the deploy and `restart` copy it there).
#   signing-key.sh create [NAME]   first RS256 key set {"active_kid","keys":[...]}; prints the
#                                  ARN. Refuses a secret that already holds keys (use rotate)
#   signing-key.sh rotate [NAME]   adds a new key beside the active one (JWKS publishes both);
#                                  run `activate` once API Gateway's JWKS cache has refreshed.
#                                  Keys other than the active one are dropped, so wait at
#                                  least the access-token lifetime (15 min) after an activate
#   signing-key.sh activate KID [NAME]
#                                  signs with KID from now on; the previous key stays in the
#                                  JWKS until the next rotate, so the tokens it signed verify
#   signing-key.sh publish [NAME]  writes the public JWKS of the current key set again (after
#                                  an upgrade from a release whose auth-jwks read the keys)
#   signing-key.sh cursor [NAME]   new HMAC key for pagination cursors (the cursors clients
#                                  hold stop being accepted); prints the ARN
#   signing-key.sh restart STACK [VAR]
#                                  functions read their secrets once per cold start: makes
#                                  every function of the app stack STACK whose environment
#                                  has VAR (names separated by commas; default
#                                  SIGNING_KEY_SECRET_ARN,PUBLIC_JWKS_SECRET_ARN) start fresh
#                                  instances, which read the secret's current value, and
#                                  copies the public JWKS into auth-jwks's configuration
#                                  (PUBLIC_JWKS). Run it after rotate, activate, publish and
#                                  cursor (VAR=CURSOR_KEY_SECRET_ARN)
# NAME defaults to shutter/signing-key (shutter/cursor-key for `cursor`): the names
# infra/secrets.yaml gives them with its default prefix.
# Keys are generated in memory with openssl and reach Secrets Manager through stdin; no key
# is ever on a command line or in a file.
set -euo pipefail
cmd=${1:?usage: signing-key.sh create|rotate|activate|publish|cursor|restart}
name_default=shutter/signing-key

new_key_json() {
  local kid
  kid="k-$(date -u +%Y%m%d%H%M%S)"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null |
    python3 -c 'import json,sys; print(json.dumps({"kid": sys.argv[1], "private_key_pem": sys.stdin.read()}))' "$kid"
}

# The public JWKS {"keys":[...]} of the key set $1: each key's RSA modulus and exponent,
# read by openssl from the PEM on its standard input, as base64url (RFC 7517).
public_jwks() {
  SECRET=$1 python3 -c '
import base64, json, os, re, subprocess
def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
def openssl(pem, *args):
    return subprocess.run(["openssl", "rsa", "-noout", *args], input=pem.encode(),
                          capture_output=True, check=True).stdout.decode()
keys = []
for k in json.loads(os.environ["SECRET"])["keys"]:
    pem = k["private_key_pem"]
    modulus = openssl(pem, "-modulus").strip().split("=", 1)[1]
    exponent = int(re.search(r"publicExponent: (\d+)", openssl(pem, "-text")).group(1))
    keys.append({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": k["kid"],
                 "n": b64(bytes.fromhex(modulus)),
                 "e": b64(exponent.to_bytes((exponent.bit_length() + 7) // 8, "big"))})
print(json.dumps({"keys": keys}))'
}

# write_keys NAME SECRET: the public JWKS first, then the key set, so no key ever signs
# before the JWKS publishes it.
write_keys() {
  local name=$1 secret=$2
  local jwks_name=${PUBLIC_JWKS_NAME:-${name%signing-key}public-jwks}
  write_secret "$jwks_name" "$(public_jwks "$secret")" >/dev/null
  write_secret "$name" "$secret"
}

# Status 0 if the secret exists, 1 if it does not; any other failure ends the script.
secret_exists() {
  local out
  if out=$(aws secretsmanager describe-secret --secret-id "$1" --query ARN --output text 2>&1); then
    return 0
  fi
  case "$out" in
    *ResourceNotFoundException*) return 1 ;;
    *) printf '%s\n' "$out" >&2; exit 1 ;;
  esac
}

# Prints the secret's current value, or nothing when it has none yet (infra/secrets.yaml
# creates the signing-key secret without a value).
current_value() {
  local out
  if out=$(aws secretsmanager get-secret-value --secret-id "$1" --query SecretString --output text 2>&1); then
    printf '%s' "$out"
    return 0
  fi
  case "$out" in
    *ResourceNotFoundException*) return 0 ;;
    *) printf '%s\n' "$out" >&2; exit 1 ;;
  esac
}

# write_secret NAME VALUE: VALUE becomes the secret's current version (a new secret if
# NAME does not exist yet); prints the ARN. printf is a builtin: VALUE is in no argv.
write_secret() {
  local name=$1 value=$2
  [ -n "$value" ] || { echo "refusing to write an empty value to $name" >&2; exit 1; }
  if secret_exists "$name"; then
    printf '%s' "$value" | aws secretsmanager put-secret-value --secret-id "$name" \
      --secret-string file:///dev/stdin --query ARN --output text
  else
    printf '%s' "$value" | aws secretsmanager create-secret --name "$name" \
      --secret-string file:///dev/stdin --query ARN --output text
  fi
}

# The number of keys in the key set $CURRENT (0 when it is empty).
key_count() {
  CURRENT=$1 python3 -c '
import json, os
raw = os.environ["CURRENT"]
print(len(json.loads(raw).get("keys", [])) if raw.strip() else 0)'
}

case "$cmd" in
  create)
    name=${2:-$name_default}
    current=$(current_value "$name")
    count=$(key_count "$current")
    if [ "$count" != 0 ]; then
      echo "$name already holds signing keys; use rotate and activate instead" >&2
      exit 1
    fi
    secret=$(new_key_json |
      python3 -c 'import json,sys; k=json.load(sys.stdin); print(json.dumps({"active_kid": k["kid"], "keys": [k]}))')
    write_keys "$name" "$secret" ;;
  rotate)
    name=${2:-$name_default}
    current=$(current_value "$name")
    count=$(key_count "$current")
    if [ "$count" = 0 ]; then
      echo "$name holds no signing keys yet; run create first" >&2
      exit 1
    fi
    secret=$(new_key_json |
      CURRENT=$current python3 -c '
import json, os, sys
s = json.loads(os.environ["CURRENT"])
k = json.load(sys.stdin)
s["keys"] = [x for x in s["keys"] if x["kid"] == s["active_kid"]] + [k]
print(json.dumps(s))
print("added " + k["kid"] + ": activate it once API Gateway has refreshed its JWKS cache", file=sys.stderr)')
    write_keys "$name" "$secret" >/dev/null ;;
  activate)
    kid=${2:?kid}; name=${3:-$name_default}
    current=$(current_value "$name")
    secret=$(CURRENT=$current python3 -c '
import json, os, sys
raw = os.environ["CURRENT"]
s = json.loads(raw) if raw.strip() else {}
if not any(k["kid"] == sys.argv[1] for k in s.get("keys", [])):
    sys.exit("unknown kid " + sys.argv[1])
s["active_kid"] = sys.argv[1]
print(json.dumps(s))' "$kid")
    write_secret "$name" "$secret" >/dev/null ;;
  publish)
    name=${2:-$name_default}
    current=$(current_value "$name")
    if [ "$(key_count "$current")" = 0 ]; then
      echo "$name holds no signing keys yet; run create first" >&2
      exit 1
    fi
    jwks_name=${PUBLIC_JWKS_NAME:-${name%signing-key}public-jwks}
    write_secret "$jwks_name" "$(public_jwks "$current")" ;;
  cursor)
    name=${2:-shutter/cursor-key}
    write_secret "$name" "$(openssl rand -hex 32)" ;;
  restart)
    stack=${2:?usage: signing-key.sh restart STACK [VAR]}
    var=${3:-SIGNING_KEY_SECRET_ARN,PUBLIC_JWKS_SECRET_ARN}
    # A configuration change retires a function's warm instances. The change is one
    # variable that no code reads; a later deploy that updates the function drops it.
    # auth-jwks carries the public JWKS itself (PUBLIC_JWKS, which the deploy read from
    # the secret PUBLIC_JWKS_SECRET_ARN names): it gets that secret's current value.
    functions=$(aws cloudformation list-stack-resources --stack-name "$stack" \
      --query "StackResourceSummaries[?ResourceType=='AWS::Lambda::Function'].PhysicalResourceId" --output text)
    for fn in $functions; do
      env=$(aws lambda get-function-configuration --function-name "$fn" --query Environment --output json)
      jwks=$(ENV_JSON=$env python3 -c '
import json, os
variables = (json.loads(os.environ["ENV_JSON"]) or {}).get("Variables") or {}
if "PUBLIC_JWKS" in variables:
    print(variables.get("PUBLIC_JWKS_SECRET_ARN", ""))')
      if [ -n "$jwks" ]; then
        jwks=$(current_value "$jwks")
        [ -n "$jwks" ] || { echo "the public JWKS secret of $fn is empty; run create first" >&2; exit 1; }
      fi
      updated=$(ENV_JSON=$env JWKS=$jwks python3 -c '
import datetime, json, os, sys
env = json.loads(os.environ["ENV_JSON"]) or {}
variables = env.get("Variables") or {}
if any(name in variables for name in sys.argv[1].split(",")):
    variables["SECRETS_RELOADED_AT"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if "PUBLIC_JWKS" in variables and os.environ["JWKS"]:
        variables["PUBLIC_JWKS"] = os.environ["JWKS"]
    print(json.dumps({"Variables": variables}))' "$var")
      if [ -n "$updated" ]; then
        aws lambda update-function-configuration --function-name "$fn" --environment "$updated" >/dev/null
        echo "restarted $fn"
      fi
    done ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac
