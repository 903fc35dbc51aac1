# The status page and /metrics of dirconnd (issue 18): promtool and headless Chromium.
dirconn_integration_test(daemon_web_adlds daemon_web.sh ARGS adlds TIMEOUT 900)
dirconn_integration_test(daemon_web_adds daemon_web.sh ARGS adds TIMEOUT 1500 RESOURCE samba_adds)
# [web] outside loopback: TLS and credentials, in a network namespace of its own.
dirconn_integration_test(daemon_web_tls daemon_web_tls.sh TIMEOUT 300)
