# Proxies: squid (Basic, Digest), tinyproxy, PAC over HTTP and from a file, the
# environment in mode auto, a full sync and the HA lease (acquired and renewed
# by proxy_lease_probe) through squid chosen by a PAC file.
add_executable(proxy_lease_probe ${CMAKE_CURRENT_LIST_DIR}/proxy_lease_probe.c)
target_link_libraries(proxy_lease_probe PRIVATE dirconn)
dirconn_integration_test(proxy proxy.sh TIMEOUT 600)
