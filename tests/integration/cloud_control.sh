# Control API of dirconn-cloud over HTTPS: OAuth client credentials, auth
# failures, connectors, lease races, fencing, state, reports and stats.
. "$(dirname "$0")/cloud_lib.sh"
cloud_setup
# a short token lifetime, still long enough for the steps that use one token on a loaded machine
# (a few requests each, 20 s); the expiry is awaited, not slept
cloud_start --token-ttl 20s --org initech

# registration needs the admin token
req "" POST "$V1/connectors" '{"name":"c1","host":"h1"}'
check_status 401 "register without token"
check_eq "$(header WWW-Authenticate | cut -c1-6)" "Bearer" "WWW-Authenticate on 401"
req "wrong-token" POST "$V1/connectors" '{"name":"c1","host":"h1"}'
check_status 401 "register with a wrong token"
api POST "$V1/connectors" '{"name":"c1"}'
check_status 400 "register without host"
api POST "$V1/connectors" '{"name":"c1","host":"h1","extra":1}'
check_status 400 "register with an unknown member"
register c1; C1=$CID; S1=$CSECRET
check_status 201 "register c1"
check_eq "${#S1}" 64 "secret length"
register c2; C2=$CID; S2=$CSECRET
api GET "$V1/connectors"
check_jq '[.connectors[].name]|join(",")' c1,c2 "list connectors"
api GET "$V1/connectors/$C1"
check_jq '.host + " " + (.lastSeen|tostring)' "c1.example.test null" "get connector"
sqlite3 "$T/cloud.db" "select count(*) from connectors where hex(secret_hash) like '%'" >/dev/null 2>&1 || true
if command -v sqlite3 >/dev/null && sqlite3 "$T/cloud.db" "select * from connectors" | grep -q "$S1"; then failm "secret stored in clear"; else pass; fi

# OAuth 2.0 client credentials: form body and HTTP Basic
token "$C1" "$S1"
check_status 200 "token (form)"
check_jq '.token_type + " " + (.expires_in|tostring)' "Bearer 20" "token response"
T1=$TOKEN
BODY=$(curl -sS --cacert "$T/ca.pem" -w '\n%{http_code}' -u "$C2:$S2" -d grant_type=client_credentials "$BASE/oauth/token")
STATUS=${BODY##*$'\n'}; BODY=${BODY%$'\n'*}
check_status 200 "token (Basic)"
T2=$(printf '%s' "$BODY" | jq -r .access_token)
token "$C1" "wrong"
check_status 401 "token with a wrong secret"
check_jq .error invalid_client "invalid_client"
BODY=$(curl -sS --cacert "$T/ca.pem" -w '\n%{http_code}' -d grant_type=password -d client_id=$C1 -d client_secret=$S1 "$BASE/oauth/token")
STATUS=${BODY##*$'\n'}; BODY=${BODY%$'\n'*}
check_status 400 "unsupported grant"; check_jq .error unsupported_grant_type "unsupported_grant_type"
BODY=$(curl -sS --cacert "$T/ca.pem" -w '\n%{http_code}' -H 'Content-Type: application/json' -d '{}' "$BASE/oauth/token")
STATUS=${BODY##*$'\n'}
check_status 400 "token with a JSON body"

# connector tokens work on SCIM and the control API; not on another org
req "$T1" GET "$SCIM/Users"
check_status 200 "connector token on SCIM"
req "$T1" GET "$BASE/scim/v2/globex/Users"
check_status 403 "connector token on another org"
req "$T1" GET "$BASE/v1/orgs/globex/lease"
check_status 403 "connector token on another org's lease"
req "$T1" POST "$V1/connectors" '{"name":"x","host":"y"}'
check_status 403 "connector cannot register connectors"
req "$T1" GET "$V1/connectors/$C1" "" -H "Dirconn-Connector-Version: 1.2.3"
check_jq .version 1.2.3 "reported version"
check_eq "$(printf '%s' "$BODY" | jq -r '.lastSeen|type')" string "lastSeen"

# expired token: wait until the cloud refuses it (at most 120 s)
refused() { req "$T1" GET "$SCIM/Users"; [ "$STATUS" = 401 ]; }
wait_until 120 refused
check_status 401 "expired token"
check_eq "$(header WWW-Authenticate | grep -c invalid_token)" 1 "expired token error=invalid_token"
token "$C1" "$S1"; T1=$TOKEN
token "$C2" "$S2"; T2=$TOKEN

# lease: take, races, renew, fencing
api GET "$V1/lease"
check_jq '[(.holderIdentity|tostring), (.leaseTransitions|tostring)]|join(",")' "null,0" "initial lease"
RV=$(printf '%s' "$BODY" | jq -r .resourceVersion)
check_eq "$(header ETag)" "\"$RV\"" "lease ETag"
req "$T1" PUT "$V1/lease" "{\"holderIdentity\":\"$C1\",\"leaseDurationSeconds\":30}"
check_status 412 "lease PUT without If-Match"
req "$T1" PUT "$V1/lease" "{\"holderIdentity\":\"$C2\",\"leaseDurationSeconds\":30}" -H "If-Match: \"$RV\""
check_status 403 "connector naming another holder"
# race: both PUT with the same resourceVersion at the same time
LB1="{\"holderIdentity\":\"$C1\",\"leaseDurationSeconds\":30}"
LB2="{\"holderIdentity\":\"$C2\",\"leaseDurationSeconds\":30}"
for i in 1 2; do
    tok=$T1; lb=$LB1; [ $i = 2 ] && { tok=$T2; lb=$LB2; }
    curl -sS --cacert "$T/ca.pem" -o "$T/race$i.json" -w '%{http_code}' -X PUT \
        -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' -H "If-Match: \"$RV\"" \
        -d "$lb" "$V1/lease" > "$T/race$i.status" &
    RACE_PIDS="${RACE_PIDS:-} $!"
done
wait $RACE_PIDS
R1=$(cat "$T/race1.status"); R2=$(cat "$T/race2.status")
check_eq "$(printf '%s\n' "$R1" "$R2" | sort | paste -sd,)" "200,412" "lease race: one 200, one 412"
if [ "$R1" = 200 ]; then HOLDER=$C1; HT=$T1; OTHER=$C2; OT=$T2; else HOLDER=$C2; HT=$T2; OTHER=$C1; OT=$T1; fi
api GET "$V1/lease"
check_jq '.holderIdentity + " " + (.leaseTransitions|tostring)' "$HOLDER 1" "lease after race"
RV=$(printf '%s' "$BODY" | jq -r .resourceVersion)
FT=$(printf '%s' "$BODY" | jq -r .leaseTransitions)
req "$OT" PUT "$V1/lease" "{\"holderIdentity\":\"$OTHER\",\"leaseDurationSeconds\":30}" -H "If-Match: \"$RV\""
check_status 409 "taking an unexpired lease"
# a 10 s lease: the fencing checks below run while it lasts, then its expiry is awaited
req "$HT" PUT "$V1/lease" "{\"holderIdentity\":\"$HOLDER\",\"leaseDurationSeconds\":10}" -H "If-Match: \"$RV\""
check_status 200 "renew"
check_jq .leaseTransitions 1 "renew keeps transitions"
RV=$(printf '%s' "$BODY" | jq -r .resourceVersion)

# fencing
U='{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"fenced@example.com"}'
req "$HT" POST "$SCIM/Users" "$U" -H "Dirconn-Fencing-Token: $FT"
check_status 201 "holder writes with its token"
req "$HT" POST "$SCIM/Users" "${U/fenced@/fenced2@}"
check_status 409 "write without the header once the lease is used"
req "$OT" POST "$SCIM/Users" "${U/fenced@/fenced3@}" -H "Dirconn-Fencing-Token: $FT"
check_status 409 "non-holder with the current token"
check_eq "$(header Dirconn-Fenced)" 1 "Dirconn-Fenced header"
req "$HT" POST "$SCIM/Users" "${U/fenced@/fenced4@}" -H "Dirconn-Fencing-Token: $((FT - 1))"
check_status 409 "stale token"
api POST "$SCIM/Users" "${U/fenced@/admin-write@}"
check_status 201 "admin writes are not fenced"
lease_expired() { api GET "$V1/lease"; [ "$(printf '%s' "$BODY" | jq -r .expired)" = true ]; }
wait_until 120 lease_expired
check_jq .expired true "the 10 s lease expires"
refresh() { # new tokens: the 20 s ttl of this test is short
    local hs os; if [ "$HOLDER" = "$C1" ]; then hs=$S1; os=$S2; else hs=$S2; os=$S1; fi
    token "$HOLDER" "$hs"; HT=$TOKEN; token "$OTHER" "$os"; OT=$TOKEN
}
refresh
req "$HT" POST "$SCIM/Users" "${U/fenced@/fenced5@}" -H "Dirconn-Fencing-Token: $FT"
check_status 409 "expired holder is fenced"
req "$OT" PUT "$V1/lease" "{\"holderIdentity\":\"$OTHER\",\"leaseDurationSeconds\":30}" -H "If-Match: \"$RV\""
check_status 200 "take an expired lease"
check_jq .leaseTransitions 2 "transition on takeover"
RV=$(printf '%s' "$BODY" | jq -r .resourceVersion)
req "$OT" POST "$SCIM/Bulk" "{$BULK_SCHEMA,\"Operations\":[{\"method\":\"POST\",\"path\":\"/Users\",\"bulkId\":\"a\",\"data\":$U}]}" -H "Dirconn-Fencing-Token: 1"
check_status 409 "bulk with the old token"
api GET "$V1/stats"
check_jq .fencedRejections 5 "fencedRejections counted"
check_jq '.users' 2 "stats users"

# state document with ETag
refresh
req "$OT" GET "$V1/state"
check_status 200 "get state"; check_eq "$BODY" "{}" "initial state"
SV=$(header ETag)
req "$OT" PUT "$V1/state" '{"watermark":"usn:123"}' -H "If-Match: $SV" -H "Dirconn-Fencing-Token: 2"
check_status 200 "put state"
req "$OT" PUT "$V1/state" '{"watermark":"usn:124"}' -H "If-Match: $SV" -H "Dirconn-Fencing-Token: 2"
check_status 412 "put state with a stale ETag"
req "$HT" PUT "$V1/state" '{"watermark":"usn:999"}' -H "If-Match: *" -H "Dirconn-Fencing-Token: 1"
check_status 409 "state write from the old holder is fenced"
req "$HT" GET "$V1/state"
check_jq .watermark usn:123 "state kept"

# reports
REP='{"type":"incremental","start":"2026-01-01T10:00:00Z","end":"2026-01-01T10:00:05Z","counts":{"added":1,"updated":2,"deleted":0,"matched":3,"skipped":0,"failed":0},"thresholdEvents":[]}'
req "$OT" POST "$V1/connectors/$OTHER/reports" "$REP"
check_status 201 "post report"
req "$OT" POST "$V1/connectors/$OTHER/reports" "${REP/incremental/full}"
req "$OT" POST "$V1/connectors/$HOLDER/reports" "$REP"
check_status 403 "report for another connector"
req "$OT" POST "$V1/connectors/$OTHER/reports" "${REP/incremental/weekly}"
check_status 400 "bad report type"
req "$OT" POST "$V1/connectors/$OTHER/reports" "${REP/\"failed\":0/\"failed\":-1}"
check_status 400 "negative count"
api GET "$V1/connectors/$OTHER/reports?limit=1"
check_jq '[(.reports|length|tostring), .reports[0].type]|join(",")' "1,full" "reports newest first with limit"
api GET "$V1/reports"
check_jq '.reports|length' 2 "org reports"

# secret reset: old secret and tokens stop at once
refresh
api POST "$V1/connectors/$HOLDER/secret"
check_status 200 "reset secret"
NEWS=$(printf '%s' "$BODY" | jq -r .secret)
req "$HT" GET "$SCIM/Users"
check_status 401 "old token after secret reset"
if [ "$HOLDER" = "$C1" ]; then OLDS=$S1; else OLDS=$S2; fi
token "$HOLDER" "$OLDS"
check_status 401 "old secret after reset"
token "$HOLDER" "$NEWS"
check_status 200 "new secret works"

# a connector rotates its own secret, in two phases: pending until the new secret gets a token
HT2=$TOKEN
token "$OTHER" "$([ "$OTHER" = "$C1" ] && echo "$S1" || echo "$S2")"; OT2=$TOKEN
req "$OT2" POST "$V1/connectors/$HOLDER/secret"
check_status 403 "a connector cannot rotate another connector's secret"
check_jq .error forbidden "  ... forbidden"
req "$OT2" POST "$V1/connectors/no-such-id/secret"
check_status 403 "  ... nor an unknown id"
req "$HT2" GET "$V1/connectors/$HOLDER/secret"
check_status 405 "GET secret"
req "$HT2" POST "$V1/connectors/$HOLDER/secret"
check_status 200 "a connector rotates its own secret"
check_jq .secretPending true "  ... the new secret is pending"
check_eq "$(header Cache-Control)" no-store "  ... Cache-Control: no-store"
P1=$(printf '%s' "$BODY" | jq -r .secret)
check_eq "${#P1}" 64 "  ... a 64-character secret"
token "$HOLDER" "$NEWS"
check_status 200 "the current secret works while the new one is pending"
HT3=$TOKEN
req "$HT2" GET "$SCIM/Users"
check_status 200 "  ... and so do its tokens"
# the answer was lost: a second rotation replaces the pending secret
req "$HT2" POST "$V1/connectors/$HOLDER/secret"
check_status 200 "a second rotation"
P2=$(printf '%s' "$BODY" | jq -r .secret)
token "$HOLDER" "$P1"
check_status 401 "  ... the replaced pending secret is refused"
# the pending secret survives kill -9 of the cloud (committed before the answer)
kill -9 "$CLOUD_PID"; wait "$CLOUD_PID" 2>/dev/null; CLOUD_PID=
cloud_start --token-ttl 20s --org initech
token "$HOLDER" "$P2"
check_status 200 "the pending secret gets a token after kill -9 and a restart"
NT=$TOKEN
req "$HT2" GET "$SCIM/Users"
check_status 401 "  ... which revokes the tokens of the old secret"
req "$HT3" GET "$SCIM/Users"
check_status 401 "  ... all of them"
token "$HOLDER" "$NEWS"
check_status 401 "  ... and the old secret"
check_jq .error invalid_client "  ... invalid_client"
req "$NT" GET "$SCIM/Users"
check_status 200 "the new secret's token works"
token "$HOLDER" "$P2"
check_status 200 "the new secret is now the secret"
NEWS=$P2
# an admin rotation drops a pending secret
token "$HOLDER" "$NEWS"
req "$TOKEN" POST "$V1/connectors/$HOLDER/secret"
P3=$(printf '%s' "$BODY" | jq -r .secret)
api POST "$V1/connectors/$HOLDER/secret"
check_jq .secretPending false "an admin rotation is not pending"
NEWS=$(printf '%s' "$BODY" | jq -r .secret)
token "$HOLDER" "$P3"
check_status 401 "  ... and drops a pending secret"
token "$HOLDER" "$NEWS"
check_status 200 "  ... its secret works"

# deregistration: tokens stop at once, lease released
HOLDER_S=$NEWS; token "$OTHER" "$([ "$OTHER" = "$C1" ] && echo "$S1" || echo "$S2")"; OT=$TOKEN
req "$OT" GET "$SCIM/Users"
check_status 200 "holder token before deregistration"
api DELETE "$V1/connectors/$OTHER"
check_status 204 "deregister"
req "$OT" GET "$SCIM/Users"
check_status 401 "deregistered connector's token"
api GET "$V1/lease"
check_jq '(.holderIdentity|tostring) + " " + (.leaseTransitions|tostring)' "null 3" "lease released by deregistration"
api DELETE "$V1/connectors/$OTHER"
check_status 404 "deregister twice"
api GET "$BASE/v1/orgs/nosuch/lease"
check_status 404 "unknown org"

api GET "$BASE/v1/orgs"
check_jq '.orgs|join(",")' acme,globex,initech "list orgs"

# a wider race on another org: six connectors, one resourceVersion, one winner
G1="$BASE/v1/orgs/globex"
api GET "$G1/lease"; GRV=$(printf '%s' "$BODY" | jq -r .resourceVersion)
PIDS=""
for i in 1 2 3 4 5 6; do
    api POST "$G1/connectors" "{\"name\":\"g$i\",\"host\":\"g$i.example.test\"}"
    gid=$(printf '%s' "$BODY" | jq -r .id); gs=$(printf '%s' "$BODY" | jq -r .secret)
    token "$gid" "$gs"
    echo "$gid $TOKEN" > "$T/g$i"
done
for i in 1 2 3 4 5 6; do
    read -r gid gtok < "$T/g$i"
    curl -sS --cacert "$T/ca.pem" -o /dev/null -w '%{http_code}\n' -X PUT \
        -H "Authorization: Bearer $gtok" -H 'Content-Type: application/json' -H "If-Match: \"$GRV\"" \
        -d "{\"holderIdentity\":\"$gid\",\"leaseDurationSeconds\":30}" "$G1/lease" > "$T/grace$i" &
    PIDS="$PIDS $!"
done
wait $PIDS
check_eq "$(cat "$T"/grace* | sort | uniq -c | awk '{print $1"x"$2}' | paste -sd,)" "1x200,5x412" "six-way lease race"
api GET "$G1/lease"
check_jq .leaseTransitions 1 "one transition after the six-way race"

# HA mode (docs/cloud-api.md "HA mode"), in an org of its own
I1="$BASE/v1/orgs/initech"; IS="$BASE/scim/v2/initech"
IU='{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"mode@example.com"}'
api GET "$I1/ha-mode"
check_status 200 "GET ha-mode"
check_jq '.haMode' null "no HA mode recorded at first"
api POST "$I1/connectors" '{"name":"e1","host":"e1.test","haMode":"etcd"}'
check_status 201 "register with haMode etcd"
E1=$(printf '%s' "$BODY" | jq -r .id); ES1=$(printf '%s' "$BODY" | jq -r .secret)
api GET "$I1/ha-mode"
check_jq '.haMode + " " + .recordedBy' "etcd registration of connector $E1" "the registration recorded etcd"
api POST "$I1/connectors" '{"name":"x","host":"x.test","haMode":"bogus"}'
check_status 400 "register with an unknown haMode"
api POST "$I1/connectors" '{"name":"c","host":"c.test","haMode":"cloud"}'
check_status 409 "register with another haMode is refused"
check_jq .error haModeMismatch "  ... error haModeMismatch"
check_jq '.detail|contains("the organisation initech uses the etcd lease; this connector is configured with the cloud lease ([ha] lease = cloud)")' true "  ... naming both modes"
api GET "$I1/connectors"
check_jq '.connectors|length' 1 "  ... and nothing registered"
api POST "$I1/connectors" '{"name":"e2","host":"e2.test"}'
E2=$(printf '%s' "$BODY" | jq -r .id); ES2=$(printf '%s' "$BODY" | jq -r .secret)
token "$E1" "$ES1"; ET1=$TOKEN; token "$E2" "$ES2"; ET2=$TOKEN
req "$ET1" POST "$IS/Users" "$IU" -H "Dirconn-HA-Mode: etcd"
check_status 201 "etcd: a write without a fencing token is accepted"
req "$ET2" GET "$IS/Users" "" -H "Dirconn-HA-Mode: cloud"
check_status 409 "a connector declaring the cloud lease is refused, reads too"
check_eq "$(header Dirconn-HA-Mode)" etcd "  ... header Dirconn-HA-Mode names the org's mode"
check_jq '.schemas[0]' urn:ietf:params:scim:api:messages:2.0:Error "  ... a SCIM error on SCIM"
check_jq '.detail|contains("uses the etcd lease; this connector is configured with the cloud lease")' true "  ... naming both modes"
req "$ET2" GET "$I1/lease" "" -H "Dirconn-HA-Mode: none"
check_status 409 "a connector declaring none is refused on the control API"
check_jq .error haModeMismatch "  ... error haModeMismatch"
req "$ET2" GET "$I1/lease" "" -H "Dirconn-HA-Mode: Etcd"
check_status 400 "a malformed Dirconn-HA-Mode"
api GET "$I1/lease"; IRV=$(header ETag)
req "$ET2" PUT "$I1/lease" "{\"holderIdentity\":\"$E2\",\"leaseDurationSeconds\":30}" -H "If-Match: $IRV"
check_status 409 "etcd: a connector taking the cloud lease is refused (no header: an older connector)"
check_jq .error haModeMismatch "  ... error haModeMismatch"
api GET "$I1/lease"
check_jq .leaseTransitions 0 "  ... the lease unchanged"
# the trap: the lease counter moves (an operator), etcd writes go on
api PUT "$I1/lease" "{\"holderIdentity\":\"$E2\",\"leaseDurationSeconds\":300}" -H "If-Match: *"
check_status 200 "the admin sets a holder in an etcd org"
req "$ET1" POST "$IS/Users" "${IU/mode@/mode2@}" -H "Dirconn-HA-Mode: etcd"
check_status 201 "etcd: a tokenless write is accepted whatever the lease counter"
req "$ET2" PUT "$I1/ha-mode" '{"haMode":"cloud"}' -H "Dirconn-HA-Mode: etcd"
check_status 403 "a connector cannot change the mode"
api PUT "$I1/ha-mode" '{"haMode":"cloud","extra":1}'
check_status 400 "ha-mode with an unknown member"
# etcd -> cloud
api PUT "$I1/ha-mode" '{"haMode":"cloud"}'
check_status 200 "ha-mode set cloud"
check_jq '.haMode + " " + .recordedBy + " " + (.leaseHeld|tostring)' "cloud the admin token true" "  ... recorded by the admin"
req "$ET1" POST "$IS/Users" "${IU/mode@/mode3@}" -H "Dirconn-HA-Mode: etcd"
check_status 409 "cloud: the etcd connector is refused"
check_jq '.detail|contains("uses the cloud lease; this connector is configured with the etcd lease ([ha] lease = etcd)")' true "  ... naming both modes"
req "$ET1" POST "$IS/Users" "${IU/mode@/mode3@}"
check_status 409 "cloud: a tokenless write without a mode is fenced"
check_eq "$(header Dirconn-Fenced)" 1 "  ... as fenced"
api PUT "$I1/lease" '{"holderIdentity":null}' -H "If-Match: *"
api GET "$I1/lease"; IRV=$(header ETag)
req "$ET2" PUT "$I1/lease" "{\"holderIdentity\":\"$E2\",\"leaseDurationSeconds\":300}" -H "If-Match: $IRV" -H "Dirconn-HA-Mode: cloud"
check_status 200 "cloud: the connector takes the lease"
IFT=$(printf '%s' "$BODY" | jq -r .leaseTransitions)
req "$ET2" POST "$IS/Users" "${IU/mode@/mode4@}" -H "Dirconn-HA-Mode: cloud" -H "Dirconn-Fencing-Token: $IFT"
check_status 201 "cloud: the holder writes with its token"
# cloud -> etcd while the lease is held
api PUT "$I1/ha-mode" '{"haMode":"etcd"}'
check_status 409 "leaving the cloud lease while it is held is refused"
check_jq .error leaseHeld "  ... leaseHeld"
api PUT "$I1/ha-mode" '{"haMode":"etcd","force":true}'
check_status 200 "  ... unless forced"
api GET "$I1/lease"
check_jq '(.holderIdentity|tostring) + " " + (.leaseTransitions|tostring)' "null $((IFT + 1))" "  ... which released the lease"
req "$ET2" POST "$IS/Users" "${IU/mode@/mode5@}" -H "Dirconn-HA-Mode: cloud" -H "Dirconn-Fencing-Token: $IFT"
check_status 409 "  ... the old holder's write is refused"
# forgotten: the next first write records it (a live lease would make it cloud)
api PUT "$I1/ha-mode" '{"haMode":null}'
check_jq .haMode null "ha-mode forgotten"
req "$ET1" POST "$IS/Users" "${IU/mode@/mode6@}" -H "Dirconn-HA-Mode: none"
check_status 201 "a first write records its mode (lease counter not 0)"
api GET "$I1/ha-mode"
check_jq '.haMode + " " + .recordedBy' "none first write of connector $E1" "  ... none, by that write"
api GET "$I1/stats"
check_jq .haMode none "stats show the mode"

# faults endpoint is admin-only
token "$HOLDER" "$NEWS"
req "$TOKEN" GET "$BASE/v1/faults"
check_status 403 "faults with a connector token"
api GET "$BASE/v1/faults"
check_status 200 "faults with the admin token"
finish
