#!/usr/bin/env bash
# latency.sh - how long a change written to the directory takes to be visible in the cloud,
# with dirconnd running: p50/p90/p99 over N changes, with change notifications and without
# them (the periodic incremental alone, every --interval); then how long a deletion
# (ldapdelete) and a move out of [users] base_dns (modrdn to another OU) take to leave the
# cloud, with notifications, over M users each. Last, the big-group case (bench/big_group.sh,
# always on slapd): one member added to a group of the users of a G-user directory (100,000
# by default) with dirconnd running: the time from the ldapmodify to the cloud's answer to the
# group's PATCH, the PATCH requests and operations (one and one expected), and the bytes
# dirconnd read from the directory for it, with whether the group's entry was read in full.
#
# usage: bench/latency.sh [--smoke] [--fixture adlds|adds] [--changes N] [--deletes M]
#                         [--interval DURATION] [--big-group G] [--out FILE] [--build-dir DIR]
# Prints a table and writes JSON (default: latency.json in the current directory).
# --smoke: 5 changes each way, 3 deletions and moves and a 1,000-user big group, for CI.
# --big-group 0 leaves the big-group case out. The adds fixture is one per machine: its start
# waits while another run holds it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${DIRCONN_BUILD_DIR:-$src/build}
fixture=adlds changes=100 deletes=20 interval=5s out=latency.json smoke=0 big=100000
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) smoke=1; changes=5; deletes=3; big=1000 ;;
	--big-group) big=$2; shift ;;
	--deletes) deletes=$2; shift ;;
	--fixture) fixture=$2; shift ;;
	--changes) changes=$2; shift ;;
	--interval) interval=$2; shift ;;
	--out) out=$2; shift ;;
	--build-dir) build=$2; shift ;;
	*) echo "usage: $0 [--smoke] [--fixture adlds|adds] [--changes N] [--deletes M] [--interval DURATION] [--big-group G] [--out FILE] [--build-dir DIR]" >&2; exit 2 ;;
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
emp=$(json "$LDSFX_MANIFEST" "j['ous']['Employees']['dn']")
svc=$(json "$LDSFX_MANIFEST" "j['ous']['Service Accounts']['dn']")
sync_cloud_start
sync_register bench
# The users of the security group in the Employees OU: a move to another OU leaves the scope.
scope="[users]
security_groups = $SG
base_dns = $emp"
sync_conf "$work/b.conf" bench "$scope"
dirconnctl sync --full --config "$work/b.conf" --no-progress >/dev/null 2>&1

# ready NOTIFICATIONS: dirconnd is active, its start sync done (and its notification connection up)
ready() {
	"$PY" - "$work/state-bench/dirconnd.sock" "$1" <<-'EOF'
	import json, socket, sys
	s = socket.socket(socket.AF_UNIX)
	s.connect(sys.argv[1])
	s.sendall(b'{"cmd":"status"}\n')
	st = json.loads(s.makefile().readline())["status"]
	# active (the takeover sync is requested on activation), idle again, and watching
	ok = (st["ha"]["role"] == "active" and st["state"] == "idle"
	      and (sys.argv[2] == "no" or st["notifications"]["state"] == "connected"))
	sys.exit(0 if ok else 1)
	EOF
}

run() { # run LABEL NOTIFICATIONS INTERVAL MODE COUNT
	sync_conf "$work/b.conf" bench "$scope
[schedule]
notifications = $2
incremental_interval = $3"
	dirconnd --config "$work/b.conf" 2>>"$work/dirconnd.log" &
	DPID=$!
	wait_until 180 ready "$2" 2>/dev/null || { echo "dirconnd did not get ready" >&2; exit 1; }
	"$PY" "$here/latency.py" --url "$LDSFX_URL_TLS" --ca "$LDSFX_CA_FILE" --bind-dn "$LDSFX_BIND_DN" \
		--password-file "$LDSFX_BIND_PASSWORD_FILE" --group "$SG" --cloud "$CLOUD_URL/scim/v2/acme" \
		--cloud-ca "$work/cloud-ca.pem" --token-file "$work/admin.token" --label "$1" --changes "$5" \
		--mode "$4" --move-to "$svc"
	kill -TERM "$DPID"
	wait "$DPID" 2>/dev/null || true
	DPID=
}
with=$(run notifications yes 10m modify "$changes")
without=$(run interval no "$interval" modify "$changes")
deleted=$(run delete yes 10m delete "$deletes")
moved=$(run move yes 10m move "$deletes")
# The big group: bench/big_group.sh on its own slapd fixture and cloud (its third phase); one
# sample, reported as every percentile.
bigrow=
if [ "$big" -gt 0 ]; then
	bash "$here/big_group.sh" --members "$big" --build-dir "$build" --out "$work/big.json" \
		>"$work/big.out" 2>"$work/big.err" ||
		{ echo "bench/big_group.sh failed:" >&2; tail -n 5 "$work/big.err" "$work/big.out" >&2; exit 1; }
	bigrow=$(jq -c --argjson users "$big" '.one_member_added_dirconnd as $d | {label: "big_group",
		mode: "member-add", fixture: "adlds", users: $users, members: .members_in_directory,
		changes: 1, samples: [$d.latency_s], p50: $d.latency_s, p90: $d.latency_s,
		p99: $d.latency_s, max: $d.latency_s, timeouts: 0, requests: $d.requests,
		patch_requests: $d.patch_requests, patch_ops: $d.patch_ops,
		directory_bytes_read: $d.directory_bytes_read,
		group_entry_bytes_read: $d.group_entry_bytes_read,
		member_value_bytes: $d.member_value_bytes, group_read_in_full: $d.group_read_in_full}' \
		"$work/big.json")
fi

printf '%-40s %8s %8s %8s %8s %8s %9s\n' "mode ($fixture)" changes p50 p90 p99 max timeouts
for r in "$with" "$without" "$deleted" "$moved" ${bigrow:+"$bigrow"}; do
	printf '%s\n' "$r" | jq -r '[.label, .changes, .p50, .p90, .p99, .max, .timeouts] | @tsv' |
		awk -F'\t' -v iv="$interval" '{
			if ($1 == "notifications") l = "modify, notifications (debounce 1s)"
			else if ($1 == "interval") l = "modify, incremental every " iv " only"
			else if ($1 == "delete") l = "delete, notifications"
			else if ($1 == "big_group") l = "+1 member of a big group (slapd), notif."
			else l = "move out of scope, notifications"
			printf "%-40s %8d %7.2fs %7.2fs %7.2fs %7.2fs %9d\n", l, $2, $3, $4, $5, $6, $7 }'
done
if [ -n "$bigrow" ]; then
	printf '%s\n' "$bigrow" | jq -r '"big group: \(.members) members of \(.users) users; " +
		"\(.patch_requests) PATCH with \(.patch_ops) operation(s) in \(.requests) requests; " +
		"\(.directory_bytes_read) bytes read from the directory, \(.group_entry_bytes_read) of " +
		"them the group entry (its member values: \(.member_value_bytes) bytes; read in full: " +
		"\(if .group_read_in_full then "yes" else "no" end))"'
fi
jq -n --argjson a "$with" --argjson b "$without" --argjson c "$deleted" --argjson d "$moved" \
	--argjson e "${bigrow:-null}" \
	--arg date "$(date -u +%FT%TZ)" --arg host "$(uname -srm)" \
	--arg cpus "$(nproc)" --arg fixture "$fixture" --arg interval "$interval" --argjson smoke "$smoke" \
	'{benchmark: "latency", date: $date, host: $host, cpus: ($cpus|tonumber), fixture: $fixture,
	  interval: $interval, smoke: ($smoke == 1), results: ([$a, $b, $c, $d, $e] | map(select(. != null)))}' >"$out"
echo "wrote $out"
if [ "$smoke" = 1 ]; then
	jq -e '.results | all(.timeouts == 0)' "$out" >/dev/null || { echo "changes timed out" >&2; exit 1; }
	jq -e '.results | map(select(.label == "big_group")) | length == 1 and
		all(.patch_requests == 1 and .patch_ops == 1)' "$out" >/dev/null ||
		{ echo "the big group's member was not one PATCH with one operation" >&2; exit 1; }
fi
