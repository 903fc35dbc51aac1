# cloud_lib.sh - helpers for the dirconn-cloud integration tests (sourced; sources lib.sh, whose
# check, check_eq, check_contains, wait_until and finish they use).
#
# cloud_setup            temp dir, CA + server certificate (cert_ca, cert_issue), admin token
# cloud_start [ARGS...]  start dirconn-cloud on a free loopback port over HTTPS;
#                        sets CLOUD_PID, PORT, BASE; extra ARGS are passed on
# cloud_stop             SIGTERM and wait (also run by the EXIT trap)
# api METHOD PATH [BODY] [HEADER...]   curl with the admin token; sets STATUS and BODY
# Assertions (lib.sh's order: description, expected, actual): check_status WHAT WANT (the status
# of the last request), check_jq WHAT WANT FILTER (jq FILTER over the last body)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# The cloud tests go on after a failed command: a failed request is a failed check.
set +e +o pipefail
CLOUD_BIN=${CLOUD_BIN:-dirconn-cloud}

cloud_setup() {
    T=$(mktemp -d /tmp/dirconn-cloud-test.XXXXXX)
    { cert_ca "$T/ca" "dirconn test CA" &&
        cert_issue "$T/ca" "$T/server" /CN=localhost serverAuth IP:127.0.0.1 IP:::1 DNS:localhost; } ||
        { echo "not ok - certificate generation"; exit 1; }
    ADMIN_TOKEN=$(openssl rand -hex 24)
    printf '%s\n' "$ADMIN_TOKEN" > "$T/admin.token"
    CLOUD_PID=
    SANITIZER_LOGS=$T/cloud.log # finish fails on a sanitizer report of any server run
    trap cloud_cleanup EXIT
    trap 'exit 143' TERM INT HUP # run the EXIT trap (server cleanup) on signals too
}

cloud_cleanup() {
    local rc=$?
    if [ -n "${CLOUD_PID:-}" ]; then kill -9 "$CLOUD_PID" 2>/dev/null; wait "$CLOUD_PID" 2>/dev/null; fi
    for p in ${EXTRA_PIDS:-}; do kill -9 "$p" 2>/dev/null; done
    if [ "${KEEP_TMP:-0}" = 1 ] || [ $rc -ne 0 ]; then echo "test dir: $T"; else rm -rf "$T"; fi
    exit $rc
}

# cloud_start [extra args]: server on 127.0.0.1:0, waits for the ready file.
cloud_start() {
    rm -f "$T/ready"
    "$CLOUD_BIN" --listen 127.0.0.1:0 --db "$T/cloud.db" --admin-token-file "$T/admin.token" \
        --org acme --org globex --tls-cert "$T/server.pem" --tls-key "$T/server.key" \
        --ready-file "$T/ready" "$@" 2>>"$T/cloud.log" &
    CLOUD_PID=$!
    for _ in $(seq 1 600); do
        [ -s "$T/ready" ] && break
        kill -0 "$CLOUD_PID" 2>/dev/null || { echo "FAIL: dirconn-cloud exited"; cat "$T/cloud.log"; exit 1; }
        sleep 0.05
    done
    [ -s "$T/ready" ] || { echo "FAIL: dirconn-cloud not ready"; exit 1; }
    PORT=$(cat "$T/ready")
    BASE="https://127.0.0.1:$PORT"
    SCIM="$BASE/scim/v2/acme"
    V1="$BASE/v1/orgs/acme"
}

cloud_stop() {
    if [ -n "${CLOUD_PID:-}" ]; then
        kill -TERM "$CLOUD_PID" 2>/dev/null
        wait "$CLOUD_PID" 2>/dev/null
        CLOUD_EXIT=$?
        CLOUD_PID=
    fi
}

# req TOKEN METHOD URL [BODY] [extra curl args...]: sets STATUS, BODY, HDRS (file)
req() {
    local tok=$1 method=$2 url=$3 body=${4-}
    shift 3; [ $# -gt 0 ] && shift
    local auth=()
    [ -n "$tok" ] && auth=(-H "Authorization: Bearer $tok")
    local data=()
    [ -n "$body" ] && data=(-H "Content-Type: application/scim+json" --data-binary "$body")
    BODY=$(curl -sS --cacert "$T/ca.pem" -X "$method" "${auth[@]}" "${data[@]}" "$@" \
        -D "$T/headers" -w '\n%{http_code}' "$url" 2>"$T/curl.err")
    STATUS=${BODY##*$'\n'}
    BODY=${BODY%$'\n'*}
}
api() { req "$ADMIN_TOKEN" "$@"; }
header() { grep -i "^$1:" "$T/headers" | head -1 | sed 's/^[^:]*: *//; s/\r$//'; }

# check_status WHAT WANT: the HTTP status of the last request is WANT.
check_status() {
    if [ "$STATUS" = "$2" ]; then ok "$1 ($STATUS)"; else not_ok "$1: status $STATUS, want $2: $BODY"; fi
}
# check_jq WHAT WANT FILTER: jq -r FILTER over the last body prints WANT.
check_jq() {
    local got
    got=$(printf '%s' "$BODY" | jq -r "$3" 2>/dev/null)
    if [ "$got" = "$2" ]; then ok "$1"; else not_ok "$1: $3 = '$got', want '$2' (body: ${BODY:0:300})"; fi
}

# register NAME: registers a connector; sets CID and CSECRET
register() {
    api POST "$V1/connectors" "{\"name\":\"$1\",\"host\":\"$1.example.test\"}"
    CID=$(printf '%s' "$BODY" | jq -r .id)
    CSECRET=$(printf '%s' "$BODY" | jq -r .secret)
}

# token ID SECRET: client credentials grant (form body); sets TOKEN
token() {
    BODY=$(curl -sS --cacert "$T/ca.pem" -w '\n%{http_code}' -d grant_type=client_credentials \
        --data-urlencode "client_id=$1" --data-urlencode "client_secret=$2" "$BASE/oauth/token")
    STATUS=${BODY##*$'\n'}
    BODY=${BODY%$'\n'*}
    TOKEN=$(printf '%s' "$BODY" | jq -r '.access_token // empty')
}

USER_SCHEMA='"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]'
GROUP_SCHEMA='"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"]'
PATCH_SCHEMA='"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]'
BULK_SCHEMA='"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"]'
