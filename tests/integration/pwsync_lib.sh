# pwsync_lib.sh - helpers for the password synchronisation tests (sourced after lib.sh and
# sync_lib.sh; uses $work).
#
# pwsync_certs              a CA, a server certificate for the connectors' listeners and a
#                           client certificate for the handler (plus one from another CA)
# pwsync_listen_conf        the [pwsync] section of a connector (port 0: any free port)
# pwsync_port LOG           the port a dirconnd logged "password listener on ..." with
# pwsync_handler_conf FILE NAME=URL...  the handler's configuration, connectors in order
# handler LDIF-TEXT         run dirconn-pwsync with the text on stdin; sets H_OUT, H_RC
# pw_check USERNAME PASSWORD  the cloud's password-check answer: "set match changes"

PWSYNC_BIN=${DIRCONN_BUILD_DIR:-$SRC/build}/pwsync/dirconn-pwsync

pwsync_certs() {
	local d=$work/pki
	mkdir -p "$d"
	(
		cd "$d"
		for ca in ca other-ca; do
			openssl req -x509 -newkey rsa:2048 -nodes -keyout $ca.key -out $ca.pem -days 2 \
				-subj "/CN=dirconn pwsync $ca" -addext "basicConstraints=critical,CA:TRUE" \
				-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
		done
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >srv.cnf
		printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' >cli.cnf
		openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
			-days 2 -extfile srv.cnf 2>/dev/null
		for c in dc1:ca intruder:other-ca; do
			openssl req -newkey rsa:2048 -nodes -keyout "${c%%:*}.key" -out "${c%%:*}.csr" \
				-subj "/CN=${c%%:*}" 2>/dev/null
			openssl x509 -req -in "${c%%:*}.csr" -CA "${c#*:}.pem" -CAkey "${c#*:}.key" \
				-CAcreateserial -out "${c%%:*}.pem" -days 2 -extfile cli.cnf 2>/dev/null
		done
	)
}

pwsync_listen_conf() {
	printf '[pwsync]\nlisten = 127.0.0.1:0\ntls_cert = %s\ntls_key = %s\nclient_ca = %s\n' \
		"$work/pki/server.pem" "$work/pki/server.key" "$work/pki/ca.pem"
}

pwsync_port() {
	sed -n 's/.*password listener on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$1" | tail -1
}

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
