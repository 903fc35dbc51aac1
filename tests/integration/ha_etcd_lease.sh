#!/usr/bin/env bash
# The etcd lease backend (ha/lease_etcd.c) against a real three-member etcd
# cluster on loopback (etcd_lib.sh), driven by ha_lease_driver as two
# instances A and B: acquire and its refusal (ELEASE, exit 50), observe,
# renew (also with another duration), the fenced shared state, expiry by
# etcd's clock and takeover with a larger fencing token, the loss of the
# first endpoint (then the raft leader) and release.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=etcd_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/etcd_lib.sh"

DRIVER=${DIRCONN_BUILD_DIR:-$SRC/build}/tests/integration/ha_lease_driver
for bin in etcd etcdctl curl "$DRIVER"; do
	command -v "$bin" >/dev/null || { echo "not ok - $bin is missing (scripts/install-deps.sh, build)"; exit 1; }
done

T=$(mktemp -d /tmp/dirconn-etcd-test.XXXXXX)
HANG_PID=
cleanup() {
	local rc=$?
	if [[ -n $HANG_PID ]]; then kill "$HANG_PID" 2>/dev/null || true; fi
	etcd_stop_all
	if [[ $rc -ne 0 || ${KEEP_TMP:-0} == 1 ]]; then echo "test dir: $T"; else rm -rf "$T"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

etcd_start_cluster "$T" 3 || { echo "not ok - the etcd cluster did not start"; exit 1; }
ok "three etcd members healthy: $ETCD_ENDPOINTS"
read -r -a EP <<<"$ETCD_ENDPOINTS"

cat >"$T/ha.conf" <<CONF
[connector]
state_dir = $T/state
[ldap]
urls = ldap://127.0.0.1:1
[cloud]
org = acme
[ha]
lease = etcd
etcd_endpoints = $ETCD_ENDPOINTS
lease_duration = 3s
CONF

# lease ID COMMAND...: run the driver as instance ID; out/err/rc in r_out, r_err, r_rc.
lease() {
	local id=$1
	shift
	run_capture r "$DRIVER" "$T/ha.conf" "$id" "$@"
}
field() { json "$r_out" "$1"; }

# ---- acquire, refusal, observe -------------------------------------------------------
lease A observe
check_eq "nobody holds the free lease" "None" "$(field "j['holder']")"
check_eq "a free lease has no token" "0" "$(field "j['token']")"

lease A acquire 20000
check_eq "A acquires (exit 0)" "0" "$r_rc"
check_eq "A is the holder" "A" "$(field "j['holder']")"
T1=$(field "j['token']")
check "the fencing token is a revision (>0): $T1" test "$T1" -gt 0
check_eq "duration is the granted TTL" "20000" "$(field "j['duration_ms']")"
check_eq "etcd's key holds A" "A" "$(etcd_ctl get --print-value-only /dirconn/acme/leader)"

lease B acquire 20000
check_eq "B's acquire fails with ELEASE" "50" "$r_rc"
check_contains "the refusal names the holder" "$r_err" "held by A"

lease B observe
check_eq "B sees holder A" "A" "$(field "j['holder']")"
check_eq "B sees A's token" "$T1" "$(field "j['token']")"
R0=$(field "j['remaining_ms']")
check "remaining (${R0} ms) is within the duration" test "$R0" -gt 0 -a "$R0" -le 20000

# ---- renew ---------------------------------------------------------------------------
# (20 s leases here: a loaded machine must not let one expire between the steps)
went_down() { lease B observe; R1=$(field "j['remaining_ms']"); ((R1 < R0)); }
wait_until 10 went_down || true
check "remaining went down to ${R1} ms" test "$R1" -lt "$R0"
lease A renew 20000
check_eq "A renews (exit 0)" "0" "$r_rc"
check_eq "renew restores the full TTL" "20000" "$(field "j['remaining_ms']")"
check_eq "renewal keeps the token" "$T1" "$(field "j['token']")"
lease B observe
R2=$(field "j['remaining_ms']")
check "remaining is back up (${R1} -> ${R2} ms)" test "$R2" -gt "$R1"

lease B renew 20000
check_eq "B cannot renew A's lease" "50" "$r_rc"

# ---- state, fenced by the token --------------------------------------------------------
# A long lease for this part: a loaded machine must not let it expire between the steps.
lease A renew 60000
check_eq "A renews for 60 s (exit 0)" "0" "$r_rc"
lease A state-get
check_eq "no state yet: {}" "{}" "$(field "json.dumps(j['doc'])")"
check_eq "no state yet: version 0" "0" "$(field "j['version']")"
lease A state-put '{"watermark":1}' 0 "$T1"
check_eq "A writes the state with token T1 and version 0" "0" "$r_rc"
lease B state-get
check_eq "B reads A's state" "1" "$(field "j['doc']['watermark']")"
V1=$(field "j['version']")
lease A state-put '{"watermark":2}' "$V1" $((T1 - 1))
check_eq "a stale token is fenced (ELEASE)" "50" "$r_rc"
check_contains "the fenced write says so" "$r_err" "fenced"
lease B state-put '{"watermark":2}' "$V1" "$T1"
check_eq "B cannot write with A's token" "50" "$r_rc"
lease A state-put '{"watermark":2}' 0 "$T1"
check_eq "an old version is a conflict (ELEASE_SERVER)" "54" "$r_rc"
check_contains "the conflict names the current version" "$r_err" "state version is $V1"
lease A state-put '{"watermark":2}' "$V1" "$T1"
check_eq "A writes version $V1" "0" "$r_rc"
lease A state-put '{"watermark":3}' "$T1"
check_eq "A writes unconditionally (no version)" "0" "$r_rc"
lease A state-get
check_eq "the state is A's last write" "3" "$(field "j['doc']['watermark']")"

# ---- expiry by etcd's clock, takeover ----------------------------------------------------
lease A renew 3000
start=$(date +%s%N)
gone=
key_gone() { lease B observe; [[ $(field "j['holder']") == None ]]; }
wait_until 60 key_gone && gone=$((($(date +%s%N) - start) / 1000000))
check "etcd deleted the key after the TTL (${gone:-never} ms after the last renewal)" \
	test -n "$gone" -a "${gone:-0}" -ge 2500
check_eq "the key is gone from etcd" "" "$(etcd_ctl get --print-value-only /dirconn/acme/leader)"
lease B acquire 20000
check_eq "B acquires the expired lease" "0" "$r_rc"
T2=$(field "j['token']")
check "B's token is larger ($T1 -> $T2)" test "$T2" -gt "$T1"
lease A renew 3000
check_eq "A's renewal fails: lost (ELEASE)" "50" "$r_rc"
lease A state-put '{"watermark":99}' "$T1"
check_eq "A's write with its old token is fenced" "50" "$r_rc"
lease B state-put '{"watermark":4}' "$T2"
check_eq "B writes with its token" "0" "$r_rc"

# ---- lose the first endpoint (made the raft leader first) -----------------------------------
check "member 1 (${EP[0]}) is the raft leader" etcd_move_leader 1
lease B renew 20000
etcd_kill_member 1
check "the two other members elect a leader" etcd_wait_healthy 30
lease B renew 20000
check_eq "B renews via the other endpoints" "0" "$r_rc"
check_contains "the dead first endpoint is named" "$r_err" "etcd ${EP[0]}: "
check_eq "B's token stays" "$T2" "$(field "j['token']")"
lease B renew 30000
check_eq "B renews with another duration (30 s)" "30000" "$(field "j['duration_ms']")"
check_eq "... keeping its token" "$T2" "$(field "j['token']")"
lease B state-put '{"watermark":5}' "$T2"
check_eq "B writes the state via the other endpoints" "0" "$r_rc"
lease A state-get
check_eq "A reads it" "5" "$(field "j['doc']['watermark']")"
lease A acquire 3000
check_eq "A's acquire still fails with ELEASE" "50" "$r_rc"

# ---- release -------------------------------------------------------------------------------
lease B release
check_eq "B releases" "0" "$r_rc"
lease A observe
check_eq "released: free at once" "None" "$(field "j['holder']")"
lease B release
check_eq "releasing a lease not held is fine" "0" "$r_rc"
lease A acquire 3000
check_eq "A acquires at once" "0" "$r_rc"
T3=$(field "j['token']")
check "A's token is larger again ($T2 -> $T3)" test "$T3" -gt "$T2"
etcd_ctl del /dirconn/acme/leader >/dev/null
lease A renew 3000
check_eq "an operator deleted the key: A's renewal fails (ELEASE)" "50" "$r_rc"
lease A acquire 3000
check_eq "A acquires again" "0" "$r_rc"
lease A release
check_eq "A releases" "0" "$r_rc"

# ---- a first endpoint that accepts connections and never answers -----------------------------
HANG=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -c 'import socket,sys,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(16); time.sleep(120)' "$HANG" &
HANG_PID=$!
for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$HANG") 2>/dev/null && break; sleep 0.1; done
sed -i "s|^etcd_endpoints = .*|etcd_endpoints = http://127.0.0.1:$HANG ${EP[1]} ${EP[2]}|" "$T/ha.conf"
start=$(date +%s%N)
DIRCONN_LEASE_DRIVER_TIMEOUT_MS=500 lease B acquire 3000
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check_eq "B acquires past a hanging first endpoint" "0" "$r_rc"
check_contains "the hanging endpoint timed out" "$r_err" "etcd http://127.0.0.1:$HANG: Timeout was reached (curl 28)"
check "within the 500 ms timeout and the rest (${ms} ms)" test "$ms" -lt 5000
lease B release
kill "$HANG_PID" 2>/dev/null || true
wait "$HANG_PID" 2>/dev/null || true

# ---- no endpoint at all ---------------------------------------------------------------------
etcd_stop_all
lease A observe
check_eq "no endpoint answers: ELEASE_CONNECT, not cloud unreachable" "52" "$r_rc"
check_contains "the message names every endpoint" "$r_err" "etcd ${EP[1]}: "
check_contains "... to the last" "$r_err" "etcd ${EP[2]}: "

finish
