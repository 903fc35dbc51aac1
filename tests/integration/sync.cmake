dirconn_integration_test(sync_full_adlds sync_full.sh ARGS adlds TIMEOUT 900)
dirconn_integration_test(sync_full_adds sync_full.sh ARGS adds TIMEOUT 1200 RESOURCE samba_adds)
dirconn_integration_test(sync_incremental_adlds sync_incremental.sh ARGS adlds TIMEOUT 900)
dirconn_integration_test(sync_incremental_adds sync_incremental.sh ARGS adds TIMEOUT 1200 RESOURCE samba_adds)
dirconn_integration_test(sync_present_adlds sync_present.sh TIMEOUT 600)
dirconn_integration_test(daemon_adlds daemon.sh ARGS adlds TIMEOUT 900)
dirconn_integration_test(daemon_adds daemon.sh ARGS adds TIMEOUT 1200 RESOURCE samba_adds)
dirconn_integration_test(bench_latency_smoke ../../bench/latency.sh ARGS --smoke --out latency_smoke.json TIMEOUT 600)
# The interoperability matrix in three parts that run side by side (each with its own fixture).
# Generous deadlines: the whole matrix in one test once took 55 minutes in a fresh root on 2
# cores beside another test run (before the oracle and the inventory stopped reading groups).
dirconn_integration_test(scim_interop_rfc scim_interop.sh
  ARGS adlds strict payload-64k cascading no-enterprise no-bulk TIMEOUT 3600 COST 1000)
dirconn_integration_test(scim_interop_limits scim_interop.sh
  ARGS adlds no-patch no-etag no-contacts eq-only single-value body-64k body-64k-no-bulk
  TIMEOUT 3600 COST 1000)
dirconn_integration_test(scim_interop_providers scim_interop.sh
  ARGS adlds group-patch-limited group-patch-no-content etag-required aws scimmy TIMEOUT 3600 COST 1000)
dirconn_integration_test(daemon_bind_adds daemon_bind.sh TIMEOUT 1200 RESOURCE samba_adds)
dirconn_integration_test(daemon_delete_adlds daemon_delete.sh ARGS adlds TIMEOUT 600)
dirconn_integration_test(daemon_delete_adds daemon_delete.sh ARGS adds TIMEOUT 1200 RESOURCE samba_adds)
dirconn_integration_test(sync_failures_adlds sync_failures.sh ARGS adlds TIMEOUT 1500)
dirconn_integration_test(sync_failures_adds sync_failures.sh ARGS adds TIMEOUT 1500 RESOURCE samba_adds)
dirconn_integration_test(daemon_cloud daemon_cloud.sh TIMEOUT 900)
dirconn_integration_test(daemon_races daemon_races.sh ARGS adlds TIMEOUT 900)
dirconn_integration_test(daemon_mail_adlds daemon_mail.sh ARGS adlds TIMEOUT 900)
