# Integration tests of dirconn-cloud (each starts its own server on a free loopback port).
dirconn_integration_test(cloud_scim cloud_scim.sh TIMEOUT 300)
dirconn_integration_test(cloud_control cloud_control.sh TIMEOUT 300)
dirconn_integration_test(cloud_faults cloud_faults.sh TIMEOUT 300)
dirconn_integration_test(cloud_crash cloud_crash.sh TIMEOUT 300)
dirconn_integration_test(cloud_ingest_smoke cloud_ingest_smoke.sh TIMEOUT 300)
dirconn_integration_test(cloud_cli cloud_cli.sh TIMEOUT 120)
dirconn_integration_test(cloud_emulation cloud_emulation.sh TIMEOUT 300)
dirconn_integration_test(cloud_password cloud_password.sh TIMEOUT 120)
