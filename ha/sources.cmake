# Sources of libdirconn from ha/ (lease backends and the election; see issue on HA).
list(APPEND DIRCONN_SOURCES)
