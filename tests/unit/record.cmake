dirconn_unit_test(test_record ${CMAKE_CURRENT_LIST_DIR}/test_record.c)
