# Integration test: a server lost in the middle of a run (issue 14, item 2).
#   bash sync_failures.sh [adlds|adds]
# adlds (the default): the directory (the slapd fixture), the proxy (tinyproxy) and the cloud
# (dirconn-cloud) are each killed with SIGKILL while `dirconnctl sync --full` and
# `--incremental` run, at an event (a cloud counter of users written, a debug line of the
# read), never after a fixed delay. adds: the Samba AD DC is killed the same way during a full
# and an incremental read, and started again on the same data (the machine's one AD DS slot
# stays this test's: ctest runs it with the samba_adds resource). Each
# case must give one error line naming the server and the cause with its exit code (10 LDAP,
# 30 cloud, 60 proxy), the Summary and Result lines of what was applied, no death by signal, and
# no inner text in place of the cause. The server is then started again on the same data and
# port; the rerun must exit 0, release the HA lease, and leave the cloud equal to the directory
# with no externalId twice (sync_check.py).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"
for bin in tinyproxy dirconnctl dirconn-cloud; do
	command -v "$bin" >/dev/null || { echo "not ok - $bin is missing (scripts/install-deps.sh)"; exit 1; }
done

kind=${1:-adlds}
[[ $kind == adlds || $kind == adds ]] || { echo "usage: sync_failures.sh [adlds|adds]" >&2; exit 2; }
work=$(mktemp -d /tmp/dirconn-it-failures-XXXXXX)
chmod 755 "$work"
TINY_PID=
cleanup() {
	[[ -z $TINY_PID ]] || { kill -9 "$TINY_PID" 2>/dev/null || true; wait "$TINY_PID" 2>/dev/null || true; }
	sync_cloud_stop
	"$LDSFX" stop "$work/fx" >/dev/null 2>&1 || true
	if [[ $T_FAIL -eq 0 && -z ${KEEP_WORK:-} ]]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
ldsfx_start_retry "$kind" "$work/fx"
# shellcheck disable=SC1091
source "$work/fx/env"
M=$LDSFX_MANIFEST

count_users() { json "$(cloud_admin GET '/scim/v2/acme/Users?count=1')" "j['totalResults']"; }
# lease: "<holder or None> <expired>" from the cloud's control API (the admin token, no proxy).
lease() { json "$(cloud_admin GET /v1/orgs/acme/lease)" "str(j['holderIdentity']) + ' ' + str(j['expired'])"; }

# Writes go slowly (the SCIM API only, never the lease), so that a kill lands mid-apply.
SLOW=(--no-bulk --fault-writes-only --fault-scim-only)

# ---- the servers, started again on the same data and port --------------------------------
# The server's command line (slapd, or samba -F), to start it again on the same database and
# ports after a SIGKILL of its process group (ldsfx starts it as a session leader).
# samba renames its processes ("samba: root process"): its command line is the one of ldsfx.
if [[ $kind == adds ]]; then
	DC_CMD=(samba -F -s "$LDSFX_DIR/etc/smb.conf" -l "$LDSFX_DIR/log")
else
	mapfile -d '' DC_CMD <"/proc/$LDSFX_PID/cmdline"
fi
dc_kill() {
	kill -STOP -- "-$LDSFX_PID" 2>/dev/null # frozen first: no answer slips out after the event
	kill -KILL -- "-$LDSFX_PID"
	local pid=$LDSFX_PID
	wait_until 60 bash -c "! kill -0 -- -$pid 2>/dev/null"
}
dc_restart() {
	rm -f "$LDSFX_DIR/run/ldsfx.pid"
	# shellcheck disable=SC2016 # expanded by the inner shell
	setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$LDSFX_DIR/run/ldsfx.pid" "${DC_CMD[@]}" \
		>>"$LDSFX_DIR/log/restarted.log" 2>&1 </dev/null &
	wait_until 30 test -s "$LDSFX_DIR/run/ldsfx.pid" || return 1
	LDSFX_PID=$(cat "$LDSFX_DIR/run/ldsfx.pid")
	# what `ldsfx stop` checks: the server's start time next to its pid (ldsfx/ldsfx record_pid)
	local stat
	stat=$(cat "/proc/$LDSFX_PID/stat")
	awk '{print $20}' <<<"${stat##*) }" >"$LDSFX_DIR/run/ldsfx.start"
	# the AD DS slot's registry names the running instance (ldsfx adds_busy)
	[[ $kind != adds ]] || echo "$LDSFX_PID $LDSFX_DIR" >"${LDSFX_STATE_DIR:-/var/tmp/dirconn-ldsfx}/adds.instance"
	wait_until 180 ldapsearch -x -LLL -H "$LDSFX_URL" -o nettimeout=2 -s base -b "" namingContexts >/dev/null 2>&1
}
TPORT=$(free_port)
tiny_kill() {
	kill -KILL "$TINY_PID"
	wait "$TINY_PID" 2>/dev/null || true
	TINY_PID=
}
cloud_kill() {
	kill -KILL "$CLOUD_PID"
	wait "$CLOUD_PID" 2>/dev/null || true
	CLOUD_PID=
}

# add_users N TAG: N new enabled users with a mail in the Employees OU of the fixture.
emp=$(json "$M" "j['ous']['Employees']['dn']")
add_users() {
	local i
	for ((i = 1; i <= $1; i++)); do
		printf 'dn: CN=%s %d,%s\nchangetype: add\nobjectClass: user\nuserPrincipalName: %s.%d@dirconn.test\ngivenName: %s\nsn: Tester %d\ndisplayName: %s Tester %d\nmail: %s.%d@dirconn.test\nmsDS-UserAccountDisabled: FALSE\n\n' \
			"$2" "$i" "$emp" "$2" "$i" "$2" "$i" "$2" "$i" "$2" "$i"
	done >"$work/$2.ldif"
	# AD DS: a user needs a sAMAccountName, and is enabled by userAccountControl (no password)
	if [[ $kind == adds ]]; then
		sed -i -e 's/^msDS-UserAccountDisabled: FALSE$/userAccountControl: 544/' \
			-e 's/^userPrincipalName: \([^@]*\)@.*/&\nsAMAccountName: \1/' "$work/$2.ldif"
	fi
	LDAPTLS_CACERT=$LDSFX_CA_FILE ldapmodify -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
		-y "$LDSFX_BIND_PASSWORD_FILE" -f "$work/$2.ldif" >/dev/null
}

# ---- one case ----------------------------------------------------------------------------
# start_sync NAME CONF --full|--incremental: the sync in the background; SYNC_PID.
start_sync() {
	rm -f "$work/$1.out" "$work/$1.err"
	dirconnctl sync "$3" --config "$2" --no-progress >"$work/$1.out" 2>"$work/$1.err" &
	SYNC_PID=$!
}
# end_sync NAME: wait for it; sets rc, out, err, line (the one error line).
end_sync() {
	rc=0
	wait "$SYNC_PID" || rc=$?
	out=$(cat "$work/$1.out")
	err=$(cat "$work/$1.err")
	line=$(grep '^dirconnctl sync: ' "$work/$1.err" || true)
}
# check_failure CASE WANT_RC SERVER CAUSE_REGEX: what every failed run must say.
check_failure() {
	local what=$1 want=$2 server=$3 cause=$4
	echo "# $what: exit $rc: $line"
	check "$what: no death by signal (exit $rc)" test "$rc" -lt 128
	check_eq "$what: the documented exit code" "$want" "$rc"
	check_eq "$what: one error line" 1 "$(grep -c '^dirconnctl sync: ' "$work/$what.err" || true)"
	check_contains "$what: the error names the server" "$line" "$server"
	if [[ $line =~ $cause ]]; then ok "$what: the error keeps the cause ($cause)"; else
		not_ok "$what: the cause /$cause/ is not in: $line"; fi
	if [[ $line =~ (walk|listing|tracking)\ stopped ]]; then not_ok "$what: an inner text replaced the cause"; else
		ok "$what: no inner text in place of the cause"; fi
	check_contains "$what: the Summary line" "$out" "Summary |"
	check_contains "$what: the Result line" "$out" "Result |"
	echo "$out" | grep -E '^(Summary|Result) ' | sed 's/^/#   /'
}
# result_counts: "added updated deleted failed" of the Result line.
result_counts() { sed -n 's/^Result | \([0-9]*\) added | \([0-9]*\) updated | \([0-9]*\) deleted | \([0-9]*\) failed$/\1 \2 \3 \4/p' <<<"$out"; }
# rerun CASE CONF MODE [sync_check args]: the rerun converges and gives the lease back.
rerun() {
	local what=$1 conf=$2 mode=$3
	shift 3
	run_capture r dirconnctl sync "$mode" --config "$conf" --no-progress
	check_eq "$what: the rerun exits 0" 0 "$r_rc"
	[[ $r_rc == 0 ]] || echo "$r_err" | grep -v ' warn: \| debug: \| info: ' | tail -3
	echo "$r_out" | grep -E '^(Summary|Result) ' | sed 's/^/#   rerun: /'
	run_capture chk sync_check "$@"
	echo "$chk_out" | grep -v '^ok' || true
	check_eq "$what: after the rerun nothing is lost or duplicated (sync_check)" 0 "$chk_rc"
	check_eq "$what: the rerun released the HA lease" "None False" "$(lease)"
}

sync_cloud_start "${SLOW[@]}" --fault-latency 20ms
sync_register conn-a
sync_conf "$work/a.conf" conn-a
A_ID=$(cat "$work/conn-a.id")

# ==== the cloud killed mid-apply ===========================================================
cloud_cases() {

start_sync cloud-full "$work/a.conf" --full
some_written() { (($(count_users) > ${BASE:-0} + 20)); }
BASE=0
check "cloud, full: the sync writes users" wait_until 300 some_written
cloud_kill
end_sync cloud-full
check_failure cloud-full 30 "$CLOUD_URL" 'curl [0-9]+'
read -r added _ _ failed <<<"$(result_counts)"
check "cloud, full: part of the plan was applied ($added added)" test "${added:-0}" -gt 0
check_contains "cloud, full: the error says how far the run got" "$line" "the rest is left to the next sync"
sync_cloud_start
lease_after=$(lease)
echo "# cloud, full: the lease after the failed run: $lease_after (the cloud was down when it was to be released)"
check "cloud, full: the lease is this connector's or free, nobody else's" \
	bash -c "[[ '$lease_after' == '$A_ID '* || '$lease_after' == 'None '* ]]"
rerun cloud-full "$work/a.conf" --full

BASE=$(count_users)
add_users 300 CloudIncr
sync_cloud_stop
sync_cloud_start "${SLOW[@]}" --fault-latency 100ms
start_sync cloud-incr "$work/a.conf" --incremental
check "cloud, incremental: the sync writes the new users" wait_until 300 some_written
cloud_kill
end_sync cloud-incr
check_failure cloud-incr 30 "$CLOUD_URL" 'curl [0-9]+'
check_contains "cloud, incremental: it was incremental" "$out" "Incremental |"
read -r added _ _ failed <<<"$(result_counts)"
check "cloud, incremental: part of the changes were applied ($added added)" test "${added:-0}" -gt 0 -a "${added:-0}" -lt 300
sync_cloud_start
echo "# cloud, incremental: the lease after the failed run: $(lease)"
rerun cloud-incr "$work/a.conf" --incremental
}

# ==== the directory killed mid-read ========================================================
dc_cases() {
sed -e 's/^page_size = .*/page_size = 10/' -e 's/^level = .*/level = debug/' "$work/a.conf" >"$work/a-debug.conf"
start_sync dc-full "$work/a-debug.conf" --full
check "DC, full: the directory read is under way" wait_until 300 grep -q 'debug: reading: ' "$work/dc-full.err"
dc_kill
end_sync dc-full
check_failure dc-full 10 "$LDSFX_URL_TLS" '\(LDAP -?[0-9]+\)'
check_contains "DC, full: the Summary says where it stopped" "$out" "Summary | not computed: the run stopped while reading"
check_contains "DC, full: nothing was applied" "$out" "Result | 0 added | 0 updated | 0 deleted | 0 failed"
check_eq "DC, full: the lease was released" "None False" "$(lease)"
check "DC, full: the DC starts again on the same data and ports" dc_restart
rerun dc-full "$work/a.conf" --full

# many changes, so that the read of the changed objects lasts well beyond the event
add_users 600 DcIncr
start_sync dc-incr "$work/a-debug.conf" --incremental
check "DC, incremental: the changed objects are being read" \
	wait_until 300 grep -q 'debug: reading: .* changed objects read again' "$work/dc-incr.err"
dc_kill
end_sync dc-incr
check_failure dc-incr 10 "$LDSFX_URL_TLS" '\(LDAP -?[0-9]+\)'
check_contains "DC, incremental: nothing was applied" "$out" "Result | 0 added | 0 updated | 0 deleted | 0 failed"
check_eq "DC, incremental: the lease was released" "None False" "$(lease)"
check "DC, incremental: the DC starts again on the same data and ports" dc_restart
rerun dc-incr "$work/a.conf" --incremental
}

# ==== the proxy killed mid-apply ===========================================================
proxy_cases() {
# The connector reaches the cloud only through tinyproxy ([proxy] mode = explicit, no
# no_proxy, no DIRECT route); a fresh cloud and connector, so that the full sync has work.
sync_cloud_stop
rm -f "$work"/cloud.db*
sync_cloud_start "${SLOW[@]}" --fault-latency 20ms
tiny_start
sync_register conn-p
sync_conf "$work/p.conf" conn-p "[proxy]
mode = explicit
url = http://127.0.0.1:$TPORT"
P_ID=$(cat "$work/conn-p.id")
BASE=0
start_sync proxy-full "$work/p.conf" --full
check "proxy, full: the sync writes users" wait_until 300 some_written
check "proxy, full: its requests go through tinyproxy" grep -q "CONNECT.*127.0.0.1:$CLOUD_PORT" "$work/tiny/tinyproxy.log"
tiny_kill
end_sync proxy-full
check_failure proxy-full 60 "proxy http://127.0.0.1:$TPORT" 'curl [0-9]+'
read -r added _ _ failed <<<"$(result_counts)"
check "proxy, full: part of the plan was applied ($added added)" test "${added:-0}" -gt 0
lease_after=$(lease)
echo "# proxy, full: the lease after the failed run: $lease_after (unreachable through the dead proxy)"
check "proxy, full: the lease is this connector's or free, nobody else's" \
	bash -c "[[ '$lease_after' == '$P_ID '* || '$lease_after' == 'None '* ]]"
tiny_start
rerun proxy-full "$work/p.conf" --full

BASE=$(count_users)
add_users 300 ProxyIncr
sync_cloud_stop
sync_cloud_start "${SLOW[@]}" --fault-latency 100ms
start_sync proxy-incr "$work/p.conf" --incremental
check "proxy, incremental: the sync writes the new users" wait_until 300 some_written
tiny_kill
end_sync proxy-incr
check_failure proxy-incr 60 "proxy http://127.0.0.1:$TPORT" 'curl [0-9]+'
check_contains "proxy, incremental: it was incremental" "$out" "Incremental |"
echo "# proxy, incremental: the lease after the failed run: $(lease)"
sync_cloud_stop
sync_cloud_start
tiny_start
rerun proxy-incr "$work/p.conf" --incremental
}

if [[ $kind == adds ]]; then
	dc_cases
else
	cloud_cases
	dc_cases
	proxy_cases
fi
finish
