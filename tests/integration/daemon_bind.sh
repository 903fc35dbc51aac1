# Integration test: dirconnd never locks out its own service account (issue 14).
# On the Samba AD DC with an account lockout threshold of 3, dirconnd runs with a wrong
# password. It binds once, logs the refusal once with AD's reason in words, and binds no
# more: its own timers (an incremental every 2 s, notification reconnections after at most
# 1 s, a file check every 1 s: shortened so that many periods pass)
# all hold back, for two minutes of incremental periods. badPwdCount stays at 1 and the
# account is not locked. Each explicit retry
# (sync-now, SIGHUP, a changed password file or configuration) binds exactly once; a right
# password (the account named by its UPN) gets the daemon going again.
#   bash daemon_bind.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"

work=$(mktemp -d /tmp/dirconn-it-bind-XXXXXX)
DPID=
cleanup() {
	if [[ -n $DPID ]]; then
		kill -TERM "$DPID" 2>/dev/null || true
		wait "$DPID" 2>/dev/null || true
	fi
	sync_cloud_stop
	"$LDSFX" stop "$work/fx" >/dev/null 2>&1 || true
	if [[ $T_FAIL -eq 0 && -z ${KEEP_WORK:-} ]]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
ldsfx_start_retry adds "$work/fx"
# shellcheck disable=SC1091
source "$work/fx/env"
export LDAPTLS_CACERT=$LDSFX_CA_FILE

# ---- the domain's lockout policy and a service account, with samba-tool on the DC's database
ST=(-H "$LDSFX_DIR/private/sam.ldb" -s "$LDSFX_DIR/etc/smb.conf")
samba-tool domain passwordsettings set --account-lockout-threshold=3 "${ST[@]}" >/dev/null
check_eq "the domain locks an account out at the third bad password" 3 \
	"$(ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" \
		-b "$LDSFX_BASE_DN" -s base -LLL lockoutThreshold | sed -n 's/^lockoutThreshold: //p')"
good_pw='Dirconn-Svc-2718!'
samba-tool user create svc-dirconn "$good_pw" "${ST[@]}" >/dev/null
svc="CN=svc-dirconn,CN=Users,$LDSFX_BASE_DN"
printf '%s\n' "$good_pw" >"$work/good.pw"
printf 'not-the-password\n' >"$work/bind.pw"
chmod 600 "$work/good.pw" "$work/bind.pw"

# account_attr ATTR: the service account's attribute, read as the administrator ("" if absent)
account_attr() {
	ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" \
		-b "$svc" -s base -LLL "$1" | sed -n "s/^$1: //p"
}
bad_count() { local n; n=$(account_attr badPwdCount); echo "${n:-0}"; }
locked() { local t; t=$(account_attr lockoutTime); [[ -n $t && $t != 0 ]] && echo yes || echo no; }
check_eq "the new account has no bad password yet" 0 "$(bad_count)"

sync_cloud_start
sync_register conn-a
SG=$(json "$LDSFX_MANIFEST" "j['cloud_users']['dn']")
conf() { # conf PASSWORD_FILE
	sync_conf "$work/a.conf" conn-a "[users]
security_groups = $SG
[schedule]
incremental_interval = 2s
notifications = yes
[daemon]
notify_retry_max = 1s
refused_bind_check = 1s"
	# the service account by its user principal name, and its password file
	sed -i -e "s|^bind_dn = .*|bind_dn = svc-dirconn@dirconn.test|" \
		-e "s|^bind_password_file = .*|bind_password_file = $1|" -e 's/^level = warn/level = debug/' \
		"$work/a.conf"
}
conf "$work/bind.pw"
log=$work/dirconnd.log
sock=$work/state-conn-a/dirconnd.sock
status_json() { dirconnctl status --socket "$sock" --json; }
# the refusal at error level (ldap_source also logs each DC it tried, at debug)
refused='dirconnd: error: .* refused: invalid credentials (AD data 52e)'
refusals() { grep -c -- "$refused" "$log" || true; }
count() { grep -c -- "$1" "$log" || true; }
# wait_count PATTERN N [SECONDS]: until the log has at least N lines matching PATTERN
wait_count() { wait_until "${3:-60}" bash -c '(( $(grep -c -- "$1" "$2" || true) >= $3 ))' _ "$1" "$log" "$2"; }

dirconnd --config "$work/a.conf" 2>>"$log" &
DPID=$!
check "dirconnd logs the refused bind" wait_count "$refused" 1 120
line=$(grep -m1 -- "$refused" "$log")
check_contains "the refusal names the DC" "$line" "$LDSFX_URL_TLS: bind as 'svc-dirconn@dirconn.test' refused"
check_contains "the refusal keeps the LDAP code" "$line" "Invalid credentials (49)"
check_contains "the refusal says what lifts it" "$line" "no connection binds again until the configuration or the bind password changes, SIGHUP, or dirconnctl sync-now"

# ---- dirconnd's own retries: many periods of every timer pass, and nothing binds
held0=$(count "is held back: the directory bind was refused")
checks0=$(count "the directory bind stays refused")
touch "$work/bind.pw" # a new mtime, the same password: no retry
# two minutes of a 2 s incremental: 60 periods, each held back
t_held=$(date +%s)
check "the incremental timer fired 60 more times (two minutes), each held back" \
	wait_count "is held back: the directory bind was refused" $((held0 + 60)) 600
echo "# $(($(date +%s) - t_held)) s of held-back periods with the wrong password"
check "the file check ran 20 more times, finding no change" \
	wait_count "the directory bind stays refused" $((checks0 + 20)) 90
check_eq "the refusal is logged once" 1 "$(refusals)"
check_eq "no other bind was tried" 0 "$(count "one bind is tried again")"
check_eq "badPwdCount stays at 1" 1 "$(bad_count)"
check_eq "the account is not locked" no "$(locked)"
st=$(status_json)
check_eq "status: overall error" error "$(json "$st" "j['overall']")"
check_eq "status: the directory's bind is refused" "bind refused" "$(json "$st" "j['directory']['condition']")"
check_contains "status: the last directory error gives the reason" "$(json "$st" "j['directory']['error']")" "invalid credentials (AD data 52e)"
check_eq "status: the error's cause is LDAP result 49 (invalidCredentials, RFC 4511 4.1.9)" "ldap 49" \
	"$(json "$st" "'%s %s' % (j['error_cause']['origin'], j['error_cause']['code']) if j.get('error_cause') else None")"
check_eq "status: the notification connection waits" held "$(json "$st" "j['notifications']['state']")"
run_capture txt dirconnctl status --socket "$sock"
check_contains "status (text) shows the refusal" "$txt_out" "bind refused since"

# ---- sync-now: exactly one more attempt
dirconnctl sync-now --incremental --socket "$sock" >/dev/null
check "sync-now tries the bind once more" wait_count "$refused" 2 60
held1=$(count "is held back: the directory bind was refused")
check "then the timers hold back again" wait_count "is held back: the directory bind was refused" $((held1 + 3)) 60
check_eq "badPwdCount after sync-now: 2" 2 "$(bad_count)"
check_eq "the account is still not locked" no "$(locked)"

# ---- the right password in the file: noticed, tried, and the daemon works again
cp "$work/good.pw" "$work/bind.pw"
check "the changed password is noticed" wait_count "the bind password changed: one bind is tried again" 1 30
check "and the held sync runs" wait_count "sync done in" 1 180
check_eq "a successful bind resets badPwdCount" 0 "$(bad_count)"
users=$(cloud_admin GET "/scim/v2/acme/Users?count=1" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["totalResults"])')
check "users reached the cloud with the account named by its UPN" test "$users" -gt 0
notif_connected() { [[ $(json "$(status_json)" "j['notifications']['state']" 2>/dev/null) == connected ]]; }
check "the notification connection is up again" wait_until 30 notif_connected
st=$(status_json)
check_eq "status: the directory is ok again" ok "$(json "$st" "j['directory']['state']")"
check_eq "status: the DC in use" "$LDSFX_URL_TLS" "$(json "$st" "j['directory']['server']")"
check_eq "status: notifications connected" connected "$(json "$st" "j['notifications']['state']")"

# ---- a wrong password again: refused once by the timer, SIGHUP tries once more
printf 'wrong-again\n' >"$work/bind.pw"
r0=$(refusals)
check "the next sync's bind is refused" wait_count "$refused" $((r0 + 1)) 60
held2=$(count "is held back: the directory bind was refused")
check "and the timers hold back" wait_count "is held back: the directory bind was refused" $((held2 + 3)) 60
check_eq "badPwdCount: 1" 1 "$(bad_count)"
kill -HUP "$DPID"
check "SIGHUP tries the bind once more" wait_count "$refused" $((r0 + 2)) 60
checks1=$(count "the directory bind stays refused")
check "then nothing binds" wait_count "the directory bind stays refused" $((checks1 + 3)) 60
check_eq "badPwdCount after SIGHUP: 2" 2 "$(bad_count)"
check_eq "the account is not locked" no "$(locked)"

# ---- a changed configuration (another password file) is reloaded and tried
conf "$work/good.pw"
check "the changed configuration is reloaded" wait_count "the configuration file changed: configuration .* reloaded" 1 30
ok0=$(count "sync done in")
check "and synchronises again" wait_count "sync done in" $((ok0 + 1)) 120
check_eq "badPwdCount back to 0" 0 "$(bad_count)"
check_eq "never locked out" no "$(locked)"
check_eq "dirconnd still runs" 0 "$(kill -0 "$DPID" 2>/dev/null && echo 0 || echo 1)"

kill -TERM "$DPID"
rc=0
wait "$DPID" || rc=$?
DPID=
check_eq "SIGTERM: dirconnd exits 0" 0 "$rc"
finish
