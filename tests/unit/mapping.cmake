# Unit tests of the map stage: expressions, defaults, validation, avatar URI patterns.
dirconn_unit_test(test_avatar ${CMAKE_CURRENT_LIST_DIR}/test_avatar.c)
dirconn_unit_test(test_mapping ${CMAKE_CURRENT_LIST_DIR}/test_mapping.c)
