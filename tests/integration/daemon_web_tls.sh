# Integration test of dirconnd's [web] listener outside loopback (issue 18, items 1 and 2): in a
# network namespace of its own, with 192.0.2.10 (TEST-NET-1) on its loopback interface, so that
# the address counts as "not loopback" for dirconnd while nothing leaves the namespace:
#   - HTTPS only (TLS through bufferevent_openssl), credentials for every request (HTTP Basic or
#     bearer), the page and an action with them;
#   - /metrics on its own listener ([web] metrics_listen, loopback: no credentials), over TLS;
#   - a TLS key that cannot be read and a port in use stop dirconnd with one line and exit 3 / 5.
# No directory and no cloud are needed: the page is served whatever the syncs do (they fail here).
if [[ -z ${DIRCONN_WEB_NETNS:-} ]]; then
	export DIRCONN_WEB_NETNS=1
	if [[ $(id -u) -eq 0 ]]; then exec unshare --net bash "$0" "$@"; fi
	exec unshare --user --map-root-user --net bash "$0" "$@"
fi
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for bin in dirconnctl dirconnd promtool curl openssl ip; do
	command -v "$bin" >/dev/null || { echo "not ok - $bin is missing (scripts/install-deps.sh)"; exit 1; }
done
ip link set lo up
ip addr add 192.0.2.10/32 dev lo

work=$(mktemp -d /tmp/dirconn-it-webtls-XXXXXX)
DPID=
cleanup() {
	local rc=$?
	daemon_stop
	if [[ $rc -eq 0 && $T_FAIL -eq 0 && -z ${KEEP_WORK:-} ]]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT

# A CA and a server certificate for 192.0.2.10 and 127.0.0.1.
cert_ca "$work/ca" "dirconn web test CA"
cert_issue "$work/ca" "$work/web" /CN=dirconn serverAuth IP:192.0.2.10 IP:127.0.0.1
openssl rand -hex 16 | tr -d '\n' >"$work/web.password"
PASSWORD=$(cat "$work/web.password")
conf() { # conf FILE [WEB SECTION LINES]
	local file=$1
	shift
	cat >"$file" <<-CONF
	[connector]
	name = conn-tls
	state_dir = ${STATE:-$work/state}
	[ldap]
	urls = ldap://127.0.0.1:9
	base_dn = dc=example,dc=com
	[cloud]
	url = https://127.0.0.1:9
	org = acme
	[ha]
	lease = none
	[schedule]
	incremental_interval = 10m
	notifications = no
	[log]
	level = info
	[web]
	CONF
	printf '%s\n' "$@" >>"$file"
}
conf "$work/w.conf" "listen = 192.0.2.10:8443" "metrics_listen = 127.0.0.1:9470" \
	"tls_cert = $work/web.pem" "tls_key = $work/web.key" "password_file = $work/web.password"
dirconnd --config "$work/w.conf" 2>>"$work/dirconnd.log" &
DPID=$!
C=(curl -sS --cacert "$work/ca.pem" -o "$work/body" -w '%{http_code}')
up() { [[ $("${C[@]}" https://127.0.0.1:9470/metrics 2>/dev/null) == 200 ]]; }
check "dirconnd serves HTTPS on both listeners" wait_until 60 up
check_eq "the page without credentials: 401" 401 "$("${C[@]}" -D "$work/h401" https://192.0.2.10:8443/)"
check_contains "the 401 asks for HTTP Basic" "$(cat "$work/h401")" 'WWW-Authenticate: Basic realm="dirconn"'
check_eq "/status.json without credentials: 401" 401 "$("${C[@]}" https://192.0.2.10:8443/status.json)"
check_eq "a wrong password: 401" 401 "$("${C[@]}" -u admin:wrong https://192.0.2.10:8443/)"
check_eq "another user name with the password: 401" 401 "$("${C[@]}" -u root:"$PASSWORD" https://192.0.2.10:8443/)"
check_eq "the page with HTTP Basic: 200" 200 "$("${C[@]}" -u admin:"$PASSWORD" https://192.0.2.10:8443/)"
check_contains "it is the dashboard" "$(cat "$work/body")" "<h1>Directory Connector Dashboard</h1>"
check "it holds no secret" bash -c "! grep -qF '$PASSWORD' '$work/body'"
CSRF=$(grep -o 'name="csrf" value="[0-9a-f]*"' "$work/body" | head -1 | sed 's/.*value="//; s/"$//')
check "the page carries a CSRF token" test ${#CSRF} -eq 64
check_eq "/status.json with a bearer token: 200" 200 "$("${C[@]}" -H "Authorization: Bearer $PASSWORD" https://192.0.2.10:8443/status.json)"
check_eq "status.json is the admin socket's status" conn-tls "$(json "$work/body" "j['connectors'][0]['name']")"
check "clear HTTP is not served on the TLS port" bash -c "! curl -sS -m 10 -o /dev/null http://192.0.2.10:8443/ 2>/dev/null"
check_eq "/metrics is not on the page's listener (metrics_listen): 404" 404 "$("${C[@]}" -u admin:"$PASSWORD" https://192.0.2.10:8443/metrics)"
check_eq "/metrics on its loopback listener, over TLS, without credentials: 200" 200 "$("${C[@]}" https://127.0.0.1:9470/metrics)"
run_capture prom promtool check metrics <"$work/body"
check_eq "promtool check metrics passes" 0 "$prom_rc"
check_eq "the page is not on the metrics listener: 404" 404 "$("${C[@]}" https://127.0.0.1:9470/)"
check_eq "Pause without credentials: 401" 401 "$("${C[@]}" --data "csrf=$CSRF&action=pause" https://192.0.2.10:8443/action)"
check_eq "Pause with credentials and the token: 303" 303 "$("${C[@]}" -u admin:"$PASSWORD" --data "csrf=$CSRF&action=pause" https://192.0.2.10:8443/action)"
check_eq "dirconnd is paused" True "$(json "$(dirconnctl status --socket "$work/state/dirconnd.sock" --json)" "j['paused']")"
check_contains "the action is logged with the remote address" "$(cat "$work/dirconnd.log")" "web: pause requested from 192.0.2.10 port"
check_eq "an unknown action: 409 with the reason" 409 "$("${C[@]}" -u admin:"$PASSWORD" --data "csrf=$CSRF&action=format-disk" https://192.0.2.10:8443/action)"
check_contains "the reason" "$(cat "$work/body")" "unknown action"

# ==== start-up errors ====================================================================
STATE=$work/state-busy conf "$work/busy.conf" "listen = 127.0.0.1:9470"
run_capture busy dirconnd --config "$work/busy.conf"
check_eq "a port in use: exit 5 (EIO)" 5 "$busy_rc"
check_contains "the error names the address" "$busy_err" "web: cannot listen on 127.0.0.1:9470"
daemon_stop
conf "$work/key.conf" "listen = 192.0.2.10:8443" "tls_cert = $work/web.pem" "tls_key = $work/missing.key" \
	"password_file = $work/web.password"
run_capture key dirconnd --config "$work/key.conf"
check_eq "an unreadable TLS key: exit 3 (ECONFIG)" 3 "$key_rc"
check_contains "the error names the key file" "$key_err" "$work/missing.key: [web] tls_key:"
conf "$work/pw.conf" "listen = 192.0.2.10:8443" "tls_cert = $work/web.pem" "tls_key = $work/web.key" \
	"password_file = $work/missing.password"
run_capture pw dirconnd --config "$work/pw.conf"
check_eq "a missing password file: exit 5 (EIO)" 5 "$pw_rc"
check_contains "the error names the password file" "$pw_err" "$work/missing.password: [web] password_file:"
check "no sanitizer report in the daemon's log" bash -c "! grep -q 'ERROR: AddressSanitizer\|runtime error:' '$work/dirconnd.log'"
finish
