# pwsync_lib.sh - helpers for the password synchronisation tests (sourced after lib.sh and
# sync_lib.sh; uses $work).
#
# pwsync_certs              a CA, a server certificate for the connectors' listeners and a
#                           client certificate for the handler (plus one from another CA)
# pwsync_listen_conf        the [pwsync] section of a connector (port 0: any free port)
# pwsync_port LOG           the port a dirconnd logged "password listener on ..." with
# pwsync_listening LOG      whether it did (for wait_until)
# pwsync_handler_conf FILE NAME=URL...  the handler's configuration, connectors in order
# handler LDIF-TEXT         run dirconn-pwsync with the text on stdin; sets H_OUT, H_RC
# pw_check USERNAME PASSWORD  the cloud's password-check answer: "set match changes"

PWSYNC_BIN=${DIRCONN_BUILD_DIR:-$SRC/build}/pwsync/dirconn-pwsync

pwsync_certs() {
	local d=$work/pki
	mkdir -p "$d"
	cert_ca "$d/ca" "dirconn pwsync ca"
	cert_ca "$d/other-ca" "dirconn pwsync other-ca"
	cert_issue "$d/ca" "$d/server" /CN=localhost serverAuth IP:127.0.0.1 DNS:localhost
	cert_issue "$d/ca" "$d/dc1" /CN=dc1 clientAuth
	cert_issue "$d/other-ca" "$d/intruder" /CN=intruder clientAuth
}

pwsync_listen_conf() {
	printf '[pwsync]\nlisten = 127.0.0.1:0\ntls_cert = %s\ntls_key = %s\nclient_ca = %s\n' \
		"$work/pki/server.pem" "$work/pki/server.key" "$work/pki/ca.pem"
}

pwsync_port() {
	sed -n 's/.*password listener on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$1" | tail -1
}

pwsync_listening() { [[ -n $(pwsync_port "$1") ]]; }

pwsync_handler_conf() {
	local file=$1
	shift
	{
		printf '[pwsync]\ntls_cert = %s\ntls_key = %s\nca_file = %s\ntimeout = 30s\n' \
			"$work/pki/dc1.pem" "$work/pki/dc1.key" "$work/pki/ca.pem"
		local c
		for c in "$@"; do printf 'connector = %s %s\n' "${c%%=*}" "${c#*=}"; done
	} >"$file"
}

handler() {
	set +e
	H_OUT=$(printf '%s\n' "$1" | DIRCONN_PWSYNC_CONFIG=$work/handler.conf "$PWSYNC_BIN" 2>&1)
	H_RC=$?
	set -e
}

pw_check() {
	local out
	out=$(cloud_admin POST /v1/orgs/acme/password-check "{\"userName\":\"$1\",\"password\":\"$2\"}")
	json "$out" "'%s %s %s' % (str(j.get('passwordSet')).lower(), str(j.get('match')).lower(), j.get('changes'))" 2>/dev/null ||
		echo "error: $out"
}
