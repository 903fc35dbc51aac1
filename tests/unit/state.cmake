dirconn_unit_test(test_state ${CMAKE_CURRENT_LIST_DIR}/test_state.c)
dirconn_unit_test(test_sync_phase ${CMAKE_CURRENT_LIST_DIR}/test_sync_phase.c)
