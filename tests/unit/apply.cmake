dirconn_unit_test(test_apply ${CMAKE_CURRENT_LIST_DIR}/test_apply.c)
