# shellcheck shell=bash
# etcd_lib.sh - a real etcd v3 cluster on loopback for integration tests (sourced;
# Debian's etcd-server and etcd-client, ha/packages.txt). Every member listens on
# 127.0.0.1 only, on free ports; nothing is left running after etcd_stop_all.
#
# etcd_start_cluster DIR [N]  start N members (default 3) with data dirs and logs
#                             under DIR (DIR/etcd-mI.data, DIR/etcd-mI.log) and
#                             wait until every member reports healthy (a raft
#                             leader elected). Sets and exports ETCD_ENDPOINTS
#                             (space-separated client URLs, member 1 first: the
#                             [ha] etcd_endpoints syntax); sets ETCD_CLIENT_URLS
#                             and ETCD_PIDS (arrays, index I-1 for member I).
#                             Returns non-zero (with the log tails on stderr)
#                             when the cluster does not come up in 20 s.
# etcd_wait_healthy [SECONDS] wait until every running member is healthy (10 s)
# etcd_kill_member I          SIGKILL member I (1-based; 1 = the first endpoint)
#                             and reap it: a crash, its data dir kept
# etcd_move_leader I          make member I the raft leader (etcdctl move-leader)
# etcd_stop_all               SIGTERM every member still running, then SIGKILL
#                             whatever did not exit within 5 s; safe to call
#                             twice, and from an EXIT trap
# etcd_endpoints_csv          the endpoints of the running members, comma-separated
# etcd_ctl ARGS...            etcdctl (API v3) against the running members
#
# Members run with etcd's default 100 ms heartbeat and 1 s election timeout
# (shorter ones make a loaded test machine hold spurious elections): the
# cluster starts in about 2 s and elects a new leader within about 2 s after
# losing one; etcd's minimum lease TTL is then 2 s (1.5 election timeouts).

ETCD_BIN=${ETCD_BIN:-etcd}
ETCDCTL_BIN=${ETCDCTL_BIN:-etcdctl}
ETCD_CLIENT_URLS=()
ETCD_PEER_URLS=()
ETCD_PIDS=()
ETCD_LOGS=()

# _etcd_ports N: N distinct free loopback ports on one line (sockets held until all are chosen).
_etcd_ports() {
	python3 - "$1" <<-'EOF'
	import socket, sys
	socks = []
	for _ in range(int(sys.argv[1])):
	    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
	    s.bind(("127.0.0.1", 0))
	    socks.append(s)
	print(" ".join(str(s.getsockname()[1]) for s in socks))
	EOF
}

# _etcd_healthy URL: the member answers /health with {"health":"true"}.
_etcd_healthy() {
	local body
	body=$(curl -s --noproxy '*' -m 1 "$1/health" 2>/dev/null) || return 1
	[[ $body == *'"health":"true"'* ]]
}

etcd_endpoints_csv() {
	local i out=
	for i in "${!ETCD_PIDS[@]}"; do
		[[ -n ${ETCD_PIDS[$i]} ]] || continue
		out+=${out:+,}${ETCD_CLIENT_URLS[$i]}
	done
	printf '%s\n' "$out"
}

# _etcd_all_healthy: every running member is healthy now.
_etcd_all_healthy() {
	local i
	for i in "${!ETCD_PIDS[@]}"; do
		[[ -n ${ETCD_PIDS[$i]} ]] || continue
		_etcd_healthy "${ETCD_CLIENT_URLS[$i]}" || return 1
	done
}

etcd_wait_healthy() {
	local secs=${1:-10} t
	for ((t = 0; t < secs * 10; t++)); do
		_etcd_all_healthy && return 0
		sleep 0.1
	done
	echo "etcd_lib: the cluster is not healthy after ${secs} s" >&2
	return 1
}

etcd_ctl() {
	ETCDCTL_API=3 "$ETCDCTL_BIN" --endpoints="$(etcd_endpoints_csv)" "$@"
}

# _etcd_start_once DIR N: one attempt on freshly chosen ports; 2 = a port was taken meanwhile.
_etcd_start_once() {
	local dir=$1 n=$2 i cluster='' token
	local -a ports
	read -r -a ports <<<"$(_etcd_ports $((2 * n)))"
	ETCD_CLIENT_URLS=()
	ETCD_PEER_URLS=()
	ETCD_PIDS=()
	ETCD_LOGS=()
	for ((i = 0; i < n; i++)); do
		ETCD_CLIENT_URLS+=("http://127.0.0.1:${ports[2 * i]}")
		ETCD_PEER_URLS+=("http://127.0.0.1:${ports[2 * i + 1]}")
		cluster+=${cluster:+,}m$((i + 1))=${ETCD_PEER_URLS[$i]}
	done
	token=dirconn-test-$$-$RANDOM
	for ((i = 0; i < n; i++)); do
		local name=m$((i + 1))
		rm -rf "$dir/etcd-$name.data"
		ETCD_LOGS+=("$dir/etcd-$name.log")
		# env -u: etcd reads ETCD_* variables as flags and warns about unknown ones.
		env -u ETCD_ENDPOINTS "$ETCD_BIN" --name "$name" --data-dir "$dir/etcd-$name.data" \
			--listen-client-urls "${ETCD_CLIENT_URLS[$i]}" \
			--advertise-client-urls "${ETCD_CLIENT_URLS[$i]}" \
			--listen-peer-urls "${ETCD_PEER_URLS[$i]}" \
			--initial-advertise-peer-urls "${ETCD_PEER_URLS[$i]}" \
			--initial-cluster "$cluster" --initial-cluster-state new \
			--initial-cluster-token "$token" \
			--heartbeat-interval 100 --election-timeout 1000 \
			--log-level warn >"${ETCD_LOGS[$i]}" 2>&1 &
		ETCD_PIDS+=("$!")
	done
	local t
	for ((t = 0; t < 200; t++)); do
		for i in "${!ETCD_PIDS[@]}"; do
			if ! kill -0 "${ETCD_PIDS[$i]}" 2>/dev/null; then
				wait "${ETCD_PIDS[$i]}" 2>/dev/null || true
				ETCD_PIDS[i]=
				etcd_stop_all
				grep -qi 'address already in use' "${ETCD_LOGS[$i]}" && return 2
				echo "etcd_lib: member m$((i + 1)) exited:" >&2
				tail -n 5 "${ETCD_LOGS[$i]}" >&2
				return 1
			fi
		done
		_etcd_all_healthy && return 0
		sleep 0.1
	done
	echo "etcd_lib: the cluster did not become healthy in 20 s" >&2
	for i in "${!ETCD_LOGS[@]}"; do
		echo "--- ${ETCD_LOGS[$i]}" >&2
		tail -n 5 "${ETCD_LOGS[$i]}" >&2
	done
	etcd_stop_all
	return 1
}

etcd_start_cluster() {
	local dir=$1 n=${2:-3} attempt rc
	command -v "$ETCD_BIN" >/dev/null || { echo "etcd_lib: $ETCD_BIN is missing (scripts/install-deps.sh)" >&2; return 1; }
	mkdir -p "$dir"
	for attempt in 1 2 3; do
		rc=0
		_etcd_start_once "$dir" "$n" || rc=$?
		if ((rc == 0)); then
			ETCD_ENDPOINTS="${ETCD_CLIENT_URLS[*]}"
			export ETCD_ENDPOINTS
			return 0
		fi
		((rc == 2)) || return 1
		echo "etcd_lib: a port was taken meanwhile; new ports (attempt $attempt)" >&2
	done
	return 1
}

etcd_kill_member() {
	local i=$(($1 - 1))
	local pid=${ETCD_PIDS[$i]:-}
	[[ -n $pid ]] || { echo "etcd_lib: member $1 is not running" >&2; return 1; }
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	ETCD_PIDS[i]=
}

etcd_move_leader() {
	local i=$(($1 - 1)) status target leader_ep
	status=$(etcd_ctl endpoint status -w json) || return 1
	# member_id and leader come as decimal numbers; move-leader wants hex.
	read -r target leader_ep < <(python3 -c '
import json, sys
st = json.loads(sys.argv[1])
target = [s for s in st if s["Endpoint"] == sys.argv[2]][0]["Status"]["header"]["member_id"]
lead = [s["Endpoint"] for s in st if s["Status"]["header"]["member_id"] == s["Status"]["leader"]]
print("%x" % target, lead[0] if lead else "-")' "$status" "${ETCD_CLIENT_URLS[$i]}") || return 1
	[[ $leader_ep == "${ETCD_CLIENT_URLS[$i]}" ]] && return 0
	ETCDCTL_API=3 "$ETCDCTL_BIN" --endpoints="$leader_ep" move-leader "$target" >/dev/null || return 1
	etcd_wait_healthy 10
}

etcd_stop_all() {
	local i pid t alive
	for pid in "${ETCD_PIDS[@]}"; do
		if [[ -n $pid ]]; then kill -TERM "$pid" 2>/dev/null || true; fi
	done
	for ((t = 0; t < 50; t++)); do
		alive=0
		for pid in "${ETCD_PIDS[@]}"; do
			[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && alive=1
		done
		((alive)) || break
		sleep 0.1
	done
	for i in "${!ETCD_PIDS[@]}"; do
		pid=${ETCD_PIDS[$i]}
		[[ -n $pid ]] || continue
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		ETCD_PIDS[i]=
	done
}
