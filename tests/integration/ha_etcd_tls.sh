#!/usr/bin/env bash
# The etcd lease backend (ha/lease_etcd.c) against a real etcd with client TLS
# and authentication: one member on https loopback started with --cert-file,
# --key-file, --trusted-ca-file and --client-cert-auth (a CA, a server
# certificate with IP SAN 127.0.0.1 and a client certificate made here with
# openssl), auth enabled, and a user "dirconn" whose role grants readwrite on
# the prefix /dirconn/. Driven by ha_lease_driver: acquire, renew, the fenced
# shared state and release over mTLS with auth; the one-line errors without a
# client certificate, with a wrong password and with a password file others
# may read.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DRIVER=${DIRCONN_BUILD_DIR:-$SRC/build}/tests/integration/ha_lease_driver
for bin in etcd etcdctl curl openssl "$DRIVER"; do
	command -v "$bin" >/dev/null || { echo "not ok - $bin is missing (scripts/install-deps.sh, build)"; exit 1; }
done

T=$(mktemp -d /tmp/dirconn-etcd-tls.XXXXXX)
ETCD_PID=
cleanup() {
	local rc=$?
	if [[ -n $ETCD_PID ]]; then
		kill -TERM "$ETCD_PID" 2>/dev/null || true
		wait "$ETCD_PID" 2>/dev/null || true
	fi
	if [[ $rc -ne 0 || ${KEEP_TMP:-0} == 1 ]]; then echo "test dir: $T"; else rm -rf "$T"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

# ---- certificates ----------------------------------------------------------------------------
P=$T/pki
mkdir -p "$P"
cert_ca "$P/ca" "dirconn test CA" || { echo "not ok - openssl CA"; exit 1; }
# The server certificate is also the client certificate of etcd's own gateway connection.
cert_issue "$P/ca" "$P/server" "/O=dirconn test/CN=etcd-server" serverAuth,clientAuth IP:127.0.0.1 ||
	{ echo "not ok - openssl server certificate"; exit 1; }
# No CN in the client certificate: etcd 3.4's gateway refuses (HTTP 400) a client certificate
# with a CommonName, which it would not use as the user (operations.md).
cert_issue "$P/ca" "$P/client" "/O=dirconn test" clientAuth ||
	{ echo "not ok - openssl client certificate"; exit 1; }
chmod 600 "$P"/*.key
ok "a CA, a server certificate (IP SAN 127.0.0.1) and a client certificate"

# ---- etcd with --client-cert-auth on https loopback -------------------------------------------
read -r CPORT PPORT < <(python3 -c '
import socket
a = socket.socket(); a.bind(("127.0.0.1", 0)); b = socket.socket(); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])')
EP=https://127.0.0.1:$CPORT
env -u ETCD_ENDPOINTS etcd --name m1 --data-dir "$T/etcd.data" \
	--listen-client-urls "$EP" --advertise-client-urls "$EP" \
	--listen-peer-urls "http://127.0.0.1:$PPORT" \
	--initial-advertise-peer-urls "http://127.0.0.1:$PPORT" \
	--initial-cluster "m1=http://127.0.0.1:$PPORT" --initial-cluster-state new \
	--cert-file "$P/server.pem" --key-file "$P/server.key" \
	--trusted-ca-file "$P/ca.pem" --client-cert-auth \
	--log-level warn >"$T/etcd.log" 2>&1 &
ETCD_PID=$!
healthy() {
	kill -0 "$ETCD_PID" 2>/dev/null || return 2
	[[ $(curl -s -m 1 --noproxy '*' --cacert "$P/ca.pem" --cert "$P/client.pem" \
		--key "$P/client.key" "$EP/health" 2>/dev/null) == *'"health":"true"'* ]]
}
if ! wait_until 30 healthy; then
	echo "not ok - etcd did not become healthy"
	tail -n 20 "$T/etcd.log"
	exit 1
fi
ok "etcd healthy on $EP with --client-cert-auth"
ctl() {
	ETCDCTL_API=3 etcdctl --endpoints="$EP" --cacert "$P/ca.pem" --cert "$P/client.pem" \
		--key "$P/client.key" "$@"
}
check "curl without a client certificate is refused by etcd" \
	bash -c '! curl -s -m 5 --noproxy "*" --cacert "$1" "$2/health" >/dev/null 2>&1' _ "$P/ca.pem" "$EP"

# ---- etcd authentication ------------------------------------------------------------------------
{
	ctl user add root:rootpw &&
		ctl role add dirconn &&
		ctl role grant-permission dirconn --prefix=true readwrite /dirconn/ &&
		ctl user add dirconn:dcpw &&
		ctl user grant-role dirconn dirconn &&
		ctl auth enable
} >"$T/auth.log" 2>&1 || { echo "not ok - etcd auth setup"; cat "$T/auth.log"; exit 1; }
run_capture a ctl get /dirconn/acme/leader
check "without a user etcd now refuses requests" test "$a_rc" -ne 0
rctl() { ctl --user root:rootpw "$@"; }
check_eq "root can read" "0" "$(rctl get /dirconn/ --prefix >/dev/null 2>&1; echo $?)"
ok "auth enabled: user dirconn with readwrite on /dirconn/"

printf 'dcpw\n' >"$T/etcd.password"
chmod 600 "$T/etcd.password"
printf 'wrong\n' >"$T/wrong.password"
chmod 600 "$T/wrong.password"

# conf FILE [KEY = VALUE lines...]: a configuration for the endpoint with the given [ha] lines
conf() {
	local f=$1
	shift
	{
		printf '[connector]\nstate_dir = %s\n[ldap]\nurls = ldap://127.0.0.1:1\n' "$T/state"
		printf '[cloud]\norg = acme\n[ha]\nlease = etcd\netcd_endpoints = %s\n' "$EP"
		printf 'lease_duration = 20s\n'
		printf '%s\n' "$@"
	} >"$f"
}
conf "$T/ha.conf" "etcd_ca_file = $P/ca.pem" "etcd_cert_file = $P/client.pem" \
	"etcd_key_file = $P/client.key" "etcd_user = dirconn" "etcd_password_file = $T/etcd.password"

lease() {
	local cfgf=$1 id=$2
	shift 2
	run_capture r "$DRIVER" "$cfgf" "$id" "$@"
}
field() { json "$r_out" "$1"; }

# ---- the lease over mTLS with auth ----------------------------------------------------------------
lease "$T/ha.conf" A acquire 20000
check_eq "A acquires over mTLS with auth (exit 0)" "0" "$r_rc"
[[ $r_rc == 0 ]] || echo "# $r_err"
check_eq "A is the holder" "A" "$(field "j['holder']")"
T1=$(field "j['token']")
check "the fencing token is a revision (>0): $T1" test "$T1" -gt 0
check_eq "etcd's key holds A (read as root)" "A" "$(rctl get --print-value-only /dirconn/acme/leader)"
lease "$T/ha.conf" B acquire 20000
check_eq "B's acquire fails with ELEASE" "50" "$r_rc"
lease "$T/ha.conf" A renew 20000
check_eq "A renews (exit 0)" "0" "$r_rc"
check_eq "renewal keeps the token" "$T1" "$(field "j['token']")"
lease "$T/ha.conf" A state-put '{"watermark":7}' 0 "$T1"
check_eq "A writes the shared state with auth" "0" "$r_rc"
check_eq "the state key holds it (read as root)" '{"watermark":7}' \
	"$(rctl get --print-value-only /dirconn/acme/state)"
lease "$T/ha.conf" B state-get
check_eq "B reads the shared state" "7" "$(field "j['doc']['watermark']")"
lease "$T/ha.conf" B state-put '{"watermark":8}' "$T1"
check_eq "B's write with A's token is fenced" "50" "$r_rc"
lease "$T/ha.conf" A release
check_eq "A releases" "0" "$r_rc"
lease "$T/ha.conf" B observe
check_eq "released: free" "None" "$(field "j['holder']")"
check_eq "the leader key is gone" "" "$(rctl get --print-value-only /dirconn/acme/leader)"

# ---- an expired token: etcd forgets simple tokens when it restarts ------------------------------------
# (the driver authenticates anew per run; the unit test covers the refusal and retry)

# ---- without the client certificate -------------------------------------------------------------------
conf "$T/nocert.conf" "etcd_ca_file = $P/ca.pem" "etcd_user = dirconn" \
	"etcd_password_file = $T/etcd.password"
lease "$T/nocert.conf" A acquire 20000
check_eq "without a client certificate: no endpoint answers (ELEASE_CONNECT)" "52" "$r_rc"
check_eq "one line on stderr" "1" "$(printf '%s\n' "$r_err" | grep -c .)"
check_contains "it names the endpoint" "$r_err" "etcd $EP: "
check_contains "it names the TLS cause" "$r_err" "TLS: the member closed the connection; does it require a client certificate? see [ha] etcd_cert_file, etcd_key_file"
echo "# $r_err"

# ---- without the CA: the system store does not know the test CA -------------------------------------
conf "$T/noca.conf" "etcd_cert_file = $P/client.pem" "etcd_key_file = $P/client.key" \
	"etcd_user = dirconn" "etcd_password_file = $T/etcd.password"
lease "$T/noca.conf" A observe
check_eq "without etcd_ca_file the server certificate is not trusted (ELEASE_CONNECT)" "52" "$r_rc"
check_contains "... and says so" "$r_err" "TLS: see [ha] etcd_ca_file"

# ---- a wrong password --------------------------------------------------------------------------------
conf "$T/wrongpw.conf" "etcd_ca_file = $P/ca.pem" "etcd_cert_file = $P/client.pem" \
	"etcd_key_file = $P/client.key" "etcd_user = dirconn" "etcd_password_file = $T/wrong.password"
lease "$T/wrongpw.conf" A acquire 20000
check_eq "a wrong password: ELEASE_AUTH (exit 53)" "53" "$r_rc"
check_eq "one line on stderr" "1" "$(printf '%s\n' "$r_err" | grep -c .)"
check_contains "it names [ha] etcd_user" "$r_err" "[ha] etcd_user 'dirconn'"
check_contains "it names [ha] etcd_password_file" "$r_err" "[ha] etcd_password_file $T/wrong.password"
check_contains "it has etcd's reason" "$r_err" "invalid user ID or password"
check "the password is not in the message" bash -c '[[ $1 != *wrong\ * && $1 != *dcpw* ]]' _ "$r_err"
echo "# $r_err"
check_eq "nothing was written" "" "$(rctl get --print-value-only /dirconn/acme/leader)"

# ---- a password file others may read -----------------------------------------------------------------
chmod 644 "$T/wrong.password"
lease "$T/wrongpw.conf" A observe
check_eq "a password file open to others is a configuration error (exit 3)" "3" "$r_rc"
check_contains "it says so" "$r_err" "mode 0644 lets group or others access the password"

# ---- no user: etcd refuses -----------------------------------------------------------------------------
conf "$T/nouser.conf" "etcd_ca_file = $P/ca.pem" "etcd_cert_file = $P/client.pem" \
	"etcd_key_file = $P/client.key"
lease "$T/nouser.conf" A acquire 20000
check "without etcd_user etcd refuses the request (exit $r_rc)" test "$r_rc" -ne 0
check_eq "nothing was written" "" "$(rctl get --print-value-only /dirconn/acme/leader)"

# ---- a configuration with half of a pair is refused ------------------------------------------------------
conf "$T/half.conf" "etcd_cert_file = $P/client.pem"
lease "$T/half.conf" A observe
check_eq "etcd_cert_file without etcd_key_file is refused (exit 3)" "3" "$r_rc"
check_contains "... naming both keys" "$r_err" "etcd_cert_file and etcd_key_file go together"

finish
