# Integration test of dirconnd's threads against a real directory fixture and the reference
# cloud: while incremental syncs write to the cloud and to the state database, SIGHUP reloads
# the configuration again and again and the admin socket is asked for status again and again.
# Asserts: every status is answered within STATUS_BOUND_MS (default 2000; the loop answers in
# milliseconds), also while another process holds the state database's write lock; dirconnd
# never dies; every SIGHUP has its "reloaded" line and every line of the log is whole; no
# sanitizer report; the cloud ends equal to the directory. Meant to run in a ThreadSanitizer
# build (scripts/build.sh build-tsan -DDIRCONN_TSAN=ON) as well as in the ASan build.
#   bash daemon_races.sh [adlds|adds]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"
kind=${1:-adlds}
bound_ms=${STATUS_BOUND_MS:-2000}
# TSan: report races in the log (checked below) and keep going.
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=0 second_deadlock_stack=1}

work=$(mktemp -d /tmp/dirconn-it-races-XXXXXX)
DPID=
HOLDER=
cleanup() {
	local rc=$?
	[[ -n $HOLDER ]] && { kill "$HOLDER" 2>/dev/null || true; wait "$HOLDER" 2>/dev/null || true; }
	if [[ -n $DPID ]]; then
		kill -TERM "$DPID" 2>/dev/null || true
		wait "$DPID" 2>/dev/null || true
	fi
	sync_cloud_stop
	"$LDSFX" stop "$work/fx" >/dev/null 2>&1 || true
	if [[ $rc -eq 0 && $T_FAIL -eq 0 && -z ${KEEP_WORK:-} ]]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
ldsfx_start_retry "$kind" "$work/fx"
# shellcheck disable=SC1091
source "$work/fx/env"
M=$LDSFX_MANIFEST
sync_cloud_start
sync_register conn-a
SG=$(json "$M" "j['cloud_users']['dn']")
emp=$(json "$M" "j['ous']['Employees']['dn']")
# conf THRESHOLD: the configuration, one key varied by each reload; debug logs the most lines.
conf() {
	sync_conf "$work/a.conf.new" conn-a "[users]
security_groups = $SG
base_dns = $emp
[schedule]
incremental_interval = 20s
notifications = yes
[policy]
delete_threshold = $1"
	sed -i 's/^level = warn$/level = debug/' "$work/a.conf.new"
	mv "$work/a.conf.new" "$work/a.conf"
}
conf 20
sock=$work/state-conn-a/dirconnd.sock
log=$work/dirconnd.log
dirconnd --config "$work/a.conf" 2>>"$log" &
DPID=$!
socket_open() { [[ -S $sock ]] || ! kill -0 "$DPID" 2>/dev/null; }
wait_until 120 socket_open
check "dirconnd opened its admin socket" test -S "$sock"
converged() {
	local what=$1 limit=${2:-120} t0=$SECONDS
	while :; do
		run_capture chk sync_check --security-group "$SG" --user-base "$emp"
		[[ $chk_rc -eq 0 ]] && break
		((SECONDS - t0 > limit)) && break
		sleep 1
	done
	[[ $chk_rc -eq 0 ]] || echo "$chk_out" | grep -v '^ok' || true
	check_eq "$what (within ${limit}s)" 0 "$chk_rc"
}
converged "the first sync brought the cloud to the directory" 300

# ask_status: one status request on the admin socket; prints "<ms> <phase>" (the time from
# connect to the whole answer), or "fail <why>".
ask_status() {
	"$PY" - "$sock" <<-'PY'
		import json, socket, sys, time
		t0 = time.monotonic()
		try:
		    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
		    s.settimeout(30)
		    s.connect(sys.argv[1])
		    s.sendall(b'{"cmd":"status"}\n')
		    buf = b""
		    while not buf.endswith(b"\n"):
		        chunk = s.recv(65536)
		        if not chunk:
		            break
		        buf += chunk
		    ms = (time.monotonic() - t0) * 1000
		    j = json.loads(buf)
		    cur = j["status"]["current"] or {}
		    print("%d %s" % (ms, cur.get("phase", "idle")))
		except Exception as e:
		    print("fail %s" % e)
	PY
}

# Many users changed at once, and a slow cloud: the incremental spends seconds writing.
mapfile -t many < <(LDAPTLS_CACERT=$LDSFX_CA_FILE ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
	-y "$LDSFX_BIND_PASSWORD_FILE" -b "$SG" -s base -LLL -o ldif-wrap=no member |
	sed -n 's/^member: \(.*Employees.*\)/\1/p' | head -120)
check "the fixture has users to change" test "${#many[@]}" -ge 50
cloud_admin PUT /v1/faults '{"latencyMs": 150, "writesOnly": true}' >/dev/null

hups=0 asked=0 asked_writing=0 max_ms=0 slow=0 failed=0
# hup: one SIGHUP with another value, then wait for its "reloaded" line (an event, and
# signals sent before the loop took the last one would be counted once).
hup() {
	hups=$((hups + 1))
	conf $((20 + hups % 2))
	kill -HUP "$DPID"
	reloaded() { (($(grep -c 'SIGHUP: configuration .* reloaded' "$log") >= hups)) || ! kill -0 "$DPID" 2>/dev/null; }
	wait_until 60 reloaded
}
# one_status: ask, and keep the numbers; returns 0 while a sync runs.
last_phase=idle
one_status() {
	local out ms
	out=$(ask_status)
	asked=$((asked + 1))
	if [[ $out == fail* ]]; then
		failed=$((failed + 1))
		echo "# status failed: $out"
		last_phase=fail
		return 1
	fi
	ms=${out%% *}
	last_phase=${out#* }
	((ms > max_ms)) && max_ms=$ms
	((ms > bound_ms)) && { slow=$((slow + 1)); echo "# status took $ms ms (phase $last_phase)"; }
	[[ $last_phase == applying ]] && asked_writing=$((asked_writing + 1))
	[[ $last_phase != idle ]]
}

for round in 1 2; do
	for dn in "${many[@]}"; do
		printf 'dn: %s\nchangetype: modify\nreplace: title\ntitle: Race Round %s\n\n' "$dn" "$round"
	done >"$work/many.ldif"
	LDAPTLS_CACERT=$LDSFX_CA_FILE ldapmodify -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
		-y "$LDSFX_BIND_PASSWORD_FILE" -f "$work/many.ldif" >/dev/null
	applying() { ask_status | grep -q ' applying$'; }
	started=no
	wait_until 120 applying && started=yes
	check_eq "round $round: an incremental sync is writing" yes "$started"
	if [[ $round == 2 ]]; then
		# A long write transaction on the state database (another connection holds its write
		# lock for 4 s): the sync's next commit waits on it, status must not.
		"$PY" - "$work/state-conn-a/state.db" "$work/holder.ready" <<-'PY' &
			import sqlite3, sys, time
			db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
			db.execute("BEGIN IMMEDIATE")
			db.execute("CREATE TABLE IF NOT EXISTS race_probe (x)")
			open(sys.argv[2], "w").close()
			time.sleep(4)
			db.execute("ROLLBACK")
			db.close()
		PY
		HOLDER=$!
		wait_until 30 test -e "$work/holder.ready"
		check "round 2: another process holds the state database's write lock" test -e "$work/holder.ready"
		locked_asked=0
		while kill -0 "$HOLDER" 2>/dev/null; do
			one_status || true
			locked_asked=$((locked_asked + 1))
		done
		wait "$HOLDER" || true
		HOLDER=
		check "round 2: status answered while the state database was locked ($locked_asked times)" \
			test "$locked_asked" -ge 3
	fi
	# SIGHUP and status, one after the other, until the sync ends.
	while kill -0 "$DPID" 2>/dev/null; do
		hup
		one_status || break
	done
	converged "round $round: the cloud equals the directory"
done
# And a few more while idle, with syncs the reloads may start.
for _ in 1 2 3 4 5; do
	hup
	one_status || true
done
cloud_admin PUT /v1/faults '{"latencyMs": 0, "writesOnly": false}' >/dev/null

echo "# $asked status requests ($asked_writing while a sync was writing), $hups SIGHUPs, the slowest status $max_ms ms"
check "dirconnd is still running" kill -0 "$DPID"
check "status was asked while syncs were writing" test "$asked_writing" -ge 3
check_eq "no status request failed" 0 "$failed"
check_eq "no status took longer than $bound_ms ms (the slowest: $max_ms ms)" 0 "$slow"
check_eq "every SIGHUP has its reloaded line" "$hups" "$(grep -c 'SIGHUP: configuration .* reloaded' "$log")"
torn=$(grep -cvE '^dirconnd: (error|warn|info|debug): ' "$log" || true)
check_eq "every log line is whole (no torn or foreign lines)" 0 "$torn"
[[ $torn == 0 ]] || grep -vE '^dirconnd: (error|warn|info|debug): ' "$log" | head -20
# A run waits for the other process's lock (round 2) and goes on: no run stops on it.
check_eq "no run stopped on the other process's lock" 0 "$(grep -c 'database is locked' "$log" || true)"
check_eq "every sync ended well" 0 "$(grep -c 'sync ended:' "$log" || true)"
converged "the final cloud equals the directory"

kill -TERM "$DPID"
rc=0
wait "$DPID" || rc=$?
DPID=
check_eq "SIGTERM: dirconnd exits 0" 0 "$rc"
torn=$(grep -cvE '^dirconnd: (error|warn|info|debug): ' "$log" || true)
check_eq "no sanitizer report, every line whole up to the exit" 0 "$torn"
finish
