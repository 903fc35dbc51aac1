# Integration test: the cloud side with the usual registration and dirconnd running (issue 14,
# items 4-7), against the slapd fixture, dirconn-cloud and tinyproxy, the only route the
# connector is given to the cloud ([proxy] mode = explicit).
#   - test-connection checks both sides, each reported apart; a wrong token names the key to fix;
#   - sync reports reach the cloud with the registration `dirconnctl register` saved;
#   - status shows the cloud side (state, last error, proxy mode and route) and is never "ok"
#     while the cloud side fails;
#   - `dirconnctl sync-now --override-threshold` lets the daemon's next run through the delete
#     threshold once, and the threshold message names the command that works where the run was.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"
for bin in tinyproxy dirconnctl dirconnd dirconn-cloud; do
	command -v "$bin" >/dev/null || { echo "not ok - $bin is missing (scripts/install-deps.sh)"; exit 1; }
done

work=$(mktemp -d /tmp/dirconn-it-dcloud-XXXXXX)
chmod 755 "$work"
DPID=
TINY_PID=
tiny_stop() {
	[[ -z $TINY_PID ]] && return 0
	kill -KILL "$TINY_PID" 2>/dev/null || true
	wait "$TINY_PID" 2>/dev/null || true
	TINY_PID=
}
cleanup() {
	daemon_stop
	tiny_stop
	sync_cloud_stop
	"$LDSFX" stop "$work/fx" >/dev/null 2>&1 || true
	if [[ $T_FAIL -eq 0 && -z ${KEEP_WORK:-} ]]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
ldsfx_start_retry adlds "$work/fx" --users 200
# shellcheck disable=SC1091
source "$work/fx/env"
M=$LDSFX_MANIFEST
sync_cloud_start

TPORT=$(free_port)
tiny_start
connects() { grep -c "CONNECT 127.0.0.1:$CLOUD_PORT" "$work/tiny/tinyproxy.log" 2>/dev/null || true; }

# The usual setup: no client_id in the file; `dirconnctl register` saves the identity.
cat >"$work/r.conf" <<EOF
[connector]
name = conn-r
state_dir = $work/state-r
[ldap]
urls = $LDSFX_URL_TLS
bind_dn = $LDSFX_BIND_DN
bind_password_file = $LDSFX_BIND_PASSWORD_FILE
ca_file = $LDSFX_CA_FILE
base_dn = $LDSFX_BASE_DN
[cloud]
url = $CLOUD_URL
org = acme
ca_file = $work/cloud-ca.pem
[proxy]
mode = explicit
url = http://127.0.0.1:$TPORT
[schedule]
incremental_interval = 10m
notifications = no
[log]
level = info
EOF
mkdir -p "$work/state-r"
run_capture reg dirconnctl register --config "$work/r.conf" --admin-token-file "$work/admin.token" --json
check_eq "dirconnctl register exits 0" 0 "$reg_rc"
RID=$(json "$reg_out" "j['id']")

# ==== item 7: test-connection checks both sides ===========================================
before=$(connects)
run_capture tc dirconnctl test-connection --config "$work/r.conf"
check_eq "test-connection with the registration and the proxy exits 0" 0 "$tc_rc"
check_contains "the directory side is reported" "$tc_out" "Domain controller:  $LDSFX_URL_TLS"
check_contains "the cloud side is reported" "$tc_out" "Cloud result:       ok"
check_contains "the cloud side names the proxy route" "$tc_out" "route http://127.0.0.1:$TPORT"
check_contains "the cloud side names the identity" "$tc_out" "connector $RID (registration in the secret store)"
check_contains "ServiceProviderConfig answered" "$tc_out" "ServiceProviderConfig: HTTP 200"
check "the check went through tinyproxy ($before -> $(connects))" test "$(connects)" -gt "$before"
run_capture tcj dirconnctl test-connection --config "$work/r.conf" --json
check_eq "test-connection --json: the cloud object" "True 200 200 explicit" \
	"$(json "$tcj_out" "' '.join(str(x) for x in (j['cloud']['ok'], j['cloud']['serviceProviderConfig'], j['cloud']['authenticatedRead'], j['cloud']['proxyMode']))")"
check_eq "test-connection --json: the directory side apart" "True" "$(json "$tcj_out" "j['baseDnExists']")"

printf 'not-the-token\n' >"$work/wrong.token"
{ cat "$work/r.conf"; printf '[cloud]\nauth = bearer\ntoken_file = %s\n' "$work/wrong.token"; } >"$work/bearer-file.conf"
run_capture tw dirconnctl test-connection --config "$work/bearer-file.conf"
check_eq "a wrong token in token_file: exit 31 (ECLOUD_AUTH)" 31 "$tw_rc"
check_contains "the error names the key to fix" "$tw_err" "check the token in [cloud] token_file ($work/wrong.token)"
check_contains "the error keeps the HTTP status" "$tw_err" "HTTP 401"
check_contains "the directory side is still reported apart" "$tw_out" "Domain controller:  $LDSFX_URL_TLS"
check_contains "the cloud side says it failed" "$tw_out" "Cloud result:       FAILED: "
{ cat "$work/r.conf"; printf '[cloud]\nauth = bearer\n'; } >"$work/bearer-store.conf"
printf 'also-not-the-token\n' | dirconnctl secret set cloud-token --config "$work/bearer-store.conf" >/dev/null
run_capture ts dirconnctl test-connection --config "$work/bearer-store.conf" --json
check_eq "a wrong cloud-token in the secret store: exit 31" 31 "$ts_rc"
check_contains "the error names the secret store entry" "$ts_err" "check the secret store entry cloud-token"
check_eq "--json: the cloud object says why" "False 401" \
	"$(json "$ts_out" "str(j['cloud']['ok']) + ' ' + str(j['cloud']['authenticatedRead'])")"

# ==== items 5 and 6: dirconnd with the registration ======================================
SOCK=$work/state-r/dirconnd.sock
daemon_start() {
	dirconnd --config "$work/r.conf" 2>>"$work/dirconnd.log" &
	DPID=$!
	wait_until 30 test -S "$SOCK"
}
status_json() { dirconnctl status --socket "$SOCK" --json 2>/dev/null || echo '{}'; }
st() { json "$(status_json)" "$1" 2>/dev/null || true; }
# runs: how many syncs the daemon recorded; idle_after N: more than N, and the daemon is idle.
runs() { sqlite3 "$work/state-r/state.db" "SELECT count(*) FROM history WHERE type != 'dry-run'" 2>/dev/null || echo 0; }
idle_after() { (($(runs) > $1)) && [[ $(st "j.get('current') is None and j.get('state') == 'idle'") == True ]]; }
check "dirconnd starts and opens its admin socket" daemon_start
check "dirconnd's first sync ends" wait_until 300 idle_after 0
check_eq "the first sync succeeded" success "$(st "j['last'][0]['status']")"
reports=$(cloud_admin GET "/v1/orgs/acme/connectors/$RID/reports?limit=5")
check "the daemon's sync report reached the cloud under the registered identity" \
	test "$(json "$reports" "len([r for r in j['reports'] if r['type'] in ('full', 'incremental')])")" -gt 0
s=$(status_json)
check_eq "status --json: overall ok" ok "$(json "$s" "j['overall']")"
check_eq "status --json: the cloud side" "ok explicit" "$(json "$s" "j['cloud']['state'] + ' ' + j['cloud']['proxy_mode']")"
check_contains "status --json: the proxy route in use" "$(json "$s" "j['cloud']['route']")" "http://127.0.0.1:$TPORT"
run_capture stt dirconnctl status --socket "$SOCK"
check_contains "status shows the cloud side" "$stt_out" "Cloud:                  ok, $CLOUD_URL"
check_contains "status shows the route" "$stt_out" "proxy mode explicit, route http://127.0.0.1:$TPORT"

# ==== a secret rotated while dirconnd runs: its next token reads the new one from the store =
nrep() { json "$(cloud_admin GET "/v1/orgs/acme/connectors/$RID/reports?limit=1000")" "len(j['reports'])"; }
r0=$(nrep)
run_capture rs dirconnctl reset-secret --config "$work/r.conf"
check_eq "reset-secret without the admin token while dirconnd runs" 0 "$rs_rc"
[[ $rs_rc == 0 ]] || echo "$rs_err"
t0=$(runs)
dirconnctl sync-now --incremental --socket "$SOCK" >/dev/null
check "the daemon's next run ends" wait_until 300 idle_after "$t0"
check_eq "  ... with success, on the new secret (no restart, no signal)" success "$(st "j['last'][0]['status']")"
check "  ... and its report reached the cloud" test "$(nrep)" -gt "$r0"

# ==== item 4: the delete threshold with the daemon running ================================
users_in_cloud() { json "$(cloud_admin GET '/scim/v2/acme/Users?count=1')" "j['totalResults']"; }
delete_users() {
	local n=$1 ou
	ou=$(json "$M" "j['ous']['Employees']['dn']")
	LDAPTLS_CACERT=$LDSFX_CA_FILE ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
		-y "$LDSFX_BIND_PASSWORD_FILE" -b "$ou" -E pr=500/noprompt -LLL -o ldif-wrap=no \
		'(&(objectClass=user)(mail=*))' 1.1 | "$PY" -c '
import sys, ldif
r = ldif.LDIFRecordList(sys.stdin.buffer); r.parse()
for dn, _ in r.all_records[:int(sys.argv[1])]: print("dn: %s\nchangetype: delete\n" % dn)' "$n" >"$work/delete.ldif"
	LDAPTLS_CACERT=$LDSFX_CA_FILE ldapmodify -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
		-y "$LDSFX_BIND_PASSWORD_FILE" -f "$work/delete.ldif" >/dev/null
}
# 25 users with a mail: more than 20 deletions even if some of them were never sent (a naming
# conflict that their deletion ends is an addition instead)
delete_users 25
before=$(users_in_cloud)
t0=$(runs)
run_capture sn dirconnctl sync-now --incremental --socket "$SOCK"
check_eq "sync-now exits 0" 0 "$sn_rc"
check "the incremental run ends" wait_until 300 idle_after "$t0"
s=$(status_json)
check_eq "the deletions stop the daemon's run at the threshold" threshold "$(json "$s" "j['last'][0]['status']")"
check_eq "status: overall error after the threshold stop" error "$(json "$s" "j['overall']")"
check_contains "status says why: the delete threshold" "$(json "$s" "' | '.join(j['reasons'])")" \
	"delete threshold exceeded"
check_contains "the message names the command that works with the daemon running" \
	"$(json "$s" "j['error']")" "run 'dirconnctl sync-now --override-threshold' to let this sync through once"
check_eq "nothing was deleted" "$before" "$(users_in_cloud)"
reports=$(cloud_admin GET "/v1/orgs/acme/connectors/$RID/reports?limit=1")
check_eq "the threshold stop was reported to the cloud" "delete True aborted" \
	"$(json "$reports" "' '.join(str(x) for x in (j['reports'][0]['thresholdEvents'][0]['kind'], j['reports'][0]['thresholdEvents'][0]['planned'] > 20, j['reports'][0]['thresholdEvents'][0]['action']))")"

t0=$(runs)
dirconnctl pause --socket "$SOCK" >/dev/null # the override waits for the next run, whatever starts it
run_capture ov dirconnctl sync-now --override-threshold --socket "$SOCK"
check_eq "sync-now --override-threshold exits 0" 0 "$ov_rc"
check_contains "it says the next run may exceed the threshold" "$ov_out" "Incremental synchronization started; it may exceed the delete threshold, once"
check "the overridden run ends" wait_until 300 idle_after "$t0"
dirconnctl resume --socket "$SOCK" >/dev/null
s=$(status_json)
check_eq "the overridden run succeeded" success "$(json "$s" "j['last'][0]['status']")"
deleted=$(json "$s" "j['last'][0]['deleted']")
check "it deleted more than the threshold ($deleted)" test "$deleted" -gt 20
after=$(users_in_cloud)
check "the users are gone from the cloud ($before -> $after)" test "$after" -le "$((before - 20))"
check_eq "the override was used up" False "$(json "$s" "j['threshold_override']")"
reports=$(cloud_admin GET "/v1/orgs/acme/connectors/$RID/reports?limit=1")
check_eq "the override was reported to the cloud" "overridden" \
	"$(json "$reports" "j['reports'][0]['thresholdEvents'][0]['action']")"
run_capture chk sync_check
echo "$chk_out" | grep -v '^ok' || true
check_eq "the cloud matches the directory after the overridden run" 0 "$chk_rc"

delete_users 25
t0=$(runs)
dirconnctl sync-now --incremental --socket "$SOCK" >/dev/null
check "the next run ends" wait_until 300 idle_after "$t0"
check_eq "the override was for one run only: the next deletions stop again" threshold "$(st "j['last'][0]['status']")"

# ==== item 6: status is never ok while the cloud side fails ==============================
tiny_stop
dirconnctl sync-now --incremental --socket "$SOCK" >/dev/null
# it fails before it is recorded in the history: wait for the daemon's last error instead
proxy_failed() { [[ $(st "j.get('state') == 'idle' and 'proxy http://127.0.0.1:$TPORT' in (j.get('error') or '')") == True ]]; }
check "the run through the dead proxy ends" wait_until 300 proxy_failed
s=$(status_json)
check_eq "status: overall error while the cloud side fails" error "$(json "$s" "j['overall']")"
check_eq "status: the cloud side is in error" error "$(json "$s" "j['cloud']['state']")"
check_contains "status: the cloud error names the proxy" "$(json "$s" "j['cloud']['error']")" "proxy http://127.0.0.1:$TPORT"
run_capture stt dirconnctl status --socket "$SOCK"
check_contains "status text: the cloud side in error" "$stt_out" "Cloud:                  error, $CLOUD_URL"
check_contains "status text: its last error" "$stt_out" "  last error: "
daemon_stop

# ==== item 4, one-shot: the message names the one-shot override ===========================
tiny_start
run_capture os dirconnctl sync --incremental --config "$work/r.conf" --no-progress
check_eq "a one-shot sync over the threshold: exit 40" 40 "$os_rc"
check_contains "the one-shot message names the one-shot command" "$os_err" \
	"run 'dirconnctl sync --incremental --override-threshold' to let this sync through once"
run_capture os2 dirconnctl sync --incremental --config "$work/r.conf" --no-progress --override-threshold
check_eq "the one-shot override lets it through" 0 "$os2_rc"
run_capture chk sync_check
echo "$chk_out" | grep -v '^ok' || true
check_eq "the cloud matches the directory at the end" 0 "$chk_rc"
check "no sanitizer report from dirconnd" bash -c "! grep -qE 'Sanitizer|runtime error:' '$work/dirconnd.log'"

finish
