# The User password of dirconn-cloud (docs/cloud-api.md 4.11): accepted on POST, PUT and PATCH,
# kept as a salted hash only, never returned; the admin check endpoint; --no-password.
. "$(dirname "$0")/cloud_lib.sh"
cloud_setup
cloud_start

PW='Summer-2026!x'
api POST "$SCIM/Users" "{$USER_SCHEMA,\"userName\":\"ann@acme.test\",\"password\":\"$PW\"}"
check_status "create with a password" 201
ID=$(printf '%s' "$BODY" | jq -r .id)
check_jq "the creation answer has no password" false 'has("password")'
api GET "$SCIM/Users/$ID"
check_jq "GET has no password" false 'has("password")'
api GET "$SCIM/Users/$ID?attributes=password"
check_jq "attributes=password returns nothing (returned: never)" false 'has("password")'
api GET "$SCIM/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"
check_jq "schema: password writeOnly, returned never" "writeOnly never" \
    '.attributes[]|select(.name=="password")|.mutability+" "+.returned'

api POST "$V1/password-check" "{\"userName\":\"ANN@acme.test\",\"password\":\"$PW\"}"
check_status "check" 200
check_jq "right password" "true true 1" '[.passwordSet,.match,.changes]|map(tostring)|join(" ")'
api POST "$V1/password-check" "{\"id\":\"$ID\",\"password\":\"summer-2026!x\"}"
check_jq "wrong password does not match" false '.match'

api PATCH "$SCIM/Users/$ID" \
    "{$PATCH_SCHEMA,\"Operations\":[{\"op\":\"replace\",\"path\":\"password\",\"value\":\"N3w-pass word\"}]}"
check_status "PATCH password" 200
check_jq "the PATCH answer has no password" false 'has("password")'
api POST "$V1/password-check" "{\"id\":\"$ID\",\"password\":\"N3w-pass word\"}"
check_jq "PATCHed password matches" "true 2" '[.match,.changes]|map(tostring)|join(" ")'
api POST "$V1/password-check" "{\"id\":\"$ID\",\"password\":\"$PW\"}"
check_jq "the old password no longer matches" false '.match'

api PATCH "$SCIM/Users/$ID" "{$PATCH_SCHEMA,\"Operations\":[{\"op\":\"replace\",\"value\":{\"password\":\"Third-0ne\"}}]}"
check_status "path-less PATCH with a password" 200
api POST "$V1/password-check" "{\"id\":\"$ID\",\"password\":\"Third-0ne\"}"
check_jq "path-less PATCH sets it" true '.match'
api PUT "$SCIM/Users/$ID" "{$USER_SCHEMA,\"userName\":\"ann@acme.test\",\"displayName\":\"Ann\"}"
check_status "PUT without a password" 200
api POST "$V1/password-check" "{\"id\":\"$ID\",\"password\":\"Third-0ne\"}"
check_jq "PUT without a password keeps it" true '.match'
api PATCH "$SCIM/Users/$ID" "{$PATCH_SCHEMA,\"Operations\":[{\"op\":\"replace\",\"path\":\"password\",\"value\":\"\"}]}"
check_status "an empty password is refused" 400

# only a salted hash in the database
if grep -a -q -e "$PW" -e 'N3w-pass word' -e 'Third-0ne' "$T"/cloud.db* "$T/cloud.log"; then
    not_ok "a cleartext password is in the database or the log"
else ok "no cleartext password in the database or the log"; fi
check_eq "salt, hash and iterations stored" \
    "16 32 100000" "$(sqlite3 "$T/cloud.db" 'select length(salt)||" "||length(hash)||" "||iterations from user_passwords')"

# checks: admin only, strict body, unknown user
register c1; token "$CID" "$CSECRET"
req "$TOKEN" POST "$V1/password-check" "{\"id\":\"$ID\",\"password\":\"x\"}"
check_status "a connector cannot check passwords" 403
api POST "$V1/password-check" "{\"id\":\"$ID\",\"userName\":\"ann@acme.test\",\"password\":\"x\"}"
check_status "id and userName together" 400
api POST "$V1/password-check" "{\"userName\":\"nobody@acme.test\",\"password\":\"x\"}"
check_status "unknown user" 404
api GET "$V1/password-check"
check_status "GET password-check" 405

# a deleted user's hash goes with it
api DELETE "$SCIM/Users/$ID"
check_eq "hash deleted with the user" 0 "$(sqlite3 "$T/cloud.db" 'select count(*) from user_passwords')"

# a provider without a writable password
cloud_stop
cloud_start --no-password
api GET "$SCIM/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"
check_jq "--no-password: not in /Schemas" 0 '[.attributes[]|select(.name=="password")]|length'
api POST "$SCIM/Users" "{$USER_SCHEMA,\"userName\":\"bob@acme.test\"}"
BID=$(printf '%s' "$BODY" | jq -r .id)
api PATCH "$SCIM/Users/$BID" "{$PATCH_SCHEMA,\"Operations\":[{\"op\":\"replace\",\"path\":\"password\",\"value\":\"Abcdefg1!\"}]}"
check_status "--no-password: a password PATCH is refused" 400
api POST "$V1/password-check" "{\"id\":\"$BID\",\"password\":\"Abcdefg1!\"}"
check_jq "--no-password: nothing stored" false '.passwordSet'
finish
