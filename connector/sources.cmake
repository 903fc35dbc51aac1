# Sources of libdirconn from connector/ (included by the top-level CMakeLists.txt):
# every .c file of the directory is one module.
file(GLOB DIRCONN_CONNECTOR_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.c)
list(APPEND DIRCONN_SOURCES ${DIRCONN_CONNECTOR_SOURCES})
# The one HTTP client (connector/net/): every HTTP(S) client of the library is built on it.
file(GLOB DIRCONN_NET_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/net/*.c)
list(APPEND DIRCONN_SOURCES ${DIRCONN_NET_SOURCES})
