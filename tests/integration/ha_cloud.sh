# Integration test of high availability with the reference cloud's lease ([ha] lease = cloud):
# several dirconnd instances (separately registered connectors, one slapd AD LDS fixture, one
# dirconn-cloud) elect exactly one active, which the cloud's lease and every status agree on;
# a standby refuses sync-now and writes nothing; the active keeps its watermarks in the
# cloud's connector state for a successor. kill -9, SIGSTOP past the lease and SIGTERM (also
# in the middle of a sync) of the active hand over in time and a directory change made then
# reaches the cloud; a 2 s SIGSTOP changes nothing; a resumed old active writes nothing and
# becomes standby, and a late write with its old fencing token is rejected; an instance with
# its clock 5 hours ahead (libfaketime) changes nothing; failover_interval delays a takeover;
# a sampler checks throughout that no two instances report active at once.
#   bash ha_cloud.sh
# HA_LEASE (default 6) is the lease duration in seconds.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/ha_lib.sh"
LEASE=${HA_LEASE:-6}
LIMIT=$((LEASE + 0 + 2)) # lease_duration + failover_interval + 2 s

ha_test_begin ha-cloud
ha_setup 3 "[ha]
lease = cloud
lease_duration = ${LEASE}s
failover_interval = 0s
jitter = 200ms"
mapfile -t users < <(ha_user_dns 40)
probe=${users[0]}

# status_of I EXPR: a Python expression over instance I's status JSON (j)
status_of() {
	local s
	s=$(ha_status "$1")
	[[ -n $s ]] || { echo "no answer"; return 0; }
	json "$s" "$2" 2>/dev/null || echo "no such member"
}
other_than() {
	local i
	for ((i = 1; i <= $2; i++)); do [[ $i != "$1" ]] && echo "$i"; done
	return 0
}
n_change=0
# change_reaches_cloud WHAT SECONDS: a new displayName of the probe user must reach the cloud
change_now() {
	n_change=$((n_change + 1))
	CHANGE="HA Change $n_change $RANDOM"
	ha_set_attr "$probe" displayName "$CHANGE"
}
change_reached() {
	check "$1" ha_wait_cloud_count "displayName eq \"$CHANGE\"" 1 "$2"
}

# ---- two instances: exactly one active
ha_start_all 2
ha_monitor_start
check "one of two instances becomes active" ha_wait_one_active 30
a=$HA_ACTIVE
s=$(other_than "$a" 2)
check_eq "the other one is standby" standby "$(ha_role "$s")"
check_eq "the cloud's lease is held by the active one" "$a" "$(ha_cloud_holder)"
tok=$(json "$(ha_cloud_lease)" "j['leaseTransitions']")
check_eq "status of the active: backend" cloud "$(status_of "$a" "j['ha']['backend']")"
check_eq "status of the active: identity is its connector id" "$(ha_id "$a")" "$(status_of "$a" "j['ha']['identity']")"
check_eq "status of the active: state" active "$(status_of "$a" "j['ha']['state']")"
check_eq "status of the active: holder is itself" "$(ha_id "$a")" "$(status_of "$a" "j['ha']['holder']")"
check_eq "status of the active: its fencing token is the cloud's leaseTransitions" "$tok" \
	"$(status_of "$a" "j['ha']['fencing_token']")"
check "status of the active: holder_since and last_renew are set" test "$(status_of "$a" \
	"bool(j['ha']['holder_since'] and j['ha']['last_renew'])")" = True
check_eq "status of the standby: identity" "$(ha_id "$s")" "$(status_of "$s" "j['ha']['identity']")"
check_eq "status of the standby: state" standby "$(status_of "$s" "j['ha']['state']")"
check_eq "status of the standby: the holder is the active one" "$(ha_id "$a")" "$(status_of "$s" "j['ha']['holder']")"
run_capture sn dirconnctl sync-now --incremental --socket "$(ha_sock "$s")"
check "sync-now on the standby fails" test "$sn_rc" -ne 0
check "sync-now on the standby says why" test -n "$sn_err$sn_out"
echo "# sync-now on the standby: rc $sn_rc: $sn_err$sn_out"
cloud_users() { json "$(ha_cloud_stats)" "j['users']"; }
first_sync() {
	local t0=$SECONDS
	until (($(cloud_users) > 100)); do
		((SECONDS - t0 > 60)) && return 1
		sleep 0.5
	done
}
check "the active's first sync fills the cloud" first_sync
check_eq "the standby wrote nothing to the cloud" "" "$(ha_cloud_writes_by "$s" 1)"
# the active keeps its watermarks in the cloud's connector-state document for a successor
shared_writer() { json "$(cloud_admin GET /v1/orgs/acme/state)" "j.get('writer') if isinstance(j, dict) and j.get('watermarks') else None"; }
wait_writer() {
	local t0=$SECONDS
	until [[ $(shared_writer) == "$(ha_id "$1")" ]]; do
		((SECONDS - t0 > $2)) && { echo "# the shared state: $(cloud_admin GET /v1/orgs/acme/state)"; return 1; }
		sleep 0.5
	done
}
check "the active stored its watermarks in the cloud's connector state" wait_writer "$a" 30
gen0=$(json "$(cloud_admin GET /v1/orgs/acme/state)" "j['generation']")

# ---- SIGSTOP shorter than what the lease leaves after a renewal: no failover
# stopped right after a renewal, for 2 s of the lease; its next renewal after SIGCONT keeps it
from=$(ha_cloud_log_lines)
check "the active renews its lease" ha_wait_lease_calls "$a" PUT "$from" 1 30
ha_signal "$a" STOP
sleep 2 # the length of the stop (the stimulus), not a wait for something to happen
ha_signal "$a" CONT
from=$(ha_cloud_log_lines)
check "a 2 s SIGSTOP of the active: it renews its lease after SIGCONT" ha_wait_lease_calls "$a" PUT "$from" 1 30
check_eq "a 2 s SIGSTOP of the active: it is still the only active" "$a" "$(ha_active)"
check_eq "a 2 s SIGSTOP of the active: the cloud's lease did not move" "$a" "$(ha_cloud_holder)"
check_eq "a 2 s SIGSTOP of the active: no new lease transition" "$tok" "$(json "$(ha_cloud_lease)" "j['leaseTransitions']")"

# ---- kill -9 of the active: a standby takes over within lease + failover_interval + 2 s
ha_signal "$a" KILL
change_now
ha_failover_time "$a" "$LIMIT" || true
echo "# kill -9 failover: $HA_FAILOVER s (limit $LIMIT s)"
check "kill -9: the standby is active within ${LIMIT}s ($HA_FAILOVER s)" test "$HA_FAILOVER" != timeout
b=$HA_ACTIVE
check_eq "kill -9: the cloud's lease moved to the new active" "$b" "$(ha_cloud_holder)"
check "kill -9: the fencing token grew" test "$(json "$(ha_cloud_lease)" "j['leaseTransitions']")" -gt "$tok"
change_reached "kill -9: a directory change made right after the kill reaches the cloud" 30
check "kill -9: the new active's log shows the transition" grep -q "ha: acquiring -> active" "$work/dirconnd-$b.log"
check "kill -9: the new active continues from the shared watermarks" \
	grep -q "ha: continuing from the shared state" "$work/dirconnd-$b.log"
check "kill -9: the new active then writes the shared state itself" wait_writer "$b" 30
check "kill -9: the shared state's generation grew" test "$(json "$(cloud_admin GET /v1/orgs/acme/state)" "j['generation']")" -gt "$gen0"
if grep -q "object map rebuilt from the cloud inventory" "$work/dirconnd-$b.log"; then
	echo "# note: the new active rebuilt its object map from the cloud inventory (it was behind)"
fi
ha_start "$a"
check "kill -9: the killed instance restarts as standby" ha_wait_role "$a" standby 30
check_eq "kill -9: still exactly one active" "$b" "$(ha_active)"

# ---- SIGTERM of the active: released, a standby is active within 2 s
ha_signal "$b" TERM
ha_failover_time "$b" 2 || true
echo "# SIGTERM handover: $HA_FAILOVER s"
check "SIGTERM: the standby is active within 2 s ($HA_FAILOVER s)" test "$HA_FAILOVER" != timeout
rc=0
ha_wait_exit "$b" || rc=$?
check_eq "SIGTERM: the old active exits 0" 0 "$rc"
check "SIGTERM: its log says the lease was released" grep -q "ha: lease released" "$work/dirconnd-$b.log"
change_now
change_reached "SIGTERM: a change reaches the cloud through the new active" 30
ha_start "$b"
check "SIGTERM: the old active restarts as standby" ha_wait_role "$b" standby 30
ha_monitor_stop
ha_monitor_check "two instances"

# ---- three instances
ha_start 3
ha_monitor_start
check "a third instance starts as standby" ha_wait_role 3 standby 30
check "three instances: exactly one active" ha_wait_one_active 15
a=$HA_ACTIVE
ha_signal "$a" KILL
change_now
ha_failover_time "$a" "$LIMIT" || true
echo "# kill -9 failover (3 instances): $HA_FAILOVER s"
check "three instances, kill -9: a standby is active within ${LIMIT}s ($HA_FAILOVER s)" test "$HA_FAILOVER" != timeout
check "three instances, kill -9: then exactly one active" ha_wait_one_active 15 "$a"
change_reached "three instances, kill -9: the change made after the kill reaches the cloud" 30
ha_start "$a"
check "three instances: the killed one restarts as standby" ha_wait_role "$a" standby 30

# ---- SIGSTOP of the active in the middle of a sync, past its lease; then SIGCONT
a=$(ha_active)
cloud_admin PUT /v1/faults '{"latencyMs": 150, "writesOnly": true}' >/dev/null
ha_set_attr_many title "HA Stopped Mid-Sync" "${users[@]}"
applying=no
is_applying() { [[ $(status_of "$1" "(j['current'] or {}).get('phase','')") == applying ]]; }
wait_until 60 is_applying "$a" && applying=yes
# stop it once the cloud took the first of the changes (not after a fixed delay)
stopped_title_written() { (($(ha_cloud_count 'title eq "HA Stopped Mid-Sync"') > 0)); }
wait_until 60 stopped_title_written || true
echo "# the active was applying when stopped: $applying; the cloud had $(ha_cloud_count 'title eq "HA Stopped Mid-Sync"') of ${#users[@]} changes"
old_tok=$(status_of "$a" "j['ha']['fencing_token']")
ha_signal "$a" STOP
ha_failover_time "$a" "$LIMIT" || true
echo "# SIGSTOP failover: $HA_FAILOVER s"
check "SIGSTOP: a standby is active within ${LIMIT}s ($HA_FAILOVER s)" test "$HA_FAILOVER" != timeout
b=$HA_ACTIVE
check_eq "SIGSTOP: the cloud's lease moved" "$b" "$(ha_cloud_holder)"
cloud_admin PUT /v1/faults '{"latencyMs": 0, "writesOnly": false}' >/dev/null
from=$(ha_cloud_log_lines)
fenced0=$(ha_fenced)
ha_signal "$a" CONT
check "SIGCONT: the old active becomes standby" ha_wait_role "$a" standby 30
# whatever it still tries, it tries before its interrupted sync ends: wait for that end
no_sync_running() { [[ $(status_of "$1" "j['current'] is None") == True ]]; }
check "SIGCONT: the old active's interrupted sync ends" wait_until 60 no_sync_running "$a"
check_eq "SIGCONT: the old active made no write the cloud accepted" "" "$(ha_cloud_writes_by "$a" "$from")"
fenced1=$(ha_fenced)
echo "# fencedRejections: $fenced0 before SIGCONT, $fenced1 after"
check "SIGCONT: the old active's log says it lost the lease" \
	grep -q -E "ha: self-fenced|ha: active -> (standby|releasing|stopped)|lost the lease|lease lost" \
	<(ha_log_since "$a" "test: SIGCONT")
uid=$(ha_cloud_user_id "displayName eq \"$CHANGE\"")
fenced0=$(ha_fenced)
check_eq "the cloud rejects a late write with the old active's token $old_tok" 409 "$(ha_stale_write "$a" "$old_tok" "$uid")"
check_eq "the rejected write is counted in fencedRejections" $((fenced0 + 1)) "$(ha_fenced)"
check_eq "the rejected write changed nothing" 0 "$(ha_cloud_count 'title eq "Stale Write"')"
check_eq "SIGCONT: the new active is the only active" "$b" "$(ha_active)"
check_eq "SIGCONT: the cloud's lease stays with the new active" "$b" "$(ha_cloud_holder)"
check "the changes being applied when the old active stopped all reach the cloud" \
	ha_wait_cloud_count 'title eq "HA Stopped Mid-Sync"' "${#users[@]}" 45

# ---- SIGTERM of the active in the middle of a sync: it stops after the batch in flight and
# releases; a standby is active within 2 s
# (100 ms a write: the handover waits for the batch in flight, 1.0-1.6 s with 150 ms a write)
a=$(ha_active)
cloud_admin PUT /v1/faults '{"latencyMs": 100, "writesOnly": true}' >/dev/null
ha_set_attr_many title "HA Terminated Mid-Sync" "${users[@]}"
applying=no
wait_until 60 is_applying "$a" && applying=yes
echo "# the active was applying when terminated: $applying"
ha_signal "$a" TERM
ha_failover_time "$a" 2 || true
echo "# SIGTERM handover during a sync: $HA_FAILOVER s"
check "SIGTERM during a sync: a standby is active within 2 s ($HA_FAILOVER s)" test "$HA_FAILOVER" != timeout
rc=0
ha_wait_exit "$a" || rc=$?
check_eq "SIGTERM during a sync: the old active exits 0" 0 "$rc"
check "SIGTERM during a sync: its log says the lease was released" \
	grep -q "ha: lease released" <(ha_log_since "$a" "test: SIGTERM")
cloud_admin PUT /v1/faults '{"latencyMs": 0, "writesOnly": false}' >/dev/null
check "SIGTERM during a sync: the new active completes the changes" \
	ha_wait_cloud_count 'title eq "HA Terminated Mid-Sync"' "${#users[@]}" 45
ha_start "$a"
check "SIGTERM during a sync: the old active restarts as standby" ha_wait_role "$a" standby 30
ha_monitor_check "three instances, kill -9, SIGSTOP and SIGTERM"

# ---- one instance with its clock 5 hours ahead (libfaketime) changes nothing
a=$(ha_active)
f=$(other_than "$a" 3 | head -1)
ha_stop "$f"
ha_start "$f" faketime "+5h" || { not_ok "faketime: dirconnd conn-$f starts under libfaketime"; exit 1; }
check "faketime: the instance with a clock 5 h ahead starts as standby" ha_wait_role "$f" standby 30
# its own clock is ahead: the next incremental it shows (local time) is about 5 h from now
ahead=$(status_of "$f" "round((__import__('datetime').datetime.strptime(j['next']['incremental'], '%Y-%m-%dT%H:%M:%S%z').timestamp() - __import__('time').time()) / 3600)")
check_eq "faketime: its clock is 5 h ahead (hours ahead of ours, by its next incremental)" 5 "$ahead"
# it watches the lease for more than a lease's length: two renewals by the active, and its own
# observations after them (a standby polls every 500 ms)
from=$(ha_cloud_log_lines)
check "faketime: the active renews twice while the fast-clock standby watches" \
	ha_wait_lease_calls "$a" PUT "$from" 2 60
check "faketime: the fast-clock standby observes the lease through a whole lease" \
	ha_wait_lease_calls "$f" GET "$from" $((LEASE * 2 + 2)) 120
check_eq "faketime: it does not take the lease from a live active" "$a" "$(ha_cloud_holder)"
check_eq "faketime: still exactly one active" "$a" "$(ha_active)"
# make it the active: kill the others' actives until it takes over
for _ in 1 2; do
	cur=$(ha_active)
	[[ -z $cur || $cur == "$f" ]] && break
	ha_signal "$cur" KILL
	ha_failover_time "$cur" "$LIMIT" || true
	echo "# kill -9 failover with a fast-clock standby: $HA_FAILOVER s"
	check "faketime: kill -9 of conn-$cur: a standby is active within ${LIMIT}s ($HA_FAILOVER s)" test "$HA_FAILOVER" != timeout
done
check_eq "faketime: the fast-clock instance is active" "$f" "$(ha_active)"
change_now
change_reached "faketime: its writes reach the cloud" 30
from=$(ha_cloud_log_lines)
for ((i = 1; i <= 3; i++)); do
	[[ -z ${HA_PID[i]:-} ]] && ha_start "$i"
done
for ((i = 1; i <= 3; i++)); do
	[[ $i == "$f" ]] || check "faketime: conn-$i restarts as standby" ha_wait_role "$i" standby 30
done
# more than a lease's length: three renewals by the fast-clock active while the others watch
check "faketime: the fast-clock active renews its lease" ha_wait_lease_calls "$f" PUT "$from" 3 60
check_eq "faketime: it keeps the lease (renewals count by the server's clock)" "$f" "$(ha_cloud_holder)"
check_eq "faketime: exactly one active" "$f" "$(ha_active)"
ha_signal "$f" TERM
ha_failover_time "$f" 2 || true
echo "# SIGTERM handover from the fast-clock instance: $HA_FAILOVER s"
check "faketime: SIGTERM hands over within 2 s ($HA_FAILOVER s)" test "$HA_FAILOVER" != timeout
ha_wait_exit "$f" || true
ha_monitor_stop
ha_monitor_check "faketime"
echo "# fencedRejections at the end: $(ha_fenced); lease: $(ha_cloud_lease)"
# ---- failover_interval: after the lease ran out a standby waits that long before taking it
FI=6
ha_failover_interval_scenario "lease = cloud"

# ---- a fenced write is sent once: the backend leaves the next attempt to its caller, which
# first asks whether the instance may still write (a resend after a lost lease is a write the
# instance knows it must not make). Through ha_lease_driver with conn-1's configuration, every
# instance stopped, and every write answered 503 (not applied).
ha_stop_all
DRIVER=${DIRCONN_BUILD_DIR:-$SRC/build}/tests/integration/ha_lease_driver
drive() { run_capture r "$DRIVER" "$work/conn-1.conf" - "$@"; }
check "fenced write: the driver is built" test -x "$DRIVER"
drive acquire
check_eq "fenced write: conn-1 acquires the free lease (exit 0)" 0 "$r_rc"
tok=$(json "$r_out" "j['token']")
drive state-get
ver=$(json "$r_out" "j['version']")
cloud_admin PUT /v1/faults '{"error503": 1.0, "writesOnly": true}' >/dev/null
before=$(json "$(cloud_admin GET /v1/faults)" "j['counts']['error503']")
drive state-put '{"format": 1, "generation": 999, "writer": "driver", "watermarks": []}' "$ver" "$tok"
after=$(json "$(cloud_admin GET /v1/faults)" "j['counts']['error503']")
cloud_admin PUT /v1/faults '{"error503": 0, "writesOnly": false}' >/dev/null
check_eq "fenced write: a 503 answer is the driver's error (exit 32, ECLOUD)" 32 "$r_rc"
check_contains "fenced write: the error names the 503" "$r_err" "HTTP 503"
check_eq "fenced write: the PUT /state was sent once, not tried again by the backend" 1 "$((after - before))"
check "fenced write: the shared state was not replaced" \
	test "$(json "$(cloud_admin GET /v1/orgs/acme/state)" "j.get('writer')")" != driver
drive release
finish
