# Integration tests of dirconn-cloud (each starts its own server on a free loopback port).
#
# dirconn_integration_test() folds its ENVIRONMENT string into the property
# list, so only its first variable survives; the cloud tests set their
# environment again here (as a proper list) until that is fixed.
function(cloud_integration_test name script timeout)
  dirconn_integration_test(${name} ${script} TIMEOUT ${timeout} ${ARGN})
  set_property(TEST integration.${name} PROPERTY ENVIRONMENT
    "DIRCONN_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
    "DIRCONN_BUILD_DIR=${PROJECT_BINARY_DIR}"
    "PATH=${PROJECT_BINARY_DIR}/admin:${PROJECT_BINARY_DIR}/cloud:$ENV{PATH}")
endfunction()

cloud_integration_test(cloud_scim cloud_scim.sh 300)
cloud_integration_test(cloud_control cloud_control.sh 300)
