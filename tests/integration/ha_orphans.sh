# Integration test: the group owns what any member created (issue 19, orphans). Two dirconnd
# instances with the cloud lease over one slapd AD LDS fixture and one dirconn-cloud:
#   - a takeover by an instance with an empty state rebuilds its object map from the cloud
#     inventory and, nothing having changed, writes nothing to SCIM;
#   - a user the old active created and the directory then deleted is deleted by the new
#     active's incremental sync, and by its full first sync when deleted during the failover;
#   - a cloud user made by hand (no externalId) and one with another externalId form survive;
#   - the delete threshold still stops a mass deletion of adopted objects.
#   bash ha_orphans.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/ha_lib.sh"
LEASE=${HA_LEASE:-6}
LIMIT=$((LEASE + 2 + 10)) # lease + failover_interval + a loaded machine's slack

ha_test_begin ha-orphans
ha_setup 2 "[ha]
lease = cloud
lease_duration = ${LEASE}s
failover_interval = 0s
jitter = 200ms"
mapfile -t users < <(ha_user_dns 40)

# cloud users that are not this directory's: made by hand, and with another system's id
USER_SCHEMA=urn:ietf:params:scim:schemas:core:2.0:User
cloud_admin POST /scim/v2/acme/Users "{\"schemas\":[\"$USER_SCHEMA\"],\"userName\":\"handmade@example.net\",\"displayName\":\"Hand Made\"}" >/dev/null
check_eq "a hand-made cloud user is created" 201 "$(admin_status)"
cloud_admin POST /scim/v2/acme/Users "{\"schemas\":[\"$USER_SCHEMA\"],\"userName\":\"hr@example.net\",\"externalId\":\"hr-0042\",\"displayName\":\"HR Made\"}" >/dev/null
check_eq "a cloud user with another externalId form is created" 201 "$(admin_status)"

mail_of() {
	LDAPTLS_CACERT=$LDSFX_CA_FILE ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
		-y "$LDSFX_BIND_PASSWORD_FILE" -b "$1" -s base -LLL -o ldif-wrap=no mail | sed -n 's/^mail: //p'
}
dir_delete() {
	local dn
	for dn in "$@"; do printf '%s\n' "$dn"; done |
		LDAPTLS_CACERT=$LDSFX_CA_FILE ldapdelete -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
			-y "$LDSFX_BIND_PASSWORD_FILE"
}
shared_writer() { json "$(cloud_admin GET /v1/orgs/acme/state)" "j.get('writer') if isinstance(j, dict) and j.get('watermarks') else None"; }
wait_writer() {
	local t0=$SECONDS
	until [[ $(shared_writer) == "$(ha_id "$1")" ]]; do
		((SECONDS - t0 > $2)) && { echo "# the shared state: $(cloud_admin GET /v1/orgs/acme/state)"; return 1; }
		sleep 0.5
	done
}
# scim_writes I FROM [METHOD]: conn-I's acknowledged SCIM writes from cloud log line FROM on
scim_writes() { ha_cloud_writes_by "$1" "$2" | grep -E "info: ${3:-[A-Z]+} /scim/" || true; }
# the first sync of a new active: ends with its shared-state write
first_sync_done() { wait_writer "$1" 60; }

# ---- conn-1 alone fills the cloud
ha_start 1
check "conn-1 becomes active" ha_wait_one_active 30
check "conn-1's first sync ends (shared state written)" first_sync_done 1
cloud_users=$(json "$(ha_cloud_stats)" "j['users']")
echo "# cloud users after conn-1's first sync: $cloud_users"

# ---- kill -9, nothing changed: conn-2 (empty state) takes over and writes nothing to SCIM
ha_start 2
check "conn-2 starts as standby" ha_wait_role 2 standby 30
from=$(ha_cloud_log_lines)
ha_signal 1 KILL
check "kill -9 of conn-1: conn-2 becomes active" ha_wait_one_active "$LIMIT"
check "conn-2's first sync ends" first_sync_done 2
check "conn-2 rebuilt its object map from the cloud inventory" \
	grep -q "object map: [0-9]* cloud objects with this directory's externalIds taken" "$work/dirconnd-2.log"
n=$(scim_writes 2 "$from" | wc -l)
check_eq "conn-2's first sync after the takeover, nothing changed: no SCIM write" 0 "$n"
[[ $n == 0 ]] || scim_writes 2 "$from" | head -5 | sed 's/^/# /'
grep -E "full: [0-9]+ directory objects read; plan:|Result \|" "$work/dirconnd-2.log" | tail -2 | sed 's/^/# conn-2: /'

# ---- a user conn-1 created is deleted in the directory: conn-2's incremental deletes it
u1=${users[1]}
m1=$(mail_of "$u1")
check_eq "the user conn-1 created is in the cloud" 1 "$(ha_cloud_count "userName eq \"$m1\"")"
from=$(ha_cloud_log_lines)
dir_delete "$u1"
check "incremental: the user deleted in the directory leaves the cloud (no orphan)" \
	ha_wait_cloud_count "userName eq \"$m1\"" 0 30
check_eq "incremental: one user DELETE, no creation" "1 0" \
	"$(scim_writes 2 "$from" DELETE | grep -c /Users/) $(scim_writes 2 "$from" POST | wc -l)"

# ---- conn-1 comes back with its state removed; conn-2 is killed; a user is deleted during
# the failover: conn-1's first sync (full, empty object map) deletes it
ha_stop 1
rm -rf "$work/state-conn-1"
mkdir -p "$work/state-conn-1"
ha_start 1
check "conn-1 restarts as standby (empty state)" ha_wait_role 1 standby 30
u2=${users[2]}
m2=$(mail_of "$u2")
from=$(ha_cloud_log_lines)
ha_signal 2 KILL
dir_delete "$u2"
check "kill -9 of conn-2: conn-1 becomes active" ha_wait_one_active "$LIMIT"
check "full after takeover: the user deleted during the failover leaves the cloud (no orphan)" \
	ha_wait_cloud_count "userName eq \"$m2\"" 0 60
check "conn-1's first sync ends" first_sync_done 1
check_eq "full after takeover: one user DELETE and no creation" "1 0" \
	"$(scim_writes 1 "$from" DELETE | grep -c /Users/) $(scim_writes 1 "$from" POST | wc -l)"
# the only PATCHes: the deleted user taken out of its groups and off its reports' manager
echo "# full after takeover: $(scim_writes 1 "$from" PATCH | wc -l) PATCH requests"

# ---- the delete threshold (20) still stops a mass deletion of adopted objects
ha_stop 2
rm -rf "$work/state-conn-2"
mkdir -p "$work/state-conn-2"
ha_start 2
check "conn-2 restarts as standby (empty state)" ha_wait_role 2 standby 30
mass=("${users[@]:10:25}")
mails=()
for dn in "${mass[@]}"; do mails+=("$(mail_of "$dn")"); done
ha_signal 1 KILL
dir_delete "${mass[@]}"
check "kill -9 of conn-1: conn-2 becomes active" ha_wait_one_active "$LIMIT"
threshold_hit() { grep -q "Delete threshold (20 objects) exceeded: 25 objects would be deleted" "$work/dirconnd-2.log"; }
check "the new active's full sync stops at the delete threshold" wait_until 60 threshold_hit
left=0
for m in "${mails[@]}"; do left=$((left + $(ha_cloud_count "userName eq \"$m\""))); done
check_eq "the 25 adopted users are still in the cloud" 25 "$left"

# ---- never deleted: the users that are not this directory's
check_eq "the hand-made cloud user is never deleted" 1 "$(ha_cloud_count 'userName eq "handmade@example.net"')"
check_eq "the cloud user with another externalId form is never deleted" 1 "$(ha_cloud_count 'userName eq "hr@example.net"')"
finish
