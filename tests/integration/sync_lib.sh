# sync_lib.sh - helpers for sync tests: the reference cloud and connector configs (sourced
# after lib.sh). Uses $work (a temp dir the test owns).
#
# sync_cloud_start [ARGS...]  dirconn-cloud over HTTPS on a free port (org acme); sets
#                             CLOUD_URL, CLOUD_PID; extra ARGS (fault injection) passed on
# sync_cloud_stop             SIGTERM and wait
# sync_register NAME          register a connector; writes $work/NAME.id and NAME.secret
# cloud_admin METHOD PATH [BODY]  curl with the admin token; prints the body; admin_status
#                             prints its HTTP status
# sync_cloud_count FILTER     how many of the cloud's users match a SCIM filter (0 if no answer)
# sync_conf FILE CONNECTOR [extra INI text]  a connector config for the fixture and cloud
# tiny_start                  tinyproxy on 127.0.0.1:$TPORT (logs in $work/tiny); sets TINY_PID;
#                             fails when it does not listen within 10 s

sync_cloud_certs() {
	[[ -f $work/cloud-ca.pem ]] && return
	cert_ca "$work/cloud-ca" "dirconn sync test CA"
	cert_issue "$work/cloud-ca" "$work/cloud" /CN=localhost serverAuth IP:127.0.0.1 DNS:localhost
	openssl rand -hex 24 >"$work/admin.token"
}

sync_cloud_start() {
	sync_cloud_certs
	rm -f "$work/cloud.ready"
	local port_arg=127.0.0.1:0
	[[ -n ${CLOUD_PORT:-} ]] && port_arg=127.0.0.1:$CLOUD_PORT
	dirconn-cloud --listen "$port_arg" --db "$work/cloud.db" --admin-token-file "$work/admin.token" \
		--org acme --tls-cert "$work/cloud.pem" --tls-key "$work/cloud.key" \
		--ready-file "$work/cloud.ready" "$@" 2>>"$work/cloud.log" &
	CLOUD_PID=$!
	local deadline=$((SECONDS + 60))
	until [[ -s $work/cloud.ready ]]; do
		kill -0 "$CLOUD_PID" 2>/dev/null || { echo "dirconn-cloud exited:"; tail -5 "$work/cloud.log"; return 1; }
		((SECONDS < deadline)) || { echo "dirconn-cloud not ready after 60 s:"; tail -5 "$work/cloud.log"; return 1; }
		sleep 0.05
	done
	CLOUD_PORT=$(cat "$work/cloud.ready")
	CLOUD_URL=https://127.0.0.1:$CLOUD_PORT
}

# sync_test_begin NAME KIND [LDSFX ARGS...]: the test's work directory ($work, kept when a check
# failed or KEEP_WORK is set), its cleanup on exit (the cloud, the fixture), and the KIND fixture
# started in $work/fx with its environment sourced
sync_test_begin() {
	local name=$1 kind=$2
	shift 2
	work=$(mktemp -d "/tmp/dirconn-it-$name-XXXXXX")
	trap sync_test_cleanup EXIT
	ldsfx_start_retry "$kind" "$work/fx" "$@"
	# shellcheck disable=SC1091
	source "$work/fx/env"
}
sync_test_cleanup() {
	local rc=$? # a test that stopped on an error keeps its work directory too
	sync_cloud_stop
	"$LDSFX" stop "$work/fx" >/dev/null 2>&1 || true
	if [[ $rc -eq 0 && $T_FAIL -eq 0 && -z ${KEEP_WORK:-} ]]; then rm -rf "$work"; else echo "kept $work"; fi
}

sync_cloud_stop() {
	if [[ -n ${CLOUD_PID:-} ]]; then
		kill -TERM "$CLOUD_PID" 2>/dev/null || true
		wait "$CLOUD_PID" 2>/dev/null || true
		CLOUD_PID=
	fi
}

cloud_admin() {
	local method=$1 path=$2 body=${3-}
	local args=(-sS --cacert "$work/cloud-ca.pem" -X "$method" -H "Authorization: Bearer $(cat "$work/admin.token")"
		-o "$work/admin.body" -w '%{http_code}')
	[[ -n $body ]] && args+=(-H 'Content-Type: application/scim+json' --data-binary "$body")
	curl "${args[@]}" "$CLOUD_URL$path" >"$work/admin.status"
	cat "$work/admin.body"
}

# The HTTP status of the last cloud_admin call (it may have run in a subshell).
admin_status() { cat "$work/admin.status"; }

sync_cloud_count() {
	local out
	out=$(curl -sS -G --cacert "$work/cloud-ca.pem" -H "Authorization: Bearer $(cat "$work/admin.token")" \
		--data-urlencode "filter=$1" --data-urlencode count=0 "$CLOUD_URL/scim/v2/acme/Users" 2>/dev/null) ||
		{ echo 0; return 0; }
	json "$out" "j.get('totalResults', 0)" 2>/dev/null || echo 0
}

sync_register() {
	local name=$1 out
	out=$(cloud_admin POST /v1/orgs/acme/connectors "{\"name\":\"$name\",\"host\":\"$name.test\"}")
	json "$out" "j['id']" >"$work/$name.id"
	json "$out" "j['secret']" | tr -d '\n' >"$work/$name.secret"
	chmod 600 "$work/$name.secret"
}

sync_conf() {
	local file=$1 name=$2 extra=${3-}
	cat >"$file" <<-CONF
	[connector]
	name = $name
	state_dir = $work/state-$name
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
	client_id = $(cat "$work/$name.id")
	client_secret_file = $work/$name.secret
	ca_file = $work/cloud-ca.pem
	[log]
	level = warn
	$extra
	CONF
}

# ldap_modify LDIF-TEXT: apply changes to the fixture as its administrator.
ldap_modify() {
	local tls=(-H "$LDSFX_URL_TLS")
	printf '%s\n' "$1" | LDAPTLS_CACERT=$LDSFX_CA_FILE ldapmodify -x "${tls[@]}" -D "$LDSFX_BIND_DN" \
		-y "$LDSFX_BIND_PASSWORD_FILE" >/dev/null
}

# sync_check ARGS: compare the cloud with an ldapsearch of the fixture (sync_check.py).
sync_check() {
	"$PY" "$SRC/tests/integration/sync_check.py" --url "$LDSFX_URL_TLS" --ca "$LDSFX_CA_FILE" \
		--bind-dn "$LDSFX_BIND_DN" --password-file "$LDSFX_BIND_PASSWORD_FILE" --base "$LDSFX_BASE_DN" \
		--cloud "${SCIM_BASE:-$CLOUD_URL/scim/v2/acme}" --cloud-ca "$work/cloud-ca.pem" --token-file "$work/admin.token" "$@"
}

tiny_start() {
	mkdir -p "$work/tiny"
	{
		[[ $(id -u) != 0 ]] || printf 'User nobody\nGroup nogroup\n'
		printf 'Port %s\nListen 127.0.0.1\nTimeout 60\nLogFile "%s"\nLogLevel Connect\nMaxClients 50\nAllow 127.0.0.1\n' \
			"$TPORT" "$work/tiny/tinyproxy.log"
	} >"$work/tiny/tinyproxy.conf"
	[[ $(id -u) != 0 ]] || chown -R nobody "$work/tiny"
	tinyproxy -d -c "$work/tiny/tinyproxy.conf" >>"$work/tiny/out" 2>&1 &
	TINY_PID=$!
	wait_until 10 port_open "$TPORT"
}
