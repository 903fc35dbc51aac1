#!/usr/bin/env bash
# failover.sh - HA failover time benchmark: two dirconnd instances, one lease.
#
# usage: bench/failover.sh [--smoke] [--trials N] [--lease SECONDS] [--backend cloud]
#                          [--only kill|term|takeover] [--takeover-users N] [--out FILE]
#                          [--build-dir DIR]
#
# Starts the slapd (AD LDS-like) fixture with 50 users, the reference cloud over HTTPS and
# two dirconnd instances ([ha] lease = cloud, lease_duration = --lease, jitter 200 ms), then
# runs N trials of each:
#   kill -9  the active instance at a random moment of its renew cycle;
#   SIGTERM  the active instance (it releases the lease);
# and measures the failover time: from the signal to the other instance reporting role
# active in `dirconnctl status --json` (polled every 100 ms). After each trial the signalled
# instance is restarted and waits as standby. Prints a table (p50, p90, max, mean per
# signal) and writes JSON (default bench-failover-BACKEND.json). Targets: kill -9 under 20 s
# (max) and SIGTERM under 2 s (max) with a 15 s lease.
# Then the cost of the first sync after a takeover (issue 19), on a second fixture of
# --takeover-users users (default 10000; from 5000 up with N/10 groups, as bench/sync.sh) and a
# fresh cloud: conn-1 alone makes the first full sync, then a no-change full sync (sync-now
# --full: its time and SCIM writes); conn-2 starts with an empty state, conn-1 is killed (-9),
# and conn-2's first sync after it takes over is measured: its kind, time, SCIM writes, and the
# time from its activation to the end of that sync. Targets: under 1.5x the no-change full sync,
# and no SCIM write. --smoke: 3 trials, a 4 s lease, 300 users for the takeover, for CI.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build=${DIRCONN_BUILD_DIR:-$top/build}
trials=20 lease=15 backend=cloud out= smoke=0 only= tk_users=10000
usage() {
	echo "usage: $0 [--smoke] [--trials N] [--lease SECONDS] [--backend cloud] [--only kill|term|takeover] [--takeover-users N] [--out FILE] [--build-dir DIR]" >&2
	exit 2
}
while [[ $# -gt 0 ]]; do
	case $1 in
	--smoke) smoke=1; trials=3; lease=4; tk_users=300 ;;
	--takeover-users) tk_users=$2; shift ;;
	--trials) trials=$2; shift ;;
	--lease) lease=$2; shift ;;
	--backend) backend=$2; shift ;;
	--only) only=$2; shift ;;
	--out) out=$2; shift ;;
	--build-dir) build=$2; shift ;;
	*) usage ;;
	esac
	shift
done
[[ $backend == cloud && ($only == "" || $only == kill || $only == term || $only == takeover) ]] || usage
[[ $trials =~ ^[1-9][0-9]*$ && $lease =~ ^[1-9][0-9]*$ && $tk_users =~ ^[1-9][0-9]*$ ]] || usage
out=${out:-bench-failover-$backend.json}
for b in "$build/admin/dirconnd" "$build/admin/dirconnctl" "$build/cloud/dirconn-cloud"; do
	[[ -x $b ]] || { echo "build first: $b" >&2; exit 2; }
done
export PATH=$build/admin:$build/cloud:$PATH DIRCONN_SOURCE_DIR=$top
# The integration tests' helpers: fixture, cloud, registration, instances, roles.
source "$top/tests/integration/lib.sh"
source "$top/tests/integration/sync_lib.sh"
source "$top/tests/integration/ha_lib.sh"

work=$(mktemp -d /tmp/dirconn-bench-failover.XXXXXX)
base=$work # the takeover cost runs in $base/takeover
renew_ms=$((lease * 1000 / 3))
cleanup() {
	ha_stop_all
	sync_cloud_stop
	"$LDSFX" stop "$base/fx" >/dev/null 2>&1 || true
	"$LDSFX" stop "$base/takeover/fx" >/dev/null 2>&1 || true
	if [[ -n ${KEEP_BENCH:-} || -e $base/keep ]]; then echo "kept $base" >&2; else rm -rf "$base"; fi
}
trap cleanup EXIT
: >"$work/KILL.times"
: >"$work/TERM.times"

if [[ $only != takeover ]]; then
echo "== fixture: adlds with 50 users; cloud; 2 instances, lease ${lease}s, $trials trials per signal" >&2
ldsfx_start_retry adlds "$work/fx" --users 50 >&2
# shellcheck disable=SC1091
source "$work/fx/env"
sync_cloud_start # per-request log lines (info): a slow trial can be explained
ha_setup 2 "[ha]
lease = $backend
lease_duration = ${lease}s
failover_interval = 0s
jitter = 200ms"
ha_start_all 2 >&2
ha_wait_one_active 60 >&2 || { echo "no instance became active" >&2; exit 1; }
limit=$((lease * 3 + 10)) # a trial that takes longer than this is recorded as a timeout

# trial SIG: one failover; appends the seconds (or "timeout") to $work/SIG.times
trial() {
	local sig=$1 a
	ha_wait_one_active 60 >&2 || return 1
	a=$HA_ACTIVE
	# the other must be a settled standby that has seen the holder
	ha_wait_role "$((3 - a))" standby 30 >&2 || return 1
	# a random moment of the active's renew cycle
	sleep "$(awk -v m="$renew_ms" -v r="$RANDOM" 'BEGIN { printf "%.3f", (r % (m + 1)) / 1000 }')"
	ha_signal "$a" "$sig"
	ha_failover_time "$a" "$limit" || true
	echo "$HA_FAILOVER" >>"$work/$sig.times"
	printf '  %-4s trial %2d: conn-%d -> conn-%s in %s s\n' "$sig" "$(wc -l <"$work/$sig.times")" \
		"$a" "${HA_ACTIVE:-?}" "$HA_FAILOVER" >&2
	if [[ $sig == TERM ]]; then
		local rc=0
		ha_wait_exit "$a" || rc=$?
		((rc == 0)) || echo "  conn-$a exited $rc after SIGTERM" >&2
	fi
	ha_start "$a" >&2
	ha_wait_role "$a" standby 30 >&2 || return 1
}

if [[ $only != term ]]; then for ((n = 1; n <= trials; n++)); do trial KILL; done; fi
if [[ $only != kill ]]; then for ((n = 1; n <= trials; n++)); do trial TERM; done; fi
ha_stop_all
sync_cloud_stop
"$LDSFX" stop "$work/fx" >/dev/null 2>&1 || true
fi

# ---- the first sync after a kill -9 takeover, nothing changed, vs a no-change full sync
# sync_line I MARKER KIND-REGEX: the first "KIND sync done in" or "sync ended" line of
# instance I's log after MARKER
sync_line() { ha_log_since "$1" "$2" | grep -m1 -E "($3) sync done in|sync ended" || true; }
scim_writes() { ha_cloud_writes_by "$1" "$2" | grep -c ' /scim/' || true; }
state_writes() { ha_cloud_writes_by "$1" "$2" | grep -c '/state' || true; }
if [[ $only == "" || $only == takeover ]]; then
	work=$base/takeover
	mkdir -p "$work"
	HA_N=0
	echo "== takeover cost: adlds with $tk_users users; a fresh cloud; 2 instances, lease ${lease}s" >&2
	ldsfx_start_retry adlds "$work/fx" --users "$tk_users" --timeout 3600 >&2
	# shellcheck disable=SC1091
	source "$work/fx/env"
	sync_cloud_start
	ha_setup 2 "[ha]
lease = $backend
lease_duration = ${lease}s
failover_interval = 0s
jitter = 200ms
[policy]
delete_threshold_enabled = no"
	ha_start 1 >&2
	ha_wait_one_active 120 >&2 || { echo "conn-1 did not become active" >&2; exit 1; }
	have() { [[ -n $(sync_line "$1" "$2" "$3") ]]; }
	echo "# bench: first sync" >>"$work/dirconnd-1.log"
	wait_until 7200 have 1 "# bench: first sync" full || { echo "conn-1's first sync did not end" >&2; exit 1; }
	echo "  conn-1: $(sync_line 1 "# bench: first sync" full)" >&2
	# a no-change full sync of the daemon, the baseline
	from=$(ha_cloud_log_lines)
	echo "# bench: sync-now --full" >>"$work/dirconnd-1.log"
	dirconnctl sync-now --full --socket "$(ha_sock 1)" >&2
	wait_until 7200 have 1 "# bench: sync-now --full" full || { echo "the no-change full sync did not end" >&2; exit 1; }
	l=$(sync_line 1 "# bench: sync-now --full" full)
	echo "  conn-1, no-change: $l" >&2
	[[ $l == *"full sync done in"* ]] || { echo "the no-change full sync failed" >&2; exit 1; }
	nc_s=$(sed -E 's/.* sync done in ([0-9.]+) s.*/\1/' <<<"$l")
	nc_writes=$(scim_writes 1 "$from")
	# conn-2 with an empty state waits as standby; conn-1 is killed
	ha_start 2 >&2
	ha_wait_role 2 standby 60 >&2 || exit 1
	from=$(ha_cloud_log_lines)
	echo "# bench: kill -9 of conn-1" >>"$work/dirconnd-2.log"
	ha_signal 1 KILL
	ha_failover_time 1 $((lease * 3 + 10)) || { echo "no takeover" >&2; exit 1; }
	tk_failover=$HA_FAILOVER
	t_active=$(ha_now)
	wait_until 7200 have 2 "# bench: kill -9 of conn-1" "full|incremental" || { echo "conn-2's first sync did not end" >&2; exit 1; }
	t_done=$(ha_now)
	l=$(sync_line 2 "# bench: kill -9 of conn-1" "full|incremental")
	echo "  conn-2 after the takeover: $l" >&2
	[[ $l == *" sync done in"* ]] || { echo "the first sync after the takeover failed" >&2; touch "$base/keep"; exit 1; }
	tk_kind=$(sed -E 's/.*(full|incremental) sync done in.*/\1/' <<<"$l")
	tk_s=$(sed -E 's/.* sync done in ([0-9.]+) s.*/\1/' <<<"$l")
	tk_wall=$(ha_elapsed "$t_active" "$t_done")
	tk_writes=$(scim_writes 2 "$from")
	tk_state=$(state_writes 2 "$from")
	tk_objects=$(json "$(ha_cloud_stats)" "j['users'] + j.get('groups', 0) + j.get('contacts', 0)")
	cat >"$base/takeover.json" <<JSON
{"users": $tk_users, "cloud_objects": $tk_objects, "nochange_full_s": $nc_s, "nochange_full_scim_writes": $nc_writes,
 "failover_s": $tk_failover, "first_sync_kind": "$tk_kind", "first_sync_s": $tk_s,
 "active_to_synced_s": $tk_wall, "first_sync_scim_writes": $tk_writes, "first_sync_state_writes": $tk_state}
JSON
	ha_stop_all
	sync_cloud_stop
	"$LDSFX" stop "$work/fx" >/dev/null 2>&1 || true
	work=$base
fi

if [[ -s $work/ha-stuck.log ]]; then
	echo "helper processes that outlived their dirconnd:" >&2
	cat "$work/ha-stuck.log" >&2
	touch "$work/keep"
fi
# keep the logs when a target is missed
awk '$1 == "timeout" || $1 >= 20 { bad = 1 } END { exit !bad }' "$work/KILL.times" && touch "$work/keep"
awk '$1 == "timeout" || $1 >= 2 { bad = 1 } END { exit !bad }' "$work/TERM.times" && touch "$work/keep"
python3 - "$out" "$work/KILL.times" "$work/TERM.times" "$base/takeover.json" <<PY
import json, math, sys
def stats(path):
    raw = [l.strip() for l in open(path) if l.strip()]
    t = sorted(float(x) for x in raw if x != "timeout")
    def pct(p):
        if not t:
            return None
        k = max(0, min(len(t) - 1, math.ceil(p / 100 * len(t)) - 1))  # nearest rank
        return round(t[k], 3)
    return {"trials": len(raw), "timeouts": len(raw) - len(t), "times_s": [float(x) if x != "timeout" else None for x in raw],
            "min_s": round(t[0], 3) if t else None, "p50_s": pct(50), "p90_s": pct(90),
            "max_s": round(t[-1], 3) if t else None, "mean_s": round(sum(t) / len(t), 3) if t else None}
k, s = stats(sys.argv[2]), stats(sys.argv[3])
r = {
    "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "machine": "$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB",
    "backend": "$backend", "instances": 2, "lease_duration_s": $lease, "renew_interval_s": round($renew_ms / 1000, 3),
    "failover_interval_s": 0, "jitter_s": 0.2, "poll_interval_s": 0.1, "smoke": bool($smoke),
    "kill9": k, "sigterm": s,
    "targets": {"kill9_max_s": 20, "sigterm_max_s": 2},
    "met": {"kill9": k["timeouts"] == 0 and k["max_s"] is not None and k["max_s"] < 20,
            "sigterm": s["timeouts"] == 0 and s["max_s"] is not None and s["max_s"] < 2},
}
try:
    tk = json.load(open(sys.argv[4]))
except FileNotFoundError:
    tk = None
if tk is not None:
    tk["ratio"] = round(tk["first_sync_s"] / tk["nochange_full_s"], 2) if tk["nochange_full_s"] else None
    tk["active_to_synced_ratio"] = round(tk["active_to_synced_s"] / tk["nochange_full_s"], 2) if tk["nochange_full_s"] else None
    r["takeover"] = tk
    r["targets"].update({"takeover_ratio_max": 1.5, "takeover_scim_writes": 0})
    r["met"]["takeover"] = (tk["active_to_synced_ratio"] is not None and tk["active_to_synced_ratio"] < 1.5
                            and tk["first_sync_scim_writes"] == 0)
json.dump(r, open(sys.argv[1], "w"), indent=2)
f = lambda v: "-" if v is None else "%.2f" % v
if k["trials"] or s["trials"]:
    print("| %-8s | %-7s | %6s | %8s | %7s | %7s | %7s | %7s | %8s | %6s |" % (
        "signal", "backend", "lease", "trials", "min (s)", "p50 (s)", "p90 (s)", "max (s)", "timeouts", "target"))
    print("|" + "|".join("-" * w for w in (10, 9, 8, 10, 9, 9, 9, 9, 10, 8)) + "|")
    for name, x, tgt in (("kill -9", k, 20), ("SIGTERM", s, 2)):
        print("| %-8s | %-7s | %5ds | %8d | %7s | %7s | %7s | %7s | %8d | %5s%s |" % (
            name, r["backend"], $lease, x["trials"], f(x["min_s"]), f(x["p50_s"]), f(x["p90_s"]), f(x["max_s"]),
            x["timeouts"], "<%d" % tgt, "s"))
    print("kill -9 target (max < 20 s): %s; SIGTERM target (max < 2 s): %s" % (
        "met" if r["met"]["kill9"] else "NOT met", "met" if r["met"]["sigterm"] else "NOT met"))
if tk is not None:
    print()
    print("| %-27s | %7s | %13s | %8s | %11s | %12s | %5s |" % (
        "sync", "users", "cloud objects", "time (s)", "SCIM writes", "state writes", "ratio"))
    print("|" + "|".join("-" * w for w in (29, 9, 15, 10, 13, 14, 7)) + "|")
    print("| %-27s | %7d | %13d | %8.2f | %11d | %12s | %5s |" % (
        "no-change full", tk["users"], tk["cloud_objects"], tk["nochange_full_s"],
        tk["nochange_full_scim_writes"], "-", "1.00"))
    print("| %-27s | %7d | %13d | %8.2f | %11d | %12d | %5.2f |" % (
        "first after kill -9 (%s)" % tk["first_sync_kind"][:4], tk["users"], tk["cloud_objects"],
        tk["first_sync_s"], tk["first_sync_scim_writes"], tk["first_sync_state_writes"], tk["ratio"]))
    print("| %-27s | %7d | %13d | %8.2f | %11s | %12s | %5.2f |" % (
        "active -> synced", tk["users"], tk["cloud_objects"], tk["active_to_synced_s"], "", "",
        tk["active_to_synced_ratio"]))
    print("takeover in %.2f s; first sync after it (target: < 1.5x a no-change full sync from activation, "
          "no SCIM write): %s" % (tk["failover_s"], "met" if r["met"]["takeover"] else "NOT met"))
print("JSON written to %s" % sys.argv[1])
PY
