# Fault injection of dirconn-cloud: 500/503 before applying, 500 after
# applying, dropped responses, 429 throttling, latency, seeded determinism,
# /oauth/token exempt by default.
. "$(dirname "$0")/cloud_lib.sh"
cloud_setup
cloud_start

faults() { api PUT "$BASE/v1/faults" "$1"; check_status 200 "set faults $1"; }
user() { printf '{%s,"userName":"%s"}' "$USER_SCHEMA" "$1"; }
count_user() { api GET "$SCIM/Users" "" -G --data-urlencode "filter=userName eq \"$1\""; printf '%s' "$BODY" | jq -r .totalResults; }

register c1; token "$CID" "$CSECRET"; CT=$TOKEN

faults '{"error500":1}'
api POST "$SCIM/Users" "$(user before500@example.com)"
check_status 500 "injected 500"
token "$CID" "$CSECRET"
check_status 200 "oauth not faulted by default"
faults '{"oauth":true}'
token "$CID" "$CSECRET"
check_status 500 "oauth faulted when asked"
faults '{"error500":0,"oauth":false}'
check_eq "$(count_user before500@example.com)" 0 "500 fault is not applied"
req "$CT" GET "$BASE/v1/orgs/acme/stats"
check_status 200 "control API answers again"

faults '{"error503":1,"retryAfter":7,"writesOnly":true}'
api POST "$SCIM/Users" "$(user before503@example.com)"
check_status 503 "injected 503"
check_eq "$(header Retry-After)" 7 "503 Retry-After"
check_eq "$(count_user before503@example.com)" 0 "503 fault is not applied (reads pass with writesOnly)"
faults '{"error503":0,"writesOnly":false}' 

faults '{"error500After":1}'
api POST "$SCIM/Users" "$(user after500@example.com)"
check_status 500 "injected 500 after applying"
faults '{"error500After":0}'
check_eq "$(count_user after500@example.com)" 1 "500-after fault is applied"

faults '{"drop":1}'
curl -sS --cacert "$T/ca.pem" -o /dev/null -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'Content-Type: application/scim+json' -d "$(user dropped@example.com)" "$SCIM/Users" 2>"$T/drop.err"
RC=$?
check_eq "$RC" 18 "dropped mid-response (curl: partial file)"
faults '{"drop":0}'
check_eq "$(count_user dropped@example.com)" 1 "dropped response was applied"

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
[ "$N429" -ge 3 ] && pass || failm "throttling: only $N429 of 10 requests got 429: $(tr '\n' ' ' < "$T/throttle.out")"
check_eq "${RA:-}" 1 "429 Retry-After"
faults '{"throttleRps":0,"latencyMs":400}'
S=$(date +%s%N)
api GET "$SCIM/Users?count=1"
E=$(( ($(date +%s%N) - S) / 1000000 ))
check_status 200 "latency request"
[ "$E" -ge 400 ] && pass || failm "latency: answered in $E ms"
# a client giving up during the delay must not hurt the server
curl -s --cacert "$T/ca.pem" -m 0.1 -H "Authorization: Bearer $ADMIN_TOKEN" "$SCIM/Users" >/dev/null
# the server answers it after the delay (its log line) and goes on
answered_late() { grep -q 'GET /scim/v2/acme/Users [0-9]' "$T/cloud.log"; }
wait_until 60 answered_late && pass || failm "the request given up on was never answered"
faults '{"latencyMs":0}'
api GET "$BASE/v1/faults"
check_jq '.counts.error500After' 1 "fault counters"

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
check_eq "$A" "$B" "same seed, same faults"
case "$A" in *500*) pass ;; *) failm "seeded run injected no 500: $A" ;; esac
case "$A" in *200*) pass ;; *) failm "seeded run only failed: $A" ;; esac
finish
