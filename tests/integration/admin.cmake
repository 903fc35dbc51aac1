dirconn_integration_test(admin_cli admin_cli.sh TIMEOUT 600)
