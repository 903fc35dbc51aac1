#!/usr/bin/env bash
# sync.sh - full sync benchmark: dirconn against its floors, on one machine.
#
# usage: bench/sync.sh [--smoke] [--kind adlds|adds] [--users N] [--stream] [--out FILE]
#                      [--build-dir DIR] [--cloud-option OPT]...
#
# Starts the directory fixture with N users (and, from 5000 users up, N/10
# groups with memberships; slapd is loaded with slapadd), the reference cloud over HTTPS, and
# measures on the same data:
#   1. the full sync of an empty cloud: wall time, objects/s, CPU seconds, peak RSS;
#   2. a no-change full sync of the same directory, twice (the second: the steady state);
#   3. the floors: ldapsearch paging through the same objects (read floor),
#      dirconn-cloud's ingest rate of as many users with /Bulk (ingest floor), and curl
#      listing what the full sync created, with the inventory's attributes, pages of 1000
#      one after the other (inventory floor);
#   4. an incremental sync after min(1000, N/10) users' displayName changed (one ldapmodify);
#      BENCH_INCR_LATENCY_MS=MS adds MS of latency to each of its SCIM requests.
# --cloud-option OPT (repeatable) starts the connector's cloud with a dirconn-cloud option,
# e.g. --cloud-option --group-patch-no-content (a provider that answers a Group PATCH 204,
# docs/cloud-api.md 4.10); the ingest floor's cloud keeps the defaults.
# The connector's time is reported as a ratio to max(read floor, ingest floor), the repeated
# no-change sync's as a ratio to read floor + inventory floor.
# Prints a table and writes JSON (default bench-sync-KIND-N.json), with the load
# average of the machine at each measurement and the peak size of the state database's
# write-ahead log (-wal) during each sync, sampled every 0.1 s. --smoke: 500 users, for CI.
# --stream (adlds; the default above 200,000 users): the organisation of
# `gen.py --stream`, generated as it is written to the LDIF that slapadd loads,
# so a million users fit (docs/ldsfx.md); the same shape with numbered names.
set -euo pipefail
# lib.sh: cert_ca, cert_issue, json, now, elapsed
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../tests/integration/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build=${DIRCONN_BUILD_DIR:-$top/build}
kind=adlds users=10000 out= smoke=0 stream=
cloud_opts=()
usage="usage: $0 [--smoke] [--kind adlds|adds] [--users N] [--stream] [--out FILE] [--build-dir DIR] [--cloud-option OPT]..."
while [[ $# -gt 0 ]]; do
	case $1 in
	--smoke) smoke=1; users=500 ;;
	--kind) kind=$2; shift ;;
	--users) users=$2; shift ;;
	--stream) stream=1 ;;
	--out) out=$2; shift ;;
	--build-dir) build=$2; shift ;;
	--cloud-option) cloud_opts+=("$2"); shift ;;
	*) echo "$usage" >&2; exit 2 ;;
	esac
	shift
done
[[ $users =~ ^[1-9][0-9]*$ ]] || { echo "--users must be a positive integer" >&2; exit 2; }
[[ ${BENCH_INCR_LATENCY_MS:-0} =~ ^[0-9]+$ ]] || { echo "BENCH_INCR_LATENCY_MS must be a number of ms" >&2; exit 2; }
if [[ -z $stream ]]; then
	stream=0
	[[ $kind == adlds ]] && ((users > 200000)) && stream=1
fi
[[ $kind == adlds || $stream == 0 ]] || { echo "--stream is for --kind adlds" >&2; exit 2; }
out=${out:-bench-sync-$kind-$users.json}
ctl=$build/admin/dirconnctl
cloud=$build/cloud/dirconn-cloud
driver=$build/cloud/cloud_ingest_driver
for b in "$ctl" "$cloud" "$driver"; do [[ -x $b ]] || { echo "build first: $b" >&2; exit 2; }; done

T=$(mktemp -d /tmp/dirconn-bench-sync.XXXXXX)
cloud_pid=
cleanup() {
	[[ -n $cloud_pid ]] && kill "$cloud_pid" 2>/dev/null
	wait 2>/dev/null || true
	"$top/ldsfx/ldsfx" stop "$T/fx" >/dev/null 2>&1 || true
	[[ -n ${KEEP_BENCH:-} ]] || rm -rf "$T"
}
trap cleanup EXIT

load() { cut -d' ' -f1 /proc/loadavg; } # the 1-minute load average

echo "== fixture: $kind with $users users$( ((stream)) && echo ' (gen.py --stream)')" >&2
stream_arg=()
((stream)) && stream_arg=(--stream)
t0=$(now)
"$top/ldsfx/ldsfx" start "$kind" "$T/fx" --users "$users" --timeout 3600 "${stream_arg[@]}" >&2
fixture_start=$(elapsed "$t0" "$(now)")
echo "== $(date -u +%T) fixture ready in $fixture_start s" >&2
# shellcheck disable=SC1091
source "$T/fx/env"
# the template's build (generate + slapadd), when this or an earlier run built it
read -r tpl_build_ms tpl_generate_ms < <(python3 -c 'import json, sys
m = json.load(open(sys.argv[1]))
print(m.get("template_build_ms", 0), m.get("template_generate_ms", 0))' "$LDSFX_MANIFEST")

start_cloud() { # NAME [OPTION...]
	rm -f "$T/ready"
	"$cloud" "${@:2}" --listen 127.0.0.1:0 --db "$T/$1.db" --admin-token-file "$T/token" --org bench \
		--tls-cert "$T/server.pem" --tls-key "$T/server.key" --ready-file "$T/ready" --log-level warn \
		2>>"$T/cloud.log" &
	cloud_pid=$!
	for _ in $(seq 1 1200); do [[ -s $T/ready ]] && break; sleep 0.05; done # up to 60 s
	cloud_url=https://127.0.0.1:$(cat "$T/ready")
}
cert_ca "$T/ca" "dirconn bench CA"
cert_issue "$T/ca" "$T/server" /CN=localhost serverAuth IP:127.0.0.1
openssl rand -hex 24 >"$T/token"

# ---- floor 1: read every object with ldapsearch, paged
attrs=(objectClass objectGUID entryUUID mail displayName givenName sn title department
	employeeNumber telephoneNumber mobile manager member cn userAccountControl
	msDS-UserAccountDisabled l st postalCode c streetAddress)
filter='(|(&(objectClass=user)(!(objectClass=computer)))(objectClass=group)(objectClass=contact))'
load_read=$(load)
t0=$(now)
LDAPTLS_CACERT=$LDSFX_CA_FILE ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
	-y "$LDSFX_BIND_PASSWORD_FILE" -b "$LDSFX_BASE_DN" -E pr=500/noprompt -LLL "$filter" \
	"${attrs[@]}" >"$T/read.ldif"
read_floor=$(elapsed "$t0" "$(now)")
objects=$(grep -c '^dn' "$T/read.ldif" || true)
echo "== $(date -u +%T) read floor: $read_floor s for $objects objects (load $load_read)" >&2

# ---- floor 2: the cloud's ingest rate of as many users, with /Bulk
start_cloud ingest
load_ingest=$(load)
t0=$(now)
"$driver" --scim "$cloud_url/scim/v2/bench" --token-file "$T/token" --cacert "$T/ca.pem" \
	--mode bulk --users "$objects" --bulk-size 1000 --concurrency 2 --prefix floor --shape directory >/dev/null
ingest_floor=$(elapsed "$t0" "$(now)")
echo "== $(date -u +%T) ingest floor: $ingest_floor s (load $load_ingest)" >&2
kill "$cloud_pid"; wait "$cloud_pid" 2>/dev/null || true; cloud_pid=

# ---- the connector: a full sync into an empty cloud, then a no-change sync
start_cloud sync "${cloud_opts[@]}"
reg=$(curl -sS --fail --cacert "$T/ca.pem" -H "Authorization: Bearer $(cat "$T/token")" \
	-H 'Content-Type: application/json' -d '{"name":"bench","host":"localhost"}' \
	"$cloud_url/v1/orgs/bench/connectors")
python3 -c 'import json,sys; sys.stdout.write(json.loads(sys.argv[1])["secret"])' "$reg" >"$T/secret"
cat >"$T/bench.conf" <<EOF
[connector]
state_dir = $T/state
[ldap]
urls = $LDSFX_URL_TLS
bind_dn = $LDSFX_BIND_DN
bind_password_file = $LDSFX_BIND_PASSWORD_FILE
ca_file = $LDSFX_CA_FILE
base_dn = $LDSFX_BASE_DN
page_size = 500
[policy]
delete_threshold_enabled = no
[cloud]
url = $cloud_url
org = bench
client_id = $(json "$reg" "j['id']")
client_secret_file = $T/secret
ca_file = $T/ca.pem
[log]
level = ${BENCH_LOG_LEVEL:-error}
EOF
# BENCH_STATE_CACHE_MIB: [connector] state_cache_size for this run (default: the connector's)
if [[ -n ${BENCH_STATE_CACHE_MIB:-} ]]; then
	sed -i "/^state_dir = /a state_cache_size = $BENCH_STATE_CACHE_MIB" "$T/bench.conf"
fi

# the largest size of the state database's write-ahead log (bytes), sampled every 0.1 s into $1
wal_watch() {
	local peak=0 s
	while :; do
		s=$(stat -c %s "$T"/state/*-wal 2>/dev/null | sort -n | tail -1) || true
		if [[ -n $s ]] && ((s > peak)); then
			peak=$s
			echo "$peak" >"$1"
		fi
		sleep 0.1
	done
}
measure() { # label [MODE] -> "wall user sys maxrss_kb load_before load_after peak_wal_bytes"
	local before watcher mode=${2:---full}
	before=$(load)
	echo 0 >"$T/$1.wal"
	wal_watch "$T/$1.wal" &
	watcher=$!
	# BENCH_WRAP: a profiler to run the connector under (e.g. "heaptrack -o /tmp/h"), its
	# argument list word-split; the times and RSS then include the profiler's own.
	# shellcheck disable=SC2086
	/usr/bin/time -f '%e %U %S %M' -o "$T/$1.time" ${BENCH_WRAP:-} "$ctl" sync "$mode" --no-progress --config "$T/bench.conf" \
		>"$T/$1.out" 2>"$T/$1.err" || { kill "$watcher" 2>/dev/null; echo "sync failed:" >&2; tail -5 "$T/$1.err" >&2; exit 1; }
	kill "$watcher" 2>/dev/null || true
	wait "$watcher" 2>/dev/null || true
	echo "== $(date -u +%T) $1 sync: $(cat "$T/$1.time") (wall s, user s, sys s, peak RSS kB; load $before; peak WAL $(cat "$T/$1.wal") B)" >&2
	echo "$(cat "$T/$1.time") $before $(load) $(cat "$T/$1.wal")"
}
read -r full_wall full_user full_sys full_rss full_l0 full_l1 full_wal < <(measure full)
added=$(grep -o 'Result | [0-9]* added' "$T/full.out" | grep -o '[0-9]*')
# ---- floor 3: the cloud listing what the full sync created, as the connector's inventory asks
# it (the same attributes= selection, pages of 1000), one page after the other on one connection
inventory_conf=$T/inventory.curl
: >"$inventory_conf"
inventory_objects=0
for listing in Users:id,userName,externalId,roles,meta.version \
	Groups:id,displayName,externalId,meta.version Contacts:id,displayName,externalId,meta.version; do
	path=${listing%%:*}
	total=$(curl -sS --fail --cacert "$T/ca.pem" -H "Authorization: Bearer $(cat "$T/token")" \
		"$cloud_url/scim/v2/bench/$path?count=1&attributes=id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["totalResults"])')
	inventory_objects=$((inventory_objects + total))
	for ((s = 1; s <= total; s += 1000)); do
		printf 'url = "%s"\noutput = "/dev/null"\n' \
			"$cloud_url/scim/v2/bench/$path?startIndex=$s&count=1000&attributes=${listing#*:}" >>"$inventory_conf"
	done
done
load_inventory=$(load)
t0=$(now)
curl -sS --fail --cacert "$T/ca.pem" -H "Authorization: Bearer $(cat "$T/token")" -K "$inventory_conf"
inventory_floor=$(elapsed "$t0" "$(now)")
echo "== $(date -u +%T) inventory floor: $inventory_floor s for $inventory_objects objects (load $load_inventory)" >&2

read -r nc_wall nc_user nc_sys nc_rss nc_l0 nc_l1 nc_wal < <(measure nochange)
matched=$(grep -o '[0-9]* Objects Matched' "$T/nochange.out" | grep -o '[0-9]*')
# once more: the steady state (the first no-change sync may have versions to record)
read -r nc2_wall nc2_user nc2_sys nc2_rss nc2_l0 nc2_l1 nc2_wal < <(measure nochange2)

# ---- an incremental sync after min(1000, N/10) users changed: their displayName, in one
# ldapmodify; the full sync before took the watermark
n_changed=$((users / 10 < 1000 ? users / 10 : 1000))
emp_ou=$(json "$LDSFX_MANIFEST" "j['ous']['Employees']['dn']")
# their DNs as the server wrote them ("dn:" or, not ASCII, "dn::" base64), the first n_changed
# of the Employees OU (a size limit: ldapsearch's exit 4 is expected)
LDAPTLS_CACERT=$LDSFX_CA_FILE ldapsearch -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
	-y "$LDSFX_BIND_PASSWORD_FILE" -b "$emp_ou" -s one -z "$n_changed" -LLL -o ldif-wrap=no \
	'(objectClass=user)' 1.1 2>/dev/null | grep '^dn:' >"$T/changed.dns" || true
awk '{ printf "%s\nchangetype: modify\nreplace: displayName\ndisplayName: Bench Changed %d\n\n", $0, NR }' \
	"$T/changed.dns" >"$T/changed.ldif"
n_changed=$(wc -l <"$T/changed.dns")
LDAPTLS_CACERT=$LDSFX_CA_FILE ldapmodify -x -H "$LDSFX_URL_TLS" -D "$LDSFX_BIND_DN" \
	-y "$LDSFX_BIND_PASSWORD_FILE" -f "$T/changed.ldif" >/dev/null
# BENCH_INCR_LATENCY_MS: delay every SCIM request of the incremental by this many ms (the
# cloud's latencyMs fault, a timer: it keeps serving other requests), as a distant provider would
if [[ -n ${BENCH_INCR_LATENCY_MS:-} ]]; then
	curl -sS --fail --cacert "$T/ca.pem" -H "Authorization: Bearer $(cat "$T/token")" -X PUT \
		-H 'Content-Type: application/json' \
		-d "{\"latencyMs\": $BENCH_INCR_LATENCY_MS, \"scimOnly\": true}" "$cloud_url/v1/faults" >/dev/null
fi
read -r inc_wall inc_user inc_sys inc_rss inc_l0 inc_l1 inc_wal < <(measure incremental --incremental)
grep -q '^Incremental |' "$T/incremental.out" || { echo "the incremental sync ran in full:" >&2; head -3 "$T/incremental.out" >&2; exit 1; }
inc_changes=$(grep -o 'Incremental | [0-9]* changes' "$T/incremental.out" | grep -o '[0-9]*')
inc_updated=$(grep -o 'Result | [0-9]* added | [0-9]* updated' "$T/incremental.out" | grep -o '[0-9]* updated' | grep -o '[0-9]*')

python3 - "$out" "$T" <<PY
import json, re, sys

def phases(label):
    """The connector's own phase times (debug log: '... in 1.23 s'), in order."""
    out = []
    for line in open("%s/%s.err" % (sys.argv[2], label), encoding="utf-8", errors="replace"):
        m = re.match(r"\S+: debug: (.*) in ([0-9.]+) s\$", line.rstrip("\n"))
        if m:
            out.append([m.group(1), float(m.group(2))])
    return out

floor = max($read_floor, $ingest_floor)
r = {
    "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "machine": "$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB",
    "kind": "$kind", "users": $users, "generator": "$( ((stream)) && echo stream || echo org)",
    "objects_read": $objects, "objects_added": int("${added:-0}"),
    "fixture": {"start_s": $fixture_start, "template_build_s": $tpl_build_ms / 1000,
                "template_generate_s": $tpl_generate_ms / 1000},
    "full_sync": {"wall_s": $full_wall, "objects_per_s": round(int("${added:-0}") / max($full_wall, 0.001)),
                  "cpu_s": round($full_user + $full_sys, 2), "peak_rss_mb": round($full_rss / 1024, 1),
                  "load_before": $full_l0, "load_after": $full_l1,
                  "peak_wal_mb": round($full_wal / 1048576, 1), "peak_wal_bytes": $full_wal},
    "no_change_sync": {"wall_s": $nc_wall, "objects_matched": int("${matched:-0}"),
                       "cpu_s": round($nc_user + $nc_sys, 2), "peak_rss_mb": round($nc_rss / 1024, 1),
                       "load_before": $nc_l0, "load_after": $nc_l1,
                       "peak_wal_mb": round($nc_wal / 1048576, 1), "peak_wal_bytes": $nc_wal},
    "no_change_sync_repeated": {"wall_s": $nc2_wall, "cpu_s": round($nc2_user + $nc2_sys, 2),
                                "peak_rss_mb": round($nc2_rss / 1024, 1),
                                "load_before": $nc2_l0, "load_after": $nc2_l1,
                                "peak_wal_mb": round($nc2_wal / 1048576, 1), "peak_wal_bytes": $nc2_wal},
    "incremental_sync": {"users_changed": $n_changed, "changes": int("${inc_changes:-0}"),
                         "updated": int("${inc_updated:-0}"), "wall_s": $inc_wall,
                         "cpu_s": round($inc_user + $inc_sys, 2), "peak_rss_mb": round($inc_rss / 1024, 1),
                         "load_before": $inc_l0, "load_after": $inc_l1,
                         "latency_ms": int("${BENCH_INCR_LATENCY_MS:-0}"),
                         "peak_wal_mb": round($inc_wal / 1048576, 1)},
    "floors": {"read_s": $read_floor, "ingest_bulk_s": $ingest_floor,
               "inventory_s": $inventory_floor, "inventory_objects": $inventory_objects,
               "load_before_read": $load_read, "load_before_ingest": $load_ingest,
               "load_before_inventory": $load_inventory},
    "ratio_to_floor": round($full_wall / floor, 2) if floor > 0 else None,
    "no_change_ratio": round($nc2_wall / ($read_floor + $inventory_floor), 2)
                       if $read_floor + $inventory_floor > 0 else None,
    "state_cache_mib": int("${BENCH_STATE_CACHE_MIB:-16}"),
    "cloud_options": "${cloud_opts[*]}".split(),
    "phases": {k: phases(k) for k in ("full", "nochange", "nochange2", "incremental")},
}
json.dump(r, open(sys.argv[1], "w"), indent=2)
f, n = r["full_sync"], r["no_change_sync"]
print("| %-6s | %7s | %8s | %9s | %8s | %7s | %9s | %9s | %10s | %6s |" % (
    "kind", "users", "objects", "full (s)", "obj/s", "CPU (s)", "RSS (MB)", "no-chg (s)", "floor (s)", "ratio"))
print("|" + "|".join("-" * w for w in (8, 9, 10, 11, 10, 9, 11, 11, 12, 8)) + "|")
print("| %-6s | %7d | %8d | %9.2f | %8d | %7.2f | %9.1f | %9.2f | %10.2f | %6s |" % (
    r["kind"], r["users"], r["objects_added"], f["wall_s"], f["objects_per_s"], f["cpu_s"],
    f["peak_rss_mb"], n["wall_s"], floor, r["ratio_to_floor"]))
print("read floor %.2f s (ldapsearch, %d objects), ingest floor %.2f s (dirconn-cloud /Bulk); "
      "no-change sync: %.2f s, %d matched, %.1f MB; repeated: %.2f s, %.1f MB" % ($read_floor,
      $objects, $ingest_floor, n["wall_s"], n["objects_matched"], n["peak_rss_mb"],
      r["no_change_sync_repeated"]["wall_s"], r["no_change_sync_repeated"]["peak_rss_mb"]))
print("inventory floor %.2f s (%d objects listed by pages of 1000); the repeated no-change sync "
      "is %sx read floor + inventory floor" % ($inventory_floor, $inventory_objects, r["no_change_ratio"]))
print("load average (1 min): read floor %s, ingest floor %s, full sync %s -> %s, no-change %s -> %s, "
      "repeated %s -> %s; fixture start %.1f s (template build %.1f s, of which generate %.1f s)" % (
      $load_read, $load_ingest, $full_l0, $full_l1, $nc_l0, $nc_l1, $nc2_l0, $nc2_l1,
      $fixture_start, $tpl_build_ms / 1000, $tpl_generate_ms / 1000))
i = r["incremental_sync"]
print("incremental sync after %d users changed: %.2f s (%d changes, %d updated), %.1f MB" % (
      i["users_changed"], i["wall_s"], i["changes"], i["updated"], i["peak_rss_mb"]))
print("peak state WAL (MB): full sync %.1f, no-change %.1f, repeated %.1f" % (
      f["peak_wal_mb"], n["peak_wal_mb"], r["no_change_sync_repeated"]["peak_wal_mb"]))
for k, v in r["phases"].items():
    if v:
        print("phases (%s): %s" % (k, "; ".join("%s %.2f s" % (a, b) for a, b in v)))
print("JSON written to %s" % sys.argv[1])
PY
