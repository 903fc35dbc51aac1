# lib.sh - helpers for dirconn's integration test scripts (sourced).
# Each check prints "ok - ..." or "not ok - ..."; finish prints
# "N passed, N failed" and exits non-zero when anything failed.
set -euo pipefail

SRC=${DIRCONN_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LDSFX=${LDSFX:-$SRC/ldsfx/ldsfx}
# Only one AD DS fixture can run per machine: wait for the slot rather than fail.
export LDSFX_ADDS_WAIT=${LDSFX_ADDS_WAIT:-900}
PY=/usr/bin/python3 # Debian's interpreter, which has python3-ldap
T_PASS=0
T_FAIL=0

ok() { T_PASS=$((T_PASS + 1)); echo "ok - $*"; }
not_ok() { T_FAIL=$((T_FAIL + 1)); echo "not ok - $*"; }

# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}

# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
	if [[ "$2" == "$3" ]]; then ok "$1 ($3)"; else not_ok "$1: expected '$2', got '$3'"; fi
}

# check_contains DESCRIPTION HAYSTACK NEEDLE
check_contains() {
	if [[ "$2" == *"$3"* ]]; then ok "$1"; else not_ok "$1: '$3' not in: $2"; fi
}

# check_not_contains DESCRIPTION HAYSTACK NEEDLE
check_not_contains() {
	if [[ "$2" != *"$3"* ]]; then ok "$1"; else not_ok "$1: '$3' found in: $2"; fi
}

# run_capture VAR_PREFIX COMMAND...: runs the command, stores stdout in
# ${prefix}_out, stderr in ${prefix}_err and the exit code in ${prefix}_rc.
run_capture() {
	local prefix=$1
	shift
	local out err rc=0
	out=$(mktemp)
	err=$(mktemp)
	"$@" >"$out" 2>"$err" || rc=$?
	printf -v "${prefix}_out" '%s' "$(cat "$out")"
	printf -v "${prefix}_err" '%s' "$(cat "$err")"
	printf -v "${prefix}_rc" '%s' "$rc"
	rm -f "$out" "$err"
}

# json FILE_OR_STRING EXPR: evaluates a Python expression over the parsed JSON `j`. A document
# of "-" is read from stdin (an answer over 128 KiB does not fit in one argument).
json() {
	local doc=$1 expr=$2
	if [[ $doc == - ]]; then
		"$PY" -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$expr"
	elif [[ -f $doc ]]; then
		"$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$doc" "$expr"
	else
		"$PY" -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$doc" "$expr"
	fi
}

# lower STRING, upper STRING: the Unicode lower or upper case of STRING in any locale (bash's
# ${x,,} and ${x^^} depend on LC_CTYPE: no change to non-ASCII letters in C, a dotless i in Turkish).
lower() { "$PY" -c 'import sys; print(sys.argv[1].lower())' "$1"; }
upper() { "$PY" -c 'import sys; print(sys.argv[1].upper())' "$1"; }

# wait_until SECONDS COMMAND...: runs the command every 0.1 s until it succeeds (returns 0)
# or the deadline passes (returns 1). Tests wait for an event this way, never a fixed sleep.
wait_until() {
	local deadline=$(($(date +%s) + $1))
	shift
	until "$@"; do
		(($(date +%s) < deadline)) || return 1
		sleep 0.1
	done
}

# now: the wall clock in seconds with nanoseconds; elapsed T0 T1: T1 - T0 in seconds, 3 decimals
# (for the timings benchmarks print, not for waiting).
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# free_port: a TCP port free on 127.0.0.1 now (the kernel's choice for port 0).
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# port_open PORT: whether something accepts a TCP connection on 127.0.0.1:PORT (for wait_until).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# stop_pid PID: SIGTERM to PID and wait for it to exit; nothing when PID is empty.
stop_pid() {
	if [[ -n ${1:-} ]]; then
		kill -TERM "$1" 2>/dev/null || true
		wait "$1" 2>/dev/null || true
	fi
}

# daemon_stop: stop_pid of the test's dirconnd (DPID, which the test sets), then clear DPID.
daemon_stop() {
	stop_pid "${DPID:-}"
	DPID=
}

# cert_ca PREFIX CN: a self-signed test CA valid for 2 days: PREFIX.key (RSA 2048, no
# passphrase) and PREFIX.pem with the subject /CN=CN, basicConstraints critical CA:TRUE and
# keyUsage critical keyCertSign, cRLSign. Returns openssl's status (its messages are dropped).
cert_ca() {
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days 2 -sha256 \
		-subj "/CN=$2" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# cert_issue CA_PREFIX PREFIX SUBJECT USAGE [SAN...]: a key PREFIX.key (RSA 2048) and a
# certificate PREFIX.pem valid for 2 days, signed by the CA CA_PREFIX.pem/.key of cert_ca
# (PREFIX.csr and the extensions PREFIX.ext stay beside them). SUBJECT is openssl's form:
# "/CN=localhost", or "/O=dirconn test" for a certificate without a CommonName (etcd 3.4 refuses
# a client certificate with one). USAGE is the extendedKeyUsage: serverAuth, clientAuth or
# serverAuth,clientAuth; basicConstraints is CA:FALSE. Each SAN is an openssl subjectAltName
# entry (IP:127.0.0.1, IP:::1, DNS:localhost). Returns openssl's status.
cert_issue() {
	local ca=$1 out=$2 subject=$3 usage=$4 san=
	shift 4
	(($# == 0)) || san="subjectAltName=$(IFS=,; printf '%s' "$*")"$'\n'
	printf '%sbasicConstraints=CA:FALSE\nextendedKeyUsage=%s\n' "$san" "$usage" >"$out.ext" &&
		openssl req -new -newkey rsa:2048 -nodes -keyout "$out.key" -out "$out.csr" \
			-subj "$subject" 2>/dev/null &&
		openssl x509 -req -in "$out.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial \
			-days 2 -sha256 -extfile "$out.ext" -out "$out.pem" 2>/dev/null
}

# finish: prints the counts; fails when a check failed or a file named in SANITIZER_LOGS (server
# logs the test lists, separated by spaces) holds a sanitizer report.
finish() {
	local log
	for log in ${SANITIZER_LOGS:-}; do
		if grep -q -E "Sanitizer|runtime error:" "$log" 2>/dev/null; then
			not_ok "sanitizer report in the server log $log:"
			grep -E -A20 "Sanitizer|runtime error:" "$log" | head -60
		fi
	done
	echo "$T_PASS passed, $T_FAIL failed"
	[[ $T_FAIL -eq 0 ]]
}

# ldsfx_start_retry KIND DIR [ARGS...]: start a fixture; the one AD DS fixture of the machine
# may be in use by another test run ("already running"): wait for it (every 20 s, up to 10 min).
ldsfx_start_retry() {
	local kind=$1 dir=$2 i out
	shift 2
	for i in $(seq 1 31); do
		if out=$("$LDSFX" start "$kind" "$dir" "$@" 2>&1); then
			echo "$out"
			return 0
		fi
		if [[ $out != *"already running"* || $i -eq 31 ]]; then
			echo "$out" >&2
			return 1
		fi
		echo "# the $kind fixture is busy; waiting 20 s" >&2
		sleep 20
	done
}
