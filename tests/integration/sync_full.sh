# Integration test of the full sync against a real directory fixture and the
# reference cloud over HTTPS.
#   bash sync_full.sh adds|adlds
# Each result is checked against the directory itself (sync_check.py reads it
# with libldap) and the cloud (read with the admin token), not against
# dirconn's own view.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"
kind=${1:?usage: sync_full.sh adds|adlds}

sync_test_begin sync "$kind"
M=$LDSFX_MANIFEST
sync_cloud_start
sync_register conn-a
USER_SCHEMA='"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]'
count_users() { json "$(cloud_admin GET '/scim/v2/acme/Users?count=1')" "j['totalResults']"; }

# A cloud user made by hand before the first sync, with a directory user's email in upper case.
hand_mail=$(json "$M" "j['samples'][0]['mail']")
hand_dn=$(json "$M" "j['samples'][0]['dn']")
hand=$(cloud_admin POST /scim/v2/acme/Users "{$USER_SCHEMA, \"userName\": \"$(upper "$hand_mail")\"}")
check_eq "a cloud user is created by hand" 201 "$(admin_status)"
hand_id=$(json "$hand" "j['id']")

avatar='https://photos.example.com/dir/{mail:.*?(?=@.*)}.jpg'
sync_conf "$work/a.conf" conn-a "[users]
filter = (!(description=out-of-scope))
[avatar]
enabled = yes
pattern = $avatar"

# ---- dry run: the plan, the report, and nothing changed
run_capture d dirconnctl dry-run --config "$work/a.conf" --report "$work/dry.json"
check_eq "dry-run exits 0" 0 "$d_rc"
check_contains "dry-run prints the summary" "$d_out" "Summary | 0 Admins Deleted | 0 Users Deleted | 0 Groups Deleted |"
check_contains "dry-run tells the delete threshold" "$d_out" "Delete threshold (20 objects) not exceeded"
added=$(json "$work/dry.json" "j['summary']['objectsAdded']")
check "the report lists the objects to add" test "$added" -gt 200
check_eq "the report lists the adopted user as an update" "$(lower "$hand_dn")" \
	"$(json "$work/dry.json" "[o['dn'].lower() for o in j['objects']['updated']][0]")"
check_eq "the dry run changed nothing in the cloud" 1 "$(count_users)"
run_capture dc dirconnctl dry-run --config "$work/a.conf" --report "$work/dry.csv"
check_eq "a CSV report is written" '"category","kind","dn","name","externalId","cloudId","details"' \
	"$(head -1 "$work/dry.csv" | tr -d '\r')"

# ---- the first full sync
run_capture s1 dirconnctl sync --full --config "$work/a.conf"
check_eq "the first full sync exits 0" 0 "$s1_rc"
check_contains "the sync prints its result" "$s1_out" "Result | $((added)) added | 1 updated | 0 deleted | 0 failed"
run_capture chk sync_check --avatar 'https://photos.example.com/dir/{local-part}.jpg'
echo "$chk_out" | grep -v '^ok' || true
check_eq "the cloud holds exactly the directory's objects in scope, mapped" 0 "$chk_rc"
adopted=$(cloud_admin GET "/scim/v2/acme/Users/$hand_id")
check_eq "the hand-made user was adopted, not recreated" "$(json "$M" "j['samples'][0]['mail']")" "$(json "$adopted" "j['userName']")"
check "the adopted user carries the directory's externalId" test -n "$(json "$adopted" "j.get('externalId','')")"

reports=$(cloud_admin GET "/v1/orgs/acme/connectors/$(cat "$work/conn-a.id")/reports?limit=5")
check_eq "the sync posted its report to the control API" "full $added" \
	"$(json "$reports" "j['reports'][0]['type'] + ' ' + str(j['reports'][0]['counts']['added'])")"
check_eq "the dry runs were reported too" "dry-run" "$(json "$reports" "j['reports'][1]['type']")"

run_capture s2 dirconnctl sync --full --config "$work/a.conf"
check_eq "a second sync exits 0" 0 "$s2_rc"
check_contains "a second sync changes nothing" "$s2_out" "Result | 0 added | 0 updated | 0 deleted | 0 failed"
check_contains "everything matched" "$s2_out" "0 Objects Added | 0 Objects Updated | $((added + 1)) Objects Matched"

# ---- raw hashes: a no-change full sync maps no entry it mapped before and writes nothing; a
#      changed entry, a changed group membership, a changed configuration and a manager renamed
#      (the reports' records depend on its DN) are each mapped or relinked again
state=$work/state-conn-a/state.db
sed 's/^level = warn$/level = info/' "$work/a.conf" >"$work/a-info.conf" # [log] is outside raw hashes
# scim_writes_since LINE: the connector's SCIM writes the cloud logged after that line of its log
scim_writes_since() {
	tail -n +"$(($1 + 1))" "$work/cloud.log" | grep -v 'connector=admin' |
		grep -cE '(^| )(POST|PUT|PATCH|DELETE) [^ ]*/scim/v2/[^ ]*/(Users|Groups|Contacts|Bulk)' || true
}
skipped_of() { grep -o '[0-9]* directory objects skipped by raw hash' <<<"$1" | grep -o '^[0-9]*' || echo none; }
raw_valid() { sqlite3 "$state" "select count(*) from objects where raw_hash is not null and raw_for = hash"; }
mark=$(wc -l <"$work/cloud.log")
run_capture r1 dirconnctl sync --full --config "$work/a-info.conf"
check_eq "a no-change sync exits 0" 0 "$r1_rc"
r1_skipped=$(skipped_of "$r1_err")
check "it skips the objects it mapped before by raw hash ($r1_skipped)" test "$r1_skipped" != none -a "$r1_skipped" -gt 200
check_eq "every object with a raw hash is skipped" "$(raw_valid)" "$r1_skipped"
check_contains "and all of them matched without their record" "$r1_err" "$r1_skipped of them matched without building their record"
check_contains "it changes nothing" "$r1_out" "Result | 0 added | 0 updated | 0 deleted | 0 failed"
check_eq "it made no SCIM write" 0 "$(scim_writes_since "$mark")"

# one user's attribute, and a member added to a group
edit3_dn=$(json "$M" "j['samples'][3]['dn']")
SGR=$(json "$M" "j['cloud_users']['dn']")
# first_entry FILTER ATTR...: the first entry found, as LDIF (one entry: the size limit is 1)
first_entry() {
	LDAPTLS_CACERT=$LDSFX_CA_FILE ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
		-y "$LDSFX_BIND_PASSWORD_FILE" -b "$LDSFX_BASE_DN" -LLL -o ldif-wrap=no -z 1 "$@" 2>/dev/null || true
}
joiner=$(first_entry "(&(objectClass=user)(mail=*)(!(memberOf=$SGR)))" 1.1 | "$PY" -c '
import sys, ldif
r = ldif.LDIFRecordList(sys.stdin.buffer); r.parse()
print(r.all_records[0][0])')
ldap_modify "dn: $edit3_dn
changetype: modify
replace: title
title: Raw Hash Tester

dn: $SGR
changetype: modify
add: member
member: $joiner"
run_capture r2 dirconnctl sync --full --config "$work/a-info.conf"
check_eq "the sync after an edit and a new member exits 0" 0 "$r2_rc"
r2_skipped=$(skipped_of "$r2_err")
check "the edited user and the group are mapped again ($r2_skipped of $r1_skipped skipped)" \
	test "$r2_skipped" != none -a "$r2_skipped" -lt "$r1_skipped" -a "$r2_skipped" -gt $((r1_skipped - 10))
run_capture chk sync_check --all-attributes
echo "$chk_out" | grep -v '^ok' || true
check_eq "the edit and the new member reached the cloud" 0 "$chk_rc"

# a changed configuration (the avatar pattern) voids every raw hash: every user gets the new URI
sed 's#photos\.example\.com#photos2.example.com#' "$work/a-info.conf" >"$work/a-avatar.conf"
mark=$(wc -l <"$work/cloud.log")
run_capture r3 dirconnctl sync --full --config "$work/a-avatar.conf"
check_eq "the sync after a configuration change exits 0" 0 "$r3_rc"
check_eq "no object is skipped under a new configuration" 0 "$(skipped_of "$r3_err")"
check "the users are updated" test "$(scim_writes_since "$mark")" -gt 0
run_capture chk sync_check --all-attributes --avatar 'https://photos2.example.com/dir/{local-part}.jpg'
echo "$chk_out" | grep -v '^ok' || true
check_eq "every user has the new photo URI" 0 "$chk_rc"
run_capture r4 dirconnctl sync --full --config "$work/a-avatar.conf"
check "the next sync skips by raw hash again" test "$(skipped_of "$r4_err")" -ge "$r1_skipped"
check_contains "and changes nothing" "$r4_out" "Result | 0 added | 0 updated | 0 deleted | 0 failed"

# the manager of some users renamed (a new RDN): on slapd their manager values still name the
# old DN (no referential integrity for manager), on AD DS they follow; either way their records
# change although (slapd) their entries do not
boss_dn=$(first_entry "(&(objectClass=user)(manager=*)(mail=*))" manager | "$PY" -c '
import sys, ldif
r = ldif.LDIFRecordList(sys.stdin.buffer); r.parse()
print(r.all_records[0][1]["manager"][0].decode())')
ldap_modify "dn: $boss_dn
changetype: modrdn
newrdn: CN=Renamed Raw Boss
deleteoldrdn: 1"
mark=$(wc -l <"$work/cloud.log")
run_capture r5 dirconnctl sync --full --config "$work/a-avatar.conf"
check_eq "the sync after the manager's rename exits 0" 0 "$r5_rc"
if [[ $kind == adds ]]; then
	# AD DS moved the reports' manager values to the new DN: their entries changed, so they are
	# mapped again, and their records (the manager's cloud id) stay as they were
	check "the reports are mapped again, not skipped ($(skipped_of "$r5_err") < $(skipped_of "$r4_err"))" \
		test "$(skipped_of "$r5_err")" -lt "$(skipped_of "$r4_err")"
	check_eq "their records are the same: no SCIM write" 0 "$(scim_writes_since "$mark")"
else
	check "the reports' records changed ($(scim_writes_since "$mark") writes)" test "$(scim_writes_since "$mark")" -gt 0
fi
run_capture chk sync_check --all-attributes --avatar 'https://photos2.example.com/dir/{local-part}.jpg'
echo "$chk_out" | grep -v '^ok' || true
check_eq "the managers in the cloud follow the directory after the rename" 0 "$chk_rc"
# the manager gets its name back: the steps below name the samples by their DNs
boss_rdn=$("$PY" -c 'import sys, ldap.dn; print(ldap.dn.explode_dn(sys.argv[1])[0])' "$boss_dn")
boss_parent=$("$PY" -c 'import sys, ldap.dn; print(",".join(ldap.dn.explode_dn(sys.argv[1])[1:]))' "$boss_dn")
ldap_modify "dn: CN=Renamed Raw Boss,$boss_parent
changetype: modrdn
newrdn: $boss_rdn
deleteoldrdn: 1"

# ---- directory changes: an edit, a disable, a deletion
edit_dn=$(json "$M" "j['samples'][1]['dn']")
gone_dn=$(json "$M" "j['samples'][2]['dn']")
if [[ $kind == adds ]]; then disable="replace: userAccountControl
userAccountControl: 514"; else disable="replace: msDS-UserAccountDisabled
msDS-UserAccountDisabled: TRUE"; fi
ldap_modify "dn: $edit_dn
changetype: modify
replace: displayName
displayName: Renamed By Test
-
$disable

dn: $gone_dn
changetype: delete"
run_capture s3 dirconnctl sync --full --config "$work/a.conf" --report "$work/s3.json"
check_eq "the sync after directory changes exits 0" 0 "$s3_rc"
check_contains "the deletion is applied" "$s3_out" "| 1 deleted | 0 failed"
check_contains "the summary counts the deleted user" "$s3_out" "| 1 Users Deleted |"
run_capture chk sync_check
echo "$chk_out" | grep -v '^ok' || true
check_eq "edits, disables and deletions reached the cloud" 0 "$chk_rc"
uri_filter() { "$PY" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }
edited=$(cloud_admin GET "/scim/v2/acme/Users?filter=$(uri_filter 'displayName eq "Renamed By Test"')")
check_eq "the disabled user is inactive, not deleted" False "$(json "$edited" "j['Resources'][0]['active']")"

# ---- a changed mail renames the cloud user; a filter takes a user out of scope; a value
#      with a control character is reported and does not break the batch
# pick_user N: "cloud-id mail dn" of the Nth synchronised user (not the hand-made one).
pick_user() {
	local page id mail dn
	page=$(cloud_admin GET "/scim/v2/acme/Users?filter=$(uri_filter 'externalId pr')&count=60&attributes=id,userName")
	id=$(json "$page" "[r['id'] for r in j['Resources'] if r['id'] != '$hand_id'][$1]")
	mail=$(json "$page" "[r['userName'] for r in j['Resources'] if r['id'] == '$id'][0]")
	dn=$(LDAPTLS_CACERT=$LDSFX_CA_FILE ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
		-y "$LDSFX_BIND_PASSWORD_FILE" -b "$LDSFX_BASE_DN" -LLL -o ldif-wrap=no "(mail=$mail)" 1.1 | "$PY" -c '
import sys, ldif
r = ldif.LDIFRecordList(sys.stdin.buffer); r.parse()
print(r.all_records[0][0])')
	printf '%s\t%s\t%s\n' "$id" "$mail" "$dn"
}
IFS=$'\t' read -r ren_id ren_mail ren_dn < <(pick_user 10)
IFS=$'\t' read -r out_id out_mail out_dn < <(pick_user 11)
IFS=$'\t' read -r _ _ big_dn < <(pick_user 12)
bad_title=$(printf 'Chief\aOfficer' | base64)
ldap_modify "dn: $ren_dn
changetype: modify
replace: mail
mail: renamed.$ren_mail

dn: $out_dn
changetype: modify
replace: description
description: out-of-scope

dn: $big_dn
changetype: modify
replace: title
title:: $bad_title"
run_capture s4 dirconnctl sync --full --config "$work/a.conf"
check_eq "the sync after a rename, a scope change and a control character exits 0" 0 "$s4_rc"
check_contains "the control character is reported" "$s4_err" "the attribute title has the following invalid value"
check_eq "the changed mail renamed the same cloud user" "renamed.$ren_mail" \
	"$(json "$(cloud_admin GET "/scim/v2/acme/Users/$ren_id")" "j['userName']")"
cloud_admin GET "/scim/v2/acme/Users/$out_id" >/dev/null
check_eq "the user the filter took out of scope is deleted from the cloud" 404 "$(admin_status)"
run_capture chk sync_check --out-of-scope-description out-of-scope
echo "$chk_out" | grep -v '^ok' || true
check_eq "the cloud matches the directory after rename, scope change and a bad value" 0 "$chk_rc"

# ---- the delete threshold: 21 deletions stop the sync before any change
# (21 users in scope: the user the filter took out above may be one of the first in the OU)
ou=$(json "$M" "j['ous']['Contractors']['dn']")
mapfile -t victims < <(LDAPTLS_CACERT=$LDSFX_CA_FILE ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
	-y "$LDSFX_BIND_PASSWORD_FILE" -b "$ou" -E pr=500/noprompt -LLL -o ldif-wrap=no \
	'(&(objectClass=user)(mail=*)(!(description=out-of-scope)))' 1.1 | "$PY" -c '
import sys, ldif
r = ldif.LDIFRecordList(sys.stdin.buffer); r.parse()
for dn, _ in r.all_records[:21]: print(dn)')
check_eq "21 users to delete were found" 21 "${#victims[@]}"
for dn in "${victims[@]}"; do printf 'dn: %s\nchangetype: delete\n\n' "$dn"; done >"$work/delete21.ldif"
LDAPTLS_CACERT=$LDSFX_CA_FILE ldapmodify -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" \
	-f "$work/delete21.ldif" >/dev/null
before=$(count_users)
run_capture t1 dirconnctl sync --full --config "$work/a.conf"
check_eq "21 deletions stop the sync: exit 40" 40 "$t1_rc"
check_contains "the error says how many would be deleted" "$t1_err" "Delete threshold (20 objects) exceeded: 21 objects would be deleted; nothing was changed"
check_eq "nothing was deleted in the cloud" "$before" "$(count_users)"
reports=$(cloud_admin GET "/v1/orgs/acme/connectors/$(cat "$work/conn-a.id")/reports?limit=1")
check_eq "the threshold event was reported" "delete 21 20 aborted" \
	"$(json "$reports" "' '.join(str(v) for v in j['reports'][0]['thresholdEvents'][0].values())")"
run_capture t2 dirconnctl dry-run --config "$work/a.conf"
check_contains "dry-run says the threshold would be exceeded" "$t2_out" "Delete threshold (20 objects) exceeded. 21 objects would be deleted"
run_capture t3 dirconnctl sync --full --config "$work/a.conf" --override-threshold
check_eq "the override lets the sync through" 0 "$t3_rc"
check_contains "the override is shown" "$t3_out" "(override used for this run)"
check_eq "the 21 users are gone from the cloud" "$((before - 21))" "$(count_users)"
run_capture t4 dirconnctl dry-run --config "$work/a.conf"
check_contains "the next summary notes the override" "$t4_out" "Note: the delete threshold was overridden"
run_capture t5 dirconnctl sync --full --config "$work/a.conf"
check_eq "the override was for one run only (nothing left to delete)" 0 "$t5_rc"

# ---- cloud administrators are never deleted
# Pick a synchronised user with an email, and find its entry in the directory.
pick=$(cloud_admin GET "/scim/v2/acme/Users?filter=$(uri_filter 'externalId pr')&count=50&attributes=id,userName")
aid=$(json "$pick" "[r['id'] for r in j['Resources'] if r['id'] != '$hand_id'][5]")
admin_mail=$(json "$pick" "[r['userName'] for r in j['Resources'] if r['id'] == '$aid'][0]")
admin_dn=$(LDAPTLS_CACERT=$LDSFX_CA_FILE ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
	-y "$LDSFX_BIND_PASSWORD_FILE" -b "$LDSFX_BASE_DN" -LLL -o ldif-wrap=no "(mail=$admin_mail)" 1.1 | "$PY" -c '
import sys, ldif
r = ldif.LDIFRecordList(sys.stdin.buffer); r.parse()
print(r.all_records[0][0])')
cloud_admin PATCH "/scim/v2/acme/Users/$aid" '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"roles","value":[{"value":"admin"}]}]}' >/dev/null
check_eq "a synced user is made a cloud administrator" 200 "$(admin_status)"
admin_ext=$(json "$(cloud_admin GET "/scim/v2/acme/Users/$aid")" "j['externalId']")
ldap_modify "dn: $admin_dn
changetype: delete"
run_capture p1 dirconnctl sync --full --config "$work/a.conf"
check_eq "the sync with an administrator out of scope exits 0" 0 "$p1_rc"
check_contains "the administrator is reported, not deleted" "$p1_out" "1 admin objects would have been deleted, but were not"
cloud_admin GET "/scim/v2/acme/Users/$aid" >/dev/null
check_eq "the administrator is still in the cloud" 200 "$(admin_status)"
run_capture chk sync_check --protected "$admin_ext" --out-of-scope-description out-of-scope
check_eq "the cloud still matches the directory" 0 "$chk_rc"

# ---- security-group scoping: only direct members of "Cloud Users" are users in scope
sync_cloud_stop
rm -f "$work"/cloud.db*
sync_cloud_start
sync_register conn-d
cu_dn=$(json "$M" "j['cloud_users']['dn']")
sync_conf "$work/d.conf" conn-d "[users]
security_groups = $cu_dn"
run_capture g1 dirconnctl sync --full --config "$work/d.conf"
check_eq "a sync scoped by a security group exits 0" 0 "$g1_rc"
run_capture chk sync_check --member-of "$cu_dn"
echo "$chk_out" | grep -v '^ok' || true
check_eq "only the group's direct members are users in the cloud; nested groups are not expanded" 0 "$chk_rc"
sync_cloud_stop
rm -f "$work"/cloud.db*
sync_cloud_start

# ---- an unreachable cloud fails the sync and leaves the state as it was
objects_before=$(sqlite3 "$work/state-conn-a/state.db" 'select count(*), sum(length(record)) from objects')
sed "s|^url = .*|url = https://127.0.0.1:1|" "$work/a.conf" >"$work/down.conf"
run_capture u1 dirconnctl sync --full --config "$work/down.conf"
check_eq "an unreachable cloud fails the sync: exit 30" 30 "$u1_rc"
check_contains "the error names the cloud" "$u1_err" "https://127.0.0.1:1/oauth/token"
check_eq "the state is unchanged" "$objects_before" \
	"$(sqlite3 "$work/state-conn-a/state.db" 'select count(*), sum(length(record)) from objects')"

# ---- kill -9 during a full sync, then a rerun converges
sync_cloud_stop
rm -f "$work"/cloud.db*
sync_cloud_start --fault-latency 20ms
sync_register conn-b
sync_conf "$work/b.conf" conn-b
dirconnctl sync --full --config "$work/b.conf" --no-progress >/dev/null 2>&1 &
sync_pid=$!
# kill it once the cloud holds some of its users (a cloud counter, not a fixed delay)
some_users_written() { (($(count_users) > 5)); }
check "the sync writes users into the cloud" wait_until 300 some_users_written
check "the sync was still running when killed" kill -9 "$sync_pid"
wait "$sync_pid" 2>/dev/null || true
partial=$(count_users)
check "the killed sync had written part of the directory ($partial users)" test "$partial" -gt 0
sync_cloud_stop
sync_cloud_start
run_capture k1 dirconnctl sync --full --config "$work/b.conf"
check_eq "the rerun after kill -9 exits 0" 0 "$k1_rc"
run_capture chk sync_check
echo "$chk_out" | grep -v '^ok' || true
check_eq "the rerun converged: no loss, no duplicate" 0 "$chk_rc"

# ---- 429 and 503 from the cloud, answers lost after applying: nothing lost, nothing doubled
sync_cloud_stop
rm -f "$work"/cloud.db*
sync_cloud_start --fault-503 0.1 --fault-429-rps 200 --fault-retry-after 1 --fault-500-after 0.03 --fault-seed 4533
sync_register conn-c
sync_conf "$work/c.conf" conn-c
run_capture f1 dirconnctl sync --full --config "$work/c.conf"
check_eq "a sync through throttling and failures exits 0" 0 "$f1_rc"
check "the cloud did throttle and fail requests" grep -qE ' (429|503|500) ' "$work/cloud.log"
run_capture chk sync_check
echo "$chk_out" | grep -v '^ok' || true
check_eq "nothing lost, nothing duplicated under faults" 0 "$chk_rc"
run_capture f2 dirconnctl sync --full --config "$work/c.conf"
check_contains "and the next sync has nothing to do" "$f2_out" "0 Objects Added | 0 Objects Updated"

finish
