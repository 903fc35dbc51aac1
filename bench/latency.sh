#!/usr/bin/env bash
# latency.sh - how long a change written to the directory takes to be visible in the cloud,
# with dirconnd running: p50/p90/p99 over N changes, with change notifications and without
# them (the periodic incremental alone, every --interval).
#
# usage: bench/latency.sh [--smoke] [--fixture adlds|adds] [--changes N] [--interval DURATION]
#                         [--out FILE] [--build-dir DIR]
# Prints a table and writes JSON (default: latency.json in the current directory).
# --smoke: 5 changes each way, for CI. The adds fixture is one per machine: its start waits
# while another run holds it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${DIRCONN_BUILD_DIR:-$src/build}
fixture=adlds changes=100 interval=5s out=latency.json smoke=0
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) smoke=1; changes=5 ;;
	--fixture) fixture=$2; shift ;;
	--changes) changes=$2; shift ;;
	--interval) interval=$2; shift ;;
	--out) out=$2; shift ;;
	--build-dir) build=$2; shift ;;
	*) echo "usage: $0 [--smoke] [--fixture adlds|adds] [--changes N] [--interval DURATION] [--out FILE] [--build-dir DIR]" >&2; exit 2 ;;
	esac
	shift
done
export PATH=$build/admin:$build/cloud:$PATH
export DIRCONN_SOURCE_DIR=$src
command -v dirconnd >/dev/null || { echo "build first: $build/admin/dirconnd" >&2; exit 2; }
# shellcheck source=../tests/integration/lib.sh
source "$src/tests/integration/lib.sh"
# shellcheck source=../tests/integration/sync_lib.sh
source "$src/tests/integration/sync_lib.sh"

work=$(mktemp -d /tmp/dirconn-bench-latency-XXXXXX)
DPID=
cleanup() {
	[ -n "$DPID" ] && kill -TERM "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	sync_cloud_stop
	"$LDSFX" stop "$work/fx" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
ldsfx_start_retry "$fixture" "$work/fx" >/dev/null
# shellcheck disable=SC1091
source "$work/fx/env"
SG=$(json "$LDSFX_MANIFEST" "j['cloud_users']['dn']")
sync_cloud_start
sync_register bench
sync_conf "$work/b.conf" bench "[users]
security_groups = $SG"
dirconnctl sync --full --config "$work/b.conf" --no-progress >/dev/null 2>&1

run() { # run LABEL NOTIFICATIONS INTERVAL
	sync_conf "$work/b.conf" bench "[users]
security_groups = $SG
[schedule]
notifications = $2
incremental_interval = $3"
	dirconnd --config "$work/b.conf" 2>>"$work/dirconnd.log" &
	DPID=$!
	# measure from when it is ready: it answers, syncs nothing, and listens for notifications
	ready() {
		local s
		s=$(dirconnctl status --socket "$work/state-bench/dirconnd.sock" --json 2>/dev/null) || return 1
		[[ $(json "$s" "j['current'] is None and (j['notifications']['connected'] or not j['config']['notifications'])") == True ]]
	}
	wait_until 120 ready || echo "dirconnd was not ready after 120 s (measuring anyway)" >&2
	"$PY" "$here/latency.py" --url "$LDSFX_URL_TLS" --ca "$LDSFX_CA_FILE" --bind-dn "$LDSFX_BIND_DN" \
		--password-file "$LDSFX_BIND_PASSWORD_FILE" --group "$SG" --cloud "$CLOUD_URL/scim/v2/acme" \
		--cloud-ca "$work/cloud-ca.pem" --token-file "$work/admin.token" --label "$1" --changes "$changes"
	kill -TERM "$DPID"
	wait "$DPID" 2>/dev/null || true
	DPID=
}
with=$(run notifications yes 10m)
without=$(run interval no "$interval")

printf '%-34s %8s %8s %8s %8s %8s %9s\n' "mode ($fixture)" changes p50 p90 p99 max timeouts
for r in "$with" "$without"; do
	printf '%s\n' "$r" | jq -r '[.label, .changes, .p50, .p90, .p99, .max, .timeouts] | @tsv' |
		awk -F'\t' -v iv="$interval" '{ l = ($1 == "notifications") ? "notifications (debounce 1s)" : "incremental every " iv " only";
			printf "%-34s %8d %7.2fs %7.2fs %7.2fs %7.2fs %9d\n", l, $2, $3, $4, $5, $6, $7 }'
done
jq -n --argjson a "$with" --argjson b "$without" --arg date "$(date -u +%FT%TZ)" --arg host "$(uname -srm)" \
	--arg cpus "$(nproc)" --arg fixture "$fixture" --arg interval "$interval" --argjson smoke "$smoke" \
	'{benchmark: "latency", date: $date, host: $host, cpus: ($cpus|tonumber), fixture: $fixture,
	  interval: $interval, smoke: ($smoke == 1), results: [$a, $b]}' >"$out"
echo "wrote $out"
if [ "$smoke" = 1 ]; then
	jq -e '.results | all(.timeouts == 0)' "$out" >/dev/null || { echo "changes timed out" >&2; exit 1; }
fi
