dirconn_unit_test(test_plan ${CMAKE_CURRENT_LIST_DIR}/test_plan.c)
