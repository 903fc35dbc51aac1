# Smoke run of bench/big_group.sh (a 2,000-user group under a 64 KiB provider limit) so the
# benchmark keeps working; the benchmark itself checks that every member arrived.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
out=$(mktemp /tmp/bench-big-group-smoke.XXXXXX.json)
trap 'rm -f "$out"' EXIT
run_capture b bash "$SRC/bench/big_group.sh" --smoke --build-dir "$DIRCONN_BUILD_DIR" --out "$out"
check_eq "the benchmark runs and every member arrives" 0 "$b_rc"
[[ $b_rc -eq 0 ]] || printf '%s\n' "$b_err" | tail -5
check_contains "it prints its table" "$b_out" "| 65536 |"
check "more members than fit one 64 KiB request" test "$(json "$out" "j['full_sync']['members_in_cloud']")" -gt 1300
check_eq "nothing was refused" 0 "$(json "$out" "j['full_sync']['refused_4xx']")"
check "the members that did not fit the creation went by PATCH" \
	test "$(json "$out" "j['full_sync']['group_patch_requests']")" -ge 1
check_eq "one member removed is one operation" 1 "$(json "$out" "j['one_member_removed']['patch_ops']")"
check_eq "one member added with dirconnd running is one PATCH" 1 \
	"$(json "$out" "j['one_member_added_dirconnd']['patch_requests']")"
check_eq "with one operation" 1 "$(json "$out" "j['one_member_added_dirconnd']['patch_ops']")"
# slapd tracks entries, not values: the group is read again with its member values
check_eq "the group's entry is read in full on slapd" True \
	"$(json "$out" "j['one_member_added_dirconnd']['group_read_in_full']")"
finish
