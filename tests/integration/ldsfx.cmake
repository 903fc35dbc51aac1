# ldsfx: the directory fixtures' own self-test (starts Samba, so it holds the
# samba_adds resource: one AD DS fixture per machine, ports 389/636).
dirconn_integration_test(ldsfx_selftest ldsfx_selftest.sh TIMEOUT 600 RESOURCE samba_adds)
