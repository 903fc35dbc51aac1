# Smoke run of bench/sync.sh (500 users in the slapd fixture) so the benchmark keeps working.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
out=$(mktemp /tmp/bench-sync-smoke.XXXXXX.json)
trap 'rm -f "$out"' EXIT
run_capture b bash "$SRC/bench/sync.sh" --smoke --build-dir "$DIRCONN_BUILD_DIR" --out "$out"
check_eq "the benchmark runs" 0 "$b_rc"
check_contains "it prints its table" "$b_out" "| adlds  |     500 |"
check "the full sync added every user it read" test "$(json "$out" "j['objects_added']")" -gt 400
check_eq "the no-change sync matched them all" "$(json "$out" "j['objects_added']")" \
	"$(json "$out" "j['no_change_sync']['objects_matched']")"
check "the ratio to the floor is measured" test -n "$(json "$out" "j['ratio_to_floor']")"
finish
