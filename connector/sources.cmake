# Sources of libdirconn from connector/ (included by the top-level CMakeLists.txt):
# every .c file of the directory is one module.
file(GLOB DIRCONN_CONNECTOR_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.c)
list(APPEND DIRCONN_SOURCES ${DIRCONN_CONNECTOR_SOURCES})
