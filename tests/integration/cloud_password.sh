# The User password of dirconn-cloud (docs/cloud-api.md 4.11): accepted on POST, PUT and PATCH,
# kept as a salted hash only, never returned; the admin check endpoint; --no-password.
. "$(dirname "$0")/cloud_lib.sh"
cloud_setup
cloud_start

PW='Summer-2026!x'
api POST "$SCIM/Users" "{$USER_SCHEMA,\"userName\":\"ann@acme.test\",\"password\":\"$PW\"}"
check_status 201 "create with a password"
ID=$(printf '%s' "$BODY" | jq -r .id)
check_jq 'has("password")' false "the creation answer has no password"
api GET "$SCIM/Users/$ID"
check_jq 'has("password")' false "GET has no password"
api GET "$SCIM/Users/$ID?attributes=password"
check_jq 'has("password")' false "attributes=password returns nothing (returned: never)"
api GET "$SCIM/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"
check_jq '.attributes[]|select(.name=="password")|.mutability+" "+.returned' "writeOnly never" \
    "schema: password writeOnly, returned never"

api POST "$V1/password-check" "{\"userName\":\"ANN@acme.test\",\"password\":\"$PW\"}"
check_status 200 "check"
check_jq '[.passwordSet,.match,.changes]|map(tostring)|join(" ")' "true true 1" "right password"
api POST "$V1/password-check" "{\"id\":\"$ID\",\"password\":\"summer-2026!x\"}"
check_jq '.match' false "wrong password does not match"

api PATCH "$SCIM/Users/$ID" \
    "{$PATCH_SCHEMA,\"Operations\":[{\"op\":\"replace\",\"path\":\"password\",\"value\":\"N3w-pass word\"}]}"
check_status 200 "PATCH password"
check_jq 'has("password")' false "the PATCH answer has no password"
api POST "$V1/password-check" "{\"id\":\"$ID\",\"password\":\"N3w-pass word\"}"
check_jq '[.match,.changes]|map(tostring)|join(" ")' "true 2" "PATCHed password matches"
api POST "$V1/password-check" "{\"id\":\"$ID\",\"password\":\"$PW\"}"
check_jq '.match' false "the old password no longer matches"

api PATCH "$SCIM/Users/$ID" "{$PATCH_SCHEMA,\"Operations\":[{\"op\":\"replace\",\"value\":{\"password\":\"Third-0ne\"}}]}"
check_status 200 "path-less PATCH with a password"
api POST "$V1/password-check" "{\"id\":\"$ID\",\"password\":\"Third-0ne\"}"
check_jq '.match' true "path-less PATCH sets it"
api PUT "$SCIM/Users/$ID" "{$USER_SCHEMA,\"userName\":\"ann@acme.test\",\"displayName\":\"Ann\"}"
check_status 200 "PUT without a password"
api POST "$V1/password-check" "{\"id\":\"$ID\",\"password\":\"Third-0ne\"}"
check_jq '.match' true "PUT without a password keeps it"
api PATCH "$SCIM/Users/$ID" "{$PATCH_SCHEMA,\"Operations\":[{\"op\":\"replace\",\"path\":\"password\",\"value\":\"\"}]}"
check_status 400 "an empty password is refused"

# only a salted hash in the database
if grep -a -q -e "$PW" -e 'N3w-pass word' -e 'Third-0ne' "$T"/cloud.db* "$T/cloud.log"; then
    failm "a cleartext password is in the database or the log"
else pass; fi
check_eq "$(sqlite3 "$T/cloud.db" 'select length(salt)||" "||length(hash)||" "||iterations from user_passwords')" \
    "16 32 100000" "salt, hash and iterations stored"

# checks: admin only, strict body, unknown user
register c1; token "$CID" "$CSECRET"
req "$TOKEN" POST "$V1/password-check" "{\"id\":\"$ID\",\"password\":\"x\"}"
check_status 403 "a connector cannot check passwords"
api POST "$V1/password-check" "{\"id\":\"$ID\",\"userName\":\"ann@acme.test\",\"password\":\"x\"}"
check_status 400 "id and userName together"
api POST "$V1/password-check" "{\"userName\":\"nobody@acme.test\",\"password\":\"x\"}"
check_status 404 "unknown user"
api GET "$V1/password-check"
check_status 405 "GET password-check"

# a deleted user's hash goes with it
api DELETE "$SCIM/Users/$ID"
check_eq "$(sqlite3 "$T/cloud.db" 'select count(*) from user_passwords')" 0 "hash deleted with the user"

# a provider without a writable password
cloud_stop
cloud_start --no-password
api GET "$SCIM/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"
check_jq '[.attributes[]|select(.name=="password")]|length' 0 "--no-password: not in /Schemas"
api POST "$SCIM/Users" "{$USER_SCHEMA,\"userName\":\"bob@acme.test\"}"
BID=$(printf '%s' "$BODY" | jq -r .id)
api PATCH "$SCIM/Users/$BID" "{$PATCH_SCHEMA,\"Operations\":[{\"op\":\"replace\",\"path\":\"password\",\"value\":\"Abcdefg1!\"}]}"
check_status 400 "--no-password: a password PATCH is refused"
api POST "$V1/password-check" "{\"id\":\"$BID\",\"password\":\"Abcdefg1!\"}"
check_jq '.passwordSet' false "--no-password: nothing stored"
finish
