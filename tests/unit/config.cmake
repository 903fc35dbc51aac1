dirconn_unit_test(test_config ${CMAKE_CURRENT_LIST_DIR}/test_config.c)
dirconn_unit_test(test_error ${CMAKE_CURRENT_LIST_DIR}/test_error.c)
