dirconn_integration_test(sync_full_adlds sync_full.sh ARGS adlds TIMEOUT 900)
dirconn_integration_test(sync_full_adds sync_full.sh ARGS adds TIMEOUT 1200 RESOURCE samba_adds)
dirconn_integration_test(sync_incremental_adlds sync_incremental.sh ARGS adlds TIMEOUT 900)
dirconn_integration_test(sync_incremental_adds sync_incremental.sh ARGS adds TIMEOUT 1200 RESOURCE samba_adds)
