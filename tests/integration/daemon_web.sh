# Integration test of dirconnd's status page and /metrics (issue 18, items 1, 2, 3 and 5) against
# a real directory fixture and the reference cloud:
#   - [web] refuses a listener outside loopback without TLS and a password (file:line, exit 3);
#   - after the first sync, /metrics passes `promtool check metrics` and its values agree with the
#     cloud (objects added per kind), the status (fencing token, last run) and the clock;
#   - headless Chromium's DOM of the page (--dump-dom) shows the Cisco dashboard's table 1 names
#     with the values of `dirconnctl status --json`, the SVG charts, a meta refresh of at most 5 s;
#   - actions: refused without credentials or without the CSRF token; Sync Now with both runs a
#     sync, logged with the remote address; Pause/Resume; a click on Sync Now in Chromium (the
#     DevTools protocol, web_browser.py) is refused without credentials and runs a sync with them;
#   - the report tabs and downloads, Recent Events (naming conflicts, invalid values, with DNs);
#   - the change latency of a notified change (metric and chart);
#   - the indicator turns red after a failed sync (the cloud stopped).
# A screenshot of the page is taken; it stays in the kept work directory when a check fails.
#   bash daemon_web.sh adlds|adds
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"
kind=${1:?usage: daemon_web.sh adlds|adds}
for bin in dirconnctl dirconnd dirconn-cloud promtool chromium curl; do
	command -v "$bin" >/dev/null || { echo "not ok - $bin is missing (scripts/install-deps.sh)"; exit 1; }
done
export LC_ALL=${LC_ALL:-C}

work=$(mktemp -d /tmp/dirconn-it-web-XXXXXX)
chmod 755 "$work"
DPID=
cleanup() {
	local rc=$?
	daemon_stop
	sync_cloud_stop
	"$LDSFX" stop "$work/fx" >/dev/null 2>&1 || true
	if [[ $rc -eq 0 && $T_FAIL -eq 0 && -z ${KEEP_WORK:-} ]]; then rm -rf "$work"; else echo "kept $work (screenshots: $work/*.png)"; fi
}
trap cleanup EXIT

ldsfx_start_retry "$kind" "$work/fx" --users 150
# shellcheck disable=SC1091
source "$work/fx/env"
sync_cloud_start
sync_register conn-w
WPORT=$(free_port)
openssl rand -hex 16 | tr -d '\n' >"$work/web.password"
chmod 600 "$work/web.password"
PASSWORD=$(cat "$work/web.password")
conf() { # conf FILE [WEB SECTION LINES]
	local file=$1
	shift
	cat >"$file" <<-CONF
	[connector]
	name = conn-w
	state_dir = $work/state-conn-w
	[ldap]
	urls = $LDSFX_URL_TLS
	bind_dn = $LDSFX_BIND_DN
	bind_password_file = $LDSFX_BIND_PASSWORD_FILE
	ca_file = $LDSFX_CA_FILE
	base_dn = $LDSFX_BASE_DN
	page_size = 200
	[cloud]
	url = $CLOUD_URL
	org = acme
	client_id = $(cat "$work/conn-w.id")
	client_secret_file = $work/conn-w.secret
	ca_file = $work/cloud-ca.pem
	[schedule]
	incremental_interval = 10m
	notifications = ${NOTIFY:-no}
	[log]
	level = info
	[web]
	CONF
	printf '%s\n' "$@" >>"$file"
}

# ==== a listener outside loopback needs TLS and a password ===================================
conf "$work/open.conf" "listen = 0.0.0.0:$WPORT"
line=$(grep -n '^listen = ' "$work/open.conf" | cut -d: -f1)
run_capture open dirconnd --config "$work/open.conf"
check_eq "[web] listen on 0.0.0.0 without TLS: dirconnd exits 3 (ECONFIG)" 3 "$open_rc"
check_contains "the error names file:line and what is missing" "$open_err" \
	"$work/open.conf:$line: [web] listen = 0.0.0.0:$WPORT is not a loopback address: it needs tls_cert, tls_key and password_file"
conf "$work/half.conf" "listen = [::]:$WPORT" "tls_cert = $work/cloud.pem" "tls_key = $work/cloud.key"
run_capture half dirconnd --config "$work/half.conf"
check_eq "[web] listen on [::] with TLS but no password_file: exit 3" 3 "$half_rc"
check_contains "the error says password_file is needed" "$half_err" "it needs tls_cert, tls_key and password_file"
conf "$work/bad.conf" "listen = 127.0.0.1"
run_capture bad dirconnd --config "$work/bad.conf"
check_eq "[web] listen without a port: exit 3" 3 "$bad_rc"
check_contains "the error names the key and the expected form" "$bad_err" "[web] listen: '127.0.0.1': expected HOST:PORT"
check "no state was written by the refused starts" test ! -e "$work/state-conn-w"

# ==== dirconnd with the page ==================================================================
conf "$work/w.conf" "listen = 127.0.0.1:$WPORT" "password_file = $work/web.password"
URL=http://127.0.0.1:$WPORT
SOCK=$work/state-conn-w/dirconnd.sock
t_start=$(date +%s)
dirconnd --config "$work/w.conf" 2>>"$work/dirconnd.log" &
DPID=$!
up() { [[ -S $SOCK ]] && curl -fsS -o /dev/null "$URL/metrics"; }
check "dirconnd opens its admin socket and the web listener" wait_until 60 up
status_json() { dirconnctl status --socket "$SOCK" --json 2>/dev/null || echo '{}'; }
st() { json "$(status_json)" "$1" 2>/dev/null || true; }
runs() { sqlite3 "$work/state-conn-w/state.db" "SELECT count(*) FROM history WHERE type != 'dry-run'" 2>/dev/null || echo 0; }
idle_after() { (($(runs) > $1)) && [[ $(st "j.get('current') is None and j.get('state') == 'idle'") == True ]]; }
check "the first sync ends" wait_until 300 idle_after 0
check_eq "the first sync succeeded" success "$(st "j['last'][0]['status']")"
run_capture chk sync_check
check_eq "the cloud holds the fixture's objects (oracle)" 0 "$chk_rc"
[[ $chk_rc -eq 0 ]] || echo "$chk_out" | grep -v '^ok' | head -20
t_synced=$(date +%s)

# ==== /metrics ==================================================================================
curl -fsS -D "$work/metrics.headers" -o "$work/metrics.txt" "$URL/metrics"
check_contains "/metrics is the text exposition format 0.0.4" "$(cat "$work/metrics.headers")" "text/plain; version=0.0.4"
run_capture prom promtool check metrics <"$work/metrics.txt"
check_eq "promtool check metrics passes on /metrics" 0 "$prom_rc"
[[ $prom_rc -eq 0 ]] || echo "$prom_out $prom_err" | head -20
echo "# promtool: rc $prom_rc ${prom_out}${prom_err}"
{ cat "$work/metrics.txt"; printf 'dirconn_broken{kind="user" 1\n'; } >"$work/broken.txt"
run_capture promb promtool check metrics <"$work/broken.txt"
check "promtool refuses a broken exposition (the check can fail)" test "$promb_rc" -ne 0
M=$("$PY" "$SRC/tests/integration/web_check.py" metrics "$work/metrics.txt")
m() { json "$M" "j.get('$1', -1)"; }
mi() { json "$M" "int(j.get('$1', -1))"; }
scim_total() { # the cloud's totalResults of a resource type
	json "$(curl -sS --cacert "$work/cloud-ca.pem" -H "Authorization: Bearer $(cat "$work/admin.token")" \
		"$CLOUD_URL/scim/v2/acme/$1?count=0")" "j['totalResults']"
}
cu=$(scim_total Users)
cg=$(scim_total Groups)
cc=$(scim_total Contacts)
check "the cloud holds users after the sync ($cu)" test "$cu" -gt 0
check_eq "dirconn_objects_total{kind=user,op=added} is the cloud's user count" "$cu" "$(mi 'dirconn_objects_total{kind=user,op=added}')"
check_eq "dirconn_objects_total{kind=group,op=added} is the cloud's group count" "$cg" "$(mi 'dirconn_objects_total{kind=group,op=added}')"
check_eq "dirconn_objects_total{kind=contact,op=added} is the cloud's contact count" "$cc" "$(mi 'dirconn_objects_total{kind=contact,op=added}')"
check_eq "objects added over all kinds is the run's added count (status)" "$(st "j['last'][0]['added']")" \
	"$(json "$M" "int(sum(v for k, v in j.items() if k.startswith('dirconn_objects_total{') and 'op=added' in k))")"
check_eq "nothing deleted or failed" 0 \
	"$(json "$M" "int(sum(v for k, v in j.items() if k.startswith('dirconn_objects_total{') and ('op=deleted' in k or 'op=failed' in k)))")"
ls_ts=$(mi dirconn_last_success_timestamp_seconds)
check "dirconn_last_success_timestamp_seconds is the first sync's end ($t_start <= $ls_ts <= $t_synced)" \
	test "$ls_ts" -ge "$t_start" -a "$ls_ts" -le "$t_synced"
check_eq "one sync in the duration histogram" 1 "$(json "$M" "int(j.get('dirconn_sync_duration_seconds_count{type=full}', 0) + j.get('dirconn_sync_duration_seconds_count{type=incremental}', 0))")"
check_eq "one successful sync counted" 1 "$(json "$M" "int(sum(v for k, v in j.items() if k.startswith('dirconn_syncs_total{') and 'outcome=success' in k))")"
check_eq "no delete threshold trip" 0 "$(mi dirconn_delete_threshold_trips_total)"
check "SCIM POSTs answered 2xx were counted" test "$(mi 'dirconn_scim_requests_total{method=POST,status_class=2xx}')" -gt 0
check "SCIM GETs have a latency histogram" test "$(mi 'dirconn_scim_request_duration_seconds_count{method=GET}')" -gt 0
check_eq "dirconn_lease_active: the active instance" 1 "$(mi dirconn_lease_active)"
check_eq "dirconn_lease_fencing_token is the status' fencing token" "$(st "j['ha']['fencing_token']")" "$(mi dirconn_lease_fencing_token)"
check_eq "dirconn_notification_state: off ([schedule] notifications = no)" 1 "$(mi 'dirconn_notification_state{state=off}')"
wm=$(mi dirconn_watermark_age_seconds)
check "dirconn_watermark_age_seconds is set and small ($wm)" test "$wm" -ge 0 -a "$wm" -le $(($(date +%s) - t_start + 1))

# ==== the page in headless Chromium =============================================================
# chromium_dump OUT: the page's DOM after load; a fresh profile; --no-sandbox only as root.
chromium_run() {
	local sandbox=()
	[[ $(id -u) -ne 0 ]] || sandbox=(--no-sandbox)
	rm -rf "$work/chrome"
	timeout 120 chromium --headless=new "${sandbox[@]}" --disable-gpu --no-first-run \
		--user-data-dir="$work/chrome" "$@" 2>>"$work/chromium.log"
}
chromium_dump() { chromium_run --dump-dom "$URL/" >"$1" && [[ -s $1 ]]; }
# page_matches: the DOM and the status taken around it agree (the page refreshes every 5 s).
page_check() {
	status_json >"$work/st1.json"
	chromium_dump "$work/dom.html" || return 1
	status_json >"$work/st2.json"
	"$PY" "$SRC/tests/integration/web_check.py" dom "$work/dom.html" >"$work/dom.json"
	cmp -s "$work/st1.json" "$work/st2.json" # nothing moved meanwhile
}
check "Chromium renders the page (--dump-dom)" wait_until 120 page_check
D=$work/dom.json
S=$work/st2.json
check_contains "the page's heading" "$(cat "$work/dom.html")" "<h1>Directory Connector Dashboard</h1>"
check_eq "table 1 names, in order" \
	"Current Synchronization Status|Current Synchronization|Next Synchronization|Last Synchronization|Connectors|Cloud Statistics|Synchronization Schedule|Configuration Summary" \
	"$(json "$D" "'|'.join(h for h in j['h2'] if h not in ('Last runs', 'Actions', 'Recent Events', 'Synchronization Report'))")"
check "the page refreshes by itself at most every 5 s" test "$(json "$D" "j['refresh']")" -le 5 -a "$(json "$D" "j['refresh']")" -ge 1
ids() { json "$D" "j['ids'].get('$1')"; }
sv() { json "$S" "'\u2014' if ($1) is None else ($1)"; } # the page shows null as a dash
check_eq "overall as in status --json" "$(sv "j['overall']")" "$(ids overall)"
check_eq "the indicator is green" "ind green" "$(json "$D" "j['classes']['indicator']")"
check_eq "state as in status --json" "$(sv "j['state']")" "$(ids state)"
check_eq "Current Synchronization: idle" Idle "$(ids current-state)"
check_eq "Next Synchronization (incremental) as in status --json" "$(sv "j['next']['incremental']")" "$(ids next-incremental)"
check_eq "Next Synchronization (full) as in status --json" "$(sv "j['next']['full']")" "$(ids next-full)"
for col in type started ended status added updated deleted matched skipped failed; do
	check_eq "Last Synchronization, run 1: $col as in status --json" "$(sv "j['last'][0]['$col']")" "$(ids "last-0-$col")"
done
check_eq "Connectors: the name" "$(sv "j['connectors'][0]['name']")" "$(ids conn-name)"
check_eq "Connectors: the role" "$(sv "j['ha']['role']")" "$(ids conn-role)"
check_eq "Connectors: holder since" "$(sv "j['ha']['holder_since']")" "$(ids conn-holder-since)"
check_eq "Connectors: the fencing token" "$(sv "j['ha']['fencing_token']")" "$(ids conn-fencing-token)"
check_eq "Connectors: the version" "$(sv "j['version']")" "$(ids conn-version)"
check_eq "Cloud Statistics: added in the last run" "$(sv "j['last'][0]['added']")" "$(ids cloud-added)"
for k in users:Users groups:Groups contacts:Contacts; do
	check_eq "Cloud Statistics: ${k%%:*} as in status --json" "$(sv "j['cloud']['objects']['${k%%:*}']")" "$(ids "cloud-${k%%:*}")"
	check_eq "Cloud Statistics: ${k%%:*} as the cloud counts them (SCIM totalResults)" "$(scim_total "${k#*:}")" "$(ids "cloud-${k%%:*}")"
done
check_eq "Synchronization Schedule: full" "$(sv "j['config']['full_sync']")" "$(ids schedule-full)"
check_eq "Synchronization Schedule: incremental" "every $(sv "j['config']['incremental_interval_s']") s" "$(ids schedule-incremental)"
check_contains "Configuration Summary in the guide's sentences" "$(json "$D" "'|'.join(j['li'])")" "All users will be synchronized"
check_contains "Configuration Summary: the delete threshold" "$(json "$D" "'|'.join(j['li'])")" "Delete threshold is 20 objects"
check_eq "the duration chart is an SVG with one bar per run" "$(runs)" "$(json "$D" "j['svg'].get('chart-duration', -1)")"
check_eq "the changes chart is an SVG with one bar per run" "$(runs)" "$(json "$D" "j['svg'].get('chart-changes', -1)")"
check "the page holds no secret (password, client secret)" \
	bash -c "! grep -qF -e '$PASSWORD' -e '$(cat "$work/conn-w.secret")' '$work/dom.html'"

# ==== the report tabs and the recent events ==================================================
R=$work/state-conn-w/report-latest.json
check "the run's report is kept beside the state" test -s "$R"
tab_total() { # the report's objects of a tab's categories
	json "$R" "sum(len(j['objects'].get(c, [])) for c in '$2'.split())"
}
for tab in "added:added" "updated:updated" "deleted:usersDeleted groupsDeleted contactsDeleted" \
	"matched:matched" "skipped:skipped" "conflicts:conflicts"; do
	name=${tab%%:*}
	want=$(tab_total "$name" "${tab#*:}")
	check_contains "the $name tab's link gives the report's count ($want)" "$(ids "tablink-$name")" "($want)"
	check_eq "the $name tab lists its objects (at most 100)" "$((want > 100 ? 100 : want))" \
		"$(json "$D" "sum(1 for r in j['rows'] if r['panel'] == 'tab-$name' and r['class'] == 'item')")"
done
check "the fixture has naming conflicts and invalid values to show" \
	test "$(tab_total conflicts conflicts)" -gt 0 -a "$(json "$R" "len(j['warnings'])")" -gt 0
check_eq "Recent Events: each naming conflict with its DN" \
	"$(json "$R" "sorted(o['dn'] for o in j['objects']['conflicts'])")" \
	"$(json "$D" "sorted(r['cells'][1] for r in j['rows'] if r['class'] == 'event conflict')")"
check_eq "Recent Events: each invalid value with its DN" \
	"$(json "$R" "sorted(o['dn'] for o in j['warnings'])")" \
	"$(json "$D" "sorted(r['cells'][1] for r in j['rows'] if r['class'] == 'event invalid')")"
check_contains "Recent Events: the invalid value names its attribute" \
	"$(json "$D" "[r['cells'][2] for r in j['rows'] if r['class'] == 'event invalid'][0]")" "the attribute telephoneNumber"
curl -fsS -D "$work/rj.h" -o "$work/report.json" "$URL/report.json"
check "the JSON download is the report" cmp -s "$R" "$work/report.json"
check_contains "it is offered as a download" "$(cat "$work/rj.h")" 'Content-Disposition: attachment; filename="dirconn-report.json"'
curl -fsS -o "$work/report.csv" "$URL/report.csv"
check_eq "the CSV download holds every object and warning (RFC 4180, parsed by Python's csv)" \
	"$(json "$R" "sum(len(v) for v in j['objects'].values()) + len(j['warnings'])")" \
	"$("$PY" -c 'import csv,sys; r=list(csv.reader(open(sys.argv[1], newline="", encoding="utf-8"))); print(len(r) - 1 if r[0][0] == "category" else -1)' "$work/report.csv")"
chromium_run --screenshot="$work/page-synced.png" --window-size=1280,1600 "$URL/" >/dev/null || true
check "a screenshot of the page is taken" test -s "$work/page-synced.png"

# ==== actions =================================================================================
CSRF=$(json "$D" "j['csrf'][0]")
post() { # post CURL-ARGS...: the HTTP status of a POST /action
	curl -sS -o "$work/post.body" -w '%{http_code}' -X POST "$@" "$URL/action"
}
check_eq "an action without credentials is refused (401)" 401 "$(post --data "csrf=$CSRF&action=sync-full")"
check_eq "an action with a wrong password is refused (401)" 401 "$(post -u "admin:wrong" --data "csrf=$CSRF&action=sync-full")"
check_eq "an action without the CSRF token is refused (403)" 403 "$(post -u "admin:$PASSWORD" --data "action=sync-full")"
# the token with its last character changed (to one it is not)
last=${CSRF: -1}
[[ $last == 0 ]] && wrong="${CSRF%?}1" || wrong="${CSRF%?}0"
check_eq "an action with a wrong CSRF token is refused (403)" 403 "$(post -u "admin:$PASSWORD" --data "csrf=$wrong&action=sync-full")"
check_eq "GET /action is not an action (405)" 405 "$(curl -sS -o /dev/null -w '%{http_code}' -u "admin:$PASSWORD" "$URL/action")"
check_eq "no sync was started by the refused actions" 1 "$(runs)"
check_eq "Sync Now (full) with credentials and the token: 303 to the page" 303 "$(post -u "admin:$PASSWORD" --data "csrf=$CSRF&action=sync-full")"
check "the sync runs and ends" wait_until 300 idle_after 1
check_eq "it was a full sync" full "$(st "j['last'][0]['type']")"
check_contains "the action is logged with the remote address" "$(cat "$work/dirconnd.log")" "web: sync-full requested from 127.0.0.1 port"
check_contains "the refusals are logged too" "$(cat "$work/dirconnd.log")" "web: action refused from 127.0.0.1 port"
check_eq "Pause with a bearer token: 303" 303 "$(post -H "Authorization: Bearer $PASSWORD" --data "csrf=$CSRF&action=pause")"
check_eq "status --json: paused" True "$(st "j['paused']")"
check_eq "Resume: 303" 303 "$(post -u "admin:$PASSWORD" --data "csrf=$CSRF&action=resume")"
check_eq "status --json: resumed" False "$(st "j['paused']")"
curl -fsS -o "$work/metrics2.txt" "$URL/metrics"
M=$("$PY" "$SRC/tests/integration/web_check.py" metrics "$work/metrics2.txt")
check_eq "/metrics counts the second sync" 2 "$(json "$M" "int(j.get('dirconn_sync_duration_seconds_count{type=full}', 0) + j.get('dirconn_sync_duration_seconds_count{type=incremental}', 0))")"

# ==== an action through the page, in Chromium (DevTools protocol: a click on the button) ======
n=$(runs)
run_capture br "$PY" "$SRC/tests/integration/web_browser.py" --profile "$work/cdp-anon" --url "$URL/" \
	--click act-sync-incremental
check_eq "Chromium without credentials: the click posts the form to /action" "POST /action" \
	"$(json "$br_out" "' '.join(j['requests'][0][:2])" 2>/dev/null || echo "$br_err")"
check_eq "... and is refused (401)" 401 "$(json "$br_out" "j['status']" 2>/dev/null)"
check_eq "no sync ran" "$n" "$(runs)"
run_capture bc "$PY" "$SRC/tests/integration/web_browser.py" --profile "$work/cdp-admin" --url "$URL/" \
	--click act-sync-full --user admin --password-file "$work/web.password"
check_eq "Chromium with credentials: POST /action answered 303, then the page" "POST /action 303|GET / None" \
	"$(json "$bc_out" "'|'.join(' '.join(str(x) for x in r) for r in j['requests'])" 2>/dev/null || echo "$bc_err")"
check_eq "the browser is back on the page" "/ 200" "$(json "$bc_out" "j['path'] + ' ' + str(j['status'])" 2>/dev/null)"
check "the sync clicked in the browser runs and ends" wait_until 300 idle_after "$n"
check_eq "the browser's click is logged with its address" 2 "$(grep -c 'web: sync-full requested from 127.0.0.1 port' "$work/dirconnd.log")"

# ==== change latency: a notified change reaches the cloud =====================================
NOTIFY=yes conf "$work/w.conf" "listen = 127.0.0.1:$WPORT" "password_file = $work/web.password"
kill -HUP "$DPID"
notified() { [[ $(st "j['notifications']['state']") == connected ]]; }
check "after SIGHUP with notifications = yes the notification connection is up" wait_until 60 notified
metric_now() { curl -fsS "$URL/metrics" >"$work/m.txt" && json "$("$PY" "$SRC/tests/integration/web_check.py" metrics "$work/m.txt")" "int(j.get('$1', -1))"; }
check_eq "dirconn_notification_state{state=connected}" 1 "$(metric_now 'dirconn_notification_state{state=connected}')"
check_eq "no change latency yet" 0 "$(metric_now dirconn_change_latency_seconds_count)"
u=$(json "$LDSFX_MANIFEST" "j['samples'][0]['dn']")
t_change=$(date +%s)
ldap_modify "dn: $u
changetype: modify
replace: displayName
displayName: Web Latency $t_change"
latency_counted() { [[ $(metric_now dirconn_change_latency_seconds_count) -ge 1 ]]; }
check "the notified change's sync is counted in dirconn_change_latency_seconds" wait_until 120 latency_counted
lat=$(json "$("$PY" "$SRC/tests/integration/web_check.py" metrics "$work/m.txt")" "j['dirconn_change_latency_seconds_sum'] / j['dirconn_change_latency_seconds_count']")
check "the latency is plausible (0 < $lat s <= the wait)" "$PY" -c "import sys; sys.exit(not (0 < $lat <= $(date +%s) - $t_change + 1))"
lat_check() { page_check && [[ $(json "$work/dom.json" "j['svg'].get('chart-latency', -1)") -ge 1 ]]; }
check "the page's change latency chart shows it (one bar per latency)" wait_until 120 lat_check
check_eq "as many bars as latencies counted" "$(metric_now dirconn_change_latency_seconds_count)" "$(json "$work/dom.json" "j['svg'].get('chart-latency', -1)")"

# ==== a failed sync turns the indicator red ===================================================
sync_cloud_stop
run_capture sn dirconnctl sync-now --incremental --socket "$SOCK"
check_eq "sync-now with the cloud down is queued" 0 "$sn_rc"
failed() { [[ $(st "j['overall']") == error && $(st "j.get('current') is None") == True ]]; }
check "the failed sync makes the status overall error" wait_until 300 failed
red_check() { page_check && [[ $(json "$work/dom.json" "j['classes']['indicator']") == "ind red" ]]; }
check "the page's indicator turns red" wait_until 120 red_check
check_eq "the page shows overall as status --json" "$(json "$work/st2.json" "j['overall']")" "$(json "$work/dom.json" "j['ids']['overall']")"
check_contains "the reason is shown" "$(json "$work/dom.json" "j['ids']['reasons']")" "$(json "$work/st2.json" "j['reasons'][0]")"
chromium_run --screenshot="$work/page-failed.png" --window-size=1280,1600 "$URL/" >/dev/null || true

# ==== SIGTERM closes the listener ============================================================
daemon_stop
check "the web listener is closed after SIGTERM" bash -c "! curl -sS -o /dev/null '$URL/metrics' 2>/dev/null"
check "no sanitizer report in the daemon's log" bash -c "! grep -q 'ERROR: AddressSanitizer\|runtime error:' '$work/dirconnd.log'"
finish
