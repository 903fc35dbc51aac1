# Integration test: the group owns what any member created (issue 19, orphans). Two dirconnd
# instances with the cloud lease over one slapd AD LDS fixture and one dirconn-cloud:
#   - a takeover by an instance with an empty state rebuilds its object map from the cloud
#     inventory, runs its first sync incremental from the shared watermark and, nothing having
#     changed, writes nothing to SCIM;
#   - a user the old active created and the directory then deleted is deleted by the new
#     active's incremental sync, also when deleted during the failover;
#   - changes made during a failover (a user deleted, a user's attribute, a member added to a
#     group whose other members the old active created) reach the cloud exactly through the new
#     active's first, incremental, sync: with an empty state and with a stale one (an instance
#     that was active before, and missed objects the other created since), the cloud equals
#     the directory (sync_check.py: no orphan, no missing member);
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
# mark I: a marker line in conn-I's log (the first sync after it is looked at)
mark() { echo "# $(date -u +%T.%N | cut -c1-12) test: $2" >>"$work/dirconnd-$1.log"; }
# first_kind I MARKER: the kind of conn-I's first sync that ended after MARKER
first_kind() { ha_log_since "$1" "test: $2" | sed -n 's/.*info: \(full\|incremental\) sync done in.*/\1/p' | head -1; }
# kind_of I MARKER: first_kind once that sync's end is logged (after its shared-state write)
kind_of() {
	local t0=$SECONDS k
	until k=$(first_kind "$1" "$2") && [[ -n $k ]] || ((SECONDS - t0 > 30)); do sleep 0.2; done
	echo "$k"
}
# rebuilt I MARKER: conn-I rebuilt its object map from the cloud inventory after MARKER
rebuilt() {
	ha_log_since "$1" "test: $2" | grep -q "object map rebuilt from the cloud inventory ([0-9]* objects, [0-9]* adopted or changed, [0-9]* removed) in [0-9.]* s: this first sync after the takeover runs incremental from the shared watermark"
}
# the groups with at least two members, and whether a DN is a member of one
groups_with_members() {
	LDAPTLS_CACERT=$LDSFX_CA_FILE ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
		-y "$LDSFX_BIND_PASSWORD_FILE" -b "$LDSFX_BASE_DN" -LLL -o ldif-wrap=no \
		'(&(objectClass=group)(member=*))' member |
		awk '/^dn: / { dn = substr($0, 5); n = 0 } /^member: / { if (++n == 2) print dn }' | LC_ALL=C sort
}
is_member() {
	LDAPTLS_CACERT=$LDSFX_CA_FILE ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
		-y "$LDSFX_BIND_PASSWORD_FILE" -b "$1" -s base -LLL -o ldif-wrap=no member |
		sed -n 's/^member: //p' | grep -ixF -- "$2" >/dev/null
}
add_member() { ldap_modify "dn: $1
changetype: modify
add: member
member: $2"; }
# new_user NAME: a new enabled user with mail in the Employees OU; prints its DN
new_user() {
	local emp
	emp=$(json "$LDSFX_MANIFEST" "j['ous']['Employees']['dn']")
	ldap_modify "dn: CN=$1,$emp
changetype: add
objectClass: user
userPrincipalName: $1@dirconn.test
givenName: $1
sn: Orphans
displayName: $1 Orphans
mail: $1@dirconn.test
msDS-UserAccountDisabled: FALSE" && echo "CN=$1,$emp"
}
# exact WHAT: the cloud equals the directory (users, groups and their members; no orphan)
exact() {
	local out rc=0
	out=$(sync_check --all-attributes --protected hr-0042 2>&1) || rc=$?
	check_eq "$1: the cloud equals the directory (sync_check.py: no orphan, members complete)" 0 "$rc"
	((rc == 0)) || echo "$out" | grep -v '^ok' | head -8 | sed 's/^/# /'
}
mapfile -t member_groups < <(groups_with_members)
echo "# ${#member_groups[@]} groups with two members or more"
# pick_pair SKIP: "GROUP|USER": the first group (not SKIP) with a user of users[5..9] that is
# not its member
pick_pair() {
	local g dn
	for g in "${member_groups[@]}"; do
		[[ $g == "${1-}" ]] && continue
		for dn in "${users[@]:5:5}"; do is_member "$g" "$dn" || { echo "$g|$dn"; return 0; }; done
	done
	echo "|"
}

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
mark 2 "takeover empty nothing"
ha_signal 1 KILL
check "kill -9 of conn-1: conn-2 becomes active" ha_wait_one_active "$LIMIT"
check "conn-2's first sync ends" first_sync_done 2
check "conn-2 rebuilt its object map from the cloud inventory" rebuilt 2 "takeover empty nothing"
check_eq "empty state: conn-2's first sync after the takeover is incremental" incremental \
	"$(kind_of 2 "takeover empty nothing")"
n=$(scim_writes 2 "$from" | wc -l)
check_eq "conn-2's first sync after the takeover, nothing changed: no SCIM write" 0 "$n"
[[ $n == 0 ]] || scim_writes 2 "$from" | head -5 | sed 's/^/# /'
grep -E "(full|incremental): [0-9]+ directory objects read; plan:|Result \|" "$work/dirconnd-2.log" | tail -2 | sed 's/^/# conn-2: /'

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

# ---- conn-1 comes back with its state removed; conn-2 is killed; during the failover a user
# is deleted, another user's attribute changes and a user becomes a member of a group whose
# other members conn-2 created: conn-1's first sync (incremental, on the map rebuilt from the
# cloud inventory) deletes the user and brings the rest exactly
ha_stop 1
rm -rf "$work/state-conn-1"
mkdir -p "$work/state-conn-1"
ha_start 1
check "conn-1 restarts as standby (empty state)" ha_wait_role 1 standby 30
u2=${users[2]} u3=${users[3]}
m2=$(mail_of "$u2")
pair=$(pick_pair "")
g1=${pair%%|*} x1=${pair#*|}
check "a group with members and a user that is not one of them" test -n "$g1" -a -n "$x1"
title="Failover Title $RANDOM"
from=$(ha_cloud_log_lines)
mark 1 "takeover empty changes"
ha_signal 2 KILL
dir_delete "$u2"
ha_set_attr "$u3" title "$title"
add_member "$g1" "$x1"
check "kill -9 of conn-2: conn-1 becomes active" ha_wait_one_active "$LIMIT"
check "first sync after takeover: the user deleted during the failover leaves the cloud (no orphan)" \
	ha_wait_cloud_count "userName eq \"$m2\"" 0 60
check "conn-1's first sync ends" first_sync_done 1
check "empty state with changes: conn-1 rebuilt its object map" rebuilt 1 "takeover empty changes"
check_eq "empty state with changes: conn-1's first sync after the takeover is incremental" incremental \
	"$(kind_of 1 "takeover empty changes")"
check_eq "first sync after takeover: one user DELETE and no creation" "1 0" \
	"$(scim_writes 1 "$from" DELETE | grep -c /Users/) $(scim_writes 1 "$from" POST | wc -l)"
# the only PATCHes: the deleted user taken out of its groups and off its reports' manager, the
# title, the member added
echo "# first sync after takeover: $(scim_writes 1 "$from" PATCH | wc -l) PATCH requests"
check_eq "empty state: the title changed during the failover is in the cloud" 1 \
	"$(ha_cloud_count "title eq \"$title\"")"
exact "empty state, changes during the failover"

# ---- a stale state: conn-2 comes back with the state it had when it was killed; conn-1 then
# creates a user and makes it a member of a group; conn-1 is killed with nothing changed:
# conn-2's first sync is incremental and writes nothing
ha_start 2
check "conn-2 restarts as standby (its stale state)" ha_wait_role 2 standby 30
n1=$(new_user "orphansnew1")
g2=${member_groups[0]}
[[ $g2 != "$g1" ]] || g2=${member_groups[1]}
add_member "$g2" "$n1"
check "conn-1 creates the new user" ha_wait_cloud_count 'userName eq "orphansnew1@dirconn.test"' 1 60
gen=$(json "$(cloud_admin GET /v1/orgs/acme/state)" "j['generation']")
gen_past() { (($(json "$(cloud_admin GET /v1/orgs/acme/state)" "j['generation']") > $1)); }
check "conn-1 syncs again after it (the shared state moves on)" wait_until 60 gen_past "$gen"
from=$(ha_cloud_log_lines)
mark 2 "takeover stale nothing"
ha_signal 1 KILL
check "kill -9 of conn-1: conn-2 becomes active" ha_wait_one_active "$LIMIT"
check "conn-2's first sync ends" first_sync_done 2
check "stale state: conn-2 rebuilt its object map" rebuilt 2 "takeover stale nothing"
check_eq "stale state: conn-2's first sync after the takeover is incremental" incremental \
	"$(kind_of 2 "takeover stale nothing")"
n=$(scim_writes 2 "$from" | wc -l)
check_eq "stale state, nothing changed: no SCIM write" 0 "$n"
[[ $n == 0 ]] || scim_writes 2 "$from" | head -5 | sed 's/^/# /'
exact "stale state, nothing changed"

# ---- a stale state with changes during the failover: conn-2 creates a user conn-1 never saw,
# conn-1 comes back with its state; conn-2 is killed; a user is deleted, the new user's
# attribute changes and a user joins the group whose members include the new user
n2=$(new_user "orphansnew2")
pair=$(pick_pair "$g1")
g3=${pair%%|*} x3=${pair#*|}
check "a group with members other than the first, and a user that is not one of them" test -n "$g3" -a -n "$x3"
add_member "$g3" "$n2"
check "conn-2 creates the second new user" ha_wait_cloud_count 'userName eq "orphansnew2@dirconn.test"' 1 60
gen=$(json "$(cloud_admin GET /v1/orgs/acme/state)" "j['generation']")
check "conn-2 syncs again after it (the shared state moves on)" wait_until 60 gen_past "$gen"
ha_start 1
check "conn-1 restarts as standby (its stale state)" ha_wait_role 1 standby 30
u4=${users[4]}
m4=$(mail_of "$u4")
title2="Stale Title $RANDOM"
from=$(ha_cloud_log_lines)
mark 1 "takeover stale changes"
ha_signal 2 KILL
dir_delete "$u4"
ha_set_attr "$n2" title "$title2"
add_member "$g3" "$x3"
check "kill -9 of conn-2: conn-1 becomes active" ha_wait_one_active "$LIMIT"
check "stale state: the user deleted during the failover leaves the cloud (no orphan)" \
	ha_wait_cloud_count "userName eq \"$m4\"" 0 60
check "conn-1's first sync ends" first_sync_done 1
check "stale state with changes: conn-1 rebuilt its object map" rebuilt 1 "takeover stale changes"
check_eq "stale state with changes: conn-1's first sync after the takeover is incremental" incremental \
	"$(kind_of 1 "takeover stale changes")"
check_eq "stale state: one user DELETE and no creation" "1 0" \
	"$(scim_writes 1 "$from" DELETE | grep -c /Users/) $(scim_writes 1 "$from" POST | wc -l)"
check_eq "stale state: the new user's title changed during the failover is in the cloud" 1 \
	"$(ha_cloud_count "title eq \"$title2\"")"
exact "stale state, changes during the failover"

# ---- the delete threshold (20) still stops a mass deletion of adopted objects
ha_stop 2
rm -rf "$work/state-conn-2"
mkdir -p "$work/state-conn-2"
ha_start 2
check "conn-2 restarts as standby (empty state)" ha_wait_role 2 standby 30
mass=("${users[@]:10:25}")
mails=()
for dn in "${mass[@]}"; do mails+=("$(mail_of "$dn")"); done
# conn-2 is stopped (SIGSTOP) until the 25 deletions are all made: its first sync, incremental
# from the shared watermark, sees them together (a loaded machine's slow ldapdelete would
# otherwise spread them over two syncs, each under the threshold, as for any active)
ha_signal 2 STOP
ha_signal 1 KILL
dir_delete "${mass[@]}"
ha_signal 2 CONT
check "kill -9 of conn-1: conn-2 becomes active" ha_wait_one_active "$LIMIT"
threshold_hit() { grep -q "Delete threshold (20 objects) exceeded: 25 objects would be deleted" "$work/dirconnd-2.log"; }
check "the new active's first sync stops at the delete threshold" wait_until 60 threshold_hit
left=0
for m in "${mails[@]}"; do left=$((left + $(ha_cloud_count "userName eq \"$m\""))); done
check_eq "the 25 adopted users are still in the cloud" 25 "$left"

# ---- never deleted: the users that are not this directory's
check_eq "the hand-made cloud user is never deleted" 1 "$(ha_cloud_count 'userName eq "handmade@example.net"')"
check_eq "the cloud user with another externalId form is never deleted" 1 "$(ha_cloud_count 'userName eq "hr@example.net"')"
finish
