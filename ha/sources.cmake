# Sources of libdirconn from ha/: the lease backend interface and its backends
# (lease*.c), the election state machine (election.c) and the shared state.
list(APPEND DIRCONN_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/lease.c
  ${CMAKE_CURRENT_LIST_DIR}/lease_cloud.c
  ${CMAKE_CURRENT_LIST_DIR}/lease_etcd.c
  ${CMAKE_CURRENT_LIST_DIR}/election.c
  ${CMAKE_CURRENT_LIST_DIR}/shared_state.c)
