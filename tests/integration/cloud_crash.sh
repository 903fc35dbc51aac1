# kill -9 of dirconn-cloud during a write burst: after a restart every
# acknowledged write is present and none is half-applied.
. "$(dirname "$0")/cloud_lib.sh"
cloud_setup
cloud_start

full_user() { # userName n
    printf '{%s,"userName":"%s","externalId":"x-%s","displayName":"User %s","title":"T%s","name":{"givenName":"G%s","familyName":"F%s"},"emails":[{"value":"%s","type":"work","primary":true}]}' \
        "$USER_SCHEMA" "$1" "$2" "$2" "$2" "$2" "$2" "$1"
}

# single-POST writers: record a userName only after its 201
writer() {
    local k=$1 i=0
    : > "$T/acked.$k"
    while :; do
        i=$((i + 1))
        local u="w$k-$i@example.com"
        local st
        st=$(curl -s --cacert "$T/ca.pem" -o /dev/null -w '%{http_code}' -m 5 \
            -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/scim+json' \
            -d "$(full_user "$u" "$k$i")" "$SCIM/Users") || break
        [ "$st" = 201 ] && echo "$u" >> "$T/acked.$k"
        [ "$st" = 000 ] && break
    done
}
# bulk writer: 20 users (and a group of them) per request, recorded after a 200 with all 201s
bulk_writer() {
    local b=0
    : > "$T/acked.bulk"
    while :; do
        b=$((b + 1))
        local ops="" j
        for j in $(seq 1 20); do
            ops="$ops{\"method\":\"POST\",\"path\":\"/Users\",\"bulkId\":\"u$j\",\"data\":$(full_user "b$b-$j@example.com" "b$b$j")},"
        done
        ops="$ops{\"method\":\"POST\",\"path\":\"/Groups\",\"bulkId\":\"g\",\"data\":{$GROUP_SCHEMA,\"displayName\":\"batch $b\",\"members\":[{\"value\":\"bulkId:u1\"},{\"value\":\"bulkId:u20\"}]}}"
        local out
        out=$(curl -s --cacert "$T/ca.pem" -m 5 -H "Authorization: Bearer $ADMIN_TOKEN" \
            -H 'Content-Type: application/scim+json' \
            -d "{$BULK_SCHEMA,\"Operations\":[$ops]}" "$SCIM/Bulk") || break
        if [ "$(printf '%s' "$out" | jq -r '[.Operations[].status]|unique|join(",")' 2>/dev/null)" = 201 ]; then
            for j in $(seq 1 20); do echo "b$b-$j@example.com" >> "$T/acked.bulk"; done
        fi
    done
}

EXTRA_PIDS=""
for k in 1 2 3; do writer $k & EXTRA_PIDS="$EXTRA_PIDS $!"; done
bulk_writer & EXTRA_PIDS="$EXTRA_PIDS $!"
# kill it in the middle of the burst: once both kinds of writer have writes acknowledged
burst_under_way() {
    [ "$(cat "$T"/acked.[0-9] 2>/dev/null | wc -l)" -gt 20 ] && [ -s "$T/acked.bulk" ]
}
wait_until 120 burst_under_way || not_ok "the writers had no writes acknowledged after 120 s"
kill -9 "$CLOUD_PID"
wait "$CLOUD_PID" 2>/dev/null
CLOUD_PID=
wait $EXTRA_PIDS 2>/dev/null
EXTRA_PIDS=""
cat "$T"/acked.* | LC_ALL=C sort > "$T/acked"
NACK=$(wc -l < "$T/acked")
if [ "$NACK" -gt 10 ]; then ok "more than 10 acknowledged writes before the kill ($NACK)"; else not_ok "too few acknowledged writes before the kill: $NACK"; fi

cloud_start
# read everything back
: > "$T/stored.json"
start=1
while :; do
    api GET "$SCIM/Users?startIndex=$start&count=1000"
    printf '%s' "$BODY" | jq -c '.Resources[]' >> "$T/stored.json"
    n=$(printf '%s' "$BODY" | jq '.Resources|length')
    total=$(printf '%s' "$BODY" | jq .totalResults)
    start=$((start + n))
    [ "$n" -eq 0 ] || [ "$start" -gt "$total" ] && break
done
jq -r .userName "$T/stored.json" | LC_ALL=C sort > "$T/stored"
MISSING=$(LC_ALL=C comm -23 "$T/acked" "$T/stored" | wc -l)
check_eq "acknowledged writes present after kill -9 ($NACK acknowledged)" 0 "$MISSING"
# none half-applied: every stored user carries all its attributes
PARTIAL=$(jq -r 'select((.name.givenName|not) or (.name.familyName|not) or (.emails|length)!=1 or (.title|not) or (.externalId|not) or (.displayName|not)) | .userName' "$T/stored.json" | wc -l)
check_eq "no half-applied user" 0 "$PARTIAL"
# bulk requests are atomic: 0 or 20 users per batch, and the group with them
BAD=$(grep '^b' "$T/stored" | sed 's/-.*//' | sort | uniq -c | awk '$1 != 20' | wc -l)
check_eq "bulk batches all-or-nothing" 0 "$BAD"
NB=$(grep -c '^b' "$T/stored" || true)
api GET "$SCIM/Groups?count=1000"
check_eq "one group per stored batch" "$((NB / 20))" "$(printf '%s' "$BODY" | jq .totalResults)"
api GET "$SCIM/Users?count=0"
check_jq "count consistent" "$(wc -l < "$T/stored")" .totalResults
finish
