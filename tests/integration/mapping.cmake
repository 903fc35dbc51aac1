# dirconnctl avatar-test: needs no server.
dirconn_integration_test(avatar_cli avatar_cli.sh TIMEOUT 60)
