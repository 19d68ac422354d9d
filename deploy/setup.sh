#!/usr/bin/env bash
# One-shot (compose service `setup`): installs Weir's index templates and
# imports the Kibana saved objects. Runs once Elasticsearch and Kibana are
# healthy; safe to run again (templates are replaced, objects overwritten).
#
# Weir also installs the templates itself at startup (deploy/weir.compose.toml);
# doing it here too means the indices get their mappings even if the first
# documents arrive from elsewhere.
set -euo pipefail

: "${ELASTIC_PASSWORD:?ELASTIC_PASSWORD is not set (see .env.example)}"
es=${ES_URL:-http://elasticsearch:9200}
templates=${TEMPLATES_DIR:-/setup/templates}
kibana_dir=${KIBANA_DIR:-/setup/kibana}

shopt -s nullglob
files=("$templates"/*.json)
if [ ${#files[@]} -eq 0 ]; then
  echo "setup: no templates in $templates" >&2
  exit 1
fi
for file in "${files[@]}"; do
  name=$(basename "$file" .json)
  status=$(curl -sS -o /tmp/setup.out -w '%{http_code}' -u "elastic:${ELASTIC_PASSWORD}" \
    -H 'Content-Type: application/json' -X PUT "$es/_index_template/$name" --data-binary "@$file")
  if [ "$status" != 200 ]; then
    echo "setup: index template $name ($file) refused (HTTP $status):" >&2
    cat /tmp/setup.out >&2
    exit 1
  fi
  echo "setup: index template $name installed"
done

bash "$kibana_dir/import.sh" "$kibana_dir/weir-dashboard.ndjson"
echo "setup: done; open Kibana at http://localhost:${KIBANA_PORT:-5601} (Dashboards -> Weir)"
