# Unit tests of core/strlist: the ordered list of owned strings.
dirconn_unit_test(test_strlist ${CMAKE_CURRENT_LIST_DIR}/test_strlist.c)
