dirconn_integration_test(sync_full_adlds sync_full.sh ARGS adlds TIMEOUT 900)
dirconn_integration_test(sync_full_adds sync_full.sh ARGS adds TIMEOUT 1200 RESOURCE samba_adds)
