# Sources of libdirconn from proxy/: routes per cloud URL (proxy.c) and the
# libproxy seam that runs libproxy in a child process (proxy_px.c).
list(APPEND DIRCONN_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/proxy.c
  ${CMAKE_CURRENT_LIST_DIR}/proxy_px.c)
