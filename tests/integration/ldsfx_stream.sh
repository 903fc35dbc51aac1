#!/usr/bin/env bash
# Self-test of ldsfx's streamed organisation (gen.py --stream, loaded with
# slapadd): starts an adlds fixture with --stream in a temporary directory and
# compares what slapd answers with manifest.json, including the memberships the
# generator wrote without holding the organisation (member, memberOf, teams).
set -euo pipefail

SRC=${DIRCONN_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LDSFX=$SRC/ldsfx/ldsfx
USERS=${LDSFX_STREAM_USERS:-3000}
DIR=$(mktemp -d /tmp/ldsfx-stream.XXXXXX)
FX=$DIR/fx
cleanup() {
	local rc=$?
	"$LDSFX" stop "$FX" 2>/dev/null || true
	if ((rc == 0)); then rm -rf "$DIR"; else echo "test failed; files kept in $DIR" >&2; fi
}
trap cleanup EXIT

FAILS=0 PASSES=0
ok() { PASSES=$((PASSES + 1)); echo "ok   $*"; }
bad() { FAILS=$((FAILS + 1)); echo "FAIL $*"; }
expect_eq() { if [[ $2 == "$3" ]]; then ok "$1 = $3"; else bad "$1: expected $2, got $3"; fi; }
mf() {
	python3 - "$LDSFX_MANIFEST" "$1" <<-'PY'
	import json, sys
	v = json.load(open(sys.argv[1], encoding="utf-8"))
	for k in sys.argv[2].split("."):
	    v = v[int(k)] if isinstance(v, list) else v[k]
	print(v)
	PY
}
search() {
	ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" \
		-LLL -o ldif-wrap=no "$@"
}
count() { search -b "$1" -E pr=500/noprompt "$2" 1.1 | grep -c '^dn:' || true; }
USERS_F='(&(objectClass=user)(!(objectClass=computer)))'

# the generator alone: refuses adds, and holds no organisation in memory (its
# peak RSS at 20x the users stays within 1.5x)
out=$(python3 "$SRC/ldsfx/gen.py" --kind adds --stream --users 10 --out "$DIR/g" 2>&1) && rc=0 || rc=$?
expect_eq "gen.py --stream --kind adds exit code" 2 "$rc"
[[ $out == *"--stream is for --kind adlds only"* ]] && ok "its one-line reason" || bad "no reason: $out"
out=$("$LDSFX" start adds "$FX" --stream 2>&1) && rc=0 || rc=$?
expect_eq "ldsfx start adds --stream exit code" 1 "$rc"
[[ $out == "ldsfx: --stream is for adlds only"* ]] && ok "ldsfx names the cause" || bad "ldsfx said: $out"
rss() { # users -> peak RSS in kB of gen.py --stream
	rm -rf "$DIR/g"
	/usr/bin/time -f %M -o "$DIR/rss" python3 "$SRC/ldsfx/gen.py" --kind adlds --stream \
		--users "$1" --out "$DIR/g" >/dev/null
	cat "$DIR/rss"
}
small=$(rss 2000) large=$(rss 20000)
echo "# gen.py --stream peak RSS: 2000 users $small kB, 20000 users $large kB"
if ((large * 2 < small * 3)); then ok "memory flat in N ($small -> $large kB)"; else bad "memory grows with N: $small -> $large kB"; fi
rm -rf "$DIR/g"

"$LDSFX" start adlds "$FX" --users "$USERS" --stream
# shellcheck disable=SC1091
. "$FX/env"
export LDAPTLS_CACERT=$LDSFX_CA_FILE LDAPTLS_REQCERT=demand
expect_eq "manifest mode" stream "$(mf mode)"
for i in 0 1; do
	p=partitions.$i base=$(mf "partitions.$i.dn")
	expect_eq "[$base] users" "$(mf "$p.counts.users")" "$(count "$base" "$USERS_F")"
	expect_eq "[$base] enabled users" "$(mf "$p.counts.users_enabled")" \
		"$(count "$base" "(&$USERS_F(msDS-UserAccountDisabled=FALSE))")"
	expect_eq "[$base] users with mail" "$(mf "$p.counts.users_with_mail")" \
		"$(count "$base" "(&$USERS_F(mail=*))")"
	expect_eq "[$base] users with manager" "$(mf "$p.counts.users_with_manager")" \
		"$(count "$base" "(&$USERS_F(manager=*))")"
	expect_eq "[$base] users with thumbnailPhoto" "$(mf "$p.counts.users_with_photo")" \
		"$(count "$base" "(&$USERS_F(thumbnailPhoto=*))")"
	expect_eq "[$base] contacts" "$(mf "$p.counts.contacts")" "$(count "$base" '(objectClass=contact)')"
	expect_eq "[$base] computers" "$(mf "$p.counts.computers")" "$(count "$base" '(objectClass=computer)')"
	expect_eq "[$base] groups in OU=Groups" "$(mf "$p.counts.groups")" \
		"$(count "$(mf "$p.ous.Groups.dn")" '(objectClass=group)')"
	for ou in Employees Contractors Disabled "Service Accounts"; do
		expect_eq "[$base] users in OU=$ou" "$(mf "$p.ous.$ou.users")" \
			"$(count "$(mf "$p.ous.$ou.dn")" "$USERS_F")"
	done
	cloud=$(mf "$p.cloud_users.dn")
	expect_eq "[$base] direct members of Cloud Users" "$(mf "$p.cloud_users.members")" \
		"$(search -b "$cloud" -s base '(objectClass=*)' member | grep -c '^member:' || true)"
	expect_eq "[$base] memberOf Cloud Users" "$(mf "$p.cloud_users.members")" \
		"$(count "$base" "(memberOf=$cloud)")"
	big=$(mf "$p.big_group.dn")
	expect_eq "[$base] memberOf the big group" "$(mf "$p.big_group.members")" \
		"$(count "$base" "(memberOf=$big)")"
	# a team's member values and its members' memberOf agree
	team="CN=Team 00007,$(mf "$p.ous.Groups.dn")"
	expect_eq "[$base] Team 00007 members" "$(mf "$p.teams.members_each")" \
		"$(search -b "$team" -s base '(objectClass=*)' member | grep -c '^member:' || true)"
	expect_eq "[$base] memberOf Team 00007" "$(mf "$p.teams.members_each")" \
		"$(count "$base" "(memberOf=$team)")"
	last=$(printf 'Team %05d' "$(mf "$p.teams.count")")
	expect_eq "[$base] the last team exists" 1 "$(count "CN=$last,$(mf "$p.ous.Groups.dn")" '(objectClass=group)')"
	# every address is unique except the listed conflicts (contacts only)
	dups=$(search -b "$base" -E pr=500/noprompt "(&$USERS_F(mail=*))" mail | sed -n 's/^mail: //p' |
		LC_ALL=C tr '[:upper:]' '[:lower:]' | LC_ALL=C sort | uniq -d | wc -l)
	expect_eq "[$base] users sharing an address" 0 "$dups"
	expect_eq "[$base] mail conflicts listed" "$(mf "$p.counts.users" | awk '{ n = int($1 / 250); print (n < 1 ? 1 : n) }')" \
		"$(mf "$p.mail_conflicts" | python3 -c 'import ast,sys; print(len(ast.literal_eval(sys.stdin.read())))')"
	n=$(mf "$p.samples" | python3 -c 'import ast,sys; print(len(ast.literal_eval(sys.stdin.read())))')
	for ((k = 0; k < n; k++)); do
		mail=$(mf "$p.samples.$k.mail")
		[[ $mail == None ]] && mail=
		expect_eq "[$base] sample $(mf "$p.samples.$k.why") mail" "$mail" \
			"$(search -b "$(mf "$p.samples.$k.dn")" -s base '(objectClass=user)' mail | sed -n 's/^mail: //p')"
	done
done
"$LDSFX" stop "$FX"
echo "# $PASSES passed, $FAILS failed"
((FAILS == 0))
