# Integration test of alternate e-mail addresses (proxyAddresses, [users] sync_proxy_addresses)
# and multi-valued directory attributes against a real directory fixture and the reference
# cloud (docs/mapping.md "Alternate addresses"):
#   bash sync_aliases.sh adds|adlds
# Aliases appear, change and are removed in the cloud; addresses outside the accepted domains
# and a primary SMTP: address that is not mail are reported with the DN; every value of
# otherTelephone arrives; a provider without PATCH gets and loses aliases by PUT; a provider
# that takes one email gets the primary and a report line.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"
kind=${1:?usage: sync_aliases.sh adds|adlds}

work=$(mktemp -d /tmp/dirconn-it-alias-XXXXXX)
cleanup() {
	local rc=$?
	sync_cloud_stop
	"$LDSFX" stop "$work/fx" >/dev/null 2>&1 || true
	if [[ $rc -eq 0 && $T_FAIL -eq 0 && -z ${KEEP_WORK:-} ]]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
ldsfx_start_retry "$kind" "$work/fx" --users 200
# shellcheck disable=SC1091
source "$work/fx/env"
M=$LDSFX_MANIFEST
D=$(json "$M" "j['cloud_users']['mail'].split('@')[1]")
SG=$(json "$M" "j['cloud_users']['dn']")
emp=$(json "$M" "j['ous']['Employees']['dn']")
sync_cloud_start
sync_register conn-a
sync_conf "$work/a.conf" conn-a "[users]
security_groups = $SG
sync_proxy_addresses = yes"
incr() { # incr NAME: an incremental sync, its output in NAME_out, NAME_err, NAME_rc
	run_capture "$1" dirconnctl sync --incremental --config "$work/a.conf" --no-progress
}
enc() { "$PY" -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }
cloud_user() { # cloud_user USERNAME: the cloud's copy of the user as JSON ({} when absent)
	local out
	out=$(cloud_admin GET "/scim/v2/acme/Users?filter=$(enc "userName eq \"$1\"")")
	json "$out" "json.dumps((j.get('Resources') or [{}])[0])"
}
emails() { # emails USERNAME: "type:value[*]" of each email, sorted, '*' marking the primary
	json "$(cloud_user "$1")" "' '.join(sorted('%s:%s%s' % (e.get('type'), e.get('value'), '*' if e.get('primary') else '') for e in j.get('emails', [])))"
}
phones() { # phones USERNAME TYPE: the values of that type, sorted
	json "$(cloud_user "$1")" "' '.join(sorted(p['value'] for p in j.get('phoneNumbers', []) if p.get('type') == '$2'))"
}

# ---- a user with aliases in and out of the accepted domains, and two other telephone numbers
U=alias.tester@$D
U_DN="CN=Alias Tester,$emp"
if [[ $kind == adds ]]; then
	extra="objectClass: user
sAMAccountName: aliastester
userAccountControl: 544"
else
	extra="objectClass: user
msDS-UserAccountDisabled: FALSE"
fi
ldap_modify "dn: $U_DN
changetype: add
$extra
userPrincipalName: $U
givenName: Alias
sn: Tester
displayName: Alias Tester
mail: $U
telephoneNumber: +1 555 0100
otherTelephone: +1 555 0201
otherTelephone: +1 555 0202
proxyAddresses: SMTP:$U
proxyAddresses: smtp:at@$D
proxyAddresses: smtp:a.tester@$D
proxyAddresses: smtp:alias.tester@elsewhere.example
proxyAddresses: X500:/o=Example/ou=Exchange/cn=Recipients/cn=aliastester"
ldap_modify "dn: $SG
changetype: modify
add: member
member: $U_DN"
incr a1
check_eq "the first sync exits 0" 0 "$a1_rc"
check_eq "the aliases in the mail's domain reach the cloud as emails of type other" \
	"other:a.tester@$D other:at@$D work:$U*" "$(emails "$U")"
# The DN as the server spells it (slapd: lower-case attribute types): compared without case.
check_contains "an alias outside the accepted domains is reported with the DN and the address" "$(lower "$a1_err")" \
	"$(lower "For $U_DN, the alternate address alias.tester@elsewhere.example in proxyAddresses is not sent: elsewhere.example is not the domain of mail ($D) and [users] accepted_domains is not set.")"
check_eq "every value of otherTelephone arrives" "+1 555 0201 +1 555 0202" "$(phones "$U" other)"
check_eq "the work number stays one value" "+1 555 0100" "$(phones "$U" work)"

# ---- aliases change: one goes, one comes, the accepted domains widen
sync_conf "$work/a.conf" conn-a "[users]
security_groups = $SG
sync_proxy_addresses = yes
accepted_domains = $D elsewhere.example"
ldap_modify "dn: $U_DN
changetype: modify
delete: proxyAddresses
proxyAddresses: smtp:at@$D
-
add: proxyAddresses
proxyAddresses: smtp:tester@$D
-
delete: otherTelephone
otherTelephone: +1 555 0201"
incr c1
check_eq "the changing sync exits 0" 0 "$c1_rc"
check_eq "a removed alias leaves the cloud, a new one and the newly accepted one arrive" \
	"other:a.tester@$D other:alias.tester@elsewhere.example other:tester@$D work:$U*" "$(emails "$U")"
check_eq "a removed otherTelephone value leaves the cloud" "+1 555 0202" "$(phones "$U" other)"
run_capture c2 dirconnctl sync --full --config "$work/a.conf" --no-progress
check_contains "a full sync afterwards has nothing to do for it" "$c2_out" "0 Objects Added | 0 Objects Updated"

# ---- a primary SMTP: address that is not mail is reported; the primary email stays mail
ldap_modify "dn: $U_DN
changetype: modify
delete: proxyAddresses
proxyAddresses: SMTP:$U
-
add: proxyAddresses
proxyAddresses: SMTP:someone.else@$D"
incr p1
check_contains "a primary SMTP: that is not mail is reported with the DN" "$(lower "$p1_err")" \
	"$(lower "For $U_DN, the primary address SMTP:someone.else@$D in proxyAddresses is not the mail attribute ($U)")"
check_eq "the primary email is still mail, and the aliases stay" \
	"other:a.tester@$D other:alias.tester@elsewhere.example other:tester@$D work:$U*" "$(emails "$U")"

# ---- every alias removed: the cloud keeps the primary email only
ldap_modify "dn: $U_DN
changetype: modify
replace: proxyAddresses
proxyAddresses: SMTP:$U"
incr r1
check_eq "removing the aliases exits 0" 0 "$r1_rc"
check_contains "one update" "$r1_out" "0 added | 1 updated | 0 deleted | 0 failed"
check_eq "the removed aliases are gone from the cloud" "work:$U*" "$(emails "$U")"

# ---- a provider without PATCH: the aliases go by PUT, and leave by PUT
sync_cloud_stop
rm -rf "$work/cloud.db" "$work/state-conn-a"
sync_cloud_start --no-patch
sync_register conn-a
sync_conf "$work/a.conf" conn-a "[users]
security_groups = $SG
sync_proxy_addresses = yes"
ldap_modify "dn: $U_DN
changetype: modify
replace: proxyAddresses
proxyAddresses: SMTP:$U
proxyAddresses: smtp:at@$D
proxyAddresses: smtp:a.tester@$D"
incr n1
check_eq "the sync to a provider without PATCH exits 0" 0 "$n1_rc"
check_eq "it gets the aliases" "other:a.tester@$D other:at@$D work:$U*" "$(emails "$U")"
ldap_modify "dn: $U_DN
changetype: modify
delete: proxyAddresses
proxyAddresses: smtp:at@$D"
incr n2
check_contains "one update by PUT" "$n2_out" "0 added | 1 updated | 0 deleted | 0 failed"
check_eq "the removed alias is gone, the other stays" "other:a.tester@$D work:$U*" "$(emails "$U")"

# ---- a provider that takes one email: the primary, and a report of what is not sent
ldap_modify "dn: $U_DN
changetype: modify
replace: proxyAddresses
proxyAddresses: SMTP:$U
proxyAddresses: smtp:at@$D"
sync_cloud_stop
rm -rf "$work/cloud.db" "$work/state-conn-a"
sync_cloud_start --single-value
sync_register conn-a
sync_conf "$work/a.conf" conn-a "[users]
security_groups = $SG
sync_proxy_addresses = yes
[cloud]
single_valued = emails phoneNumbers addresses"
run_capture s1 dirconnctl sync --full --config "$work/a.conf" --no-progress
check_eq "the sync to a single-email provider exits 0" 0 "$s1_rc"
check_eq "the provider gets the primary email only" "work:$U*" "$(emails "$U")"
check_contains "the report says the aliases are not sent" "$s1_out$s1_err" \
	'mapping to emails[type eq "other"].value is not sent when emails[type eq "work"].value has a value: the cloud takes one emails value ([cloud] single_valued)'
check_contains "the report names the user and the alias that is not sent" "$(lower "$s1_out$s1_err")" \
	"$(lower "For $U_DN, the email addresses at@$D are not sent: the cloud takes one emails value ([cloud] single_valued), the primary.")"
finish
