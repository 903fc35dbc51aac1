dirconn_unit_test(test_mailer ${CMAKE_CURRENT_LIST_DIR}/test_mailer.c)
