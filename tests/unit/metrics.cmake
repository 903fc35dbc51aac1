# Unit tests of the Prometheus metrics (connector/metrics.c): counting and the text exposition.
dirconn_unit_test(test_metrics ${CMAKE_CURRENT_LIST_DIR}/test_metrics.c)
