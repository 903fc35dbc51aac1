#!/usr/bin/env bash
# big_group.sh - one very large group into a provider with a small payload limit.
#
# usage: bench/big_group.sh [--smoke] [--members N] [--limit BYTES] [--out FILE] [--build-dir DIR]
#                           [--cloud-option OPT]...
#
# Starts the slapd (AD LDS-like) fixture with N users, adds one group that lists every user with
# mail, and runs the reference cloud with a request body limit of BYTES (--max-body and Bulk
# maxPayloadSize, default 65536). Then measures:
#   1. the full sync into the empty cloud: wall time, peak RSS, the requests that carried the group
#      (its POST and the PATCHes that add the members that did not fit), refused requests (4xx);
#   2. the incremental after one member is removed from the group in the directory: its PATCH
#      requests and operations (one request, one operation expected);
#   3. with dirconnd running (change notifications, RFC 4533 refreshAndPersist on slapd, debounce
#      1 s): that member added back, from the ldapmodify to the cloud's answer to the group's
#      PATCH; the requests, PATCHes and operations (one PATCH, one operation expected) and the
#      bytes dirconnd read from the directory for it (DNs, attribute descriptions and values of
#      the entries read, from its "directory read" debug lines): slapd has no per-value change
#      tracking, so the incremental reads the changed group again with all its member values;
#      group_read_in_full says so when the bytes read of the group's entry cover its members.
# It checks that the cloud's group holds every member synchronised (the users in the cloud). Prints a
# table and writes JSON (default bench-big-group-N.json). --smoke: 2,000 members, for CI.
# bench/latency.sh runs it for its big-group case (--members, --out). --cloud-option OPT
# (repeatable) passes a dirconn-cloud option, e.g. --group-patch-no-content (docs/cloud-api.md 4.10).
set -euo pipefail
# lib.sh: cert_ca, cert_issue, json, now, elapsed
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../tests/integration/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build=${DIRCONN_BUILD_DIR:-$top/build}
members=100000 limit=65536 out=
cloud_opts=()
while [[ $# -gt 0 ]]; do
	case $1 in
	--smoke) members=2000 ;;
	--members) members=$2; shift ;;
	--limit) limit=$2; shift ;;
	--out) out=$2; shift ;;
	--build-dir) build=$2; shift ;;
	--cloud-option) cloud_opts+=("$2"); shift ;;
	*) echo "usage: $0 [--smoke] [--members N] [--limit BYTES] [--out FILE] [--build-dir DIR] [--cloud-option OPT]..." >&2; exit 2 ;;
	esac
	shift
done
out=${out:-bench-big-group-$members.json}
ctl=$build/admin/dirconnctl
daemon=$build/admin/dirconnd
cloud=$build/cloud/dirconn-cloud
for b in "$ctl" "$daemon" "$cloud"; do [[ -x $b ]] || { echo "build first: $b" >&2; exit 2; }; done

T=$(mktemp -d /tmp/dirconn-bench-group.XXXXXX)
cloud_pid='' dpid=''
cleanup() {
	[[ -n $dpid ]] && kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	[[ -n $cloud_pid ]] && kill "$cloud_pid" 2>/dev/null
	wait 2>/dev/null || true
	"$top/ldsfx/ldsfx" stop "$T/fx" >/dev/null 2>&1 || true
	[[ -n ${KEEP_BENCH:-} ]] || rm -rf "$T"
}
trap cleanup EXIT
ldap() { # ldapmodify/ldapsearch ARGS... as the fixture's administrator
	local tool=$1
	shift
	LDAPTLS_CACERT=$LDSFX_CA_FILE "$tool" -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
		-y "$LDSFX_BIND_PASSWORD_FILE" "$@"
}

echo "== fixture: adlds with $members users" >&2
"$top/ldsfx/ldsfx" start adlds "$T/fx" --users "$members" --timeout 3600 >&2
# shellcheck disable=SC1091
source "$T/fx/env"

# ---- the group: every user with mail, added 5,000 members per modification
ldap ldapsearch -b "$LDSFX_BASE_DN" -LLL -o ldif-wrap=no -E pr=1000/noprompt \
	"(&(objectClass=user)(mail=*))" dn | sed -n 's/^dn:/member:/p' >"$T/members"
n_members=$(wc -l <"$T/members")
gdn="CN=Bench Big Group,$LDSFX_BASE_DN"
printf 'dn: %s\nchangetype: add\nobjectClass: group\ngroupType: 8\n\n' "$gdn" | ldap ldapmodify >/dev/null
split -l 5000 "$T/members" "$T/chunk."
for f in "$T"/chunk.*; do
	{ printf 'dn: %s\nchangetype: modify\nadd: member\n' "$gdn"; cat "$f"; printf -- '-\n\n'; } |
		ldap ldapmodify >/dev/null
done

cert_ca "$T/ca" "dirconn bench CA"
cert_issue "$T/ca" "$T/server" /CN=localhost serverAuth IP:127.0.0.1
openssl rand -hex 24 >"$T/token"
"$cloud" "${cloud_opts[@]}" --listen 127.0.0.1:0 --db "$T/cloud.db" --admin-token-file "$T/token" --org bench \
	--tls-cert "$T/server.pem" --tls-key "$T/server.key" --ready-file "$T/ready" \
	--max-body "$limit" --bulk-max-payload "$limit" 2>"$T/cloud.log" &
cloud_pid=$!
for _ in $(seq 1 1200); do [[ -s $T/ready ]] && break; sleep 0.05; done
[[ -s $T/ready ]] || { echo "the cloud did not start" >&2; exit 1; }
cloud_url=https://127.0.0.1:$(cat "$T/ready")
cat >"$T/bench.conf" <<EOF
[connector]
state_dir = $T/state
[ldap]
urls = $LDSFX_URL_TLS
bind_dn = $LDSFX_BIND_DN
bind_password_file = $LDSFX_BIND_PASSWORD_FILE
ca_file = $LDSFX_CA_FILE
base_dn = $LDSFX_BASE_DN
page_size = 1000
[groups]
filter = (&(objectClass=group)(cn=Bench Big Group))
[contacts]
enabled = no
[policy]
delete_threshold_enabled = no
[cloud]
scim_url = $cloud_url/scim/v2/bench
auth = bearer
token_file = $T/token
ca_file = $T/ca.pem
[ha]
lease = none
[log]
level = error
EOF

# requests: the cloud's log lines of the connector since line $1 -> "requests 4xx patches ops"
requests_since() {
	tail -n +"$(($1 + 1))" "$T/cloud.log" | awk '
		/ (GET|POST|PUT|PATCH|DELETE) / { n++; if ($5 ~ /^4/) bad++; if ($3 == "PATCH") p++
			for (i = 1; i <= NF; i++) if ($i ~ /^ops=/) ops += substr($i, 5) }
		END { printf "%d %d %d %d\n", n, bad, p, ops }'
}

mark=$(wc -l <"$T/cloud.log")
t0=$(now)
/usr/bin/time -f '%M' -o "$T/full.time" "$ctl" sync --full --no-progress --config "$T/bench.conf" \
	>"$T/full.out" 2>"$T/full.err" ||
	{ echo "the full sync failed:" >&2; tail -5 "$T/full.err" >&2; exit 1; }
full_wall=$(elapsed "$t0" "$(now)")
full_rss_kb=$(tail -1 "$T/full.time")
read -r full_req full_4xx full_patch full_ops < <(requests_since "$mark")
# (created by a POST of its own or inside a /Bulk request: found by its name either way)
gid=$(curl -sS --cacert "$T/ca.pem" \
	-H "Authorization: Bearer $(cat "$T/token")" \
	"$cloud_url/scim/v2/bench/Groups?filter=displayName%20eq%20%22Bench%20Big%20Group%22&attributes=id" |
	json - "j['Resources'][0]['id']")
group_patches=$(tail -n +"$((mark + 1))" "$T/cloud.log" | grep -c "PATCH /scim/v2/bench/Groups/$gid " || true)
cloud_members() {
	curl -sS --cacert "$T/ca.pem" -H "Authorization: Bearer $(cat "$T/token")" \
		"$cloud_url/scim/v2/bench/Groups/$gid?attributes=members" | json - "len(j.get('members') or [])"
}
in_cloud=$(cloud_members)
# the members the cloud can hold: the users synchronised (the group lists every user with mail;
# the fixture's naming conflicts are not synchronised)
users_in_cloud=$(curl -sS --cacert "$T/ca.pem" -H "Authorization: Bearer $(cat "$T/token")" \
	"$cloud_url/scim/v2/bench/Users?count=1&attributes=id" | json - "j['totalResults']")

# ---- one member leaves the group
first=$(head -1 "$T/members")
printf 'dn: %s\nchangetype: modify\ndelete: member\n%s\n-\n\n' "$gdn" "$first" | ldap ldapmodify >/dev/null
mark=$(wc -l <"$T/cloud.log")
t0=$(now)
"$ctl" sync --incremental --no-progress --config "$T/bench.conf" >"$T/inc.out" 2>"$T/inc.err" ||
	{ echo "the incremental failed:" >&2; tail -5 "$T/inc.err" >&2; exit 1; }
inc_wall=$(elapsed "$t0" "$(now)")
read -r inc_req inc_4xx inc_patch inc_ops < <(requests_since "$mark")
after=$(cloud_members)

# ---- the member comes back, with dirconnd running (change notification to the cloud)
sed 's/^level = error$/level = debug/' "$T/bench.conf" >"$T/daemon.conf"
printf '[schedule]\nnotifications = yes\nincremental_interval = 10m\n' >>"$T/daemon.conf"
# ready: dirconnd is active, idle (its start sync done) and its notification search is up
ready() {
	/usr/bin/python3 - "$T/state/dirconnd.sock" <<-'EOF'
	import json, socket, sys
	s = socket.socket(socket.AF_UNIX)
	s.connect(sys.argv[1])
	s.sendall(b'{"cmd":"status"}\n')
	st = json.loads(s.makefile().readline())["status"]
	sys.exit(0 if st["ha"]["role"] == "active" and st["state"] == "idle"
	         and st["notifications"]["state"] == "connected" else 1)
	EOF
}
"$daemon" --config "$T/daemon.conf" 2>"$T/dirconnd.log" &
dpid=$!
wait_until 1800 ready 2>/dev/null || { echo "dirconnd did not get ready:" >&2; tail -5 "$T/dirconnd.log" >&2; exit 1; }
mark=$(wc -l <"$T/cloud.log")
dmark=$(wc -l <"$T/dirconnd.log")
patched() { tail -n +"$((mark + 1))" "$T/cloud.log" | grep -q "PATCH /scim/v2/bench/Groups/$gid 2"; }
t0=$(now)
printf 'dn: %s\nchangetype: modify\nadd: member\n%s\n-\n\n' "$gdn" "$first" | ldap ldapmodify >/dev/null
wait_until 1800 patched || { echo "the group's PATCH did not come:" >&2; tail -5 "$T/dirconnd.log" >&2; exit 1; }
add_latency=$(elapsed "$t0" "$(now)")
# the run is over when dirconnd is idle again: its requests and reads are all logged
wait_until 1800 ready 2>/dev/null || { echo "dirconnd did not finish the sync" >&2; exit 1; }
read -r add_req add_4xx add_patch add_ops < <(requests_since "$mark")
added=$(cloud_members)
kill -TERM "$dpid"
wait "$dpid" 2>/dev/null || true
dpid=
# bytes read: every "directory read" line of the run; those of the group's entry; its member values
read -r dir_bytes group_bytes < <(tail -n +"$((dmark + 1))" "$T/dirconnd.log" | awk -v g="$gdn" '
	/directory read: / { for (i = 1; i <= NF; i++) if ($i ~ /^bytes/) b = $(i - 1); total += b
		if (tolower($0) ~ ("searching .?" tolower(g))) grp += b }
	END { printf "%d %d\n", total, grp }')
# the bytes of the group's member values (LDIF: "member: DN", or "member:: base64" when not ASCII)
member_bytes=$(/usr/bin/python3 -c '
import base64, sys
n = 0
for line in open(sys.argv[1], "rb"):
    line = line.rstrip(b"\n")
    n += len(base64.b64decode(line[9:])) if line.startswith(b"member:: ") else len(line) - 8
print(n)' "$T/members")

python3 - "$out" <<PY
import json, sys
r = {
    "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "machine": "$(nproc) cores",
    "members_in_directory": $n_members, "users_in_cloud": $users_in_cloud, "limit_bytes": $limit, "cloud_options": "${cloud_opts[*]}".split(),
    "full_sync": {"wall_s": $full_wall, "peak_rss_mb": round($full_rss_kb / 1024, 1), "requests": $full_req, "refused_4xx": $full_4xx,
                  "group_patch_requests": $group_patches, "members_in_cloud": $in_cloud},
    "one_member_removed": {"wall_s": $inc_wall, "requests": $inc_req, "refused_4xx": $inc_4xx,
                           "patch_requests": $inc_patch, "patch_ops": $inc_ops,
                           "members_in_cloud": $after},
    "one_member_added_dirconnd": {"latency_s": $add_latency, "requests": $add_req,
                                  "refused_4xx": $add_4xx, "patch_requests": $add_patch,
                                  "patch_ops": $add_ops, "members_in_cloud": $added,
                                  "directory_bytes_read": $dir_bytes,
                                  "group_entry_bytes_read": $group_bytes,
                                  "member_value_bytes": $member_bytes,
                                  "group_read_in_full": $group_bytes >= $member_bytes > 0},
}
json.dump(r, open(sys.argv[1], "w"), indent=2)
f, i = r["full_sync"], r["one_member_removed"]
print("| members | limit (B) | full (s) | peak RSS (MB) | requests | 4xx | group PATCHes | in cloud | -1 member (s) | PATCH/ops | in cloud |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
print("| %d | %d | %.2f | %.1f | %d | %d | %d | %d | %.2f | %d/%d | %d |" % (
    $n_members, $limit, f["wall_s"], f["peak_rss_mb"], f["requests"], f["refused_4xx"], f["group_patch_requests"],
    f["members_in_cloud"], i["wall_s"], i["patch_requests"], i["patch_ops"], i["members_in_cloud"]))
d = r["one_member_added_dirconnd"]
print()
print("| members | +1 member with dirconnd (s) | requests | PATCH/ops | directory read (B) | group entry read (B) | read in full | in cloud |")
print("|---|---|---|---|---|---|---|---|")
print("| %d | %.2f | %d | %d/%d | %d | %d | %s | %d |" % (
    $n_members, d["latency_s"], d["requests"], d["patch_requests"], d["patch_ops"],
    d["directory_bytes_read"], d["group_entry_bytes_read"],
    "yes" if d["group_read_in_full"] else "no", d["members_in_cloud"]))
ok = (f["members_in_cloud"] == $users_in_cloud and f["refused_4xx"] == 0 and
      i["members_in_cloud"] == $users_in_cloud - 1 and i["patch_ops"] == 1 and
      d["members_in_cloud"] == $users_in_cloud and d["patch_requests"] == 1 and
      d["patch_ops"] == 1 and d["refused_4xx"] == 0)
print("JSON written to %s; %s" % (sys.argv[1], "all members arrived" if ok else "MISMATCH"))
sys.exit(0 if ok else 1)
PY
