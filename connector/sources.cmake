# Sources of libdirconn from connector/ (included by the top-level CMakeLists.txt):
# every .c file of the directory is one module.
file(GLOB DIRCONN_CONNECTOR_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.c)
list(APPEND DIRCONN_SOURCES ${DIRCONN_CONNECTOR_SOURCES})
# The one HTTP client (connector/net/): every HTTP(S) client of the library is built on it.
file(GLOB DIRCONN_NET_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/net/*.c)
list(APPEND DIRCONN_SOURCES ${DIRCONN_NET_SOURCES})
# The ground floor (connector/core/): errors, logging, configuration, the platform module and
# the secret store. Nothing in core/ includes a header from outside it.
file(GLOB DIRCONN_CORE_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/core/*.c)
list(APPEND DIRCONN_SOURCES ${DIRCONN_CORE_SOURCES})
