# Unit tests of ha/: the election state machine on an in-process lease table, and the etcd
# lease backend against a scripted fake of the etcd JSON gateway.
dirconn_unit_test(test_election ${CMAKE_CURRENT_LIST_DIR}/test_election.c)
dirconn_unit_test(test_lease_etcd ${CMAKE_CURRENT_LIST_DIR}/test_lease_etcd.c)
# The shared state document (watermarks, the retry list of failed writes) written from one
# instance's state and read into another's, through an in-memory backend.
dirconn_unit_test(test_shared_state ${CMAKE_CURRENT_LIST_DIR}/test_shared_state.c)
