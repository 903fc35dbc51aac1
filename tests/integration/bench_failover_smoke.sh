# Smoke run of bench/failover.sh (3 kill -9 and 3 SIGTERM failovers with a 4 s lease, and the
# first sync after a kill -9 takeover at 300 users) so the benchmark keeps working.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
out=$(mktemp /tmp/bench-failover-smoke.XXXXXX.json)
trap 'rm -f "$out"' EXIT
run_capture b bash "$SRC/bench/failover.sh" --smoke --build-dir "$DIRCONN_BUILD_DIR" --out "$out"
check_eq "the benchmark runs" 0 "$b_rc"
[[ $b_rc -eq 0 ]] || echo "$b_err" | tail -20
check_contains "it prints its table" "$b_out" "| kill -9  | cloud   |"
check_contains "it prints the SIGTERM row" "$b_out" "| SIGTERM  | cloud   |"
check_eq "three kill -9 trials" 3 "$(json "$out" "j['kill9']['trials']")"
check_eq "three SIGTERM trials" 3 "$(json "$out" "j['sigterm']['trials']")"
check_eq "no kill -9 trial timed out" 0 "$(json "$out" "j['kill9']['timeouts']")"
check_eq "no SIGTERM trial timed out" 0 "$(json "$out" "j['sigterm']['timeouts']")"
# lease 4 s: the lease runs out at most 4 s after the kill, plus the standby's poll and jitter
check_eq "kill -9 failovers within lease + 2 s" True "$(json "$out" "j['kill9']['max_s'] < 6")"
check_eq "SIGTERM failovers within 2 s" True "$(json "$out" "j['sigterm']['max_s'] < 2")"
check_contains "it prints the takeover cost" "$b_out" "| first after kill -9"
check_eq "the first sync after the takeover, nothing changed: no SCIM write" 0 \
	"$(json "$out" "j['takeover']['first_sync_scim_writes']")"
check_eq "nor did the no-change full sync" 0 "$(json "$out" "j['takeover']['nochange_full_scim_writes']")"
finish
