# Integration test of password synchronisation's delivery (docs/password-sync.md): the
# handler dirconn-pwsync fed one object's LDIF (as samba-tool user syncpasswords writes it)
# delivers it over mutual TLS to two dirconnd of one HA group, the standby first; the active
# applies it by PATCH to the reference cloud, which keeps a salted hash (checked through its
# admin password-check endpoint). Also: a weak password, a user out of scope, a connector that
# is down, then started, a provider without a writable password, refused client certificates,
# and that no password reaches a log or the state. Directory: the AD LDS-like fixture (its
# entryUUID is the objectGUID of this test; tests/integration/pwsync_adds.sh runs the real
# syncpasswords on the Samba AD DC).
#   bash pwsync_delivery.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/pwsync_lib.sh"

work=$(mktemp -d /tmp/dirconn-it-pwsync-XXXXXX)
APID= BPID=
cleanup() {
	local rc=$?
	stop_pid "$APID"
	stop_pid "$BPID"
	sync_cloud_stop
	"$LDSFX" stop "$work/fx" >/dev/null 2>&1 || true
	if [[ $rc -eq 0 && $T_FAIL -eq 0 && -z ${KEEP_WORK:-} ]]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
ldsfx_start_retry adlds "$work/fx" --users 20
# shellcheck disable=SC1091
source "$work/fx/env"
M=$LDSFX_MANIFEST
pwsync_certs
sync_cloud_start
sync_register conn-a
sync_register conn-b
A_ID=$(cat "$work/conn-a.id")
B_ID=$(cat "$work/conn-b.id")
SG=$(json "$M" "j['cloud_users']['dn']")
for n in conn-a conn-b; do
	sync_conf "$work/$n.conf" "$n" "[users]
security_groups = $SG
[schedule]
incremental_interval = 10m
notifications = no
[ha]
lease_duration = 30s
$(pwsync_listen_conf)"
	sed -i 's/^level = warn/level = info/' "$work/$n.conf"
done

# a [pwsync] listen without the client CA is refused at its file:line
sed '/^client_ca = /d' "$work/conn-a.conf" >"$work/bad.conf"
run_capture bad dirconnd --config "$work/bad.conf"
check_eq "listen without client_ca: dirconnd exits 3" 3 "$bad_rc"
check_contains "it names file:line" "$bad_err" \
	"bad.conf:$(grep -n '^listen = ' "$work/bad.conf" | cut -d: -f1): [pwsync] listen needs tls_cert, tls_key and client_ca"

dirconnd --config "$work/conn-a.conf" 2>>"$work/a.log" &
APID=$!
check "conn-a listens for password changes" wait_until 60 pwsync_listening "$work/a.log"
A_PORT=$(pwsync_port "$work/a.log")
synced() { [[ $(sync_cloud_count 'userName pr') -gt 0 ]]; }
check "conn-a's first sync created users" wait_until 120 synced
# conn-b starts once conn-a holds the lease: it is the standby
dirconnd --config "$work/conn-b.conf" 2>>"$work/b.log" &
BPID=$!
check "conn-b listens for password changes" wait_until 60 pwsync_listening "$work/b.log"
B_PORT=$(pwsync_port "$work/b.log")
standby() { dirconnctl status --socket "$work/state-conn-b/dirconnd.sock" 2>/dev/null | grep -q -i standby; }
check "conn-b is the standby" wait_until 60 standby

# a user of the scope, as the cloud knows it: userName and externalId (the entryUUID)
users=$(cloud_admin GET "/scim/v2/acme/Users?count=2&sortBy=userName")
U1=$(json "$users" "j['Resources'][0]['userName']")
G1=$(json "$users" "j['Resources'][0]['externalId']")
U2=$(json "$users" "j['Resources'][1]['userName']")
G2=$(json "$users" "j['Resources'][1]['externalId']")
DN1="CN=user one,$LDSFX_BASE_DN"
ldif() { printf 'dn: %s\nobjectGUID: %s\nvirtualClearTextUTF8:: %s\npwdLastSet: 133780000000000000\nuserAccountControl: 512\n' \
	"$1" "$2" "$(printf '%s' "$3" | base64 -w0)"; }
declare -A RESULT TIME

# 1. the standby is asked first and names the active; the active applies the change
pwsync_handler_conf "$work/handler.conf" "$B_ID=https://127.0.0.1:$B_PORT" "$A_ID=https://127.0.0.1:$A_PORT"
PW1='Winter-2026!a'
t0=$(date +%s%N)
handler "$(ldif "$DN1" "$G1" "$PW1")"
t1=$(date +%s%N)
check_eq "standby first: the handler exits 0" 0 "$H_RC"
check_contains "standby first: DONE-EXIT from the active" "$H_OUT" "DONE-EXIT: $DN1: password applied by connector $A_ID"
check_eq "the cloud has the new password" "true true 1" "$(pw_check "$U1" "$PW1")"
check "the standby logged that it is one" grep -q "password change for $DN1: this instance is a standby; the active one is $A_ID" "$work/b.log"
check "the active logged the change" grep -q "password change for .* applied" "$work/a.log"
RESULT[standby first, active applies]="applied"; TIME[standby first, active applies]=$(((t1 - t0) / 1000000))

# 2. the active alone, again
PW2='Spring#2027b'
pwsync_handler_conf "$work/handler.conf" "$A_ID=https://127.0.0.1:$A_PORT"
t0=$(date +%s%N)
handler "$(ldif "$DN1" "$G1" "$PW2")"
t1=$(date +%s%N)
check_contains "direct: DONE-EXIT" "$H_OUT" "DONE-EXIT: $DN1: password applied"
check_eq "the second change replaced the first" "true true 2" "$(pw_check "$U1" "$PW2")"
RESULT[active directly]="applied"; TIME[active directly]=$(((t1 - t0) / 1000000))

# 3. a weak password is refused, not sent, reported with the DN
handler "$(ldif "$DN1" "$G1" 'weakpassword')"
check_eq "weak: the handler exits 0 (nothing to retry)" 0 "$H_RC"
check_contains "weak: DONE-EXIT says why" "$H_OUT" "password not applied (weak)"
check_eq "weak: the cloud keeps the previous password" "true true 2" "$(pw_check "$U1" "$PW2")"
check "weak: the connector's log names the DN" grep -q "password change for .* not applied (weak): the password has 1 of the 4 character classes" "$work/a.log"
RESULT[weak password]="refused, reported"

# 4. an objectGUID outside the scope
handler "$(ldif "CN=nobody,$LDSFX_BASE_DN" "0a1b2c3d-0000-4000-8000-000000000001" 'Strong-Pass1')"
check_contains "out of scope: DONE-EXIT (notInScope)" "$H_OUT" "password not applied (notInScope)"
check "out of scope: the log names the DN" grep -q "password change for CN=nobody,$LDSFX_BASE_DN not applied (notInScope)" "$work/a.log"
RESULT[user out of scope]="refused, reported"

# 5. a change without a cleartext (an account disabled): nothing to send
handler "$(printf 'dn: %s\nobjectGUID: %s\nuserAccountControl: 514\n' "$DN1" "$G1")"
check_contains "no cleartext: DONE-EXIT, nothing sent" "$H_OUT" "DONE-EXIT: $DN1: no cleartext password"

# 6. mutual TLS: no client certificate, or one of another CA, is refused in the handshake
body="{\"objectGUID\":\"$G1\",\"password\":\"Other-Pass1\"}"
run_capture nocert curl -sS --cacert "$work/pki/ca.pem" -H 'Content-Type: application/json' \
	--data-binary "$body" "https://127.0.0.1:$A_PORT/v1/password-changes"
check "no client certificate: refused" test "$nocert_rc" -ne 0
run_capture intruder curl -sS --cacert "$work/pki/ca.pem" --cert "$work/pki/intruder.pem" \
	--key "$work/pki/intruder.key" -H 'Content-Type: application/json' \
	--data-binary "$body" "https://127.0.0.1:$A_PORT/v1/password-changes"
check "a client certificate of another CA: refused" test "$intruder_rc" -ne 0
check_eq "nothing reached the cloud" "true true 2" "$(pw_check "$U1" "$PW2")"

# 7. the connector is down: not delivered, syncpasswords keeps it (exit 75, no DONE-EXIT);
#    once it runs again, the same change is delivered
stop_pid "$APID"; APID=
stop_pid "$BPID"; BPID=
PW3='Autumn%2027c'
handler "$(ldif "$DN1" "$G1" "$PW3")"
check_eq "connector down: exit 75" 75 "$H_RC"
check "connector down: no DONE-EXIT" test "${H_OUT#DONE-EXIT}" == "$H_OUT"
check_eq "connector down: the cloud keeps the previous password" "true true 2" "$(pw_check "$U1" "$PW2")"
: >"$work/a.log"
dirconnd --config "$work/conn-a.conf" 2>>"$work/a.log" &
APID=$!
check "conn-a listens again" wait_until 60 pwsync_listening "$work/a.log"
A_PORT=$(pwsync_port "$work/a.log")
active() { dirconnctl status --socket "$work/state-conn-a/dirconnd.sock" 2>/dev/null | grep -q '(active)'; }
check "conn-a is active again" wait_until 90 active
pwsync_handler_conf "$work/handler.conf" "$A_ID=https://127.0.0.1:$A_PORT"
t0=$(date +%s%N)
handler "$(ldif "$DN1" "$G1" "$PW3")"
t1=$(date +%s%N)
check_contains "connector started: DONE-EXIT" "$H_OUT" "DONE-EXIT: $DN1: password applied"
check_eq "connector started: the change arrived" "true true 3" "$(pw_check "$U1" "$PW3")"
RESULT[connector down, then started]="kept (exit 75), applied after start"; TIME[connector down, then started]=$(((t1 - t0) / 1000000))

# 8. a provider without a writable password gets nothing, and a report
sync_cloud_stop
sync_cloud_start --no-password
t0=$(date +%s%N)
handler "$(ldif "CN=user two,$LDSFX_BASE_DN" "$G2" 'Provider-Pass9')"
check_contains "no writable password: DONE-EXIT (notWritable)" "$H_OUT" "password not applied (notWritable)"
check "no writable password: the log names the DN and the cause" \
	grep -q "password change for .* not applied (notWritable): the cloud's User schema has no attribute password" "$work/a.log"
check_eq "no writable password: nothing stored" "false false 0" "$(pw_check "$U2" 'Provider-Pass9')"
RESULT[provider without writable password]="not sent, reported"

# the secret stays secret: not in a log, the state or the cloud's database
leaks=$(grep -a -l -r -e "$PW1" -e "$PW2" -e "$PW3" -e 'Provider-Pass9' -e 'weakpassword' \
	"$work"/*.log "$work"/state-conn-a "$work"/state-conn-b "$work"/cloud.db* 2>/dev/null || true)
check_eq "no password in a log, the state or the cloud database" "" "$leaks"
if grep -q -E 'Sanitizer|runtime error:' "$work"/*.log; then not_ok "sanitizer report"; grep -E -A5 'Sanitizer|runtime error:' "$work"/*.log | head -30; fi

echo "# scenario | result | change to cloud (ms, handler start to DONE-EXIT)"
for k in "standby first, active applies" "active directly" "weak password" "user out of scope" \
	"connector down, then started" "provider without writable password"; do
	echo "# $k | ${RESULT[$k]} | ${TIME[$k]:--}"
done
finish
