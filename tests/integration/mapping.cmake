# dirconnctl avatar-test: needs no server.
dirconn_integration_test(avatar_cli avatar_cli.sh TIMEOUT 60)
# proxyAddresses aliases and multi-valued attributes on slapd and Samba AD DC.
dirconn_integration_test(sync_aliases_adlds sync_aliases.sh ARGS adlds TIMEOUT 900)
dirconn_integration_test(sync_aliases_adds sync_aliases.sh ARGS adds TIMEOUT 1200 RESOURCE samba_adds)
