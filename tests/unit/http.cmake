dirconn_unit_test(test_http ${CMAKE_CURRENT_LIST_DIR}/test_http.c)
