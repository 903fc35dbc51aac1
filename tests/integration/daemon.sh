# Integration test of dirconnd against a real directory fixture and the reference cloud:
# changes reach the cloud by themselves (notifications, the incremental timer), SIGHUP with
# a bad configuration keeps the old one, kill -9 during an incremental and a cloud outage
# lose nothing, SIGTERM exits cleanly.
#   bash daemon.sh adds|adlds
# CLOUD_DOWN_SECONDS (default 60) is how long the cloud stays down.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"
kind=${1:?usage: daemon.sh adds|adlds}
down_s=${CLOUD_DOWN_SECONDS:-60}

work=$(mktemp -d /tmp/dirconn-it-daemon-XXXXXX)
DPID=
cleanup() {
	local rc=$? # a test that stopped on an error keeps its work directory too
	daemon_stop
	sync_cloud_stop
	"$LDSFX" stop "$work/fx" >/dev/null 2>&1 || true
	if [[ $rc -eq 0 && $T_FAIL -eq 0 && -z ${KEEP_WORK:-} ]]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
ldsfx_start_retry "$kind" "$work/fx"
# shellcheck disable=SC1091
source "$work/fx/env"
M=$LDSFX_MANIFEST
sync_cloud_start
sync_register conn-a
SG=$(json "$M" "j['cloud_users']['dn']")
emp=$(json "$M" "j['ous']['Employees']['dn']")
svc=$(json "$M" "j['ous']['Service Accounts']['dn']")
conf() {
	sync_conf "$work/a.conf" conn-a "[users]
security_groups = $SG
base_dns = $emp
[schedule]
incremental_interval = 20s
notifications = yes
$*"
}
conf
daemon_start() {
	dirconnd --config "$work/a.conf" 2>>"$work/dirconnd.log" &
	DPID=$!
	socket_open() { [[ -S $work/state-conn-a/dirconnd.sock ]] || ! kill -0 "$DPID" 2>/dev/null; }
	wait_until 60 socket_open
	[[ -S $work/state-conn-a/dirconnd.sock ]] && return 0
	echo "dirconnd did not open its socket (within 60 s, or it exited)"
	tail -5 "$work/dirconnd.log"
	return 1
}
# converged WHAT [SECONDS]: the oracle agrees within SECONDS (default 90: a loaded machine is slow)
converged() {
	local what=$1 limit=${2:-90} t0=$SECONDS
	while :; do
		run_capture chk sync_check --security-group "$SG" --user-base "$emp"
		[[ $chk_rc -eq 0 ]] && break
		((SECONDS - t0 > limit)) && break
		sleep 1
	done
	[[ $chk_rc -eq 0 ]] || echo "$chk_out" | grep -v '^ok' || true
	check_eq "$what (within ${limit}s)" 0 "$chk_rc"
}
status_json() { dirconnctl status --socket "$work/state-conn-a/dirconnd.sock" --json; }

daemon_start
converged "dirconnd's first sync brought the cloud to the directory" 120
run_capture st dirconnctl status --config "$work/a.conf"
check_eq "dirconnctl status exits 0" 0 "$st_rc"
check_contains "status shows the last synchronizations" "$st_out" "Last synchronizations:"
check_contains "status shows the next incremental" "$st_out" "Next incremental sync:"
check_contains "status shows the connector as active" "$st_out" "(active)"
check_eq "status --json: overall ok" ok "$(json "$(status_json)" "j['overall']")"
check_eq "the admin socket is private" 600 "$(stat -c %a "$work/state-conn-a/dirconnd.sock")"

# ---- a user added to the security group, modified, disabled
new_dn="CN=Daemon Tester,$emp"
if [[ $kind == adds ]]; then
	add_extra="objectClass: user
sAMAccountName: daemontester
userAccountControl: 544"
	disable="replace: userAccountControl
userAccountControl: 546"
else
	add_extra="objectClass: user
msDS-UserAccountDisabled: FALSE"
	disable="replace: msDS-UserAccountDisabled
msDS-UserAccountDisabled: TRUE"
fi
ldap_modify "dn: $new_dn
changetype: add
$add_extra
userPrincipalName: daemon.tester@dirconn.test
givenName: Daemon
sn: Tester
displayName: Daemon Tester
mail: daemon.tester@dirconn.test

dn: $SG
changetype: modify
add: member
member: $new_dn"
converged "an added user reaches the cloud"
ldap_modify "dn: $new_dn
changetype: modify
replace: displayName
displayName: Daemon Tester Modified"
converged "a modified user reaches the cloud"
ldap_modify "dn: $new_dn
changetype: modify
$disable"
converged "a disabled user reaches the cloud"

# ---- group membership
grp=$(json "$M" "j['big_group']['dn']")
ldap_modify "dn: $grp
changetype: modify
add: member
member: $new_dn"
converged "a group membership change reaches the cloud"

# ---- removed from the security group, back, moved out of scope, back, deleted
ldap_modify "dn: $SG
changetype: modify
delete: member
member: $new_dn"
converged "a user removed from the security group is deleted in the cloud"
ldap_modify "dn: $SG
changetype: modify
add: member
member: $new_dn"
converged "the user back in the security group is in the cloud again"
ldap_modify "dn: $new_dn
changetype: modrdn
newrdn: CN=Daemon Tester
deleteoldrdn: 1
newsuperior: $svc"
converged "a user moved out of scope is deleted in the cloud"
ldap_modify "dn: CN=Daemon Tester,$svc
changetype: modrdn
newrdn: CN=Daemon Tester
deleteoldrdn: 1
newsuperior: $emp"
converged "a user moved back into scope is in the cloud again"
ldap_modify "dn: $new_dn
changetype: delete"
converged "a deleted user is deleted in the cloud"

# ---- SIGHUP with a bad configuration keeps the running one
cp "$work/a.conf" "$work/a.conf.good"
printf '[policy]\ndelete_threshold = lots\n' >>"$work/a.conf"
kill -HUP "$DPID"
check "the bad configuration is rejected in the log" wait_until 60 \
	grep -q "the new configuration is rejected, the running one is kept" "$work/dirconnd.log"
check "dirconnd still runs after a bad SIGHUP" kill -0 "$DPID"
victim=$(LDAPTLS_CACERT=$LDSFX_CA_FILE ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
	-y "$LDSFX_BIND_PASSWORD_FILE" -b "$SG" -s base -LLL -o ldif-wrap=no member | sed -n 's/^member: \(.*Employees.*\)/\1/p' | sed -n 5p)
ldap_modify "dn: $victim
changetype: modify
replace: displayName
displayName: After A Bad Reload"
converged "the old configuration keeps synchronising"
check_eq "the running configuration is the old one" 20 "$(json "$(status_json)" "j['config']['delete_threshold']")"
cp "$work/a.conf.good" "$work/a.conf"
printf '[policy]\ndelete_threshold = 25\n' >>"$work/a.conf"
kill -HUP "$DPID"
threshold_is() { [[ $(json "$(status_json)" "j['config']['delete_threshold']" 2>/dev/null) == "$1" ]]; }
wait_until 60 threshold_is 25 || true
check_eq "a good configuration is reloaded" 25 "$(json "$(status_json)" "j['config']['delete_threshold']")"

# ---- kill -9 during an incremental, then restart: nothing lost
mapfile -t many < <(LDAPTLS_CACERT=$LDSFX_CA_FILE ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
	-y "$LDSFX_BIND_PASSWORD_FILE" -b "$SG" -s base -LLL -o ldif-wrap=no member | sed -n 's/^member: \(.*Employees.*\)/\1/p' | head -150)
cloud_admin PUT /v1/faults '{"latencyMs": 60, "writesOnly": true}' >/dev/null
for dn in "${many[@]}"; do printf 'dn: %s\nchangetype: modify\nreplace: title\ntitle: Killed Mid-Sync\n\n' "$dn"; done >"$work/many.ldif"
LDAPTLS_CACERT=$LDSFX_CA_FILE ldapmodify -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" \
	-f "$work/many.ldif" >/dev/null
for dn in "${many[@]}"; do printf 'dn: %s\nchangetype: modify\nreplace: displayName\ndisplayName: Killed Mid-Sync %s\n\n' "$dn" "${dn:3:12}"; done >"$work/many2.ldif"
LDAPTLS_CACERT=$LDSFX_CA_FILE ldapmodify -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" \
	-f "$work/many2.ldif" >/dev/null
applying() { [[ $(json "$(status_json)" "(j['current'] or {}).get('phase','')" 2>/dev/null) == applying ]]; }
syncing=no
wait_until 60 applying && syncing=yes
check_eq "an incremental sync was applying" yes "$syncing"
# kill it once the cloud acknowledged part of the changes (a cloud counter, not a fixed delay)
some_written() { (($(sync_cloud_count 'title eq "Killed Mid-Sync"') > 0)); }
check "the incremental wrote some of the changes before the kill" wait_until 60 some_written
kill -9 "$DPID"
wait "$DPID" 2>/dev/null || true
DPID=
cloud_admin PUT /v1/faults '{"latencyMs": 0, "writesOnly": false}' >/dev/null
daemon_start
converged "after kill -9 and a restart, nothing is lost" 90

# ---- the cloud down for a while, then back: nothing lost
sync_cloud_stop
ldap_modify "dn: $victim
changetype: modify
replace: displayName
displayName: Changed While The Cloud Was Down"
# the daemon tries, fails and says so (an event); the cloud then stays down for $down_s s in all
down_since=$SECONDS
overall_error() { [[ $(json "$(status_json)" "j['overall']" 2>/dev/null) == error ]]; }
wait_until $((down_s > 60 ? down_s : 60)) overall_error || true
check_eq "status says the sync fails while the cloud is down" error "$(json "$(status_json)" "j['overall']")"
left=$((down_s - (SECONDS - down_since)))
((left <= 0)) || sleep "$left"
sync_cloud_start
converged "the change made during the outage reaches the cloud once it is back" 60

# ---- SIGTERM: a clean exit
kill -TERM "$DPID"
rc=0
wait "$DPID" || rc=$?
DPID=
check_eq "SIGTERM: dirconnd exits 0" 0 "$rc"
check "the socket is removed" test ! -e "$work/state-conn-a/dirconnd.sock"

finish
