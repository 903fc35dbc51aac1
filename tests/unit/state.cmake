dirconn_unit_test(test_state ${CMAKE_CURRENT_LIST_DIR}/test_state.c)
