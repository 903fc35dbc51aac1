#!/usr/bin/env bash
# The main job on the embedded default: install what is missing, build, start the Samba AD DS
# fixture and the reference cloud on loopback, and run a dry run and a full sync of the
# directory into the cloud.
#   scripts/demo.sh           everything, then stops the fixture and the cloud
#   scripts/demo.sh --keep    leaves the fixture and the cloud running (in _demo/) to look at
#   scripts/demo.sh --stop    stops what a --keep run left running
# Idempotent: whatever an earlier run left in _demo/ is stopped and started anew.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
keep=no
case ${1:-} in
--keep) keep=yes ;;
--stop | '') ;;
-h | --help)
	sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "usage: scripts/demo.sh [--keep | --stop]" >&2
	exit 2
	;;
esac

demo=$top/_demo
# rel PATH: PATH as the reader can type it from the current directory
rel_of() { if [[ $1 == "$PWD"/* ]]; then echo "${1#"$PWD"/}"; else echo "$1"; fi; }
rel=$(rel_of "$demo")
stop_all() {
	if [[ -f $demo/cloud.pid ]]; then
		kill "$(cat "$demo/cloud.pid")" 2>/dev/null || true
		rm -f "$demo/cloud.pid"
	fi
	"$top/ldsfx/ldsfx" stop "$demo/adds" >/dev/null 2>&1 || true
}
if [[ ${1:-} == --stop ]]; then
	stop_all
	echo "demo: the AD DS fixture and the reference cloud of $rel are stopped"
	exit 0
fi

n=0
heading() {
	n=$((n + 1))
	printf '\n== %d. %s\n' "$n" "$*"
}

heading "install: the Debian packages dirconn and its fixtures need (scripts/install-deps.sh)"
"$top/scripts/install-deps.sh"

heading "build: dirconn into build/ (scripts/build.sh; cmake, a few minutes the first time)"
"$top/scripts/build.sh" "$top/build" >/dev/null
ctl=$top/build/admin/dirconnctl
cloud_bin=$top/build/cloud/dirconn-cloud
echo "built build/admin/dirconnctl (the command line), build/admin/dirconnd (the service) and"
echo "build/cloud/dirconn-cloud (the reference cloud)"

mkdir -p "$demo"
stop_all
rm -rf "$demo/state" "$demo/cloud"
on_exit() { [[ $keep == yes ]] || stop_all; }
trap on_exit EXIT

heading "directory: the AD DS fixture, a real Samba AD domain controller on 127.0.0.1 (ldsfx)"
"$top/ldsfx/ldsfx" start adds "$demo/adds"
# shellcheck disable=SC1091
source "$demo/adds/env"
python3 - "$LDSFX_MANIFEST" "$LDSFX_URL_TLS" "$LDSFX_BASE_DN" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
c = m["counts"]
print("%s, base %s: a generated organisation of %d users (%d enabled, %d without mail),"
      % (sys.argv[2], sys.argv[3], c["users"], c["users_enabled"], c["users_without_mail"]))
print("%d groups, %d contacts and %d computers (docs/ldsfx.md describes it)"
      % (c["groups"], c["contacts"], c["computers"]))
PY

heading "cloud: dirconn-cloud, the reference SCIM 2.0 service, over HTTPS on 127.0.0.1"
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
cloud_pid=$!
echo "$cloud_pid" >"$demo/cloud.pid"
deadline=$((SECONDS + 60))
until [[ -s $demo/cloud/port ]]; do
	if ! kill -0 "$cloud_pid" 2>/dev/null || ((SECONDS > deadline)); then
		echo "demo: dirconn-cloud did not start; its log ($rel/cloud/cloud.log):" >&2
		tail -n 5 "$demo/cloud/cloud.log" >&2
		exit 1
	fi
	sleep 0.1
done
cloud_url=https://127.0.0.1:$(cat "$demo/cloud/port")
echo "$cloud_url (SCIM: $cloud_url/scim/v2/demo), organisation demo"
echo "admin token: $rel/cloud/admin.token; CA certificate: $rel/cloud/ca.pem"

heading "configuration: the embedded default (docs/examples/dirconn-demo.conf.in) filled in"
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
echo "$rel/dirconn.conf: every user, group and contact under $LDSFX_BASE_DN, the default mapping"

heading "register: the connector gets its identity and secret from the cloud (dirconnctl register)"
"$ctl" register --config "$conf" --admin-token-file "$demo/cloud/admin.token"
"$ctl" connectors --config "$conf"
echo "(no dirconnd runs in this demo: dirconnctl sync takes the HA lease for the length of a sync)"

heading "test-connection: the directory and the cloud answer (dirconnctl test-connection)"
"$ctl" test-connection --config "$conf"

heading "dry run: what a sync would change; nothing is written (dirconnctl dry-run)"
"$ctl" dry-run --config "$conf" --report "$demo/dry-run.json"
echo
echo "The skipped objects and the warnings are the fixture's deliberate cases (docs/ldsfx.md),"
echo "there to show how dirconn treats them; the report $rel/dry-run.json lists each one:"
python3 - "$demo/dry-run.json" <<'PY'
import collections, json, re, sys
r = json.load(open(sys.argv[1]))
o = r["objects"]
missing = collections.Counter()
for s in o.get("skipped", []):
    m = re.search(r"required attribute (\S+) is missing", s.get("message") or "")
    missing[(s["kind"], m.group(1) if m else "?")] += 1
for (kind, attr), k in sorted(missing.items()):
    print("  - %d %ss skipped: no %s, which the cloud requires (people and service accounts"
          " without mail)" % (k, kind, attr))
conflicts = collections.Counter(c["kind"] for c in o.get("conflicts", []))
if conflicts:
    print("  - %s skipped as naming conflicts: contacts that carry a user's address (half of them"
          " in another case) and two users sharing one; none of an address's owners is sent"
          % " and ".join("%d %ss" % (k, kind) for kind, k in sorted(conflicts.items())))
attrs = collections.Counter()
for w in r.get("warnings", []):
    m = re.search(r"the attribute (\S+) has the following invalid value", w.get("message") or "")
    attrs[m.group(1) if m else "?"] += 1
why = {"telephoneNumber": "a phone number that is just '+'",
       "mail": "contacts whose address starts with a dot (a name with no ASCII letters)"}
for attr, k in sorted(attrs.items()):
    print("  - %d warnings on %s: %s; the object is sent without that value"
          % (k, attr, why.get(attr, "an invalid value")))
PY

heading "sync: a full sync of the directory into the cloud (dirconnctl sync --full)"
"$ctl" sync --full --config "$conf"

heading "the cloud now holds"
stats=$(curl -sS --cacert "$demo/cloud/ca.pem" -H "Authorization: Bearer $(cat "$demo/cloud/admin.token")" \
	"$cloud_url/v1/orgs/demo/stats")
python3 -c 'import json, sys; j = json.loads(sys.argv[1])
print("%d users, %d groups, %d contacts" % (j["users"], j["groups"], j["contacts"]))' "$stats"

heading "a second full sync changes nothing"
"$ctl" sync --full --config "$conf" | tail -n 1

heading "where things are"
cat <<EOF
configuration:      $rel/dirconn.conf (state: $rel/state/)
dry-run report:     $rel/dry-run.json
cloud:              $cloud_url (SCIM: $cloud_url/scim/v2/demo; control API: $cloud_url/v1/orgs/demo)
cloud admin token:  $rel/cloud/admin.token (a bearer token for both)
cloud CA:           $rel/cloud/ca.pem
logs:               $rel/cloud/cloud.log (every cloud request), $rel/adds/log/ (Samba)
directory:          $LDSFX_URL_TLS, bind DN $LDSFX_BIND_DN,
                    password in $rel/adds/bind-password, CA $rel/adds/ca.pem
EOF
if [[ $keep == yes ]]; then
	cat <<EOF

Left running (--keep): the Samba AD DC (pid $LDSFX_PID, ports 389 and 636 on 127.0.0.1) and
dirconn-cloud (pid $cloud_pid). Try, for example:
  curl --cacert $rel/cloud/ca.pem -H "Authorization: Bearer \$(cat $rel/cloud/admin.token)" '$cloud_url/scim/v2/demo/Users?count=2'
  $(rel_of "$top/build/admin/dirconnd") --config $rel/dirconn.conf   (the service: changes then reach the cloud by themselves)
Stop both with: $(rel_of "$top/scripts/demo.sh") --stop   (a new run of the demo also stops them first)
EOF
else
	echo
	echo "The fixture and the cloud stop now; scripts/demo.sh --keep leaves them running."
fi
