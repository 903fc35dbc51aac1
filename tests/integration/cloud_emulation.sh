# Provider emulation options of dirconn-cloud that limit what a request may use (filters,
# .search, values, Group PATCH, If-Match, the AWS IAM Identity Center profile): each is started
# on its own and checked with curl for the status and scimType the docs promise
# (docs/cloud-api.md "Provider emulation").
. "$(dirname "$0")/cloud_lib.sh"
cloud_setup

ENT=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User
SEARCH_SCHEMA='"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]'
# mkuser NAME [EXTRA JSON MEMBERS]: creates NAME@example.com; sets ID
mkuser() {
    api POST "$SCIM/Users" "{$USER_SCHEMA,\"userName\":\"$1@example.com\",\"externalId\":\"x-$1\",\"title\":\"T\",\"active\":true${2:+,$2}}"
    ID=$(printf '%s' "$BODY" | jq -r '.id // empty')
}
# refused WANT_STATUS WANT_SCIMTYPE DETAIL_PART WHAT: checks the last answer
refused() {
    check_status "$1" "$4"
    check_jq '.schemas[0]' urn:ietf:params:scim:api:messages:2.0:Error "$4: SCIM error body"
    check_jq '.scimType // "none"' "$2" "$4: scimType"
    check_jq ".detail|contains(\"$3\")" true "$4: detail names $3"
}
patch_user() { api PATCH "$SCIM/Users/$1" "{$PATCH_SCHEMA,\"Operations\":[$2]}" "${@:3}"; }
patch_group() { api PATCH "$SCIM/Groups/$1" "{$PATCH_SCHEMA,\"Operations\":[$2]}" "${@:3}"; }

# ---- --filter-eq-only: eq comparisons joined by and; the ServiceProviderConfig is unchanged
cloud_start --filter-eq-only
mkuser ann '"emails":[{"value":"ann@example.com","type":"work"}]'; ANN=$ID
mkuser ben; BEN=$ID
api GET "$SCIM/ServiceProviderConfig"
check_jq '[.filter.supported, .filter.maxResults]|map(tostring)|join(",")' "true,1000" \
    "--filter-eq-only: ServiceProviderConfig unchanged"
eq_ok() {
    api GET "$SCIM/Users" "" -G --data-urlencode "filter=$1"
    check_status 200 "eq filter $1"
    check_jq '[.Resources[].userName]|sort|join(",")' "$2" "eq filter $1"
}
eq_ok 'userName eq "ANN@example.com"' ann@example.com
eq_ok 'externalId eq "x-ben" and active eq true' ben@example.com
eq_ok '(title eq "T") and (userName eq "ben@example.com")' ben@example.com
eq_ok 'emails.value eq "ann@example.com"' ann@example.com
not_eq() {
    api GET "$SCIM/Users" "" -G --data-urlencode "filter=$1"
    refused 400 invalidFilter "$2" "--filter-eq-only: $1"
}
not_eq 'userName ne "a"' "'ne'"
not_eq 'userName co "a"' "'co'"
not_eq 'userName sw "a"' "'sw'"
not_eq 'userName ew "a"' "'ew'"
not_eq 'title pr' "'pr'"
not_eq 'meta.lastModified gt "2000-01-01T00:00:00Z"' "'gt'"
not_eq 'meta.lastModified ge "2000-01-01T00:00:00Z"' "'ge'"
not_eq 'meta.lastModified lt "2000-01-01T00:00:00Z"' "'lt'"
not_eq 'meta.lastModified le "2000-01-01T00:00:00Z"' "'le'"
not_eq 'userName eq "a" or userName eq "b"' "'or'"
not_eq 'not (userName eq "a")' "'not'"
not_eq 'emails[type eq "work"]' "emails[...]"
api POST "$SCIM/Users/.search" "{$SEARCH_SCHEMA,\"filter\":\"userName sw \\\"a\\\"\"}"
refused 400 invalidFilter "'sw'" "--filter-eq-only: .search"
api POST "$SCIM/Users/.search" "{$SEARCH_SCHEMA,\"filter\":\"userName eq \\\"ann@example.com\\\"\"}"
check_jq '.totalResults' 1 "--filter-eq-only: .search with eq"
patch_user "$ANN" '{"op":"replace","path":"emails[type ne \"home\"].value","value":"a2@example.com"}'
refused 400 invalidFilter "'ne'" "--filter-eq-only: a PATCH path filter"
patch_user "$ANN" '{"op":"replace","path":"emails[type eq \"work\"].value","value":"a2@example.com"}'
check_status 200 "--filter-eq-only: a PATCH path filter with eq"
check_jq '.emails[0].value' a2@example.com "--filter-eq-only: the eq path filter applied"
cloud_stop

# ---- --no-search: POST .search is 501 (as /Me and the root /.search always are)
cloud_start --no-search
api POST "$SCIM/Users/.search" "{$SEARCH_SCHEMA,\"filter\":\"userName eq \\\"ann@example.com\\\"\"}"
refused 501 none "/Users/.search is not supported" "--no-search: /Users/.search"
api POST "$SCIM/Groups/.search" "{$SEARCH_SCHEMA}"
refused 501 none "/Groups/.search is not supported" "--no-search: /Groups/.search"
api POST "$SCIM/.search" "{$SEARCH_SCHEMA}"
check_status 501 "--no-search: the root /.search"
api GET "$SCIM/Users" "" -G --data-urlencode 'filter=userName eq "ann@example.com"'
check_jq '.totalResults' 1 "--no-search: a GET with a filter still works"
cloud_stop

# ---- --single-value: at most one value per multi-valued User attribute
cloud_start --single-value
two() { # ATTR TWO-VALUES-JSON
    api POST "$SCIM/Users" "{$USER_SCHEMA,\"userName\":\"two-$1@example.com\",\"$1\":$2}"
    refused 400 invalidValue "'$1'" "--single-value: POST with two $1"
}
two emails '[{"value":"a@example.com"},{"value":"b@example.com"}]'
two phoneNumbers '[{"value":"+1 555 0100"},{"value":"+1 555 0101"}]'
two addresses '[{"locality":"Aachen"},{"locality":"Bonn"}]'
two ims '[{"value":"a"},{"value":"b"}]'
two photos '[{"value":"https://example.com/a.jpg"},{"value":"https://example.com/b.jpg"}]'
two entitlements '[{"value":"a"},{"value":"b"}]'
two roles '[{"value":"a"},{"value":"b"}]'
two x509Certificates '[{"value":"YQ=="},{"value":"Yg=="}]'
ONE='"emails":[{"value":"cara@example.com","type":"work"}],"phoneNumbers":[{"value":"+1 555 0100"}],"addresses":[{"locality":"Aachen"}],"ims":[{"value":"a"}],"photos":[{"value":"https://example.com/a.jpg"}],"entitlements":[{"value":"a"}],"roles":[{"value":"a"}],"x509Certificates":[{"value":"YQ=="}]'
mkuser cara "$ONE"; CARA=$ID
check_status 201 "--single-value: one value of each"
api PUT "$SCIM/Users/$CARA" "{$USER_SCHEMA,\"userName\":\"cara@example.com\",\"roles\":[{\"value\":\"a\"},{\"value\":\"b\"}]}"
refused 400 invalidValue "'roles'" "--single-value: PUT with two roles"
patch_user "$CARA" '{"op":"add","path":"emails","value":[{"value":"c2@example.com","type":"home"}]}'
refused 400 invalidValue "'emails'" "--single-value: PATCH add of a second email"
patch_user "$CARA" '{"op":"add","path":"phoneNumbers[type eq \"mobile\"].value","value":"+1 555 0199"}'
refused 400 invalidValue "'phoneNumbers'" "--single-value: PATCH add by a filter that creates a second value"
patch_user "$CARA" '{"op":"replace","path":"emails","value":[{"value":"c3@example.com","type":"work"}]}'
check_status 200 "--single-value: PATCH replace of the one email"
check_jq '[.emails[].value]|join(",")' c3@example.com "--single-value: the email replaced"
api POST "$SCIM/Bulk" "{$BULK_SCHEMA,\"Operations\":[{\"method\":\"POST\",\"path\":\"/Users\",\"bulkId\":\"d\",\"data\":{$USER_SCHEMA,\"userName\":\"dora@example.com\",\"emails\":[{\"value\":\"a@example.com\"},{\"value\":\"b@example.com\"}]}}]}"
check_jq '[.Operations[0].status, .Operations[0].response.scimType]|join(",")' "400,invalidValue" \
    "--single-value: a Bulk POST with two emails"
api POST "$SCIM/Groups" "{$GROUP_SCHEMA,\"displayName\":\"Pair\",\"members\":[{\"value\":\"$ANN\"},{\"value\":\"$BEN\"}]}"
check_status 201 "--single-value: groups keep any number of members"
cloud_stop

# ---- --group-patch-limited: Group PATCH without replace and without remove-all
cloud_start --group-patch-limited
api POST "$SCIM/Groups" "{$GROUP_SCHEMA,\"displayName\":\"Limited\",\"members\":[{\"value\":\"$ANN\"}]}"
LIM=$(printf '%s' "$BODY" | jq -r .id)
patch_group "$LIM" '{"op":"replace","path":"displayName","value":"Renamed"}'
refused 400 invalidSyntax "replace is not supported" "--group-patch-limited: replace with a path"
patch_group "$LIM" '{"op":"replace","value":{"displayName":"Renamed"}}'
refused 400 invalidSyntax "replace is not supported" "--group-patch-limited: replace without a path"
patch_group "$LIM" "{\"op\":\"replace\",\"path\":\"members\",\"value\":[{\"value\":\"$BEN\"}]}"
refused 400 invalidSyntax "replace is not supported" "--group-patch-limited: replace of members"
patch_group "$LIM" '{"op":"remove","path":"members"}'
refused 400 invalidSyntax "removing every value of 'members'" "--group-patch-limited: remove-all"
api GET "$SCIM/Groups/$LIM"
check_jq '[.displayName, (.members|length|tostring), .meta.version]|join(",")' 'Limited,1,W/"1"' \
    "--group-patch-limited: refused PATCHes changed nothing"
patch_group "$LIM" '{"op":"add","path":"displayName","value":"Renamed"}'
check_status 200 "--group-patch-limited: add of displayName"
patch_group "$LIM" "{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"$BEN\"}]}"
check_jq '.members|length' 2 "--group-patch-limited: add of a member"
patch_group "$LIM" "{\"op\":\"remove\",\"path\":\"members[value eq \\\"$ANN\\\"]\"}"
check_jq '[.members[].value]|join(",")' "$BEN" "--group-patch-limited: remove of a member by filter"
patch_group "$LIM" "{\"op\":\"remove\",\"path\":\"members\",\"value\":[{\"value\":\"$BEN\"}]}"
check_jq '.members // "none"' none "--group-patch-limited: remove of a member by value list"
patch_user "$ANN" '{"op":"replace","path":"title","value":"Lead"}'
check_status 200 "--group-patch-limited: a User PATCH may replace"
cloud_stop

# ---- --etag-required: PUT, PATCH and DELETE need If-Match (428 Precondition Required, RFC 6585)
cloud_start --etag-required
api GET "$SCIM/ServiceProviderConfig"
check_jq '.etag.supported' true "--etag-required: etag.supported"
mkuser eve; EVE=$ID
check_status 201 "--etag-required: POST needs no If-Match"
api PUT "$SCIM/Users/$EVE" "{$USER_SCHEMA,\"userName\":\"eve@example.com\",\"title\":\"X\"}"
refused 428 none "If-Match is required" "--etag-required: PUT without If-Match"
patch_user "$EVE" '{"op":"replace","path":"title","value":"X"}'
refused 428 none "If-Match is required" "--etag-required: PATCH without If-Match"
api DELETE "$SCIM/Users/$EVE"
refused 428 none "If-Match is required" "--etag-required: DELETE without If-Match"
patch_group "$LIM" '{"op":"add","path":"displayName","value":"X"}'
refused 428 none "If-Match is required" "--etag-required: Group PATCH without If-Match"
api GET "$SCIM/Users/$EVE"
check_jq '[.title, .meta.version]|join(",")' 'T,W/"1"' "--etag-required: the refused writes changed nothing"
patch_user "$EVE" '{"op":"replace","path":"title","value":"X"}' -H 'If-Match: W/"9"'
check_status 412 "--etag-required: PATCH with a stale If-Match"
patch_user "$EVE" '{"op":"replace","path":"title","value":"X"}' -H 'If-Match: W/"1"'
check_status 200 "--etag-required: PATCH with the current If-Match"
api PUT "$SCIM/Users/$EVE" "{$USER_SCHEMA,\"userName\":\"eve@example.com\",\"title\":\"Y\"}" -H 'If-Match: W/"2"'
check_status 200 "--etag-required: PUT with the current If-Match"
api POST "$SCIM/Bulk" "{$BULK_SCHEMA,\"Operations\":[
 {\"method\":\"PATCH\",\"path\":\"/Users/$EVE\",\"data\":{$PATCH_SCHEMA,\"Operations\":[{\"op\":\"replace\",\"path\":\"title\",\"value\":\"Z\"}]}},
 {\"method\":\"PATCH\",\"path\":\"/Users/$EVE\",\"version\":\"W/\\\"3\\\"\",\"data\":{$PATCH_SCHEMA,\"Operations\":[{\"op\":\"replace\",\"path\":\"title\",\"value\":\"Z\"}]}}]}"
check_jq '[.Operations[].status]|join(",")' "428,200" "--etag-required: Bulk operations need a version"
api DELETE "$SCIM/Users/$EVE" "" -H 'If-Match: *'
check_status 204 "--etag-required: DELETE with If-Match: *"
cloud_stop
rc=0
"$CLOUD_BIN" --listen 127.0.0.1:0 --db "$T/usage.db" --admin-token-file "$T/admin.token" \
    --insecure-http --etag-required --no-etag 2>"$T/usage.err" || rc=$?
check_eq "$rc" 2 "--etag-required with --no-etag: usage error"
grep -q -- "--etag-required needs ETags" "$T/usage.err" && pass || failm "--etag-required with --no-etag: message"
cat "$T/usage.err" >> "$T/cloud.log" # finish looks for sanitizer reports there

finish
