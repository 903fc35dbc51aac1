# Integration test of the LDAP source layer against a real fixture.
#   bash ldap_source.sh adds|adlds
# Starts the fixture (Samba AD DC or slapd AD LDS), then checks dirconnctl's
# reading against the generator's manifest and against ldapsearch.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
kind=${1:?usage: ldap_source.sh adds|adlds}

work=$(mktemp -d /tmp/dirconn-it-ldap-XXXXXX)
cleanup() {
	"$LDSFX" stop "$work/fx" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
ldsfx_start_retry "$kind" "$work/fx"
# shellcheck disable=SC1091
source "$work/fx/env"
M=$LDSFX_MANIFEST

# conf FILE [key=value ...]: a config for the fixture with [ldap] overrides.
conf() {
	local file=$1
	shift
	declare -A kv=([urls]="$LDSFX_URL_TLS" [bind_dn]="$LDSFX_BIND_DN"
		[bind_password_file]="$LDSFX_BIND_PASSWORD_FILE" [ca_file]="$LDSFX_CA_FILE"
		[base_dn]="$LDSFX_BASE_DN" [page_size]=100 [timeout]=20s)
	local a
	for a in "$@"; do kv[${a%%=*}]=${a#*=}; done
	{
		echo "[connector]"
		echo "state_dir = $work/state"
		echo "[ldap]"
		for a in "${!kv[@]}"; do [[ -n ${kv[$a]} ]] && echo "$a = ${kv[$a]}"; done
		echo "[log]"
		echo "level = info"
	} >"$file"
}
conf "$work/ok.conf"
conf "$work/debug.conf"
sed -i 's/^level = info/level = debug/' "$work/debug.conf"

# ---- rootDSE: partitions and test-connection
run_capture p dirconnctl partitions --config "$work/ok.conf" --json
check_eq "partitions exits 0" 0 "$p_rc"
if [[ $kind == adds ]]; then
	check_eq "AD DS lists its domain, configuration and schema naming contexts" \
		"['configuration', 'domain', 'schema']" \
		"$(json "$p_out" "sorted(p['kind'] for p in j['partitions'] if p['kind'] != 'application partition')")"
	check_eq "the server is AD DS" "AD DS" "$(json "$p_out" "j['serverKind']")"
	check_eq "the domain is the synchronised naming context" "$LDSFX_BASE_DN" \
		"$(json "$p_out" "[p['namingContext'] for p in j['partitions'] if p['synchronized']][0]")"
else
	for part in $LDSFX_PARTITIONS; do
		check_eq "AD LDS partition $part is listed as an application partition" "application partition" \
			"$(json "$p_out" "[p['kind'] for p in j['partitions'] if p['namingContext'].lower() == '$(lower "$part")'][0]")"
	done
fi
run_capture h dirconnctl partitions --config "$work/ok.conf"
check_contains "human output marks the synchronised naming context" "$(lower "$h_out")" "* $(lower "$LDSFX_BASE_DN")"

run_capture t dirconnctl test-connection --config "$work/ok.conf" --json
check_eq "test-connection over LDAPS exits 0" 0 "$t_rc"
check_eq "test-connection reports the DC used" "$LDSFX_URL_TLS" "$(json "$t_out" "j['server']")"
check_contains "LDAPS is reported with its TLS version" "$(json "$t_out" "j['tls']")" "ldaps TLS"
check_eq "the base DN exists" True "$(json "$t_out" "j['baseDnExists']")"
if [[ $kind == adds ]]; then
	check_eq "AD DS offers DirSync and uSNChanged" "True True" \
		"$(json "$t_out" "'dirsync' in j['changeTrackingOffered'], 'usn' in j['changeTrackingOffered']" | tr -d '(),')"
	check_eq "auto selects DirSync on AD DS" dirsync "$(json "$t_out" "j['changeTrackingSelected']")"
else
	check_eq "slapd offers RFC 4533" True "$(json "$t_out" "'syncrepl' in j['changeTrackingOffered']")"
	check_eq "auto selects syncrepl on slapd" syncrepl "$(json "$t_out" "j['changeTrackingSelected']")"
fi

conf "$work/starttls.conf" urls="$LDSFX_URL"
run_capture s dirconnctl test-connection --config "$work/starttls.conf" --json
check_eq "StartTLS on ldap:// works" 0 "$s_rc"
check_contains "StartTLS is reported" "$(json "$s_out" "j['tls']")" "starttls TLS"

# ---- reading: every generated user, per OU, against the manifest
user_filter=$(json "$M" "j['filters']['users']")
while IFS=$'\t' read -r ou dn want; do
	run_capture c dirconnctl search --config "$work/ok.conf" --base "$dn" --filter "$user_filter" --count
	check_eq "every user of OU $ou is read" "$want" "$c_out"
done < <(json "$M" "'\\n'.join(k + '\\t' + v['dn'] + '\\t' + str(v['users']) for k, v in j['ous'].items() if v['users'] > 0)")
run_capture all dirconnctl search --config "$work/ok.conf" --filter "$user_filter" --attrs mail,displayName
check_eq "search of the whole naming context exits 0" 0 "$all_rc"
printf '%s\n' "$all_out" >"$work/users.jsonl"
"$PY" - "$work/users.jsonl" "$M" >"$work/from-dirconn.txt" <<'PY'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    if line.strip():
        print(json.loads(line)["dn"].lower())
PY
# The same search with ldapsearch (-E pr: paged), parsed with python3-ldap's LDIF reader.
if [[ $kind == adds ]]; then tls=(-ZZ -H "$LDSFX_URL"); else tls=(-H "$LDSFX_URL_TLS"); fi
LDAPTLS_CACERT=$LDSFX_CA_FILE ldapsearch -x "${tls[@]}" -D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" \
	-b "$LDSFX_BASE_DN" -E pr=200/noprompt -LLL "$user_filter" 1.1 >"$work/ldapsearch.ldif"
"$PY" - "$work/ldapsearch.ldif" >"$work/from-ldapsearch.txt" <<'PY'
import sys, ldif
rl = ldif.LDIFRecordList(open(sys.argv[1], "rb"))
rl.parse()
for dn, _ in rl.all_records:
    print(dn.lower())
PY
check_eq "dirconnctl reads the same users as ldapsearch" "" \
	"$(diff <(LC_ALL=C sort "$work/from-dirconn.txt") <(LC_ALL=C sort "$work/from-ldapsearch.txt") | head -5)"
at_least=$(json "$M" "j['counts']['users']")
check "the naming context holds at least the $at_least generated users" \
	test "$(wc -l <"$work/from-dirconn.txt")" -ge "$at_least"
check_eq "every entry carries its stable identifier" 0 \
	"$("$PY" -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if l.strip() and not json.loads(l).get("id")))' "$work/users.jsonl")"
if [[ $kind == adds ]]; then idattr=objectGUID; else idattr=entryUUID; fi
check_eq "the identifier comes from $idattr" True "$("$PY" -c '
import json,sys
e=json.loads(open(sys.argv[1]).readline())
print(sys.argv[2] in e["attributes"])' "$work/users.jsonl" "$idattr")"

# Unicode names: the samples of the manifest come back with their displayName intact.
"$PY" - "$work/users.jsonl" "$M" >"$work/samples.txt" <<'PY'
import json, sys
import ldap.dn
def norm(dn):  # RFC 4514 DNs compared by value, not by spelling
    return tuple(tuple((a.lower(), v.lower(), t) for a, v, t in rdn) for rdn in ldap.dn.str2dn(dn))
got = {}
for line in open(sys.argv[1], encoding="utf-8"):
    if line.strip():
        e = json.loads(line)
        got[norm(e["dn"])] = e["attributes"].get("displayName", [None])[0]
for s in json.load(open(sys.argv[2], encoding="utf-8"))["samples"]:
    ok = got.get(norm(s["dn"])) == s["displayName"]
    print(("ok" if ok else "bad"), s["why"], "|", s["dn"])
PY
check_eq "sample users (comma, CJK, apostrophe in CN) read with their displayName" "" \
	"$(grep -v '^ok' "$work/samples.txt" || true)"

# ---- ranged retrieval: the big group yields every member
big_dn=$(json "$M" "j['big_group']['dn']")
big_n=$(json "$M" "j['big_group']['members']")
run_capture b dirconnctl search --config "$work/ok.conf" --base "$big_dn" --scope base --attrs member
check_eq "the big group is read" 0 "$b_rc"
check_eq "the group with more than 1500 members yields every member" "$big_n" \
	"$(json "$b_out" "len(j['attributes']['member'])")"
if [[ $kind == adds ]]; then
	ranged=$(LDAPTLS_CACERT=$LDSFX_CA_FILE ldapsearch -x -ZZ -H "$LDSFX_URL" -D "$LDSFX_BIND_DN" \
		-y "$LDSFX_BIND_PASSWORD_FILE" -b "$big_dn" -s base -LLL '(objectClass=*)' 'member;range=0-1499' |
		grep -c '^member;range=0-1499:' || true)
	check_eq "AD DS answers a ranged request with 1500 values (member;range=0-1499)" 1500 "$ranged"
	run_capture bd dirconnctl search --config "$work/debug.conf" --base "$big_dn" --scope base --attrs member
	check_contains "dirconnctl followed the ranges" "$bd_err" "member came in ranges (0-1499 first)"
	check_eq "and still yields every member" "$big_n" "$(json "$bd_out" "len(j['attributes']['member'])")"
fi

# ---- failures: one line, the DC named, the documented exit code
conf "$work/failover.conf" urls="ldaps://127.0.0.1:1 $LDSFX_URL_TLS"
run_capture f dirconnctl test-connection --config "$work/failover.conf" --json
check_eq "the second DC is used when the first is down" "$LDSFX_URL_TLS" "$(json "$f_out" "j['server']")"
check_contains "the fail-over is logged with the DC that failed" "$f_err" "ldaps://127.0.0.1:1"

conf "$work/down.conf" urls="ldaps://127.0.0.1:1 ldap://127.0.0.1:2"
run_capture d dirconnctl partitions --config "$work/down.conf"
check_eq "no DC reachable: exit 10" 10 "$d_rc"
check_contains "the error names every DC tried" "$d_err" "ldaps://127.0.0.1:1: cannot connect"
check_contains "the error names every DC tried" "$d_err" "ldap://127.0.0.1:2: cannot connect"
check_eq "the error is one line" 1 "$(printf '%s\n' "$d_err" | grep -c 'dirconnctl partitions:')"

cert_ca "$work/other-ca" "Some Other CA"
conf "$work/wrongca.conf" ca_file="$work/other-ca.pem"
run_capture w dirconnctl partitions --config "$work/wrongca.conf"
check_eq "a certificate from another CA fails verification: exit 11" 11 "$w_rc"
check_contains "the TLS error names the DC" "$w_err" "$LDSFX_URL_TLS: TLS handshake failed"
check_contains "the TLS error gives the cause" "$w_err" "certificate verify failed"
conf "$work/wrongca-starttls.conf" urls="$LDSFX_URL" ca_file="$work/other-ca.pem"
run_capture w2 dirconnctl partitions --config "$work/wrongca-starttls.conf"
check_eq "StartTLS with the wrong CA fails too: exit 11" 11 "$w2_rc"

printf 'not-the-password' >"$work/wrong.pw"
conf "$work/wrongpw.conf" bind_password_file="$work/wrong.pw"
run_capture x dirconnctl partitions --config "$work/wrongpw.conf"
check_eq "a wrong password fails cleanly: exit 12" 12 "$x_rc"
check_contains "the bind error names the DC and the DN" "$x_err" "$LDSFX_URL_TLS: bind as '$LDSFX_BIND_DN' refused"
check_eq "the password is not in the error" "" "$(grep -F "$(cat "$LDSFX_BIND_PASSWORD_FILE")" <<<"$x_err" || true)"

check_contains "the refusal says why" "$x_err" "refused: invalid credentials"
if [[ $kind == adds ]]; then
	check_contains "AD's reason is given in words, with its data code" "$x_err" "invalid credentials (AD data 52e)"
	check_contains "the original LDAP code is kept" "$x_err" "Invalid credentials (49)"
	conf "$work/wrongpw2.conf" urls="$LDSFX_URL_TLS $LDSFX_URL" bind_password_file="$work/wrong.pw"
	run_capture x2 dirconnctl partitions --config "$work/wrongpw2.conf"
	check_eq "a refused bind is not tried on the next DC: exit 12" 12 "$x2_rc"
	check_eq "only the first DC was asked" "1 0" \
		"$(grep -c "$LDSFX_URL_TLS: bind as" <<<"$x2_err") $(grep -c "$LDSFX_URL: bind as" <<<"$x2_err")"

	# The names AD takes for a simple bind besides a DN: the UPN and the down-level logon name.
	conf "$work/upn.conf" bind_dn="Administrator@dirconn.test"
	run_capture u dirconnctl test-connection --config "$work/upn.conf" --json
	check_eq "bind_dn as a user principal name (user@domain) binds" 0 "$u_rc"
	check_eq "test-connection shows the name it bound as" "Administrator@dirconn.test" "$(json "$u_out" "j['bindDn']")"
	conf "$work/netbios.conf" bind_dn='DIRCONN\Administrator'
	run_capture nb dirconnctl test-connection --config "$work/netbios.conf" --json
	check_eq 'bind_dn as DOMAIN\user binds' 0 "$nb_rc"

	# A disabled account: refused with AD's data 533, in words.
	pw='Dirconn-Disabled-1!'
	LDAPTLS_CACERT=$LDSFX_CA_FILE ldapmodify -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" -y "$LDSFX_BIND_PASSWORD_FILE" >/dev/null <<-EOF
	dn: CN=dirconn-disabled,CN=Users,$LDSFX_BASE_DN
	changetype: add
	objectClass: user
	sAMAccountName: dirconn-disabled
	userPrincipalName: dirconn-disabled@dirconn.test
	unicodePwd:: $(printf '"%s"' "$pw" | iconv -f UTF-8 -t UTF-16LE | base64 -w0)
	userAccountControl: 514
	EOF
	printf '%s' "$pw" >"$work/disabled.pw"
	conf "$work/disabled.conf" bind_dn="dirconn-disabled@dirconn.test" bind_password_file="$work/disabled.pw"
	run_capture ds dirconnctl test-connection --config "$work/disabled.conf"
	check_eq "a disabled account: exit 12" 12 "$ds_rc"
	check_contains "a disabled account is named as such" "$ds_err" "refused: account disabled (AD data 533); enable the account"
fi

conf "$work/nobase.conf" base_dn="OU=Nowhere,$LDSFX_BASE_DN"
run_capture n dirconnctl search --config "$work/nobase.conf" --count
check_eq "a base DN that does not exist: exit 13" 13 "$n_rc"
check_contains "the error names the base DN" "$n_err" "base DN 'OU=Nowhere,$LDSFX_BASE_DN' does not exist"

if [[ $kind == adds ]]; then
	conf "$work/cleartext.conf" urls="$LDSFX_URL" start_tls=no
	run_capture c dirconnctl partitions --config "$work/cleartext.conf"
	check_eq "AD DS refuses a simple bind without TLS: exit 12" 12 "$c_rc"
	check_contains "the error says TLS is required" "$c_err" "requires TLS"
else
	conf "$work/nobase2.conf" base_dn=
	run_capture n2 dirconnctl search --config "$work/nobase2.conf" --count
	check_eq "AD LDS without base_dn: a configuration error" 3 "$n2_rc"
	check_contains "the error lists the partitions" "$n2_err" "set [ldap] base_dn to one of its partitions"
fi

finish
