# Smoke run of bench/fuzz.sh (5 seconds of the admin request harness) so the benchmark keeps
# working. Its clang -DDIRCONN_FUZZ=ON build stays in the build tree (fuzz-smoke/) and is reused.
# Skipped (exit 77) when clang's libFuzzer runtime is not installed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
out=$(mktemp /tmp/bench-fuzz-smoke.XXXXXX.json)
trap 'rm -f "$out"' EXIT
run_capture b bash "$SRC/bench/fuzz.sh" --seconds 5 --harness admin \
	--build-dir "$DIRCONN_BUILD_DIR/fuzz-smoke" --out "$out"
if [[ $b_rc -eq 77 ]]; then
	echo "skipped: $b_err"
	exit 77
fi
check_eq "the benchmark runs and finds no crash" 0 "$b_rc"
[[ $b_rc -eq 0 ]] || printf '%s\n' "$b_err" | tail -5
check_contains "it prints its table" "$b_out" "| harness | executions |"
check "the harness ran many inputs" test "$(json "$out" "j['harnesses'][0]['executions']")" -gt 1000
check_eq "no crash" 0 "$(json "$out" "j['harnesses'][0]['crashes']")"
finish
