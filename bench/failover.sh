#!/usr/bin/env bash
# failover.sh - HA failover time benchmark: two dirconnd instances, one lease.
#
# usage: bench/failover.sh [--smoke] [--trials N] [--lease SECONDS] [--backend cloud]
#                          [--only kill|term] [--out FILE] [--build-dir DIR]
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
# (max) and SIGTERM under 2 s (max) with a 15 s lease. --smoke: 3 trials, a 4 s lease, for CI.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build=${DIRCONN_BUILD_DIR:-$top/build}
trials=20 lease=15 backend=cloud out= smoke=0 only=
usage() {
	echo "usage: $0 [--smoke] [--trials N] [--lease SECONDS] [--backend cloud] [--only kill|term] [--out FILE] [--build-dir DIR]" >&2
	exit 2
}
while [[ $# -gt 0 ]]; do
	case $1 in
	--smoke) smoke=1; trials=3; lease=4 ;;
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
[[ $backend == cloud && ($only == "" || $only == kill || $only == term) ]] || usage
[[ $trials =~ ^[1-9][0-9]*$ && $lease =~ ^[1-9][0-9]*$ ]] || usage
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
cleanup() {
	ha_stop_all
	sync_cloud_stop
	"$LDSFX" stop "$work/fx" >/dev/null 2>&1 || true
	if [[ -n ${KEEP_BENCH:-} || -e $work/keep ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

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
renew_ms=$((lease * 1000 / 3))
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

: >"$work/KILL.times"
: >"$work/TERM.times"
if [[ $only != term ]]; then for ((n = 1; n <= trials; n++)); do trial KILL; done; fi
if [[ $only != kill ]]; then for ((n = 1; n <= trials; n++)); do trial TERM; done; fi

if [[ -s $work/ha-stuck.log ]]; then
	echo "helper processes that outlived their dirconnd:" >&2
	cat "$work/ha-stuck.log" >&2
	touch "$work/keep"
fi
# keep the logs when a target is missed
awk '$1 == "timeout" || $1 >= 20 { bad = 1 } END { exit !bad }' "$work/KILL.times" && touch "$work/keep"
awk '$1 == "timeout" || $1 >= 2 { bad = 1 } END { exit !bad }' "$work/TERM.times" && touch "$work/keep"
python3 - "$out" "$work/KILL.times" "$work/TERM.times" <<PY
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
json.dump(r, open(sys.argv[1], "w"), indent=2)
f = lambda v: "-" if v is None else "%.2f" % v
print("| %-8s | %-7s | %6s | %8s | %7s | %7s | %7s | %7s | %8s | %6s |" % (
    "signal", "backend", "lease", "trials", "min (s)", "p50 (s)", "p90 (s)", "max (s)", "timeouts", "target"))
print("|" + "|".join("-" * w for w in (10, 9, 8, 10, 9, 9, 9, 9, 10, 8)) + "|")
for name, x, tgt in (("kill -9", k, 20), ("SIGTERM", s, 2)):
    print("| %-8s | %-7s | %5ds | %8d | %7s | %7s | %7s | %7s | %8d | %5s%s |" % (
        name, r["backend"], $lease, x["trials"], f(x["min_s"]), f(x["p50_s"]), f(x["p90_s"]), f(x["max_s"]),
        x["timeouts"], "<%d" % tgt, "s"))
print("kill -9 target (max < 20 s): %s; SIGTERM target (max < 2 s): %s" % (
    "met" if r["met"]["kill9"] else "NOT met", "met" if r["met"]["sigterm"] else "NOT met"))
print("JSON written to %s" % sys.argv[1])
PY
