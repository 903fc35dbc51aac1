# Integration test: with dirconnd running, a deletion and a move out of [users] base_dns reach
# the cloud through change notifications, not the periodic sync (issue 14): the incremental
# interval is an hour, so only a notification can bring them. On AD the notification search
# carries the Show Deleted control (the DC notifies tombstones); on slapd the RFC 4533
# persist stage reports deletes. The deadline is generous (60 s, the machine may be loaded);
# bench/latency.sh measures the latency itself.
#   bash daemon_delete.sh adds|adlds
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"
kind=${1:?usage: daemon_delete.sh adds|adlds}

work=$(mktemp -d /tmp/dirconn-it-delete-XXXXXX)
DPID=
cleanup() {
	if [[ -n $DPID ]]; then
		kill -TERM "$DPID" 2>/dev/null || true
		wait "$DPID" 2>/dev/null || true
	fi
	sync_cloud_stop
	"$LDSFX" stop "$work/fx" >/dev/null 2>&1 || true
	if [[ $T_FAIL -eq 0 && -z ${KEEP_WORK:-} ]]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
ldsfx_start_retry "$kind" "$work/fx"
# shellcheck disable=SC1091
source "$work/fx/env"
export LDAPTLS_CACERT=$LDSFX_CA_FILE
M=$LDSFX_MANIFEST
sync_cloud_start
sync_register conn-a
SG=$(json "$M" "j['cloud_users']['dn']")
emp=$(json "$M" "j['ous']['Employees']['dn']")
svc=$(json "$M" "j['ous']['Service Accounts']['dn']")
sync_conf "$work/a.conf" conn-a "[users]
security_groups = $SG
base_dns = $emp
[schedule]
incremental_interval = 1h
full_sync = never
notifications = yes"
sed -i 's/^level = warn/level = info/' "$work/a.conf" # the log lines this test waits for
log=$work/dirconnd.log
sock=$work/state-conn-a/dirconnd.sock
status_json() { dirconnctl status --socket "$sock" --json 2>/dev/null; }
notif_connected() { [[ $(json "$(status_json)" "j['notifications']['state']" 2>/dev/null) == connected ]]; }

# ext_id DN: the externalId the connector gives the entry (objectGUID or entryUUID)
ext_id() {
	"$PY" - "$LDSFX_URL_TLS" "$LDSFX_CA_FILE" "$LDSFX_BIND_DN" "$LDSFX_BIND_PASSWORD_FILE" "$1" <<-'EOF'
	import sys, uuid, ldap
	url, ca, dn, pwf, target = sys.argv[1:]
	ldap.set_option(ldap.OPT_X_TLS_CACERTFILE, ca)
	ldap.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
	c = ldap.initialize(url)
	c.simple_bind_s(dn, open(pwf).read().strip())
	a = c.search_s(target, ldap.SCOPE_BASE, attrlist=["objectGUID", "entryUUID"])[0][1]
	g = a.get("objectGUID")
	print(uuid.UUID(bytes_le=g[0]) if g and len(g[0]) == 16 else a["entryUUID"][0].decode().lower())
	EOF
}
# in_cloud EXTERNAL_ID: how many cloud users carry it
in_cloud() {
	cloud_admin GET "/scim/v2/acme/Users?filter=$("$PY" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "externalId eq \"$1\"")" |
		"$PY" -c 'import json,sys; print(json.load(sys.stdin)["totalResults"])'
}
gone() { [[ $(in_cloud "$1") == 0 ]]; }
# members of the security group in the Employees OU, in the cloud
mapfile -t cand < <(ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" \
	-b "$SG" -s base -LLL -o ldif-wrap=no member | sed -n 's/^member: \(.*OU=Employees,.*\)/\1/Ip')

dirconnd --config "$work/a.conf" 2>>"$log" &
DPID=$!
check "dirconnd's first sync ran" wait_until 180 grep -q "sync done in" "$log"
check "the change notification connection is up" wait_until 60 notif_connected
victims=()
for dn in "${cand[@]}"; do
	ext=$(ext_id "$dn")
	if [[ $(in_cloud "$ext") == 1 ]]; then victims+=("$dn|$ext"); fi
	((${#victims[@]} < 3)) || break
done
check_eq "three users of the Employees OU are in the cloud" 3 "${#victims[@]}"
del_dn=${victims[0]%%|*} del_ext=${victims[0]#*|}
mv_dn=${victims[1]%%|*} mv_ext=${victims[1]#*|}
notified0=$(grep -c "incremental sync started (notification)" "$log" || true)

# ---- a deletion
t0=$(date +%s.%N)
ldap_modify "dn: $del_dn
changetype: delete"
if wait_until 60 gone "$del_ext"; then
	ok "a deleted user leaves the cloud through a notification ($(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)") s)"
else
	not_ok "a deleted user is still in the cloud after 60 s"
fi

# ---- a move out of [users] base_dns
# the first RDN, escapes kept ("CN=Dubois\, Thomas" is one RDN)
rdn=$("$PY" -c 'import sys, ldap.dn; print(ldap.dn.dn2str(ldap.dn.str2dn(sys.argv[1])[:1]))' "$mv_dn")
t0=$(date +%s.%N)
ldap_modify "dn: $mv_dn
changetype: modrdn
newrdn: $rdn
deleteoldrdn: 1
newsuperior: $svc"
if wait_until 60 gone "$mv_ext"; then
	ok "a user moved out of base_dns leaves the cloud through a notification ($(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)") s)"
else
	not_ok "a user moved out of base_dns is still in the cloud after 60 s"
fi
check "the syncs were started by notifications" \
	test "$(grep -c "incremental sync started (notification)" "$log" || true)" -ge $((notified0 + 1))
check_eq "no periodic sync ran (the interval is an hour)" 0 "$(grep -c "incremental sync started (schedule)" "$log" || true)"

# ---- the rest of the cloud is untouched, and status says the directory side is ok
check_eq "the third user is still there" 1 "$(in_cloud "${victims[2]#*|}")"
st=$(status_json)
check_eq "status: overall ok" ok "$(json "$st" "j['overall']")"
check_eq "status: the directory is ok" ok "$(json "$st" "j['directory']['state']")"
check_eq "status: the DC in use" "$LDSFX_URL_TLS" "$(json "$st" "j['directory']['server']")"
check_eq "status: notifications connected" connected "$(json "$st" "j['notifications']['state']")"

kill -TERM "$DPID"
rc=0
wait "$DPID" || rc=$?
DPID=
check_eq "SIGTERM: dirconnd exits 0" 0 "$rc"
finish
