# Unit tests of core/digest: SHA-256 as hex text (FIPS 180-4 vectors).
dirconn_unit_test(test_digest ${CMAKE_CURRENT_LIST_DIR}/test_digest.c)
