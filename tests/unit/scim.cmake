dirconn_unit_test(test_scim ${CMAKE_CURRENT_LIST_DIR}/test_scim.c)
