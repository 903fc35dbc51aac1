dirconn_integration_test(ldap_source_adds ldap_source.sh ARGS adds TIMEOUT 900 RESOURCE samba_adds)
dirconn_integration_test(ldap_source_adlds ldap_source.sh ARGS adlds TIMEOUT 600)
