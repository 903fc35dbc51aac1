# The summary lines of a run (connector/sync_report.c).
dirconn_unit_test(test_sync_report ${CMAKE_CURRENT_LIST_DIR}/test_sync_report.c)
