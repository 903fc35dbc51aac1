#!/usr/bin/env bash
# cloud_ingest.sh - ingest rate of dirconn-cloud: users created per second
# with single POST /Users and with POST /Bulk, over HTTPS on loopback.
#
# usage: bench/cloud_ingest.sh [--smoke] [--users N] [--bulk-size N]
#                              [--concurrency N] [--out FILE] [--build-dir DIR]
# Prints a table and writes JSON (default: cloud_ingest.json in the current
# directory). --smoke: a few hundred users, for CI.
set -euo pipefail
# lib.sh: cert_ca, cert_issue
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../tests/integration/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
build=${DIRCONN_BUILD_DIR:-$here/../build}
users=20000 single_users=5000 bulk_size=500 conc=4 out=cloud_ingest.json smoke=0
while [ $# -gt 0 ]; do
    case $1 in
    --smoke) smoke=1; users=1000; single_users=300 ;;
    --users) users=$2; shift ;;
    --single-users) single_users=$2; shift ;;
    --bulk-size) bulk_size=$2; shift ;;
    --concurrency) conc=$2; shift ;;
    --out) out=$2; shift ;;
    --build-dir) build=$2; shift ;;
    *) echo "usage: $0 [--smoke] [--users N] [--single-users N] [--bulk-size N] [--concurrency N] [--out FILE] [--build-dir DIR]" >&2; exit 2 ;;
    esac
    shift
done
cloud=$build/cloud/dirconn-cloud
driver=$build/cloud/cloud_ingest_driver
[ -x "$cloud" ] && [ -x "$driver" ] || { echo "build first: $cloud, $driver" >&2; exit 2; }

T=$(mktemp -d /tmp/cloud-ingest.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
cert_ca "$T/ca" "dirconn bench CA"
cert_issue "$T/ca" "$T/server" /CN=localhost serverAuth IP:127.0.0.1
openssl rand -hex 24 > "$T/token"
"$cloud" --listen 127.0.0.1:0 --db "$T/cloud.db" --admin-token-file "$T/token" --org bench \
    --tls-cert "$T/server.pem" --tls-key "$T/server.key" --ready-file "$T/ready" --log-level warn \
    --bulk-max-operations "$bulk_size" --bulk-max-payload 64m 2>"$T/cloud.log" &
pid=$!
for _ in $(seq 1 1200); do [ -s "$T/ready" ] && break; sleep 0.05; done # up to 60 s
[ -s "$T/ready" ] || { echo "dirconn-cloud did not start" >&2; cat "$T/cloud.log" >&2; exit 1; }
scim="https://127.0.0.1:$(cat "$T/ready")/scim/v2/bench"
run() { "$driver" --scim "$scim" --token-file "$T/token" --cacert "$T/ca.pem" "$@"; }

single=$(run --mode single --users "$single_users" --concurrency "$conc" --prefix single)
single1=$(run --mode single --users "$((single_users / 2))" --concurrency 1 --prefix serial)
bulk=$(run --mode bulk --users "$users" --bulk-size "$bulk_size" --concurrency 2 --prefix bulk)
bulk1=$(run --mode bulk --users "$((users / 2))" --bulk-size "$bulk_size" --concurrency 1 --prefix bulkserial)

printf '%-28s %10s %10s %12s %8s\n' "mode" "users" "seconds" "users/s" "errors"
for r in "$single1" "$single" "$bulk1" "$bulk"; do
    printf '%s\n' "$r" | jq -r '[(.mode + " (bulk " + (.bulkSize|tostring) + ", conc " + (.concurrency|tostring) + ")"), .users, .seconds, .usersPerSecond, .errors] | @tsv' |
        awk -F'\t' '{ printf "%-28s %10d %10.2f %12.1f %8d\n", $1, $2, $3, $4, $5 }'
done
jq -n --argjson a "$single1" --argjson b "$single" --argjson c "$bulk1" --argjson d "$bulk" \
    --arg date "$(date -u +%FT%TZ)" --arg host "$(uname -srm)" --arg cpus "$(nproc)" --argjson smoke "$smoke" \
    '{benchmark: "cloud_ingest", date: $date, host: $host, cpus: ($cpus|tonumber), smoke: ($smoke == 1), results: [$a, $b, $c, $d]}' > "$out"
echo "wrote $out"
