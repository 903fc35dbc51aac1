# SCIM conformance of dirconn-cloud over HTTPS: CRUD, filters, paging, attribute
# selection, PATCH paths, ETags, Bulk, discovery and bad input.
. "$(dirname "$0")/cloud_lib.sh"
cloud_setup
cloud_start

mkuser() { # userName given family ext title active
    api POST "$SCIM/Users" "{$USER_SCHEMA,\"userName\":\"$1\",\"externalId\":\"$4\",\"name\":{\"givenName\":\"$2\",\"familyName\":\"$3\"},\"displayName\":\"$2 $3\",\"title\":\"$5\",\"active\":$6,\"emails\":[{\"value\":\"$1\",\"type\":\"work\",\"primary\":true}]}"
}
mkuser alice@example.com Alice Archer ext-1 Engineer true
check_status 201 "create alice"
ALICE=$(printf '%s' "$BODY" | jq -r .id)
check_jq '.meta.version' 'W/"1"' "alice version"
check_jq '.meta.resourceType' 'User' "alice resourceType"
check_eq "$(header Location)" "$SCIM/Users/$ALICE" "Location header"
check_eq "$(header ETag)" 'W/"1"' "ETag header"
check_eq "$(header Content-Type)" "application/scim+json" "content type"
mkuser bob@example.com Bob Baker ext-2 Manager true;      BOB=$(printf '%s' "$BODY" | jq -r .id)
mkuser carol@example.org Carol Cole ext-3 Engineer false; CAROL=$(printf '%s' "$BODY" | jq -r .id)
mkuser dave@example.org Dave Dunn ext-4 Director true;    DAVE=$(printf '%s' "$BODY" | jq -r .id)

# uniqueness is case-insensitive
mkuser ALICE@example.COM A B ext-9 X true
check_status 409 "duplicate userName"
check_jq '.scimType' uniqueness "duplicate scimType"

# GET one, attributes / excludedAttributes
api GET "$SCIM/Users/$ALICE"
check_status 200 "get alice"
check_jq '.name.givenName' Alice "get alice name"
api GET "$SCIM/Users/$ALICE?attributes=userName,name.familyName"
check_jq '[.userName, .name.familyName, (.name.givenName // "none"), (.emails // "none"), .id]|join(",")' "alice@example.com,Archer,none,none,$ALICE" "attributes="
api GET "$SCIM/Users/$ALICE?excludedAttributes=emails,meta"
check_jq '[(.emails // "none"), (.meta // "none"), .userName]|join(",")' "none,none,alice@example.com" "excludedAttributes="
api GET "$SCIM/Users/$ALICE?attributes=nosuch"
check_status 400 "unknown attribute in attributes="
api GET "$SCIM/Users/00000000-0000-0000-0000-000000000000"
check_status 404 "missing user"
check_jq '.schemas[0]' urn:ietf:params:scim:api:messages:2.0:Error "404 is a SCIM error"
# If-None-Match on GET
api GET "$SCIM/Users/$ALICE" "" -H 'If-None-Match: W/"1"'
check_status 304 "If-None-Match"

# filters: every operator
f() { api GET "$SCIM/Users" "" -G --data-urlencode "filter=$1"; check_status 200 "filter $1"; check_jq '[.Resources[].userName]|sort|join(",")' "$2" "filter $1"; }
f 'userName eq "ALICE@example.com"' alice@example.com
f 'userName ne "alice@example.com"' bob@example.com,carol@example.org,dave@example.org
f 'userName co "example.org"' carol@example.org,dave@example.org
f 'userName sw "B"' bob@example.com
f 'userName ew ".COM"' alice@example.com,bob@example.com
f 'title pr' alice@example.com,bob@example.com,carol@example.org,dave@example.org
f 'nickName pr' ''
f 'externalId eq "ext-3"' carol@example.org
f 'externalId eq "EXT-3"' ''
f 'emails.value eq "dave@example.org"' dave@example.org
f 'emails eq "DAVE@example.ORG" and title eq "Director"' dave@example.org
f 'emails co "bob@"' bob@example.com
f 'emails[type eq "work" and value sw "carol"]' carol@example.org
f 'displayName eq "bob baker"' bob@example.com
f 'userName gt "bob@example.com"' carol@example.org,dave@example.org
f 'userName ge "bob@example.com"' bob@example.com,carol@example.org,dave@example.org
f 'userName lt "bob@example.com"' alice@example.com
f 'userName le "bob@example.com"' alice@example.com,bob@example.com
f 'active eq false' carol@example.org
f 'title eq "Engineer" and active eq true' alice@example.com
f 'title eq "Manager" or title eq "Director"' bob@example.com,dave@example.org
f 'not (title eq "Engineer")' bob@example.com,dave@example.org
f '(title eq "Engineer" or title eq "Manager") and not (userName sw "carol")' alice@example.com,bob@example.com
f 'meta.lastModified gt "2000-01-01T00:00:00Z"' alice@example.com,bob@example.com,carol@example.org,dave@example.org
f 'meta.lastModified lt "2000-01-01T00:00:00Z"' ''
f 'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob@example.com"' bob@example.com
bad_filter() { api GET "$SCIM/Users" "" -G --data-urlencode "filter=$1"; check_status 400 "bad filter $1"; check_jq .scimType invalidFilter "bad filter $1"; }
bad_filter 'userName eq'
bad_filter 'userName xx "a"'
bad_filter 'nosuch eq "a"'
bad_filter 'active gt true'
bad_filter 'userName eq "a" and'
bad_filter '(userName eq "a"'
bad_filter 'userName eq "unterminated'
bad_filter 'name eq "x"'
bad_filter "$(printf 'not (%.0s' $(seq 1 40))userName pr$(printf ')%.0s' $(seq 1 40))"
bad_filter "userName eq \"$(head -c 9000 /dev/zero | tr '\0' a)\""

# sorting
srt() { api GET "$SCIM/Users?$1"; check_status 200 "sort $1"; check_jq '[.Resources[].userName]|join(",")' "$2" "sort $1"; }
srt 'sortBy=userName&sortOrder=descending' dave@example.org,carol@example.org,bob@example.com,alice@example.com
srt 'sortBy=title' dave@example.org,alice@example.com,carol@example.org,bob@example.com
srt 'sortBy=emails&sortOrder=descending&count=2' dave@example.org,carol@example.org
srt 'sortBy=nickName&startIndex=2&count=2' bob@example.com,carol@example.org
srt 'sortBy=name.givenName&filter=active%20eq%20true' alice@example.com,bob@example.com,dave@example.org
api GET "$SCIM/Users?sortBy=bogus"; check_status 400 "sortBy unknown"
api GET "$SCIM/Users?sortBy=name"; check_status 400 "sortBy complex"
api GET "$SCIM/Users?sortBy=userName&sortOrder=up"; check_status 400 "sortOrder bad"

# paging
api GET "$SCIM/Users?startIndex=2&count=2"
check_jq '[.totalResults, .itemsPerPage, .startIndex, (.Resources|length)]|join(",")' 4,2,2,2 "paging"
api GET "$SCIM/Users" "" -G --data-urlencode 'filter=userName pr' --data-urlencode startIndex=4 --data-urlencode count=10
check_jq '[.totalResults, .itemsPerPage, .startIndex]|join(",")' 4,1,4 "filtered paging"
api GET "$SCIM/Users?count=0"
check_jq '[.totalResults, .itemsPerPage]|join(",")' 4,0 "count=0"
api GET "$SCIM/Users?count=abc"
check_status 400 "count not a number"

# POST .search
api POST "$SCIM/Users/.search" '{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"title eq \"Engineer\"","attributes":["userName"],"startIndex":1,"count":10}'
check_status 200 ".search"
check_jq '[.totalResults, (.Resources[0].name // "none")]|map(tostring)|join(",")' "2,none" ".search filter and attributes"
api POST "$SCIM/Users/.search" '{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":5}'
check_status 400 ".search with a bad filter type"
api POST "$SCIM/Users/.search" '{"filter":"userName pr"}'
check_status 400 ".search without schemas"

# PUT with If-Match, 412 on mismatch
api PUT "$SCIM/Users/$BOB" "{$USER_SCHEMA,\"userName\":\"bob@example.com\",\"title\":\"VP\",\"active\":true}" -H 'If-Match: W/"1"'
check_status 200 "PUT with matching If-Match"
check_jq '.meta.version' 'W/"2"' "version bumped"
check_jq '.name // "gone"' gone "PUT replaces"
api PUT "$SCIM/Users/$BOB" "{$USER_SCHEMA,\"userName\":\"bob@example.com\"}" -H 'If-Match: W/"1"'
check_status 412 "PUT with stale If-Match"
api PUT "$SCIM/Users/$BOB" "{$USER_SCHEMA,\"userName\":\"alice@example.com\"}"
check_status 409 "PUT into a taken userName"

# PATCH paths
p() { api PATCH "$SCIM/Users/$ALICE" "{$PATCH_SCHEMA,\"Operations\":[$1]}"; }
p '{"op":"replace","path":"name.givenName","value":"Alicia"}'
check_status 200 "patch name.givenName"; check_jq .name.givenName Alicia "patch name.givenName"
p '{"op":"add","path":"emails","value":[{"value":"a@home.test","type":"home"}]}'
check_jq '.emails|length' 2 "patch add emails"
p '{"op":"replace","path":"emails[type eq \"home\"].value","value":"alice@home.test"}'
check_jq '.emails[]|select(.type=="home")|.value' alice@home.test "patch valuePath.sub"
p '{"op":"remove","path":"emails[type eq \"home\"]"}'
check_jq '.emails|length' 1 "patch remove valuePath"
p '{"op":"replace","path":"emails[type eq \"other\"].value","value":"x@y"}'
check_status 400 "replace with no match"; check_jq .scimType noTarget "noTarget"
p '{"op":"add","path":"phoneNumbers[type eq \"mobile\"].value","value":"+1 555"}'
check_jq '.phoneNumbers[0].type + " " + .phoneNumbers[0].value' "mobile +1 555" "add creates filtered element"
p '{"op":"replace","value":{"title":"Staff Engineer","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"R&D"}}'
check_jq '.title' "Staff Engineer" "patch without path"
check_jq '.["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].department' "R&D" "patch extension attribute"
check_jq '.schemas|length' 2 "extension added to schemas"
# a path-less replace merges (RFC 7644 3.5.2.3): name keeps the sub-attributes the value does
# not name, the attributes it does not name are kept
p '{"op":"replace","value":{"name":{"familyName":"Archer-Smith"}}}'
check_status 200 "path-less replace of a complex attribute"
check_jq '[.name.givenName, .name.familyName, .title, (.emails|length|tostring), .["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].department]|join(",")' \
    "Alicia,Archer-Smith,Staff Engineer,1,R&D" "a path-less replace merges"
p '{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":{"value":"'$BOB'"}}'
check_jq '.["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].manager.value' "$BOB" "patch manager"
p '{"op":"remove","path":"title"}'
check_jq '.title // "gone"' gone "patch remove"
p '{"op":"Replace","path":"active","value":false}'
check_jq .active false "op name case-insensitive"
p '{"op":"remove","path":"userName"}'
check_status 400 "remove required"; check_jq .scimType mutability "remove required scimType"
p '{"op":"replace","path":"id","value":"x"}'
check_status 400 "patch readOnly"; check_jq .scimType mutability "patch readOnly scimType"
p '{"op":"replace","path":"active","value":"yes"}'
check_status 400 "patch wrong type"; check_jq .scimType invalidValue "patch wrong type scimType"
p '{"op":"replace","path":"emails[type eq]","value":"x"}'
check_status 400 "bad path"; check_jq .scimType invalidPath "bad path scimType"
p '{"op":"move","path":"title","value":"x"}'
check_status 400 "bad op"
api PATCH "$SCIM/Users/$ALICE" "{\"Operations\":[{\"op\":\"remove\",\"path\":\"title\"}]}"
check_status 400 "PatchOp without schemas"
api GET "$SCIM/Users/$ALICE"; V=$(printf '%s' "$BODY" | jq -r .meta.version)
api PATCH "$SCIM/Users/$ALICE" "{$PATCH_SCHEMA,\"Operations\":[{\"op\":\"replace\",\"path\":\"title\",\"value\":\"A\"}]}" -H 'If-Match: W/"1"'
check_status 412 "PATCH with stale If-Match"
api PATCH "$SCIM/Users/$ALICE" "{$PATCH_SCHEMA,\"Operations\":[{\"op\":\"replace\",\"path\":\"title\",\"value\":\"A\"}]}" -H "If-Match: $V"
check_status 200 "PATCH with current If-Match"
mkuser gina@example.com Gina Gray ext-5 Temp true; GINA=$(printf '%s' "$BODY" | jq -r .id)
api DELETE "$SCIM/Users/$GINA" "" -H 'If-Match: W/"7"'
check_status 412 "DELETE with a stale If-Match"
check_jq '.schemas[0]' urn:ietf:params:scim:api:messages:2.0:Error "412 is a SCIM error"
api DELETE "$SCIM/Users/$GINA" "" -H 'If-Match: W/"1"'
check_status 204 "DELETE with the current If-Match"

# Groups and members
api POST "$SCIM/Groups" "{$GROUP_SCHEMA,\"displayName\":\"Engineering\",\"members\":[{\"value\":\"$ALICE\"},{\"value\":\"$CAROL\"}]}"
check_status 201 "create group"
ENG=$(printf '%s' "$BODY" | jq -r .id)
check_jq '[.members[].type]|unique|join(",")' User "member types filled"
api GET "$SCIM/Users/$ALICE"
check_jq '.groups[0].value + " " + .groups[0].display' "$ENG Engineering" "user groups attribute"
gp() { api PATCH "$SCIM/Groups/$ENG" "{$PATCH_SCHEMA,\"Operations\":[$1]}"; }
gp '{"op":"add","path":"members","value":[{"value":"'$BOB'"}]}'
check_jq '.members|length' 3 "add member"
gp '{"op":"replace","path":"members","value":[{"value":"'$BOB'","type":"Group"}]}'
check_status 400 "member type must match, also for existing members"
gp '{"op":"remove","path":"members[value eq \"'$CAROL'\"]"}'
check_jq '[.members[].value]|sort|join(",")' "$(printf '%s\n' "$ALICE" "$BOB" | LC_ALL=C sort | paste -sd,)" "remove member by value filter"
gp '{"op":"remove","path":"members","value":[{"value":"'$BOB'"}]}'
check_jq '.members|length' 1 "remove member by value list"
gp '{"op":"add","path":"members","value":[{"value":"00000000-0000-0000-0000-000000000000"}]}'
check_status 400 "add nonexistent member"
api GET "$SCIM/Groups" "" -G --data-urlencode "filter=members[value eq \"$ALICE\"]"
check_jq '.totalResults' 1 "filter groups by member"
api POST "$SCIM/Groups" "{$GROUP_SCHEMA,\"displayName\":\"All\",\"members\":[{\"value\":\"$ENG\",\"type\":\"Group\"}]}"
check_status 201 "nested group"
ALL=$(printf '%s' "$BODY" | jq -r .id)
api DELETE "$SCIM/Users/$ALICE"
check_status 204 "delete alice"
# strict by default: DELETE does not cascade (RFC 7644 3.6 leaves it to the provider), so the
# group still lists the deleted user; --delete-cascades is checked below
api GET "$SCIM/Groups/$ENG"
check_jq '[.members[].value]|join(",")' "$ALICE" "a deleted user stays listed in its group"
check_jq '.meta.version' 'W/"4"' "the group is not changed by the deletion"
api GET "$SCIM/Users/$ALICE"
check_status 404 "deleted user gone"
api DELETE "$SCIM/Users/$ALICE"
check_status 404 "delete twice"

# Contacts
api POST "$SCIM/Contacts" '{"schemas":["urn:dirconn:params:scim:schemas:core:1.0:Contact"],"externalId":"c-1","displayName":"Facilities Desk","emails":[{"value":"desk@example.com"}]}'
check_status 201 "create contact"
api GET "$SCIM/Contacts" "" -G --data-urlencode 'filter=externalId eq "c-1"'
check_jq '.Resources[0].displayName' "Facilities Desk" "filter contacts"

# Bulk with bulkId cross references and failOnErrors
BULK="{$BULK_SCHEMA,\"Operations\":[
 {\"method\":\"POST\",\"path\":\"/Groups\",\"bulkId\":\"g1\",\"data\":{$GROUP_SCHEMA,\"displayName\":\"Bulk group\",\"members\":[{\"type\":\"User\",\"value\":\"bulkId:u1\"},{\"type\":\"User\",\"value\":\"bulkId:u2\"}]}},
 {\"method\":\"POST\",\"path\":\"/Users\",\"bulkId\":\"u1\",\"data\":{$USER_SCHEMA,\"userName\":\"bulk1@example.com\"}},
 {\"method\":\"POST\",\"path\":\"/Users\",\"bulkId\":\"u2\",\"data\":{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\",\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"],\"userName\":\"bulk2@example.com\",\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\":{\"manager\":{\"value\":\"bulkId:u1\"}}}},
 {\"method\":\"PATCH\",\"path\":\"/Users/bulkId:u1\",\"data\":{$PATCH_SCHEMA,\"Operations\":[{\"op\":\"replace\",\"path\":\"title\",\"value\":\"Bulk\"}]}},
 {\"method\":\"DELETE\",\"path\":\"/Users/$DAVE\"}]}"
api POST "$SCIM/Bulk" "$BULK"
check_status 200 "bulk"
check_jq '[.Operations[].status]|join(",")' "201,201,201,200,204" "bulk statuses"
G1=$(printf '%s' "$BODY" | jq -r '.Operations[0].location' | sed 's|.*/||')
U1=$(printf '%s' "$BODY" | jq -r '.Operations[1].location' | sed 's|.*/||')
api GET "$SCIM/Groups/$G1"
check_jq '.members|length' 2 "bulk group members resolved"
api GET "$SCIM/Users" "" -G --data-urlencode 'filter=userName eq "bulk2@example.com"'
check_jq '.Resources[0]["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].manager.value' "$U1" "bulkId in extension"
api GET "$SCIM/Users/$U1"
check_jq '.title' Bulk "bulk PATCH via bulkId path"
# failOnErrors: stop after the first error
api POST "$SCIM/Bulk" "{$BULK_SCHEMA,\"failOnErrors\":1,\"Operations\":[
 {\"method\":\"POST\",\"path\":\"/Users\",\"bulkId\":\"a\",\"data\":{$USER_SCHEMA,\"userName\":\"bob@example.com\"}},
 {\"method\":\"POST\",\"path\":\"/Users\",\"bulkId\":\"b\",\"data\":{$USER_SCHEMA,\"userName\":\"never@example.com\"}}]}"
check_jq '[(.Operations|length|tostring), .Operations[0].status, .Operations[0].response.scimType]|join(",")' "1,409,uniqueness" "failOnErrors"
api GET "$SCIM/Users" "" -G --data-urlencode 'filter=userName eq "never@example.com"'
check_jq .totalResults 0 "failOnErrors stopped later operations"
api POST "$SCIM/Bulk" "{$BULK_SCHEMA,\"Operations\":[
 {\"method\":\"POST\",\"path\":\"/Users\",\"bulkId\":\"x\",\"data\":{$USER_SCHEMA,\"userName\":\"x1@example.com\",\"bogus\":1}},
 {\"method\":\"POST\",\"path\":\"/Groups\",\"bulkId\":\"y\",\"data\":{$GROUP_SCHEMA,\"displayName\":\"y\",\"members\":[{\"value\":\"bulkId:x\"}]}},
 {\"method\":\"POST\",\"path\":\"/Users\",\"bulkId\":\"z\",\"data\":{$USER_SCHEMA,\"userName\":\"z1@example.com\"}}]}"
check_jq '[.Operations[].status]|join(",")' "400,409,201" "bulk errors without failOnErrors"
api POST "$SCIM/Bulk" "{$BULK_SCHEMA,\"Operations\":[
 {\"method\":\"POST\",\"path\":\"/Groups\",\"bulkId\":\"p\",\"data\":{$GROUP_SCHEMA,\"displayName\":\"p\",\"members\":[{\"value\":\"bulkId:q\"}]}},
 {\"method\":\"POST\",\"path\":\"/Groups\",\"bulkId\":\"q\",\"data\":{$GROUP_SCHEMA,\"displayName\":\"q\",\"members\":[{\"value\":\"bulkId:p\"}]}}]}"
check_jq '[.Operations[].status]|join(",")' "409,409" "circular bulkIds"
OPS=$(for i in $(seq 1 1001); do printf '{"method":"DELETE","path":"/Users/x%d"},' $i; done)
api POST "$SCIM/Bulk" "{$BULK_SCHEMA,\"Operations\":[${OPS%,}]}"
check_status 413 "bulk over maxOperations"
check_jq '[.status, .scimType, (.detail|test("maxOperations is 1000")|tostring)]|join(",")' "413,tooLarge,true" \
    "bulk over maxOperations: scimType and detail"
# a Bulk body over maxPayloadSize (4m), also above --max-body (1m), is a SCIM 413 too
{ printf '{%s,"Operations":[' "$BULK_SCHEMA"; head -c 4300000 /dev/zero | tr '\0' ' '; printf ']}'; } > "$T/bigbulk.json"
api POST "$SCIM/Bulk" "@$T/bigbulk.json"
check_status 413 "bulk over maxPayloadSize"
check_jq '[.status, .scimType, (.detail|test("4194304")|tostring)]|join(",")' "413,tooLarge,true" \
    "bulk over maxPayloadSize: scimType and detail"
rm -f "$T/bigbulk.json"
api POST "$SCIM/Bulk" "{$BULK_SCHEMA,\"Operations\":[{\"method\":\"DELETE\",\"path\":\"/Users/$CAROL\",\"version\":\"W/\\\"99\\\"\"}]}"
check_jq '[.Operations[0].status, .Operations[0].response.status]|join(",")' "412,412" "a Bulk operation with a stale version"

# discovery
api GET "$SCIM/ServiceProviderConfig"
check_jq '[.patch.supported, .bulk.supported, .bulk.maxOperations, .filter.supported, .etag.supported, .authenticationSchemes[0].type]|join(",")' "true,true,1000,true,true,oauthbearertoken" "ServiceProviderConfig"
api GET "$SCIM/ResourceTypes"
check_jq '[.Resources[].endpoint]|join(",")' "/Users,/Groups,/Contacts" "ResourceTypes"
api GET "$SCIM/Schemas"
check_jq '.totalResults' 4 "Schemas"
api GET "$SCIM/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"
check_jq '[.attributes[]|select(.name=="userName")|.uniqueness]|join(",")' server "User schema"

# strict validation and bad input
bad() { api POST "$SCIM/Users" "$1"; check_status 400 "$2"; check_jq .scimType "$3" "$2 scimType"; }
bad '{"userName":"nos@example.com"}' "missing schemas" invalidSyntax
bad '{"schemas":["urn:x"],"userName":"s@example.com"}' "wrong schema" invalidSyntax
bad "{$USER_SCHEMA,\"userName\":\"t@example.com\",\"active\":\"yes\"}" "wrong type" invalidValue
bad "{$USER_SCHEMA,\"userName\":\"t@example.com\",\"emails\":{\"value\":\"x\"}}" "single for multi" invalidValue
bad "{$USER_SCHEMA,\"userName\":\"t@example.com\",\"name\":{\"nick\":\"x\"}}" "unknown sub-attribute" invalidSyntax
bad "{$USER_SCHEMA,\"userName\":\"t@example.com\",\"emails\":[{\"value\":\"a\",\"primary\":true},{\"value\":\"b\",\"primary\":true}]}" "two primaries" invalidValue
bad "{$USER_SCHEMA}" "missing userName" invalidValue
bad "{$USER_SCHEMA,\"userName\":\"t@example.com\",\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\":{\"department\":\"x\"}}" "extension not in schemas" invalidSyntax
bad "{$USER_SCHEMA,\"userName\":\"t@example.com\",\"x509Certificates\":[{\"value\":\"!!notbase64\"}]}" "bad base64" invalidValue
bad '{"schemas": [' "malformed JSON" invalidSyntax
bad "{$USER_SCHEMA,\"userName\":\"t@example.com\",\"userName\":\"u@example.com\"}" "duplicate key" invalidSyntax
api POST "$SCIM/Users" "$(printf '{%s,"userName":"\xff\xfe@example.com"}' "$USER_SCHEMA")"
check_status 400 "invalid UTF-8"; check_jq .scimType invalidSyntax "invalid UTF-8 scimType"
api POST "$SCIM/Users" "{$USER_SCHEMA,\"userName\":\"nul\\u0000@example.com\"}"
check_status 400 "NUL in string"
head -c 1200000 /dev/zero | tr '\0' ' ' > "$T/big.json"
api POST "$SCIM/Users" "@$T/big.json"
check_status 413 "body over the limit"
check_jq .scimType tooLarge "body over the limit: scimType"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/ca.pem" -H "Authorization: Bearer $ADMIN_TOKEN" -H "Content-Type: text/plain" -d "{$USER_SCHEMA,\"userName\":\"ct@example.com\"}" "$SCIM/Users")
check_status 415 "wrong content type"
api GET "$BASE/scim/v2/nosuchorg/Users"
check_status 404 "unknown org"
api GET "$SCIM/Users/..%2F..%2Fetc%2Fpasswd"
check_status 404 "path traversal in id"
api GET "$SCIM/Users/%2e%2e"
check_status 404 "dot-dot id"
api GET "$SCIM/Users/a%00b"
check_status 404 "NUL in id"
api GET "$SCIM/Users?filter=%ff%fe"
check_status 400 "invalid UTF-8 filter"
api DELETE "$SCIM/Users"
check_status 405 "DELETE on collection"
api GET "$SCIM/Me"
check_status 501 "/Me not implemented"
# still alive
api GET "$SCIM/ServiceProviderConfig"
check_status 200 "server survives"

cloud_stop
check_eq "$CLOUD_EXIT" 0 "clean exit on SIGTERM"
grep -q "GET /scim/v2/acme/Users 200" "$T/cloud.log" && pass || failm "request log line"

# ---- provider emulation: what a real service provider may lack (docs/cloud-api.md)
ENT=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User
cloud_start --delete-cascades --no-enterprise-extension --no-contacts --no-bulk --no-patch --no-etag
api GET "$SCIM/ServiceProviderConfig"
check_jq '[.patch.supported, .bulk.supported, .etag.supported]|map(tostring)|join(",")' "false,false,false" \
    "the ServiceProviderConfig declares no PATCH, Bulk or ETag"
api GET "$SCIM/ResourceTypes"
check_jq '[.Resources[].name]|join(",")' "User,Group" "no Contact resource type"
check_jq '.Resources[0].schemaExtensions // "none"' none "User has no schema extension"
api GET "$SCIM/Schemas/$ENT"
check_status 404 "no enterprise schema"
api GET "$SCIM/Contacts"
check_status 404 "no /Contacts endpoint"
api POST "$SCIM/Users" "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\",\"$ENT\"],\"userName\":\"ext@example.com\",\"$ENT\":{\"department\":\"x\"}}"
check_status 400 "a user with the enterprise extension is refused"
api POST "$SCIM/Bulk" '{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[]}'
check_status 501 "/Bulk is not implemented"
mkuser erin@example.com Erin East ext-20 Lead true
check_status 201 "create erin"
ERIN=$(printf '%s' "$BODY" | jq -r .id)
check_eq "$(header ETag)" "" "no ETag header"
check_jq '.meta.version // "none"' none "no meta.version"
api PATCH "$SCIM/Users/$ERIN" "{$PATCH_SCHEMA,\"Operations\":[{\"op\":\"replace\",\"path\":\"title\",\"value\":\"x\"}]}"
check_status 501 "PATCH is not implemented"
api PUT "$SCIM/Users/$ERIN" "{$USER_SCHEMA,\"userName\":\"erin@example.com\",\"title\":\"Chief\"}" -H 'If-Match: W/"999"'
check_status 200 "PUT with a stale If-Match is applied (no ETags)"
check_jq '.title' Chief "PUT replaced the user"
api POST "$SCIM/Groups" "{$GROUP_SCHEMA,\"displayName\":\"Cascade\",\"members\":[{\"value\":\"$ERIN\"},{\"value\":\"$BOB\"}]}"
check_status 201 "group of erin and bob"
CASC=$(printf '%s' "$BODY" | jq -r .id)
api DELETE "$SCIM/Users/$ERIN"
check_status 204 "delete erin"
api GET "$SCIM/Groups/$CASC"
check_jq '[.members[].value]|join(",")' "$BOB" "--delete-cascades: the deleted user leaves its groups"
cloud_stop
cloud_start --delete-cascades
api POST "$SCIM/Users" "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\",\"$ENT\"],\"userName\":\"frank@example.com\",\"$ENT\":{\"department\":\"Ops\",\"manager\":{\"value\":\"$BOB\"}}}"
check_status 201 "frank, managed by bob"
FRANK=$(printf '%s' "$BODY" | jq -r .id)
api DELETE "$SCIM/Users/$BOB"
check_status 204 "delete bob"
api GET "$SCIM/Users/$FRANK"
check_jq "[(.[\"$ENT\"].manager // \"none\"), .[\"$ENT\"].department]|map(tostring)|join(\",\")" "none,Ops" \
    "--delete-cascades: the deleted manager is cleared on its reports"
cloud_stop

# maxResults: count is clamped to it (RFC 7644 3.4.2.4: never more than count, nor than
# filter.maxResults), totalResults counts all matches
cloud_start --filter-max-results 2
api GET "$SCIM/ServiceProviderConfig"
check_jq '.filter.maxResults' 2 "filter.maxResults declared"
api GET "$SCIM/Users"
N=$(printf '%s' "$BODY" | jq -r .totalResults)
check_jq '[(.totalResults > 2), .itemsPerPage, (.Resources|length)]|map(tostring)|join(",")' "true,2,2" \
    "a list without count holds maxResults"
api GET "$SCIM/Users?count=10&startIndex=2"
check_jq '[.totalResults, .itemsPerPage, .startIndex, (.Resources|length)]|map(tostring)|join(",")' "$N,2,2,2" \
    "count above maxResults is clamped"
api GET "$SCIM/Users" "" -G --data-urlencode 'filter=userName pr' --data-urlencode count=10
check_jq '[.totalResults, .itemsPerPage]|map(tostring)|join(",")' "$N,2" "a filtered list is clamped"
api POST "$SCIM/Users/.search" '{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"count":10}'
check_jq '[.totalResults, .itemsPerPage]|map(tostring)|join(",")' "$N,2" ".search count is clamped"
cloud_stop
finish
