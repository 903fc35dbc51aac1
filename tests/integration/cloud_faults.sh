# Fault injection of dirconn-cloud: 500/503 before applying, 500 after
# applying, dropped responses, 429 throttling, latency, seeded determinism,
# /oauth/token exempt by default.
. "$(dirname "$0")/cloud_lib.sh"
cloud_setup
cloud_start

faults() { api PUT "$BASE/v1/faults" "$1"; check_status "set faults $1" 200; }
user() { printf '{%s,"userName":"%s"}' "$USER_SCHEMA" "$1"; }
count_user() { api GET "$SCIM/Users" "" -G --data-urlencode "filter=userName eq \"$1\""; printf '%s' "$BODY" | jq -r .totalResults; }

register c1; token "$CID" "$CSECRET"; CT=$TOKEN

faults '{"error500":1}'
api POST "$SCIM/Users" "$(user before500@example.com)"
check_status "injected 500" 500
token "$CID" "$CSECRET"
check_status "oauth not faulted by default" 200
faults '{"oauth":true}'
token "$CID" "$CSECRET"
check_status "oauth faulted when asked" 500
faults '{"error500":0,"oauth":false}'
check_eq "500 fault is not applied" 0 "$(count_user before500@example.com)"
req "$CT" GET "$BASE/v1/orgs/acme/stats"
check_status "control API answers again" 200

faults '{"error503":1,"retryAfter":7,"writesOnly":true}'
api POST "$SCIM/Users" "$(user before503@example.com)"
check_status "injected 503" 503
check_eq "503 Retry-After" 7 "$(header Retry-After)"
check_eq "503 fault is not applied (reads pass with writesOnly)" 0 "$(count_user before503@example.com)"
faults '{"error503":0,"writesOnly":false}' 

faults '{"error500After":1}'
api POST "$SCIM/Users" "$(user after500@example.com)"
check_status "injected 500 after applying" 500
faults '{"error500After":0}'
check_eq "500-after fault is applied" 1 "$(count_user after500@example.com)"

faults '{"drop":1}'
curl -sS --cacert "$T/ca.pem" -o /dev/null -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'Content-Type: application/scim+json' -d "$(user dropped@example.com)" "$SCIM/Users" 2>"$T/drop.err"
RC=$?
check_eq "dropped mid-response (curl: partial file)" 18 "$RC"
faults '{"drop":0}'
check_eq "dropped response was applied" 1 "$(count_user dropped@example.com)"

faults '{"throttleRps":1,"retryAfter":1}'
# ten requests at once (however slow the machine, they do not spread over ten seconds): all but
# one a second are refused
PAR=()
for i in $(seq 1 10); do PAR+=(-o /dev/null "$SCIM/Users?count=1&n=$i"); done
curl -sS --cacert "$T/ca.pem" --parallel --parallel-immediate --parallel-max 10 \
    -H "Authorization: Bearer $ADMIN_TOKEN" -w '%{http_code} %header{retry-after}\n' "${PAR[@]}" \
    > "$T/throttle.out" 2>"$T/curl.err"
N429=$(grep -c '^429 ' "$T/throttle.out" || true)
RA=$(awk '$1 == 429 { print $2; exit }' "$T/throttle.out" | tr -d '\r')
if [ "$N429" -ge 3 ]; then ok "throttling: $N429 of 10 requests got 429"; else not_ok "throttling: only $N429 of 10 requests got 429: $(tr '\n' ' ' < "$T/throttle.out")"; fi
check_eq "429 Retry-After" 1 "${RA:-}"
faults '{"throttleRps":0,"latencyMs":400}'
S=$(date +%s%N)
api GET "$SCIM/Users?count=1"
E=$(( ($(date +%s%N) - S) / 1000000 ))
check_status "latency request" 200
if [ "$E" -ge 400 ]; then ok "latency: answered in $E ms"; else not_ok "latency: answered in $E ms"; fi
# a client giving up during the delay must not hurt the server
curl -s --cacert "$T/ca.pem" -m 0.1 -H "Authorization: Bearer $ADMIN_TOKEN" "$SCIM/Users" >/dev/null
# the server answers it after the delay (its log line) and goes on
answered_late() { grep -q 'GET /scim/v2/acme/Users [0-9]' "$T/cloud.log"; }
if wait_until 60 answered_late; then ok "the request given up on was answered"; else not_ok "the request given up on was never answered"; fi
faults '{"latencyMs":0}'
api GET "$BASE/v1/faults"
check_jq "fault counters" 1 '.counts.error500After'

# seeded faults repeat
cloud_stop
seq_of() { # runs in this shell (not a subshell) so the server is tracked
    cloud_start --fault-500 0.5 --fault-seed 42
    SEQ=""
    for i in $(seq 1 20); do
        api GET "$SCIM/Users?count=0"
        [ "$STATUS" = 000 ] && cat "$T/curl.err"
        SEQ="$SEQ$STATUS "
    done
    cloud_stop
}
seq_of; A=$SEQ
seq_of; B=$SEQ
check_eq "same seed, same faults" "$B" "$A"
check_contains "seeded run injected a 500" "$A" 500
check_contains "seeded run did not only fail" "$A" 200
finish
