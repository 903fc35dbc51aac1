# SCIM interoperability matrix: the main job against each cloud setup, scenario by scenario.
#   bash scim_interop.sh adlds|adds [SETUP...]
# A setup is a name and the dirconn-cloud options that emulate it (SETUPS below). For each
# setup the cloud starts empty, and every scenario changes the directory, runs a sync and asks
# sync_check (an oracle that reads the directory and the cloud on its own, from the rules of
# docs/mapping.md) whether the cloud holds exactly the directory. Each row of the table counts
# the connector's requests answered 4xx and its PATCH requests, from the cloud's request log.
# The table goes to stdout and, as JSON, to $work/interop.json (INTEROP_JSON overrides).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"
kind=${1:?usage: scim_interop.sh adlds|adds [SETUP...]}
shift

# name -> dirconn-cloud options|connector configuration lines (\n-separated)|oracle options
# strict: RFC 7644 to the letter (a DELETE does not cascade); the others emulate one documented
# limitation each (docs/cloud-api.md, "Provider emulation").
declare -A SETUPS=(
	[strict]="||--every-attribute"
	[payload-64k]="--max-body 65536 --bulk-max-payload 65536||--every-attribute"
	# a limit for one request that no discovery document declares (Bulk keeps its 4 MiB):
	# groups travel in /Bulk requests, so a big group's creation never meets it
	[body-64k]="--max-body 65536||--every-attribute"
	# the same without Bulk: a big group's POST is refused (413) and sent again smaller
	[body-64k-no-bulk]="--max-body 65536 --no-bulk||--every-attribute"
	[cascading]="--delete-cascades|[cloud]\ndelete_cascades = yes|--every-attribute"
	[no-enterprise]="--no-enterprise-extension||--every-attribute --no-enterprise"
	[no-bulk]="--no-bulk||--every-attribute"
	[no-patch]="--no-patch||--every-attribute"
	[no-etag]="--no-etag||--every-attribute"
	[no-contacts]="--no-contacts||--every-attribute --no-contacts"
	[eq-only]="--filter-eq-only --no-search||--every-attribute"
	[single-value]="--single-value|[cloud]\nsingle_valued = emails phoneNumbers addresses|--every-attribute --single-valued emails,phoneNumbers,addresses"
	[group-patch-limited]="--group-patch-limited||--every-attribute"
	# a Group PATCH answered 204 No Content with its ETag (RFC 7644 3.5.2's second form)
	[group-patch-no-content]="--group-patch-no-content||--every-attribute"
	[etag-required]="--etag-required||--every-attribute"
	# the published limits of AWS IAM Identity Center (docs/cloud-api.md 4.10)
	[aws]="--profile aws|[cloud]\nsingle_valued = emails phoneNumbers addresses|--every-attribute --single-valued emails,phoneNumbers,addresses --no-contacts"
	# SCIMMY (npm scimmy + scimmy-routers, tests/integration/scim_ext): a service provider
	# nobody here wrote. SCIM goes there with a static bearer token; the control API stays on
	# dirconn-cloud, without a lease. No Contact type; its DELETE cascades to groups only.
	[scimmy]="|[cloud]\nauth = bearer\n[ha]\nlease = none|--every-attribute --no-contacts"
)
ORDER=(strict payload-64k body-64k body-64k-no-bulk cascading no-enterprise no-bulk no-patch no-etag no-contacts eq-only
	single-value group-patch-limited group-patch-no-content etag-required aws scimmy)
(($#)) && ORDER=("$@")

work=$(mktemp -d /tmp/dirconn-it-interop-XXXXXX)
cleanup() {
	local rc=$? # a test that stopped on an error keeps its work directory too
	ext_stop
	sync_cloud_stop
	"$LDSFX" stop "$work/fx" >/dev/null 2>&1 || true
	if [[ $rc -eq 0 && $T_FAIL -eq 0 && -z ${KEEP_WORK:-} ]]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
ldsfx_start_retry "$kind" "$work/fx"
# shellcheck disable=SC1091
source "$work/fx/env"
M=$LDSFX_MANIFEST
ENT=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User
emp=$(json "$M" "j['ous']['Employees']['dn']")
rows=$work/rows.jsonl
: >"$rows"

# ldap_first BASE FILTER ATTR: the first value (or DN with ATTR=dn) of a search.
ldap_first() {
	LDAPTLS_CACERT=$LDSFX_CA_FILE ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
		-y "$LDSFX_BIND_PASSWORD_FILE" -b "$1" -LLL -o ldif-wrap=no -E pr=500/noprompt "$2" "$3" |
		"$PY" -c '
import sys
attr = sys.argv[1].lower()
for line in sys.stdin:
    k, _, v = line.rstrip("\n").partition(": ")
    if k.lower() == attr:
        print(v)
        break
' "$3"
}

# scim_admin METHOD PATH [BODY]: cloud_admin against the SCIM base of the setup ($SCIM_BASE),
# with the same admin token (the SCIMMY server of the scimmy setup takes it as its bearer token).
scim_admin() {
	local method=$1 path=$2 body=${3-}
	local args=(-sS --cacert "$work/cloud-ca.pem" -X "$method" -H "Authorization: Bearer $(cat "$work/admin.token")"
		-o "$work/admin.body" -w '%{http_code}')
	if [[ ${IF_MATCH_REQUIRED:-} == yes && $method != GET && $method != POST ]]; then
		# a provider that requires If-Match (--etag-required): the version just read
		scim_admin GET "${path%%\?*}" >/dev/null
		args+=(-H "If-Match: $(json "$work/admin.body" "j['meta']['version']")")
	fi
	[[ -n $body ]] && args+=(-H 'Content-Type: application/scim+json' --data-binary "$body")
	curl "${args[@]}" "$SCIM_BASE$path" >"$work/admin.status"
	cat "$work/admin.body"
}

# ext_start / ext_stop: the SCIMMY service provider (tests/integration/scim_ext) on loopback.
EXT_DIR=$SRC/tests/integration/scim_ext
EXT_PID=
ext_start() {
	rm -f "$work/ext.ready"
	node "$EXT_DIR/server.js" --listen 127.0.0.1:0 --token-file "$work/admin.token" \
		--ready-file "$work/ext.ready" --log "$work/ext.log" 2>>"$work/ext.err" &
	EXT_PID=$!
	local i
	for i in $(seq 1 1200); do # up to 60 s
		[[ -s $work/ext.ready ]] && break
		kill -0 "$EXT_PID" 2>/dev/null || { echo "the SCIMMY server exited:"; tail -5 "$work/ext.err"; return 1; }
		sleep 0.05
	done
	EXT_URL=http://127.0.0.1:$(cat "$work/ext.ready")
}
ext_stop() {
	if [[ -n $EXT_PID ]]; then
		kill -TERM "$EXT_PID" 2>/dev/null || true
		wait "$EXT_PID" 2>/dev/null || true
		EXT_PID=
	fi
}

# cloud_user USERNAME EXPR: a Python expression over the cloud's user `u` (None when absent).
cloud_user() {
	local q
	q=$("$PY" -c 'import sys,json,urllib.parse; print(urllib.parse.quote("userName eq " + json.dumps(sys.argv[1])))' "$1")
	scim_admin GET "/Users?filter=$q" >/dev/null
	if [[ $(admin_status) != 200 ]]; then
		# SCIMMY refuses a filter with an escaped quote (scim_ext/README.md): look in the list
		scim_admin GET "/Users?count=10000" >/dev/null
	fi
	local lit
	lit=$("$PY" -c 'import sys,json; print(json.dumps(sys.argv[1].lower()))' "$1")
	json "$work/admin.body" \
		"(lambda u: $2)(([r for r in j.get('Resources') or [] if (r.get('userName') or '').lower() == $lit] or [None])[0])"
}

# run_scenario SETUP SCENARIO SYNC-ARGS...: a sync, then the oracle; one row of the table.
run_scenario() {
	local setup=$1 scenario=$2
	shift 2
	local mark
	touch "$REQ_LOG"
	mark=$(wc -l <"$REQ_LOG")
	local t0 t1 t2
	t0=$(date +%s.%N)
	run_capture s dirconnctl sync "$@" --config "$work/$setup.conf" --no-progress
	t1=$(date +%s.%N)
	local reqs
	reqs=$(tail -n +"$((mark + 1))" "$REQ_LOG" | grep -v 'connector=admin' | grep -E '(^| )(GET|POST|PUT|PATCH|DELETE) ' || true)
	local n4xx npatch
	n4xx=$(printf '%s\n' "$reqs" | grep -cE ' 4[0-9][0-9]( |$)' || true)
	npatch=$(printf '%s\n' "$reqs" | grep -cE '(^| )PATCH ' || true)
	# the PATCH operations carried (both servers log ops=N on a request that carried N)
	local nops
	nops=$(printf '%s\n' "$reqs" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^ops=[0-9]+$/) n += substr($i, 5) } END { print n + 0 }')
	# list reads of whole resources (dirconn-cloud logs select=attributes for an attributes=
	# selection; the query itself is not logged), and reads by id
	LAST_WHOLE_LISTS=$(printf '%s\n' "$reqs" | grep -E '(^| )GET [^ ?]*/(Users|Groups|Contacts) ' |
		grep -cv ' select=attributes' || true)
	LAST_GETS_BY_ID=$(printf '%s\n' "$reqs" | grep -cE '(^| )GET [^ ?]*/(Users|Groups|Contacts)/[^ ?/]+[ ?]' || true)
	run_capture chk sync_check ${CHECK_ARGS:-}
	t2=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" -v c="$t2" -v n="$setup / $scenario" \
		'BEGIN { printf "# %s: sync %.1f s, oracle %.1f s\n", n, b - a, c - b }'
	local equal=yes
	[[ $chk_rc -eq 0 ]] || equal=no
	check_eq "$setup / $scenario: the sync exits 0" 0 "$s_rc"
	[[ $s_rc -eq 0 ]] || printf '%s\n' "$s_err" | tail -3
	check_eq "$setup / $scenario: the cloud equals the directory" yes "$equal"
	[[ $equal == yes ]] || printf '%s\n' "$chk_out" | grep -v '^ok' | head -8
	if [[ $setup == etag-required ]]; then
		# the provider requires If-Match, which no discovery document says: the first writes
		# without it (at most the 8 in flight) are answered 428, after which the connector reads
		# versions first and writes one resource at a time (no 412 between its own writes)
		local n428
		n428=$(printf '%s\n' "$reqs" | grep -cE ' 428( |$)' || true)
		check_eq "$setup / $scenario: 428 only while learning that If-Match is required" yes \
			"$( ((n428 <= 8)) && echo yes || echo "$n428")"
		check_eq "$setup / $scenario: no other request refused (4xx)" 0 "$((n4xx - n428))"
	elif [[ $setup == body-64k* ]]; then
		# a group's POST over the undeclared limit is refused (413) once per run at most per
		# group; the connector halves its request limit, sends it again, and says so
		local n413
		n413=$(printf '%s\n' "$reqs" | grep -cE ' 413( |$)' || true)
		check_eq "$setup / $scenario: no request refused but 413 (4xx)" 0 "$((n4xx - n413))"
		if ((n413 > 0)); then
			check_contains "$setup / $scenario: the 413 is worked around" "$s_err" \
				"requests carry at most"
		fi
		BODY_413=$((${BODY_413:-0} + n413))
	elif [[ -z ${REFUSAL_EXPECTED:-} ]]; then
		check_eq "$setup / $scenario: no request refused (4xx)" 0 "$n4xx"
	else
		# a documented deviation of the provider: the connector takes the other way
		check_contains "$setup / $scenario: the refusal is worked around" "$s_err" "$REFUSAL_EXPECTED"
	fi
	printf '{"setup":"%s","scenario":"%s","exit":%d,"4xx":%d,"patch_requests":%d,"patch_ops":%d,"equal":"%s"}\n' \
		"$setup" "$scenario" "$s_rc" "$n4xx" "$npatch" "$nops" "$equal" >>"$rows"
	LAST_4XX=$n4xx LAST_PATCH=$npatch LAST_OPS=$nops
}

# The test users: U (a user with a manager), B (another user), both in Employees.
pick_users() {
	U_DN=$(ldap_first "$emp" "(&(objectClass=user)(mail=*)(manager=*))" dn)
	U_MAIL=$(ldap_first "$U_DN" "(objectClass=*)" mail)
	BOSS_DN=$(ldap_first "$U_DN" "(objectClass=*)" manager)
}

for setup in "${ORDER[@]}"; do
	[[ -n ${SETUPS[$setup]+x} ]] || { not_ok "unknown setup $setup"; continue; }
	IFS='|' read -r cloud_args conn_lines CHECK_ARGS <<<"${SETUPS[$setup]}"
	patch_ok=yes
	BODY_413=0
	[[ $cloud_args == *--no-patch* ]] && patch_ok=no
	IF_MATCH_REQUIRED=no
	[[ $cloud_args == *--etag-required* ]] && IF_MATCH_REQUIRED=yes
	sync_cloud_stop
	ext_stop
	rm -f "$work"/cloud.db* "$work/cloud.log"
	# shellcheck disable=SC2086
	sync_cloud_start $cloud_args
	sync_register "$setup"
	SCIM_BASE=$CLOUD_URL/scim/v2/acme REQ_LOG=$work/cloud.log
	if [[ $setup == scimmy ]]; then
		rm -f "$work/ext.log"
		ext_start
		SCIM_BASE=$EXT_URL/scim/v2 REQ_LOG=$work/ext.log
		conn_lines="$conn_lines\n[cloud]\nscim_url = $EXT_URL/scim/v2\ntoken_file = $work/admin.token"
	fi
	sync_conf "$work/$setup.conf" "$setup" "$(printf '%b' "$conn_lines")"
	rm -rf "$work/state-$setup"
	pick_users

	run_scenario "$setup" "full sync" --full
	run_scenario "$setup" "no-op rerun" --full
	check_contains "$setup / no-op rerun: nothing to do" "$s_out" "0 Objects Added | 0 Objects Updated"
	check_eq "$setup / no-op rerun: no PATCH" 0 "$LAST_PATCH"
	# with ETags the inventory is a selection with meta.version and nothing else is read: each
	# copy's version is the one recorded when it was written; without, whole resources are read
	etag_expect=
	if [[ $setup != scimmy ]]; then
		etag_expect=yes
		[[ $cloud_args == *--no-etag* || $cloud_args == *aws* ]] && etag_expect=no
	fi
	check_whole_reads() { # SCENARIO
		case $etag_expect in
		yes) check_eq "$setup / $1: no list read of whole resources" 0 "$LAST_WHOLE_LISTS" ;;
		no) check_eq "$setup / $1: whole resources read (no ETags)" yes \
			"$( ((LAST_WHOLE_LISTS > 0)) && echo yes || echo "$LAST_WHOLE_LISTS")" ;;
		esac
	}
	check_whole_reads "no-op rerun"
	if [[ $etag_expect == yes ]]; then
		# every copy written is recorded with its version: the creations', the members added
		# after a creation and the follow-up pass's (nested groups) chained by If-Match
		check_eq "$setup / no-op rerun: no copy read by id" 0 "$LAST_GETS_BY_ID"
	else
		echo "# $setup / no-op rerun: $LAST_GETS_BY_ID reads by id"
	fi
	bigname=$(json "$M" "j['big_group']['name']")
	gq=$("$PY" -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "displayName eq \"$bigname\"")
	scim_admin GET "/Groups?filter=$gq&attributes=id" >/dev/null
	gid=$(json "$work/admin.body" "j['Resources'][0]['id']")

	# drift: someone edits a user and a group in the cloud; the next full sync puts the
	# directory's values back and leaves an attribute dirconn does not map alone
	uid=$(cloud_user "$U_MAIL" "u['id']")
	if [[ $patch_ok == yes ]]; then
		scim_admin PATCH "/Users/$uid" '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"title","value":"Edited In The Cloud"},{"op":"add","path":"nickName","value":"kept"}]}' >/dev/null
	else
		scim_admin GET "/Users/$uid" >/dev/null
		scim_admin PUT "/Users/$uid" "$(json "$work/admin.body" "(j.pop('meta', None), j.update(title='Edited In The Cloud', nickName='kept'), json.dumps(j))[2]")" >/dev/null
	fi
	check_eq "$setup: a user is edited in the cloud" 200 "$(admin_status)"
	scim_admin GET "/Groups/$gid" >/dev/null # a big group: read from the file
	first_member=$(json "$work/admin.body" "j['members'][0]['value']")
	if [[ $patch_ok == yes ]]; then
		scim_admin PATCH "/Groups/$gid" "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],\"Operations\":[{\"op\":\"remove\",\"path\":\"members[value eq \\\"$first_member\\\"]\"}]}" >/dev/null
	else
		json "$work/admin.body" "(j.pop('meta', None), j.update(members=j['members'][1:]), json.dumps(j))[2]" >"$work/put.json"
		scim_admin PUT "/Groups/$gid" "@$work/put.json" >/dev/null # (too long for argv)
	fi
	# a PATCH may be answered 204 (RFC 7644 3.5.2: group-patch-no-content, aws)
	check_eq "$setup: a member is removed from a group in the cloud" 2xx "$(admin_status | sed 's/^20[04]$/2xx/')"
	run_scenario "$setup" "drift repaired by a full sync" --full
	check_contains "$setup / drift: reported" "$s_out" "2 of the updated objects were changed in the cloud (drift)"
	check_whole_reads "drift repaired by a full sync"
	check_eq "$setup / drift: the unmapped nickName is left alone" kept "$(cloud_user "$U_MAIL" "u.get('nickName')")"
	run_scenario "$setup" "no-op after the drift repair" --full
	check_contains "$setup / no-op after the drift repair: nothing to do" "$s_out" "0 Objects Added | 0 Objects Updated"
	check_whole_reads "no-op after the drift repair"

	# clear manager, department (AD DS), phone and title of U
	clear="delete: manager
-
replace: title
title: Interop Title
-
replace: telephoneNumber
telephoneNumber: +1 555 0199"
	ldap_modify "dn: $U_DN
changetype: modify
$clear"
	run_scenario "$setup" "set title and phone, clear manager" --incremental
	check_eq "$setup: the cleared manager is gone from the cloud" None \
		"$(cloud_user "$U_MAIL" "(u.get('$ENT') or {}).get('manager')")"
	del_dept=
	[[ $kind == adds ]] && del_dept=$'-\ndelete: department'
	ldap_modify "dn: $U_DN
changetype: modify
delete: title
-
delete: telephoneNumber
$del_dept"
	run_scenario "$setup" "clear department, phone and title" --incremental
	check_eq "$setup: the cleared title is gone from the cloud" None "$(cloud_user "$U_MAIL" "u.get('title')")"
	check_eq "$setup: the cleared phone is gone from the cloud" "[]" \
		"$(cloud_user "$U_MAIL" "[p for p in u.get('phoneNumbers') or [] if p.get('type') == 'work']")"

	ldap_modify "dn: $U_DN
changetype: modify
replace: title
title: Only The Title"
	run_scenario "$setup" "title-only change" --incremental
	if [[ $patch_ok == yes ]]; then
		check_eq "$setup / title-only change: one PATCH" 1 "$LAST_PATCH"
		check_eq "$setup / title-only change: one operation" 1 "$LAST_OPS"
	else
		check_eq "$setup / title-only change: no PATCH where the provider has none" 0 "$LAST_PATCH"
	fi

	if [[ $kind == adds ]]; then
		dis=$'replace: userAccountControl\nuserAccountControl: 514'
	else
		dis=$'replace: msDS-UserAccountDisabled\nmsDS-UserAccountDisabled: TRUE'
	fi
	ldap_modify "dn: $U_DN
changetype: modify
$dis"
	run_scenario "$setup" "disable" --incremental
	check_eq "$setup: the disabled user is inactive" False "$(cloud_user "$U_MAIL" "u.get('active')")"

	ldap_modify "dn: $U_DN
changetype: modify
replace: displayName
displayName: Renamed Interop User"
	run_scenario "$setup" "rename" --incremental

	# a user whose mail holds a quote (and a backslash): every filter value is escaped
	# (RFC 7644 3.4.2.2); the address is not a dot-atom, so emails is dropped with a warning
	# and userName still carries it
	q_cn="Quote Interop $setup"
	q_mail="o\"brien\\$setup@${U_MAIL#*@}"
	if [[ $kind == adds ]]; then
		q_enable=$'sAMAccountName: qi'"${setup//-/}"$'\nuserAccountControl: 544'
	else
		q_enable='msDS-UserAccountDisabled: FALSE'
	fi
	ldap_modify "dn: CN=$q_cn,$emp
changetype: add
objectClass: user
givenName: Quote
sn: Interop
displayName: $q_cn
mail: $q_mail
$q_enable"
	# SCIMMY refuses the escaped quote (scim_ext/README.md D5): the connector reads the inventory
	refusal=
	[[ $setup == scimmy ]] && refusal="reading the whole inventory instead"
	REFUSAL_EXPECTED=$refusal run_scenario "$setup" "a user whose mail holds a quote" --incremental
	check_eq "$setup: the user with a quote in its mail is in the cloud" "$q_mail" \
		"$(cloud_user "$q_mail" "u and u['userName']")"

	# a manager with two reports, one of them in the big group, all new: then the member is
	# deleted (it leaves the group in the cloud) and the manager is deleted (its report loses
	# the manager in the cloud); a DELETE does not cascade in the strict setup
	big=$(json "$M" "j['big_group']['dn']")
	mk_user() { # CN MAIL [MANAGER-DN]
		local en
		if [[ $kind == adds ]]; then
			en="sAMAccountName: $(printf '%s' "${2%%@*}" | tr -cd 'a-z0-9' | cut -c1-20)"$'\nuserAccountControl: 544'
		else
			en='msDS-UserAccountDisabled: FALSE'
		fi
		ldap_modify "dn: CN=$1,$emp
changetype: add
objectClass: user
givenName: ${1%% *}
sn: Interop
displayName: $1
mail: $2
${3:+manager: $3
}$en"
	}
	dom=${U_MAIL#*@}
	tag=${setup//-/}
	mgr="CN=Mgr $tag,$emp" r1="CN=Rone $tag,$emp" r2="CN=Rtwo $tag,$emp"
	mk_user "Mgr $tag" "mgr.$tag@$dom"
	mk_user "Rone $tag" "rone.$tag@$dom" "$mgr"
	mk_user "Rtwo $tag" "rtwo.$tag@$dom" "$mgr"
	ldap_modify "dn: $big
changetype: modify
add: member
member: $r1"
	run_scenario "$setup" "add a manager, two reports and a member" --incremental
	want_mgr=$(cloud_user "mgr.$tag@$dom" "u['id']")
	[[ $CHECK_ARGS == *--no-enterprise* ]] && want_mgr=None
	check_eq "$setup: the report has its manager in the cloud (none without the extension)" "$want_mgr" \
		"$(cloud_user "rtwo.$tag@$dom" "(u.get('$ENT') or {}).get('manager', {}).get('value')")"
	printf 'dn: %s\nchangetype: delete\n' "$r1" | LDAPTLS_CACERT=$LDSFX_CA_FILE ldapmodify -x \
		-H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" >/dev/null
	run_scenario "$setup" "delete a group member" --incremental
	printf 'dn: %s\nchangetype: delete\n' "$mgr" | LDAPTLS_CACERT=$LDSFX_CA_FILE ldapmodify -x \
		-H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" >/dev/null
	run_scenario "$setup" "delete a manager" --incremental
	check_eq "$setup: the deleted manager is gone from its report" None \
		"$(cloud_user "rtwo.$tag@$dom" "(u.get('$ENT') or {}).get('manager')")"
	# a new group of 1,700 members: with a 64 KiB limit it is created with the members that
	# fit and the rest follow by PATCH in chunks; no request may be refused (413)
	LDAPTLS_CACERT=$LDSFX_CA_FILE ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
		-y "$LDSFX_BIND_PASSWORD_FILE" -b "$LDSFX_BASE_DN" -LLL -o ldif-wrap=no -E pr=500/noprompt \
		"(&(objectClass=user)(mail=*))" dn | sed -n 's/^dn:/member:/p' | awk 'NR <= 1700' >"$work/g1700.dns"
	check_eq "$setup: 1,700 users for the new group" 1700 "$(wc -l <"$work/g1700.dns")"
	{
		printf 'dn: CN=Interop Big %s,%s\nchangetype: add\nobjectClass: group\ngroupType: 8\n' "$tag" "$emp"
		[[ $kind == adds ]] && printf 'sAMAccountName: interopbig%s\n' "$tag"
		cat "$work/g1700.dns" # member: DN, or member:: base64 of a non-ASCII DN (RFC 2849)
	} >"$work/g1700.ldif"
	ldap_modify "$(cat "$work/g1700.ldif")"
	run_scenario "$setup" "a new 1,700-member group" --incremental
	gq=$("$PY" -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "displayName eq \"Interop Big $tag\"")
	scim_admin GET "/Groups?filter=$gq&attributes=id" >/dev/null
	gid=$(json "$work/admin.body" "(j.get('Resources') or [{}])[0].get('id')")
	scim_admin GET "/Groups/$gid" >/dev/null
	# (the oracle compared the members one by one; this says the group is really that big)
	check_eq "$setup: the new group holds more than 64 KiB of members in the cloud" yes \
		"$(json "$work/admin.body" "'yes' if len(json.dumps(j.get('members') or [])) > 65536 else len(j.get('members') or [])")"
	if [[ $setup == body-64k-no-bulk ]]; then
		check "$setup: groups over 64 KiB were refused (413) and sent again" test "${BODY_413:-0}" -ge 1
	elif [[ $setup == body-64k ]]; then
		check_eq "$setup: groups travel in /Bulk requests, whose limit is not the 64 KiB one" 0 \
			"${BODY_413:-0}"
	fi
	run_scenario "$setup" "full sync after the deletions" --full
	check_contains "$setup / full sync after the deletions: nothing to do" "$s_out" "0 Objects Added | 0 Objects Updated"
done

# ---- the table
"$PY" - "$rows" "${INTEROP_JSON:-$work/interop.json}" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
json.dump(rows, open(sys.argv[2], "w"), indent=1)
print("%-14s %-40s %4s %4s %6s %5s %5s" % ("setup", "scenario", "exit", "4xx", "PATCH", "ops",
                                             "equal"))
for r in rows:
    print("%-14s %-40s %4d %4d %6d %5d %5s" % (r["setup"], r["scenario"], r["exit"], r["4xx"],
                                              r["patch_requests"], r["patch_ops"], r["equal"]))
EOF
finish
