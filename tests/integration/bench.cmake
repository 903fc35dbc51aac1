# Benchmarks are not timed tests: CI runs a small smoke of each.
dirconn_integration_test(bench_sync_smoke bench_sync_smoke.sh TIMEOUT 600)
dirconn_integration_test(bench_failover_smoke bench_failover_smoke.sh TIMEOUT 600)
dirconn_integration_test(bench_big_group_smoke bench_big_group_smoke.sh TIMEOUT 600)
dirconn_integration_test(bench_fuzz_smoke bench_fuzz_smoke.sh TIMEOUT 900)
set_tests_properties(integration.bench_fuzz_smoke PROPERTIES SKIP_RETURN_CODE 77)
