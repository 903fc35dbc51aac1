# Integration test of an incremental sync whose RFC 4533 refresh runs a present phase (the slapd
# AD LDS fixture with a session log of one operation, LDSFX_SESSIONLOG=1, so a cookie two
# deletions old is out of its reach) on a state behind the cloud: an active that stopped after
# its SCIM writes and before it shared its state, as a kill -9 of an HA group's active does,
# played by restoring the local and the shared state of before. A user it created that the
# directory then deleted is neither in the state nor in the present list: the incremental
# deletes it with the user the state knew, and the cloud equals the directory.
# The full sync before it takes its watermark with a refresh that asks for no entry (the cookie
# only).
#   bash sync_present.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"

export LDSFX_SESSIONLOG=1
sync_test_begin present adlds
unset LDSFX_SESSIONLOG
check "the fixture's session log is one operation" grep -qx 'syncprov-sessionlog 1' "$work/fx/slapd.conf"
sync_cloud_start
sync_register conn-a
sync_conf "$work/a.conf" conn-a
sed -i 's/^level = warn$/level = debug/' "$work/a.conf"
state=$work/state-conn-a/state.db
incr() { run_capture "$1" dirconnctl sync --incremental --config "$work/a.conf" --no-progress; }
converged() {
	run_capture chk sync_check
	echo "$chk_out" | grep -v '^ok' || true
	check_eq "$1" 0 "$chk_rc"
}
count() { sync_cloud_count "userName eq \"$1\""; }

incr i0
check_eq "the first incremental (a full sync) exits 0" 0 "$i0_rc"
converged "the full sync brought the cloud to the directory"
check_contains "the full sync takes its watermark without reading the directory twice" "$i0_err" \
	"directory read: 0 changes, 0 bytes (DNs, attribute descriptions and values) of syncrepl"

# a user the state knows, deleted later with the other
emp=$(json "$LDSFX_MANIFEST" "j['ous']['Employees']['dn']")
add_user() {
	ldap_modify "dn: CN=$1,$emp
changetype: add
objectClass: user
userPrincipalName: $2
givenName: Present
sn: Tester
displayName: $1
mail: $2
msDS-UserAccountDisabled: FALSE"
}
add_user "Known Tester" known.tester@dirconn.test
incr i1
check_contains "a user added is added" "$i1_out" "| 1 added |"

# the state of before: the local copy and the shared one in the cloud
sqlite3 "$state" ".backup '$work/state.bak'"
cloud_admin GET /v1/orgs/acme/state >"$work/shared.bak"
add_user "Unknown Tester" unknown.tester@dirconn.test
incr b1
check_contains "a user created after the copy of the state is added" "$b1_out" "| 1 added |"
check_eq "the cloud holds it" 1 "$(count unknown.tester@dirconn.test)"
sqlite3 "$state" ".restore '$work/state.bak'"
check_eq "the restored state does not know it" 0 \
	"$(sqlite3 "$state" "select count(*) from objects where dn like 'cn=unknown tester,%'")"
check_eq "the shared state of before is put back" 200 "$(curl -sS --cacert "$work/cloud-ca.pem" -X PUT \
	-H "Authorization: Bearer $(cat "$work/admin.token")" -H 'If-Match: *' -H 'Content-Type: application/json' \
	--data-binary @"$work/shared.bak" -o /dev/null -w '%{http_code}' "$CLOUD_URL/v1/orgs/acme/state")"

# two deletions: the session log keeps the last one only
ldap_modify "dn: CN=Unknown Tester,$emp
changetype: delete"
ldap_modify "dn: CN=Known Tester,$emp
changetype: delete"
incr b2
check_eq "the incremental exits 0" 0 "$b2_rc"
check_eq "it goes on from the shared state it finds (no object map rebuild)" 0 "$(grep -c "Object map rebuilt" <<<"$b2_out")"
check_contains "the refresh ran a present phase" "$b2_err" "syncrepl: present phase"
check_contains "the cloud user neither known nor present is found" "$b2_err" \
	"present phase: 1 cloud object with this directory's externalIds neither in the state nor present in the directory: deleted"
check_contains "both users are deleted" "$b2_out" "| 2 deleted | 0 failed"
check_eq "the cloud no longer holds the user the state never knew" 0 "$(count unknown.tester@dirconn.test)"
check_eq "nor the other" 0 "$(count known.tester@dirconn.test)"
converged "the cloud equals the directory"

incr n1
check_contains "the next incremental has nothing to do" "$n1_out" "Result | 0 added | 0 updated | 0 deleted | 0 failed"
finish
