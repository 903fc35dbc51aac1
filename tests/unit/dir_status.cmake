dirconn_unit_test(test_dir_status ${CMAKE_CURRENT_LIST_DIR}/test_dir_status.c)
