#!/usr/bin/env bash
# The main job on the embedded default: install what is missing, build, start
# the Samba AD DS fixture on loopback, and run dirconn against it.
#   scripts/demo.sh [--keep]     --keep leaves the fixture running in _demo/
# Idempotent: a fixture left from an earlier run is stopped and started anew.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
keep=no
[[ ${1:-} == --keep ]] && keep=yes

"$top/scripts/install-deps.sh"
"$top/scripts/build.sh" "$top/build" >/dev/null
ctl=$top/build/admin/dirconnctl

demo=$top/_demo
mkdir -p "$demo"
"$top/ldsfx/ldsfx" stop "$demo/adds" >/dev/null 2>&1 || true
stop_fixture() { [[ $keep == yes ]] || "$top/ldsfx/ldsfx" stop "$demo/adds" >/dev/null 2>&1 || true; }
trap stop_fixture EXIT

echo "== starting the AD DS fixture (Samba AD DC on 127.0.0.1)"
"$top/ldsfx/ldsfx" start adds "$demo/adds"
# shellcheck disable=SC1091
source "$demo/adds/env"

conf=$demo/dirconn.conf
sed -e "s|@LDAP_URLS@|$LDSFX_URL_TLS $LDSFX_URL|" \
	-e "s|@BIND_DN@|$LDSFX_BIND_DN|" \
	-e "s|@BIND_PASSWORD_FILE@|$LDSFX_BIND_PASSWORD_FILE|" \
	-e "s|@CA_FILE@|$LDSFX_CA_FILE|" \
	-e "s|@BASE_DN@|$LDSFX_BASE_DN|" \
	-e "s|@STATE_DIR@|$demo/state|" \
	"$top/docs/examples/dirconn-demo.conf.in" >"$conf"
echo "== configuration: $conf"

echo "== dirconnctl test-connection"
"$ctl" test-connection --config "$conf"
echo "== dirconnctl partitions"
"$ctl" partitions --config "$conf"
echo "== users in the domain (users that are not computers)"
users=$("$ctl" search --config "$conf" --count \
	--filter '(&(objectCategory=person)(objectClass=user)(!(objectClass=computer)))')
expected=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["users"]["total"])' "$LDSFX_MANIFEST")
echo "$users users read (the fixture's generator created $expected)"
[[ $users == "$expected" ]]
