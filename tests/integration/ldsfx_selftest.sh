#!/usr/bin/env bash
# Self-test of the ldsfx directory fixtures: starts the AD DS (Samba) and the
# AD LDS-like (slapd) fixture in temporary directories, compares what the
# servers answer with manifest.json, and stops them again.
set -euo pipefail

# The second AD DS start below must be refused, not wait for the slot (lib.sh waits 900 s).
LDSFX_ADDS_WAIT=${LDSFX_ADDS_WAIT:-0}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LDSFX=$SRC/ldsfx/ldsfx
USERS=${LDSFX_SELFTEST_USERS:-2000}

ADDS_DIR=$(mktemp -d /tmp/ldsfx-selftest-adds.XXXXXX)
ADLDS_DIR=$(mktemp -d /tmp/ldsfx-selftest-adlds.XXXXXX)
cleanup() {
	local rc=$?
	"$LDSFX" stop "$ADDS_DIR" 2>/dev/null || true
	"$LDSFX" stop "$ADLDS_DIR" 2>/dev/null || true
	if ((rc == 0)); then
		rm -rf "$ADDS_DIR" "$ADLDS_DIR"
	else
		echo "selftest failed; instance directories kept: $ADDS_DIR $ADLDS_DIR" >&2
	fi
}
trap cleanup EXIT

# mf KEY.PATH: a value from the running fixture's manifest.json
mf() {
	python3 - "$LDSFX_MANIFEST" "$1" <<-'EOF'
	import json, sys
	v = json.load(open(sys.argv[1], encoding="utf-8"))
	for k in sys.argv[2].split("."):
	    v = v[int(k)] if isinstance(v, list) else v[k]
	print(v)
	EOF
}

# ls_ URL-kind args...: an ldapsearch bound as the fixture's bind DN
search() {
	if [[ $LDSFX_KIND == adds ]]; then
		ldapsearch -x -ZZ -H "$LDSFX_URL" -D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" \
			-LLL -o ldif-wrap=no "$@"
	else
		ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" \
			-LLL -o ldif-wrap=no "$@"
	fi
}

# count BASE FILTER: entries, with paged results (AD answers 1000 per page)
count() {
	search -b "$1" -E pr=500/noprompt "$2" 1.1 | grep -c '^dn:' || true
}

load_env() {
	# shellcheck disable=SC1091
	. "$1/env"
	export LDAPTLS_CACERT=$LDSFX_CA_FILE LDAPTLS_REQCERT=demand
}

USERS_F='(&(objectClass=user)(!(objectClass=computer)))'

# count_org PARTITION_INDEX FILTER: entries in the generated OUs only (an AD
# DS domain also holds Samba's built-in accounts, groups and DC computer)
count_org() {
	local dn total=0 n
	while IFS= read -r dn; do
		n=$(count "$dn" "$2")
		total=$((total + n))
	done < <(python3 - "$LDSFX_MANIFEST" "$1" <<-'EOF'
	import json, sys
	m = json.load(open(sys.argv[1], encoding="utf-8"))
	for ou in m["partitions"][int(sys.argv[2])]["ous"].values():
	    print(ou["dn"])
	EOF
	)
	echo "$total"
}

check_partition() { # manifest partition index
	local i=$1 base
	base=$(mf "partitions.$i.dn")
	local p="partitions.$i"
	check_eq "[$base] users" "$(mf "$p.counts.users")" \
		"$(count_org "$i" "$USERS_F")"
	local off
	if [[ $LDSFX_KIND == adds ]]; then
		off='(userAccountControl:1.2.840.113556.1.4.803:=2)'
	else
		off='(msDS-UserAccountDisabled=TRUE)'
	fi
	check_eq "[$base] enabled users" "$(mf "$p.counts.users_enabled")" \
		"$(count_org "$i" "(&$USERS_F(!$off))")"
	check_eq "[$base] disabled users" "$(mf "$p.counts.users_disabled")" \
		"$(count_org "$i" "(&$USERS_F$off)")"
	check_eq "[$base] users with mail" "$(mf "$p.counts.users_with_mail")" \
		"$(count_org "$i" "(&$USERS_F(mail=*))")"
	check_eq "[$base] users without mail" "$(mf "$p.counts.users_without_mail")" \
		"$(count_org "$i" "(&$USERS_F(!(mail=*)))")"
	check_eq "[$base] users with manager" "$(mf "$p.counts.users_with_manager")" \
		"$(count_org "$i" "(&$USERS_F(manager=*))")"
	check_eq "[$base] users with thumbnailPhoto" "$(mf "$p.counts.users_with_photo")" \
		"$(count_org "$i" "(&$USERS_F(thumbnailPhoto=*))")"
	check_eq "[$base] users with telephoneNumber '+'" "$(mf "$p.counts.users_invalid_phone")" \
		"$(count_org "$i" "(&$USERS_F(telephoneNumber=+))")"
	check_eq "[$base] contacts" "$(mf "$p.counts.contacts")" \
		"$(count_org "$i" "(objectClass=contact)")"
	check_eq "[$base] computers" "$(mf "$p.counts.computers")" \
		"$(count_org "$i" "(objectClass=computer)")"
	local ou
	for ou in Employees Contractors Disabled "Service Accounts"; do
		check_eq "[$base] users in OU=$ou" "$(mf "$p.ous.$ou.users")" \
			"$(count "$(mf "$p.ous.$ou.dn")" "$USERS_F")"
	done
	check_eq "[$base] groups in OU=Groups" "$(mf "$p.counts.groups")" \
		"$(count "$(mf "$p.ous.Groups.dn")" "(objectClass=group)")"
	local cloud
	cloud=$(mf "$p.cloud_users.dn")
	check_eq "[$base] direct members of Cloud Users" "$(mf "$p.cloud_users.members")" \
		"$(search -b "$cloud" -s base '(objectClass=*)' member | grep -c '^member:' || true)"
	# every sample entry is there with its mail
	local n k dn mail got
	n=$(mf "$p.samples" | python3 -c 'import ast,sys; print(len(ast.literal_eval(sys.stdin.read())))')
	for ((k = 0; k < n; k++)); do
		dn=$(mf "$p.samples.$k.dn")
		mail=$(mf "$p.samples.$k.mail")
		got=$(search -b "$dn" -s base '(objectClass=user)' mail | sed -n 's/^mail: //p')
		[[ $mail == None ]] && mail=
		check_eq "[$base] sample $(mf "$p.samples.$k.why") mail" "$mail" "$got"
	done
}

# ------------------------------------------------------------------ AD DS
echo "# AD DS (Samba): start"
t0=$(date +%s%3N)
# other test runs on this machine may hold the one AD DS slot for a while
"$LDSFX" start adds "$ADDS_DIR" --users "$USERS" --wait "${LDSFX_SELFTEST_WAIT:-400}"
echo "# started in $(($(date +%s%3N) - t0)) ms"
load_env "$ADDS_DIR"
check_eq "env LDSFX_KIND" adds "$LDSFX_KIND"
check_eq "bind password file mode" 600 "$(stat -c %a "$LDSFX_BIND_PASSWORD_FILE")"
check_eq "bind password has no trailing newline" 0 \
	"$(tail -c1 "$LDSFX_BIND_PASSWORD_FILE" | tr -d -c '\n' | wc -c)"

nc=$(search -b "" -s base '(objectClass=*)' namingContexts | grep -c '^namingContexts:' || true)
check_eq "adds rootDSE namingContexts" 3 "$nc"

check_partition 0
check_eq "domain users incl. Samba's built-ins" "$(mf domain_totals.users)" \
	"$(count "$LDSFX_BASE_DN" "$USERS_F")"

big=$(mf big_group.dn)
bign=$(mf big_group.members)
if ((bign > 1500)); then
	got=$(search -b "$big" -s base '(objectClass=*)' 'member;range=0-1499' |
		grep -c '^member;range=0-1499:' || true)
	check_eq "big group member;range=0-1499 values" 1500 "$got"
	got=$(search -b "$big" -s base '(objectClass=*)' 'member;range=1500-*' |
		grep -c '^member;range=1500-\*:' || true)
	check_eq "big group member;range=1500-* values" $((bign - 1500)) "$got"
else
	echo "# --users $USERS: big group has $bign members, ranged retrieval not exercised"
fi
check_eq "big group members" "$bign" \
	"$(search -b "$big" -s base '(objectClass=*)' member | grep -c '^member:' || true)"

# a simple bind without TLS is refused (ldap server require strong auth)
if out=$(ldapsearch -x -H "$LDSFX_URL" -D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" \
	-s base -b "" 2>&1); then
	not_ok "simple bind without TLS was accepted"
elif grep -q 'Strong(er) authentication required' <<<"$out"; then
	ok "simple bind without TLS refused (strongerAuthRequired)"
else
	not_ok "simple bind without TLS failed oddly: $out"
fi
# LDAPS works with the exported CA
if ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" \
	-s base -b "$LDSFX_BASE_DN" 1.1 >/dev/null 2>&1; then
	ok "LDAPS bind verified against LDSFX_CA_FILE"
else
	not_ok "LDAPS bind with LDSFX_CA_FILE failed"
fi

# a second AD DS instance is refused with a one-line error
second=$(mktemp -d /tmp/ldsfx-selftest-adds2.XXXXXX)
if err=$("$LDSFX" start adds "$second" 2>&1); then
	not_ok "a second AD DS fixture started"
	"$LDSFX" stop "$second" || true
else
	check_eq "second AD DS start is one line" 1 "$(wc -l <<<"$err")"
	if grep -q "$ADDS_DIR" <<<"$err"; then
		ok "second start names the running instance"
	else
		not_ok "second start error does not name $ADDS_DIR: $err"
	fi
fi
rm -rf "$second"

pid=$LDSFX_PID
t0=$(date +%s%3N)
"$LDSFX" stop "$ADDS_DIR"
echo "# stopped in $(($(date +%s%3N) - t0)) ms"
if kill -0 -- "-$pid" 2>/dev/null; then not_ok "samba processes left after stop"; else ok "no samba process left"; fi

# ------------------------------------------------------------------ AD LDS
echo "# AD LDS-like (slapd): start"
t0=$(date +%s%3N)
"$LDSFX" start adlds "$ADLDS_DIR" --users "$USERS"
echo "# started in $(($(date +%s%3N) - t0)) ms"
load_env "$ADLDS_DIR"
check_eq "env LDSFX_KIND" adlds "$LDSFX_KIND"
ncs=$(search -b "" -s base '(objectClass=*)' namingContexts | sed -n 's/^namingContexts: //p' |
	LC_ALL=C tr '[:upper:]' '[:lower:]' | LC_ALL=C sort | tr '\n' ' ')
want=$(tr ' ' '\n' <<<"$LDSFX_PARTITIONS" | LC_ALL=C tr '[:upper:]' '[:lower:]' | LC_ALL=C sort | tr '\n' ' ')
check_eq "adlds rootDSE lists both partitions" "$want" "$ncs"
check_eq "adlds partitions" 2 "$(wc -w <<<"${LDSFX_PARTITIONS//,/_}")"
check_partition 0
check_partition 1
check_eq "role groups in CN=Roles" 3 "$(count "CN=Roles,$LDSFX_BASE_DN" '(objectClass=group)')"
big=$(mf big_group.dn)
check_eq "memberOf (overlay schema) of the big group" "$(mf big_group.members)" \
	"$(count "$LDSFX_BASE_DN" "(memberOf=$big)")"
uuid=$(search -b "$(mf samples.0.dn)" -s base '(objectClass=*)' entryUUID | sed -n 's/^entryUUID: //p')
if [[ $uuid =~ ^[0-9a-f-]{36}$ ]]; then ok "entryUUID present ($uuid)"; else not_ok "no entryUUID"; fi
# the memberof overlay maintains memberOf on writes
empty="CN=Empty Group,$(mf ous.Groups.dn)"
svc=$(mf "ous.Service Accounts.dn")
svc="CN=svc-backup,$svc"
printf 'dn: %s\nchangetype: modify\nadd: member\nmember: %s\n' "$empty" "$svc" |
	ldapmodify -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" >/dev/null
got=$(search -b "$svc" -s base '(objectClass=*)' memberOf | grep -ci '^memberOf: cn=Empty Group,' || true)
check_eq "memberOf maintained after adding a member" 1 "$got"
# RFC 4533 content synchronisation answers on every partition
for p in $LDSFX_PARTITIONS; do
	if search -b "$p" -s base -E sync=ro '(objectClass=*)' 1.1 >/dev/null 2>&1; then
		ok "syncprov answers a refreshOnly sync on $p"
	else
		not_ok "no RFC 4533 sync on $p"
	fi
done
# anonymous users see the rootDSE and nothing else
anon=$(ldapsearch -x -LLL -H "$LDSFX_URL" -b "$LDSFX_BASE_DN" -s base 1.1 2>&1 | grep -c '^dn:' || true)
check_eq "anonymous read of the partition" 0 "$anon"

pid=$LDSFX_PID
"$LDSFX" stop "$ADLDS_DIR"
if kill -0 -- "-$pid" 2>/dev/null; then not_ok "slapd left after stop"; else ok "no slapd process left"; fi

finish
