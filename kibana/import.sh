#!/usr/bin/env bash
# Imports Weir's saved objects (data views, visualizations, saved search,
# dashboard) into Kibana, overwriting objects with the same ids.
#
#   KIBANA_URL=http://localhost:5601 ELASTIC_PASSWORD=... kibana/import.sh [FILE]
#
# Environment:
#   KIBANA_URL        Kibana base URL (default http://localhost:5601)
#   KIBANA_SPACE      space id to import into (default: the default space)
#   KIBANA_API_KEY    encoded API key; used instead of basic auth when set
#   ELASTIC_USERNAME  basic-auth user (default elastic)
#   ELASTIC_PASSWORD  basic-auth password; no auth at all when unset and
#                     KIBANA_API_KEY is unset (security disabled)
# Exits non-zero, printing Kibana's answer, unless every object imported.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
file=${1:-$here/weir-dashboard.ndjson}
url=${KIBANA_URL:-http://localhost:5601}
url=${url%/}
space_path=""
if [ -n "${KIBANA_SPACE:-}" ]; then
  space_path="/s/${KIBANA_SPACE}"
fi

if [ ! -f "$file" ]; then
  echo "import.sh: $file does not exist" >&2
  exit 1
fi
if ! command -v curl > /dev/null; then
  echo "import.sh: curl is required" >&2
  exit 1
fi

auth=()
if [ -n "${KIBANA_API_KEY:-}" ]; then
  auth=(-H "Authorization: ApiKey ${KIBANA_API_KEY}")
elif [ -n "${ELASTIC_PASSWORD:-}" ]; then
  auth=(-u "${ELASTIC_USERNAME:-elastic}:${ELASTIC_PASSWORD}")
fi

response=$(mktemp)
trap 'rm -f "$response"' EXIT
endpoint="$url$space_path/api/saved_objects/_import?overwrite=true"
if ! status=$(curl -sS -o "$response" -w '%{http_code}' -X POST "$endpoint" \
  -H 'kbn-xsrf: true' "${auth[@]}" --form "file=@$file"); then
  echo "import.sh: cannot reach Kibana at $url" >&2
  exit 1
fi
if [ "$status" != 200 ]; then
  echo "import.sh: Kibana refused the import (HTTP $status) from $endpoint:" >&2
  cat "$response" >&2
  echo >&2
  exit 1
fi
# A 200 can still report per-object errors: {"success":false,"errors":[...]}.
if ! grep -q '"success":true' "$response"; then
  echo "import.sh: some objects were not imported:" >&2
  cat "$response" >&2
  echo >&2
  exit 1
fi
count=$(grep -o '"successCount":[0-9]*' "$response" | cut -d: -f2)
echo "import.sh: imported ${count:-?} saved objects from $(basename "$file") into $url$space_path"
