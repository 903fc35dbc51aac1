dirconn_integration_test(sync_full_adlds sync_full.sh ARGS adlds TIMEOUT 900)
dirconn_integration_test(sync_full_adds sync_full.sh ARGS adds TIMEOUT 1200 RESOURCE samba_adds)
dirconn_integration_test(sync_incremental_adlds sync_incremental.sh ARGS adlds TIMEOUT 900)
dirconn_integration_test(sync_incremental_adds sync_incremental.sh ARGS adds TIMEOUT 1200 RESOURCE samba_adds)
dirconn_integration_test(daemon_adlds daemon.sh ARGS adlds TIMEOUT 900)
dirconn_integration_test(daemon_adds daemon.sh ARGS adds TIMEOUT 1200 RESOURCE samba_adds)
dirconn_integration_test(bench_latency_smoke ../../bench/latency.sh ARGS --smoke --out latency_smoke.json TIMEOUT 600)
# The interoperability matrix runs 13 cloud setups: 55 minutes in a fresh root on 2 cores
# beside another test run (it timed out at 40). Its deadline is three times that.
dirconn_integration_test(scim_interop_adlds scim_interop.sh ARGS adlds TIMEOUT 9900 COST 1000)
