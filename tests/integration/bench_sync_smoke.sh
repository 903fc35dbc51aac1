# Smoke run of bench/sync.sh (500 users in the slapd fixture) so the benchmark keeps working,
# with the streamed organisation (ldsfx --stream) that the 1,000,000-user runs use.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
out=$(mktemp /tmp/bench-sync-smoke.XXXXXX.json)
trap 'rm -f "$out"' EXIT
run_capture b bash "$SRC/bench/sync.sh" --smoke --stream --build-dir "$DIRCONN_BUILD_DIR" --out "$out"
check_eq "the benchmark runs" 0 "$b_rc"
check_contains "it prints its table" "$b_out" "| adlds  |     500 |"
check "the full sync added every user it read" test "$(json "$out" "j['objects_added']")" -gt 400
check_eq "the no-change sync matched them all" "$(json "$out" "j['objects_added']")" \
	"$(json "$out" "j['no_change_sync']['objects_matched']")"
check "the ratio to the floor is measured" test -n "$(json "$out" "j['ratio_to_floor']")"
# the inventory floor lists what the connector's inventory lists: every object it matched
check_eq "the inventory floor lists every object the no-change sync matched" \
	"$(json "$out" "j['no_change_sync']['objects_matched']")" "$(json "$out" "j['floors']['inventory_objects']")"
check "the no-change ratio to read and inventory floors is measured" \
	python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); sys.exit(not (j["floors"]["inventory_s"] > 0 and j["no_change_ratio"] > 0))' "$out"
check_contains "it prints the inventory floor" "$b_out" "inventory floor "
check_eq "the fixture is the streamed organisation" stream "$(json "$out" "j['generator']")"
check "the load average is recorded with the full sync" \
	python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); sys.exit(not all(
	    isinstance(j[k]["load_before"], float) for k in ("full_sync", "no_change_sync")))' "$out"
check_contains "it prints the load average" "$b_out" "load average (1 min): read floor"
check "the peak WAL of each sync is recorded" \
	python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); sys.exit(not (j["full_sync"]["peak_wal_bytes"] > 0
	    and all(j[k]["peak_wal_bytes"] >= 0 for k in ("no_change_sync", "no_change_sync_repeated"))))' "$out"
check_contains "it prints the peak WAL" "$b_out" "peak state WAL (MB): full sync"
check_eq "the incremental step changed 50 users" 50 "$(json "$out" "j['incremental_sync']['users_changed']")"
check_eq "the incremental sync read each of them as one change" 50 "$(json "$out" "j['incremental_sync']['changes']")"
check "it updated those in scope" test "$(json "$out" "j['incremental_sync']['updated']")" -gt 30
check_contains "it prints the incremental sync" "$b_out" "incremental sync after 50 users changed:"
out2=$(bash "$SRC/bench/sync.sh" --kind adds --stream --build-dir "$DIRCONN_BUILD_DIR" 2>&1) && rc=0 || rc=$?
check_eq "--stream with --kind adds is refused" 2 "$rc"
check_contains "with its reason" "$out2" "--stream is for --kind adlds"
finish
