# Integration test: dirconnd's sync reports and alerts by email ([reports], issue 18 item 4),
# against a real SMTP server on loopback (aiosmtpd, tests/integration/smtp_sink.py) that stores
# every message it takes; Python's email package parses them (mail_check.py).
#   1. STARTTLS (a CA and certificate this test makes) and AUTH with [reports] password_file:
#      the periodic summary arrives, both alternatives parse, its counts are the sync's.
#   2. The delete threshold stops a run: the "not working" alert arrives.
#   3. The SMTP server hangs (accepts TCP, never answers): a sync still completes while the
#      delivery waits for its timeout, status answers, and the daemon logs one warning for
#      two failed attempts.
#   4. A reload points the reports at a plain server (starttls = opportunistic): the next
#      summary arrives, counting the mail that was dropped.
#   5. The cloud stops: the failed sync's alert, the lost HA lease's alert and the "no
#      successful sync" alert arrive.
#   bash daemon_mail.sh adlds|adds
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"
kind=${1:?usage: daemon_mail.sh adds|adlds}

work=$(mktemp -d /tmp/dirconn-it-mail-XXXXXX)
DPID= SMTP_PID=
smtp_stop() {
	if [[ -n $SMTP_PID ]]; then
		kill -TERM "$SMTP_PID" 2>/dev/null || true
		wait "$SMTP_PID" 2>/dev/null || true
		SMTP_PID=
	fi
}
cleanup() {
	if [[ -n $DPID ]]; then
		kill -TERM "$DPID" 2>/dev/null || true
		wait "$DPID" 2>/dev/null || true
	fi
	smtp_stop
	sync_cloud_stop
	"$LDSFX" stop "$work/fx" >/dev/null 2>&1 || true
	if [[ $T_FAIL -eq 0 && -z ${KEEP_WORK:-} ]]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT

# smtp_start DIR [ARGS...]: the SMTP server on SMTP_PORT (or a free port), storing into DIR
smtp_start() {
	local dir=$1
	shift
	rm -f "$work/smtp.ready"
	"$PY" "$SRC/tests/integration/smtp_sink.py" --dir "$dir" --ready-file "$work/smtp.ready" \
		--port "${SMTP_PORT:-0}" "$@" 2>>"$work/smtp.log" &
	SMTP_PID=$!
	wait_until 30 test -s "$work/smtp.ready" || { echo "the SMTP server did not start:"; tail -5 "$work/smtp.log"; return 1; }
	SMTP_PORT=$(cat "$work/smtp.ready")
}
# mail_with DIR SUBJECT [BODY]: the newest message in DIR whose Subject has SUBJECT (and whose
# text/plain part has BODY); prints its path
mail_with() {
	"$PY" - "$@" <<-'EOF'
	import email, email.policy, glob, sys
	d, subject = sys.argv[1], sys.argv[2]
	body = sys.argv[3] if len(sys.argv) > 3 else ""
	for f in sorted(glob.glob(d + "/*.eml"), reverse=True):
	    m = email.message_from_binary_file(open(f, "rb"), policy=email.policy.default)
	    text = m.get_body(preferencelist=("plain",))
	    if subject in str(m["Subject"]) and body in (text.get_content() if text else ""):
	        print(f)
	        sys.exit(0)
	sys.exit(1)
	EOF
}
has_mail() { mail_with "$@" >/dev/null; }
count() { grep -c -- "$1" "$2" || true; }
# more_than PATTERN N: the log has more than N lines with PATTERN (evaluated at each call)
more_than() { (($(count "$1" "$log") > $2)); }

ldsfx_start_retry "$kind" "$work/fx"
# shellcheck disable=SC1091
source "$work/fx/env"
M=$LDSFX_MANIFEST
sync_cloud_start
sync_register conn-m
svc=$(json "$M" "j['ous']['Service Accounts']['dn']")

# ---- 1. STARTTLS and AUTH: the periodic summary
printf 'smtp-%s\n' "$(openssl rand -hex 12)" >"$work/smtp.password"
chmod 600 "$work/smtp.password"
smtp_start "$work/mail1" --tls-cert "$work/cloud.pem" --tls-key "$work/cloud.key" \
	--auth "dirconn:$work/smtp.password"
reports() { # reports SMTP_URL [extra [reports] lines]
	printf '[reports]\nsmtp_url = %s\nfrom = dirconn@corp.example\nto = ops@corp.example, audit@corp.example\ninterval = 4s\nalert_no_success_after = 1h\ntimeout = 20s\nretries = 1\n%s\n' "$1" "${2-}"
}
base_extra="[schedule]
incremental_interval = 1h
full_sync = never
notifications = no
[ha]
lease_duration = 10s"
tls_reports=$(reports "smtp://127.0.0.1:$SMTP_PORT" "starttls = required
ca_file = $work/cloud-ca.pem
username = dirconn
password_file = $work/smtp.password")
sync_conf "$work/m.conf" conn-m "$base_extra
$tls_reports"
sed -i 's/^level = warn/level = debug/' "$work/m.conf" # the delivery attempts are debug lines
cp "$work/m.conf" "$work/m.conf.orig"
log=$work/dirconnd.log
sock=$work/state-conn-m/dirconnd.sock

dirconnd --config "$work/m.conf" 2>>"$log" &
DPID=$!
check "dirconnd's first sync ran" wait_until 300 grep -q "sync done in" "$log"
check "the summary arrives over STARTTLS" wait_until 60 has_mail "$work/mail1" "sync report"
f=$(mail_with "$work/mail1" "sync report" || true)
if [[ -n $f ]]; then
	m=$("$PY" "$SRC/tests/integration/mail_check.py" "$f")
	env=${f%.eml}.json
	check_eq "the session was TLS (STARTTLS)" True "$(json "$env" "j['tls']")"
	check_eq "AUTH with the password file's password" dirconn "$(json "$env" "j['login']")"
	check_eq "the envelope sender" dirconn@corp.example "$(json "$env" "j['mail_from']")"
	check_eq "the envelope has both recipients" "['ops@corp.example', 'audit@corp.example']" "$(json "$env" "j['rcpt_tos']")"
	check_eq "To: names both recipients" "['ops@corp.example', 'audit@corp.example']" "$(json "$m" "j['to']")"
	check_eq "From:" "['dirconn@corp.example']" "$(json "$m" "j['from']")"
	check_eq "text/plain and text/html alternatives" True "$(json "$m" "j['alternative']")"
	check_eq "MIME-Version (libcurl's mime API)" 1.0 "$(json "$m" "j['mime_version']")"
	check "Date: is now (RFC 5322, within 10 minutes)" test "$(json "$m" "int(j['date_skew'] < 600)")" = 1
	check_contains "Message-ID: on the sender's domain" "$(json "$m" "j['message_id']")" ".dirconn@corp.example>"
	check_contains "Subject: names the connector" "$(json "$m" "j['subject']")" "Directory Connector conn-m: sync report, 1 run, 0 failed"
	# the counts of the run, from the daemon's own line
	done_line=$(grep -m1 "sync done in" "$log")
	read -r a u d < <(sed -n 's/.*: \([0-9]*\) added, \([0-9]*\) updated, \([0-9]*\) deleted.*/\1 \2 \3/p' <<<"$done_line")
	text=$(json "$m" "j['text']")
	html=$(json "$m" "j['html']")
	check "the sync added objects" test "${a:-0}" -gt 0
	check_contains "text: the run's Result line" "$text" "Result | $a added | $u updated | $d deleted | 0 failed"
	check_contains "text: the period's counts" "$text" "Objects | $a added | $u updated | $d deleted | 0 failed"
	check_contains "text: the runs" "$text" "Runs | 1 total | 1 succeeded | 0 failed"
	check_contains "html: the period's counts" "$html" "$a added, $u updated, $d deleted, 0 failed"
	check_contains "html: the run's summary lines" "$html" "Summary | 0 Admins Deleted"
	skipped=$(sed -n 's/^\([0-9]*\) objects skipped.*/\1/p' <<<"$text")
	if [[ -n $skipped ]]; then
		shown=$(grep -c '^- ' <<<"$text" || true)
		want=$((skipped < 50 ? skipped : 50))
		check "the problems are listed (at most 50; $skipped skipped objects)" test "$shown" -ge "$want" -a "$shown" -le 50
	fi
fi
check_eq "the SMTP password is never logged" 0 "$(count "$(cat "$work/smtp.password")" "$log")"

# ---- 2. the delete threshold stops a run: the alert
sync_conf "$work/m.conf" conn-m "$base_extra
[users]
base_dns = $svc
[policy]
delete_threshold = 1
$tls_reports"
sed -i 's/^level = warn/level = debug/' "$work/m.conf"
reloads=$(count "configuration .* reloaded" "$log")
kill -HUP "$DPID"
check "SIGHUP: reloaded" wait_until 60 more_than "configuration .* reloaded" "$reloads"
dirconnctl sync-now --incremental --socket "$sock" >/dev/null
check "the threshold alert arrives" wait_until 120 has_mail "$work/mail1" "is not working"
f=$(mail_with "$work/mail1" "is not working" || true)
if [[ -n $f ]]; then
	m=$("$PY" "$SRC/tests/integration/mail_check.py" "$f")
	check_contains "alert subject" "$(json "$m" "j['subject']")" "conn-m is not working: the delete threshold stopped a sync"
	check_contains "alert text: the cause" "$(json "$m" "j['text']")" "Cause: Delete threshold (1 object"
	check_contains "alert text: its kind" "$(json "$m" "j['text']")" "Alert: delete threshold"
	check_contains "alert text: the run stopped" "$(json "$m" "j['text']")" "Status: stopped by the delete threshold"
	check_contains "alert html: the cause" "$(json "$m" "j['html']")" "Delete threshold (1 object"
fi

# ---- 3. a server that hangs never delays a sync; one warning line
cp "$work/m.conf.orig" "$work/m.conf"
reloads=$(count "configuration .* reloaded" "$log")
kill -HUP "$DPID"
check "SIGHUP: the original configuration again" wait_until 60 more_than "configuration .* reloaded" "$reloads"
smtp_stop
smtp_start "$work/silent" --silent # the same port: accepts, never answers
warned0=$(count "mail was not delivered" "$log")
syncs0=$(count "sync done in" "$log")
# a sync that succeeds makes the next period's summary, whose delivery hangs for 20 s
dirconnctl sync-now --incremental --socket "$sock" >/dev/null
check "a sync completes" wait_until 120 more_than "sync done in" "$syncs0"
check "a delivery attempt is in flight" wait_until 60 \
	bash -c "ss -tn state established '( dport = :$SMTP_PORT )' | grep -q 127.0.0.1"
t0=$(date +%s.%N)
syncs1=$(count "sync done in" "$log")
dirconnctl sync-now --incremental --socket "$sock" >/dev/null
check "a sync completes while the mail server hangs" wait_until 60 more_than "sync done in" "$syncs1"
elapsed=$(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)")
check_eq "no delivery failed yet: the sync did not wait for the mail (${elapsed} s)" "$warned0" "$(count "mail was not delivered" "$log")"
check "status answers meanwhile" eval 'dirconnctl status --socket "$sock" --json >/dev/null'
check "the second attempt fails too (bounded retries: dropped)" \
	wait_until 120 grep -q "dropped after its last attempt" "$log"
check_eq "one warning line for the failing server" $((warned0 + 1)) "$(count "mail was not delivered" "$log")"

# ---- 4. reload to a plain server (opportunistic STARTTLS, no AUTH): delivered again
smtp_stop
SMTP_PORT=
smtp_start "$work/mail2"
sync_conf "$work/m.conf" conn-m "$base_extra
$(reports "smtp://127.0.0.1:$SMTP_PORT" "starttls = opportunistic" | sed 's/^alert_no_success_after = .*/alert_no_success_after = 6s/')"
sed -i 's/^level = warn/level = debug/' "$work/m.conf"
reloads=$(count "configuration .* reloaded" "$log")
kill -HUP "$DPID"
check "SIGHUP: the new [reports]" wait_until 60 more_than "configuration .* reloaded" "$reloads"
dirconnctl sync-now --incremental --socket "$sock" >/dev/null
check "the summary arrives at the new server" wait_until 120 has_mail "$work/mail2" "sync report"
check "a summary counts the dropped mail" wait_until 120 has_mail "$work/mail2" "sync report" \
	"earlier report emails could not be delivered"
f=$(mail_with "$work/mail2" "sync report" || true)
if [[ -n $f ]]; then
	check_eq "plain SMTP (the server offers no STARTTLS)" False "$(json "${f%.eml}.json" "j['tls']")"
	check_eq "no AUTH" None "$(json "${f%.eml}.json" "j['login']")"
fi
check "the log says the server takes mail again" grep -q "the server takes mail again" "$log"

# ---- 5. the cloud stops: the failed sync, the lost lease, no success
sync_cloud_stop
dirconnctl sync-now --incremental --socket "$sock" >/dev/null
check "the failed sync's alert arrives" wait_until 120 has_mail "$work/mail2" "is not working" "Alert: sync failed"
check "the lost lease's alert arrives" wait_until 120 has_mail "$work/mail2" "is not working" "Alert: lease lost"
f=$(mail_with "$work/mail2" "is not working" "Alert: lease lost" || true)
[[ -z $f ]] || check_contains "lease alert subject" "$(json "$("$PY" "$SRC/tests/integration/mail_check.py" "$f")" "j['subject']")" \
	"is not working: the HA lease was lost"
check "the no-success alert arrives" wait_until 60 has_mail "$work/mail2" "is not working" "Alert: no success"
f=$(mail_with "$work/mail2" "is not working" "Alert: no success" || true)
[[ -z $f ]] || check_contains "no-success alert subject" "$(json "$("$PY" "$SRC/tests/integration/mail_check.py" "$f")" "j['subject']")" \
	"is not working: no synchronization has succeeded for 6 s"

kill -TERM "$DPID"
rc=0
wait "$DPID" || rc=$?
DPID=
check_eq "SIGTERM: dirconnd exits 0" 0 "$rc"
finish
