# Integration test: the retry list of failed writes is in the shared state (issue 19, item 1).
# Two dirconnd instances with the cloud lease over one slapd AD LDS fixture and one
# dirconn-cloud:
#   - the active's SCIM writes fail (fault injection: every write answered 500), so its
#     incremental sync records the changed users as failures to retry, moves its watermark and
#     writes the shared state document with them in its retry list ("retry");
#   - kill -9 of the active; the writes pass again; the standby takes over, reads the shared
#     state, logs the retry list it takes over, and its first sync brings those users to the
#     cloud: the cloud equals the directory (sync_check.py) and the retry list it writes is empty;
#   - conn-1 comes back as standby, every SCIM request fails, conn-2 is killed: conn-1's first
#     sync (its object map is behind: it is rebuilt from the cloud inventory, then incremental)
#     stops on the errors; with the faults off, its next sync rebuilds the object map again
#     (never an incremental on the map as it was), then incrementals resume.
#   bash ha_retry.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/ha_lib.sh"
LEASE=${HA_LEASE:-6}
LIMIT=$((LEASE + 2 + 10)) # lease + failover_interval + a loaded machine's slack

ha_test_begin ha-retry
ha_setup 2 "[ha]
lease = cloud
lease_duration = ${LEASE}s
failover_interval = 0s
jitter = 200ms"
mapfile -t users < <(ha_user_dns 10)
failing=("${users[@]:1:3}")

shared() { cloud_admin GET /v1/orgs/acme/state; }
shared_writer() { json "$(shared)" "j.get('writer') if isinstance(j, dict) and j.get('watermarks') else None"; }
# retry_dns: the DNs of the shared document's retry list, lower case, sorted, one per line
retry_dns() { json "$(shared)" "'\n'.join(sorted((r.get('dn') or '').lower() for r in (j.get('retry') or [])))"; }
retry_count() { json "$(shared)" "len(j.get('retry') or [])"; }
retry_is() { [[ $(retry_count) == "$1" && $(shared_writer) == "$(ha_id "$2")" ]]; }
writer_is() { [[ $(shared_writer) == "$(ha_id "$1")" ]]; }

# ---- conn-1 fills the cloud; conn-2 waits
ha_start 1
check "conn-1 becomes active" ha_wait_one_active 30
check "conn-1's first sync ends (shared state written)" wait_until 60 writer_is 1
check_eq "the shared state has an empty retry list" 0 "$(retry_count)"
ha_start 2
check "conn-2 starts as standby" ha_wait_role 2 standby 30

# ---- every SCIM write fails; three users change: conn-1's incremental records them to retry
cloud_admin PUT /v1/faults '{"error500": 1, "writesOnly": true, "scimOnly": true}' >/dev/null
check_eq "write faults are on" 200 "$(admin_status)"
gen=$(json "$(shared)" "j['generation']")
change="Retry Me $RANDOM"
ha_set_attr_many displayName "$change" "${failing[@]}"
written_with_retries() { retry_is 3 1 && (($(json "$(shared)" "j['generation']") > gen)); }
# (each write fails once the SCIM client has given up on its 500s)
check "conn-1's sync fails the three writes and writes them to the shared state's retry list" \
	wait_until 120 written_with_retries
check "conn-1 logged the failed sync" grep -q "3 objects failed" "$work/dirconnd-1.log"
want=$(for dn in "${failing[@]}"; do lower "$dn"; done | LC_ALL=C sort)
check_eq "the retry list names the three users by DN" "$want" "$(retry_dns | LC_ALL=C sort)"
check_eq "each entry has an externalId and the kind user" "user 3" \
	"$(json "$(shared)" "' '.join([','.join(sorted(set(r.get('kind') or '?' for r in j['retry']))), str(sum(1 for r in j['retry'] if r.get('externalId')))])")"
check_eq "the changed users are not in the cloud yet" 0 "$(ha_cloud_count "displayName eq \"$change\"")"

# ---- kill -9 of conn-1; writes pass again; conn-2 takes the retry list over
ha_signal 1 KILL
cloud_admin PUT /v1/faults '{"error500": 0, "writesOnly": false, "scimOnly": false}' >/dev/null
check_eq "write faults are off" 200 "$(admin_status)"
check "kill -9 of conn-1: conn-2 becomes active" ha_wait_one_active "$LIMIT"
took_retries() { grep -q "ha: the shared state's retry list: 3 objects whose last write failed, retried by this instance" "$work/dirconnd-2.log"; }
check "conn-2 reads the retry list of the shared state" wait_until 60 took_retries
check "conn-2's first sync sends the three users" ha_wait_cloud_count "displayName eq \"$change\"" 3 90
check "conn-2's first sync ends with an empty retry list in the shared state" wait_until 60 retry_is 0 2
out=$(sync_check 2>&1)
rc=$?
check_eq "the cloud equals the directory (sync_check.py)" 0 "$rc"
((rc == 0)) || echo "$out" | tail -5 | sed 's/^/# /'

# ---- a takeover's first sync that stops on an error is followed by another rebuild of the
# object map (or a full sync), never by an incremental one on the map as it was (the state
# setting ha-full-pending)
ha_start 1
check "conn-1 restarts as standby" ha_wait_role 1 standby 30
check "conn-2's last sync wrote the shared state" wait_until 60 writer_is 2
# every SCIM request fails (500), the lease and the shared state (control API) do not
cloud_admin PUT /v1/faults '{"error500": 1, "writesOnly": false, "scimOnly": true}' >/dev/null
check_eq "SCIM faults are on" 200 "$(admin_status)"
echo "# $(date -u +%T.%N | cut -c1-12) test: second takeover" >>"$work/dirconnd-1.log"
ha_signal 2 KILL
check "kill -9 of conn-2: conn-1 becomes active" ha_wait_one_active "$LIMIT"
# since the marker: the takeover's import, then the end of that sync on an error (every SCIM
# request fails: the inventory that would rebuild the object map cannot be read)
first_stopped() {
	ha_log_since 1 "test: second takeover" |
		awk '/ha: continuing from the shared state/ { f = 1 } f && /sync ended: / { ok = 1 } END { exit !ok }'
}
check "conn-1's first sync after the takeover stops on the cloud's errors" \
	wait_until 180 first_stopped
check_eq "and did not complete an object map rebuild or a sync" 0 \
	"$(ha_log_since 1 "test: second takeover" | grep -c "object map rebuilt from the cloud inventory\|sync done in" || true)"
echo "# $(date -u +%T.%N | cut -c1-12) test: faults off" >>"$work/dirconnd-1.log"
cloud_admin PUT /v1/faults '{"error500": 0, "writesOnly": false, "scimOnly": false}' >/dev/null
check_eq "SCIM faults are off" 200 "$(admin_status)"
run_capture now dirconnctl sync-now --socket "$(ha_sock 1)" # an incremental is asked for
again_full() { ha_log_since 1 "test: faults off" | grep -q "first sync that follows the takeover (generation [0-9]*) has not completed yet: this sync rebuilds the object map again (or runs in full)"; }
check "the next sync rebuilds the object map again: the takeover's first sync had not completed" \
	wait_until 120 again_full
full_done() {
	ha_log_since 1 "test: faults off" | grep -q "object map rebuilt from the cloud inventory" &&
		ha_log_since 1 "test: faults off" | grep -q "incremental sync done in"
}
check "that sync rebuilds the map and completes, incremental from the shared watermark" wait_until 180 full_done
echo "# $(date -u +%T.%N | cut -c1-12) test: after the full sync" >>"$work/dirconnd-1.log"
run_capture now dirconnctl sync-now --socket "$(ha_sock 1)"
incr_done() { ha_log_since 1 "test: after the full sync" | grep -q "incremental sync done in"; }
check "after it, syncs are incremental again" wait_until 120 incr_done
check_eq "and no longer rebuild the object map" 0 \
	"$(ha_log_since 1 "test: after the full sync" | grep -c "has not completed yet\|object map rebuilt" || true)"
out=$(sync_check 2>&1)
rc=$?
check_eq "the cloud equals the directory after the second takeover (sync_check.py)" 0 "$rc"
((rc == 0)) || echo "$out" | tail -5 | sed 's/^/# /'
finish
