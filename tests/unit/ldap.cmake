dirconn_unit_test(test_ldap_entry ${CMAKE_CURRENT_LIST_DIR}/test_ldap_entry.c)
dirconn_unit_test(test_tracking ${CMAKE_CURRENT_LIST_DIR}/test_tracking.c)
dirconn_unit_test(test_ldap_source ${CMAKE_CURRENT_LIST_DIR}/test_ldap_source.c)
