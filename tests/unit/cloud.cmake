# Unit tests of dirconn-cloud's parsers (SCIM filter and PATCH path, RFC 7644).
dirconn_unit_test(cloud_filter_test cloud_filter_test.c)
target_link_libraries(cloud_filter_test PRIVATE cloud_core)
dirconn_unit_test(cloud_patch_test cloud_patch_test.c)
target_link_libraries(cloud_patch_test PRIVATE cloud_core)
dirconn_unit_test(cloud_hamode_test cloud_hamode_test.c)
target_link_libraries(cloud_hamode_test PRIVATE cloud_core)
