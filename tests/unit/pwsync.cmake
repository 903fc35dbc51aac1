dirconn_unit_test(test_pwsync ${CMAKE_CURRENT_LIST_DIR}/test_pwsync.c)
