# Sources of libdirconn from proxy/ (proxy resolution; see issue on proxies).
list(APPEND DIRCONN_SOURCES)
