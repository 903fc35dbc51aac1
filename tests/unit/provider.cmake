dirconn_unit_test(test_provider ${CMAKE_CURRENT_LIST_DIR}/test_provider.c)
