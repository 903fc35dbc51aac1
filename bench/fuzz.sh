#!/usr/bin/env bash
# fuzz.sh - run the libFuzzer harnesses of tests/fuzz for a while and count what they find.
#
# usage: bench/fuzz.sh [--minutes N | --seconds N] [--harness NAME]... [--out FILE]
#                      [--build-dir DIR] [--work-dir DIR]
#
# Builds dirconn with clang and -DDIRCONN_FUZZ=ON (libFuzzer, ASan, UBSan) into its own build
# directory (default build-fuzz/), then runs each harness (default: all of them, one after the
# other) for N minutes (default 10; --seconds for short runs) with -max_total_time, starting from
# its seed corpus (tests/fuzz/corpus/<name>) plus what earlier runs kept in the work directory
# (default <build-dir>/fuzz-work/<name>/corpus). libFuzzer stops at the first crash: the run is
# then resumed for the time left, so one crash does not hide the next. Crash, leak, timeout and
# out-of-memory inputs are left in <work-dir>/<name>/artifacts.
# Prints a table (harness, executions, exec/s, corpus, crashes) and writes JSON (default
# bench-fuzz.json). Exit status: 0, 1 on a crash (the table says where), 2 on usage or build
# errors, 77 when clang or its libFuzzer runtime is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
all=(config avatar scim ldap_entry proxy admin)
seconds=600 out=bench-fuzz.json build=$top/build-fuzz work= harnesses=()
usage() {
	echo "usage: $0 [--minutes N | --seconds N] [--harness NAME]... [--out FILE] [--build-dir DIR] [--work-dir DIR]" >&2
	exit 2
}
while [[ $# -gt 0 ]]; do
	case $1 in
	--minutes) [[ ${2:-} =~ ^[0-9]+$ ]] || usage; seconds=$(($2 * 60)); shift ;;
	--seconds) [[ ${2:-} =~ ^[0-9]+$ ]] || usage; seconds=$2; shift ;;
	--harness) [[ " ${all[*]} " == *" ${2:-} "* ]] || { echo "unknown harness '${2:-}' (${all[*]})" >&2; exit 2; }
		harnesses+=("$2"); shift ;;
	--out) out=$2; shift ;;
	--build-dir) build=$2; shift ;;
	--work-dir) work=$2; shift ;;
	*) usage ;;
	esac
	shift
done
((${#harnesses[@]})) || harnesses=("${all[@]}")
((seconds > 0)) || usage
work=${work:-$build/fuzz-work}

# ---- clang with libFuzzer?
probe=$(mktemp -d /tmp/dirconn-fuzz-probe.XXXXXX)
trap 'rm -rf "$probe"' EXIT
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
	>"$probe/p.c"
if ! command -v clang >/dev/null || ! clang -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" 2>/dev/null; then
	echo "clang with libFuzzer (libclang_rt.fuzzer) is not installed: nothing to run" >&2
	exit 77
fi

echo "== build: clang, -DDIRCONN_FUZZ=ON in $build" >&2
CC=clang "$top/scripts/build.sh" "$build" -DDIRCONN_FUZZ=ON -DDIRCONN_TESTS=OFF >&2 ||
	{ echo "the build failed" >&2; exit 2; }

results=$probe/results
: >"$results"
for h in "${harnesses[@]}"; do
	bin=$build/tests/fuzz/fuzz_$h
	[[ -x $bin ]] || { echo "missing $bin" >&2; exit 2; }
	dir=$work/$h
	mkdir -p "$dir/corpus" "$dir/artifacts"
	echo "== $h: $seconds s" >&2
	execs=0 runs=0 start=$(date +%s)
	while :; do
		left=$((seconds - ($(date +%s) - start)))
		((left > 0)) || break
		runs=$((runs + 1))
		rc=0
		(cd "$dir" && "$bin" -max_total_time="$left" -print_final_stats=1 -timeout=10 \
			-rss_limit_mb=2048 -artifact_prefix="$dir/artifacts/" corpus "$top/tests/fuzz/corpus/$h" \
			>"$dir/run-$runs.log" 2>&1) || rc=$?
		n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/run-$runs.log" | tail -1)
		if [[ -z $n ]]; then # a crash: no final stats, the last status line has the count
			n=$(grep -o '^#[0-9]*' "$dir/run-$runs.log" | tail -1 | tr -d '#')
		fi
		execs=$((execs + ${n:-0}))
		((rc == 0)) || echo "   $h stopped (exit $rc), see $dir/run-$runs.log" >&2
		((rc == 0 || runs >= 100)) && break # 100 restarts: it crashes at once, every time
	done
	crashes=$(find "$dir/artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
		-o -name 'oom-*' \) -newermt "@$start" | wc -l)
	corpus=$(find "$dir/corpus" -type f | wc -l)
	wall=$(($(date +%s) - start))
	echo "$h $execs $wall $corpus $crashes $runs" >>"$results"
done

python3 - "$out" "$results" "$seconds" "$build" "$work" <<'PY'
import json, sys, datetime, os
out, results, seconds, build, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
rows = []
for line in open(results):
    h, execs, wall, corpus, crashes, runs = line.split()
    rows.append({"harness": h, "executions": int(execs), "seconds": int(wall),
                 "exec_per_s": round(int(execs) / max(int(wall), 1)), "corpus": int(corpus),
                 "crashes": int(crashes), "runs": int(runs)})
r = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
     "machine": "%d cores" % os.cpu_count(), "seconds_per_harness": seconds,
     "build_dir": build, "work_dir": work, "harnesses": rows}
json.dump(r, open(out, "w"), indent=2)
print("| harness | executions | exec/s | corpus | crashes |")
print("|---|---|---|---|---|")
for x in rows:
    print("| %s | %d | %d | %d | %d |" % (x["harness"], x["executions"], x["exec_per_s"],
                                        x["corpus"], x["crashes"]))
total = sum(x["crashes"] for x in rows)
print("JSON written to %s; %s" % (out, "no crash" if total == 0 else
      "%d crash inputs in %s/<harness>/artifacts" % (total, work)))
sys.exit(0 if total == 0 else 1)
PY
