# Smoke run of bench/cloud_ingest.sh (a few hundred users) so the benchmark keeps working.
set -eu
out=$(mktemp /tmp/cloud-ingest-smoke.XXXXXX.json)
trap 'rm -f "$out"' EXIT
bash "$DIRCONN_SOURCE_DIR/bench/cloud_ingest.sh" --smoke --build-dir "$DIRCONN_BUILD_DIR" --out "$out"
jq -e '[.results[] | select(.errors == 0 and .users > 0)] | length == 4' "$out" >/dev/null
