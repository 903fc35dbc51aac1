# Integration test of password synchronisation on the real Samba AD DC (docs/password-sync.md):
# the DC stores the cleartext (--store-plaintext=on and the account's reversible encryption,
# userAccountControl ENCRYPTED_TEXT_PWD_ALLOWED: Samba keeps Primary:CLEARTEXT);
# samba-tool user syncpasswords, on the DC's privileged ldapi socket as on a real DC, runs
# dirconn-pwsync for each change; it delivers over mutual TLS to dirconnd, which sets the
# password in the reference cloud (verified through the cloud's admin password-check).
# Scenarios: samba-tool user setpassword; an LDAP unicodePwd change over ldaps; the handler's
# loop down while a password changes, then started; a standby asked first; a weak password
# (the domain's own complexity check off) refused and reported; a provider without a writable
# password. Each waits for the event (the cloud's hash matching, a log line), never a fixed
# time, and the table at the end gives the time from the change to the cloud.
#   bash pwsync_adds.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/pwsync_lib.sh"

work=$(mktemp -d /tmp/dirconn-it-pwadds-XXXXXX)
APID= BPID= SPID=
cleanup() {
	local rc=$?
	stop_pid "$SPID"
	stop_pid "$APID"
	stop_pid "$BPID"
	sync_cloud_stop
	"$LDSFX" stop "$work/fx" >/dev/null 2>&1 || true
	if [[ $rc -eq 0 && $T_FAIL -eq 0 && -z ${KEEP_WORK:-} ]]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
ldsfx_start_retry adds "$work/fx"
# shellcheck disable=SC1091
source "$work/fx/env"
export LDAPTLS_CACERT=$LDSFX_CA_FILE
M=$LDSFX_MANIFEST
SMB=(-s "$LDSFX_DIR/etc/smb.conf")
LDAPI="ldapi://$("$PY" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$LDSFX_DIR/private/ldap_priv/ldapi")"

# plaintext storage on; the domain's own rules off, so that the connector's rules are what is tested; passwords are
# set on the DC's database as an administrator on the DC would (samba-tool -H sam.ldb)
SAM=(-H "$LDSFX_DIR/private/sam.ldb" "${SMB[@]}")
samba-tool domain passwordsettings set --store-plaintext=on --complexity=off --min-pwd-length=1 \
	--history-length=0 --min-pwd-age=0 "${SAM[@]}" >/dev/null
SG=$(json "$M" "j['cloud_users']['dn']")
DN="CN=pwsync one,CN=Users,$LDSFX_BASE_DN"
samba-tool user create pwsync1 'Created-Pass0' --given-name=Pw --surname=One \
	--mail-address=pwsync1@dirconn.test "${SAM[@]}" >/dev/null
ldap_modify "dn: $SG
changetype: modify
add: member
member: $(ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" \
	-b "$LDSFX_BASE_DN" -LLL '(sAMAccountName=pwsync1)' dn | sed -n 's/^dn: //p')"
GUID=$(ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" \
	-b "$LDSFX_BASE_DN" -LLL '(sAMAccountName=pwsync1)' objectGUID | sed -n 's/^objectGUID:: //p' |
	base64 -d | "$PY" -c 'import sys, uuid; print(uuid.UUID(bytes_le=sys.stdin.buffer.read()))')
DN=$(ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" \
	-b "$LDSFX_BASE_DN" -LLL '(sAMAccountName=pwsync1)' dn | sed -n 's/^dn: //p')
# Samba stores Primary:CLEARTEXT when the domain stores plaintext (--store-plaintext=on) and
# the account allows reversible encryption (NORMAL_ACCOUNT | ENCRYPTED_TEXT_PWD_ALLOWED): both
ldap_modify "dn: $DN
changetype: modify
replace: userAccountControl
userAccountControl: 640"
samba-tool user setpassword pwsync1 --newpassword='Initial-Pass1' "${SAM[@]}" >/dev/null

pwsync_certs
sync_cloud_start
sync_register conn-a
sync_register conn-b
A_ID=$(cat "$work/conn-a.id")
B_ID=$(cat "$work/conn-b.id")
for n in conn-a conn-b; do
	sync_conf "$work/$n.conf" "$n" "[users]
security_groups = $SG
[schedule]
incremental_interval = 10m
notifications = yes
$(pwsync_listen_conf)"
	sed -i 's/^level = warn/level = info/' "$work/$n.conf"
done
dirconnd --config "$work/conn-a.conf" 2>>"$work/a.log" &
APID=$!
check "conn-a listens for password changes" wait_until 60 pwsync_listening "$work/a.log"
A_PORT=$(pwsync_port "$work/a.log")
in_cloud() { [[ $(sync_cloud_count "externalId eq \"$GUID\"") == 1 ]]; }
check "the user is in the cloud after conn-a's first sync" wait_until 300 in_cloud
UN=$(json "$(cloud_admin GET "/scim/v2/acme/Users?filter=externalId%20eq%20%22$GUID%22")" "j['Resources'][0]['userName']")
pwsync_handler_conf "$work/handler.conf" "$A_ID=https://127.0.0.1:$A_PORT"

# syncpasswords: its cache, the attributes for the script, only this test's users
export DIRCONN_PWSYNC_CONFIG=$work/handler.conf
SP=(--cache-ldb="$work/syncpasswords-cache.ldb" "${SMB[@]}") # the cache keeps -H
run_capture init samba-tool user syncpasswords --cache-ldb-initialize \
	--attributes=objectGUID,virtualClearTextUTF8,pwdLastSet,userAccountControl \
	--filter='(&(objectClass=user)(sAMAccountName=pwsync*))' --script="$PWSYNC_BIN" -H "$LDAPI" "${SP[@]}"
check_eq "syncpasswords cache initialised" 0 "$init_rc"
[[ $init_rc -eq 0 ]] || echo "$init_out $init_err"
sp_start() {
	samba-tool user syncpasswords "${SP[@]}" >>"$work/syncpasswords.log" 2>&1 &
	SPID=$!
}
declare -A RESULT TIME
matches() { [[ $(pw_check "$UN" "$1") == "true true "* ]]; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# 0. the loop starts: the password set at creation (with plaintext storage on) is delivered
sp_start
check "the password set at creation reaches the cloud" wait_until 120 matches 'Initial-Pass1'

# 1. samba-tool user setpassword
t0=$(date +%s%N)
samba-tool user setpassword pwsync1 --newpassword='Setpass-2026!' "${SAM[@]}" >/dev/null
check "setpassword: the new password reaches the cloud" wait_until 60 matches 'Setpass-2026!'
RESULT[samba-tool user setpassword]=applied; TIME[samba-tool user setpassword]=$(ms_since "$t0")
check "the handler answered DONE-EXIT" grep -q "DONE-EXIT: .*password applied by connector $A_ID" "$work/syncpasswords.log"

# 2. an LDAP unicodePwd change (an administrator's reset over ldaps)
t0=$(date +%s%N)
ldap_modify "dn: $DN
changetype: modify
replace: unicodePwd
unicodePwd:: $(printf '"%s"' 'Ldap-Pwd-2026#' | iconv -f UTF-8 -t UTF-16LE | base64 -w0)"
check "unicodePwd over ldaps: the new password reaches the cloud" wait_until 60 matches 'Ldap-Pwd-2026#'
RESULT[LDAP unicodePwd (ldaps)]=applied; TIME[LDAP unicodePwd (ldaps)]=$(ms_since "$t0")

# 3. the handler's loop is down while the password changes, then starts
stop_pid "$SPID"; SPID=
t0=$(date +%s%N)
samba-tool user setpassword pwsync1 --newpassword='While-Down-7' "${SAM[@]}" >/dev/null
check_eq "handler down: the cloud still has the previous password" "true true" \
	"$(pw_check "$UN" 'Ldap-Pwd-2026#' | cut -d' ' -f1-2)"
t1=$(date +%s%N)
sp_start
check "handler started: the change made while it was down arrives" wait_until 120 matches 'While-Down-7'
RESULT[handler down, then started]="applied after start"; TIME[handler down, then started]=$(ms_since "$t1")

# 4. a standby is asked first; the active applies
dirconnd --config "$work/conn-b.conf" 2>>"$work/b.log" &
BPID=$!
check "conn-b listens" wait_until 60 pwsync_listening "$work/b.log"
B_PORT=$(pwsync_port "$work/b.log")
standby() { dirconnctl status --socket "$work/state-conn-b/dirconnd.sock" 2>/dev/null | grep -q -i standby; }
check "conn-b is the standby" wait_until 60 standby
pwsync_handler_conf "$work/handler.conf" "$B_ID=https://127.0.0.1:$B_PORT" "$A_ID=https://127.0.0.1:$A_PORT"
t0=$(date +%s%N)
samba-tool user setpassword pwsync1 --newpassword='Standby-First8' "${SAM[@]}" >/dev/null
check "standby first: the active applied it" wait_until 60 matches 'Standby-First8'
RESULT[standby asked first]=applied; TIME[standby asked first]=$(ms_since "$t0")
check "the standby named the active" grep -q "this instance is a standby; the active one is $A_ID" "$work/b.log"

# 5. a weak password is refused and reported with the DN
t0=$(date +%s%N)
samba-tool user setpassword pwsync1 --newpassword='weakpassword' "${SAM[@]}" >/dev/null
weak_logged() { grep -q "password change for $DN not applied (weak)" "$work/a.log"; }
check "weak: the connector reports it with the DN" wait_until 60 weak_logged
RESULT[weak password]="refused, reported"; TIME[weak password]=$(ms_since "$t0")
check "weak: the cloud keeps the previous password" matches 'Standby-First8'
check "weak: syncpasswords got DONE-EXIT (nothing to retry)" grep -q "DONE-EXIT: .*password not applied (weak)" "$work/syncpasswords.log"

# 6. a provider without a writable password gets nothing, and a report
sync_cloud_stop
sync_cloud_start --no-password
t0=$(date +%s%N)
samba-tool user setpassword pwsync1 --newpassword='No-Writable-9' "${SAM[@]}" >/dev/null
nw_logged() { grep -q "password change for $DN not applied (notWritable)" "$work/a.log"; }
check "no writable password: reported with the DN" wait_until 60 nw_logged
RESULT[provider without writable password]="not sent, reported"; TIME[provider without writable password]=$(ms_since "$t0")
check "no writable password: nothing sent" matches 'Standby-First8'

check "syncpasswords still runs" kill -0 "$SPID"
leaks=$(grep -a -l -r -e 'Setpass-2026!' -e 'Ldap-Pwd-2026#' -e 'While-Down-7' -e 'Standby-First8' \
	-e 'No-Writable-9' "$work"/a.log "$work"/b.log "$work"/cloud.log "$work"/cloud.db* \
	"$work"/state-conn-a "$work"/state-conn-b 2>/dev/null || true)
check_eq "no password in the connectors' logs, state or the cloud" "" "$leaks"
if grep -q -E 'Sanitizer|runtime error:' "$work"/*.log; then not_ok "sanitizer report"; grep -E -A5 'Sanitizer|runtime error:' "$work"/*.log | head -30; fi

echo "# scenario | result | change to cloud, ms (polled every 0.1 s)"
for k in "samba-tool user setpassword" "LDAP unicodePwd (ldaps)" "handler down, then started" \
	"standby asked first" "weak password" "provider without writable password"; do
	echo "# $k | ${RESULT[$k]:-FAILED} | ${TIME[$k]:--}"
done
finish
