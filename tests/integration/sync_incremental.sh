# Integration test of change tracking and the incremental sync (dirconnctl
# sync --incremental) against a real directory fixture and the reference cloud.
#   bash sync_incremental.sh adds|adlds
# After each directory change an incremental sync runs and sync_check (an
# independent oracle reading the directory and the cloud) compares them.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"
kind=${1:?usage: sync_incremental.sh adds|adlds}

sync_test_begin incr "$kind"
M=$LDSFX_MANIFEST
sync_cloud_start
sync_register conn-a
B=$LDSFX_BASE_DN
SG=$(json "$M" "j['cloud_users']['dn']")
sync_conf "$work/a.conf" conn-a "[users]
security_groups = $SG"
state=$work/state-conn-a/state.db
chk() { sync_check --security-group "$SG" "$@"; }
incr() { # incr NAME: an incremental sync, its output in NAME_out, NAME_rc
	run_capture "$1" dirconnctl sync --incremental --config "$work/a.conf" --no-progress
}
converged() { # converged WHAT
	run_capture chk chk
	echo "$chk_out" | grep -v '^ok' || true
	check_eq "$1" 0 "$chk_rc"
}

# ---- the first incremental is a full sync, and takes the watermark
incr i0
check_eq "the first incremental sync exits 0" 0 "$i0_rc"
check_contains "without a watermark it runs in full, and says why" "$i0_out" "Running a full sync: there is no watermark yet"
converged "the full sync brought the cloud to the directory"
method=$(sqlite3 "$state" "select method from watermarks")
if [[ $kind == adds ]]; then want=dirsync; else want=syncrepl; fi
check_eq "the watermark is taken with $want" "$want" "$method"
check_eq "the history says full" "full" "$(sqlite3 "$state" "select type from history order by id desc limit 1")"

incr i1
check_eq "a second incremental exits 0" 0 "$i1_rc"
check_contains "it is incremental" "$i1_out" "Incremental |"
# the watermark the full sync took covers the directory as it read it: no change since
check_contains "the watermark the full sync took leaves no change to read" "$i1_out" "Incremental | 0 changes since"
check_contains "nothing changed, nothing sent" "$i1_out" "Result | 0 added | 0 updated | 0 deleted | 0 failed"
check_eq "the history says incremental" "incremental" "$(sqlite3 "$state" "select type from history order by id desc limit 1")"

# ---- a user added (as a member of the security group), then modified, then disabled
emp=$(json "$M" "j['ous']['Employees']['dn']")
new_dn="CN=Incr Tester,$emp"
# add_user DN UPN SAM: an enabled user with a mail address
add_user() {
	local enabled="msDS-UserAccountDisabled: FALSE"
	[[ $kind == adds ]] && enabled="sAMAccountName: $3
userAccountControl: 544"
	ldap_modify "dn: $1
changetype: add
objectClass: user
userPrincipalName: $2
givenName: Incr
sn: Tester
displayName: Incr Tester
mail: $2
$enabled"
}
add_user "$new_dn" incr.tester@dirconn.test incrtester
# new_member DN UPN SAM NAME: a new user made a member of the security group, then the
# incremental NAME that adds it
new_member() {
	add_user "$1" "$2" "$3"
	ldap_modify "dn: $SG
changetype: modify
add: member
member: $1"
	incr "$4"
	local out=${4}_out
	check_contains "$4: the new member of the security group is added" "${!out}" "| 1 added |"
}
if [[ $kind == adds ]]; then
	disable="replace: userAccountControl
userAccountControl: 546"
else
	disable="replace: msDS-UserAccountDisabled
msDS-UserAccountDisabled: TRUE"
fi
ldap_modify "dn: $SG
changetype: modify
add: member
member: $new_dn"
incr a1
check_eq "the incremental after an addition exits 0" 0 "$a1_rc"
check_contains "the new user is added (and the group updated)" "$a1_out" "Result | 1 added | 1 updated | 0 deleted | 0 failed"
converged "an added user reaches the cloud"

ldap_modify "dn: $new_dn
changetype: modify
replace: displayName
displayName: Incr Tester Renamed
-
replace: givenName
givenName: Incremental"
# with debug lines, and the cloud's log of the requests it answered from here on
sed 's/^level = warn$/level = debug/' "$work/a.conf" >"$work/a-debug.conf"
mark=$(wc -l <"$work/cloud.log")
run_capture m1 dirconnctl sync --incremental --config "$work/a-debug.conf" --no-progress
check_contains "a modified user is updated" "$m1_out" "Result | 0 added | 1 updated | 0 deleted | 0 failed"
# the targeted inventory of one user the state knows: a GET by its cloud id, a filter by
# externalId and one by userName (pipelined), each answered once by the cloud
check_contains "the targeted inventory of one known user makes three lookups" "$m1_err" \
	"cloud: targeted inventory: 3 lookups for 1 touched objects in "
check_eq "the cloud answered three reads of resources" 3 \
	"$(tail -n +"$((mark + 1))" "$work/cloud.log" | grep -cE ' GET /scim/v2/acme/(Users|Groups|Contacts)(/[^ ]*)? [0-9]{3} ' || true)"
converged "a modified user reaches the cloud"

# ---- values set, then cleared in the directory: each cleared value leaves the cloud too
boss=$(LDAPTLS_CACERT=$LDSFX_CA_FILE ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
	-y "$LDSFX_BIND_PASSWORD_FILE" -b "$SG" -s base -LLL -o ldif-wrap=no member |
	sed -n 's/^member: \(.*Employees.*\)/\1/p' | sed -n 1p) # reads to the end: no SIGPIPE under pipefail
# department is mapped from AD DS only (docs/mapping.md)
dept_set= dept_clear= want_dept=None
if [[ $kind == adds ]]; then
	dept_set=$'replace: department\ndepartment: Quality\n-\n'
	dept_clear=$'delete: department\n-\n'
	want_dept=Quality
fi
ldap_modify "dn: $new_dn
changetype: modify
replace: title
title: Tester
-
${dept_set}replace: telephoneNumber
telephoneNumber: +1 555 0100
-
replace: manager
manager: $boss"
incr v1
check_contains "title, department, phone and manager set: one update" "$v1_out" "Result | 0 added | 1 updated | 0 deleted | 0 failed"
ENT=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User
tester() { cloud_admin GET "/scim/v2/acme/Users?filter=$(printf '%s' 'userName eq "incr.tester@dirconn.test"' | "$PY" -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.stdin.read()))')"; }
t_json=$(tester)
check_eq "the cloud has the title" "Tester" "$(json "$t_json" "j['Resources'][0].get('title')")"
check_eq "the cloud has the department (AD DS)" "$want_dept" "$(json "$t_json" "j['Resources'][0]['$ENT'].get('department')")"
check_eq "the cloud has the work phone" "+1 555 0100" \
	"$(json "$t_json" "[p['value'] for p in j['Resources'][0].get('phoneNumbers', []) if p.get('type') == 'work'][0]")"
check "the cloud has the manager" test -n "$(json "$t_json" "j['Resources'][0]['$ENT']['manager']['value']")"
ldap_modify "dn: $new_dn
changetype: modify
delete: title
-
${dept_clear}delete: telephoneNumber
-
delete: manager"
incr v2
check_contains "title, department, phone and manager cleared: one update" "$v2_out" "Result | 0 added | 1 updated | 0 deleted | 0 failed"
t_json=$(tester)
check_eq "the cleared title is gone from the cloud" "None" "$(json "$t_json" "j['Resources'][0].get('title')")"
check_eq "the cleared department and manager are gone from the cloud" "{}" \
	"$(json "$t_json" "{k: v for k, v in j['Resources'][0].get('$ENT', {}).items() if k in ('department', 'manager')}")"
check_eq "the cleared phone is gone from the cloud" "[]" \
	"$(json "$t_json" "[p for p in j['Resources'][0].get('phoneNumbers', []) if p.get('type') == 'work']")"
run_capture v3 dirconnctl sync --full --config "$work/a.conf" --no-progress
check_contains "a full sync afterwards has nothing to do" "$v3_out" "0 Objects Added | 0 Objects Updated"

ldap_modify "dn: $new_dn
changetype: modify
$disable"
incr d1
check_contains "a disabled user is updated" "$d1_out" "Result | 0 added | 1 updated | 0 deleted | 0 failed"
converged "a disabled user is inactive in the cloud"

# ---- moved within the scope: nothing to send, the recorded DN follows
svc=$(json "$M" "j['ous']['Service Accounts']['dn']")
ldap_modify "dn: $new_dn
changetype: modrdn
newrdn: CN=Incr Tester
deleteoldrdn: 1
newsuperior: $svc"
incr mv1
check_eq "a move within the scope exits 0" 0 "$mv1_rc"
check_eq "the recorded DN follows the move" 1 \
	"$(sqlite3 "$state" "select count(*) from objects where dn like 'CN=Incr Tester,OU=Service Accounts,%'")"
converged "a move within the scope keeps the cloud in step"
ldap_modify "dn: CN=Incr Tester,$svc
changetype: modrdn
newrdn: CN=Incr Tester
deleteoldrdn: 1
newsuperior: $emp"
incr mv2
converged "the move back keeps the cloud in step"

# ---- group membership: a member added to another group
grp=$(json "$M" "j['big_group']['dn']" 2>/dev/null || true)
[[ -n $grp ]] || grp=$SG
ldap_modify "dn: $grp
changetype: modify
add: member
member: $new_dn"
incr g1
check_eq "the incremental after a membership change exits 0" 0 "$g1_rc"
converged "a group membership change reaches the cloud"

# ---- a group read again: its members read and not sent by earlier runs (here: no mail address)
# are left out from the state (table unsent), not asked of the directory again
nomail_dn="CN=Incr Nomail,$emp"
nomail_enabled="msDS-UserAccountDisabled: FALSE"
[[ $kind == adds ]] && nomail_enabled="sAMAccountName: incrnomail
userAccountControl: 544"
ldap_modify "dn: $nomail_dn
changetype: add
objectClass: user
userPrincipalName: incr.nomail@dirconn.test
givenName: Incr
sn: Nomail
displayName: Incr Nomail
$nomail_enabled"
unsent_grp="CN=Incr Unsent,$emp"
unsent_ldif="dn: $unsent_grp
changetype: add
objectClass: group
groupType: -2147483646"
[[ $kind == adds ]] && unsent_ldif+=$'\nsAMAccountName: incrunsent'
ldap_modify "$unsent_ldif
member: $new_dn
member: $nomail_dn"
ldap_modify "dn: $SG
changetype: modify
add: member
member: $nomail_dn"
incr u1
check_eq "u1: the incremental exits 0" 0 "$u1_rc"
check_contains "u1: the user without mail is not sent" "${u1_err,,}" "the required attribute mail is missing when adding on-premises entry ${nomail_dn,,}"
check_eq "u1: it is recorded as not sent, by DN" 1 "$(sqlite3 "$state" "select count(*) from unsent where dn_lower like 'cn=incr nomail,%'")"
converged "u1: the new group reaches the cloud without the user it cannot send"
touch_unsent_grp() { # delete|add: a change of its member list, so that its members are resolved
	ldap_modify "dn: $unsent_grp
changetype: modify
$1: member
member: $new_dn"
}
# the directory reads are debug lines ("... searching 'DN'")
sed 's/^level = warn/level = debug/' "$work/a.conf" >"$work/a-debug.conf"
incr_debug() { run_capture "$1" dirconnctl sync --incremental --config "$work/a-debug.conf" --no-progress; }
touch_unsent_grp delete
incr_debug u2
check_contains "u2: the group is read again" "${u2_err,,}" "searching '${unsent_grp,,}'"
check_contains "u2: its member not sent is left out from the state" "$u2_err" "1 member or manager DNs left out without reading them"
check_not_contains "u2: that member is not read from the directory" "${u2_err,,}" "searching '${nomail_dn,,}'"
converged "u2: the member taken out of the group leaves it in the cloud"
# without the record (as after a migration), the member is read from the directory again
sqlite3 "$state" "delete from unsent"
touch_unsent_grp add
incr_debug u3
check_contains "u3: without the record the member is read from the directory" "${u3_err,,}" "searching '${nomail_dn,,}'"
check_not_contains "u3: and not left out from the state" "$u3_err" "left out without reading them"
converged "u3: the member put back reaches the cloud"
# the user gets a mail address: it is read, sent, and the group lists it
ldap_modify "dn: $nomail_dn
changetype: modify
replace: mail
mail: incr.nomail@dirconn.test"
incr u4
check_contains "u4: the user that got a mail address is added" "$u4_out" "| 1 added |"
check_eq "u4: it is no longer recorded as not sent" 0 "$(sqlite3 "$state" "select count(*) from unsent where dn_lower like 'cn=incr nomail,%'")"
converged "u4: the user and its group membership reach the cloud"

# ---- a user changed while in a naming conflict (two users with one mail address) is not sent:
# the groups that list it are not read again for it; when the conflict ends, both are added
# and the group lists them
twin() { # twin N MAIL: a user of the security group and of the group "Incr Unsent"
	local dn="CN=Incr Twin $1,$emp" extra="msDS-UserAccountDisabled: FALSE"
	[[ $kind == adds ]] && extra="sAMAccountName: incrtwin$1
userAccountControl: 544"
	ldap_modify "dn: $dn
changetype: add
objectClass: user
userPrincipalName: incr.twin$1@dirconn.test
givenName: Twin
sn: $1
displayName: Incr Twin $1
mail: $2
$extra"
	ldap_modify "dn: $SG
changetype: modify
add: member
member: $dn"
	ldap_modify "dn: $unsent_grp
changetype: modify
add: member
member: $dn"
}
twin 1 incr.twin@dirconn.test
twin 2 incr.twin@dirconn.test
incr c1
check_contains "c1: two users with one mail address are in a naming conflict" "$c1_out" "| 0 added |"
converged "c1: neither reaches the cloud"
ldap_modify "dn: CN=Incr Twin 1,$emp
changetype: modify
replace: displayName
displayName: Incr Twin One"
incr_debug c2
check_contains "c2: the changed user is read again" "${c2_err,,}" "searching 'cn=incr twin 1,${emp,,}'"
# its conflict partner is read again too (a conflict may end when one of them changes)
check_contains "c2: both are still in a naming conflict: their groups are not read again" "$c2_err" "2 objects read are in a naming conflict (not sent)"
check_not_contains "c2: the group that lists it is not read" "${c2_err,,}" "searching '${unsent_grp,,}'"
converged "c2: nothing to send"
ldap_modify "dn: CN=Incr Twin 2,$emp
changetype: modify
replace: mail
mail: incr.twin2@dirconn.test"
incr_debug c3
check_contains "c3: the conflict ended: both users are added" "$c3_out" "| 2 added |"
check_contains "c3: the group that lists them is read again" "${c3_err,,}" "searching '${unsent_grp,,}'"
converged "c3: both users and their group membership reach the cloud"

# ---- removed from the security group: out of scope, deleted in the cloud
ldap_modify "dn: $SG
changetype: modify
delete: member
member: $new_dn"
incr r1
check_contains "a user removed from the security group is deleted" "$r1_out" "| 1 deleted | 0 failed"
converged "removal from the security group reaches the cloud"

# ---- back in the security group, then moved out of scope (another base DN) by a filter change
ldap_modify "dn: $SG
changetype: modify
add: member
member: $new_dn"
incr b1
check_contains "back in the security group: added again" "$b1_out" "Result | 1 added |"
converged "re-adding to the security group reaches the cloud"

# moved out of scope: the object is renamed below an OU that the config does not read
svc=$(json "$M" "j['ous']['Service Accounts']['dn']")
sync_conf "$work/a.conf" conn-a "[users]
security_groups = $SG
base_dns = $emp"
incr s0
check_contains "a scope change forces a full sync" "$s0_out" "Running a full sync: the scope or the mapping changed"
run_capture chk chk --user-base "$emp"
echo "$chk_out" | grep -v '^ok' || true
check_eq "the full sync after the scope change converged" 0 "$chk_rc"
ldap_modify "dn: $new_dn
changetype: modrdn
newrdn: CN=Incr Tester
deleteoldrdn: 1
newsuperior: $svc"
moved_dn="CN=Incr Tester,$svc"
incr o1
check_contains "a user moved out of scope is deleted" "$o1_out" "| 1 deleted | 0 failed"
run_capture chk chk --user-base "$emp"
echo "$chk_out" | grep -v '^ok' || true
check_eq "moving out of scope reaches the cloud" 0 "$chk_rc"
ldap_modify "dn: $moved_dn
changetype: modrdn
newrdn: CN=Incr Tester
deleteoldrdn: 1
newsuperior: $emp"
sync_conf "$work/a.conf" conn-a "[users]
security_groups = $SG"
incr s1
check_contains "the old scope back: a full sync again" "$s1_out" "Running a full sync"
converged "the object moved back is in the cloud"

# ---- deleted in the directory
ldap_modify "dn: $new_dn
changetype: delete"
incr x1
check_contains "a deleted user is deleted in the cloud" "$x1_out" "| 1 deleted | 0 failed"
converged "a deletion reaches the cloud"

# ---- the state behind the cloud: an active that stopped after its SCIM writes and before it
# shared its state, as a kill -9 of an HA group's active does (played here by restoring the
# local and the shared state of before): a user it created, then deleted in the directory, is
# deleted by the next incremental, whose state never knew it
sqlite3 "$state" ".backup '$work/state.bak'"
cloud_admin GET /v1/orgs/acme/state >"$work/shared.bak"
bk_dn="CN=Backup Tester,$emp"
new_member "$bk_dn" backup.tester@dirconn.test backuptester b1
check_eq "the cloud holds it" 1 "$(sync_cloud_count 'userName eq "backup.tester@dirconn.test"')"
known() { sqlite3 "$state" "select count(*) from objects where dn like 'cn=backup tester,%'"; }
check_eq "the state knows it" 1 "$(known)"
sqlite3 "$state" ".restore '$work/state.bak'"
check_eq "the restored state does not know it" 0 "$(known)"
check_eq "the shared state of before is put back" 200 "$(curl -sS --cacert "$work/cloud-ca.pem" -X PUT \
	-H "Authorization: Bearer $(cat "$work/admin.token")" -H 'If-Match: *' -H 'Content-Type: application/json' \
	--data-binary @"$work/shared.bak" -o /dev/null -w '%{http_code}' "$CLOUD_URL/v1/orgs/acme/state")"
ldap_modify "dn: $bk_dn
changetype: delete"
incr b2
check_eq "the incremental on the restored state exits 0" 0 "$b2_rc"
check_eq "it goes on from the shared state it finds (no object map rebuild)" 0 "$(grep -c "Object map rebuilt" <<<"$b2_out")"
check_contains "the user the state never knew is deleted in the cloud" "$b2_out" "| 1 deleted | 0 failed"
check_eq "the cloud no longer holds it" 0 "$(sync_cloud_count 'userName eq "backup.tester@dirconn.test"')"
converged "the cloud equals the directory after the incremental on the restored state"

# ---- the local state alone restored: the object map is rebuilt from the cloud inventory and
# the security group's record, changed since by the cloud copy, is reset; a member then taken out
# of it is deleted in the cloud by a full sync (who the members were is not known otherwise)
sqlite3 "$state" ".backup '$work/state.bak'"
rb_dn="CN=Rebuild Tester,$emp"
new_member "$rb_dn" rebuild.tester@dirconn.test rebuildtester r1
sqlite3 "$state" ".restore '$work/state.bak'"
incr r2
check_contains "the local state alone restored: the object map is rebuilt" "$r2_out" "Object map rebuilt from the cloud inventory"
ldap_modify "dn: $SG
changetype: modify
delete: member
member: $rb_dn"
incr r3
check_eq "the incremental after the rebuild exits 0" 0 "$r3_rc"
check_contains "the security group without a record: a full sync, and why" "$r3_out" "Running a full sync: the security group"
check_contains "the member taken out of it is deleted" "$r3_out" "| 1 deleted | 0 failed"
check_eq "the cloud no longer holds it" 0 "$(sync_cloud_count 'userName eq "rebuild.tester@dirconn.test"')"
converged "the cloud equals the directory after a member left the security group"

# ---- the delete threshold applies to incremental syncs too
# 30 members out of the security group: more than 20 of them are in the cloud
mapfile -t victims < <(LDAPTLS_CACERT=$LDSFX_CA_FILE ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
	-y "$LDSFX_BIND_PASSWORD_FILE" -b "$SG" -s base -LLL -o ldif-wrap=no member | sed -n 's/^member: \(.*Employees.*\)/\1/p' | head -30)
check_eq "30 members of the security group were found" 30 "${#victims[@]}"
{
	printf 'dn: %s\nchangetype: modify\ndelete: member\n' "$SG"
	for dn in "${victims[@]}"; do printf 'member: %s\n' "$dn"; done
} >"$work/remove21.ldif"
LDAPTLS_CACERT=$LDSFX_CA_FILE ldapmodify -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" \
	-f "$work/remove21.ldif" >/dev/null
wm_before=$(sqlite3 "$state" "select hex(value) from watermarks")
run_capture t1 dirconnctl sync --incremental --config "$work/a.conf" --no-progress
check_eq "more than 20 deletions stop the incremental: exit 40" 40 "$t1_rc"
check_contains "the error says so" "$t1_err" "Delete threshold (20 objects) exceeded"
check_eq "the watermark did not move" "$wm_before" "$(sqlite3 "$state" "select hex(value) from watermarks")"
run_capture t2 dirconnctl sync --incremental --config "$work/a.conf" --no-progress --override-threshold
check_eq "the override lets it through" 0 "$t2_rc"
check_contains "the users are deleted" "$t2_out" "(override used for this run)"
converged "the cloud matches after the override"

# ---- the cloud down: the incremental fails, the watermark stays, nothing is lost
ldap_modify "dn: ${victims[0]}
changetype: modify
replace: displayName
displayName: Changed While The Cloud Was Down"
ldap_modify "dn: $SG
changetype: modify
add: member
member: ${victims[1]}"
wm_before=$(sqlite3 "$state" "select hex(value) from watermarks")
sync_cloud_stop
incr c1
check "the incremental with the cloud down fails" test "$c1_rc" -ne 0
check_eq "the watermark did not move" "$wm_before" "$(sqlite3 "$state" "select hex(value) from watermarks")"
sync_cloud_start
incr c2
check_eq "the next incremental exits 0" 0 "$c2_rc"
converged "the change made during the outage reached the cloud"

# ---- per-object failures are retried; the watermark moves past them
cloud_admin PUT /v1/faults '{"error500": 1.0, "writesOnly": true, "scimOnly": true}' >/dev/null
ldap_modify "dn: ${victims[1]}
changetype: modify
replace: displayName
displayName: Refused By The Cloud"
incr f1
check_eq "refused writes fail the run: exit 1" 1 "$f1_rc"
check_eq "the refused object is recorded for retry" 1 "$(sqlite3 "$state" "select count(*) from retry")"
cloud_admin PUT /v1/faults '{"error500": 0, "writesOnly": false, "scimOnly": false}' >/dev/null
incr f2
check_eq "the retry run exits 0" 0 "$f2_rc"
check_eq "nothing is left to retry" 0 "$(sqlite3 "$state" "select count(*) from retry")"
converged "the refused change reached the cloud on retry"

# ---- a watermark of another method (forced in the config) means a full sync
if [[ $kind == adds ]]; then
	sync_conf "$work/a.conf" conn-a "[users]
security_groups = $SG
[ldap]
change_tracking = usn"
	incr u0
	check_contains "a new method needs a full sync" "$u0_out" "Running a full sync: the change tracking method changed"
	check_eq "the watermark is a USN now" "usn" "$(sqlite3 "$state" "select method from watermarks")"
	# victims[1] is back in the security group and in the cloud
	ldap_modify "dn: ${victims[1]}
changetype: modify
replace: displayName
displayName: Changed Under USN"
	incr u1
	check_contains "uSNChanged polling is incremental" "$u1_out" "Incremental |"
	check_contains "and finds the change" "$u1_out" "Result | 0 added | 1 updated"
	ldap_modify "dn: ${victims[1]}
changetype: delete"
	incr u2
	check_contains "a deletion is found through Show Deleted" "$u2_out" "| 1 deleted | 0 failed"
	converged "uSNChanged polling converged"
	sqlite3 "$state" "update watermarks set invocation_id = '00000000-0000-0000-0000-000000000000'"
	incr u3
	check_contains "another invocationId discards the watermark" "$u3_out" "Running a full sync: the DC's invocationId changed"
fi

finish
