# ldsfx: the directory fixtures' own self-test (starts Samba, so it holds the
# samba_adds resource: one AD DS fixture per machine, ports 389/636).
dirconn_integration_test(ldsfx_selftest ldsfx_selftest.sh TIMEOUT 600 RESOURCE samba_adds)
# the streamed organisation (gen.py --stream) that bench/sync.sh uses at 1M users
dirconn_integration_test(ldsfx_stream ldsfx_stream.sh TIMEOUT 300)
