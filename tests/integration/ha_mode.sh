# Integration test of one lease backend per organisation (docs/cloud-api.md "HA mode") against
# the real dirconn-cloud and a real etcd member on loopback: an etcd group writes and the
# organisation's mode is recorded as etcd; a one-shot `dirconnctl sync` without [ha] (the cloud
# lease) is refused with a message naming both modes and writes nothing, the lease counter
# untouched; one with the etcd configuration holds the same etcd key as the daemon and is
# refused while it is active; the etcd group keeps writing afterwards (no trap);
# `dirconnctl ha-mode set cloud` hands over: the etcd active is refused with the mode message
# (never "the HA lease was lost") and a cloud-lease instance becomes active and writes.
#   bash ha_mode.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/ha_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/etcd_lib.sh"

ha_test_begin ha-mode etcd_stop_all
etcd_start_cluster "$work/etcd" 1
ha_setup 1 "[ha]
lease = etcd
etcd_endpoints = $ETCD_ENDPOINTS
lease_duration = 6s
failover_interval = 0s
jitter = 200ms"
mapfile -t users < <(ha_user_dns 1)
probe=${users[0]}
n_change=0
change_now() {
	n_change=$((n_change + 1))
	CHANGE="HA mode Change $n_change $RANDOM"
	ha_set_attr "$probe" displayName "$CHANGE"
}
change_reached() { check "$1" ha_wait_cloud_count "displayName eq \"$CHANGE\"" 1 "$2"; }
mode_of() { json "$(cloud_admin GET /v1/orgs/acme/ha-mode)" "j['haMode'] or 'null'"; }

# ---- the etcd group writes; its first write records the mode
ha_start 1
check "the etcd instance becomes active" ha_wait_role 1 active 30
change_now
change_reached "the etcd group writes (a directory change reaches the cloud)" 60
check_eq "the first write recorded the organisation's mode: etcd" etcd "$(mode_of)"

# ---- a one-shot sync without [ha] (the cloud lease) against that org
sync_register conn-2
sync_conf "$work/conn-2.conf" conn-2
mkdir -p "$work/state-conn-2"
from=$(ha_cloud_log_lines)
run_capture one dirconnctl sync --full --no-progress --config "$work/conn-2.conf"
check_eq "a one-shot sync with the cloud lease is refused: exit 51" 51 "$one_rc"
check_contains "  ... naming both modes" "$one_err" \
	"the organisation acme uses the etcd lease; this connector is configured with the cloud lease ([ha] lease = cloud)"
check "  ... not as a lost lease" bash -c '! grep -q "HA lease was lost" <<<"$1"' _ "$one_err"
check_eq "  ... nothing written by it" "" "$(ha_cloud_writes_by 2 "$from")"
check_eq "  ... the cloud lease counter untouched" 0 "$(json "$(ha_cloud_lease)" "j['leaseTransitions']")"
check_eq "  ... the mode unchanged" etcd "$(mode_of)"

# ---- a one-shot sync with the etcd configuration holds the daemons' key: refused while active
ha_setup 3 "[ha]
lease = etcd
etcd_endpoints = $ETCD_ENDPOINTS
lease_duration = 6s
failover_interval = 0s
jitter = 200ms"
sync_conf "$work/conn-2.conf" conn-2 # back to no [ha] section
from=$(ha_cloud_log_lines)
run_capture two dirconnctl sync --full --no-progress --config "$work/conn-3.conf"
check_eq "a one-shot etcd sync beside the etcd active exits 50" 50 "$two_rc"
check_contains "  ... naming the active" "$two_err" "the HA lease is held by connector $(ha_id 1)"
check_eq "  ... nothing written by it" "" "$(ha_cloud_writes_by 3 "$from")"

# ---- the trap is gone: the etcd group goes on writing
change_now
change_reached "after the refused one-shot runs the etcd group still writes" 60
check_eq "  ... no write of the etcd group was fenced" 0 "$(ha_fenced)"

# ---- ha-mode show and set
run_capture show dirconnctl ha-mode show --config "$work/conn-2.conf"
check_eq "ha-mode show exits 0 (the connector's own credentials)" 0 "$show_rc"
check_contains "  ... names the mode" "$show_out" "Organisation acme: HA mode etcd"
check_contains "  ... and says this connector is refused" "$show_out" "configured with [ha] lease = cloud: the cloud refuses it"
run_capture bad dirconnctl ha-mode set cloud --config "$work/conn-2.conf"
check_eq "ha-mode set without --admin-token-file is a usage error" 2 "$bad_rc"
from=$(ha_cloud_log_lines)
run_capture set dirconnctl ha-mode set cloud --config "$work/conn-2.conf" --admin-token-file "$work/admin.token"
check_eq "ha-mode set cloud exits 0" 0 "$set_rc"
check_eq "  ... the mode is cloud" cloud "$(mode_of)"
# the etcd active is refused from its next sync on, with the mode message
ha_log_mark() { echo "# test: $1" >>"$work/dirconnd-1.log"; }
ha_log_mark "mode set to cloud"
change_now
check "the etcd active is refused with the mode message" wait_until 60 \
	grep -q "the organisation acme uses the cloud lease; this connector is configured with the etcd lease" "$work/dirconnd-1.log"
check "  ... never as a lost lease" bash -c '! grep -q "HA lease was lost" "$1"' _ "$work/dirconnd-1.log"
check_eq "  ... and writes nothing" "" "$(ha_cloud_writes_by 1 "$from")"
ha_stop 1
# the cloud-lease instance takes over
sync_conf "$work/conn-2.conf" conn-2 "[schedule]
incremental_interval = 5s
notifications = yes
[ha]
lease = cloud
lease_duration = 6s
failover_interval = 0s
jitter = 200ms"
ha_start 2
check "the cloud-lease instance becomes active" ha_wait_role 2 active 30
check_eq "  ... holding the cloud lease" 2 "$(ha_cloud_holder)"
change_now
change_reached "  ... and writes (with its fencing token)" 60
run_capture force dirconnctl ha-mode set etcd --config "$work/conn-2.conf" --admin-token-file "$work/admin.token"
check_eq "leaving the cloud lease while it is held is refused: exit 50" 50 "$force_rc"
check_contains "  ... saying who holds it" "$force_err" "the cloud lease is held by $(ha_id 2)"
check_eq "  ... the mode unchanged" cloud "$(mode_of)"
finish
