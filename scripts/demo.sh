#!/usr/bin/env bash
# The main job on the embedded default: install what is missing, build, start
# the Samba AD DS fixture and the reference cloud on loopback, and run a dry
# run and a full sync of the directory into the cloud.
#   scripts/demo.sh [--keep]     --keep leaves the fixture and the cloud running in _demo/
# Idempotent: whatever an earlier run left in _demo/ is stopped and started anew.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
keep=no
[[ ${1:-} == --keep ]] && keep=yes

"$top/scripts/install-deps.sh"
"$top/scripts/build.sh" "$top/build" >/dev/null
ctl=$top/build/admin/dirconnctl
cloud_bin=$top/build/cloud/dirconn-cloud

demo=$top/_demo
mkdir -p "$demo"
stop_all() {
	if [[ -f $demo/cloud.pid ]]; then
		kill "$(cat "$demo/cloud.pid")" 2>/dev/null || true
		rm -f "$demo/cloud.pid"
	fi
	"$top/ldsfx/ldsfx" stop "$demo/adds" >/dev/null 2>&1 || true
}
stop_all
rm -rf "$demo/state" "$demo/cloud"
on_exit() { [[ $keep == yes ]] || stop_all; }
trap on_exit EXIT

echo "== starting the AD DS fixture (Samba AD DC on 127.0.0.1)"
"$top/ldsfx/ldsfx" start adds "$demo/adds"
# shellcheck disable=SC1091
source "$demo/adds/env"

echo "== starting the reference cloud (dirconn-cloud, HTTPS on 127.0.0.1)"
mkdir -p "$demo/cloud"
(
	cd "$demo/cloud"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 \
		-subj "/CN=dirconn demo CA" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >ext.cnf
	openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
		-days 30 -extfile ext.cnf 2>/dev/null
	umask 077
	openssl rand -hex 24 >admin.token
)
"$cloud_bin" --listen 127.0.0.1:0 --ready-file "$demo/cloud/port" --db "$demo/cloud/cloud.db" \
	--admin-token-file "$demo/cloud/admin.token" --org demo \
	--tls-cert "$demo/cloud/server.pem" --tls-key "$demo/cloud/server.key" 2>"$demo/cloud/cloud.log" &
echo $! >"$demo/cloud.pid"
for _ in $(seq 1 100); do [[ -s $demo/cloud/port ]] && break; sleep 0.1; done
cloud_url=https://127.0.0.1:$(cat "$demo/cloud/port")

conf=$demo/dirconn.conf
sed -e "s|@LDAP_URLS@|$LDSFX_URL_TLS $LDSFX_URL|" \
	-e "s|@BIND_DN@|$LDSFX_BIND_DN|" \
	-e "s|@BIND_PASSWORD_FILE@|$LDSFX_BIND_PASSWORD_FILE|" \
	-e "s|@CA_FILE@|$LDSFX_CA_FILE|" \
	-e "s|@BASE_DN@|$LDSFX_BASE_DN|" \
	-e "s|@STATE_DIR@|$demo/state|" \
	-e "s|@CLOUD_URL@|$cloud_url|" \
	-e "s|@CLOUD_CA_FILE@|$demo/cloud/ca.pem|" \
	"$top/docs/examples/dirconn-demo.conf.in" >"$conf"
echo "== configuration: $conf"

echo "== dirconnctl register"
"$ctl" register --config "$conf" --admin-token-file "$demo/cloud/admin.token"
"$ctl" connectors --config "$conf"

echo "== dirconnctl test-connection"
"$ctl" test-connection --config "$conf"
echo "== dirconnctl dry-run"
"$ctl" dry-run --config "$conf" --report "$demo/dry-run.json"
echo "== dirconnctl sync --full"
"$ctl" sync --full --config "$conf"
users=$(curl -sS --cacert "$demo/cloud/ca.pem" -H "Authorization: Bearer $(cat "$demo/cloud/admin.token")" \
	"$cloud_url/scim/v2/demo/Users?count=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["totalResults"])')
echo "== the cloud now holds $users users; a second sync changes nothing:"
"$ctl" sync --full --config "$conf" | tail -n 1
