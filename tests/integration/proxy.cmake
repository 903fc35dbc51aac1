# Proxies: squid (Basic, Digest), tinyproxy, PAC over HTTP and from a file, the
# environment in mode auto, and a full sync through squid chosen by a PAC file.
dirconn_integration_test(proxy proxy.sh TIMEOUT 600)
