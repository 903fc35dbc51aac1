# Unit tests of the HA election state machine on an in-process lease table.
dirconn_unit_test(test_election ${CMAKE_CURRENT_LIST_DIR}/test_election.c)
