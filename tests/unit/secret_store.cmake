dirconn_unit_test(test_secret_store ${CMAKE_CURRENT_LIST_DIR}/test_secret_store.c)
