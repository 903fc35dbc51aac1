dirconn_integration_test(admin_cli admin_cli.sh TIMEOUT 600)
dirconn_integration_test(admin_man admin_man.sh TIMEOUT 60)
