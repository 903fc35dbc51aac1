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

# json FILE_OR_STRING EXPR: evaluates a Python expression over the parsed JSON `j`.
json() {
	local doc=$1 expr=$2
	if [[ -f $doc ]]; then
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

finish() {
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
