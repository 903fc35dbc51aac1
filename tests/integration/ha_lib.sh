# ha_lib.sh - helpers for the high-availability tests and the failover benchmark (sourced
# after lib.sh and sync_lib.sh). Uses $work (a temp dir the caller owns), the directory
# fixture's env (LDSFX_*) and the reference cloud (CLOUD_URL, sync_cloud_start).
#
# Instances are numbered 1..K; instance I is the connector conn-I, registered once, with its
# own config $work/conn-I.conf, state dir $work/state-conn-I, admin socket in it and log
# $work/dirconnd-I.log (appended to across restarts).
#
# ha_setup K INI            register conn-1..conn-K (those not yet registered) and write their
#                           configs: the whole partition in scope, incremental every 5 s,
#                           notifications, log level info, then INI (the [ha] section etc.)
# ha_start I [faketime OFFSET]  start dirconnd for instance I (under libfaketime with the
#                           given FAKETIME offset, e.g. +5h); HA_PID[I]; waits for its socket
#                           (up to 60 s; returns 1 if it does not open it)
# ha_start_all K            ha_start 1..K
# ha_stop I                 SIGCONT then SIGTERM instance I and wait for it (no-op if down);
#                           after 10 s SIGKILL it (noted in its log); its helper processes
#                           must end by themselves within 2 s (else recorded and killed)
# ha_stop_all               ha_stop every instance started
# ha_signal I SIG           send SIG (KILL, STOP, CONT, TERM) to instance I; HA_T_SIGNAL is the
#                           time of the signal (date +%s.%N); KILL reaps it, and its helper
#                           processes must end by themselves within 2 s (else recorded, killed)
# ha_wait_exit I            after ha_signal I TERM: wait for it; returns its exit status
# ha_role I                 prints active|standby|<other ha state>|down (no socket, refused,
#                           exited) or unknown (no answer within 1 s: e.g. SIGSTOPped)
# ha_status I               prints dirconnctl status --json of instance I (empty if no answer)
# ha_roles                  prints "I:role" for every started instance, space separated
# ha_active                 prints the index of the only instance whose role is active, or
#                           nothing (none, or more than one)
# ha_wait_one_active SECONDS [EXCLUDE]  waits until exactly one instance (not EXCLUDE) reports
#                           active (polling every 100 ms); sets HA_ACTIVE; returns 1 on timeout
# ha_failover_time VICTIM LIMIT  after ha_signal VICTIM: polls the other instances every 100 ms
#                           until one reports active; sets HA_FAILOVER to the seconds from
#                           HA_T_SIGNAL (3 decimals) and HA_ACTIVE; HA_FAILOVER=timeout and
#                           returns 1 after LIMIT s
# ha_wait_role I ROLE SECONDS   waits until instance I reports ROLE
# ha_monitor_start          samples every instance's role every 200 ms in the background into
#                           $work/ha-monitor.log; a sweep with two or more "active" is re-read
#                           (in the reverse order); when that confirms it, the sweep is written
#                           to $work/ha-violations.log. Unknown (stopped) instances never count.
# ha_monitor_stop           stops the sampler
# ha_monitor_check WHAT     a check that no violation was recorded since ha_monitor_start
# ha_cloud_lease            prints GET /v1/orgs/acme/lease; ha_cloud_holder its holder (index
#                           I of conn-I, "none", or the raw id); ha_cloud_stats GET .../stats
# ha_fenced                 prints the cloud's fencedRejections
# ha_cloud_writes_by I FROM_LINE  prints the cloud log lines, from line FROM_LINE on, of
#                           successful (2xx) SCIM or state writes (POST/PUT/PATCH/DELETE) by conn-I
# ha_cloud_lease_calls I METHOD FROM_LINE  how many METHOD requests of the lease (GET: observe;
#                           PUT: acquire or renew) conn-I made that the cloud answered 200, from
#                           line FROM_LINE of the cloud's log on
# ha_wait_lease_calls I METHOD FROM_LINE N SECONDS  waits until that count reaches N
# ha_stale_write I TOKEN USER_ID  PATCHes the cloud user's title to "Stale Write" as conn-I with
#                           Dirconn-Fencing-Token TOKEN (what an old active's late write looks
#                           like); prints the HTTP status
# ha_stuck_children [S]     prints libproxy children of running instances older than S s
#                           (default 5) and helpers that outlived their dirconnd
# ha_id I                   prints conn-I's connector id
# ha_index ID               prints I for conn-I's id

# shellcheck disable=SC2034,SC2154 # globals are the interface; $work is the caller's
HA_FAKETIME_LIB=${HA_FAKETIME_LIB:-/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1}
HA_N=0 # the highest instance index started or set up
declare -a HA_PID=()
declare -a HA_KIDS=() # the helper processes of instance I when it was last signalled
HA_ACTIVE=
HA_T_SIGNAL=
HA_FAILOVER=
HA_MON_PID=

ha_now() { date +%s.%N; }
ha_elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

ha_id() { cat "$work/conn-$1.id"; }
ha_index() {
	local i
	for ((i = 1; i <= HA_N; i++)); do
		[[ $(ha_id "$i") == "$1" ]] && { echo "$i"; return 0; }
	done
	echo "$1"
}
ha_sock() { echo "$work/state-conn-$1/dirconnd.sock"; }

ha_setup() {
	local k=$1 ini=$2 i
	for ((i = 1; i <= k; i++)); do
		[[ -s $work/conn-$i.id ]] || sync_register "conn-$i"
		sync_conf "$work/conn-$i.conf" "conn-$i" "[schedule]
incremental_interval = 5s
notifications = yes
$ini"
		# the transitions are logged at level info
		sed -i 's/^level = warn$/level = info/' "$work/conn-$i.conf"
		mkdir -p "$work/state-conn-$i"
	done
	((k > HA_N)) && HA_N=$k
	return 0
}

ha_start() {
	local i=$1 how=${2-} off=${3-}
	((i > HA_N)) && HA_N=$i
	rm -f "$(ha_sock "$i")"
	echo "# $(date -u +%T.%N | cut -c1-12) starting conn-$i${how:+ under $how $off}" >>"$work/dirconnd-$i.log"
	if [[ $how == faketime ]]; then
		[[ -r $HA_FAKETIME_LIB ]] || { echo "libfaketime not found ($HA_FAKETIME_LIB): install faketime"; return 1; }
		# an AddressSanitizer build needs its runtime first among the preloaded libraries
		local asan preload=$HA_FAKETIME_LIB
		asan=$(ldd "$(command -v dirconnd)" 2>/dev/null | awk '/libasan/ { print $3; exit }')
		[[ -n $asan ]] && preload="$asan $HA_FAKETIME_LIB"
		# FAKETIME_SHARED is set (to objects that do not exist, which libfaketime replaces with
		# its own): libfaketime's first call, from inside ASan's allocator, setenv()s it, and
		# adding a variable reallocates the environment, which for some sizes of it needs the
		# allocator's size class whose lock is held: the process hung before main. Replacing a
		# variable that is there allocates only a small string.
		LD_PRELOAD=$preload FAKETIME="$off" FAKETIME_DONT_RESET=1 \
			FAKETIME_SHARED="/dirconn-test-none-sem /dirconn-test-none-shm" \
			dirconnd --config "$work/conn-$i.conf" 2>>"$work/dirconnd-$i.log" &
	else
		dirconnd --config "$work/conn-$i.conf" 2>>"$work/dirconnd-$i.log" &
	fi
	HA_PID[i]=$!
	local deadline=$((SECONDS + 60)) # generous: an ASan build on a loaded machine starts slowly
	while ((SECONDS < deadline)); do
		[[ -S $(ha_sock "$i") ]] && return 0
		kill -0 "${HA_PID[i]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "dirconnd conn-$i did not open its socket (within 60 s, or it exited); its log:"
	tail -5 "$work/dirconnd-$i.log"
	return 1
}

ha_start_all() {
	local i
	for ((i = 1; i <= $1; i++)); do ha_start "$i" || return 1; done
}

# ha__descendants PID: the children and grandchildren of PID (dirconnd's libproxy launcher,
# forked at start, and the libproxy children the launcher forks)
ha__descendants() {
	local c
	for c in $(pgrep -P "$1" || true); do
		echo "$c"
		pgrep -P "$c" || true
	done
	return 0
}

# ha__running PID: the process exists and has not exited. A helper whose dirconnd was killed
# is reparented to PID 1; until PID 1 reaps it, an exited helper is a zombie (state Z, empty
# cmdline) that kill -0 still finds: it has ended all the same.
ha__running() {
	local st
	st=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $st && $st != Z && $st != X ]]
}

# ha__reap_helpers I PID...: after instance I's dirconnd ended, the helpers it had must end by
# themselves within 2 s (the launcher reads EOF); any still running is recorded in
# $work/ha-stuck.log (a failure of ha_stuck_children) and killed
ha__reap_helpers() {
	local i=$1 c left
	shift
	[[ $# -gt 0 ]] || return 0
	for _ in $(seq 1 20); do
		left=
		for c in "$@"; do ha__running "$c" && left+=" $c"; done
		[[ -z $left ]] && return 0
		sleep 0.1
	done
	for c in $left; do
		echo "conn-$i's dirconnd ended but its helper $c ($(tr '\0' ' ' </proc/"$c"/cmdline 2>/dev/null)) still ran 2 s later" >>"$work/ha-stuck.log"
		kill -KILL "$c" 2>/dev/null || true
	done
	return 0
}

ha_stop() {
	local i=$1 pid=${HA_PID[$1]:-} kids
	[[ -n $pid ]] || return 0
	kids=$(ha__descendants "$pid")
	kill -CONT "$pid" 2>/dev/null || true
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "# $(date -u +%T.%N | cut -c1-12) test: conn-$i did not exit within 10 s of SIGTERM: SIGKILL" >>"$work/dirconnd-$i.log"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	HA_PID[i]=
	# shellcheck disable=SC2086
	ha__reap_helpers "$i" $kids
}

ha_stop_all() {
	local i
	for ((i = 1; i <= HA_N; i++)); do ha_stop "$i"; done
}

ha_signal() {
	local i=$1 sig=$2 pid=${HA_PID[$1]:-}
	[[ -n $pid ]] || { echo "conn-$i is not running"; return 1; }
	echo "# $(date -u +%T.%N | cut -c1-12) test: SIG$sig" >>"$work/dirconnd-$i.log"
	local kids=
	[[ $sig == KILL || $sig == TERM ]] && kids=$(ha__descendants "$pid")
	HA_KIDS[i]=$kids
	HA_T_SIGNAL=$(ha_now)
	kill -"$sig" "$pid"
	case $sig in
	KILL)
		wait "$pid" 2>/dev/null || true
		HA_PID[i]=
		# shellcheck disable=SC2086
		ha__reap_helpers "$i" $kids
		;;
	esac
	return 0
}

# ha_wait_exit I: after ha_signal I TERM: wait for it, return its exit status; its helper
# processes must end within 2 s (ha__reap_helpers)
ha_wait_exit() {
	local i=$1 rc=0
	[[ -n ${HA_PID[i]:-} ]] || return 0
	wait "${HA_PID[i]}" 2>/dev/null || rc=$?
	HA_PID[i]=
	# shellcheck disable=SC2086
	ha__reap_helpers "$i" ${HA_KIDS[i]:-}
	return "$rc"
}

ha_status() {
	[[ -S $(ha_sock "$1") ]] || return 0
	timeout -k 1 1 dirconnctl status --socket "$(ha_sock "$1")" --json 2>/dev/null || true
}

ha_role() {
	local i=$1 out rc=0
	if [[ -z ${HA_PID[i]:-} ]] || ! kill -0 "${HA_PID[i]}" 2>/dev/null || [[ ! -S $(ha_sock "$i") ]]; then
		echo down
		return 0
	fi
	out=$(timeout -k 1 1 dirconnctl status --socket "$(ha_sock "$i")" --json 2>/dev/null) || rc=$?
	if ((rc == 124 || rc == 137)); then
		echo unknown
	elif ((rc != 0)); then
		echo down
	elif [[ $out =~ \"role\":\ *\"([a-z]+)\" ]]; then
		echo "${BASH_REMATCH[1]}"
	else
		echo "no-ha" # a status without an "ha" object
	fi
}

ha_roles() {
	local i s=
	for ((i = 1; i <= HA_N; i++)); do s+="$i:$(ha_role "$i") "; done
	echo "${s% }"
}

# ha_actives "1:active 2:standby ..." [EXCLUDE]: prints the indices reporting active, one a line
ha_actives() {
	local r
	for r in $1; do
		[[ ${r%%:*} == "${2-}" ]] && continue
		[[ ${r#*:} == active ]] && echo "${r%%:*}"
	done
	return 0
}
ha_count_active() { ha_actives "$@" | wc -l; }
ha_over() { awk -v e="$(ha_elapsed "$1" "$(ha_now)")" -v l="$2" 'BEGIN { exit !(e > l) }'; }

ha_active() {
	local a
	a=$(ha_actives "$(ha_roles)")
	[[ -n $a && $a != *$'\n'* ]] && echo "$a"
	return 0
}

ha_wait_one_active() {
	local limit=$1 ex=${2-} t0 roles a
	t0=$(ha_now)
	while :; do
		roles=$(ha_roles)
		a=$(ha_actives "$roles" "$ex")
		if [[ -n $a && $a != *$'\n'* ]]; then
			HA_ACTIVE=$a
			return 0
		fi
		if ha_over "$t0" "$limit"; then
			echo "# no single active instance after ${limit}s: $roles"
			HA_ACTIVE=
			return 1
		fi
		sleep 0.1
	done
}

ha_failover_time() {
	local victim=$1 limit=$2 i now role
	while :; do
		for ((i = 1; i <= HA_N; i++)); do
			[[ $i == "$victim" ]] && continue
			role=$(ha_role "$i")
			if [[ $role == active ]]; then
				now=$(ha_now)
				HA_ACTIVE=$i
				HA_FAILOVER=$(ha_elapsed "$HA_T_SIGNAL" "$now")
				return 0
			fi
		done
		if ha_over "$HA_T_SIGNAL" "$limit"; then
			HA_ACTIVE=
			HA_FAILOVER=timeout
			return 1
		fi
		sleep 0.1
	done
}

ha_wait_role() {
	local i=$1 want=$2 limit=$3 t0=$SECONDS role
	while :; do
		role=$(ha_role "$i")
		[[ $role == "$want" ]] && return 0
		if ((SECONDS - t0 >= limit)); then
			echo "# conn-$i is $role, not $want, after ${limit}s"
			return 1
		fi
		sleep 0.1
	done
}

# The sampler runs in a subshell: it sees HA_PID as it was when started, so it finds the
# instances by their sockets instead and asks each with a 1 s timeout.
ha__sample() {
	local order=$1 i out rc s=
	for i in $order; do
		if [[ ! -S $(ha_sock "$i") ]]; then
			s+="$i:down "
			continue
		fi
		rc=0
		out=$(timeout -k 1 1 dirconnctl status --socket "$(ha_sock "$i")" --json 2>/dev/null) || rc=$?
		if ((rc == 124 || rc == 137)); then
			s+="$i:unknown "
		elif ((rc != 0)); then
			s+="$i:down "
		elif [[ $out =~ \"role\":\ *\"([a-z]+)\" ]]; then
			s+="$i:${BASH_REMATCH[1]} "
		else
			s+="$i:no-ha "
		fi
	done
	echo "${s% }"
}

ha_monitor_start() {
	: >"$work/ha-violations.log"
	local n=$HA_N
	(
		trap 'exit 0' TERM
		fwd=$(seq 1 "$n" | tr '\n' ' ')
		rev=$(seq "$n" -1 1 | tr '\n' ' ')
		while :; do
			s=$(ha__sample "$fwd")
			echo "$(date -u +%T.%N | cut -c1-12) $s" >>"$work/ha-monitor.log"
			if (($(ha_count_active "$s") >= 2)); then
				s2=$(ha__sample "$rev")
				if (($(ha_count_active "$s2") >= 2)); then
					echo "$(date -u +%T.%N | cut -c1-12) two or more active: $s / re-read: $s2" >>"$work/ha-violations.log"
				fi
			fi
			sleep 0.2
		done
	) &
	HA_MON_PID=$!
}

ha_monitor_stop() {
	if [[ -n $HA_MON_PID ]]; then
		kill -TERM "$HA_MON_PID" 2>/dev/null || true
		wait "$HA_MON_PID" 2>/dev/null || true
		HA_MON_PID=
	fi
}

ha_monitor_check() {
	local what=$1 v
	v=$(wc -l <"$work/ha-violations.log")
	if ((v == 0)); then
		ok "$what: never two instances active at once ($(wc -l <"$work/ha-monitor.log") sweeps so far)"
	else
		not_ok "$what: $v sweeps saw two instances active at once:"
		sed 's/^/#   /' "$work/ha-violations.log" | head -5
	fi
}

ha_cloud_lease() { cloud_admin GET /v1/orgs/acme/lease; }
ha_cloud_stats() { cloud_admin GET /v1/orgs/acme/stats; }
ha_cloud_holder() {
	local h
	h=$(json "$(ha_cloud_lease)" "j['holderIdentity'] or 'none'")
	[[ $h == none ]] && { echo none; return 0; }
	ha_index "$h"
}
ha_fenced() { json "$(ha_cloud_stats)" "j['fencedRejections']"; }

ha_cloud_writes_by() {
	local id
	id=$(ha_id "$1")
	tail -n +"$2" "$work/cloud.log" |
		grep -E "info: (POST|PUT|PATCH|DELETE) (/scim/|/v1/orgs/[^/ ]+/state)[^ ]* 2[0-9][0-9] .*connector=$id" || true
}

# ha_cloud_log_lines: the current length of the cloud's log (a starting point for ha_cloud_writes_by)
ha_cloud_log_lines() { echo $(($(wc -l <"$work/cloud.log") + 1)); }

ha_cloud_lease_calls() {
	local id
	id=$(ha_id "$1")
	tail -n +"$3" "$work/cloud.log" | grep -cE "info: $2 /v1/orgs/[^/ ]+/lease 200 .*connector=$id( |\$)" || true
}

ha_wait_lease_calls() {
	local i=$1 method=$2 from=$3 want=$4 limit=$5 t0=$SECONDS n
	while :; do
		n=$(ha_cloud_lease_calls "$i" "$method" "$from")
		((n >= want)) && return 0
		if ((SECONDS - t0 >= limit)); then
			echo "# conn-$i made $n $method requests of the lease, not $want, in ${limit}s"
			return 1
		fi
		sleep 0.2
	done
}

# ---- directory changes and the cloud's view of them
# ha_user_dns N: the DNs of N enabled users with mail in the Employees OU (sorted by byte, the
# same N in any locale)
ha_user_dns() {
	local emp
	emp=$(json "$LDSFX_MANIFEST" "j['ous']['Employees']['dn']")
	LDAPTLS_CACERT=$LDSFX_CA_FILE ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
		-y "$LDSFX_BIND_PASSWORD_FILE" -b "$emp" -LLL -o ldif-wrap=no \
		'(&(objectClass=user)(mail=*)(msDS-UserAccountDisabled=FALSE))' 1.1 |
		sed -n 's/^dn: //p' | LC_ALL=C sort | head -n "$1"
}

# ha_set_attr DN ATTR VALUE: replace one attribute of one directory entry
ha_set_attr() {
	ldap_modify "dn: $1
changetype: modify
replace: $2
$2: $3"
}

# ha_set_attr_many ATTR VALUE DN...: the same value on many entries, in one ldapmodify
ha_set_attr_many() {
	local attr=$1 val=$2 dn
	shift 2
	for dn in "$@"; do printf 'dn: %s\nchangetype: modify\nreplace: %s\n%s: %s\n\n' "$dn" "$attr" "$attr" "$val"; done |
		LDAPTLS_CACERT=$LDSFX_CA_FILE ldapmodify -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
			-y "$LDSFX_BIND_PASSWORD_FILE" >/dev/null
}

# ha_cloud_count FILTER: how many cloud users match a SCIM filter (admin token)
ha_cloud_count() {
	local out
	out=$(curl -sS -G --cacert "$work/cloud-ca.pem" -H "Authorization: Bearer $(cat "$work/admin.token")" \
		--data-urlencode "filter=$1" --data-urlencode count=0 "$CLOUD_URL/scim/v2/acme/Users") || { echo 0; return 0; }
	json "$out" "j.get('totalResults', 0)"
}

# ha_wait_cloud_count FILTER N SECONDS: waits until exactly N cloud users match FILTER
ha_wait_cloud_count() {
	local filter=$1 want=$2 limit=$3 t0=$SECONDS got
	while :; do
		got=$(ha_cloud_count "$filter")
		[[ $got == "$want" ]] && return 0
		if ((SECONDS - t0 >= limit)); then
			echo "# $got cloud users match '$filter', not $want, after ${limit}s"
			return 1
		fi
		sleep 0.5
	done
}

# ha_log_since I MARKER: instance I's log from the last line containing MARKER on
ha_log_since() {
	local f="$work/dirconnd-$1.log" n
	n=$(grep -n -F -- "$2" "$f" | tail -1 | cut -d: -f1)
	tail -n +"${n:-1}" "$f"
}

ha_stale_write() {
	local i=$1 token=$2 uid=$3 at
	at=$(curl -sS --cacert "$work/cloud-ca.pem" -u "$(ha_id "$i"):$(cat "$work/conn-$i.secret")" \
		-d grant_type=client_credentials "$CLOUD_URL/oauth/token")
	at=$(json "$at" "j['access_token']")
	curl -sS -o /dev/null -w '%{http_code}' --cacert "$work/cloud-ca.pem" -X PATCH \
		-H "Authorization: Bearer $at" -H 'Content-Type: application/scim+json' \
		-H "Dirconn-Fencing-Token: $token" \
		--data-binary '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"title","value":"Stale Write"}]}' \
		"$CLOUD_URL/scim/v2/acme/Users/$uid"
}

# ha_cloud_user_id FILTER: the id of the first cloud user matching FILTER
ha_cloud_user_id() {
	local out
	out=$(curl -sS -G --cacert "$work/cloud-ca.pem" -H "Authorization: Bearer $(cat "$work/admin.token")" \
		--data-urlencode "filter=$1" "$CLOUD_URL/scim/v2/acme/Users")
	json "$out" "j['Resources'][0]['id']"
}

# ha_stuck_children [SECONDS]: prints the libproxy children (grandchildren of a running
# dirconnd, under its launcher) older than SECONDS (default 5), which answer in milliseconds
# when healthy, and what ha__reap_helpers recorded (helpers that outlived their dirconnd)
ha_stuck_children() {
	local limit=${1:-5} i l c age
	for ((i = 1; i <= HA_N; i++)); do
		[[ -n ${HA_PID[i]:-} ]] || continue
		for l in $(pgrep -P "${HA_PID[i]}" || true); do
			for c in $(pgrep -P "$l" || true); do
				age=$(ps -o etimes= -p "$c" 2>/dev/null | tr -d ' ')
				[[ -n $age ]] && ((age > limit)) && echo "conn-$i (pid ${HA_PID[i]}) has had libproxy child $c for $age s"
			done
		done
	done
	[[ -s $work/ha-stuck.log ]] && cat "$work/ha-stuck.log"
	return 0
}

# ha_failover_interval_scenario "LEASE-SETTINGS": 3 instances with [ha] LEASE-SETTINGS,
# lease_duration $LEASE, failover_interval $FI: a kill -9 of the active is taken over no
# earlier than the lease's end plus the interval, and within lease + interval + 2 s; never two
# actives; no stuck libproxy helper.
ha_failover_interval_scenario() {
	ha_stop_all
	ha_setup 3 "[ha]
$1
lease_duration = ${LEASE}s
failover_interval = ${FI}s
jitter = 200ms"
	ha_start_all 3
	ha_monitor_start
	check "failover_interval ${FI}s: one active" ha_wait_one_active 30
	local a=$HA_ACTIVE i low
	# the others are settled standbys that have seen the holder (not a fixed delay)
	for ((i = 1; i <= 3; i++)); do
		[[ $i == "$a" ]] || check "failover_interval ${FI}s: conn-$i is standby" ha_wait_role "$i" standby 30
	done
	ha_signal "$a" KILL
	ha_failover_time "$a" $((LEASE + FI + 2)) || true
	echo "# kill -9 failover with failover_interval ${FI}s: $HA_FAILOVER s"
	check "failover_interval ${FI}s: a standby is active within $((LEASE + FI + 2))s ($HA_FAILOVER s)" test "$HA_FAILOVER" != timeout
	# the lease lasts at least lease_duration - renew_interval after the kill (1.5 s of slack;
	# etcd reports whole seconds)
	low=$(awk -v l="$LEASE" -v f="$FI" 'BEGIN { printf "%.1f", f + l - l / 3 - 1.5 }')
	check "failover_interval ${FI}s: not before the lease ran out plus the interval (>= ${low}s: $HA_FAILOVER s)" \
		awk -v t="$HA_FAILOVER" -v l="$low" 'BEGIN { exit !(t != "timeout" && t + 0 >= l) }'
	ha_monitor_stop
	ha_monitor_check "failover_interval"
	for ((i = 1; i <= 3; i++)); do grep -E '^dirconnd: [a-z]+: ha: [a-z]+ -> |test: SIG' "$work/dirconnd-$i.log" | sed "s/^/# conn-$i: /"; done
	check_eq "no libproxy helper got stuck or outlived its dirconnd" "" "$(ha_stuck_children)"
}

# ha_test_begin NAME [CLEANUP-COMMAND]: the start of an HA test: a work dir
# /tmp/dirconn-it-NAME-XXXXXX in $work, an EXIT trap that stops the monitor, the instances,
# CLEANUP-COMMAND (e.g. etcd_stop_all), the cloud and the fixture (and keeps $work when a check
# failed or KEEP_WORK is set), the slapd AD LDS fixture with 200 users, and dirconn-cloud.
ha_test_begin() {
	work=$(mktemp -d "/tmp/dirconn-it-$1-XXXXXX")
	HA_EXTRA_CLEANUP=${2-}
	trap ha__test_cleanup EXIT
	ldsfx_start_retry adlds "$work/fx" --users 200
	# shellcheck disable=SC1091
	source "$work/fx/env"
	sync_cloud_start
}

ha__test_cleanup() {
	local rc=$? # a test that stopped on an error keeps its work directory too
	ha_monitor_stop
	ha_stop_all
	[[ -n ${HA_EXTRA_CLEANUP:-} ]] && $HA_EXTRA_CLEANUP
	sync_cloud_stop
	"$LDSFX" stop "$work/fx" >/dev/null 2>&1 || true
	if [[ $rc -eq 0 && $T_FAIL -eq 0 && -z ${KEEP_WORK:-} ]]; then rm -rf "$work"; else echo "kept $work"; fi
}
