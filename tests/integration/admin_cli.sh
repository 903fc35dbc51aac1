# Integration test of dirconnctl register, deregister, reset-secret, connectors
# and secret against dirconn-cloud over HTTPS, with a sync from the slapd
# (AD LDS-like) fixture.
#   bash admin_cli.sh [--no-sync]
# Every command's output and the cloud's log are kept under $T/logs; at the
# end no secret may appear in any of them.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
with_sync=yes
[[ ${1:-} == --no-sync ]] && with_sync=no

T=$(mktemp -d /tmp/dirconn-it-admin-XXXXXX)
LOGS=$T/logs
mkdir -p "$LOGS"
CLOUD_PID=
SQUID_PID=
D_PID=
cleanup() {
	local rc=$?
	[[ -n $D_PID ]] && kill "$D_PID" 2>/dev/null && wait "$D_PID" 2>/dev/null
	[[ -n $CLOUD_PID ]] && kill "$CLOUD_PID" 2>/dev/null && wait "$CLOUD_PID" 2>/dev/null
	[[ -n $SQUID_PID ]] && kill "$SQUID_PID" 2>/dev/null && wait "$SQUID_PID" 2>/dev/null
	[[ -d $T/fx ]] && "$LDSFX" stop "$T/fx" >/dev/null 2>&1
	if [[ $rc -ne 0 || ${KEEP_TMP:-0} == 1 ]]; then echo "test dir: $T"; else rm -rf "$T"; fi
	exit $rc
}
trap cleanup EXIT

# ---- the cloud: CA, server certificate, admin token, dirconn-cloud on a free port
cert_ca "$T/ca" "dirconn test CA"
cert_issue "$T/ca" "$T/server" /CN=localhost serverAuth IP:127.0.0.1 DNS:localhost
umask 077
openssl rand -hex 24 >"$T/admin.token"
ADMIN=$(cat "$T/admin.token")
dirconn-cloud --listen 127.0.0.1:0 --db "$T/cloud.db" --admin-token-file "$T/admin.token" \
	--org acme --tls-cert "$T/server.pem" --tls-key "$T/server.key" --ready-file "$T/ready" \
	--log-level debug 2>"$LOGS/cloud.log" &
CLOUD_PID=$!
for _ in $(seq 1 1200); do # up to 60 s
	[[ -s $T/ready ]] && break
	sleep 0.05
done
[[ -s $T/ready ]] || { echo "dirconn-cloud did not start"; cat "$LOGS/cloud.log"; exit 1; }
BASE="https://127.0.0.1:$(cat "$T/ready")"
V1=$BASE/v1/orgs/acme

# api METHOD PATH [BODY] [curl args]: the control API with the admin token; sets STATUS, BODY
api() {
	local method=$1 path=$2 body=${3-}
	shift 2
	[[ $# -gt 0 ]] && shift
	local data=()
	[[ -n $body ]] && data=(-H "Content-Type: application/json" --data-binary "$body")
	BODY=$(curl -sS --cacert "$T/ca.pem" -X "$method" -H "Authorization: Bearer $ADMIN" "${data[@]}" \
		"$@" -w '\n%{http_code}' "$V1/$path")
	STATUS=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}

# conf FILE STATE_DIR [extra lines...]
conf() {
	local file=$1 state=$2
	shift 2
	{
		printf '[connector]\nname = %s\nstate_dir = %s\n' "$(basename "$state")" "$state"
		printf '[ldap]\nurls = %s\n' "${LDAP_URLS:-ldaps://127.0.0.1:1}"
		[[ -n ${LDAP_EXTRA:-} ]] && printf '%s\n' "$LDAP_EXTRA"
		printf '[cloud]\nurl = %s\norg = acme\nca_file = %s\n' "$BASE" "$T/ca.pem"
		printf '%s\n' "$@"
	} >"$file"
}

# ctl NAME ARGS...: run dirconnctl, keep its output in $LOGS/NAME.{out,err}; sets NAME_{out,err,rc}
n_run=0
ctl() {
	local name=$1
	shift
	n_run=$((n_run + 1))
	run_capture "$name" dirconnctl "$@"
	local o=${name}_out e=${name}_err
	printf '%s\n' "${!o}" >"$LOGS/$n_run-$name.out"
	printf '%s\n' "${!e}" >"$LOGS/$n_run-$name.err"
}

rc_of() { local v=${1}_rc; echo "${!v}"; }
err_of() { local v=${1}_err; echo "${!v}"; }
out_of() { local v=${1}_out; echo "${!v}"; }

mode_of() { stat -c %a "$1"; }

# store_json STATE_DIR: decrypt the secret store with the documented format (docs/operations.md)
store_json() {
	"$PY" - "$1/secrets.enc" "$1/secret.key" <<'PYEOF'
import json, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
d = open(sys.argv[1], "rb").read()
k = open(sys.argv[2], "rb").read()
assert d[:8] == b"DCSECRET" and d[8] == 1 and d[9] == 1, "header"
n = int.from_bytes(d[32:36], "big")
assert len(d) == 36 + n + 16, "length"
print(AESGCM(k).decrypt(d[20:32], d[36:36 + n + 16], d[:36]).decode())
PYEOF
}
SECRETS=("$ADMIN")
remember() { [[ -n $1 ]] && SECRETS+=("$1"); }

conf "$T/a.conf" "$T/a"
conf "$T/b.conf" "$T/b"

# ---- --help and usage errors
for c in register deregister reset-secret connectors secret; do
	ctl h "$c" --help
	check_eq "$c --help exits 0" 0 "$h_rc"
	check_contains "$c --help prints usage" "$h_out" "usage: dirconnctl $c"
done
ctl u register --config "$T/a.conf"
check_eq "register without --admin-token-file is a usage error" 2 "$u_rc"
ctl u register --config "$T/a.conf" --admin-token-file "$T/admin.token" extra
check_eq "register with a stray argument is a usage error" 2 "$u_rc"
ctl u deregister --config "$T/a.conf" --yes
check_eq "deregister before register: not registered" 71 "$u_rc"
check_contains "  ... one line that says so" "$u_err" "dirconnctl deregister: this instance is not registered"
ctl u reset-secret --config "$T/a.conf"
check_eq "reset-secret before register: not registered" 71 "$u_rc"

# ---- register
ctl r register --config "$T/a.conf" --admin-token-file "$T/admin.token" --json
check_eq "register exits 0" 0 "$r_rc"
A_ID=$(json "$r_out" "j['id']")
check_eq "register --json names the org" acme "$(json "$r_out" "j['org']")"
check_eq "the store file is mode 0600" 600 "$(mode_of "$T/a/secrets.enc")"
check_eq "the key file is mode 0600" 600 "$(mode_of "$T/a/secret.key")"
check_eq "the state directory is mode 0700" 700 "$(mode_of "$T/a")"
check_eq "the key file is 32 bytes" 32 "$(stat -c %s "$T/a/secret.key")"
check_eq "the store holds the connector id" "$A_ID" "$(json "$(store_json "$T/a")" "j['cloud-connector-id']")"
A_SECRET=$(json "$(store_json "$T/a")" "j['cloud-connector-secret']")
remember "$A_SECRET"
check_eq "no temporary file is left" "" "$(find "$T/a" -name '*.tmp.*')"
api GET "connectors/$A_ID"
check_eq "the cloud knows the connector" 200 "$STATUS"
check_eq "  ... under the config's name" a "$(json "$BODY" "j['name']")"

ctl r2 register --config "$T/a.conf" --admin-token-file "$T/admin.token"
check_eq "registering again without --force is refused" 72 "$r2_rc"
check_contains "  ... naming the id" "$r2_err" "registered already as $A_ID"

# ---- the connector gets tokens with the stored credentials (OAuth client credentials)
ctl l connectors --config "$T/a.conf" --json
check_eq "connectors with the connector's own token exits 0" 0 "$l_rc"
check_eq "  ... lists this instance as self" "True" "$(json "$l_out" "[c['self'] for c in j['connectors'] if c['id']=='$A_ID'][0]")"
check_eq "  ... with the host name" "$(hostname)" "$(json "$l_out" "j['connectors'][0]['host']")"
ctl l2 connectors --config "$T/a.conf" --admin-token-file "$T/admin.token"
check_contains "connectors table marks this instance" "$l2_out" "* $A_ID"
check_contains "  ... has the columns" "$l2_out" "REGISTERED"

# ---- a sync with the stored registration (no client_id in the config)
if [[ $with_sync == yes ]]; then
	"$LDSFX" start adlds "$T/fx" >"$LOGS/ldsfx.log" 2>&1
	# shellcheck disable=SC1091
	source "$T/fx/env"
	remember "$(cat "$LDSFX_BIND_PASSWORD_FILE")"
	LDAP_URLS=$LDSFX_URL_TLS
	LDAP_EXTRA=$(printf 'bind_dn = %s\nca_file = %s\nbase_dn = %s\n' "$LDSFX_BIND_DN" "$LDSFX_CA_FILE" "$LDSFX_BASE_DN")
	conf "$T/a.conf" "$T/a" "[policy]" "delete_threshold_enabled = no"
	# The bind password from the secret store, typed on standard input.
	n_run=$((n_run + 1))
	set +e
	dirconnctl secret set ldap-bind-password --config "$T/a.conf" <"$LDSFX_BIND_PASSWORD_FILE" \
		>"$LOGS/$n_run-secret-set.out" 2>"$LOGS/$n_run-secret-set.err"
	rc=$?
	set -e
	check_eq "secret set ldap-bind-password from stdin" 0 "$rc"
	check_eq "  ... stored" "$(cat "$LDSFX_BIND_PASSWORD_FILE")" "$(json "$(store_json "$T/a")" "j['ldap-bind-password']")"
	ctl s sync --full --no-progress --config "$T/a.conf"
	check_eq "sync --full with the stored registration and bind password exits 0" 0 "$s_rc"
	[[ $s_rc == 0 ]] || echo "$s_err"
	users=$(curl -sS --cacert "$T/ca.pem" -H "Authorization: Bearer $ADMIN" "$BASE/scim/v2/acme/Users?count=1" |
		"$PY" -c 'import json,sys; print(json.load(sys.stdin)["totalResults"])')
	check "  ... and the cloud holds users" test "$users" -gt 0
	api GET "connectors/$A_ID"
	check "  ... and the cloud saw the connector" test "$(json "$BODY" "j['lastSeen']")" != None
fi

# ---- secret set / list / unset
n_run=$((n_run + 1))
set +e
printf 'scim-bearer-0123456789\n' | dirconnctl secret set cloud-token --config "$T/a.conf" \
	>"$LOGS/$n_run-secret.out" 2>"$LOGS/$n_run-secret.err"
rc=$?
set -e
remember scim-bearer-0123456789
check_eq "secret set cloud-token from stdin" 0 "$rc"
check_eq "  ... the trailing newline is dropped" scim-bearer-0123456789 "$(json "$(store_json "$T/a")" "j['cloud-token']")"
ctl sl secret list --config "$T/a.conf" --json
check_contains "secret list names it" "$sl_out" '"cloud-token"'
check "  ... and prints no value" test "${sl_out/scim-bearer/}" == "$sl_out"
ctl su secret unset cloud-token --config "$T/a.conf"
check_eq "secret unset exits 0" 0 "$su_rc"
check_eq "  ... and it is gone" False "$(json "$(store_json "$T/a")" "'cloud-token' in j")"
ctl sb secret set bogus-name --config "$T/a.conf"
check_eq "secret set of an unknown name is a usage error" 2 "$sb_rc"
run_capture se bash -c "printf '' | dirconnctl secret set proxy-password --config '$T/a.conf'"
check_eq "an empty value is refused" 2 "$se_rc"

# ---- a process that holds secrets: no core dump, key pages excluded from dumps
mkfifo "$T/fifo"
dirconnctl secret set proxy-password --config "$T/a.conf" <"$T/fifo" >"$LOGS/fifo.out" 2>&1 &
pid=$!
exec 7>"$T/fifo" # the command now waits for the value, with the store (and its key) open
# anon_dontdump PID: the number of anonymous mappings marked VM_DONTDUMP ([vvar] and the like
# have a name and do not count)
anon_dontdump() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { anon = (NF == 5) }
	     /^VmFlags:/ && anon && / dd( |$)/ { n++ }
	     END { print n + 0 }' "/proc/$1/smaps" 2>/dev/null || echo 0
}
# Wait until it blocks in read(0, ...) (x86-64 syscall 0; elsewhere the loop just times out):
# by then the store is open and the key loaded.
for _ in $(seq 1 1200); do # up to 60 s
	[[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */dirconnctl &&
		$(cut -d' ' -f1,2 "/proc/$pid/syscall" 2>/dev/null) == "0 0x0" ]] && break
	sleep 0.05
done
check_eq "dirconnctl runs with a core size limit of 0" "0 0" \
	"$(awk '/^Max core file size/ {print $5, $6}' "/proc/$pid/limits")"
check "  ... and keeps the key in anonymous pages excluded from core dumps (VmFlags dd)" \
	test "$(anon_dontdump "$pid")" -gt 0
printf 'proxy-secret-value\n' >&7
exec 7>&-
wait "$pid" && rc=0 || rc=$?
remember proxy-secret-value
check_eq "  ... and then stores the value" 0 "$rc"

# ---- reset-secret: the old secret stops working, the new one works
cp -a "$T/a" "$T/a-old"
conf "$T/a-old.conf" "$T/a-old"
ctl rs reset-secret --config "$T/a.conf" --admin-token-file "$T/admin.token"
check_eq "reset-secret exits 0" 0 "$rs_rc"
A_SECRET2=$(json "$(store_json "$T/a")" "j['cloud-connector-secret']")
remember "$A_SECRET2"
check "  ... the stored secret changed" test "$A_SECRET2" != "$A_SECRET"
check_eq "  ... the store is still mode 0600" 600 "$(mode_of "$T/a/secrets.enc")"
ctl o connectors --config "$T/a-old.conf"
check_eq "the old secret is refused" 31 "$o_rc"
check_contains "  ... with the OAuth error" "$o_err" "invalid_client"
ctl nw connectors --config "$T/a.conf"
check_eq "the new secret works" 0 "$nw_rc"

# ---- reset-secret by default: the connector's own credentials, no admin token
# oauth ID SECRET: the client credentials grant by hand; sets STATUS, BODY
oauth() {
	BODY=$(curl -sS --cacert "$T/ca.pem" -w '\n%{http_code}' -d grant_type=client_credentials \
		--data-urlencode "client_id=$1" --data-urlencode "client_secret=$2" "$BASE/oauth/token")
	STATUS=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}
oauth "$A_ID" "$A_SECRET2"
A_TOKEN2=$(json "$BODY" "j['access_token']")
remember "$A_TOKEN2"
ctl rs2 reset-secret --config "$T/a.conf" --json
check_eq "reset-secret with the connector's own credentials exits 0" 0 "$rs2_rc"
[[ $rs2_rc == 0 ]] || echo "$rs2_err"
check_eq "  ... --json says who authorised it" connector "$(json "$rs2_out" "j['authorisedBy']")"
A_SECRET3=$(json "$(store_json "$T/a")" "j['cloud-connector-secret']")
remember "$A_SECRET3"
check "  ... the stored secret changed" test "$A_SECRET3" != "$A_SECRET2"
check_eq "  ... no previous secret is left in the store" False \
	"$(json "$(store_json "$T/a")" "'cloud-connector-secret-previous' in j")"
oauth "$A_ID" "$A_SECRET2"
check_eq "  ... the old secret gets no token" 401 "$STATUS"
check_eq "  ... invalid_client" invalid_client "$(json "$BODY" "j['error']")"
oauth "$A_ID" "$A_SECRET3"
check_eq "  ... the new secret gets one" 200 "$STATUS"
remember "$(json "$BODY" "j['access_token']")"
code=$(curl -sS --cacert "$T/ca.pem" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $A_TOKEN2" "$V1/connectors")
check_eq "  ... a token of the old secret is revoked" 401 "$code"
check_contains "the cloud logs the rotation" "$(cat "$LOGS/cloud.log")" "connector $A_ID used its new secret"
ctl nw2 connectors --config "$T/a.conf"
check_eq "  ... and the connector works with the new secret" 0 "$nw2_rc"
if [[ $with_sync == yes ]]; then
	ctl s2 sync --incremental --no-progress --config "$T/a.conf"
	check_eq "a sync after the rotation exits 0" 0 "$s2_rc"
	[[ $s2_rc == 0 ]] || echo "$s2_err"
fi

# ---- a rotation interrupted after the cloud answered: the answer is lost, the store unchanged
oauth "$A_ID" "$A_SECRET3"
A_TOKEN3=$(json "$BODY" "j['access_token']")
remember "$A_TOKEN3"
LOST=$(curl -sS --cacert "$T/ca.pem" -X POST -H "Authorization: Bearer $A_TOKEN3" "$V1/connectors/$A_ID/secret")
LOST=$(json "$LOST" "j['secret']")
remember "$LOST"
ctl lo connectors --config "$T/a.conf"
check_eq "an unsaved new secret leaves the old one working" 0 "$lo_rc"
ctl rs3 reset-secret --config "$T/a.conf"
check_eq "  ... and reset-secret works after it" 0 "$rs3_rc"
check_contains "  ... and says so" "$rs3_out" "it obtained a token"
A_SECRET4=$(json "$(store_json "$T/a")" "j['cloud-connector-secret']")
remember "$A_SECRET4"
oauth "$A_ID" "$LOST"
check_eq "  ... the lost secret is refused" 401 "$STATUS"
oauth "$A_ID" "$A_SECRET3"
check_eq "  ... and so is the one before" 401 "$STATUS"

# ---- interrupted after the save: both secrets in the store, the new one not confirmed
# store_write STATE_DIR PYTHON-EXPR: rewrite the store with the documented format, the JSON
# object j changed by the expression (a statement on j)
store_write() {
	"$PY" - "$1/secrets.enc" "$1/secret.key" "$2" <<'PYEOF'
import json, os, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
d = open(sys.argv[1], "rb").read()
k = open(sys.argv[2], "rb").read()
n = int.from_bytes(d[32:36], "big")
j = json.loads(AESGCM(k).decrypt(d[20:32], d[36:36 + n + 16], d[:36]))
exec(sys.argv[3])
pt = json.dumps(j).encode()
nonce = os.urandom(12)
head = d[:20] + nonce + len(pt).to_bytes(4, "big")
open(sys.argv[1] + ".new", "wb").write(head + AESGCM(k).encrypt(nonce, pt, head))
os.rename(sys.argv[1] + ".new", sys.argv[1])
PYEOF
}
oauth "$A_ID" "$A_SECRET4"
A_TOKEN4=$(json "$BODY" "j['access_token']")
remember "$A_TOKEN4"
PEND=$(curl -sS --cacert "$T/ca.pem" -X POST -H "Authorization: Bearer $A_TOKEN4" "$V1/connectors/$A_ID/secret")
PEND=$(json "$PEND" "j['secret']")
remember "$PEND"
store_write "$T/a" "j['cloud-connector-secret-previous'] = j['cloud-connector-secret']; j['cloud-connector-secret'] = '$PEND'"
ctl rs4 reset-secret --config "$T/a.conf"
check_eq "reset-secret after one stopped before the confirmation exits 0" 0 "$rs4_rc"
check_contains "  ... it finished the earlier one" "$rs4_err" "the cloud takes the new secret"
A_SECRET5=$(json "$(store_json "$T/a")" "j['cloud-connector-secret']")
remember "$A_SECRET5"
check_eq "  ... no previous secret is left" False "$(json "$(store_json "$T/a")" "'cloud-connector-secret-previous' in j")"
for old in "$A_SECRET4" "$PEND"; do
	oauth "$A_ID" "$old"
	check_eq "  ... an older secret is refused" 401 "$STATUS"
done
# ... and when the cloud refuses the saved new secret: back to the previous one
store_write "$T/a" "j['cloud-connector-secret-previous'] = j['cloud-connector-secret']; j['cloud-connector-secret'] = '0' * 64"
ctl rs5 reset-secret --config "$T/a.conf"
check_eq "reset-secret after one whose new secret the cloud refuses exits 0" 0 "$rs5_rc"
check_contains "  ... it went back to the previous secret" "$rs5_err" "going back to the previous one"
A_SECRET6=$(json "$(store_json "$T/a")" "j['cloud-connector-secret']")
remember "$A_SECRET6"
oauth "$A_ID" "$A_SECRET6"
check_eq "  ... and rotated from there" 200 "$STATUS"
remember "$(json "$BODY" "j['access_token']")"
# ... and when no secret of the store works: the admin token is the way out
store_write "$T/a" "j['cloud-connector-secret'] = '1' * 64"
ctl rs6 reset-secret --config "$T/a.conf"
check_eq "reset-secret with credentials that no longer work: 31" 31 "$rs6_rc"
check_contains "  ... pointing to the admin token" "$rs6_err" "--admin-token-file"
ctl rs7 reset-secret --config "$T/a.conf" --admin-token-file "$T/admin.token"
check_eq "  ... the admin path still works" 0 "$rs7_rc"
A_SECRET2=$(json "$(store_json "$T/a")" "j['cloud-connector-secret']")
remember "$A_SECRET2"
ctl nw4 connectors --config "$T/a.conf"
check_eq "  ... and the connector works again" 0 "$nw4_rc"

# ---- damaged stores: a clear error, nothing changed
for damage in tamper truncate wrongkey; do
	rm -rf "$T/d"
	cp -a "$T/a" "$T/d"
	conf "$T/d.conf" "$T/d"
	case $damage in
	tamper) "$PY" -c 'import sys; p=sys.argv[1]; d=bytearray(open(p,"rb").read()); d[40]^=1; open(p,"wb").write(d)' "$T/d/secrets.enc"; want="failed authentication" ;;
	truncate) truncate -s -7 "$T/d/secrets.enc"; want="truncated" ;;
	wrongkey) head -c 32 /dev/urandom >"$T/d/secret.key"; want="another key" ;;
	esac
	sum=$(sha256sum "$T/d/secrets.enc" "$T/d/secret.key")
	ctl dm connectors --config "$T/d.conf"
	check_eq "$damage: connectors fails with ESECRET" 70 "$dm_rc"
	check_contains "$damage: the error says why" "$dm_err" "$want"
	check_eq "$damage: the error is one line" 1 "$(printf '%s\n' "$dm_err" | wc -l)"
	run_capture dw bash -c "printf 'x-value\n' | dirconnctl secret set proxy-password --config '$T/d.conf'"
	check_eq "$damage: secret set fails with ESECRET" 70 "$dw_rc"
	ctl dr reset-secret --config "$T/d.conf" --admin-token-file "$T/admin.token"
	check_eq "$damage: reset-secret fails with ESECRET" 70 "$dr_rc"
	check_eq "$damage: the files are unchanged" "$sum" "$(sha256sum "$T/d/secrets.enc" "$T/d/secret.key")"
done
ctl nw3 connectors --config "$T/a.conf"
check_eq "the secret still works after the failed attempts" 0 "$nw3_rc"

# ---- a standby: connector B, registered through the API, holds its own secret here
api POST connectors '{"name":"b","host":"standby.example.test"}'
B_ID=$(json "$BODY" "j['id']")
B_SECRET=$(json "$BODY" "j['secret']")
remember "$B_SECRET"
b_token() {
	curl -sS --cacert "$T/ca.pem" -d grant_type=client_credentials --data-urlencode "client_id=$B_ID" \
		--data-urlencode "client_secret=$B_SECRET" "$BASE/oauth/token" |
		"$PY" -c 'import json,sys; print(json.load(sys.stdin).get("access_token",""))'
}
B_TOKEN=$(b_token)
remember "$B_TOKEN"
code=$(curl -sS --cacert "$T/ca.pem" -o /dev/null -w '%{http_code}' -X POST \
	-H "Authorization: Bearer $B_TOKEN" "$V1/connectors/$A_ID/secret")
check_eq "a connector's token cannot rotate another connector's secret" 403 "$code"
ctl nw5 connectors --config "$T/a.conf"
check_eq "  ... whose secret still works" 0 "$nw5_rc"

# put_lease HOLDER: the admin sets the lease holder
put_lease() {
	api GET lease
	local rv
	rv=$(json "$BODY" "j['resourceVersion']")
	api PUT lease "{\"holderIdentity\":\"$1\",\"leaseDurationSeconds\":300}" -H "If-Match: \"$rv\""
}

# ---- deregister without the admin token: lease released with the connector's own token
put_lease "$A_ID"
check_eq "A holds the lease" 200 "$STATUS"
cp -a "$T/a" "$T/a-keep"
ctl dn deregister --config "$T/a.conf" --yes
check_eq "deregister without the admin token exits 0" 0 "$dn_rc"
check_contains "  ... released the lease" "$dn_out" "Released the HA lease"
check_contains "  ... and says the registration stays" "$dn_out" "stays in organisation acme"
api GET lease
check_eq "  ... the lease has no holder" None "$(json "$BODY" "j['holderIdentity']")"
api GET "connectors/$A_ID"
check_eq "  ... the registration is still in the cloud" 200 "$STATUS"
check_eq "  ... the local registration is wiped" False "$(json "$(store_json "$T/a")" "'cloud-connector-id' in j or 'cloud-connector-secret' in j")"
BODY=$(curl -sS --cacert "$T/ca.pem" -X GET -H "Authorization: Bearer $B_TOKEN" "$V1/lease" -D "$T/h" )
rv=$(json "$BODY" "j['resourceVersion']")
STATUS=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$T/ca.pem" -X PUT -H "Authorization: Bearer $B_TOKEN" \
	-H "If-Match: \"$rv\"" -H 'Content-Type: application/json' \
	--data "{\"holderIdentity\":\"$B_ID\",\"leaseDurationSeconds\":30}" "$V1/lease")
check_eq "the standby takes the lease at once" 200 "$STATUS"
# Put A's registration back (it is still in the cloud) to deregister it with the admin token.
rm -rf "$T/a"
cp -a "$T/a-keep" "$T/a"

# ---- deregister with the admin token, while A holds the lease again
put_lease "$A_ID"
ctl dy deregister --config "$T/a.conf" --admin-token-file "$T/admin.token" --yes
check_eq "deregister exits 0" 0 "$dy_rc"
check_contains "  ... released the lease first" "$dy_out" "Released the HA lease"
check_contains "  ... and deregistered" "$dy_out" "Deregistered connector $A_ID"
api GET "connectors/$A_ID"
check_eq "  ... the cloud no longer knows A" 404 "$STATUS"
api GET lease
check_eq "  ... the lease has no holder" None "$(json "$BODY" "j['holderIdentity']")"
check_eq "  ... the local registration is wiped" False "$(json "$(store_json "$T/a")" "'cloud-connector-id' in j or 'cloud-connector-secret' in j")"
conf "$T/a-keep.conf" "$T/a-keep"
ctl dt connectors --config "$T/a-keep.conf"
check_eq "  ... no token can be had with A's old credentials" 31 "$dt_rc"
ctl dd deregister --config "$T/a.conf" --admin-token-file "$T/admin.token" --yes
check_eq "deregister again: not registered" 71 "$dd_rc"

# ---- the last connector: a warning, and confirmation unless --yes
ctl r3 register --config "$T/a.conf" --admin-token-file "$T/admin.token"
check_eq "register again after deregistration" 0 "$r3_rc"
A3_ID=$(json "$(store_json "$T/a")" "j['cloud-connector-id']")
remember "$(json "$(store_json "$T/a")" "j['cloud-connector-secret']")"
ctl di deregister --config "$T/a.conf" --id "$B_ID" --yes
check_eq "deregister --id without the admin token is a usage error" 2 "$di_rc"
ctl di deregister --config "$T/a.conf" --admin-token-file "$T/admin.token" --id no-such-id --yes
check_eq "deregister --id of an unknown id: not registered" 71 "$di_rc"
ctl di deregister --config "$T/a.conf" --admin-token-file "$T/admin.token" --id "$B_ID"
check_eq "deregister --id removes another instance's registration" 0 "$di_rc"
check_contains "  ... saying so" "$di_out" "Deregistered connector $B_ID from organisation acme."
api GET "connectors/$B_ID"
check_eq "the standby is gone" 404 "$STATUS"
check_eq "  ... and this instance is still registered" "$A3_ID" "$(json "$(store_json "$T/a")" "j['cloud-connector-id']")"
run_capture nc setsid -w dirconnctl deregister --config "$T/a.conf" --admin-token-file "$T/admin.token"
printf '%s\n%s\n' "$nc_out" "$nc_err" >"$LOGS/last.log"
check_eq "deregistering the last connector without --yes and without a terminal is cancelled" 6 "$nc_rc"
check_contains "  ... after the warning" "$nc_err" "users are not synchronized any more"
check_contains "  ... saying nothing changed" "$nc_err" "nothing was changed"
api GET "connectors/$A3_ID"
check_eq "  ... the registration is still there" 200 "$STATUS"
# on_tty PROMPTS ANSWER ARGS...: run dirconnctl on a pseudo-terminal and type ANSWER (and a
# newline; ^C types a lone Ctrl-C) whenever one of the '|'-separated PROMPTS appears; the
# command is killed after 30 s. Sets TTY_OUT, TTY_RC.
on_tty() {
	local prompts=$1 answer=$2
	shift 2
	TTY_OUT=$("$PY" - "$prompts" "$answer" "$@" <<'PYEOF'
import os, pty, select, signal, sys, time
prompts = [p.encode() for p in sys.argv[1].split("|")]
answer = b"\x03" if sys.argv[2] == "^C" else sys.argv[2].encode() + b"\n"
pid, fd = pty.fork()
if pid == 0:
    os.execvp("dirconnctl", ["dirconnctl"] + sys.argv[3:])
out = b""
seen = 0
deadline = time.time() + 30
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.2)
    if not r:
        continue
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    count = sum(out.count(p) for p in prompts)
    while seen < count:
        os.write(fd, answer)
        seen += 1
else:
    os.kill(pid, signal.SIGKILL)
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
PYEOF
	) && TTY_RC=0 || TTY_RC=$?
	printf '%s\n' "$TTY_OUT" >>"$LOGS/tty.log"
}
on_tty "[y/N]" n deregister --config "$T/a.conf" --admin-token-file "$T/admin.token"
check_eq "answering n on the terminal cancels" 6 "$TTY_RC"
check_contains "  ... the question was asked" "$TTY_OUT" "Deregister it? [y/N]"
api GET "connectors/$A3_ID"
check_eq "  ... the registration is still there" 200 "$STATUS"

# ---- register --force: a new id, the old one deregistered
put_lease "$A3_ID"
ctl rf register --config "$T/a.conf" --admin-token-file "$T/admin.token" --force --name renamed
check_eq "register --force exits 0" 0 "$rf_rc"
A4_ID=$(json "$(store_json "$T/a")" "j['cloud-connector-id']")
remember "$(json "$(store_json "$T/a")" "j['cloud-connector-secret']")"
check "  ... with a new id" test "$A4_ID" != "$A3_ID"
check_contains "  ... and the old registration deregistered" "$rf_out" "Deregistered the old registration $A3_ID (its HA lease was released)"
api GET "connectors/$A3_ID"
check_eq "  ... the cloud no longer knows the old id" 404 "$STATUS"
api GET "connectors/$A4_ID"
check_eq "  ... the new one has the new name" renamed "$(json "$BODY" "j['name']")"
ctl fl connectors --config "$T/a.conf"
check_eq "  ... and its credentials work" 0 "$fl_rc"

# ---- secret set on a terminal: no echo, Ctrl-C cancels
on_tty "Value of" ^C secret set proxy-password --config "$T/a.conf"
check_eq "Ctrl-C at the prompt cancels" 6 "$TTY_RC"
check_contains "  ... and says so" "$TTY_OUT" "interrupted; nothing was stored"
on_tty "Value of|Again:" typed-on-tty-1 secret set proxy-password --config "$T/a.conf"
check_eq "a value typed twice at the prompt is stored" 0 "$TTY_RC"
check_contains "  ... after the second prompt" "$TTY_OUT" "Again:"
check "  ... and it is not echoed" test "${TTY_OUT/typed-on-tty/}" == "$TTY_OUT"
check_eq "  ... stored" typed-on-tty-1 "$(json "$(store_json "$T/a")" "j['proxy-password']")"
remember typed-on-tty-1

# ---- the last connector, confirmed on the terminal
on_tty "[y/N]" y deregister --config "$T/a.conf" --admin-token-file "$T/admin.token"
check_eq "answering y on the terminal deregisters the last connector" 0 "$TTY_RC"
check_contains "  ... after the warning" "$TTY_OUT" "users are not synchronized any more"
ctl none connectors --config "$T/a.conf" --admin-token-file "$T/admin.token"
check_contains "  ... and the organisation has no connector left" "$none_out" "No connectors are registered in organisation acme."

# ---- through an authenticating proxy, with its password from the secret store
if command -v squid >/dev/null && command -v htpasswd >/dev/null; then
	PW=$(openssl rand -hex 12)
	remember "$PW"
	SQ=$T/squid
	mkdir -p "$SQ"
	SQPORT=$(free_port)
	htpasswd -bc "$SQ/htpasswd" alice "$PW" 2>/dev/null
	cat >"$SQ/squid.conf" <<-EOF
		http_port 127.0.0.1:$SQPORT
		pid_filename $SQ/squid.pid
		cache_log $SQ/cache.log
		access_log stdio:$SQ/access.log
		cache_store_log none
		cache deny all
		cache_mem 4 MB
		coredump_dir $SQ
		pinger_enable off
		netdb_filename none
		icp_port 0
		htcp_port 0
		shutdown_lifetime 0 seconds
		auth_param basic program /usr/lib/squid/basic_ncsa_auth $SQ/htpasswd
		auth_param basic realm dirconn-test
		acl authed proxy_auth REQUIRED
		http_access allow authed
		http_access deny all
	EOF
	chmod 711 "$T" # squid runs as the proxy user: let it reach its directory (only that)
	[[ $(id -u) != 0 ]] || chown -R proxy "$SQ"
	chmod 644 "$SQ/htpasswd"
	squid -N -f "$SQ/squid.conf" >"$SQ/squid.out" 2>&1 &
	SQUID_PID=$!
	wait_until 60 port_open "$SQPORT" || true # the checks below say what fails
	conf "$T/p.conf" "$T/p" "[proxy]" "mode = explicit" "url = http://127.0.0.1:$SQPORT" "username = alice"
	ctl px register --config "$T/p.conf" --admin-token-file "$T/admin.token"
	check_eq "register through the proxy without its password: proxy authentication fails" 60 "$px_rc"
	check_contains "  ... and says so" "$px_err" "407"
	n_run=$((n_run + 1))
	printf '%s\n' "$PW" | dirconnctl secret set proxy-password --config "$T/p.conf" \
		>"$LOGS/$n_run-proxy-pw.out" 2>"$LOGS/$n_run-proxy-pw.err" && rc=0 || rc=$?
	check_eq "secret set proxy-password" 0 "$rc"
	ctl pr register --config "$T/p.conf" --admin-token-file "$T/admin.token"
	check_eq "register through the proxy with the stored password" 0 "$pr_rc"
	remember "$(json "$(store_json "$T/p")" "j['cloud-connector-secret']")"
	ctl pl connectors --config "$T/p.conf"
	check_eq "connectors through the proxy (OAuth token and control API)" 0 "$pl_rc"
	ctl ps reset-secret --config "$T/p.conf" --admin-token-file "$T/admin.token"
	check_eq "reset-secret through the proxy" 0 "$ps_rc"
	remember "$(json "$(store_json "$T/p")" "j['cloud-connector-secret']")"
	ctl pd deregister --config "$T/p.conf" --admin-token-file "$T/admin.token" --yes
	check_eq "deregister through the proxy" 0 "$pd_rc"
	# squid logs a tunnel when it closes: wait for the lines, not a fixed time
	through_squid() {
		local n
		n=$(grep -c "CONNECT 127.0.0.1:${BASE##*:} alice" "$SQ/access.log" 2>/dev/null || true)
		((${n:-0} >= 5))
	}
	check "  ... every request went through the proxy as alice" wait_until 60 through_squid
	cp "$SQ/access.log" "$LOGS/squid-access.log"
	cp "$SQ/cache.log" "$LOGS/squid-cache.log" 2>/dev/null || true
else
	echo "# squid or htpasswd missing: the proxy checks are skipped"
fi

# ---- config show: values with their line, defaults, secrets masked; [mapping] checked at load
openssl rand -hex 16 >"$T/bind.pw"
BIND_PW=$(cat "$T/bind.pw")
remember "$BIND_PW"
LDAP_URLS= LDAP_EXTRA= conf "$T/c.conf" "$T/c" "[ha]" "lease = none" "[schedule]" "notifications = no" \
	"[mapping]" "displayName = givenName sn"
# without the fixture's [ldap] lines: bind_dn and bind_password_file follow in a second [ldap]
printf '[ldap]\nbind_dn = CN=dirconn,DC=example,DC=com\nbind_password_file = %s\n' "$T/bind.pw" >>"$T/c.conf"
pw_line=$(grep -n '^bind_password_file' "$T/c.conf" | cut -d: -f1)
map_line=$(grep -n '^displayName' "$T/c.conf" | cut -d: -f1)
ctl cs config show --config "$T/c.conf"
check_eq "config show exits 0" 0 "$cs_rc"
check_contains "config show: a value from the file with its line" "$cs_out" \
	"[connector] state_dir = $T/c  (source $T/c.conf:3, default /var/lib/dirconn, reload restart)"
check_contains "config show: a default" "$cs_out" \
	"[ldap] page_size = 500  (source default, default 500, reload next-run)"
check_contains "config show: a duration in its units" "$cs_out" \
	"[schedule] incremental_interval = 10m  (source default, default 10m, reload now)"
check_contains "config show: a *_file path is shown (not a secret)" "$cs_out" \
	"[ldap] bind_password_file = $T/bind.pw  (source $T/c.conf:$pw_line,"
check_contains "config show: a [mapping] line with its line" "$cs_out" \
	"[mapping] displayName = givenName sn  (source $T/c.conf:$map_line, reload next-run)"
check_contains "config show: the bind password is masked, with its file" "$cs_out" \
	"secret ldap-bind-password = <secret>  (source file $T/bind.pw, named by [ldap] bind_password_file at $T/c.conf:$pw_line)"
check_contains "config show: the connector secret comes from the secret store" "$cs_out" \
	"secret cloud-connector-secret = <secret>  (source secret store entry cloud-connector-secret)"
check "config show never prints the bind password" test "${cs_out/$BIND_PW/}" == "$cs_out"
ctl cj config show --config "$T/c.conf" --json
check_eq "config show --json exits 0" 0 "$cj_rc"
check_eq "config show --json parses and lists every key" "$(grep -c '^\[' <<<"$cs_out")" \
	"$(json "$cj_out" "len(j['options']) + len(j['mapping'])")"
check_eq "  ... the source of state_dir" "$T/c.conf:3" \
	"$(json "$cj_out" "[o['source'] for o in j['options'] if (o['section'], o['key']) == ('connector', 'state_dir')][0]")"
check_eq "  ... the bind password masked" "<secret>" \
	"$(json "$cj_out" "[s['value'] for s in j['secrets'] if s['name'] == 'ldap-bind-password'][0]")"
ctl cu config --config "$T/c.conf"
check_eq "config without a subcommand is a usage error" 2 "$cu_rc"
cp "$T/c.conf" "$T/c-bad.conf"
printf '[mapping]\ntitle = concat(\n' >>"$T/c-bad.conf"
bad_line=$(grep -n '^title' "$T/c-bad.conf" | cut -d: -f1)
ctl cb config show --config "$T/c-bad.conf"
check_eq "config show with a bad [mapping] expression exits 3" 3 "$cb_rc"
check_contains "  ... one line naming file:line and the key" "$cb_err" \
	"dirconnctl config: $T/c-bad.conf:$bad_line: [mapping] title: "
check_eq "  ... and prints nothing" "" "$cb_out"
run_capture db dirconnd --config "$T/c-bad.conf" --no-initial-sync
check_eq "dirconnd with a bad [mapping] expression exits 3 at start" 3 "$db_rc"
check_contains "  ... naming file:line" "$db_err" "$T/c-bad.conf:$bad_line: [mapping] title: "
printf '%s\n' "$db_err" >"$LOGS/dirconnd-bad-start.err"
ctl sb status --config "$T/c-bad.conf"
check_eq "status with a bad [mapping] expression exits 3 (docs/cli.md)" 3 "$sb_rc"
check_contains "  ... naming file:line" "$sb_err" "$T/c-bad.conf:$bad_line: [mapping] title: "

# ---- SIGHUP: restart-only keys are named, a bad [mapping] is refused and the old config kept
D_LOG=$LOGS/dirconnd-c.log
dirconnd --config "$T/c.conf" --no-initial-sync 2>"$D_LOG" &
D_PID=$!
sock_ready() { [[ -S $T/c/dirconnd.sock ]] || ! kill -0 "$D_PID" 2>/dev/null; }
wait_until 60 sock_ready || true
check "dirconnd opens its admin socket" test -S "$T/c/dirconnd.sock"
d_status() { dirconnctl status --socket "$T/c/dirconnd.sock" --json; }
opt_of() { # opt_of SECTION KEY FIELD: a field of the status' config.options row
	json "$(d_status)" "[o['$3'] for o in j['config']['options'] if (o['section'], o['key']) == ('$1', '$2')][0]"
}
st=$(d_status)
check_eq "status --json keeps config.file" "$T/c.conf" "$(json "$st" "j['config']['file']")"
check_eq "status --json keeps config.delete_threshold" 20 "$(json "$st" "j['config']['delete_threshold']")"
check "status --json: config.options renders every key as config show does" test \
	"$(json "$cj_out" "json.dumps(j['options'], sort_keys=True)")" == \
	"$(json "$st" "json.dumps(j['config']['options'], sort_keys=True)")"
check_eq "status --json: config.secrets masked" "<secret>" \
	"$(json "$st" "[s['value'] for s in j['config']['secrets'] if s['name'] == 'ldap-bind-password'][0]")"
cp "$T/c.conf" "$T/c.conf.good"
printf '[web]\nlisten = 127.0.0.1:1\n[log]\nlevel = debug\n[policy]\ndelete_threshold = 31\n' >>"$T/c.conf"
th_line=$(grep -n '^delete_threshold = 31' "$T/c.conf" | cut -d: -f1)
kill -HUP "$D_PID"
check "SIGHUP: a changed restart-only key is logged by name" wait_until 60 \
	grep -qF "config: [web] listen changed; it takes effect after a restart" "$D_LOG"
reloaded() { [[ $(opt_of policy delete_threshold value 2>/dev/null) == 31 ]]; }
check "SIGHUP: a next-run key is applied" wait_until 60 reloaded
check_eq "  ... with its new line as the source" "$T/c.conf:$th_line" "$(opt_of policy delete_threshold source)"
check_eq "  ... the reload names no other key (log level and threshold apply without restart)" 1 \
	"$(grep -c 'takes effect after a restart' "$D_LOG")"
printf '[mapping]\ntitle = concat(\n' >>"$T/c.conf"
bad_line=$(grep -n '^title' "$T/c.conf" | cut -d: -f1)
kill -HUP "$D_PID"
check "SIGHUP with a bad [mapping] expression: refused, naming file:line" wait_until 60 \
	grep -qF "SIGHUP: the new configuration is rejected, the running one is kept: $T/c.conf:$bad_line: [mapping] title: " "$D_LOG"
check_eq "  ... one error line" 1 "$(grep -c 'the new configuration is rejected' "$D_LOG")"
check "  ... dirconnd still runs" kill -0 "$D_PID"
check_eq "  ... the running configuration is the previous one" 31 "$(opt_of policy delete_threshold value)"
check_eq "  ... without the bad line" "" "$(json "$(d_status)" "[m['key'] for m in j['config']['mapping'] if m['key'] == 'title']" | tr -d '[]')"
kill -TERM "$D_PID"
d_rc=0
wait "$D_PID" || d_rc=$?
D_PID=
check_eq "dirconnd exits 0 on SIGTERM" 0 "$d_rc"

# ---- no secret in any log or output of the run
for s in "${SECRETS[@]}"; do
	if grep -rqF -- "$s" "$LOGS"; then
		not_ok "a secret (${#s} characters) appears in $(grep -rlF -- "$s" "$LOGS" | head -1)"
	else
		ok "a secret of ${#s} characters is in no log"
	fi
done
check "the secrets checked include the connector secrets" test "${#SECRETS[@]}" -ge 6
finish
