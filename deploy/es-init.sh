#!/usr/bin/env bash
# One-shot (compose service `es-init`): gives the built-in `kibana_system`
# user the password Kibana logs in with (KIBANA_PASSWORD). Kibana may not use
# the `elastic` superuser, and Elasticsearch only sets the superuser's
# password from the environment.
set -euo pipefail

: "${ELASTIC_PASSWORD:?ELASTIC_PASSWORD is not set (see .env.example)}"
: "${KIBANA_PASSWORD:?KIBANA_PASSWORD is not set (see .env.example)}"
es=${ES_URL:-http://elasticsearch:9200}

json_escape() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '%s' "$s"
}

body=$(printf '{"password":"%s"}' "$(json_escape "$KIBANA_PASSWORD")")
status=$(curl -sS -o /tmp/es-init.out -w '%{http_code}' -u "elastic:${ELASTIC_PASSWORD}" \
  -H 'Content-Type: application/json' -X POST \
  "$es/_security/user/kibana_system/_password" -d "$body")
if [ "$status" != 200 ]; then
  echo "es-init: setting the kibana_system password failed (HTTP $status):" >&2
  cat /tmp/es-init.out >&2
  exit 1
fi
echo "es-init: kibana_system password set"
