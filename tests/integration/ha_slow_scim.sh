# Integration test: a slow SCIM request must not starve the cloud lease's renewal. One dirconnd
# holds the reference cloud's lease ([ha] lease = cloud, 3 s) while dirconn-cloud spends 8 s on
# each SCIM write (the stall fault, docs/cloud-api.md 5: the thread that processes SCIM
# requests is held, as a provider busy with a large group is). The renewals of the lease
# (control API) must be answered meanwhile: the cloud's lease keeps its holderIdentity and
# fencing token while the renewals go on, the write is applied, the connector logs no
# self-fence and stays active, and it exits 0 on SIGTERM. With one event loop for both APIs
# the renewals wait behind the write and the connector fences itself.
#   bash ha_slow_scim.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/ha_lib.sh"
LEASE=3
STALL_MS=8000

ha_test_begin ha-slow-scim
ha_setup 1 "[ha]
lease = cloud
lease_duration = ${LEASE}s
failover_interval = 0s"
mapfile -t users < <(ha_user_dns 1)
probe=${users[0]}

ha_start 1
check "the instance becomes active" ha_wait_one_active 60
# idle: its first sync is done (the users are in the cloud)
idle() { [[ $(json "$(ha_status 1)" "j['state']" 2>/dev/null) == idle ]]; }
check "its first sync ends" wait_until 120 idle
tok=$(json "$(ha_cloud_lease)" "j['leaseTransitions']")
echo "# fencing token $tok"

# every SCIM write stalls the cloud's SCIM processing for STALL_MS
cloud_admin PUT /v1/faults "{\"stallMs\": $STALL_MS, \"writesOnly\": true}" >/dev/null
check_eq "the stall fault is set" 200 "$(admin_status)"
from=$(ha_cloud_log_lines)
CHANGE="Slow Provider $RANDOM"
ha_set_attr "$probe" displayName "$CHANGE"
# the write reaches the cloud: it is counted as stalled
stalled() { (($(json "$(cloud_admin GET /v1/faults)" "j['counts']['stalled']") >= 1)); }
check "the change's write reaches the cloud and is stalled" wait_until 60 stalled
t_stall=$(now)
# while it is processed: lease renewals (PUT .../lease 200) go on, at least 3 within the stall
renews_from=$(ha_cloud_log_lines)
renewed_in=never
ha_wait_lease_calls 1 PUT "$renews_from" 3 $((STALL_MS / 1000 - 1)) && renewed_in=$(elapsed "$t_stall" "$(now)")
echo "# 3 renewals answered ${renewed_in}s after the write was stalled"
check "the lease is renewed (3 times) while the SCIM write is being processed (< ${STALL_MS} ms)" \
	awk -v e="$renewed_in" -v l="$STALL_MS" 'BEGIN { exit !(e != "never" && e * 1000 < l) }'
check_eq "the cloud's lease holder is still conn-1" 1 "$(ha_cloud_holder)"
check_eq "its fencing token is unchanged" "$tok" "$(json "$(ha_cloud_lease)" "j['leaseTransitions']")"
check_eq "the instance is still active" active "$(ha_role 1)"
# the write is applied and answered
written() { ha_cloud_writes_by 1 "$from" | grep -q .; }
check "the stalled write is applied (2xx)" wait_until 60 written
check "the change is in the cloud" ha_wait_cloud_count "displayName eq \"$CHANGE\"" 1 30
cloud_admin PUT /v1/faults '{"stallMs": 0}' >/dev/null
check_eq "the cloud's lease holder is conn-1 after the write" 1 "$(ha_cloud_holder)"
check_eq "the fencing token is unchanged after the write" "$tok" "$(json "$(ha_cloud_lease)" "j['leaseTransitions']")"
check_eq "no write was fenced" 0 "$(ha_fenced)"
check_eq "the instance is active after the write" active "$(ha_role 1)"
check "the connector's log has no self-fence" bash -c "! grep -E 'self-fenced' '$work/dirconnd-1.log'"
ha_signal 1 TERM
rc=0
ha_wait_exit 1 || rc=$?
check_eq "dirconnd exits 0 on SIGTERM" 0 "$rc"
SANITIZER_LOGS="$work/cloud.log $work/dirconnd-1.log"
finish
