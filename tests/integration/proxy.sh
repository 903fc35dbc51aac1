#!/usr/bin/env bash
# Proxies with real servers on loopback: squid with Basic and with Digest
# authentication, tinyproxy without, PAC files over HTTP and from a file, the
# environment in mode auto, and a full sync from the AD LDS-like fixture into
# dirconn-cloud (HTTPS) through squid chosen by a PAC file.
#
# The cloud listens on 127.0.0.1 like everything else, so it cannot be
# firewalled; "reachable only through the proxy" is shown by squid's
# access.log (CONNECT 127.0.0.1:<cloud port> by the proxy user) and by the
# same sync failing, naming the proxies, once squid is down.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for bin in squid tinyproxy htpasswd dirconnctl dirconn-cloud; do
	command -v "$bin" >/dev/null || { echo "not ok - $bin is missing (scripts/install-deps.sh)"; exit 1; }
done

T=$(mktemp -d /tmp/dirconn-proxy-test.XXXXXX)
chmod 755 "$T"
PIDS=()
cleanup() {
	local rc=$?
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	"$LDSFX" stop "$T/lds" >/dev/null 2>&1 || true
	if [[ $rc -ne 0 || ${KEEP_TMP:-0} == 1 ]]; then echo "test dir: $T"; else rm -rf "$T"; fi
	exit "$rc"
}
trap cleanup EXIT

# wait_port PORT: until something accepts on 127.0.0.1:PORT (60 s: a loaded machine is slow)
wait_port() {
	wait_until 60 port_open "$1" && return 0
	echo "not ok - nothing listens on port $1"
	exit 1
}

# ---- certificates and the cloud (HTTPS) --------------------------------------
{ cert_ca "$T/ca" "dirconn proxy test CA" &&
	cert_issue "$T/ca" "$T/server" /CN=localhost serverAuth IP:127.0.0.1 DNS:localhost; } ||
	{ echo "not ok - certificate generation"; exit 1; }
openssl rand -hex 24 >"$T/admin.token"
ADMIN_TOKEN=$(cat "$T/admin.token")
dirconn-cloud --listen 127.0.0.1:0 --db "$T/cloud.db" --admin-token-file "$T/admin.token" \
	--org acme --tls-cert "$T/server.pem" --tls-key "$T/server.key" --ready-file "$T/cloud.ready" \
	2>>"$T/cloud.log" &
PIDS+=($!)
for _ in $(seq 1 1200); do [[ -s $T/cloud.ready ]] && break; sleep 0.05; done # up to 60 s
CPORT=$(cat "$T/cloud.ready")
CLOUD=https://127.0.0.1:$CPORT
SPC=$CLOUD/scim/v2/acme/ServiceProviderConfig
reg=$(curl -sS --cacert "$T/ca.pem" -H "Authorization: Bearer $ADMIN_TOKEN" \
	-H 'Content-Type: application/json' -d '{"name":"proxytest","host":"proxytest.example.test"}' \
	"$CLOUD/v1/orgs/acme/connectors")
CID=$(json "$reg" 'j["id"]')
json "$reg" 'j["secret"]' >"$T/client-secret"
cloud_users() {
	json "$(curl -sS --noproxy '*' --cacert "$T/ca.pem" -H "Authorization: Bearer $ADMIN_TOKEN" \
		"$CLOUD/scim/v2/acme/Users?count=1")" "j['totalResults']"
}

# ---- proxies ------------------------------------------------------------------
PW='s3cret pw!'
printf '%s\n' "$PW" >"$T/proxy-password"
printf 'wrong\n' >"$T/wrong-password"
chmod 600 "$T/proxy-password" "$T/wrong-password"

# squid_start NAME basic|digest: squid with that authentication; sets SQ_<NAME>=port
squid_start() {
	local name=$1 auth=$2 port dir=$T/$1
	port=$(free_port)
	mkdir -p "$dir"
	htpasswd -bc "$dir/htpasswd" alice "$PW" 2>/dev/null
	printf 'alice:%s\n' "$PW" >"$dir/digest-passwords"
	local auth_lines
	if [[ $auth == basic ]]; then
		auth_lines="auth_param basic program /usr/lib/squid/basic_ncsa_auth $dir/htpasswd
auth_param basic realm dirconn-test"
	else
		auth_lines="auth_param digest program /usr/lib/squid/digest_file_auth $dir/digest-passwords
auth_param digest realm dirconn-test"
	fi
	cat >"$dir/squid.conf" <<-EOF
		http_port 127.0.0.1:$port
		pid_filename $dir/squid.pid
		cache_log $dir/cache.log
		access_log stdio:$dir/access.log
		cache_store_log none
		cache deny all
		cache_mem 4 MB
		coredump_dir $dir
		pinger_enable off
		netdb_filename none
		icp_port 0
		htcp_port 0
		shutdown_lifetime 0 seconds
		$auth_lines
		acl authed proxy_auth REQUIRED
		http_access allow authed
		http_access deny all
	EOF
	[[ $(id -u) != 0 ]] || chown -R proxy "$dir" # squid drops to the proxy user as root
	chmod 644 "$dir/htpasswd" "$dir/digest-passwords"
	squid -N -f "$dir/squid.conf" >"$dir/squid.out" 2>&1 &
	PIDS+=($!)
	printf -v "SQPID_$name" '%s' "$!"
	printf -v "SQ_$name" '%s' "$port"
	wait_port "$port"
}
squid_start basic basic
squid_start digest digest

TPORT=$(free_port)
mkdir -p "$T/tiny"
[[ $(id -u) != 0 ]] || printf 'User nobody\nGroup nogroup\n' >"$T/tiny/tinyproxy.conf"
cat >>"$T/tiny/tinyproxy.conf" <<EOF
Port $TPORT
Listen 127.0.0.1
Timeout 60
LogFile "$T/tiny/tinyproxy.log"
LogLevel Connect
MaxClients 20
Allow 127.0.0.1
EOF
[[ $(id -u) != 0 ]] || chown -R nobody "$T/tiny" # tinyproxy runs as User nobody
tinyproxy -d -c "$T/tiny/tinyproxy.conf" >"$T/tiny/out" 2>&1 &
PIDS+=($!)
wait_port "$TPORT"

DOWN=$(free_port) # nothing listens here

# ---- PAC files ----------------------------------------------------------------
mkdir -p "$T/pac"
cat >"$T/pac/proxy.pac" <<EOF
function FindProxyForURL(url, host) {
    if (host == "127.0.0.1")
        return "PROXY 127.0.0.1:$DOWN; PROXY 127.0.0.1:$SQ_basic";
    return "DIRECT";
}
EOF
echo 'function FindProxyForURL(url, host) { return "garbage"; }' >"$T/pac/garbage.pac"
echo 'function FindProxyForURL(url, host) { return (' >"$T/pac/syntax.pac"
echo 'function FindProxyForURL(url, host) { throw "no"; }' >"$T/pac/throws.pac"
HPORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$T/pac" "$HPORT" >"$T/pac.log" 2>&1 &
PIDS+=($!)
wait_port "$HPORT"
PAC_HTTP=pac+http://127.0.0.1:$HPORT/proxy.pac

# ---- the directory ------------------------------------------------------------
"$LDSFX" start adlds "$T/lds" --users 40 >/dev/null
# shellcheck disable=SC1091
source "$T/lds/env"

# conf NAME [proxy lines...]: a configuration file with the given [proxy] section
conf() {
	local name=$1
	shift
	{
		cat <<-EOF
			[connector]
			name = proxytest
			state_dir = $T/state-$name
			[ldap]
			urls = $LDSFX_URL_TLS
			bind_dn = $LDSFX_BIND_DN
			bind_password_file = $LDSFX_BIND_PASSWORD_FILE
			ca_file = $LDSFX_CA_FILE
			base_dn = $LDSFX_BASE_DN
			[cloud]
			url = $CLOUD
			org = acme
			client_id = $CID
			client_secret_file = $T/client-secret
			ca_file = $T/ca.pem
			[log]
			level = warn
			[proxy]
		EOF
		printf '%s\n' "$@"
	} >"$T/$name.conf"
	mkdir -p "$T/state-$name"
	echo "$T/$name.conf"
}
connects() { grep -c "CONNECT 127.0.0.1:$CPORT" "$1" 2>/dev/null || true; }

# ---- mode none and explicit ---------------------------------------------------
c=$(conf none 'mode = none')
run_capture r dirconnctl proxy-check --config "$c"
check_eq "mode none: proxy-check exit" 0 "$r_rc"
check_contains "mode none: one DIRECT route that reaches the cloud" "$r_out" "1. DIRECT: reached the cloud: HTTP"

c=$(conf tiny 'mode = explicit' "url = http://127.0.0.1:$TPORT")
run_capture r dirconnctl proxy-check --config "$c"
check_eq "tinyproxy without auth: exit" 0 "$r_rc"
check_contains "tinyproxy: reached" "$r_out" "1. http://127.0.0.1:$TPORT: reached the cloud: HTTP"
check_contains "tinyproxy: proxy-check names the setting that chose the route" "$r_out" \
	"route chosen by: [proxy] mode explicit"
check_contains "tinyproxy: ... and that no proxy authentication was used" "$r_out" \
	"(no proxy authentication)"
check "tinyproxy's log shows the CONNECT to the cloud" grep -q "CONNECT 127.0.0.1:$CPORT" "$T/tiny/tinyproxy.log"

c=$(conf tinynoca 'mode = explicit' "url = http://127.0.0.1:$TPORT")
sed -i "\|^ca_file = $T/ca.pem\$|d" "$c" # the cloud's CA is no longer trusted
run_capture r dirconnctl proxy-check --config "$c"
check_eq "through a proxy the cloud's certificate is still verified: exit 60" 60 "$r_rc"
check_contains "an untrusted cloud certificate is refused through the proxy" "$r_out" \
	"SSL certificate problem"

c=$(conf basic 'mode = explicit' "url = http://127.0.0.1:$SQ_basic" 'username = alice' \
	"password_file = $T/proxy-password" 'auth = basic')
run_capture r dirconnctl proxy-check --config "$c" --json
check_eq "squid Basic: exit" 0 "$r_rc"
check_eq "squid Basic: reached, status from the cloud" "True 200" \
	"$(json "$r_out" 'str(j["proxies"][0]["reached"]) + " " + str(j["proxies"][0]["status"])')"
check "squid Basic: access.log has alice's CONNECT to the cloud" \
	grep -q "CONNECT 127.0.0.1:$CPORT alice" "$T/basic/access.log"
check_eq "squid Basic: proxy-check --json names the scheme used and the setting" "Basic [proxy] mode explicit" \
	"$(json "$r_out" 'j["proxies"][0]["auth"] + " " + j["chosen_by"]')"
no_password() { [[ "$r_out$r_err" != *"$PW"* ]]; }
check "the password is in no output" no_password

c=$(conf any 'mode = explicit' "url = http://127.0.0.1:$SQ_basic" 'username = alice' \
	"password_file = $T/proxy-password")
run_capture r dirconnctl proxy-check --config "$c"
check_eq "squid Basic with auth = any: exit" 0 "$r_rc"

c=$(conf digest 'mode = explicit' "url = http://127.0.0.1:$SQ_digest" 'username = alice' \
	"password_file = $T/proxy-password" 'auth = digest')
run_capture r dirconnctl proxy-check --config "$c"
check_eq "squid Digest: exit" 0 "$r_rc"
check_contains "squid Digest: reached, with Digest" "$r_out" \
	"reached the cloud: HTTP 200 (proxy authentication: Digest)"
check "squid Digest: access.log has alice's CONNECT" \
	grep -q "CONNECT 127.0.0.1:$CPORT alice" "$T/digest/access.log"

c=$(conf wrong 'mode = explicit' "url = http://127.0.0.1:$SQ_basic" 'username = alice' \
	"password_file = $T/wrong-password" 'auth = basic')
run_capture r dirconnctl proxy-check --config "$c"
check_eq "wrong proxy password: proxy-check exit 60" 60 "$r_rc"
check_contains "wrong proxy password: the 407 names the proxy, the user, the scheme offered and the one configured" "$r_out" \
	"proxy http://127.0.0.1:$SQ_basic refused the credentials of user 'alice' (HTTP 407): it offers Basic, [proxy] auth is basic"
run_capture r dirconnctl sync --full --no-progress --config "$c"
check_eq "wrong proxy password: sync exit 60 (EPROXY)" 60 "$r_rc"
check_contains "wrong proxy password: the sync names the proxy, the 407 and the schemes" "$r_err" \
	"proxy http://127.0.0.1:$SQ_basic refused the credentials of user 'alice' (HTTP 407): it offers Basic, [proxy] auth is basic"
check_eq "wrong proxy password: nothing reached the cloud" 0 "$(cloud_users)"
state_rows() { sqlite3 "$T/state-$1/state.db" "SELECT (SELECT count(*) FROM objects) + (SELECT count(*) FROM watermarks) + (SELECT count(*) FROM history)" 2>/dev/null || echo 0; }
check_eq "wrong proxy password: the state holds no object, watermark or history" 0 "$(state_rows wrong)"

c=$(conf digestasbasic 'mode = explicit' "url = http://127.0.0.1:$SQ_digest" 'username = alice' \
	"password_file = $T/proxy-password" 'auth = basic')
run_capture r dirconnctl proxy-check --config "$c"
check_eq "Digest proxy, [proxy] auth = basic: exit 60" 60 "$r_rc"
check_contains "Digest proxy, [proxy] auth = basic: the 407 names both schemes" "$r_out" \
	"proxy http://127.0.0.1:$SQ_digest refused the credentials of user 'alice' (HTTP 407): it offers Digest, [proxy] auth is basic"
run_capture r dirconnctl sync --full --no-progress --config "$c"
check_contains "Digest proxy, [proxy] auth = basic: the sync says the same" "$r_err" \
	"(HTTP 407): it offers Digest, [proxy] auth is basic"

c=$(conf noauth 'mode = explicit' "url = http://127.0.0.1:$SQ_basic")
run_capture r dirconnctl proxy-check --config "$c"
check_eq "no credentials for an authenticating proxy: exit 60" 60 "$r_rc"
check_contains "no credentials: the 407 says what the proxy offers" "$r_out" \
	"proxy http://127.0.0.1:$SQ_basic wants credentials (HTTP 407): it offers Basic, [proxy] auth is any"

c=$(conf excluded 'mode = explicit' "url = http://127.0.0.1:$DOWN" 'no_proxy = 127.0.0.1')
run_capture r dirconnctl proxy-check --config "$c"
check_contains "explicit + no_proxy: proxy-check says [proxy] no_proxy chose DIRECT" "$r_out" \
	"route chosen by: [proxy] no_proxy"
run_capture r dirconnctl sync --full --no-progress --config "$c"
check_eq "explicit proxy with the cloud in no_proxy: the sync goes direct" 0 "$r_rc"
# What a direct sync puts in the cloud is what the sync through the proxy must put in.
EXPECTED_USERS=$(cloud_users)
check "explicit + no_proxy: users arrived ($EXPECTED_USERS)" test "$EXPECTED_USERS" -gt 0
# Start again from an empty cloud for the sync through the PAC's proxy.
curl -sS --noproxy '*' --cacert "$T/ca.pem" -H "Authorization: Bearer $ADMIN_TOKEN" \
	"$CLOUD/scim/v2/acme/Users?count=1000&attributes=id" |
	python3 -c 'import json,sys; [print(r["id"]) for r in json.load(sys.stdin).get("Resources",[])]' |
	while read -r id; do
		curl -sS --noproxy '*' --cacert "$T/ca.pem" -H "Authorization: Bearer $ADMIN_TOKEN" \
			-X DELETE "$CLOUD/scim/v2/acme/Users/$id" >/dev/null
	done
check_eq "cloud emptied" 0 "$(cloud_users)"

# ---- PAC files ----------------------------------------------------------------
c=$(conf pachttp 'mode = pac' "pac_url = $PAC_HTTP" 'username = alice' \
	"password_file = $T/proxy-password" 'auth = basic')
run_capture r dirconnctl proxy-check --config "$c"
check_eq "PAC over HTTP: proxy-check exit" 0 "$r_rc"
check_contains "PAC over HTTP: the PAC URL is shown" "$r_out" "PAC URL: $PAC_HTTP"
check_contains "PAC over HTTP: the PAC file chose the route" "$r_out" \
	"route chosen by: PAC file $PAC_HTTP ([proxy] pac_url)"
check_contains "PAC over HTTP: the first proxy is the one that is down" "$r_out" \
	"1. http://127.0.0.1:$DOWN: did not reach the cloud"
check_contains "PAC over HTTP: the second (squid) reaches the cloud" "$r_out" \
	"2. http://127.0.0.1:$SQ_basic: reached the cloud: HTTP 200"
run_capture r dirconnctl proxy-check "https://localhost:$CPORT/scim/v2/acme/ServiceProviderConfig" --config "$c"
check_contains "PAC over HTTP: other hosts go DIRECT" "$r_out" "1. DIRECT: reached the cloud"

before=$(connects "$T/basic/access.log")
run_capture r dirconnctl sync --full --no-progress --config "$c"
check_eq "full sync through squid (Basic) chosen by a PAC over HTTP: exit" 0 "$r_rc"
[[ $r_rc == 0 ]] || echo "$r_err" | tail -5
check_eq "full sync through the PAC's proxy: as many users as directly" "$EXPECTED_USERS" "$(cloud_users)"
after=$(connects "$T/basic/access.log")
check "squid's access.log grew with the sync's CONNECTs to the cloud ($before -> $after)" \
	test "$after" -gt "$before"
check "the sync's CONNECTs carry the proxy user" grep -q "TCP_TUNNEL/200 .* CONNECT 127.0.0.1:$CPORT alice" "$T/basic/access.log"

c=$(conf pacfile 'mode = pac' "pac_url = pac+file://$T/pac/proxy.pac" 'username = alice' \
	"password_file = $T/proxy-password")
run_capture r dirconnctl proxy-check --config "$c"
check_eq "PAC from a file: exit" 0 "$r_rc"
check_contains "PAC from a file: squid reached" "$r_out" "2. http://127.0.0.1:$SQ_basic: reached the cloud"

run_capture r dirconnctl proxy-check --config "$(conf pac404 'mode = pac' "pac_url = pac+http://127.0.0.1:$HPORT/missing.pac")"
check_eq "PAC download failure: exit 60" 60 "$r_rc"
check_contains "PAC download failure: names the PAC URL and the status" "$r_err" \
	"PAC pac+http://127.0.0.1:$HPORT/missing.pac cannot be downloaded: HTTP 404"
run_capture r dirconnctl proxy-check --config "$(conf pacgone 'mode = pac' "pac_url = pac+file://$T/pac/none.pac")"
check_contains "PAC file missing: named" "$r_err" "PAC pac+file://$T/pac/none.pac cannot be read"
run_capture r dirconnctl proxy-check --config "$(conf pacgarbage 'mode = pac' "pac_url = pac+http://127.0.0.1:$HPORT/garbage.pac")"
check_eq "PAC answering garbage: exit 60" 60 "$r_rc"
check_contains "PAC answering garbage: named" "$r_err" "garbage.pac returned 'garbage'"
run_capture r dirconnctl proxy-check --config "$(conf pacsyntax 'mode = pac' "pac_url = pac+file://$T/pac/syntax.pac")"
check_contains "PAC with a syntax error: named" "$r_err" "syntax.pac cannot be evaluated"
c=$(conf pacthrows 'mode = pac' "pac_url = pac+file://$T/pac/throws.pac")
run_capture r dirconnctl sync --full --no-progress --config "$c"
check_eq "PAC that throws: the sync fails with EPROXY" 60 "$r_rc"
check_contains "PAC that throws: named" "$r_err" "throws.pac: FindProxyForURL"

# ---- the environment in mode auto ------------------------------------------------
c=$(conf auto 'mode = auto')
run_capture r env https_proxy=http://127.0.0.1:$TPORT no_proxy= dirconnctl proxy-check --config "$c"
check_eq "auto: https_proxy honoured: exit" 0 "$r_rc"
check_contains "auto: https_proxy honoured" "$r_out" "1. http://127.0.0.1:$TPORT: reached the cloud"
check_contains "auto: https_proxy named as the setting" "$r_out" "route chosen by: https_proxy in the environment"
run_capture r env https_proxy=127.0.0.1:$TPORT no_proxy= dirconnctl proxy-check --config "$c"
check_eq "auto: https_proxy=host:port without a scheme: exit" 0 "$r_rc"
check_contains "auto: https_proxy=host:port is http://host:port, as curl reads it" "$r_out" \
	"1. http://127.0.0.1:$TPORT: reached the cloud"
run_capture r env https_proxy=http://127.0.0.1:$TPORT no_proxy=localhost,127.0.0.1 dirconnctl proxy-check --config "$c"
check_contains "auto: no_proxy excludes the host" "$r_out" "1. DIRECT: reached the cloud"
check_contains "auto: ... and is named as the setting" "$r_out" "route chosen by: no_proxy in the environment"
# no_proxy as curl matches it (CURLOPT_NOPROXY), URL -> expected first route
LOCAL=https://localhost:$CPORT/scim/v2/acme/ServiceProviderConfig
for case in "localhost $LOCAL DIRECT" ".localhost $LOCAL DIRECT" "ocalhost $LOCAL http://127.0.0.1:$TPORT" \
	"* $SPC DIRECT" "127.0.0.0/8 $SPC DIRECT" "127.0.0.2 $SPC http://127.0.0.1:$TPORT"; do
	read -r np u want <<<"$case"
	run_capture r env https_proxy=http://127.0.0.1:$TPORT no_proxy="$np" dirconnctl proxy-check "$u" --config "$c"
	check_contains "auto: no_proxy=$np for ${u%%/scim*}: $want, as curl decides" "$r_out" "1. $want: reached the cloud"
done
run_capture r env https_proxy="$PAC_HTTP" no_proxy= dirconnctl proxy-check --config "$c"
check_contains "auto: a pac+http:// URL in the environment is evaluated" "$r_out" "PAC URL: $PAC_HTTP"
check_contains "auto: ... and named as the setting" "$r_out" \
	"route chosen by: PAC file $PAC_HTTP (https_proxy in the environment)"
before=$(connects "$T/tiny/tinyproxy.log")
run_capture r env https_proxy=http://127.0.0.1:$TPORT no_proxy= dirconnctl sync --full --no-progress --config "$c"
check_eq "auto: a sync with https_proxy in the environment: exit" 0 "$r_rc"
[[ $r_rc == 0 ]] || echo "$r_err" | tail -5
after=$(connects "$T/tiny/tinyproxy.log")
check "auto: the sync's requests went through tinyproxy ($before -> $after)" test "$after" -gt "$before"

# ---- a dead first proxy is remembered by every cloud client of a run ----------------
# A listener that counts the connections made to it and closes each at once: a proxy that dies
# on every CONNECT. The PAC puts it first, before squid.
DEADP=$(free_port)
python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
while True:
    c, _ = s.accept()
    with open(sys.argv[2], "a") as f: f.write("connection\n")
    c.close()
' "$DEADP" "$T/dead-proxy.log" &
PIDS+=($!)
wait_port "$DEADP"
wait_until 10 test -s "$T/dead-proxy.log" # wait_port's own connection, counted
: >"$T/dead-proxy.log"
cat >"$T/pac/dead.pac" <<EOF
function FindProxyForURL(url, host) {
    return "PROXY 127.0.0.1:$DEADP; PROXY 127.0.0.1:$SQ_basic; DIRECT";
}
EOF
c=$(conf deadfirst 'mode = pac' "pac_url = pac+http://127.0.0.1:$HPORT/dead.pac" 'username = alice' \
	"password_file = $T/proxy-password")
before=$(connects "$T/basic/access.log")
run_capture r dirconnctl sync --incremental --no-progress --config "$c"
check_eq "PAC with a dead first proxy: the sync (lease, token, SCIM, shared state) works" 0 "$r_rc"
[[ $r_rc == 0 ]] || echo "$r_err" | tail -5
after=$(connects "$T/basic/access.log")
check "PAC with a dead first proxy: the run went through squid ($before -> $after)" test "$after" -gt "$before"
check_eq "PAC with a dead first proxy: the whole run tried it once" 1 "$(wc -l <"$T/dead-proxy.log")"

# ---- the HA lease: the syncs above took and released it too; the probe takes it twice more ----
lease_transitions() {
	json "$(curl -sS --noproxy '*' --cacert "$T/ca.pem" -H "Authorization: Bearer $ADMIN_TOKEN" \
		"$CLOUD/v1/orgs/acme/lease")" "'%s %s' % (j['holderIdentity'], j['leaseTransitions'])"
}
read -r _ lt0 <<<"$(lease_transitions)"
before=$(connects "$T/basic/access.log")
run_capture r "${DIRCONN_BUILD_DIR:-.}/tests/integration/proxy_lease_probe" "$T/pachttp.conf"
check_eq "HA lease acquired and renewed through squid chosen by the PAC: exit" 0 "$r_rc"
[[ $r_rc == 0 ]] || echo "$r_err"
check_contains "HA lease: held by the connector" "$r_out" "lease held by $CID"
check_contains "HA lease: released again" "$r_out" "lease released"
holder=$(lease_transitions)
check_eq "HA lease: the cloud saw it taken and given back" "None $((lt0 + 2))" "$holder"
after=$(connects "$T/basic/access.log")
check "HA lease: its requests went through squid ($before -> $after)" test "$after" -gt "$before"

# ---- dirconnd: the route logged once per change; SIGHUP moves the lease client too ----
c=$(conf daemon 'mode = explicit' "url = http://127.0.0.1:$TPORT")
sed -i 's/^level = warn$/level = info/' "$c"
printf '[ha]\nlease_duration = 3s\n' >>"$c" # renewed every second
renew_time() {
	json "$(curl -sS --noproxy '*' --cacert "$T/ca.pem" -H "Authorization: Bearer $ADMIN_TOKEN" \
		"$CLOUD/v1/orgs/acme/lease")" "j.get('renewTime')"
}
# renewed_twice: the lease was renewed twice since this was first called for a stage
renewed_twice() {
	local now
	now=$(renew_time)
	[[ $now != "$RT_LAST" ]] && { RT_LAST=$now; RT_SEEN=$((RT_SEEN + 1)); }
	((RT_SEEN >= 3))
}
route_lines() { grep -c "proxy route for https://127.0.0.1:$CPORT: " "$T/dirconnd.log" || true; }
DLOG=$T/dirconnd.log
dirconnd --config "$c" --no-initial-sync 2>>"$DLOG" &
DPID=$!
PIDS+=($DPID)
ROUTE_TINY="proxy route for https://127.0.0.1:$CPORT: proxy http://127.0.0.1:$TPORT, chosen by [proxy] mode explicit"
check "dirconnd logs the route of the lease client at info" wait_until 60 grep -qF "$ROUTE_TINY" "$DLOG"
RT_LAST=$(renew_time) RT_SEEN=0
check "dirconnd renews its lease through tinyproxy" wait_until 60 renewed_twice
check_eq "dirconnd: one route line while the route stays, not one per request" 1 "$(route_lines)"
BL=$(wc -l <"$T/basic/access.log")
sed -i "s|^url = http://127.0.0.1:$TPORT\$|url = http://127.0.0.1:$SQ_basic\nusername = alice\npassword_file = $T/proxy-password\nauth = basic|" "$c"
kill -HUP "$DPID"
check "SIGHUP: the lease client takes the new [proxy] settings" \
	wait_until 60 grep -qF "ha: the lease client took the new [proxy] settings" "$DLOG"
ROUTE_SQUID="proxy route for https://127.0.0.1:$CPORT: proxy http://127.0.0.1:$SQ_basic, chosen by [proxy] mode explicit"
check "SIGHUP: the new route is logged" wait_until 60 grep -qF "$ROUTE_SQUID" "$DLOG"
alice_after() { tail -n +$((BL + 1)) "$T/basic/access.log" | grep -q "TCP_TUNNEL/200 .* CONNECT 127.0.0.1:$CPORT alice"; }
check "SIGHUP: the lease requests go through squid as alice" wait_until 60 alice_after
RT_LAST=$(renew_time) RT_SEEN=0
check "dirconnd renews its lease through squid" wait_until 60 renewed_twice
check_eq "dirconnd: two route lines for one change of route" 2 "$(route_lines)"
kill "$DPID"
wait "$DPID" 2>/dev/null || true
check "no sanitizer report from dirconnd" bash -c "! grep -qE 'Sanitizer|runtime error:' '$DLOG'"

# ---- the proxy going away --------------------------------------------------------
kill "$SQPID_basic"
wait "$SQPID_basic" 2>/dev/null || true
c=$(conf pachttp2 'mode = pac' "pac_url = $PAC_HTTP" 'username = alice' \
	"password_file = $T/proxy-password")
run_capture r dirconnctl sync --full --no-progress --config "$c"
check_eq "squid down, PAC allows no DIRECT: the sync fails with EPROXY" 60 "$r_rc"
check_contains "squid down: the message names both proxies" "$r_err" \
	"proxy http://127.0.0.1:$DOWN (from PAC $PAC_HTTP)"
check_contains "squid down: ... and squid" "$r_err" "proxy http://127.0.0.1:$SQ_basic (from PAC"

finish
