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
    check_status "$4" "$1"
    check_jq "$4: SCIM error body" urn:ietf:params:scim:api:messages:2.0:Error '.schemas[0]'
    check_jq "$4: scimType" "$2" '.scimType // "none"'
    check_jq "$4: detail names $3" true ".detail|contains(\"$3\")"
}
usage_error() { # WHAT DETAIL ARGS...
    local what=$1 detail=$2 rc=0
    shift 2
    "$CLOUD_BIN" --listen 127.0.0.1:0 --db "$T/usage.db" --admin-token-file "$T/admin.token" \
        --insecure-http "$@" 2>"$T/usage.err" || rc=$?
    check_eq "$what: exit status" 2 "$rc"
    if grep -q -- "$detail" "$T/usage.err"; then ok "$what: message"; else not_ok "$what: message $(head -1 "$T/usage.err")"; fi
    cat "$T/usage.err" >> "$T/cloud.log" # finish looks for sanitizer reports there
}
patch_user() { api PATCH "$SCIM/Users/$1" "{$PATCH_SCHEMA,\"Operations\":[$2]}" "${@:3}"; }
patch_group() { api PATCH "$SCIM/Groups/$1" "{$PATCH_SCHEMA,\"Operations\":[$2]}" "${@:3}"; }

# ---- --filter-eq-only: eq comparisons joined by and; the ServiceProviderConfig is unchanged
cloud_start --filter-eq-only
mkuser ann '"emails":[{"value":"ann@example.com","type":"work"}]'; ANN=$ID
mkuser ben; BEN=$ID
api GET "$SCIM/ServiceProviderConfig"
check_jq "--filter-eq-only: ServiceProviderConfig unchanged" "true,1000" \
    '[.filter.supported, .filter.maxResults]|map(tostring)|join(",")'
eq_ok() {
    api GET "$SCIM/Users" "" -G --data-urlencode "filter=$1"
    check_status "eq filter $1" 200
    check_jq "eq filter $1" "$2" '[.Resources[].userName]|sort|join(",")'
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
check_jq "--filter-eq-only: .search with eq" 1 '.totalResults'
patch_user "$ANN" '{"op":"replace","path":"emails[type ne \"home\"].value","value":"a2@example.com"}'
refused 400 invalidFilter "'ne'" "--filter-eq-only: a PATCH path filter"
patch_user "$ANN" '{"op":"replace","path":"emails[type eq \"work\"].value","value":"a2@example.com"}'
check_status "--filter-eq-only: a PATCH path filter with eq" 200
check_jq "--filter-eq-only: the eq path filter applied" a2@example.com '.emails[0].value'
cloud_stop

# ---- --no-search: POST .search is 501 (as /Me and the root /.search always are)
cloud_start --no-search
api POST "$SCIM/Users/.search" "{$SEARCH_SCHEMA,\"filter\":\"userName eq \\\"ann@example.com\\\"\"}"
refused 501 none "/Users/.search is not supported" "--no-search: /Users/.search"
api POST "$SCIM/Groups/.search" "{$SEARCH_SCHEMA}"
refused 501 none "/Groups/.search is not supported" "--no-search: /Groups/.search"
api POST "$SCIM/.search" "{$SEARCH_SCHEMA}"
check_status "--no-search: the root /.search" 501
api GET "$SCIM/Users" "" -G --data-urlencode 'filter=userName eq "ann@example.com"'
check_jq "--no-search: a GET with a filter still works" 1 '.totalResults'
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
check_status "--single-value: one value of each" 201
api PUT "$SCIM/Users/$CARA" "{$USER_SCHEMA,\"userName\":\"cara@example.com\",\"roles\":[{\"value\":\"a\"},{\"value\":\"b\"}]}"
refused 400 invalidValue "'roles'" "--single-value: PUT with two roles"
patch_user "$CARA" '{"op":"add","path":"emails","value":[{"value":"c2@example.com","type":"home"}]}'
refused 400 invalidValue "'emails'" "--single-value: PATCH add of a second email"
patch_user "$CARA" '{"op":"add","path":"phoneNumbers[type eq \"mobile\"].value","value":"+1 555 0199"}'
refused 400 invalidValue "'phoneNumbers'" "--single-value: PATCH add by a filter that creates a second value"
patch_user "$CARA" '{"op":"replace","path":"emails","value":[{"value":"c3@example.com","type":"work"}]}'
check_status "--single-value: PATCH replace of the one email" 200
check_jq "--single-value: the email replaced" c3@example.com '[.emails[].value]|join(",")'
api POST "$SCIM/Bulk" "{$BULK_SCHEMA,\"Operations\":[{\"method\":\"POST\",\"path\":\"/Users\",\"bulkId\":\"d\",\"data\":{$USER_SCHEMA,\"userName\":\"dora@example.com\",\"emails\":[{\"value\":\"a@example.com\"},{\"value\":\"b@example.com\"}]}}]}"
check_jq "--single-value: a Bulk POST with two emails" "400,invalidValue" \
    '[.Operations[0].status, .Operations[0].response.scimType]|join(",")'
api POST "$SCIM/Groups" "{$GROUP_SCHEMA,\"displayName\":\"Pair\",\"members\":[{\"value\":\"$ANN\"},{\"value\":\"$BEN\"}]}"
check_status "--single-value: groups keep any number of members" 201
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
check_jq "--group-patch-limited: refused PATCHes changed nothing" 'Limited,1,W/"1"' \
    '[.displayName, (.members|length|tostring), .meta.version]|join(",")'
patch_group "$LIM" '{"op":"add","path":"displayName","value":"Renamed"}'
check_status "--group-patch-limited: add of displayName" 200
patch_group "$LIM" "{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"$BEN\"}]}"
check_jq "--group-patch-limited: add of a member" 2 '.members|length'
patch_group "$LIM" "{\"op\":\"remove\",\"path\":\"members[value eq \\\"$ANN\\\"]\"}"
check_jq "--group-patch-limited: remove of a member by filter" "$BEN" '[.members[].value]|join(",")'
patch_group "$LIM" "{\"op\":\"remove\",\"path\":\"members\",\"value\":[{\"value\":\"$BEN\"}]}"
check_jq "--group-patch-limited: remove of a member by value list" none '.members // "none"'
patch_user "$ANN" '{"op":"replace","path":"title","value":"Lead"}'
check_status "--group-patch-limited: a User PATCH may replace" 200
cloud_stop

# ---- --group-patch-no-content: a Group PATCH that succeeds is 204 with its ETag (RFC 7644 3.5.2)
cloud_start --group-patch-no-content
api POST "$SCIM/Groups" "{$GROUP_SCHEMA,\"displayName\":\"Quiet\",\"members\":[{\"value\":\"$ANN\"}]}"
QUIET=$(printf '%s' "$BODY" | jq -r .id)
patch_group "$QUIET" "{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"$BEN\"}]}"
check_status "--group-patch-no-content: a member added" 204
check "--group-patch-no-content: no body" test -z "$BODY"
check "--group-patch-no-content: the ETag of the new version" test "$(header ETag)" = 'W/"2"'
patch_group "$QUIET" '{"op":"replace","path":"displayName","value":"Quieter"}'
check_status "--group-patch-no-content: a replace" 204
api GET "$SCIM/Groups/$QUIET"
check_jq "--group-patch-no-content: both PATCHes applied" 'Quieter,2,W/"3"' \
    '[.displayName, (.members|length|tostring), .meta.version]|join(",")'
patch_group "$QUIET" '{"op":"add","path":"members","value":[{"value":"no-such-id"}]}'
check_status "--group-patch-no-content: a refused PATCH keeps its error" 400
patch_user "$ANN" '{"op":"replace","path":"title","value":"Lead"}'
check_status "--group-patch-no-content: a User PATCH is answered with the user" 200
check_jq "--group-patch-no-content: the user in the answer" Lead '.title'
cloud_stop

# ---- --etag-required: PUT, PATCH and DELETE need If-Match (428 Precondition Required, RFC 6585)
cloud_start --etag-required
api GET "$SCIM/ServiceProviderConfig"
check_jq "--etag-required: etag.supported" true '.etag.supported'
mkuser eve; EVE=$ID
check_status "--etag-required: POST needs no If-Match" 201
api PUT "$SCIM/Users/$EVE" "{$USER_SCHEMA,\"userName\":\"eve@example.com\",\"title\":\"X\"}"
refused 428 none "If-Match is required" "--etag-required: PUT without If-Match"
patch_user "$EVE" '{"op":"replace","path":"title","value":"X"}'
refused 428 none "If-Match is required" "--etag-required: PATCH without If-Match"
api DELETE "$SCIM/Users/$EVE"
refused 428 none "If-Match is required" "--etag-required: DELETE without If-Match"
patch_group "$LIM" '{"op":"add","path":"displayName","value":"X"}'
refused 428 none "If-Match is required" "--etag-required: Group PATCH without If-Match"
api GET "$SCIM/Users/$EVE"
check_jq "--etag-required: the refused writes changed nothing" 'T,W/"1"' '[.title, .meta.version]|join(",")'
patch_user "$EVE" '{"op":"replace","path":"title","value":"X"}' -H 'If-Match: W/"9"'
check_status "--etag-required: PATCH with a stale If-Match" 412
patch_user "$EVE" '{"op":"replace","path":"title","value":"X"}' -H 'If-Match: W/"1"'
check_status "--etag-required: PATCH with the current If-Match" 200
api PUT "$SCIM/Users/$EVE" "{$USER_SCHEMA,\"userName\":\"eve@example.com\",\"title\":\"Y\"}" -H 'If-Match: W/"2"'
check_status "--etag-required: PUT with the current If-Match" 200
api POST "$SCIM/Bulk" "{$BULK_SCHEMA,\"Operations\":[
 {\"method\":\"PATCH\",\"path\":\"/Users/$EVE\",\"data\":{$PATCH_SCHEMA,\"Operations\":[{\"op\":\"replace\",\"path\":\"title\",\"value\":\"Z\"}]}},
 {\"method\":\"PATCH\",\"path\":\"/Users/$EVE\",\"version\":\"W/\\\"3\\\"\",\"data\":{$PATCH_SCHEMA,\"Operations\":[{\"op\":\"replace\",\"path\":\"title\",\"value\":\"Z\"}]}}]}"
check_jq "--etag-required: Bulk operations need a version" "428,200" '[.Operations[].status]|join(",")'
api DELETE "$SCIM/Users/$EVE" "" -H 'If-Match: *'
check_status "--etag-required: DELETE with If-Match: *" 204
cloud_stop
usage_error "--etag-required with --no-etag" "--etag-required needs ETags" --etag-required --no-etag

# ---- --profile aws-iam-identity-center (alias aws): the published limits of AWS IAM Identity
# Center's SCIM service, on a fresh database
rm -f "$T"/cloud.db*
cloud_start --profile aws
check "--profile: logged" grep -q "provider profile aws-iam-identity-center" "$T/cloud.log"
api GET "$SCIM/ServiceProviderConfig"
check_jq "--profile aws: ServiceProviderConfig" \
    "true,false,true,false" '[.patch.supported, .bulk.supported, .filter.supported, .etag.supported]|map(tostring)|join(",")'
api GET "$SCIM/ResourceTypes"
check_jq "--profile aws: only User and Group" "User,Group" '[.Resources[].name]|join(",")'
check_jq "--profile aws: the enterprise extension stays" "$ENT" '.Resources[0].schemaExtensions[0].schema'
api GET "$SCIM/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"
check_jq "--profile aws: no password, ims, photos, entitlements, x509Certificates" \
    "userName,name,displayName,nickName,profileUrl,title,userType,preferredLanguage,locale,timezone,active,emails,phoneNumbers,addresses,groups,roles" \
    '[.attributes[].name]|join(",")'
check_jq "--profile aws: no display sub-attributes" \
    'name:formatted/familyName/givenName/middleName/honorificPrefix/honorificSuffix,emails:value/type/primary,phoneNumbers:value/type/primary,addresses:formatted/streetAddress/locality/region/postalCode/country/type/primary,groups:value/$ref/type,roles:value/type/primary' \
    '[.attributes[]|select(.subAttributes)|.name + ":" + ([.subAttributes[].name]|join("/"))]|join(",")'
api GET "$SCIM/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group"
check_jq "--profile aws: no members.display" 'value,$ref,type' \
    '[.attributes[]|select(.name=="members")|.subAttributes[].name]|join(",")'
api GET "$SCIM/Schemas/$ENT"
check_jq "--profile aws: no manager.displayName" 'value,$ref' \
    '[.attributes[]|select(.name=="manager")|.subAttributes[].name]|join(",")'
api GET "$SCIM/Schemas"
check_jq "--profile aws: /Schemas" "User,EnterpriseUser,Group" '[.Resources[].name]|join(",")'
# what is not declared is unknown, as with --no-enterprise-extension: refused, never dropped
aws_bad() { # WHAT EXTRA-MEMBERS DETAIL
    api POST "$SCIM/Users" "{$USER_SCHEMA,\"userName\":\"bad@example.com\",$2}"
    refused 400 invalidSyntax "$3" "--profile aws: a user with $1"
}
aws_bad password '"password":"s3cret!"' "'password'"
aws_bad ims '"ims":[{"value":"a"}]' "'ims'"
aws_bad photos '"photos":[{"value":"https://example.com/a.jpg"}]' "'photos'"
aws_bad entitlements '"entitlements":[{"value":"a"}]' "'entitlements'"
aws_bad x509Certificates '"x509Certificates":[{"value":"YQ=="}]' "'x509Certificates'"
aws_bad emails.display '"emails":[{"value":"bad@example.com","display":"Bad"}]' "display"
aws_bad roles.display '"roles":[{"value":"a","display":"A"}]' "display"
api POST "$SCIM/Users" "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\",\"$ENT\"],\"userName\":\"bad@example.com\",\"$ENT\":{\"manager\":{\"value\":\"x\",\"displayName\":\"X\"}}}"
refused 400 invalidSyntax "displayName" "--profile aws: a user with manager.displayName"
mkuser fay '"emails":[{"value":"fay@example.com","type":"work","primary":true}],"phoneNumbers":[{"value":"+1 555 0100","type":"work"}],"addresses":[{"locality":"Aachen","type":"work"}],"roles":[{"value":"admin"}]'
FAY=$ID
check_status "--profile aws: a user with what AWS supports" 201
check_eq "--profile aws: no ETag" "" "$(header ETag)"
check_jq "--profile aws: no meta.version" none '.meta.version // "none"'
mkuser gus; GUS=$ID
api POST "$SCIM/Groups" "{$GROUP_SCHEMA,\"displayName\":\"Aws\",\"members\":[{\"value\":\"$FAY\",\"display\":\"Fay\"}]}"
refused 400 invalidSyntax "display" "--profile aws: a group with members.display"
api POST "$SCIM/Groups" "{$GROUP_SCHEMA,\"displayName\":\"Aws\",\"members\":[{\"value\":\"$FAY\"}]}"
check_status "--profile aws: a group" 201
AWSG=$(printf '%s' "$BODY" | jq -r .id)
api GET "$SCIM/Users/$FAY"
check_jq "--profile aws: groups without display" "$AWSG,none" \
    '[.groups[0].value, (.groups[0].display // "none")]|join(",")'
patch_user "$FAY" '{"op":"add","path":"photos","value":[{"value":"https://example.com/a.jpg"}]}'
refused 400 invalidPath "photos" "--profile aws: a PATCH path to photos"
patch_user "$FAY" '{"op":"replace","path":"emails[type eq \"work\"].display","value":"F"}'
refused 400 invalidPath "display" "--profile aws: a PATCH path to emails.display"
patch_user "$FAY" '{"op":"add","path":"emails","value":[{"value":"f2@example.com"}]}'
refused 400 invalidValue "'emails'" "--profile aws: a second email"
patch_user "$FAY" '{"op":"replace","path":"title","value":"Lead"}'
check_status "--profile aws: a User PATCH replace" 200
api GET "$SCIM/Users" "" -G --data-urlencode 'filter=ims eq "a"'
refused 400 invalidFilter "ims" "--profile aws: a filter on ims"
api GET "$SCIM/Users" "" -G --data-urlencode 'filter=userName sw "f"'
refused 400 invalidFilter "'sw'" "--profile aws: a filter with sw"
api GET "$SCIM/Users" "" -G --data-urlencode 'filter=userName eq "fay@example.com" and active eq true'
check_jq "--profile aws: a filter of eq joined by and" 1 '.totalResults'
api GET "$SCIM/Users/$FAY?attributes=photos"
check_status "--profile aws: attributes=photos" 400
api POST "$SCIM/Users/.search" "{$SEARCH_SCHEMA}"
check_status "--profile aws: no .search" 501
api POST "$SCIM/Bulk" "{$BULK_SCHEMA,\"Operations\":[]}"
check_status "--profile aws: no /Bulk" 501
api GET "$SCIM/Me"
check_status "--profile aws: no /Me" 501
api GET "$SCIM/Contacts"
check_status "--profile aws: no /Contacts" 404
patch_group "$AWSG" "{\"op\":\"replace\",\"path\":\"members\",\"value\":[{\"value\":\"$GUS\"}]}"
refused 400 invalidSyntax "replace is not supported" "--profile aws: Group PATCH replace"
patch_group "$AWSG" '{"op":"remove","path":"members"}'
refused 400 invalidSyntax "removing every value" "--profile aws: Group PATCH remove-all"
patch_group "$AWSG" "{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"$GUS\"}]}"
check_status "--profile aws: Group PATCH add answers 204 (PatchGroup)" 204
check_eq "--profile aws: no ETag on the 204" "" "$(header ETag)"
api GET "$SCIM/Groups/$AWSG"
check_jq "--profile aws: Group PATCH add applied" 2 '.members|length'
patch_user "$FAY" '{"op":"replace","path":"title","value":"Chief"}' -H 'If-Match: W/"99"'
check_status "--profile aws: If-Match ignored (no ETags)" 200
cloud_stop
usage_error "an unknown profile" "unknown profile; known: aws-iam-identity-center (alias aws)" --profile gcp
usage_error "--profile twice" "--profile given twice" --profile aws --profile aws-iam-identity-center
usage_error "--etag-required with --profile aws" "excludes --no-etag" --profile aws --etag-required

finish
