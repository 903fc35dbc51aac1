# Control API of dirconn-cloud over HTTPS: OAuth client credentials, auth
# failures, connectors, lease races, fencing, state, reports and stats.
. "$(dirname "$0")/cloud_lib.sh"
cloud_setup
# a short token lifetime, still long enough for the steps that use one token on a loaded machine
# (a few requests each, 20 s); the expiry is awaited, not slept
cloud_start --token-ttl 20s --org initech

# registration needs the admin token
req "" POST "$V1/connectors" '{"name":"c1","host":"h1"}'
check_status "register without token" 401
check_eq "WWW-Authenticate on 401" "Bearer" "$(header WWW-Authenticate | cut -c1-6)"
req "wrong-token" POST "$V1/connectors" '{"name":"c1","host":"h1"}'
check_status "register with a wrong token" 401
api POST "$V1/connectors" '{"name":"c1"}'
check_status "register without host" 400
api POST "$V1/connectors" '{"name":"c1","host":"h1","extra":1}'
check_status "register with an unknown member" 400
register c1; C1=$CID; S1=$CSECRET
check_status "register c1" 201
check_eq "secret length" 64 "${#S1}"
register c2; C2=$CID; S2=$CSECRET
api GET "$V1/connectors"
check_jq "list connectors" c1,c2 '[.connectors[].name]|join(",")'
api GET "$V1/connectors/$C1"
check_jq "get connector" "c1.example.test null" '.host + " " + (.lastSeen|tostring)'
sqlite3 "$T/cloud.db" "select count(*) from connectors where hex(secret_hash) like '%'" >/dev/null 2>&1 || true
if command -v sqlite3 >/dev/null && sqlite3 "$T/cloud.db" "select * from connectors" | grep -q "$S1"; then not_ok "secret stored in clear"; else ok "the secret is not stored in clear"; fi

# OAuth 2.0 client credentials: form body and HTTP Basic
token "$C1" "$S1"
check_status "token (form)" 200
check_jq "token response" "Bearer 20" '.token_type + " " + (.expires_in|tostring)'
T1=$TOKEN
BODY=$(curl -sS --cacert "$T/ca.pem" -w '\n%{http_code}' -u "$C2:$S2" -d grant_type=client_credentials "$BASE/oauth/token")
STATUS=${BODY##*$'\n'}; BODY=${BODY%$'\n'*}
check_status "token (Basic)" 200
T2=$(printf '%s' "$BODY" | jq -r .access_token)
token "$C1" "wrong"
check_status "token with a wrong secret" 401
check_jq "invalid_client" invalid_client .error
BODY=$(curl -sS --cacert "$T/ca.pem" -w '\n%{http_code}' -d grant_type=password -d client_id=$C1 -d client_secret=$S1 "$BASE/oauth/token")
STATUS=${BODY##*$'\n'}; BODY=${BODY%$'\n'*}
check_status "unsupported grant" 400; check_jq "unsupported_grant_type" unsupported_grant_type .error
BODY=$(curl -sS --cacert "$T/ca.pem" -w '\n%{http_code}' -H 'Content-Type: application/json' -d '{}' "$BASE/oauth/token")
STATUS=${BODY##*$'\n'}
check_status "token with a JSON body" 400

# connector tokens work on SCIM and the control API; not on another org
req "$T1" GET "$SCIM/Users"
check_status "connector token on SCIM" 200
req "$T1" GET "$BASE/scim/v2/globex/Users"
check_status "connector token on another org" 403
req "$T1" GET "$BASE/v1/orgs/globex/lease"
check_status "connector token on another org's lease" 403
req "$T1" POST "$V1/connectors" '{"name":"x","host":"y"}'
check_status "connector cannot register connectors" 403
req "$T1" GET "$V1/connectors/$C1" "" -H "Dirconn-Connector-Version: 1.2.3"
check_jq "reported version" 1.2.3 .version
check_eq "lastSeen" string "$(printf '%s' "$BODY" | jq -r '.lastSeen|type')"

# expired token: wait until the cloud refuses it (at most 120 s)
refused() { req "$T1" GET "$SCIM/Users"; [ "$STATUS" = 401 ]; }
wait_until 120 refused
check_status "expired token" 401
check_eq "expired token error=invalid_token" 1 "$(header WWW-Authenticate | grep -c invalid_token)"
token "$C1" "$S1"; T1=$TOKEN
token "$C2" "$S2"; T2=$TOKEN

# lease: take, races, renew, fencing
api GET "$V1/lease"
check_jq "initial lease" "null,0" '[(.holderIdentity|tostring), (.leaseTransitions|tostring)]|join(",")'
RV=$(printf '%s' "$BODY" | jq -r .resourceVersion)
check_eq "lease ETag" "\"$RV\"" "$(header ETag)"
req "$T1" PUT "$V1/lease" "{\"holderIdentity\":\"$C1\",\"leaseDurationSeconds\":30}"
check_status "lease PUT without If-Match" 412
req "$T1" PUT "$V1/lease" "{\"holderIdentity\":\"$C2\",\"leaseDurationSeconds\":30}" -H "If-Match: \"$RV\""
check_status "connector naming another holder" 403
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
check_eq "lease race: one 200, one 412" "200,412" "$(printf '%s\n' "$R1" "$R2" | sort | paste -sd,)"
if [ "$R1" = 200 ]; then HOLDER=$C1; HT=$T1; OTHER=$C2; OT=$T2; else HOLDER=$C2; HT=$T2; OTHER=$C1; OT=$T1; fi
api GET "$V1/lease"
check_jq "lease after race" "$HOLDER 1" '.holderIdentity + " " + (.leaseTransitions|tostring)'
RV=$(printf '%s' "$BODY" | jq -r .resourceVersion)
FT=$(printf '%s' "$BODY" | jq -r .leaseTransitions)
req "$OT" PUT "$V1/lease" "{\"holderIdentity\":\"$OTHER\",\"leaseDurationSeconds\":30}" -H "If-Match: \"$RV\""
check_status "taking an unexpired lease" 409
# a 10 s lease: the fencing checks below run while it lasts, then its expiry is awaited
req "$HT" PUT "$V1/lease" "{\"holderIdentity\":\"$HOLDER\",\"leaseDurationSeconds\":10}" -H "If-Match: \"$RV\""
check_status "renew" 200
check_jq "renew keeps transitions" 1 .leaseTransitions
RV=$(printf '%s' "$BODY" | jq -r .resourceVersion)

# fencing
U='{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"fenced@example.com"}'
req "$HT" POST "$SCIM/Users" "$U" -H "Dirconn-Fencing-Token: $FT"
check_status "holder writes with its token" 201
req "$HT" POST "$SCIM/Users" "${U/fenced@/fenced2@}"
check_status "write without the header once the lease is used" 409
req "$OT" POST "$SCIM/Users" "${U/fenced@/fenced3@}" -H "Dirconn-Fencing-Token: $FT"
check_status "non-holder with the current token" 409
check_eq "Dirconn-Fenced header" 1 "$(header Dirconn-Fenced)"
req "$HT" POST "$SCIM/Users" "${U/fenced@/fenced4@}" -H "Dirconn-Fencing-Token: $((FT - 1))"
check_status "stale token" 409
api POST "$SCIM/Users" "${U/fenced@/admin-write@}"
check_status "admin writes are not fenced" 201
lease_expired() { api GET "$V1/lease"; [ "$(printf '%s' "$BODY" | jq -r .expired)" = true ]; }
wait_until 120 lease_expired
check_jq "the 10 s lease expires" true .expired
refresh() { # new tokens: the 20 s ttl of this test is short
    local hs os; if [ "$HOLDER" = "$C1" ]; then hs=$S1; os=$S2; else hs=$S2; os=$S1; fi
    token "$HOLDER" "$hs"; HT=$TOKEN; token "$OTHER" "$os"; OT=$TOKEN
}
refresh
req "$HT" POST "$SCIM/Users" "${U/fenced@/fenced5@}" -H "Dirconn-Fencing-Token: $FT"
check_status "expired holder is fenced" 409
req "$OT" PUT "$V1/lease" "{\"holderIdentity\":\"$OTHER\",\"leaseDurationSeconds\":30}" -H "If-Match: \"$RV\""
check_status "take an expired lease" 200
check_jq "transition on takeover" 2 .leaseTransitions
RV=$(printf '%s' "$BODY" | jq -r .resourceVersion)
req "$OT" POST "$SCIM/Bulk" "{$BULK_SCHEMA,\"Operations\":[{\"method\":\"POST\",\"path\":\"/Users\",\"bulkId\":\"a\",\"data\":$U}]}" -H "Dirconn-Fencing-Token: 1"
check_status "bulk with the old token" 409
api GET "$V1/stats"
check_jq "fencedRejections counted" 5 .fencedRejections
check_jq "stats users" 2 '.users'

# state document with ETag
refresh
req "$OT" GET "$V1/state"
check_status "get state" 200; check_eq "initial state" "{}" "$BODY"
SV=$(header ETag)
req "$OT" PUT "$V1/state" '{"watermark":"usn:123"}' -H "If-Match: $SV" -H "Dirconn-Fencing-Token: 2"
check_status "put state" 200
req "$OT" PUT "$V1/state" '{"watermark":"usn:124"}' -H "If-Match: $SV" -H "Dirconn-Fencing-Token: 2"
check_status "put state with a stale ETag" 412
req "$HT" PUT "$V1/state" '{"watermark":"usn:999"}' -H "If-Match: *" -H "Dirconn-Fencing-Token: 1"
check_status "state write from the old holder is fenced" 409
req "$HT" GET "$V1/state"
check_jq "state kept" usn:123 .watermark

# reports
REP='{"type":"incremental","start":"2026-01-01T10:00:00Z","end":"2026-01-01T10:00:05Z","counts":{"added":1,"updated":2,"deleted":0,"matched":3,"skipped":0,"failed":0},"thresholdEvents":[]}'
req "$OT" POST "$V1/connectors/$OTHER/reports" "$REP"
check_status "post report" 201
req "$OT" POST "$V1/connectors/$OTHER/reports" "${REP/incremental/full}"
req "$OT" POST "$V1/connectors/$HOLDER/reports" "$REP"
check_status "report for another connector" 403
req "$OT" POST "$V1/connectors/$OTHER/reports" "${REP/incremental/weekly}"
check_status "bad report type" 400
req "$OT" POST "$V1/connectors/$OTHER/reports" "${REP/\"failed\":0/\"failed\":-1}"
check_status "negative count" 400
api GET "$V1/connectors/$OTHER/reports?limit=1"
check_jq "reports newest first with limit" "1,full" '[(.reports|length|tostring), .reports[0].type]|join(",")'
api GET "$V1/reports"
check_jq "org reports" 2 '.reports|length'

# secret reset: old secret and tokens stop at once
refresh
api POST "$V1/connectors/$HOLDER/secret"
check_status "reset secret" 200
NEWS=$(printf '%s' "$BODY" | jq -r .secret)
req "$HT" GET "$SCIM/Users"
check_status "old token after secret reset" 401
if [ "$HOLDER" = "$C1" ]; then OLDS=$S1; else OLDS=$S2; fi
token "$HOLDER" "$OLDS"
check_status "old secret after reset" 401
token "$HOLDER" "$NEWS"
check_status "new secret works" 200

# a connector rotates its own secret, in two phases: pending until the new secret gets a token
HT2=$TOKEN
token "$OTHER" "$([ "$OTHER" = "$C1" ] && echo "$S1" || echo "$S2")"; OT2=$TOKEN
req "$OT2" POST "$V1/connectors/$HOLDER/secret"
check_status "a connector cannot rotate another connector's secret" 403
check_jq "  ... forbidden" forbidden .error
req "$OT2" POST "$V1/connectors/no-such-id/secret"
check_status "  ... nor an unknown id" 403
req "$HT2" GET "$V1/connectors/$HOLDER/secret"
check_status "GET secret" 405
req "$HT2" POST "$V1/connectors/$HOLDER/secret"
check_status "a connector rotates its own secret" 200
check_jq "  ... the new secret is pending" true .secretPending
check_eq "  ... Cache-Control: no-store" no-store "$(header Cache-Control)"
P1=$(printf '%s' "$BODY" | jq -r .secret)
check_eq "  ... a 64-character secret" 64 "${#P1}"
token "$HOLDER" "$NEWS"
check_status "the current secret works while the new one is pending" 200
HT3=$TOKEN
req "$HT2" GET "$SCIM/Users"
check_status "  ... and so do its tokens" 200
# the answer was lost: a second rotation replaces the pending secret
req "$HT2" POST "$V1/connectors/$HOLDER/secret"
check_status "a second rotation" 200
P2=$(printf '%s' "$BODY" | jq -r .secret)
token "$HOLDER" "$P1"
check_status "  ... the replaced pending secret is refused" 401
# the pending secret survives kill -9 of the cloud (committed before the answer)
kill -9 "$CLOUD_PID"; wait "$CLOUD_PID" 2>/dev/null; CLOUD_PID=
cloud_start --token-ttl 20s --org initech
token "$HOLDER" "$P2"
check_status "the pending secret gets a token after kill -9 and a restart" 200
NT=$TOKEN
req "$HT2" GET "$SCIM/Users"
check_status "  ... which revokes the tokens of the old secret" 401
req "$HT3" GET "$SCIM/Users"
check_status "  ... all of them" 401
token "$HOLDER" "$NEWS"
check_status "  ... and the old secret" 401
check_jq "  ... invalid_client" invalid_client .error
req "$NT" GET "$SCIM/Users"
check_status "the new secret's token works" 200
token "$HOLDER" "$P2"
check_status "the new secret is now the secret" 200
NEWS=$P2
# an admin rotation drops a pending secret
token "$HOLDER" "$NEWS"
req "$TOKEN" POST "$V1/connectors/$HOLDER/secret"
P3=$(printf '%s' "$BODY" | jq -r .secret)
api POST "$V1/connectors/$HOLDER/secret"
check_jq "an admin rotation is not pending" false .secretPending
NEWS=$(printf '%s' "$BODY" | jq -r .secret)
token "$HOLDER" "$P3"
check_status "  ... and drops a pending secret" 401
token "$HOLDER" "$NEWS"
check_status "  ... its secret works" 200

# deregistration: tokens stop at once, lease released
HOLDER_S=$NEWS; token "$OTHER" "$([ "$OTHER" = "$C1" ] && echo "$S1" || echo "$S2")"; OT=$TOKEN
req "$OT" GET "$SCIM/Users"
check_status "holder token before deregistration" 200
api DELETE "$V1/connectors/$OTHER"
check_status "deregister" 204
req "$OT" GET "$SCIM/Users"
check_status "deregistered connector's token" 401
api GET "$V1/lease"
check_jq "lease released by deregistration" "null 3" '(.holderIdentity|tostring) + " " + (.leaseTransitions|tostring)'
api DELETE "$V1/connectors/$OTHER"
check_status "deregister twice" 404
api GET "$BASE/v1/orgs/nosuch/lease"
check_status "unknown org" 404

api GET "$BASE/v1/orgs"
check_jq "list orgs" acme,globex,initech '.orgs|join(",")'

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
check_eq "six-way lease race" "1x200,5x412" "$(cat "$T"/grace* | sort | uniq -c | awk '{print $1"x"$2}' | paste -sd,)"
api GET "$G1/lease"
check_jq "one transition after the six-way race" 1 .leaseTransitions

# HA mode (docs/cloud-api.md "HA mode"), in an org of its own
I1="$BASE/v1/orgs/initech"; IS="$BASE/scim/v2/initech"
IU='{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"mode@example.com"}'
api GET "$I1/ha-mode"
check_status "GET ha-mode" 200
check_jq "no HA mode recorded at first" null '.haMode'
api POST "$I1/connectors" '{"name":"e1","host":"e1.test","haMode":"etcd"}'
check_status "register with haMode etcd" 201
E1=$(printf '%s' "$BODY" | jq -r .id); ES1=$(printf '%s' "$BODY" | jq -r .secret)
api GET "$I1/ha-mode"
check_jq "the registration recorded etcd" "etcd registration of connector $E1" '.haMode + " " + .recordedBy'
api POST "$I1/connectors" '{"name":"x","host":"x.test","haMode":"bogus"}'
check_status "register with an unknown haMode" 400
api POST "$I1/connectors" '{"name":"c","host":"c.test","haMode":"cloud"}'
check_status "register with another haMode is refused" 409
check_jq "  ... error haModeMismatch" haModeMismatch .error
check_jq "  ... naming both modes" true '.detail|contains("the organisation initech uses the etcd lease; this connector is configured with the cloud lease ([ha] lease = cloud)")'
api GET "$I1/connectors"
check_jq "  ... and nothing registered" 1 '.connectors|length'
api POST "$I1/connectors" '{"name":"e2","host":"e2.test"}'
E2=$(printf '%s' "$BODY" | jq -r .id); ES2=$(printf '%s' "$BODY" | jq -r .secret)
token "$E1" "$ES1"; ET1=$TOKEN; token "$E2" "$ES2"; ET2=$TOKEN
req "$ET1" POST "$IS/Users" "$IU" -H "Dirconn-HA-Mode: etcd"
check_status "etcd: a write without a fencing token is accepted" 201
req "$ET2" GET "$IS/Users" "" -H "Dirconn-HA-Mode: cloud"
check_status "a connector declaring the cloud lease is refused, reads too" 409
check_eq "  ... header Dirconn-HA-Mode names the org's mode" etcd "$(header Dirconn-HA-Mode)"
check_jq "  ... a SCIM error on SCIM" urn:ietf:params:scim:api:messages:2.0:Error '.schemas[0]'
check_jq "  ... naming both modes" true '.detail|contains("uses the etcd lease; this connector is configured with the cloud lease")'
req "$ET2" GET "$I1/lease" "" -H "Dirconn-HA-Mode: none"
check_status "a connector declaring none is refused on the control API" 409
check_jq "  ... error haModeMismatch" haModeMismatch .error
req "$ET2" GET "$I1/lease" "" -H "Dirconn-HA-Mode: Etcd"
check_status "a malformed Dirconn-HA-Mode" 400
api GET "$I1/lease"; IRV=$(header ETag)
req "$ET2" PUT "$I1/lease" "{\"holderIdentity\":\"$E2\",\"leaseDurationSeconds\":30}" -H "If-Match: $IRV"
check_status "etcd: a connector taking the cloud lease is refused (no header: an older connector)" 409
check_jq "  ... error haModeMismatch" haModeMismatch .error
api GET "$I1/lease"
check_jq "  ... the lease unchanged" 0 .leaseTransitions
# the trap: the lease counter moves (an operator), etcd writes go on
api PUT "$I1/lease" "{\"holderIdentity\":\"$E2\",\"leaseDurationSeconds\":300}" -H "If-Match: *"
check_status "the admin sets a holder in an etcd org" 200
req "$ET1" POST "$IS/Users" "${IU/mode@/mode2@}" -H "Dirconn-HA-Mode: etcd"
check_status "etcd: a tokenless write is accepted whatever the lease counter" 201
req "$ET2" PUT "$I1/ha-mode" '{"haMode":"cloud"}' -H "Dirconn-HA-Mode: etcd"
check_status "a connector cannot change the mode" 403
api PUT "$I1/ha-mode" '{"haMode":"cloud","extra":1}'
check_status "ha-mode with an unknown member" 400
# etcd -> cloud
api PUT "$I1/ha-mode" '{"haMode":"cloud"}'
check_status "ha-mode set cloud" 200
check_jq "  ... recorded by the admin" "cloud the admin token true" '.haMode + " " + .recordedBy + " " + (.leaseHeld|tostring)'
req "$ET1" POST "$IS/Users" "${IU/mode@/mode3@}" -H "Dirconn-HA-Mode: etcd"
check_status "cloud: the etcd connector is refused" 409
check_jq "  ... naming both modes" true '.detail|contains("uses the cloud lease; this connector is configured with the etcd lease ([ha] lease = etcd)")'
req "$ET1" POST "$IS/Users" "${IU/mode@/mode3@}"
check_status "cloud: a tokenless write without a mode is fenced" 409
check_eq "  ... as fenced" 1 "$(header Dirconn-Fenced)"
api PUT "$I1/lease" '{"holderIdentity":null}' -H "If-Match: *"
api GET "$I1/lease"; IRV=$(header ETag)
req "$ET2" PUT "$I1/lease" "{\"holderIdentity\":\"$E2\",\"leaseDurationSeconds\":300}" -H "If-Match: $IRV" -H "Dirconn-HA-Mode: cloud"
check_status "cloud: the connector takes the lease" 200
IFT=$(printf '%s' "$BODY" | jq -r .leaseTransitions)
req "$ET2" POST "$IS/Users" "${IU/mode@/mode4@}" -H "Dirconn-HA-Mode: cloud" -H "Dirconn-Fencing-Token: $IFT"
check_status "cloud: the holder writes with its token" 201
# cloud -> etcd while the lease is held
api PUT "$I1/ha-mode" '{"haMode":"etcd"}'
check_status "leaving the cloud lease while it is held is refused" 409
check_jq "  ... leaseHeld" leaseHeld .error
api PUT "$I1/ha-mode" '{"haMode":"etcd","force":true}'
check_status "  ... unless forced" 200
api GET "$I1/lease"
check_jq "  ... which released the lease" "null $((IFT + 1))" '(.holderIdentity|tostring) + " " + (.leaseTransitions|tostring)'
req "$ET2" POST "$IS/Users" "${IU/mode@/mode5@}" -H "Dirconn-HA-Mode: cloud" -H "Dirconn-Fencing-Token: $IFT"
check_status "  ... the old holder's write is refused" 409
# forgotten: the next first write records it (a live lease would make it cloud)
api PUT "$I1/ha-mode" '{"haMode":null}'
check_jq "ha-mode forgotten" null .haMode
req "$ET1" POST "$IS/Users" "${IU/mode@/mode6@}" -H "Dirconn-HA-Mode: none"
check_status "a first write records its mode (lease counter not 0)" 201
api GET "$I1/ha-mode"
check_jq "  ... none, by that write" "none first write of connector $E1" '.haMode + " " + .recordedBy'
api GET "$I1/stats"
check_jq "stats show the mode" none .haMode

# faults endpoint is admin-only
token "$HOLDER" "$NEWS"
req "$TOKEN" GET "$BASE/v1/faults"
check_status "faults with a connector token" 403
api GET "$BASE/v1/faults"
check_status "faults with the admin token" 200
finish
