#!/usr/bin/env bash
# web.sh - what dirconnd's status page and /metrics cost ([web], issue 18): the daemon's RSS
# after the first sync with [web] off and on, and after the requests; requests per second of
# the page (/) and of /metrics from one keep-alive client (curl, sequential), and dirconnd's CPU
# time per request (/proc/PID/stat utime+stime).
#
# usage: bench/web.sh [--users N] [--requests R] [--out FILE] [--build-dir DIR]
# Prints a table and writes JSON (default: web.json in the current directory). Use a build
# without sanitizers (scripts/build.sh build).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${DIRCONN_BUILD_DIR:-$src/build}
users=2000 requests=1000 out=web.json
while [ $# -gt 0 ]; do
	case $1 in
	--users) users=$2; shift ;;
	--requests) requests=$2; shift ;;
	--out) out=$2; shift ;;
	--build-dir) build=$2; shift ;;
	*) echo "usage: $0 [--users N] [--requests R] [--out FILE] [--build-dir DIR]" >&2; exit 2 ;;
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

work=$(mktemp -d /tmp/dirconn-bench-web-XXXXXX)
DPID=
daemon_stop() {
	[ -z "$DPID" ] && return 0
	kill -TERM "$DPID" 2>/dev/null || true
	wait "$DPID" 2>/dev/null || true
	DPID=
}
cleanup() {
	daemon_stop
	sync_cloud_stop
	"$LDSFX" stop "$work/fx" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
ldsfx_start_retry adlds "$work/fx" --users "$users" >/dev/null
# shellcheck disable=SC1091
source "$work/fx/env"
sync_cloud_start
sync_register bench
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="[schedule]
incremental_interval = 1h
notifications = no"
sync_conf "$work/off.conf" bench "$base"
sync_conf "$work/on.conf" bench "$base
[web]
listen = 127.0.0.1:$port"
sock=$work/state-bench/dirconnd.sock
rss() { awk '/^VmRSS/ {print $2}' "/proc/$DPID/status"; } # KiB
cpu() { awk '{print $14 + $15}' "/proc/$DPID/stat"; }      # clock ticks
idle() {
	[[ $(sqlite3 "$work/state-bench/state.db" "SELECT count(*) FROM history" 2>/dev/null || echo 0) -gt 0 ]] &&
		[[ $(json "$(dirconnctl status --socket "$sock" --json 2>/dev/null || echo '{}')" "j.get('state') == 'idle'" 2>/dev/null) == True ]]
}
start() { # start CONF: dirconnd after its first sync
	rm -rf "$work/state-bench"
	dirconnd --config "$1" 2>>"$work/dirconnd.log" &
	DPID=$!
	wait_until 900 idle || { echo "the first sync did not end" >&2; tail -5 "$work/dirconnd.log" >&2; exit 1; }
}
start "$work/off.conf" # fills the cloud: the measured starts below both adopt what is there
daemon_stop
start "$work/off.conf"
rss_off=$(rss)
daemon_stop
start "$work/on.conf"
rss_on=$(rss)
tck=$(getconf CLK_TCK)
# load URL: requests/s and dirconnd's CPU ms per request, R sequential requests on one connection
load() {
	local c0 t0 t1 c1
	c0=$(cpu)
	t0=$(date +%s.%N)
	curl -fsS -o /dev/null "$1?[1-$requests]"
	t1=$(date +%s.%N)
	c1=$(cpu)
	"$PY" -c "import sys; r, t0, t1, c0, c1, tck = map(float, sys.argv[1:]); print(f'{r / (t1 - t0):.0f} {(c1 - c0) / tck * 1000 / r:.3f}')" \
		"$requests" "$t0" "$t1" "$c0" "$c1" "$tck"
}
read -r page_rps page_cpu < <(load "http://127.0.0.1:$port/")
read -r metrics_rps metrics_cpu < <(load "http://127.0.0.1:$port/metrics")
rss_after=$(rss)
page_bytes=$(curl -fsS "http://127.0.0.1:$port/" | wc -c)
metrics_bytes=$(curl -fsS "http://127.0.0.1:$port/metrics" | wc -c)
printf '%-44s %12s\n' "dirconnd, adlds fixture with $users users" ""
printf '%-44s %9s KiB\n' "RSS after the first sync, [web] off" "$rss_off"
printf '%-44s %9s KiB\n' "RSS after the first sync, [web] on" "$rss_on"
printf '%-44s %9s KiB\n' "RSS after $requests page + $requests /metrics" "$rss_after"
printf '%-44s %9s req/s %8s ms CPU/req %7s bytes\n' "page (/)" "$page_rps" "$page_cpu" "$page_bytes"
printf '%-44s %9s req/s %8s ms CPU/req %7s bytes\n' "/metrics" "$metrics_rps" "$metrics_cpu" "$metrics_bytes"
cat >"$out" <<EOF
{"users": $users, "requests": $requests, "rss_kib": {"web_off": $rss_off, "web_on": $rss_on, "after_requests": $rss_after},
 "page": {"rps": $page_rps, "cpu_ms_per_request": $page_cpu, "bytes": $page_bytes},
 "metrics": {"rps": $metrics_rps, "cpu_ms_per_request": $metrics_cpu, "bytes": $metrics_bytes}}
EOF
