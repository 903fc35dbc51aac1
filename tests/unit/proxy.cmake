dirconn_unit_test(test_proxy ${CMAKE_CURRENT_LIST_DIR}/test_proxy.c)
