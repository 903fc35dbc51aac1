dirconn_unit_test(test_select ${CMAKE_CURRENT_LIST_DIR}/test_select.c)
