# Unit tests of the log module: the repeat limiter (one line with a count per interval).
dirconn_unit_test(test_log ${CMAKE_CURRENT_LIST_DIR}/test_log.c)
